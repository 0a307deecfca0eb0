//! The resumable cell store: a sweep's run folder holds the resolved `config.toml`, one JSON
//! file per finished cell under `cells/`, and `DONE` once tables and plots are written. A run
//! of the same config that finds an unfinished folder resumes there, skipping finished cells.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Result;
use crate::atomic::write_atomic;
use crate::config::{Mode, SweepConfig};
use crate::error::io;

/// One row of the results: a cell of the sweep and what it measured.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CellResult {
    /// Dataset name.
    pub dataset: String,
    /// Reduction method.
    pub method: String,
    /// Dimension searched.
    pub dim: usize,
    /// How the gallery was searched (written as `plaintext`, `encrypted` or `two-stage`).
    pub mode: Mode,
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

/// Marker file of a finished run.
const DONE_FILE: &str = "DONE";
/// The resolved config, compared to decide whether a folder can be resumed.
const CONFIG_FILE: &str = "config.toml";

/// A sweep's run folder `<out_dir>/<name>/<timestamp>/` and its finished cells.
pub(crate) struct RunFolder {
    dir: PathBuf,
    cells: PathBuf,
}

impl RunFolder {
    /// The newest unfinished run of this exact config, or a new folder named by the UTC start
    /// time (`YYYYMMDD-HHMMSS`, so names sort by age; `-2`, `-3`, … for runs in the same second).
    pub(crate) fn open(config: &SweepConfig) -> Result<Self> {
        let root = config.out_dir.join(&config.name);
        std::fs::create_dir_all(&root).map_err(|e| io(&root, e))?;
        let resolved = toml::to_string_pretty(config)?;
        let mut runs: Vec<PathBuf> = std::fs::read_dir(&root)
            .map_err(|e| io(&root, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        runs.sort();
        let resumable = runs.last().filter(|last| {
            let same = std::fs::read_to_string(last.join(CONFIG_FILE)).is_ok_and(|t| t == resolved);
            same && !last.join(DONE_FILE).exists()
        });
        let dir = match resumable {
            Some(last) => last.clone(),
            None => {
                let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string();
                let mut dir = root.join(&stamp);
                let mut n = 1;
                while dir.exists() {
                    n += 1;
                    dir = root.join(format!("{stamp}-{n}"));
                }
                std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
                write_atomic(&dir.join(CONFIG_FILE), resolved.as_bytes())?;
                dir
            }
        };
        let cells = dir.join("cells");
        std::fs::create_dir_all(&cells).map_err(|e| io(&cells, e))?;
        Ok(RunFolder { dir, cells })
    }

    /// The run folder.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The result of cell `key` if an earlier run finished it (an unreadable file counts as
    /// unfinished: the cell is computed again).
    pub(crate) fn load(&self, key: &str) -> Option<CellResult> {
        let text = std::fs::read_to_string(self.cell_file(key)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Saves the result of cell `key`, atomically, so a killed run never leaves a half cell.
    pub(crate) fn save(&self, key: &str, result: &CellResult) -> Result<()> {
        write_atomic(&self.cell_file(key), serde_json::to_string_pretty(result)?.as_bytes())
    }

    /// Marks the run finished: a later run of the same config starts a new folder.
    pub(crate) fn finish(&self) -> Result<()> {
        write_atomic(&self.dir.join(DONE_FILE), b"")
    }

    fn cell_file(&self, key: &str) -> PathBuf {
        self.cells.join(format!("{key}.json"))
    }
}
