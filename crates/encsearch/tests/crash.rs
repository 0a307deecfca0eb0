//! A process killed mid-enrolment leaves a gallery with exactly the committed templates.
//!
//! The test re-executes its own binary as the child (`HERS_CRASH_CHILD=dir`), which enrols
//! segments in a loop and prints one line per commit; the parent kills it (SIGKILL) after a
//! few commits and reopens the gallery.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use encsearch::{Client, ClientKeys, Gallery, Preset};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

const DIM: usize = 4;
const PER_SEGMENT: usize = 500;

fn child(dir: &str) {
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let keys = ClientKeys::generate(Preset::N4096.params().expect("preset"), &mut rng).expect("keys");
    let client = Client::new(keys, DIM).expect("client");
    let mut g =
        Gallery::create(std::path::Path::new(dir), client.keys().public(), *client.quantizer()).expect("create");
    for s in 0.. {
        let rows: Vec<f32> = (0..PER_SEGMENT * DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let ids: Vec<String> = (0..PER_SEGMENT).map(|i| format!("s{s}-{i}")).collect();
        let chunks = client.encrypt_templates(&rows, &mut rng).expect("encrypt");
        g.append(client.keys().key_id(), &ids, &chunks).expect("append");
        println!("committed {}", s + 1);
    }
}

#[test]
fn killed_mid_enrolment_keeps_committed() {
    if let Ok(dir) = std::env::var("HERS_CRASH_CHILD") {
        child(&dir);
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("g");
    let exe = std::env::current_exe().expect("exe");
    let mut c = Command::new(exe)
        .args(["--exact", "killed_mid_enrolment_keeps_committed", "--nocapture", "--test-threads=1"])
        .env("HERS_CRASH_CHILD", &dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = c.stdout.take().expect("stdout");
    let mut seen = 0;
    for line in BufReader::new(out).lines() {
        let line = line.expect("line");
        if let Some(n) = line.strip_prefix("committed ") {
            seen = n.trim().parse().expect("n");
            if seen >= 3 {
                break;
            }
        }
    }
    c.kill().expect("kill");
    c.wait().expect("wait");
    assert!(seen >= 3);
    let g = Gallery::open(&dir).expect("gallery opens after kill -9");
    let segs = g.manifest().segments.len();
    assert!(segs >= seen, "{segs} < {seen}");
    assert_eq!(g.len(), segs * PER_SEGMENT, "exactly the committed templates");
}
