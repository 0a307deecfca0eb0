//! The plan of a sweep: its cells, datasets × methods × dimensions × gallery sizes × modes, in
//! the order they run, each with the key its result is stored under.

use crate::config::{Mode, SweepConfig};

/// The method name that keeps the input dimension (no reduction).
pub(crate) const NO_REDUCTION: &str = "none";

/// One cell of the plan.
#[derive(Debug, Clone)]
pub(crate) struct Cell {
    /// Dataset name.
    pub(crate) dataset: String,
    /// Reduction method (`none` or a dimred method).
    pub(crate) method: String,
    /// Dimension searched (`None`: the input dimension, for `none`).
    pub(crate) dim: Option<usize>,
    /// Gallery size (`None`: the dataset's own gallery).
    pub(crate) gallery: Option<usize>,
    /// How the gallery is searched.
    pub(crate) mode: Mode,
}

impl Cell {
    /// The cell's name in the run folder (`synth_pca_8_own_plaintext`).
    pub(crate) fn key(&self) -> String {
        let dim = self.dim.map_or("full".to_string(), |d| d.to_string());
        let g = self.gallery.map_or("own".to_string(), |g| g.to_string());
        format!("{}_{}_{}_{}_{}", self.dataset, self.method.replace('+', "p"), dim, g, self.mode)
    }
}

/// Every cell of the sweep, in run order (encrypted modes only up to `max_encrypted_dim`).
pub(crate) fn plan(config: &SweepConfig) -> Vec<Cell> {
    let galleries: Vec<Option<usize>> = if config.gallery_sizes.is_empty() {
        vec![None]
    } else {
        config.gallery_sizes.iter().map(|&g| Some(g)).collect()
    };
    let mut cells = Vec::new();
    for d in &config.datasets {
        for m in &config.methods {
            let dims: Vec<Option<usize>> =
                if m == NO_REDUCTION { vec![None] } else { config.dims.iter().map(|&d| Some(d)).collect() };
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

/// Re-exported for tests: the plan's cell keys in order.
#[doc(hidden)]
pub fn plan_keys(config: &SweepConfig) -> Vec<String> {
    plan(config).iter().map(Cell::key).collect()
}
