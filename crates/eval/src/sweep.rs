//! Running a sweep: the loop over the plan's cells, each cell run (project, split, search in
//! its mode, measure) and saved as soon as it is done in the resumable run folder, then the
//! tables and plots of the whole sweep.

use std::path::PathBuf;
use std::time::Instant;

use embeddings::l2_normalize_rows;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cells::{CellResult, RunFolder};
use crate::config::{Mode, SweepConfig};
use crate::dataset::Dataset;
use crate::encrypted::encrypted_scores;
use crate::metrics::{retrieval, score_all};
use crate::models::ModelCache;
use crate::plan::{Cell, NO_REDUCTION, plan};
use crate::search::PlainGallery;
use crate::twostage::two_stage_scores;
use crate::{Error, Result, split_one_probe_per_identity};

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
    let folder = RunFolder::open(config)?;
    let plan = plan(config);
    let bar = if progress { ProgressBar::new(plan.len() as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{msg:>30} [{elapsed_precise}] {wide_bar} {pos}/{len}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut results = Vec::new();
    let mut computed = 0;
    let mut current: Option<(String, Dataset)> = None;
    let mut models = ModelCache::default();
    for cell in &plan {
        let key = cell.key();
        bar.set_message(key.clone());
        if let Some(r) = folder.load(&key) {
            results.push(r);
            bar.inc(1);
            continue;
        }
        let data = match current {
            Some((ref name, ref data)) if *name == cell.dataset => data,
            _ => {
                let ds = config
                    .datasets
                    .iter()
                    .find(|d| d.name == cell.dataset)
                    .ok_or_else(|| Error::Config(format!("dataset `{}` is not in the config", cell.dataset)))?;
                &current.insert((cell.dataset.clone(), Dataset::load(ds)?)).1
            }
        };
        let r = run_cell(config, cell, data, &mut models, &bar)?;
        folder.save(&key, &r)?;
        results.push(r);
        computed += 1;
        bar.inc(1);
    }
    bar.finish_and_clear();
    crate::table::write_results(folder.dir(), &results)?;
    crate::plot::write_plots(folder.dir(), &results)?;
    folder.finish()?;
    Ok(SweepOutput { dir: folder.dir().to_path_buf(), results, computed })
}

/// Runs one cell: projects the set, draws the probes, searches in the cell's mode, measures.
fn run_cell(
    config: &SweepConfig,
    cell: &Cell,
    data: &Dataset,
    models: &mut ModelCache,
    bar: &ProgressBar,
) -> Result<CellResult> {
    let set = data.with_gallery_size(cell.gallery)?;
    if cell.mode != Mode::Plaintext && cell.dim.unwrap_or(set.dim) > config.max_encrypted_dim {
        return Err(Error::Config(format!("encrypted cell {} above max_encrypted_dim", cell.key())));
    }
    let (projected, dim, train_s) = if cell.method == NO_REDUCTION {
        (set.data.clone(), set.dim, 0.0)
    } else {
        let (reducer, train_s) = models.get(config, &cell.method, &cell.dataset, data, bar)?;
        let dim = cell.dim.unwrap_or_else(|| reducer.default_dim());
        (reducer.project(&set.data, dim)?, dim, train_s)
    };
    let mut projected = projected;
    l2_normalize_rows(&mut projected, dim);
    let split = split_one_probe_per_identity(&set.labels, config.seed)?;
    let ((g, gl), (mut p, mut pl)) = split.parts(&projected, &set.labels, dim);
    let mut r = CellResult {
        dataset: cell.dataset.clone(),
        method: cell.method.clone(),
        dim,
        mode: cell.mode,
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
        bar.set_message(format!("{} ({})", cell.key(), cell.mode));
    }
    let (ident, ver) = match cell.mode {
        Mode::Plaintext => {
            let gallery = PlainGallery { data: &g, dim };
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
