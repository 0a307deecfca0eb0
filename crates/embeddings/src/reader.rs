//! Streaming reader for embedding-set parquet files, validating as it goes.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float32Type, Int64Type};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use crate::{EmbeddingSet, Error, Ids, Result};

/// Rows per streamed batch: large enough to amortise per-batch work, small enough that a
/// 1536-D batch stays a few hundred MB.
const BATCH_ROWS: usize = 32 * 1024;

/// Reads an embedding set batch by batch, so files larger than memory can be processed.
///
/// Every batch is validated (nulls, embedding length, NaN/inf) and ids are checked for
/// uniqueness across the whole file. Columns other than `id`, `label` and `embedding` are kept
/// in [`EmbeddingSet::extra`].
pub struct EmbeddingReader {
    path: PathBuf,
    inner: ParquetRecordBatchReader,
    dim: Option<usize>,
    num_rows: usize,
    row: usize,
    seen_int: HashMap<i64, usize>,
    seen_str: HashMap<String, usize>,
    pending: Option<EmbeddingSet>,
}

impl EmbeddingReader {
    /// Opens `path` and checks its schema; the first batch is read to learn the dimension
    /// when the embedding column is a variable-length list.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|error| Error::Parquet { path: path.clone(), error })?;
        let num_rows = builder.metadata().file_metadata().num_rows().max(0) as usize;
        let schema = builder.schema().clone();
        let found = schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ");
        let mut dim = None;
        for column in ["id", "label", "embedding"] {
            let field = schema.field_with_name(column).map_err(|_| Error::MissingColumn {
                path: path.clone(),
                column,
                found: found.clone(),
            })?;
            check_type(&path, column, field.data_type())?;
            if let DataType::FixedSizeList(_, n) = field.data_type() {
                dim = Some(*n as usize);
            }
        }
        if num_rows == 0 {
            return Err(Error::Empty { path });
        }
        let inner = builder
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(|error| Error::Parquet { path: path.clone(), error })?;
        let mut reader = EmbeddingReader {
            path,
            inner,
            dim,
            num_rows,
            row: 0,
            seen_int: HashMap::new(),
            seen_str: HashMap::new(),
            pending: None,
        };
        if reader.dim.is_none() {
            reader.pending = reader.next_batch()?;
        }
        Ok(reader)
    }

    /// The embedding dimension of the file.
    pub fn dim(&self) -> usize {
        self.dim.unwrap_or(0)
    }

    /// Number of rows the file's footer declares.
    pub fn num_rows(&self) -> usize {
        self.num_rows
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn next_batch(&mut self) -> Result<Option<EmbeddingSet>> {
        if let Some(p) = self.pending.take() {
            return Ok(Some(p));
        }
        let batch = match self.inner.next() {
            None => {
                if self.row == 0 {
                    return Err(Error::Empty { path: self.path.clone() });
                }
                return Ok(None);
            }
            Some(b) => b.map_err(|error| Error::Arrow { path: self.path.clone(), error })?,
        };
        let set = self.convert(&batch)?;
        self.row += set.len();
        Ok(Some(set))
    }

    fn convert(&mut self, batch: &RecordBatch) -> Result<EmbeddingSet> {
        let path = &self.path;
        let base = self.row;
        let n = batch.num_rows();
        let col = |name: &str| batch.column_by_name(name).cloned();
        // Columns were checked in `open`, so these lookups succeed.
        let (Some(id_col), Some(label_col), Some(emb_col)) = (col("id"), col("label"), col("embedding")) else {
            return Err(Error::Invalid(format!("{}: schema changed while reading", path.display())));
        };
        for (name, c) in [("id", &id_col), ("label", &label_col), ("embedding", &emb_col)] {
            if c.null_count() > 0 {
                let row = (0..n).find(|&i| c.is_null(i)).unwrap_or(0);
                let column = match name {
                    "id" => "id",
                    "label" => "label",
                    _ => "embedding",
                };
                return Err(Error::Null { path: path.clone(), row: base + row, column });
            }
        }

        let ids = match id_col.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                let s = arrow::compute::cast(&id_col, &DataType::Utf8)
                    .map_err(|error| Error::Arrow { path: path.clone(), error })?;
                Ids::Str(s.as_string::<i32>().iter().map(|v| v.unwrap_or_default().to_string()).collect())
            }
            _ => Ids::Int(cast_i64(path, &id_col)?),
        };
        let labels = cast_i64(path, &label_col)?;

        let (values, offsets): (ArrayRef, Vec<usize>) = match emb_col.data_type() {
            DataType::FixedSizeList(_, k) => {
                let l = emb_col.as_fixed_size_list();
                let k = *k as usize;
                let start = l.offset() * k;
                (l.values().slice(start, n * k), (0..=n).map(|i| i * k).collect())
            }
            DataType::List(_) => {
                let l = emb_col.as_list::<i32>();
                let o = l.value_offsets();
                let first = o[0] as usize;
                let offs: Vec<usize> = o.iter().map(|&x| x as usize - first).collect();
                (l.values().slice(first, offs[n]), offs)
            }
            _ => {
                let l = emb_col.as_list::<i64>();
                let o = l.value_offsets();
                let first = o[0] as usize;
                let offs: Vec<usize> = o.iter().map(|&x| x as usize - first).collect();
                (l.values().slice(first, offs[n]), offs)
            }
        };
        let values = arrow::compute::cast(&values, &DataType::Float32)
            .map_err(|error| Error::Arrow { path: path.clone(), error })?;
        let values = values.as_primitive::<Float32Type>();

        let dim = *self.dim.get_or_insert(offsets[1] - offsets[0]);
        for i in 0..n {
            let len = offsets[i + 1] - offsets[i];
            if len != dim {
                return Err(Error::WrongLength {
                    path: path.clone(),
                    row: base + i,
                    id: ids.display(i),
                    len,
                    expected: dim,
                });
            }
        }
        if values.null_count() > 0 {
            let v = (0..values.len()).find(|&i| values.is_null(i)).unwrap_or(0);
            return Err(Error::NonFinite {
                path: path.clone(),
                row: base + v / dim,
                id: ids.display(v / dim),
                dim: v % dim,
                value: "null".into(),
            });
        }
        let data: Vec<f32> = values.values().to_vec();
        if let Some(v) = data.iter().position(|x| !x.is_finite()) {
            return Err(Error::NonFinite {
                path: path.clone(),
                row: base + v / dim,
                id: ids.display(v / dim),
                dim: v % dim,
                value: data[v].to_string(),
            });
        }
        self.check_unique(&ids)?;

        let schema = batch.schema();
        let extra = schema
            .fields()
            .iter()
            .zip(batch.columns())
            .filter(|(f, _)| !matches!(f.name().as_str(), "id" | "label" | "embedding"))
            .map(|(f, c)| (f.clone(), c.clone()))
            .collect();
        Ok(EmbeddingSet { ids, labels, dim, data, extra })
    }

    fn check_unique(&mut self, ids: &Ids) -> Result<()> {
        let base = self.row;
        let dup = |id: String, first_row: usize, i: usize| Error::DuplicateId {
            path: self.path.clone(),
            id,
            first_row,
            row: base + i,
        };
        match ids {
            Ids::Int(v) => {
                for (i, &x) in v.iter().enumerate() {
                    if let Some(&f) = self.seen_int.get(&x) {
                        return Err(dup(x.to_string(), f, i));
                    }
                    self.seen_int.insert(x, base + i);
                }
            }
            Ids::Str(v) => {
                for (i, x) in v.iter().enumerate() {
                    if x.is_empty() {
                        return Err(Error::Null { path: self.path.clone(), row: base + i, column: "id" });
                    }
                    if let Some(&f) = self.seen_str.get(x) {
                        return Err(dup(x.clone(), f, i));
                    }
                    self.seen_str.insert(x.clone(), base + i);
                }
            }
        }
        Ok(())
    }
}

impl Iterator for EmbeddingReader {
    type Item = Result<EmbeddingSet>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch().transpose()
    }
}

/// Reads a whole embedding set into memory, validated.
pub fn read_set(path: impl AsRef<Path>) -> Result<EmbeddingSet> {
    let mut reader = EmbeddingReader::open(path)?;
    let mut set: Option<EmbeddingSet> = None;
    while let Some(batch) = reader.next_batch()? {
        match set.as_mut() {
            None => set = Some(batch),
            Some(s) => s.append(&batch)?,
        }
    }
    set.ok_or_else(|| Error::Empty { path: reader.path.clone() })
}

fn cast_i64(path: &Path, col: &ArrayRef) -> Result<Vec<i64>> {
    let c = arrow::compute::cast(col, &DataType::Int64)
        .map_err(|error| Error::Arrow { path: path.to_path_buf(), error })?;
    Ok(c.as_primitive::<Int64Type>().values().to_vec())
}

fn check_type(path: &Path, column: &'static str, t: &DataType) -> Result<()> {
    let ok = match column {
        "id" => t.is_integer() || matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View),
        "label" => t.is_integer(),
        _ => match t {
            DataType::FixedSizeList(f, _) | DataType::List(f) | DataType::LargeList(f) => {
                matches!(f.data_type(), DataType::Float32 | DataType::Float64 | DataType::Float16)
            }
            _ => false,
        },
    };
    if ok {
        return Ok(());
    }
    let expected = match column {
        "id" => "int64 or utf8",
        "label" => "an integer type (int64)",
        _ => "FixedSizeList<float32> or List<float32>",
    };
    Err(Error::WrongType { path: path.to_path_buf(), column, found: t.to_string(), expected })
}
