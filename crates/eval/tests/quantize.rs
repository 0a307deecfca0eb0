//! `hers eval --quantize` reports what encrypted search will score: its rank-1 equals the
//! rank-1 of a real encrypted search on the same split.

use embeddings::{SynthSpec, l2_normalize_rows, synth_set};
use eval::{EvalOptions, encrypted_scores, evaluate, from_score_rows, split_one_probe_per_identity};

#[test]
fn quantised_rank1_equals_encrypted_rank1() {
    let mut spec = SynthSpec::preset(embeddings::Preset::Arcface, 80, 3, 4);
    spec.dim = 16;
    spec.intrinsic_dim = 8;
    spec.within = 0.3;
    let set = synth_set(&spec).expect("set");
    let report = evaluate(&set, &EvalOptions { quantize: true, ..EvalOptions::default() }).expect("eval");
    let (scale, q_rank1) = report.quantized.expect("quantised result");
    assert_eq!(scale, 156, "default scale at d = 16 for t = 786433");

    let split = split_one_probe_per_identity(&set.labels, 0).expect("split");
    let mut data = set.data.clone();
    l2_normalize_rows(&mut data, 16);
    let gather = |rows: &[usize]| rows.iter().flat_map(|&r| data[r * 16..(r + 1) * 16].to_vec()).collect::<Vec<f32>>();
    let labels = |rows: &[usize]| rows.iter().map(|&r| set.labels[r]).collect::<Vec<i64>>();
    let run = encrypted_scores(&gather(&split.gallery), &gather(&split.probes), 16, 0, 1).expect("encrypted");
    assert!(run.exact);
    let (ident, _) = from_score_rows(&run.scores, &labels(&split.gallery), &labels(&split.probes), 1, &[]);
    assert_eq!(ident.rank(1), q_rank1);
    assert!(q_rank1 < 1.0 && q_rank1 > 0.3, "a set where rank-1 is informative: {q_rank1}");
    assert!((q_rank1 - report.rank1).abs() < 0.05);
}
