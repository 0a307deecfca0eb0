//! The gallery's manifest (`manifest.json`): what was enrolled with which key, how it is
//! packed, and the committed segments. A segment file that the manifest does not list (left by
//! a crash before the manifest was written) is ignored.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::keys::PublicParams;
use crate::pack::Layout;
use crate::quantize::{Metric, Quantizer};
use crate::seal::Seal;

/// File name of the manifest.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Format version written into new manifests.
pub(crate) const FORMAT: u32 = 1;

/// One committed segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentEntry {
    /// File name inside the gallery directory.
    pub file: String,
    /// Chunks in the segment.
    pub chunks: usize,
    /// Templates (used slots) in the segment.
    pub templates: usize,
    /// File size in bytes.
    pub bytes: u64,
    /// CRC-32 of the whole file.
    pub crc32: u32,
    /// Fingerprint of the input its rows were enrolled from (absent when not recorded), so a
    /// rerun of an interrupted enrolment can tell its own rows from other inputs'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// The gallery's manifest (`manifest.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version.
    pub format: u32,
    /// Public parameters and key id of the key that encrypted every segment.
    pub public: PublicParams,
    /// Template dimension d (the packed rows are `d`, or `d + 2` for the Euclidean metric).
    pub dim: usize,
    /// Quantisation scale.
    pub scale: u32,
    /// Matching function.
    pub metric: Metric,
    /// How templates are packed (absent in older manifests: dimension-wise).
    #[serde(default)]
    pub layout: Layout,
    /// Committed segments, in slot order.
    pub segments: Vec<SegmentEntry>,
    /// Tombstoned ids.
    pub removed: BTreeSet<String>,
    /// Number used for the next segment file name.
    pub next_segment: u64,
    /// The key holder's seal of the committed state (absent until a key holder's first write).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<Seal>,
}

impl Manifest {
    /// Parses and checks the bytes of a `manifest.json` (`path` names it in errors).
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Self> {
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|source| Error::Json { path: path.to_path_buf(), source })?;
        if m.format != FORMAT {
            return Err(Error::malformed("manifest", format!("format {} (expected {FORMAT})", m.format)));
        }
        m.public.params.validate()?;
        if m.dim == 0 {
            return Err(Error::malformed("manifest", "dimension 0"));
        }
        if m.metric == Metric::Cosine {
            m.public.params.check_capacity(m.dim, m.scale)?;
        }
        if m.templates_per_chunk() == 0 {
            return Err(Error::malformed("manifest", "a chunk cannot hold one template"));
        }
        Ok(m)
    }

    /// The quantiser the gallery was enrolled with.
    pub fn quantizer(&self) -> Quantizer {
        Quantizer {
            dim: self.dim,
            scale: self.scale,
            metric: self.metric,
            max_abs_score: self.public.params.max_abs_score(),
        }
    }

    /// Templates per chunk under this manifest's layout.
    pub fn templates_per_chunk(&self) -> usize {
        self.layout.templates_per_chunk(self.public.params.degree, self.quantizer().rows())
    }

    /// Ciphertexts per chunk under this manifest's layout.
    pub fn cts_per_chunk(&self) -> usize {
        self.layout.cts_per_chunk(self.quantizer().rows())
    }
}
