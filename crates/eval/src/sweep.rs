//! Running a sweep: every cell of datasets × methods × dimensions × gallery sizes × modes,
//! each cell's result saved as soon as it is done so an interrupted sweep resumes where it
//! stopped, and trained models cached by the hash of their config.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use dimred::{Config as TrainConfig, Method, Reducer, TrainOptions};
use embeddings::l2_normalize_rows;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{Mode, SweepConfig};
use crate::dataset::Dataset;
use crate::encrypted::encrypted_scores;
use crate::metrics::{retrieval, score_all};
use crate::search::Gallery;
use crate::twostage::two_stage_scores;
use crate::{Error, Result, split_one_probe_per_identity};

/// One row of the results: a cell of the sweep and what it measured.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CellResult {
    /// Dataset name.
    pub dataset: String,
    /// Reduction method.
    pub method: String,
    /// Dimension searched.
    pub dim: usize,
    /// `plaintext` or `encrypted`.
    pub mode: String,
    /// Gallery templates.
    pub gallery: usize,
    /// Probes.
    pub probes: usize,
    /// Rank-1 accuracy.
    pub rank1: f64,
    /// Rank-5 accuracy.
    pub rank5: f64,
    /// Rank-10 accuracy.
    pub rank10: f64,
    /// TAR at FAR = 1e-3 (NaN: too few impostor pairs).
    #[serde(deserialize_with = "nan_from_null")]
    pub tar_far_1e3: f64,
    /// Precision@10 over same-class items (retrieval setups; NaN otherwise).
    #[serde(deserialize_with = "nan_from_null")]
    pub precision_at_10: f64,
    /// Mean average precision over same-class items (retrieval setups; NaN otherwise).
    #[serde(deserialize_with = "nan_from_null")]
    pub map: f64,
    /// Training time of the method, s (0 for `none`, cached models report their first fit).
    pub train_s: f64,
    /// Per-query search time, ms: plaintext brute force, or encrypt + score + decrypt.
    pub query_ms: f64,
    /// Encrypted: server scoring per query, ms.
    pub score_ms: f64,
    /// Encrypted: HERS algorithm per query at the same parameters, ms (measured on a subset
    /// of chunks and scaled).
    pub hers_query_ms: f64,
    /// Encrypted: HERS-algorithm time / our scoring time.
    pub speedup_vs_hers: f64,
    /// Encrypted: decrypted scores equal the integer inner products of the quantised vectors.
    pub exact: bool,
    /// CMC, ranks 1..=20.
    pub cmc: Vec<f64>,
}

/// JSON has no NaN: serde_json writes it as `null`, read back here as NaN.
fn nan_from_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// What a finished sweep produced.
pub struct SweepOutput {
    /// The run folder.
    pub dir: PathBuf,
    /// Every cell, in sweep order.
    pub results: Vec<CellResult>,
    /// Cells computed in this run (the rest were loaded from an interrupted run).
    pub computed: usize,
}

/// Runs (or resumes) a sweep, writing everything under `<out_dir>/<name>/<timestamp>/`.
pub fn run_sweep(config: &SweepConfig, progress: bool) -> Result<SweepOutput> {
    let dir = run_dir(config)?;
    let cells_dir = dir.join("cells");
    std::fs::create_dir_all(&cells_dir).map_err(|e| io(&cells_dir, e))?;
    let plan = plan(config);
    let bar = if progress { ProgressBar::new(plan.len() as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{msg:>30} [{elapsed_precise}] {wide_bar} {pos}/{len}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut results = Vec::new();
    let mut computed = 0;
    let mut current: Option<(String, Dataset)> = None;
    let mut models: BTreeMap<String, (Reducer, f64)> = BTreeMap::new();
    for cell in &plan {
        bar.set_message(cell.key());
        let file = cells_dir.join(format!("{}.json", cell.key()));
        if let Ok(text) = std::fs::read_to_string(&file)
            && let Ok(r) = serde_json::from_str::<CellResult>(&text)
        {
            results.push(r);
            bar.inc(1);
            continue;
        }
        if current.as_ref().map(|(n, _)| n != &cell.dataset).unwrap_or(true) {
            let ds = config
                .datasets
                .iter()
                .find(|d| d.name == cell.dataset)
                .ok_or_else(|| Error::Config("dataset vanished".into()))?;
            current = Some((cell.dataset.clone(), Dataset::load(ds)?));
            models.clear();
        }
        let Some((_, data)) = current.as_ref() else { unreachable!("loaded above") };
        let r = run_cell(config, cell, data, &mut models, &bar)?;
        write_atomic(&file, serde_json::to_string_pretty(&r).map_err(|e| Error::Config(e.to_string()))?.as_bytes())?;
        results.push(r);
        computed += 1;
        bar.inc(1);
    }
    bar.finish_and_clear();
    crate::table::write_results(&dir, &results)?;
    crate::plot::write_plots(&dir, &results)?;
    std::fs::write(dir.join("DONE"), b"").map_err(|e| io(&dir, e))?;
    Ok(SweepOutput { dir, results, computed })
}

/// One cell of the plan.
#[derive(Debug, Clone)]
struct Cell {
    dataset: String,
    method: String,
    dim: Option<usize>,
    gallery: Option<usize>,
    mode: Mode,
}

impl Cell {
    fn key(&self) -> String {
        let dim = self.dim.map_or("full".to_string(), |d| d.to_string());
        let g = self.gallery.map_or("own".to_string(), |g| g.to_string());
        format!("{}_{}_{}_{}_{}", self.dataset, self.method.replace('+', "p"), dim, g, self.mode.name())
    }
}

fn plan(config: &SweepConfig) -> Vec<Cell> {
    let galleries: Vec<Option<usize>> = if config.gallery_sizes.is_empty() {
        vec![None]
    } else {
        config.gallery_sizes.iter().map(|&g| Some(g)).collect()
    };
    let mut cells = Vec::new();
    for d in &config.datasets {
        for m in &config.methods {
            let dims: Vec<Option<usize>> =
                if m == "none" { vec![None] } else { config.dims.iter().map(|&d| Some(d)).collect() };
            for dim in &dims {
                for g in &galleries {
                    for mode in &config.modes {
                        let too_wide = dim.is_none_or(|d| d > config.max_encrypted_dim);
                        if *mode != Mode::Plaintext && too_wide {
                            continue;
                        }
                        cells.push(Cell {
                            dataset: d.name.clone(),
                            method: m.clone(),
                            dim: *dim,
                            gallery: *g,
                            mode: *mode,
                        });
                    }
                }
            }
        }
    }
    cells
}

/// The run folder: the newest unfinished run of this exact config, or a new timestamped one.
fn run_dir(config: &SweepConfig) -> Result<PathBuf> {
    let root = config.out_dir.join(&config.name);
    std::fs::create_dir_all(&root).map_err(|e| io(&root, e))?;
    let resolved = toml::to_string_pretty(config).map_err(|e| Error::Config(e.to_string()))?;
    let mut runs: Vec<PathBuf> = std::fs::read_dir(&root)
        .map_err(|e| io(&root, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    runs.sort();
    if let Some(last) = runs.last() {
        let same = std::fs::read_to_string(last.join("config.toml")).map(|t| t == resolved).unwrap_or(false);
        if same && !last.join("DONE").exists() {
            return Ok(last.clone());
        }
    }
    // Two runs started in the same second get `-2`, `-3`, … rather than sharing a folder.
    let stamp = timestamp();
    let mut dir = root.join(&stamp);
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = root.join(format!("{stamp}-{n}"));
    }
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    write_atomic(&dir.join("config.toml"), resolved.as_bytes())?;
    Ok(dir)
}

fn run_cell(
    config: &SweepConfig,
    cell: &Cell,
    data: &Dataset,
    models: &mut BTreeMap<String, (Reducer, f64)>,
    bar: &ProgressBar,
) -> Result<CellResult> {
    let set = data.with_gallery_size(cell.gallery)?;
    if cell.mode != Mode::Plaintext && cell.dim.unwrap_or(set.dim) > config.max_encrypted_dim {
        return Err(Error::Config(format!("encrypted cell {} above max_encrypted_dim", cell.key())));
    }
    let (projected, dim, train_s) = if cell.method == "none" {
        (set.data.clone(), set.dim, 0.0)
    } else {
        if !models.contains_key(&cell.method) {
            let fitted = fit_cached(config, &cell.method, &cell.dataset, data, bar)?;
            models.insert(cell.method.clone(), fitted);
        }
        let (reducer, train_s) = &models[&cell.method];
        let dim = cell.dim.unwrap_or_else(|| reducer.default_dim());
        let p = reducer.project(&set.data, dim).map_err(|e| Error::Reduction(e.to_string()))?;
        (p, dim, *train_s)
    };
    let mut projected = projected;
    l2_normalize_rows(&mut projected, dim);
    let split = split_one_probe_per_identity(&set.labels, config.seed)?;
    let ((g, gl), (mut p, mut pl)) = split.parts(&projected, &set.labels, dim);
    let mut r = CellResult {
        dataset: cell.dataset.clone(),
        method: cell.method.clone(),
        dim,
        mode: cell.mode.name().into(),
        gallery: gl.len(),
        probes: pl.len(),
        rank1: 0.0,
        rank5: 0.0,
        rank10: 0.0,
        tar_far_1e3: f64::NAN,
        precision_at_10: f64::NAN,
        map: f64::NAN,
        train_s,
        query_ms: 0.0,
        score_ms: 0.0,
        hers_query_ms: 0.0,
        speedup_vs_hers: 0.0,
        exact: true,
        cmc: vec![],
    };
    if cell.mode != Mode::Plaintext {
        // Encrypted search costs one query per probe: search the first probes only.
        let n = pl.len().min(config.max_encrypted_probes);
        p.truncate(n * dim);
        pl.truncate(n);
        r.probes = n;
        bar.set_message(format!("{} ({})", cell.key(), cell.mode.name()));
    }
    let (ident, ver) = match cell.mode {
        Mode::Plaintext => {
            let gallery = Gallery { data: &g, dim };
            let t = Instant::now();
            let _ = crate::top_k(gallery, &p, 10);
            r.query_ms = t.elapsed().as_secs_f64() * 1e3 / pl.len().max(1) as f64;
            if config.retrieval {
                let (prec, map) = retrieval(gallery, &gl, &p, &pl, 10);
                r.precision_at_10 = prec;
                r.map = map;
            }
            score_all(gallery, &gl, &p, &pl, 20, &[1e-3])
        }
        Mode::Encrypted => {
            let run = encrypted_scores(&g, &p, dim, config.hers_chunks, config.seed)?;
            r.query_ms = run.encrypt_ms + run.score_ms + run.decrypt_ms;
            r.score_ms = run.score_ms;
            r.hers_query_ms = run.hers_score_ms;
            r.speedup_vs_hers = if run.score_ms > 0.0 { run.hers_score_ms / run.score_ms } else { 0.0 };
            r.exact = run.exact;
            crate::metrics::from_score_rows(&run.scores, &gl, &pl, 20, &[1e-3])
        }
        Mode::TwoStage => {
            let mut full = set.data.clone();
            l2_normalize_rows(&mut full, set.dim);
            let ((fg, _), (mut fp, _)) = split.parts(&full, &set.labels, set.dim);
            fp.truncate(pl.len() * set.dim);
            let run =
                two_stage_scores(&g, &p, dim, &fg, &fp, set.dim, config.candidates, config.hers_chunks, config.seed)?;
            let c = &run.coarse;
            r.query_ms = c.encrypt_ms
                + c.score_ms
                + c.decrypt_ms
                + run.fine_encrypt_ms
                + run.fine_score_ms
                + run.fine_decrypt_ms;
            r.score_ms = c.score_ms + run.fine_score_ms;
            r.hers_query_ms = c.hers_score_ms;
            r.speedup_vs_hers = if r.score_ms > 0.0 { c.hers_score_ms / r.score_ms } else { 0.0 };
            r.exact = run.exact;
            crate::metrics::from_score_rows(&run.scores, &gl, &pl, 20, &[1e-3])
        }
    };
    r.rank1 = ident.rank(1);
    r.rank5 = ident.rank(5);
    r.rank10 = ident.rank(10);
    // Two-stage scores mix two scales (a ranking, not a similarity): no verification rate.
    r.tar_far_1e3 = if cell.mode == Mode::TwoStage { f64::NAN } else { ver.tar_at_far[0].1.unwrap_or(f64::NAN) };
    r.cmc = ident.cmc;
    Ok(r)
}

/// Fits (or loads from the cache) the reducer of `method` on the dataset's training set.
fn fit_cached(
    config: &SweepConfig,
    method: &str,
    dataset: &str,
    data: &Dataset,
    bar: &ProgressBar,
) -> Result<(Reducer, f64)> {
    let train = data
        .train
        .as_ref()
        .ok_or_else(|| Error::Config(format!("dataset `{dataset}` has no training set for `{method}`")))?;
    let mut tc = match &config.training {
        Some(p) => TrainConfig::from_file(p).map_err(|e| Error::Reduction(e.to_string()))?,
        None => TrainConfig::default(),
    };
    tc.train.method = method.parse::<Method>().map_err(|e| Error::Reduction(e.to_string()))?;
    if let Some(e) = config.epochs {
        tc.train.epochs = e;
        tc.train.stage_epochs.clear();
    }
    if let Some(s) = config.steps_per_epoch {
        tc.train.steps_per_epoch = s;
    }
    adapt_stages(&mut tc, train.dim, &config.dims);
    let key = {
        let mut h = Sha256::new();
        h.update(toml::to_string(&tc).map_err(|e| Error::Config(e.to_string()))?);
        h.update(format!(
            "{dataset}:{}:{}:{}",
            train.len(),
            train.dim,
            train.data.iter().take(64).map(|x| x.to_bits() as u64).sum::<u64>()
        ));
        format!("{:x}", h.finalize())[..16].to_string()
    };
    let dir = config.out_dir.join("models").join(format!("{dataset}-{}-{key}", method.replace('+', "p")));
    if let Ok((reducer, _, meta)) = Reducer::load(&dir, None)
        && meta.complete()
    {
        return Ok((reducer, meta.train_seconds));
    }
    bar.set_message(format!("training {method} on {dataset}"));
    let t = Instant::now();
    let options = TrainOptions { out_dir: Some(dir.clone()), resume: true, progress: false };
    let (reducer, meta) = Reducer::fit(&tc, train, &options).map_err(|e| Error::Reduction(e.to_string()))?;
    reducer.save(&dir, &tc, &meta).map_err(|e| Error::Reduction(e.to_string()))?;
    Ok((reducer, t.elapsed().as_secs_f64()))
}

/// Makes the stage chain of the training config (output dimensions of each stage) fit the
/// dataset's input dimension and reach every dimension of the sweep: when it does not, the
/// chain halves from the input down to the smallest dimension, as the paper's chains do.
fn adapt_stages(tc: &mut TrainConfig, input: usize, dims: &[usize]) {
    let stages = &tc.model.stages;
    let fits = stages.first().is_some_and(|&s| s < input) && dims.iter().all(|d| stages.contains(d));
    if fits {
        return;
    }
    let smallest = dims.iter().copied().min().unwrap_or(16);
    let mut stages = Vec::new();
    let mut d = input;
    while d / 2 >= smallest {
        d /= 2;
        stages.push(d);
    }
    for &want in dims {
        if want < input && !stages.contains(&want) {
            stages.push(want);
        }
    }
    stages.sort_unstable_by(|a, b| b.cmp(a));
    stages.dedup();
    tc.model.stages = stages;
}

fn timestamp() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}-{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

pub(crate) fn io(path: &Path, e: std::io::Error) -> Error {
    Error::Config(format!("{}: {e}", path.display()))
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a killed sweep never
/// leaves a half-written cell that would be taken for a finished one.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))
}

/// Re-exported for tests: the plan's cell keys in order.
#[doc(hidden)]
pub fn plan_keys(config: &SweepConfig) -> Vec<String> {
    plan(config).iter().map(Cell::key).collect()
}
