//! Two-stage search: the fine (coefficient-layout) gallery returns exactly the integer inner
//! products of the candidates, ranks them as plaintext does, and refuses what it cannot serve.

use encsearch::{
    Client, ClientKeys, Error, Gallery, Layout, Preset, Quantizer, ServerContext, int_dot,
    wire::{FineQuery, FineResponse},
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

const DIM: usize = 96;

fn rows(count: usize, rng: &mut ChaCha20Rng) -> Vec<f32> {
    (0..count * DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

#[test]
fn fine_stage_scores_are_exact_inner_products() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let keys = ClientKeys::generate(Preset::N4096.params().expect("preset"), &mut rng).expect("keys");
    let client = Client::new(keys, DIM).expect("client");
    let q = *client.quantizer();
    let mut g =
        Gallery::create_with_layout(dir.path(), client.keys().public(), q, Layout::Coefficient).expect("create");
    // 4096 / 96 = 42 templates per chunk: 130 templates span 4 chunks, the last one partly used.
    assert_eq!(g.templates_per_chunk(), 42);
    let gallery = rows(130, &mut rng);
    let ids: Vec<String> = (0..130).map(|i| format!("t{i}")).collect();
    g.append(
        client.keys().key_id(),
        &ids,
        &client.encrypt_templates_as(Layout::Coefficient, &gallery, &mut rng).expect("enc"),
    )
    .expect("append");
    let g = Gallery::open(dir.path()).expect("reopen");
    assert_eq!((g.len(), g.chunk_count(), g.layout()), (130, 4, Layout::Coefficient));

    let probes = rows(2, &mut rng);
    // Candidates spread over every chunk, including both ends of a chunk and the last template.
    let picks = [vec![0usize, 41, 42, 83, 84, 129, 7], vec![5, 100, 128]];
    let candidates: Vec<Vec<String>> = picks.iter().map(|p| p.iter().map(|&i| ids[i].clone()).collect()).collect();
    let fq =
        client.encrypt_fine_query(vec!["p0".into(), "p1".into()], &probes, candidates, &mut rng).expect("fine query");
    let server = ServerContext::for_gallery(&g).expect("server");
    let resp = server.score_candidates(&fq, &g).expect("score");
    assert_eq!(resp.ciphertexts(), 4 + 3, "one ciphertext per distinct chunk per probe");
    let got = client.decrypt_fine(&resp, 10).expect("decrypt");
    // Through bytes, as the split roles exchange them (`hers query fine-*`): the same answer.
    let fq_bytes = FineQuery::from_bytes(&fq.to_bytes(), server.bfv()).expect("fine query bytes");
    let resp_bytes = server.score_candidates(&fq_bytes, &g).expect("score").to_bytes();
    let via_bytes =
        client.decrypt_fine(&FineResponse::from_bytes(&resp_bytes).expect("fine response bytes"), 10).expect("decrypt");
    assert_eq!(via_bytes, got);

    let gq = q.template_rows(&gallery).expect("quantise");
    let pq = q.probe_rows(&probes).expect("quantise");
    for (p, pick) in picks.iter().enumerate() {
        let mut want: Vec<(i64, String)> = pick.iter().map(|&i| (int_dot(&gq[i], &pq[p]), ids[i].clone())).collect();
        want.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let mine: Vec<(i64, String)> =
            got.iter().filter(|m| m.probe_id == format!("p{p}")).map(|m| (m.score, m.gallery_id.clone())).collect();
        assert_eq!(mine, want, "probe {p}");
    }
    // The extremes: a template equal to the probe scores exactly its squared norm.
    let top = client
        .encrypt_fine_query(vec!["self".into()], &gallery[..DIM], vec![vec![ids[0].clone()]], &mut rng)
        .expect("fine query");
    let m = client.decrypt_fine(&server.score_candidates(&top, &g).expect("score"), 1).expect("decrypt");
    assert_eq!(m[0].score, int_dot(&gq[0], &q.probe_rows(&gallery[..DIM]).expect("q")[0]));
}

#[test]
fn fine_stage_refuses_what_it_cannot_serve() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let params = Preset::N4096.params().expect("preset");
    let client = Client::new(ClientKeys::generate(params.clone(), &mut rng).expect("keys"), DIM).expect("client");
    let other = Client::new(ClientKeys::generate(params, &mut rng).expect("keys"), DIM).expect("client");
    let fine_dir = dir.path().join("fine");
    let coarse_dir = dir.path().join("coarse");
    let mut fine =
        Gallery::create_with_layout(&fine_dir, client.keys().public(), *client.quantizer(), Layout::Coefficient)
            .expect("create");
    let mut coarse = Gallery::create(&coarse_dir, client.keys().public(), *client.quantizer()).expect("create");
    let data = rows(50, &mut rng);
    let ids: Vec<String> = (0..50).map(|i| i.to_string()).collect();
    fine.append(
        client.keys().key_id(),
        &ids,
        &client.encrypt_templates_as(Layout::Coefficient, &data, &mut rng).expect("enc"),
    )
    .expect("append");
    coarse
        .append(client.keys().key_id(), &ids, &client.encrypt_templates(&data, &mut rng).expect("enc"))
        .expect("append");
    // A dimension-wise chunk cannot enter a coefficient-layout gallery.
    let wrong = client.encrypt_templates(&data[..40 * DIM], &mut rng).expect("enc");
    let more: Vec<String> = (50..90).map(|i| i.to_string()).collect();
    assert!(matches!(fine.append(client.keys().key_id(), &more, &wrong), Err(Error::DimensionMismatch { .. })));

    let query = |c: &Client, cands: Vec<String>, rng: &mut ChaCha20Rng| {
        c.encrypt_fine_query(vec!["p".into()], &data[..DIM], vec![cands], rng).expect("query")
    };
    let server = ServerContext::for_gallery(&fine).expect("server");
    // A candidate the fine gallery does not hold.
    let e = server.score_candidates(&query(&client, vec!["nope".into()], &mut rng), &fine).expect_err("unknown id");
    assert!(matches!(e, Error::UnknownId { ref id } if id == "nope"), "{e}");
    // Another key.
    let e = server.score_candidates(&query(&other, vec!["1".into()], &mut rng), &fine).expect_err("other key");
    assert!(matches!(e, Error::KeyMismatch { .. }), "{e}");
    // A fine gallery is not a 1:N gallery, and a 1:N gallery cannot serve the fine stage.
    assert!(server.load_hot(&fine).expect_err("not hot").to_string().contains("two-stage"));
    let cs = ServerContext::for_gallery(&coarse).expect("server");
    let e = cs.score_candidates(&query(&client, vec!["1".into()], &mut rng), &coarse).expect_err("dimension-wise");
    assert!(e.to_string().contains("--layout coefficient"), "{e}");
    // A quantiser at another scale.
    let q2 = Quantizer::with_scale(&client.keys().public().params, DIM, client.quantizer().scale - 1).expect("q");
    let kdir = dir.path().join("keys");
    client.keys().save(&kdir).expect("save keys");
    let c2 = Client::with_quantizer(ClientKeys::load(&kdir).expect("load keys"), q2).expect("client");
    let e = server.score_candidates(&query(&c2, vec!["1".into()], &mut rng), &fine).expect_err("scale");
    assert!(e.to_string().contains("scale"), "{e}");
}
