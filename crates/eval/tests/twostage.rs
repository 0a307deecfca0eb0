//! Two-stage encrypted search on the shipped real data: a 16-D PCA stage keeps candidates, the
//! encrypted 384-D stage rescores them exactly, and the result ranks as a plaintext rerank of
//! the same candidates does.

use embeddings::{dot, l2_normalize_rows, read_set};
use eval::{from_score_rows, split_one_probe_per_identity, two_stage_scores};

#[test]
fn two_stage_on_the_shipped_test_set_is_exact_and_reranks_like_plaintext() {
    let set = read_set(std::path::Path::new("../../data/bible-minilm-test.parquet")).expect("shipped test set");
    let train = read_set(std::path::Path::new("../../data/bible-minilm-train.parquet")).expect("shipped train set");
    let (full_dim, dim, probes, k) = (set.dim, 16, 120, 10);
    let pca = dimred::fit_pca(&train.data, train.dim, dim).expect("pca");
    let mut full = set.data.clone();
    l2_normalize_rows(&mut full, full_dim);
    let mut reduced = pca.project(&set.data, dim).expect("project");
    l2_normalize_rows(&mut reduced, dim);

    let split = split_one_probe_per_identity(&set.labels, 0).expect("split");
    let ((g, gl), (mut p, mut pl)) = split.parts(&reduced, &set.labels, dim);
    let ((fg, _), (mut fp, _)) = split.parts(&full, &set.labels, full_dim);
    p.truncate(probes * dim);
    pl.truncate(probes);
    fp.truncate(probes * full_dim);

    let run = two_stage_scores(&g, &p, dim, &fg, &fp, full_dim, k, 0, 3).expect("two-stage");
    assert!(run.exact, "both stages decrypt to the integer inner products");
    assert!(run.fine_ciphertexts <= k as f64 && run.fine_ciphertexts >= 1.0, "{}", run.fine_ciphertexts);
    let (two, _) = from_score_rows(&run.scores, &gl, &pl, 10, &[]);
    let (first, _) = from_score_rows(&run.coarse.scores, &gl, &pl, 10, &[]);

    // Reference, in floats: the same candidates reranked by full-dimension cosine.
    let mut hits = 0;
    for (pi, row) in run.coarse.scores.iter().enumerate() {
        let mut idx: Vec<usize> = (0..row.len()).collect();
        idx.sort_by(|&a, &b| row[b].cmp(&row[a]).then(a.cmp(&b)));
        let probe = &fp[pi * full_dim..(pi + 1) * full_dim];
        let best = idx[..k]
            .iter()
            .max_by(|&&a, &&b| {
                dot(probe, &fg[a * full_dim..(a + 1) * full_dim])
                    .total_cmp(&dot(probe, &fg[b * full_dim..(b + 1) * full_dim]))
            })
            .expect("candidates");
        hits += usize::from(gl[*best] == pl[pi]);
    }
    let reference = hits as f64 / probes as f64;
    assert!(
        (two.rank(1) - reference).abs() <= 1.0 / probes as f64,
        "two-stage {} vs float rerank {reference}",
        two.rank(1)
    );
    assert!(
        two.rank(1) >= first.rank(1),
        "rescoring at 384-D does not lose rank-1: {} < {}",
        two.rank(1),
        first.rank(1)
    );
    // A candidate list of k keeps rank-k of the first stage as the ceiling of rank-1.
    assert!(two.rank(1) <= first.rank(k) + 1e-12);
}
