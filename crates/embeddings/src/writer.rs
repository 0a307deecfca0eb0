//! Atomic parquet writer for embedding sets.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, FixedSizeListArray, Float32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use tempfile::NamedTempFile;

use crate::{EmbeddingSet, Error, Ids, Result};

/// Writes an embedding set batch by batch (one row group per batch).
///
/// Data goes to a temporary file beside the target; only [`EmbeddingWriter::finish`] fsyncs
/// it and renames it to the final name, so a failed or interrupted write never leaves a
/// half-written file under that name (the temporary is removed on drop). Embeddings are
/// written as `FixedSizeList<Float32>`, ids as int64 or utf8, labels as int64.
pub struct EmbeddingWriter {
    path: PathBuf,
    dim: usize,
    writer: Option<(ArrowWriter<std::fs::File>, SchemaRef, NamedTempFile)>,
    rows: usize,
}

impl EmbeddingWriter {
    /// Prepares to write `dim`-dimensional embeddings to `path`; nothing appears at `path`
    /// before `finish`.
    pub fn create(path: impl AsRef<Path>, dim: usize) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if dim == 0 {
            return Err(Error::Invalid("embedding dimension must be at least 1".into()));
        }
        Ok(EmbeddingWriter { path, dim, writer: None, rows: 0 })
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Appends one batch; the first batch fixes the id kind and the extra columns.
    pub fn write(&mut self, set: &EmbeddingSet) -> Result<()> {
        if set.dim != self.dim {
            return Err(Error::Invalid(format!(
                "{}: writing dimension {} rows into a dimension {} file",
                self.path.display(),
                set.dim,
                self.dim
            )));
        }
        if set.is_empty() {
            return Ok(());
        }
        if self.writer.is_none() {
            self.writer = Some(self.open(set)?);
        }
        let Some((writer, schema, _)) = self.writer.as_mut() else { unreachable!("opened above") };
        let batch = to_batch(schema.clone(), set).map_err(|error| Error::Arrow { path: self.path.clone(), error })?;
        writer.write(&batch).map_err(|error| Error::Parquet { path: self.path.clone(), error })?;
        // One row group per batch keeps memory bounded when streaming.
        writer.flush().map_err(|error| Error::Parquet { path: self.path.clone(), error })?;
        self.rows += set.len();
        Ok(())
    }

    fn open(&self, first: &EmbeddingSet) -> Result<(ArrowWriter<std::fs::File>, SchemaRef, NamedTempFile)> {
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut builder = tempfile::Builder::new();
        builder.prefix(".hers-tmp-").suffix(".parquet");
        // Temporary files are private (0600) by default; a data file is not a secret.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o644));
        }
        let tmp = builder.tempfile_in(&dir).map_err(|e| Error::io(&dir, e))?;
        let id_type = match first.ids {
            Ids::Int(_) => DataType::Int64,
            Ids::Str(_) => DataType::Utf8,
        };
        let mut fields = vec![
            Arc::new(Field::new("id", id_type, false)),
            Arc::new(Field::new("label", DataType::Int64, false)),
            Arc::new(Field::new(
                "embedding",
                DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Float32, true)), self.dim as i32),
                false,
            )),
        ];
        fields.extend(first.extra.iter().map(|(f, _)| f.clone()));
        let schema = Arc::new(Schema::new(fields));
        let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
        let file = tmp.as_file().try_clone().map_err(|e| Error::io(tmp.path(), e))?;
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))
            .map_err(|error| Error::Parquet { path: self.path.clone(), error })?;
        Ok((writer, schema, tmp))
    }

    /// Writes the footer, fsyncs and renames the file into place. An empty writer is an error:
    /// an embedding set must hold at least one row.
    pub fn finish(mut self) -> Result<usize> {
        let Some((writer, _, tmp)) = self.writer.take() else {
            return Err(Error::Empty { path: self.path.clone() });
        };
        writer.close().map_err(|error| Error::Parquet { path: self.path.clone(), error })?;
        tmp.as_file().sync_all().map_err(|e| Error::io(&self.path, e))?;
        tmp.persist(&self.path).map_err(|e| Error::io(&self.path, e.error))?;
        if let Some(dir) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            crate::atomic::sync_dir(dir);
        }
        Ok(self.rows)
    }
}

fn to_batch(schema: SchemaRef, set: &EmbeddingSet) -> arrow::error::Result<RecordBatch> {
    let ids: ArrayRef = match &set.ids {
        Ids::Int(v) => Arc::new(Int64Array::from(v.clone())),
        Ids::Str(v) => Arc::new(StringArray::from_iter_values(v)),
    };
    let labels: ArrayRef = Arc::new(Int64Array::from(set.labels.clone()));
    let item = Arc::new(Field::new("item", DataType::Float32, true));
    let values = Arc::new(Float32Array::from(set.data.clone()));
    let emb: ArrayRef = Arc::new(FixedSizeListArray::try_new(item, set.dim as i32, values, None)?);
    let mut cols = vec![ids, labels, emb];
    cols.extend(set.extra.iter().map(|(_, a)| a.clone()));
    RecordBatch::try_new(schema, cols)
}

/// Writes a whole set to `path` atomically (see [`EmbeddingWriter`]).
pub fn write_set(path: impl AsRef<Path>, set: &EmbeddingSet) -> Result<()> {
    let mut w = EmbeddingWriter::create(path, set.dim)?;
    w.write(set)?;
    w.finish()?;
    Ok(())
}
