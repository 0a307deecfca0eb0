//! Synthetic sets: deterministic, unit-norm, and with the similarity statistics docs/evaluation.md states.

use embeddings::{Preset, SynthSpec, SynthStats, read_set, synth_set, synth_to_parquet};
use indicatif::ProgressBar;

#[test]
fn same_seed_same_rows_other_seed_other_rows() {
    let dir = tempfile::tempdir().expect("tmp");
    let spec = SynthSpec::preset(Preset::Deepprint, 50, 4, 9);
    let (a, b) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
    synth_to_parquet(&spec, &a, &ProgressBar::hidden()).expect("a");
    synth_to_parquet(&spec, &b, &ProgressBar::hidden()).expect("b");
    let (a, b) = (read_set(&a).expect("a"), read_set(&b).expect("b"));
    assert_eq!(a.data, b.data);
    assert_eq!(a.labels, b.labels);
    let c = synth_set(&SynthSpec { seed: 10, ..spec }).expect("c");
    assert_ne!(a.data, c.data);
    // Streaming in blocks gives exactly the in-memory set.
    assert_eq!(synth_set(&spec).expect("mem").data, a.data);
}

#[test]
fn rows_are_unit_norm_with_expected_shape() {
    for (preset, dim) in [(Preset::Arcface, 512), (Preset::Deepprint, 192), (Preset::Imagenet, 1536)] {
        let set = synth_set(&SynthSpec::preset(preset, 20, 3, 1)).expect("set");
        assert_eq!((set.len(), set.dim), (60, dim));
        for i in 0..set.len() {
            let n: f32 = set.row(i).iter().map(|x| x * x).sum();
            assert!((n - 1.0).abs() < 1e-4);
        }
    }
}

/// The ranges written in docs/evaluation.md ("Synthetic data").
#[test]
fn similarity_statistics_are_in_the_stated_ranges() {
    let cases = [
        (Preset::Arcface, (0.55, 0.65), (-0.02, 0.03), 0.08),
        (Preset::Deepprint, (0.60, 0.70), (-0.02, 0.03), 0.10),
        (Preset::Imagenet, (0.55, 0.65), (0.20, 0.30), 0.05),
    ];
    for (preset, genuine, impostor, max_impostor_std) in cases {
        let set = synth_set(&SynthSpec::preset(preset, 300, 5, 1)).expect("set");
        let s = SynthStats::measure(&set, 20_000, 2).expect("stats");
        assert!(s.genuine_mean > genuine.0 && s.genuine_mean < genuine.1, "{preset:?}: {s:?}");
        assert!(s.impostor_mean > impostor.0 && s.impostor_mean < impostor.1, "{preset:?}: {s:?}");
        assert!(s.impostor_std < max_impostor_std, "{preset:?}: {s:?}");
    }
}

/// The genuine and impostor cosines the module docs derive (both samples noisy) are what the
/// generator produces; the formula without the second sample's noise would be far off.
#[test]
fn measured_cosines_match_the_documented_formulas() {
    for preset in [Preset::Arcface, Preset::Deepprint, Preset::Imagenet] {
        let spec = SynthSpec::preset(preset, 400, 4, 3);
        let s = SynthStats::measure(&synth_set(&spec).expect("set"), 20_000, 5).expect("stats");
        let (genuine, impostor) = (spec.expected_genuine_cosine(), spec.expected_impostor_cosine());
        assert!((f64::from(s.genuine_mean) - genuine).abs() < 0.015, "{preset:?}: measured {s:?}, expected {genuine}");
        assert!(
            (f64::from(s.impostor_mean) - impostor).abs() < 0.01,
            "{preset:?}: measured {s:?}, expected {impostor}"
        );
        // The one-noisy-sample formula (1 + σ²/ℓ²)^{-k/2} overstates the genuine cosine.
        let k = spec.intrinsic_dim as f64;
        let one_sided = (1.0 + f64::from(spec.within).powi(2) / f64::from(spec.length_scale).powi(2)).powf(-k / 2.0);
        assert!(one_sided - f64::from(s.genuine_mean) > 0.1, "{preset:?}: {one_sided} vs {s:?}");
    }
}

#[test]
fn bad_specs_are_errors() {
    let mut spec = SynthSpec::preset(Preset::Arcface, 10, 2, 1);
    spec.intrinsic_dim = 600;
    assert!(synth_set(&spec).expect_err("k > D").to_string().contains("intrinsic dimension"));
    assert!(synth_set(&SynthSpec::preset(Preset::Arcface, 0, 2, 1)).is_err());
    assert!("resnet".parse::<Preset>().is_err());
}
