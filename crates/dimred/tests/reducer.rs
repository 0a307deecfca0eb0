//! End-to-end: fit every method on a small synthetic set, project, save, load, stream files.

use dimred::{Config, Error, Method, Reducer, TrainOptions, project_file};
use embeddings::{EmbeddingSet, Ids, read_set, write_set};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `ids` identities × `per` samples in `dim` dims: unit centres plus noise, L2-normalised.
fn clusters(ids: usize, per: usize, dim: usize, noise: f32, seed: u64) -> EmbeddingSet {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut data = Vec::new();
    let mut labels = Vec::new();
    for i in 0..ids {
        let mut c: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
        embeddings::l2_normalize(&mut c);
        for _ in 0..per {
            let mut v: Vec<f32> = c.iter().map(|x| x + noise * rng.random_range(-1.0..1.0)).collect();
            embeddings::l2_normalize(&mut v);
            data.extend(v);
            labels.push(i as i64 + 100);
        }
    }
    let n = labels.len();
    EmbeddingSet::new(Ids::Int((0..n as i64).collect()), labels, dim, data).expect("valid set")
}

fn small_config(method: Method) -> Config {
    let mut c = Config::default();
    c.model.stages = vec![16, 8];
    c.train.method = method;
    c.train.epochs = 3;
    c.train.steps_per_epoch = 8;
    c.train.num_pairs = 16;
    c.train.lr = 3e-3;
    c.train.lr_decay_steps = vec![];
    c.train.lr_decay_factors = vec![];
    c.mining.candidates = 64;
    c.mining.schedule = vec![dimred::MiningStep { until_epoch: 1, keep: 4 }];
    c.mining.final_keep = 8;
    c.data.validation_fraction = 0.2;
    c
}

#[test]
fn short_training_lowers_the_loss() {
    let set = clusters(40, 4, 24, 0.3, 1);
    let mut c = small_config(Method::DeepMdsCov);
    c.model.stages = vec![12];
    c.train.epochs = 6;
    c.train.steps_per_epoch = 10;
    let (_, meta) = Reducer::fit(&c, &set, &TrainOptions::default()).expect("fit");
    let first = meta.history.first().expect("history").loss;
    let last = meta.history.last().expect("history").loss;
    assert!(last < 0.8 * first, "loss {first} → {last}");
    assert!(meta.history.iter().all(|e| e.val_rank1.is_some()));
}

#[test]
fn supcon_training_lowers_its_loss_and_keeps_the_best_validated_epoch() {
    let set = clusters(60, 5, 24, 0.6, 8);
    let mut c = small_config(Method::SupCon);
    c.contrastive.identities_per_batch = 12;
    c.contrastive.max_epochs = 12;
    c.contrastive.patience = 0;
    c.contrastive.lr = 1e-2;
    let (r, meta) = Reducer::fit(&c, &set, &TrainOptions::default()).expect("fit");
    assert_eq!(meta.trained_stages, 2);
    assert_eq!(r.output_dims(), vec![16, 8]);
    for stage in 0..2 {
        let h: Vec<_> = meta.history.iter().filter(|e| e.stage == stage).collect();
        assert_eq!(h.len(), 13, "epoch 0 (the LDA start) and 12 trained epochs");
        let (start, last) = (h[0].loss, h[12].loss);
        assert!(last < 0.9 * start, "head {stage}: loss {start} → {last}");
        assert!(h.iter().all(|e| e.val_loss.is_some_and(f64::is_finite) && e.val_rank1.is_some()));
    }
    // The kept head of each dimension is the epoch of lowest validation loss: its loss on the
    // validation rows, recomputed from the returned reducer, is that minimum.
    let split = c.split(&set);
    let groups: Vec<usize> = split.validation_labels.iter().map(|&l| l as usize).collect();
    for (stage, k) in [16usize, 8].into_iter().enumerate() {
        let y = r.project(&split.validation, k).expect("project");
        let rows = groups.len();
        let z = burn::tensor::Tensor::<2>::from_data(
            burn::tensor::TensorData::new(y, [rows, k]),
            &burn::tensor::Device::flex(),
        );
        let kept = f64::from(
            dimred::loss::supervised_contrastive_loss(z, &groups, c.contrastive.temperature).into_scalar::<f32>(),
        );
        let best =
            meta.history.iter().filter(|e| e.stage == stage).filter_map(|e| e.val_loss).fold(f64::INFINITY, f64::min);
        assert!((kept - best).abs() < 1e-4, "{k}-D: kept head's validation loss {kept}, best epoch's {best}");
    }
}

#[test]
fn deepmds_stops_when_validation_stops_improving_or_the_budget_is_spent() {
    // Well-separated identities: validation rank-1 reaches its ceiling within a few epochs.
    let set = clusters(40, 4, 24, 0.1, 9);
    let mut c = small_config(Method::DeepMds);
    c.model.stages = vec![12];
    c.train.epochs = 40;
    c.train.steps_per_epoch = 4;
    c.train.patience = 2;
    let (_, meta) = Reducer::fit(&c, &set, &TrainOptions::default()).expect("fit");
    let n = meta.history.len();
    assert!((3..40).contains(&n), "{n} epochs: patience 2 should stop well before 40");
    // It stopped because the last two validations did not beat the best one before them.
    let before = meta.history[..n - 2].iter().filter_map(|e| e.val_rank1).fold(0.0, f64::max);
    let tail = &meta.history[n - 2..];
    assert!(tail.iter().all(|e| e.val_rank1.is_some_and(|r| r <= before)), "stopped after two epochs without a gain");
    // A budget already spent: every stage trains one epoch, then stops.
    c.train.patience = 0;
    c.train.time_budget_s = 1e-9;
    c.model.stages = vec![16, 8];
    let (r, meta) = Reducer::fit(&c, &set, &TrainOptions::default()).expect("fit");
    assert_eq!(meta.history.iter().map(|e| (e.stage, e.epoch)).collect::<Vec<_>>(), vec![(0, 0), (1, 0)]);
    assert_eq!(r.output_dims(), vec![16, 8]);
}

#[test]
fn every_method_fits_projects_unit_norm_and_round_trips() {
    let set = clusters(30, 4, 24, 0.3, 2);
    for method in Method::ALL {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = small_config(method);
        let opts = TrainOptions { out_dir: Some(dir.path().to_path_buf()), ..Default::default() };
        let (r, _) = Reducer::fit(&c, &set, &opts).expect("fit");
        assert_eq!(r.method(), method);
        for k in [16, 8] {
            let y = r.project(&set.data, k).expect("project");
            assert_eq!(y.len(), set.len() * k);
            for row in y.chunks(k) {
                let n: f32 = row.iter().map(|v| v * v).sum();
                assert!((n - 1.0).abs() < 1e-4, "{method} {k}-D norm² {n}");
            }
        }
        if !method.is_deep() {
            // Fresh fit saved explicitly for linear methods too (fit already wrote it).
            assert!(dir.path().join("linear.json").is_file());
        }
        let (back, cfg, meta) = Reducer::load(dir.path(), None).expect("load");
        assert_eq!(cfg.train.method, method);
        assert_eq!(meta.input_dim, 24);
        for k in [16, 8] {
            assert_eq!(r.project(&set.data, k).expect("a"), back.project(&set.data, k).expect("b"), "{method} {k}");
        }
        assert!(matches!(r.project(&set.data, 5).err(), Some(Error::OutputDim { .. })) || !method.is_deep());
    }
}

#[test]
fn project_file_keeps_columns_and_rejects_the_wrong_dimension() {
    let set = clusters(10, 3, 24, 0.2, 3);
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.parquet");
    write_set(&input, &set).expect("write");
    let c = small_config(Method::Pca);
    let (r, _) = Reducer::fit(&c, &set, &TrainOptions::default()).expect("fit");
    let out = dir.path().join("out.parquet");
    let stats = project_file(&r, &input, &out, Some(8)).expect("project");
    assert_eq!(stats.rows, set.len());
    let back = read_set(&out).expect("read");
    assert_eq!(back.dim, 8);
    assert_eq!(back.ids, set.ids);
    assert_eq!(back.labels, set.labels);
    assert_eq!(back.data, r.project(&set.data, 8).expect("project"));

    let other = clusters(10, 3, 20, 0.2, 4);
    let wrong = dir.path().join("wrong.parquet");
    write_set(&wrong, &other).expect("write");
    let e = project_file(&r, &wrong, &dir.path().join("x.parquet"), Some(8)).expect_err("wrong dim");
    assert!(matches!(e, Error::InputDim { expected: 24, found: 20, .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("wrong.parquet") && msg.contains("24") && msg.contains("20"), "{msg}");
}

#[test]
fn resume_continues_after_the_trained_stages() {
    let set = clusters(30, 4, 24, 0.3, 5);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = small_config(Method::DeepMds);
    c.model.stages = vec![16];
    let opts = TrainOptions { out_dir: Some(dir.path().to_path_buf()), ..Default::default() };
    let (r1, _) = Reducer::fit(&c, &set, &opts).expect("fit 1");
    let y1 = r1.project(&set.data, 16).expect("y1");
    // Same model dir, two stages now? No: a different model is refused...
    c.model.stages = vec![16, 8];
    let resume = TrainOptions { resume: true, ..opts.clone() };
    assert!(Reducer::fit(&c, &set, &resume).is_err());
    // ...while the same model resumes with nothing left to do and keeps its weights.
    c.model.stages = vec![16];
    let (r2, meta) = Reducer::fit(&c, &set, &resume).expect("fit 2");
    assert_eq!(meta.trained_stages, 1);
    assert_eq!(r2.project(&set.data, 16).expect("y2"), y1);
}

#[test]
fn an_unfrozen_stage_trains_end_to_end_and_keeps_earlier_outputs() {
    let set = clusters(30, 4, 24, 0.3, 6);
    let mut c = small_config(Method::DeepMdsRank);
    c.train.stage_freeze = vec![true, false];
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = TrainOptions { out_dir: Some(dir.path().to_path_buf()), ..Default::default() };
    let (r, meta) = Reducer::fit(&c, &set, &opts).expect("fit");
    assert_eq!(meta.trained_stages, 2);
    assert_eq!(r.output_dims(), vec![16, 8]);
    let (back, _, _) = Reducer::load(dir.path(), None).expect("load");
    assert_eq!(r.project(&set.data, 16).expect("a"), back.project(&set.data, 16).expect("b"));
}

#[test]
fn shipped_configs_parse() {
    // Read when the test runs (cargo sets it), not baked in at build time: a build directory
    // shared between clones must not point the test at another clone.
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    let root = std::path::PathBuf::from(dir).join("../../configs");
    for name in ["bible-minilm.toml", "arcface-megaface.toml", "deepprint-fingerprint.toml", "imagenet.toml"] {
        let c = Config::from_file(root.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(c.train.method.is_deep(), "{name}");
    }
}

#[test]
fn wgpu_backend_runs_or_says_why_not() {
    if !dimred::wgpu_available() {
        eprintln!(
            "skipped: no wgpu adapter (build with --features wgpu and install a Vulkan driver, e.g. mesa lavapipe)"
        );
        let e = dimred::device(dimred::Backend::Wgpu);
        assert!(cfg!(feature = "wgpu") || e.is_err());
        return;
    }
    let set = clusters(20, 4, 24, 0.3, 7);
    let mut c = small_config(Method::DeepMdsPlusPlus);
    c.train.backend = dimred::Backend::Wgpu;
    c.train.epochs = 1;
    let (r, meta) = Reducer::fit(&c, &set, &TrainOptions::default()).expect("fit on wgpu");
    assert!(meta.history.iter().all(|e| e.loss.is_finite()));
    assert_eq!(r.project(&set.data, 8).expect("project").len(), set.len() * 8);
}
