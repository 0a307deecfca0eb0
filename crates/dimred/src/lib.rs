//! Dimensionality reduction of embeddings before encrypted search: DeepMDS++ (a chain of
//! residual-MLP stages trained in burn to preserve cosine similarities, with a covariance
//! penalty and hard-pair mining), the PCA / shrinkage-LDA baselines, and `supcon` (heads started
//! from the LDA map and fine-tuned with a supervised contrastive loss; the default), behind one
//! [`Reducer`].
//!
//! ```text
//! Config (TOML) ──► Reducer::fit ──► model directory (config.toml, meta.json, weights)
//!                                         │
//!            embeddings.parquet ──► project_file ──► projected.parquet (16/32/64-D)
//! ```
//!
//! The compute backend (burn's flex CPU backend, or wgpu with the `wgpu` feature) is chosen
//! by [`Backend`] at the entry point only.
//!
//! ```no_run
//! use dimred::{Reducer, project_file};
//!
//! # fn main() -> dimred::Result<()> {
//! // A model folder trained by `hers train` (or Reducer::fit): project a set to 16-D.
//! let (reducer, _config, _meta) = Reducer::load("model".as_ref(), None)?;
//! let stats = project_file(&reducer, "faces.parquet".as_ref(), "faces-16d.parquet".as_ref(), Some(16))?;
//! # let _ = stats;
//! # Ok(())
//! # }
//! ```

mod backend;
mod config;
mod contrastive;
pub mod data;
mod error;
mod fit_or_load;
pub mod head;
mod inference;
mod linalg;
mod linear;
pub mod loss;
pub mod metrics;
pub mod mining;
pub mod model;
mod modeldir;
mod protocol;
mod reducer;
mod training;

pub use backend::{device, training_device, wgpu_available};
pub use config::{
    Backend, Config, ContrastiveConfig, DataConfig, HeadInit, HeadKind, LinearConfig, LossConfig, LossKind, Method,
    MiningConfig, MiningStep, ModelConfig, TrainConfig,
};
pub use contrastive::train_contrastive;
pub use error::{Error, Result};
pub use fit_or_load::{CacheOptions, Fitted, fit_or_load};
pub use inference::{ProjectStats, project_file};
pub use linear::{LinearProjection, fit_lda, fit_pca};
pub use modeldir::{EpochRecord, ModelMeta};
pub use protocol::{Side, Split, split_one_probe_per_identity};
pub use reducer::Reducer;
pub use training::{TrainOptions, train_deep};
