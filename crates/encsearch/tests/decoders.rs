//! Decoders of bytes from disk or the network never panic: truncations and byte mutations
//! (with the CRC recomputed, as a fuzzer could) are errors.

use std::collections::HashMap;

use encsearch::{
    Client, ClientKeys, Layout, Preset, Query, Response, ServerContext,
    hot::HotGallery,
    server::FineChunks,
    wire::{EncryptedChunk, FineQuery, FineResponse},
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn reseal(mut b: Vec<u8>) -> Vec<u8> {
    let n = b.len() - 4;
    let c = crc32fast::hash(&b[..n]);
    b[n..].copy_from_slice(&c.to_le_bytes());
    b
}

fn mutations(good: &[u8], rng: &mut ChaCha20Rng, count: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for cut in [0, 1, 4, 8, 12, good.len() / 3, good.len() / 2, good.len() - 5, good.len() - 1] {
        out.push(good[..cut].to_vec());
    }
    for _ in 0..count {
        let mut b = good.to_vec();
        // Mutations concentrated in headers (first 64 bytes) and anywhere.
        let pos = if rng.random::<bool>() {
            rng.random_range(0..64.min(b.len() - 4))
        } else {
            rng.random_range(0..b.len() - 4)
        };
        b[pos] = rng.random();
        out.push(reseal(b));
    }
    out
}

#[test]
fn mutated_messages_are_errors_not_panics() {
    let dim = 2;
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let keys = ClientKeys::generate(Preset::N4096.params().expect("preset"), &mut rng).expect("keys");
    let server = ServerContext::new(keys.public(), dim).expect("server");
    let client = Client::new(keys, dim).expect("client");
    let rows = [0.6f32, 0.8, -0.28, 0.96];
    let chunks = client.encrypt_templates(&rows, &mut rng).expect("encrypt");
    let chunk = chunks[0].to_bytes();
    let q = client.encrypt_query(vec!["p".into()], &rows[..2], &mut rng).expect("query");
    let query = q.to_bytes();
    let mut slot_ids = vec![None; client.chunk_size()];
    slot_ids[0] = Some("a".to_string());
    let hot = HotGallery::in_memory(server.prepare_chunks(&chunks).expect("hot"), slot_ids, client.quantizer());
    let response = server.score(&q, &hot).expect("score").to_bytes();

    assert!(EncryptedChunk::from_bytes(&chunk, server.bfv(), dim).is_ok());
    assert!(Query::from_bytes(&query, server.bfv(), dim).is_ok());
    assert!(Response::from_bytes(&response).is_ok());
    let mut ok = 0;
    for b in mutations(&chunk, &mut rng, 150) {
        ok += usize::from(EncryptedChunk::from_bytes(&b, server.bfv(), dim).is_ok());
    }
    for b in mutations(&query, &mut rng, 150) {
        ok += usize::from(Query::from_bytes(&b, server.bfv(), dim).is_ok());
    }
    for b in mutations(&response, &mut rng, 150) {
        if let Ok(r) = Response::from_bytes(&b) {
            ok += 1;
            // A decodable but altered response still must not panic the client.
            let _ = client.decrypt_top_k(&r, 3);
        }
    }
    // Some mutations land in ciphertext payloads and still decode; that is fine.
    assert!(ok < 450);

    // The compact forms: a query with a compact-answer key, its two-part answer. A mutated
    // query that still decodes is scored (the server must not panic on a key it accepted).
    let mut qc = q.clone();
    qc.compact = Some(client.compact_key(&mut rng).expect("compact key"));
    let compact_query = qc.to_bytes();
    let compact_response = server.score(&qc, &hot).expect("compact score").to_bytes();
    assert!(Query::from_bytes(&compact_query, server.bfv(), dim).is_ok_and(|q| q.compact.is_some()));
    let decoded = Response::from_bytes(&compact_response).expect("compact response");
    assert_eq!(client.decrypt_top_k(&decoded, 1).expect("decrypt")[0].gallery_id, "a");
    let mut ok = 0;
    for b in mutations(&compact_query, &mut rng, 150) {
        if let Ok(q) = Query::from_bytes(&b, server.bfv(), dim) {
            ok += 1;
            let _ = server.score(&q, &hot);
        }
    }
    for b in mutations(&compact_response, &mut rng, 150) {
        if let Ok(r) = Response::from_bytes(&b) {
            ok += 1;
            let _ = client.decrypt_top_k(&r, 3);
        }
    }
    assert!(ok < 300);

    // A query with an earlier compact-answer key (flag 1: RNS digits of Q; flag 2: four digits
    // with the ciphertexts' error variance), CRC intact, is refused with the fix. The flag
    // follows the probes, where a query without a key ends.
    let flag = q.to_bytes().len() - 4;
    for old in [1u8, 2] {
        let mut earlier = compact_query[..compact_query.len() - 4].to_vec();
        assert_eq!(earlier[flag], 3, "the compact-key flag");
        earlier[flag] = old;
        let crc = crc32fast::hash(&earlier);
        earlier.extend_from_slice(&crc.to_le_bytes());
        let err = Query::from_bytes(&earlier, server.bfv(), dim).expect_err("earlier key refused");
        assert!(
            err.to_string().contains("earlier hers version") && err.to_string().contains("--full-answers"),
            "flag {old}: {err}"
        );
    }
}

#[test]
fn mutated_fine_stage_messages_are_errors_not_panics() {
    let dim = 8;
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let keys = ClientKeys::generate(Preset::N4096.params().expect("preset"), &mut rng).expect("keys");
    let client = Client::new(keys, dim).expect("client");
    let server = ServerContext::new(client.keys().public(), 1).expect("server");
    let rows: Vec<f32> = (0..3 * dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let chunks = client.encrypt_templates_as(Layout::Coefficient, &rows, &mut rng).expect("encrypt");
    let index: HashMap<String, usize> = (0..3).map(|i| (format!("t{i}"), i)).collect();
    let q = client
        .encrypt_fine_query(vec!["p".into()], &rows[..dim], vec![vec!["t0".into(), "t2".into()]], &mut rng)
        .expect("fine query");
    let query = q.to_bytes();
    let r = server
        .score_candidates(&q, &FineChunks { quantizer: client.quantizer(), chunks: &chunks, index: &index })
        .expect("score");
    let response = r.to_bytes();
    assert!(FineQuery::from_bytes(&query, server.bfv()).is_ok());
    assert_eq!(
        client.decrypt_fine(&FineResponse::from_bytes(&response).expect("decodes"), 2).expect("decrypt").len(),
        2
    );
    let mut ok = 0;
    for b in mutations(&query, &mut rng, 150) {
        ok += usize::from(FineQuery::from_bytes(&b, server.bfv()).is_ok());
    }
    for b in mutations(&response, &mut rng, 150) {
        if let Ok(r) = FineResponse::from_bytes(&b) {
            ok += 1;
            let _ = client.decrypt_fine(&r, 2);
        }
    }
    // Some mutations land in ciphertext payloads and still decode; that is fine.
    assert!(ok < 300);
}

/// Found by `cargo fuzz` (target `response`): a 90-byte response claiming 2^28 probes and no
/// chunks once reserved 6 GB. It must be refused without allocating.
#[test]
fn fuzz_found_huge_probe_count_is_refused() {
    let hex = "4845525352533031200000006636616363623866616464303130306231623033623439653834373664356363001000000000000001c0fdffff0001bb002d000000000000000000000047bda50f000000000100000061ffffffff";
    let bytes: Vec<u8> =
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")).collect();
    // The fuzz target reseals its input with a valid CRC-32, as here. Its modulus (> 2^60) is
    // now refused by the header check; with a plausible 40-bit modulus patched in (bytes 52..60,
    // after the magic, the 32-byte key id and the degree) the probe count is what refuses it.
    let sealed = reseal([bytes.clone(), vec![0; 4]].concat());
    let e = Response::from_bytes(&sealed).expect_err("refused");
    assert!(e.to_string().contains("bad degree or modulus"), "refused up front: {e}");
    let mut patched = bytes.clone();
    patched[52..60].copy_from_slice(&((1u64 << 40) - 87).to_le_bytes());
    let e = Response::from_bytes(&reseal([patched, vec![0; 4]].concat())).expect_err("refused");
    assert!(e.to_string().contains("score count exceeds message"), "refused up front, before reserving: {e}");
    assert!(Response::from_bytes(&bytes).is_err());
}
