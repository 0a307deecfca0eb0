//! Training of the contrastive method (`supcon`): for each output dimension, a head started
//! from the fitted linear map (LDA by default) and fine-tuned with the supervised contrastive
//! loss over identity-balanced P × K batches; AdamW with a cosine learning-rate decay;
//! validation on held-out training identities after every epoch, the epoch of lowest
//! validation loss kept (the starting map counts as epoch 0, so a head never ends worse than the
//! linear projection on validation), and early stopping after `patience` epochs without a
//! better one or when the head's share of `train.time_budget_s` is spent.

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use embeddings::EmbeddingSet;

use crate::data::{IdentityBatcher, TrainValidation};
use crate::head::{Head, Heads, project_with};
use crate::linear::{fit_lda, fit_pca};
use crate::loss::supervised_contrastive_loss;
use crate::metrics::rank1;
use crate::modeldir::{self, EpochRecord, FORMAT_VERSION, ModelMeta};
use crate::training::{StageBudget, TrainOptions, finite_loss, progress_bar, stop_reason};
use crate::{Config, Error, HeadInit, Method, Result, backend};

/// Trains the heads of `config` (`train.method = "supcon"`, one per `model.stages` entry) on
/// `set`. With `options.out_dir` the model is written after every head, and `options.resume`
/// keeps the heads already trained there.
pub fn train_contrastive(config: &Config, set: &EmbeddingSet, options: &TrainOptions) -> Result<(Heads, ModelMeta)> {
    config.validate()?;
    if config.train.method != Method::SupCon {
        return Err(Error::config("train.method", format!("`{}` is not the contrastive method", config.train.method)));
    }
    let c = &config.contrastive;
    let dim = set.dim;
    let dims = &config.model.stages;
    if dims[0] > dim {
        return Err(Error::config(
            "model.stages",
            format!("the largest output dimension ({}) exceeds the input dimension {dim}", dims[0]),
        ));
    }
    let device = backend::training_device(config.train.backend)?;
    let infer = backend::device(config.train.backend)?;
    device.seed(config.train.seed);
    let batch_rows = config.train.inference_batch;

    let TrainValidation { train: xtr, train_labels: ltr, validation: xva, validation_labels: lva } = config.split(set);
    let start = Instant::now();
    // The starting map, fitted on the training identities only (validation stays unseen).
    let k_max = dims[0];
    let linear = match c.init {
        HeadInit::Lda => fit_lda(&xtr, &ltr, dim, k_max, config.linear.shrinkage)?,
        HeadInit::Pca => fit_pca(&xtr, dim, k_max)?,
    };
    let mut batcher = IdentityBatcher::new(&ltr, c.identities_per_batch, c.samples_per_identity, config.train.seed)?;

    let mut meta = ModelMeta {
        format_version: FORMAT_VERSION,
        method: Method::SupCon,
        input_dim: dim,
        output_dims: dims.clone(),
        hidden_layers: 0,
        trained_stages: 0,
        train_seconds: 0.0,
        history: Vec::new(),
    };
    let mut model = Heads { heads: Vec::new() };
    if options.resume
        && let Some(dir) = &options.out_dir
        && dir.join(modeldir::META_FILE).is_file()
    {
        let (old_cfg, old) = modeldir::read_header(dir)?;
        if old.method != Method::SupCon
            || old.input_dim != dim
            || old.output_dims != *dims
            || old_cfg.contrastive != config.contrastive
        {
            return Err(Error::model(dir, "cannot resume: the directory holds a different model"));
        }
        if old.trained_stages > 0 {
            model = modeldir::read_heads(dir, &old_cfg, &old, old.trained_stages, &infer)?;
        }
        meta = old;
        tracing::info!("resuming after {} trained head(s)", meta.trained_stages);
    }
    let prior_seconds = meta.train_seconds;

    let steps_per_epoch = batcher.batches_per_epoch();
    let total_steps = c.max_epochs * steps_per_epoch;
    let bar = progress_bar(options.progress, (dims.len() - meta.trained_stages) * total_steps);
    // Validation: the loss over every held-out identity at once (smooth, so it ranks epochs
    // reliably; rank-1 on a few hundred identities sits near 1 and moves in steps of 1/n), and
    // rank-1 for the record.
    // The loss is over all pairs of rows: at most MAX_LOSS_ROWS rows (whole identities but the
    // last) bound its memory.
    let loss_rows = lva.len().min(MAX_LOSS_ROWS);
    let va_groups: Vec<usize> = lva[..loss_rows].iter().map(|&l| l as usize).collect();
    let validate = |head: &Head, k: usize| -> Option<(f64, f64)> {
        if lva.is_empty() {
            return None;
        }
        let y = project_with(head, &xva, dim, batch_rows, &infer);
        let draws = c.validation_draws as u64;
        let r1 = (0..draws).map(|s| rank1(&y, k, &lva, config.train.seed + s)).sum::<f64>() / draws as f64;
        let z = Tensor::<2>::from_data(TensorData::new(y[..loss_rows * k].to_vec(), [loss_rows, k]), &infer);
        let loss = f64::from(supervised_contrastive_loss(z, &va_groups, c.temperature).into_scalar::<f32>());
        Some((loss, r1))
    };
    for (s, &k) in dims.iter().enumerate().skip(meta.trained_stages) {
        let budget =
            StageBudget::new(config.train.time_budget_s, prior_seconds + start.elapsed().as_secs_f64(), dims.len() - s);
        let mut head = Head::from_projection(&linear, k, c.head, c.mlp_hidden, &xtr, &device);
        let mut optim = AdamWConfig::new().with_weight_decay(c.weight_decay).init();
        // Epoch 0 is the starting map itself (its loss taken on one batch).
        let start_score = validate(&head.valid(), k);
        let start_loss = batcher.clone().epoch().first().map_or(0.0, |batch| {
            let (xb, groups) = gather(batch, &xtr, dim, &infer);
            f64::from(
                supervised_contrastive_loss(head.valid().forward(xb), &groups, c.temperature).into_scalar::<f32>(),
            )
        });
        let elapsed = || prior_seconds + start.elapsed().as_secs_f64();
        meta.history.push(EpochRecord {
            stage: s,
            epoch: 0,
            loss: start_loss,
            lr: 0.0,
            val_rank1: start_score.map(|v| v.1),
            val_loss: start_score.map(|v| v.0),
            val_tar: None,
            elapsed_s: elapsed(),
        });
        let mut best = (start_score.map_or(f64::INFINITY, |v| v.0), head.valid());
        let mut since_best = 0usize;
        let mut step = 0usize;
        for epoch in 1..=c.max_epochs {
            let mut loss_sum = 0.0;
            let batches = batcher.epoch();
            for batch in &batches {
                let (xb, groups) = gather(batch, &xtr, dim, &device);
                let loss = supervised_contrastive_loss(head.forward(xb), &groups, c.temperature);
                loss_sum += finite_loss(&loss, |v| {
                    format!("contrastive loss became {v} at head {k}-D, epoch {epoch}; lower contrastive.lr")
                })?;
                let grads = GradientsParams::from_grads(loss.backward(), &head);
                head = optim.step(config.contrastive_lr_at(step, total_steps), head, grads);
                step += 1;
                bar.inc(1);
            }
            let mean_loss = loss_sum / batches.len().max(1) as f64;
            let score = validate(&head.valid(), k);
            bar.set_message(format!(
                "head {}/{} ({dim}→{k}) epoch {epoch}/{} loss {mean_loss:.4}{}",
                s + 1,
                dims.len(),
                c.max_epochs,
                score.map(|v| format!(" val loss {:.4} rank-1 {:.4}", v.0, v.1)).unwrap_or_default()
            ));
            tracing::info!(
                head = k,
                epoch,
                loss = mean_loss,
                val_loss = score.map_or(f64::NAN, |v| v.0),
                val_rank1 = score.map_or(f64::NAN, |v| v.1),
                "epoch done"
            );
            meta.history.push(EpochRecord {
                stage: s,
                epoch,
                loss: mean_loss,
                lr: config.contrastive_lr_at(step.saturating_sub(1), total_steps),
                val_rank1: score.map(|v| v.1),
                val_loss: score.map(|v| v.0),
                val_tar: None,
                elapsed_s: elapsed(),
            });
            match score.map(|v| v.0) {
                Some(v) if v < best.0 => {
                    best = (v, head.valid());
                    since_best = 0;
                }
                Some(_) => since_best += 1,
                // No validation identities: the last epoch is kept.
                None => best = (f64::INFINITY, head.valid()),
            }
            let out_of_time = budget.spent();
            if c.patience > 0 && since_best >= c.patience || out_of_time {
                tracing::info!(head = k, epoch, "{}", stop_reason(out_of_time));
                bar.inc(((c.max_epochs - epoch) * steps_per_epoch) as u64);
                break;
            }
        }
        model.heads.push(best.1);
        meta.trained_stages = s + 1;
        meta.train_seconds = elapsed();
        if let Some(dir) = &options.out_dir {
            modeldir::write_header(dir, config, &meta)?;
            modeldir::write_weights(dir, &model)?;
        }
    }
    bar.finish_and_clear();
    Ok((model, meta))
}

/// Most validation rows in the validation loss (its logits are rows × rows).
const MAX_LOSS_ROWS: usize = 4096;

/// The rows of one batch as a `[rows, dim]` tensor on `device`, and their identity groups.
fn gather(batch: &[(usize, usize)], x: &[f32], dim: usize, device: &Device) -> (Tensor<2>, Vec<usize>) {
    let mut rows = Vec::with_capacity(batch.len() * dim);
    batch.iter().for_each(|&(r, _)| rows.extend_from_slice(&x[r * dim..(r + 1) * dim]));
    let groups = batch.iter().map(|&(_, g)| g).collect();
    (Tensor::<2>::from_data(TensorData::new(rows, [batch.len(), dim]), device), groups)
}
