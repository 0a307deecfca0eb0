//! Progressive training of the DeepMDS chain: stage by stage, each restored and (optionally)
//! frozen before the next is trained; Adam with a step-decay schedule; validation on held-out
//! training identities after every epoch; the best epoch of each stage is kept. With
//! `train.patience` a stage stops once validation stops improving, and `train.time_budget_s`
//! caps the whole run (trained to convergence within a stated budget, as the sweeps do).

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use embeddings::EmbeddingSet;
use indicatif::{ProgressBar, ProgressStyle};

use crate::data::{Pair, PairSampler, TrainValidation, gather_pairs, pair_cosines};
use crate::loss::{covariance_penalty, distance_loss, pair_cosine, ranking_loss};
use crate::metrics::{rank1, tar_at_far};
use crate::mining::select_hard;
use crate::model::{DeepMds, Stage, tensor_to_vec};
use crate::modeldir::{self, EpochRecord, FORMAT_VERSION, ModelMeta};
use crate::{Config, Error, Result, backend};

/// Where and how to train.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Model directory to checkpoint into after every stage (and write at the end).
    pub out_dir: Option<PathBuf>,
    /// Continue from the stages already trained in `out_dir`.
    pub resume: bool,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// Most validation rows used for TAR@FAR (it is quadratic in the rows).
const MAX_TAR_ROWS: usize = 2000;

/// Trains the learned method of `config` on `set` (labels = identities). Returns the trained
/// chain (on the training device) and its metadata.
pub fn train_deep(config: &Config, set: &EmbeddingSet, options: &TrainOptions) -> Result<(DeepMds, ModelMeta)> {
    config.validate()?;
    let t = &config.train;
    let method = t.method;
    if !method.is_chain() {
        return Err(Error::config("train.method", format!("`{method}` is not a DeepMDS method")));
    }
    let dim = set.dim;
    let stages = &config.model.stages;
    if stages[0] >= dim {
        return Err(Error::config(
            "model.stages",
            format!("first stage ({}) must be below the input dimension {dim}", stages[0]),
        ));
    }
    let device = backend::training_device(t.backend)?;
    let infer = backend::device(t.backend)?;
    device.seed(t.seed);

    // L2-normalised inputs, split by identity.
    let TrainValidation { train: xtr, train_labels: ltr, validation: xva, validation_labels: lva } = config.split(set);
    let mut sampler = PairSampler::new(&ltr, t.seed)?;
    if method.uses_ranking() && sampler.genuine_identities() < t.num_pairs {
        tracing::warn!(
            "only {} training identities for {} genuine pairs per batch: some in-batch negatives share an identity",
            sampler.genuine_identities(),
            t.num_pairs
        );
    }

    let mut meta = ModelMeta {
        format_version: FORMAT_VERSION,
        method,
        input_dim: dim,
        output_dims: stages.clone(),
        hidden_layers: config.model.hidden_layers,
        trained_stages: 0,
        train_seconds: 0.0,
        history: Vec::new(),
    };
    let mut chain = DeepMds { stages: Vec::new() };
    if options.resume
        && let Some(dir) = &options.out_dir
        && dir.join(modeldir::META_FILE).is_file()
    {
        let (old_cfg, old) = modeldir::read_header(dir)?;
        if old.input_dim != dim || old.output_dims != *stages || old.method != method || old_cfg.model != config.model {
            return Err(Error::model(
                dir,
                "cannot resume: the directory holds a different model (method, stages or input dimension)",
            ));
        }
        if old.trained_stages > 0 {
            chain = modeldir::read_weights(dir, &old, old.trained_stages, &device)?.freeze();
        }
        meta = old;
        tracing::info!("resuming after {} trained stage(s)", meta.trained_stages);
    }

    let total_steps: usize = (meta.trained_stages..stages.len()).map(|s| config.epochs_of(s) * t.steps_per_epoch).sum();
    let bar = progress_bar(options.progress, total_steps);
    let start = Instant::now();
    let prior_seconds = meta.train_seconds;
    let n = t.num_pairs;

    for s in meta.trained_stages..stages.len() {
        let budget = StageBudget::new(t.time_budget_s, prior_seconds + start.elapsed().as_secs_f64(), stages.len() - s);
        let mut since_best = 0usize;
        let in_dim = if s == 0 { dim } else { stages[s - 1] };
        let stage = Stage::new(in_dim, stages[s], config.model.hidden_layers, &device);
        // Frozen: earlier stages are applied once, up front, and only the new stage trains.
        let frozen = config.freeze_of(s);
        let (mut net, feats, fdim) = if frozen {
            let feats = chain.valid().project_rows(&xtr, dim, s, t.inference_batch, &infer);
            (DeepMds { stages: vec![stage] }, feats, in_dim)
        } else {
            let mut all = chain.clone().unfreeze();
            all.stages.push(stage);
            (all, xtr.clone(), dim)
        };
        let upto = net.stages.len();
        let mut optim = AdamConfig::new()
            .with_beta_1(t.beta1)
            .with_beta_2(t.beta2)
            .with_epsilon(t.epsilon)
            .with_weight_decay(Some(WeightDecayConfig::new(t.weight_decay)))
            .init();
        let mut best: Option<(f64, DeepMds)> = None;
        let mut step = 0usize;
        let epochs = config.epochs_of(s);
        for epoch in 0..epochs {
            let mut loss_sum = 0.0;
            for _ in 0..t.steps_per_epoch {
                let (gp, ip) = if method.uses_mining() {
                    let keep = config.mining.keep_at(epoch);
                    let c = config.mining.candidates.max(n);
                    let valid = net.valid();
                    let g = mine(&valid, &mut sampler, &feats, fdim, &xtr, dim, upto, &infer, true, c, keep, n);
                    let i = mine(&valid, &mut sampler, &feats, fdim, &xtr, dim, upto, &infer, false, c, keep, n);
                    (g, i)
                } else {
                    (sampler.genuine(n), sampler.impostor(n))
                };
                let mut rows = gather_pairs(&feats, fdim, &gp);
                rows.extend(gather_pairs(&feats, fdim, &ip));
                let batch = Tensor::<2>::from_data(TensorData::new(rows, [4 * n, fdim]), &device);
                let tg = Tensor::<1>::from_data(TensorData::new(pair_cosines(&xtr, dim, &gp), [n]), &device);
                let ti = Tensor::<1>::from_data(TensorData::new(pair_cosines(&xtr, dim, &ip), [n]), &device);
                let outputs = net.forward_all(batch, upto); // each [4n, d_k]
                let last_k = outputs.len() - 1;
                let mut loss = Tensor::<1>::zeros([1], &device);
                for (k, y) in outputs.into_iter().enumerate() {
                    let w = if k == last_k { 1.0 } else { config.loss.earlier_stage_weight };
                    if w != 0.0 {
                        loss = loss + batch_loss(config, y, tg.clone(), ti.clone(), n).mul_scalar(w);
                    }
                }
                loss_sum +=
                    finite_loss(&loss, |v| format!("loss became {v} at stage {s}, epoch {epoch}; lower train.lr"))?;
                let grads = GradientsParams::from_grads(loss.backward(), &net);
                net = optim.step(config.lr_in_stage(s, step), net, grads);
                step += 1;
                bar.inc(1);
            }
            let mean_loss = loss_sum / t.steps_per_epoch as f64;
            let last = epoch + 1 == epochs;
            let (r1, tar) = if !lva.is_empty() && ((epoch + 1) % t.validate_every == 0 || last) {
                let m = net.valid();
                let head = if frozen { chain.valid() } else { DeepMds { stages: Vec::new() } };
                let pre = head.project_rows(&xva, dim, head.stages.len(), t.inference_batch, &infer);
                let pdim = if frozen { in_dim } else { dim };
                let y = m.project_rows(&pre, pdim, upto, t.inference_batch, &infer);
                let k = stages[s];
                let rows = lva.len().min(MAX_TAR_ROWS);
                (Some(rank1(&y, k, &lva, t.seed)), Some(tar_at_far(&y[..rows * k], k, &lva[..rows], 1e-3)))
            } else {
                (None, None)
            };
            bar.set_message(format!(
                "stage {}/{} ({}→{}) epoch {}/{} loss {mean_loss:.4}{}",
                s + 1,
                stages.len(),
                in_dim,
                stages[s],
                epoch + 1,
                epochs,
                r1.map(|r| format!(" val rank-1 {r:.3}")).unwrap_or_default()
            ));
            tracing::info!(
                stage = s + 1,
                epoch = epoch + 1,
                loss = mean_loss,
                val_rank1 = r1.unwrap_or(f64::NAN),
                val_tar = tar.unwrap_or(f64::NAN),
                elapsed_s = prior_seconds + start.elapsed().as_secs_f64(),
                "epoch done"
            );
            meta.history.push(EpochRecord {
                stage: s,
                epoch,
                loss: mean_loss,
                lr: config.lr_in_stage(s, step.saturating_sub(1)),
                val_rank1: r1,
                val_loss: None,
                val_tar: tar,
                elapsed_s: prior_seconds + start.elapsed().as_secs_f64(),
            });
            // Best checkpoint: highest validation rank-1 (the last epoch without validation).
            let score = r1.unwrap_or(f64::NEG_INFINITY);
            let improved = r1.is_some() && best.as_ref().is_none_or(|(b, _)| score > *b);
            if improved || last && (lva.is_empty() || best.is_none()) {
                best = Some((score, net.clone()));
            }
            if improved {
                since_best = 0;
            } else if r1.is_some() {
                since_best += 1;
            }
            let out_of_time = budget.spent();
            if !last && (t.patience > 0 && since_best >= t.patience || out_of_time) {
                if best.is_none() {
                    best = Some((score, net.clone()));
                }
                tracing::info!(stage = s + 1, epoch = epoch + 1, "{}", stop_reason(out_of_time));
                bar.inc(((epochs - epoch - 1) * t.steps_per_epoch) as u64);
                break;
            }
        }
        let trained = best.map(|(_, m)| m).unwrap_or(net);
        chain = if frozen {
            let mut c = chain;
            c.stages.extend(trained.stages);
            c.freeze()
        } else {
            trained.freeze()
        };
        meta.trained_stages = s + 1;
        meta.train_seconds = prior_seconds + start.elapsed().as_secs_f64();
        if let Some(dir) = &options.out_dir {
            modeldir::write_header(dir, config, &meta)?;
            modeldir::write_weights(dir, &chain)?;
        }
    }
    bar.finish_and_clear();
    Ok((chain, meta))
}

/// One stage's (or contrastive head's) share of `train.time_budget_s`: what is left of the
/// budget, split equally among the stages still to train, counted from its creation.
pub(crate) struct StageBudget {
    start: Instant,
    share: Option<f64>,
}

impl StageBudget {
    /// The share of `budget_s` (0: no limit) once `spent_s` are gone, for `remaining` stages.
    pub(crate) fn new(budget_s: f64, spent_s: f64, remaining: usize) -> Self {
        let share = (budget_s > 0.0).then(|| (budget_s - spent_s).max(0.0) / remaining.max(1) as f64);
        Self { start: Instant::now(), share }
    }

    /// True once the share is used up.
    pub(crate) fn spent(&self) -> bool {
        self.share.is_some_and(|b| self.start.elapsed().as_secs_f64() >= b)
    }
}

/// The value of a training step's loss, refused as [`Error::Numerical`] (with `message(value)`,
/// which says where and what to lower) when it is not finite: the run diverged.
pub(crate) fn finite_loss(loss: &Tensor<1>, message: impl FnOnce(f64) -> String) -> Result<f64> {
    let value = f64::from(loss.clone().into_scalar::<f32>());
    if value.is_finite() { Ok(value) } else { Err(Error::Numerical(message(value))) }
}

/// Why a stage stopped before its last epoch, for the log.
pub(crate) fn stop_reason(out_of_time: bool) -> &'static str {
    if out_of_time { "time budget spent: stopping" } else { "validation stopped improving: stopping" }
}

/// The training progress bar on stderr (hidden unless `show`), `steps` long.
pub(crate) fn progress_bar(show: bool, steps: usize) -> ProgressBar {
    let bar = if show { ProgressBar::new(steps as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// The loss of the method on one output `y: [4n, d]` laid out as genuine firsts, genuine
/// seconds, impostor firsts, impostor seconds; `tg`, `ti`: the input cosines of the pairs.
fn batch_loss(config: &Config, y: Tensor<2>, tg: Tensor<1>, ti: Tensor<1>, n: usize) -> Tensor<1> {
    let method = config.train.method;
    let l = &config.loss;
    let (ga, gb) = (y.clone().narrow(0, 0, n), y.clone().narrow(0, n, n));
    let (ia, ib) = (y.clone().narrow(0, 2 * n, n), y.clone().narrow(0, 3 * n, n));
    let mut loss = distance_loss(
        pair_cosine(ga.clone(), gb.clone()),
        tg,
        pair_cosine(ia, ib),
        ti,
        l.kind,
        l.genuine_weight,
        l.impostor_weight,
    );
    if method.uses_covariance() && l.covariance_weight != 0.0 {
        loss = loss + covariance_penalty(y, l.covariance_weight);
    }
    if method.uses_ranking() && l.ranking_weight != 0.0 {
        loss = loss + ranking_loss(ga, gb, l.ranking_temperature).mul_scalar(l.ranking_weight);
    }
    loss
}

/// Draws `candidates` pairs of one kind, ranks them by |s − ŝ| under the current network and
/// keeps the `keep` worst plus random others, `n` in all.
#[allow(clippy::too_many_arguments)]
fn mine(
    net: &DeepMds,
    sampler: &mut PairSampler,
    feats: &[f32],
    fdim: usize,
    x: &[f32],
    dim: usize,
    upto: usize,
    device: &Device,
    genuine: bool,
    candidates: usize,
    keep: usize,
    n: usize,
) -> Vec<Pair> {
    let cand = if genuine { sampler.genuine(candidates) } else { sampler.impostor(candidates) };
    let c = cand.len();
    let rows = gather_pairs(feats, fdim, &cand);
    let y = net.forward_to(Tensor::<2>::from_data(TensorData::new(rows, [2 * c, fdim]), device), upto);
    let pred = tensor_to_vec(pair_cosine(y.clone().narrow(0, 0, c), y.narrow(0, c, c)));
    let target = pair_cosines(x, dim, &cand);
    let errors: Vec<f32> = pred.iter().zip(&target).map(|(p, t)| (p - t).abs()).collect();
    select_hard(&errors, keep, n, sampler.rng()).into_iter().map(|i| cand[i]).collect()
}
