//! A ranked result of a search: what the key holder's ranking yields and what a results file
//! holds, one per (probe, rank). Always built, also without the `parquet` feature, so that the
//! encrypted search can name its results without linking the file formats.

/// One ranked result of a search.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// Probe id.
    pub probe_id: String,
    /// 1-based rank.
    pub rank: usize,
    /// Gallery id.
    pub gallery_id: String,
    /// Decrypted integer score: inner product (cosine) or squared distance (Euclidean) of the
    /// quantised vectors.
    pub score: i64,
    /// Score divided by `s²`: cosine similarity, or squared distance for the Euclidean metric.
    pub similarity: f64,
}
