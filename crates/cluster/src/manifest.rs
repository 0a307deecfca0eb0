//! The cluster manifest (`cluster.json`): which shard gallery holds which segments.
//!
//! Each shard is an ordinary gallery directory (its own `manifest.json`, segments, hot-form
//! cache): a shard can be served alone by `hers serve`, checked by `hers gallery check`, and
//! grows by its own enrolments. The global id → shard map is those shard manifests' segments
//! (each segment carries its ids): a cluster process reads its shard's ids at start-up and the
//! front door keeps the map, so it never goes stale the way a copy written here would.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// File name of the cluster manifest.
pub const CLUSTER_FILE: &str = "cluster.json";

/// One shard: its gallery directory and the segments it was split with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// Directory of the shard's gallery, relative to the cluster directory.
    pub dir: String,
    /// Segment files it received from the split gallery (later enrolments add their own).
    pub segments: Vec<String>,
    /// Live templates when split.
    pub templates: usize,
    /// The source gallery's chunks it holds, in global slot order (its slots are these chunks'
    /// slots); absent in manifests written before chunk-level splits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks: Option<std::ops::Range<usize>>,
}

/// The cluster manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterManifest {
    /// Format version.
    pub format: u32,
    /// The gallery the shards were split from.
    pub source: String,
    /// Shards in global slot order: shard `i`'s chunks follow shard `i - 1`'s.
    pub shards: Vec<ShardEntry>,
}

impl ClusterManifest {
    /// Reads `dir/cluster.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(CLUSTER_FILE);
        let text = std::fs::read(&path).map_err(|e| {
            Error::Config(format!(
                "{}: {e}; make a cluster directory with `hers cluster split --gallery G --shards N --out {}`",
                path.display(),
                dir.display()
            ))
        })?;
        let m: Self = serde_json::from_slice(&text)
            .map_err(|e| Error::Config(format!("{}: not a cluster manifest: {e}", path.display())))?;
        if m.format != 1 || m.shards.is_empty() {
            return Err(Error::Config(format!(
                "{}: format {} with {} shards (this build reads format 1, at least one shard)",
                path.display(),
                m.format,
                m.shards.len()
            )));
        }
        Ok(m)
    }

    /// The gallery directory of shard `i`.
    pub fn shard_dir(&self, root: &Path, i: usize) -> PathBuf {
        root.join(&self.shards[i].dir)
    }
}
