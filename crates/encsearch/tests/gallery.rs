//! The gallery on disk: enrol, reopen, search, remove, and every failure mode is a clear error.

use std::fs;

use encsearch::{Client, ClientKeys, Error, Gallery, Preset, Quantizer, Query, ServerContext};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

const DIM: usize = 8;

fn keys(seed: u64) -> ClientKeys {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    ClientKeys::generate(Preset::N4096.params().expect("preset"), &mut rng).expect("keys")
}

fn rows(count: usize, rng: &mut ChaCha20Rng) -> Vec<f32> {
    (0..count * DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn enrol(g: &mut Gallery, client: &Client, ids: &[String], rows: &[f32], rng: &mut ChaCha20Rng) {
    let chunks = client.encrypt_templates(rows, rng).expect("encrypt");
    g.append(client.keys().key_id(), ids, &chunks).expect("append");
}

fn search(g: &Gallery, client: &Client, probe: &[f32], k: usize, rng: &mut ChaCha20Rng) -> Result<Vec<String>, Error> {
    let server = ServerContext::for_gallery(g)?;
    let hot = server.load_hot(g)?;
    let q = client.encrypt_query(vec!["p".into()], probe, rng)?;
    let q = Query::from_bytes(&q.to_bytes(), server.bfv(), server.rows())?;
    let r = server.score(&q, &hot)?;
    // Streaming from the memory-mapped segments answers the same, ciphertext for ciphertext.
    assert_eq!(server.score(&q, g)?, r);
    Ok(client.decrypt_top_k(&r, k)?.into_iter().map(|m| m.gallery_id).collect())
}

#[test]
fn enrol_reopen_search_remove() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let client = Client::new(keys(1), DIM).expect("client");
    let mut g = Gallery::create(dir.path(), client.keys().public(), *client.quantizer()).expect("create");
    let a = rows(300, &mut rng);
    let b = rows(200, &mut rng);
    let ids_a: Vec<String> = (0..300).map(|i| format!("a{i}")).collect();
    let ids_b: Vec<String> = (0..200).map(|i| format!("b{i}")).collect();
    enrol(&mut g, &client, &ids_a, &a, &mut rng);
    enrol(&mut g, &client, &ids_b, &b, &mut rng);
    // Ids already enrolled are refused: by the id index built at the first append, and by what
    // a later append added to it.
    for id in [&ids_a[0], &ids_b[199]] {
        let one = client.encrypt_templates(&a[..DIM], &mut rng).expect("enc");
        assert!(matches!(
            g.append(client.keys().key_id(), std::slice::from_ref(id), &one),
            Err(Error::DuplicateId { id: d }) if &d == id
        ));
    }
    let g = Gallery::open(dir.path()).expect("reopen");
    assert_eq!(g.len(), 500);
    assert_eq!(g.locate("b7").expect("locate"), (1, 7));
    assert_eq!(search(&g, &client, &b[7 * DIM..8 * DIM], 1, &mut rng).expect("search"), vec!["b7".to_string()]);
    let mut g = g;
    g.remove(&["b7".to_string()]).expect("remove");
    assert!(matches!(g.remove(&["nope".to_string()]), Err(Error::UnknownId { .. })));
    // Ids are never reused: a removed one is refused too.
    let one = client.encrypt_templates(&b[..DIM], &mut rng).expect("enc");
    assert!(matches!(g.append(client.keys().key_id(), &["b7".to_string()], &one), Err(Error::DuplicateId { .. })));
    let g = Gallery::open(dir.path()).expect("reopen");
    assert_eq!(g.len(), 499);
    let top = search(&g, &client, &b[7 * DIM..8 * DIM], 3, &mut rng).expect("search");
    assert!(!top.contains(&"b7".to_string()));
}

#[test]
fn wrong_key_dimension_and_nan_are_errors() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let client = Client::new(keys(1), DIM).expect("client");
    let other = Client::new(keys(2), DIM).expect("client");
    let mut g = Gallery::create(dir.path(), client.keys().public(), *client.quantizer()).expect("create");
    let a = rows(10, &mut rng);
    let ids: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    enrol(&mut g, &client, &ids, &a, &mut rng);
    // Enrolling with another key.
    let chunks = other.encrypt_templates(&a, &mut rng).expect("enc");
    assert!(matches!(g.append(other.keys().key_id(), &ids, &chunks), Err(Error::KeyMismatch { .. })));
    // Querying with another key.
    assert!(matches!(search(&g, &other, &a[..DIM], 1, &mut rng), Err(Error::KeyMismatch { .. })));
    // Dimension mismatch: probe of the wrong length, chunk of the wrong dimension.
    assert!(matches!(search(&g, &client, &a[..DIM - 1], 1, &mut rng), Err(Error::DimensionMismatch { .. })));
    let small = Client::new(keys(1), DIM - 1).expect("client");
    let c7 = small.encrypt_templates(&a[..DIM - 1], &mut rng).expect("enc");
    assert!(matches!(g.append(client.keys().key_id(), &["x".into()], &c7), Err(Error::DimensionMismatch { .. })));
    // NaN probe.
    let mut nan = a[..DIM].to_vec();
    nan[3] = f32::NAN;
    assert!(matches!(search(&g, &client, &nan, 1, &mut rng), Err(Error::NonFinite { component: 3, .. })));
    // The gallery still opens with everything committed and still answers.
    let g = Gallery::open(dir.path()).expect("reopen");
    assert_eq!(g.len(), 10);
    assert_eq!(search(&g, &client, &a[2 * DIM..3 * DIM], 1, &mut rng).expect("search"), vec!["2".to_string()]);
}

#[test]
fn torn_and_corrupt_segments_are_detected() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let client = Client::new(keys(1), DIM).expect("client");
    let mut g = Gallery::create(dir.path(), client.keys().public(), *client.quantizer()).expect("create");
    let a = rows(20, &mut rng);
    let ids: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    enrol(&mut g, &client, &ids, &a, &mut rng);
    let seg = dir.path().join(&g.manifest().segments[0].file);
    let good = fs::read(&seg).expect("read");

    // An uncommitted segment (crash before the manifest rename) is ignored.
    fs::write(dir.path().join("seg-00000002.bin"), &good[..good.len() / 2]).expect("write");
    fs::write(dir.path().join("seg-00000002.bin.tmp"), b"garbage").expect("write");
    assert_eq!(Gallery::open(dir.path()).expect("open").len(), 20);

    // Truncated committed segment.
    fs::write(&seg, &good[..good.len() - 100]).expect("write");
    let e = Gallery::open(dir.path()).expect_err("truncated");
    assert!(matches!(e, Error::Malformed { .. }), "{e}");
    assert!(e.to_string().contains("truncated"), "{e}");

    // One flipped byte.
    let mut bad = good.clone();
    bad[good.len() / 2] ^= 0x01;
    fs::write(&seg, &bad).expect("write");
    assert!(matches!(Gallery::open(dir.path()), Err(Error::Checksum { .. })));

    // Restored: opens again with everything committed.
    fs::write(&seg, &good).expect("write");
    assert_eq!(Gallery::open(dir.path()).expect("open").len(), 20);
}

#[test]
fn squared_euclidean_gallery() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let keys = keys(1);
    let q = Quantizer::euclidean(&keys.public().params, DIM, 4.0).expect("q");
    let client = Client::with_quantizer(keys, q).expect("client");
    let mut g = Gallery::create(dir.path(), client.keys().public(), q).expect("create");
    // Not normalised: norms up to ~2.8.
    let a: Vec<f32> = (0..300 * DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let ids: Vec<String> = (0..300).map(|i| format!("e{i}")).collect();
    enrol(&mut g, &client, &ids, &a, &mut rng);
    let g = Gallery::open(dir.path()).expect("open");
    let server = ServerContext::for_gallery(&g).expect("server");
    let hot = server.load_hot(&g).expect("hot");
    let probe = &a[42 * DIM..43 * DIM];
    let query = client.encrypt_query(vec!["p".into()], probe, &mut rng).expect("query");
    let r = server.score(&query, &hot).expect("score");
    let got = client.decrypt_top_k(&r, 5).expect("decrypt");
    // Plaintext reference on the quantised vectors.
    let qp = q.quantize(probe, 0).expect("qp");
    let mut want: Vec<(i64, String)> = (0..300)
        .map(|i| {
            let qx = q.quantize(&a[i * DIM..(i + 1) * DIM], i).expect("qx");
            (qx.iter().zip(&qp).map(|(x, y)| (x - y) * (x - y)).sum(), format!("e{i}"))
        })
        .collect();
    want.sort();
    let got: Vec<(i64, String)> = got.into_iter().map(|m| (m.score, m.gallery_id)).collect();
    assert_eq!(got, want[..5].to_vec());
    assert_eq!(got[0], (0, "e42".to_string()));
}

/// The hot-form cache (`seg-N.hot`): a first load builds and writes it, a second maps it and
/// scores the same ciphertexts; a corrupted, truncated or foreign cache is ignored and rebuilt;
/// a new segment gets its own file.
#[test]
fn hot_cache_is_reused_and_never_trusted_blindly() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let client = Client::new(keys(4), DIM).expect("client");
    let mut g = Gallery::create(dir.path(), client.keys().public(), *client.quantizer()).expect("create");
    let a = rows(300, &mut rng);
    let ids: Vec<String> = (0..300).map(|i| format!("a{i}")).collect();
    enrol(&mut g, &client, &ids, &a, &mut rng);
    let server = ServerContext::for_gallery(&g).expect("server");
    let q = client.encrypt_query(vec!["p".into()], &a[5 * DIM..6 * DIM], &mut rng).expect("query");
    let reference = server.score(&q, &server.load_hot(&g).expect("hot")).expect("score");
    let hot_file = dir.path().join("seg-00000001.hot");
    assert!(!hot_file.exists(), "load_hot writes no cache");

    let load = |g: &Gallery| {
        let (hot, report) = server.load_hot_cached(g, true).expect("load");
        assert_eq!(server.score(&q, &hot).expect("score"), reference, "same scores whatever the source");
        (hot.chunks().iter().all(|c| c.is_mapped()), report)
    };
    let (mapped, r) = load(&g);
    assert!(!mapped && r.built == 1 && r.mapped == 0 && r.written_bytes > 0 && r.write_error.is_none(), "{r:?}");
    assert!(hot_file.exists());
    let (mapped, r) = load(&g);
    assert!(mapped && r.mapped == 1 && r.built == 0, "{r:?}");

    // Any flipped header byte, a flipped byte in the data, a truncated file, a cache of another
    // gallery: rebuilt.
    let good = fs::read(&hot_file).expect("read");
    for at in (0..64).step_by(3) {
        let mut bad = good.clone();
        bad[at] ^= 0x40;
        let fp: [u8; 16] = good[8..24].try_into().expect("fingerprint");
        let words = (good.len() - 64) / 8;
        assert!(encsearch::hot::check_hot_cache(&good, &fp, 1, words));
        // Bytes 44..64 are padding; everything before them is checked.
        assert_eq!(encsearch::hot::check_hot_cache(&bad, &fp, 1, words), at >= 44, "header byte {at}");
    }
    let mut bad = good.clone();
    let at = bad.len() - 100;
    bad[at] ^= 1;
    for broken in [bad, good[..good.len() - 8].to_vec()] {
        fs::write(&hot_file, &broken).expect("write");
        let (mapped, r) = load(&g);
        assert!(!mapped && r.built == 1, "{r:?}");
    }
    let other = tempfile::tempdir().expect("tmp");
    let other_client = Client::new(keys(6), DIM).expect("client");
    let mut og =
        Gallery::create(other.path(), other_client.keys().public(), *other_client.quantizer()).expect("create");
    enrol(&mut og, &other_client, &ids, &a, &mut rng);
    ServerContext::for_gallery(&og).expect("server").load_hot_cached(&og, true).expect("other load");
    fs::copy(other.path().join("seg-00000001.hot"), &hot_file).expect("copy");
    let (mapped, r) = load(&g);
    assert!(!mapped && r.built == 1, "a foreign cache is not used: {r:?}");

    // Appending: the old segment is mapped, the new one built (and cached).
    enrol(&mut g, &client, &["new".to_string()], &a[..DIM], &mut rng);
    let g = Gallery::open(dir.path()).expect("reopen");
    let (hot, r) = server.load_hot_cached(&g, true).expect("load");
    assert_eq!((r.mapped, r.built, hot.chunks().len()), (1, 1, 2), "{r:?}");
    assert!(dir.path().join("seg-00000002.hot").exists());
}
