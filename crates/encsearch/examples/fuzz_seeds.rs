//! Writes valid messages as seed corpora for the cargo-fuzz targets in `fuzz/`:
//! `cargo run -p encsearch --example fuzz_seeds -- fuzz/corpus`. Each seed is written whole and
//! without its trailing CRC-32 (the targets reseal inputs, so mutations reach the decoders).
use std::collections::HashMap;
use std::fs;
use std::path::Path;

use encsearch::{
    Client, ClientKeys, Gallery, Layout, Preset, ServerContext,
    hot::HotGallery,
    server::FineChunks,
    wire::{Enrolment, IdTable, StreamFrames, StreamHeader},
};
use rand::SeedableRng;

fn put(root: &Path, target: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let dir = root.join(target);
    fs::create_dir_all(&dir)?;
    fs::write(dir.join(format!("{name}-whole")), bytes)?;
    if bytes.len() >= 4 {
        fs::write(dir.join(format!("{name}-body")), &bytes[..bytes.len() - 4])?;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::args().nth(1).unwrap_or_else(|| "fuzz/corpus".into());
    let root = Path::new(&root);
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    let keys = ClientKeys::generate(Preset::N4096.params()?, &mut rng)?;
    let tmp = tempfile::tempdir()?;
    keys.save(&tmp.path().join("keys"))?;
    let server = ServerContext::new(keys.public(), 2)?;
    let client = Client::new(keys, 2)?;
    let rows = [0.6f32, 0.8, -0.28, 0.96];
    let chunks = client.encrypt_templates(&rows, &mut rng)?;
    put(root, "chunk", "chunk", &chunks[0].to_bytes())?;
    let q = client.encrypt_query(vec!["p".into()], &rows[..2], &mut rng)?;
    put(root, "query", "query", &q.to_bytes())?;
    let mut slot_ids = vec![None; client.chunk_size()];
    slot_ids[0] = Some("a".to_string());
    let hot = HotGallery::in_memory(server.prepare_chunks(&chunks)?, slot_ids, client.quantizer());
    let response = server.score(&q, &hot)?;
    put(root, "response", "response", &response.to_bytes())?;
    // The same with compact answers.
    let mut qc = q.clone();
    qc.compact = Some(client.compact_key(&mut rng)?);
    put(root, "query", "query-compact", &qc.to_bytes())?;
    let compact = server.score(&qc, &hot)?;
    put(root, "response", "response-compact", &compact.to_bytes())?;
    // The service's streamed answers (already framed: the target also reframes its input).
    fs::create_dir_all(root.join("score_stream"))?;
    for (name, response) in [("stream-whole", &response), ("stream-compact", &compact)] {
        let header = StreamHeader {
            key_id: response.key_id.clone(),
            degree: response.degree,
            modulus: response.modulus,
            form: response.form,
            scale: response.scale,
            metric: response.metric,
            version: 1,
            chunks: 1,
            probe_ids: response.probe_ids.clone(),
        };
        let per_probe: Vec<_> = response.scores.iter().map(|p| p[0].clone()).collect();
        let stream =
            [StreamFrames::header(&header), StreamFrames::chunk(0, &per_probe, response.modulus), StreamFrames::end(1)]
                .concat();
        fs::write(root.join("score_stream").join(name), &stream)?;
    }
    let table = IdTable::unsealed(1, response.slot_ids.clone());
    put(root, "service_messages", "id-table", &table.to_bytes())?;
    let enrolment = Enrolment {
        key_id: client.keys().key_id().clone(),
        ids: vec!["a".into(), "b".into()],
        chunks: chunks.clone(),
        seal: None,
    };
    put(root, "service_messages", "enrolment", &enrolment.to_bytes())?;
    let gdir = tmp.path().join("g");
    let mut g = Gallery::create(&gdir, client.keys().public(), *client.quantizer())?;
    g.append(client.keys().key_id(), &["a".into(), "b".into()], &chunks)?;
    put(root, "segment", "segment", &fs::read(gdir.join(&g.manifest().segments[0].file))?)?;
    put(root, "manifest", "manifest", &fs::read(gdir.join(encsearch::store::MANIFEST_FILE))?)?;
    server.load_hot_cached(&g, true)?;
    // Whole file only: the target reads the header's own fingerprint and counts.
    let hot = fs::read(gdir.join("seg-00000001.hot"))?;
    fs::create_dir_all(root.join("hot_cache"))?;
    fs::write(root.join("hot_cache").join("hot-whole"), &hot)?;
    let secret = fs::read(tmp.path().join("keys").join(encsearch::keys::SECRET_FILE))?;
    // The keys target frames its input as the secret-key payload: seed it with the payload.
    put(root, "keys", "secret-payload", &secret[12..])?;
    put(root, "keys", "public", &fs::read(tmp.path().join("keys").join(encsearch::keys::PUBLIC_FILE))?)?;
    // Second stage: a fine query with two candidates and the response to it.
    let fine = ServerContext::new(client.keys().public(), 1)?;
    let fchunks = client.encrypt_templates_as(Layout::Coefficient, &rows, &mut rng)?;
    let index: HashMap<String, usize> = [("a".to_string(), 0), ("b".to_string(), 1)].into();
    let fq = client.encrypt_fine_query(vec!["p".into()], &rows[..2], vec![vec!["a".into(), "b".into()]], &mut rng)?;
    put(root, "fine_query", "fine-query", &fq.to_bytes())?;
    put(
        root,
        "fine_response",
        "fine-response",
        &fine
            .score_candidates(&fq, &FineChunks { quantizer: client.quantizer(), chunks: &fchunks, index: &index })?
            .to_bytes(),
    )?;
    println!("seeds written under {}", root.display());
    Ok(())
}
