//! Batched, streamed projection of a parquet embedding set, keeping `id`, `label` and every
//! extra column.

use std::path::Path;

use embeddings::{EmbeddingReader, EmbeddingSet, EmbeddingWriter};

use crate::{Error, Reducer, Result};

/// What a projection run did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProjectStats {
    /// Rows written.
    pub rows: usize,
    /// Input dimension.
    pub input_dim: usize,
    /// Output dimension.
    pub output_dim: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Projects every row of `input` to `dim` dimensions (the reducer's smallest when `None`) and
/// writes `output`, batch by batch as the reader streams it.
pub fn project_file(reducer: &Reducer, input: &Path, output: &Path, dim: Option<usize>) -> Result<ProjectStats> {
    let start = std::time::Instant::now();
    let dim = dim.unwrap_or_else(|| reducer.default_dim());
    let reader = EmbeddingReader::open(input)?;
    let found = reader.dim();
    if found != reducer.input_dim() {
        return Err(Error::InputDim { context: input.display().to_string(), expected: reducer.input_dim(), found });
    }
    if !reducer.output_dims().contains(&dim) {
        return Err(Error::OutputDim { requested: dim, available: format!("{:?}", reducer.output_dims()) });
    }
    let mut writer = EmbeddingWriter::create(output, dim)?;
    let mut rows = 0;
    for batch in reader {
        let batch = batch?;
        let data = reducer.project(&batch.data, dim)?;
        rows += batch.len();
        let out = EmbeddingSet { ids: batch.ids, labels: batch.labels, dim, data, extra: batch.extra };
        writer.write(&out)?;
    }
    writer.finish()?;
    Ok(ProjectStats { rows, input_dim: found, output_dim: dim, seconds: start.elapsed().as_secs_f64() })
}
