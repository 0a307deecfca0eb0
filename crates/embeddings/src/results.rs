//! Search-result files: one row per (probe, rank) with columns `probe_id` (utf8), `rank`
//! (uint32, 1-based), `gallery_id` (utf8), `score` (int64, the decrypted integer score) and
//! `similarity` (float64, the score divided by `s²`). Parquet, or CSV when the file name ends in
//! `.csv`; both load in pandas, pyarrow and polars. They live beside the embedding-set I/O so
//! that the search path needs no evaluation crate.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, UInt32Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::atomic::write_atomic_with;
use crate::{Error, Match, Result};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("probe_id", DataType::Utf8, false),
        Field::new("rank", DataType::UInt32, false),
        Field::new("gallery_id", DataType::Utf8, false),
        Field::new("score", DataType::Int64, false),
        Field::new("similarity", DataType::Float64, false),
    ]))
}

fn is_csv(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

fn to_batch(path: &Path, matches: &[Match]) -> Result<RecordBatch> {
    let rank = matches
        .iter()
        .map(|m| u32::try_from(m.rank))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| Error::Invalid(format!("{}: a rank does not fit 32 bits", path.display())))?;
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(matches.iter().map(|m| m.probe_id.as_str()))),
        Arc::new(UInt32Array::from(rank)),
        Arc::new(StringArray::from_iter_values(matches.iter().map(|m| m.gallery_id.as_str()))),
        Arc::new(Int64Array::from_iter_values(matches.iter().map(|m| m.score))),
        Arc::new(Float64Array::from_iter_values(matches.iter().map(|m| m.similarity))),
    ];
    RecordBatch::try_new(schema(), cols).map_err(|error| Error::Arrow { path: path.to_path_buf(), error })
}

/// Writes search results to `path` atomically: parquet, or CSV for a `.csv` name.
pub fn write_matches(path: &Path, matches: &[Match]) -> Result<()> {
    let batch = to_batch(path, matches)?;
    let mut failure = None;
    let written = write_atomic_with(path, false, |file| {
        let done = if is_csv(path) {
            arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut *file)
                .write(&batch)
                .map_err(|error| Error::Arrow { path: path.to_path_buf(), error })
        } else {
            ArrowWriter::try_new(&mut *file, schema(), None)
                .and_then(|mut w| {
                    w.write(&batch)?;
                    w.close().map(|_| ())
                })
                .map_err(|error| Error::Parquet { path: path.to_path_buf(), error })
        };
        match done {
            Ok(()) => file.flush(),
            Err(e) => {
                failure = Some(e);
                Err(std::io::Error::other("encoding failed"))
            }
        }
    });
    match (failure, written) {
        (Some(e), _) => Err(e),
        (None, Err(e)) => Err(Error::io(path, e)),
        (None, Ok(())) => Ok(()),
    }
}

/// A column of `batch` named `name`, cast to `to`.
fn column(path: &Path, batch: &RecordBatch, name: &'static str, to: &DataType) -> Result<ArrayRef> {
    let col = batch.column_by_name(name).ok_or_else(|| Error::MissingColumn {
        path: path.to_path_buf(),
        column: name,
        found: batch.schema().fields().iter().map(|f| f.name().clone()).collect::<Vec<_>>().join(", "),
    })?;
    cast(col, to).map_err(|error| Error::Arrow { path: path.to_path_buf(), error })
}

fn from_batch(path: &Path, batch: &RecordBatch, out: &mut Vec<Match>) -> Result<()> {
    let probe = column(path, batch, "probe_id", &DataType::Utf8)?;
    let rank = column(path, batch, "rank", &DataType::Int64)?;
    let gallery = column(path, batch, "gallery_id", &DataType::Utf8)?;
    let score = column(path, batch, "score", &DataType::Int64)?;
    let sim = column(path, batch, "similarity", &DataType::Float64)?;
    let downcast_err = || Error::Invalid(format!("{}: unexpected column types", path.display()));
    let probe = probe.as_any().downcast_ref::<StringArray>().ok_or_else(downcast_err)?;
    let gallery = gallery.as_any().downcast_ref::<StringArray>().ok_or_else(downcast_err)?;
    let rank = rank.as_any().downcast_ref::<Int64Array>().ok_or_else(downcast_err)?;
    let score = score.as_any().downcast_ref::<Int64Array>().ok_or_else(downcast_err)?;
    let sim = sim.as_any().downcast_ref::<Float64Array>().ok_or_else(downcast_err)?;
    for i in 0..batch.num_rows() {
        let row = out.len();
        let null = [probe.is_null(i), rank.is_null(i), gallery.is_null(i), score.is_null(i), sim.is_null(i)];
        if null.iter().any(|&n| n) || rank.value(i) < 1 {
            return Err(Error::Invalid(format!(
                "{}: row {row} has an empty field or a rank below 1; every row needs probe_id, rank, gallery_id, score, similarity",
                path.display()
            )));
        }
        out.push(Match {
            probe_id: probe.value(i).to_string(),
            rank: rank.value(i) as usize,
            gallery_id: gallery.value(i).to_string(),
            score: score.value(i),
            similarity: sim.value(i),
        });
    }
    Ok(())
}

/// Reads results written by [`write_matches`] (or by any tool, with those five columns):
/// parquet, or CSV for a `.csv` name.
pub fn read_matches(path: &Path) -> Result<Vec<Match>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut out = Vec::new();
    if is_csv(path) {
        let reader = arrow::csv::ReaderBuilder::new(schema())
            .with_header(true)
            .build(file)
            .map_err(|error| Error::Arrow { path: path.to_path_buf(), error })?;
        for batch in reader {
            from_batch(path, &batch.map_err(|error| Error::Arrow { path: path.to_path_buf(), error })?, &mut out)?;
        }
    } else {
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.build())
            .map_err(|error| Error::Parquet { path: path.to_path_buf(), error })?;
        for batch in reader {
            from_batch(path, &batch.map_err(|error| Error::Arrow { path: path.to_path_buf(), error })?, &mut out)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Match> {
        (0..5)
            .map(|i| Match {
                probe_id: format!("p{}", i / 2),
                rank: i % 2 + 1,
                gallery_id: format!("g,{i}"),
                score: 1000 - 7 * i as i64,
                similarity: (1000 - 7 * i) as f64 / 15625.0,
            })
            .collect()
    }

    #[test]
    fn parquet_and_csv_round_trip() {
        let dir = tempfile::tempdir().expect("dir");
        for name in ["r.parquet", "r.csv", "R.CSV"] {
            let path = dir.path().join(name);
            write_matches(&path, &sample()).expect("write");
            assert_eq!(read_matches(&path).expect("read"), sample(), "{name}");
        }
    }

    #[test]
    fn a_results_file_without_a_column_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("bad.csv");
        std::fs::write(&path, "probe_id,rank\np,1\n").expect("write");
        let err = read_matches(&path).expect_err("missing columns");
        assert!(err.to_string().contains("bad.csv"), "{err}");
    }
}
