//! The results of a sweep as tables: `results.parquet` and `results.csv`, the CMC curves in
//! long form (`cmc.csv`), and `summary.md`, a table like the paper's. The frames are built with
//! polars; the parquet file is written with arrow/parquet (the stack the embedding sets use), so
//! the build carries one parquet implementation, not two.

use std::fmt::Write as _;
use std::path::Path;

use polars::prelude::*;

use crate::atomic::write_atomic;
use crate::cells::CellResult;
use crate::config::Mode;
use crate::{Error, Result};

/// The results as a polars frame, one row per cell (CMC curves left out: see `cmc_frame`).
pub fn results_frame(rows: &[CellResult]) -> Result<DataFrame> {
    let s = |f: fn(&CellResult) -> String| rows.iter().map(f).collect::<Vec<_>>();
    let u = |f: fn(&CellResult) -> usize| rows.iter().map(|r| f(r) as u64).collect::<Vec<_>>();
    let x = |f: fn(&CellResult) -> f64| rows.iter().map(f).collect::<Vec<_>>();
    df!(
        "dataset" => s(|r| r.dataset.clone()),
        "method" => s(|r| r.method.clone()),
        "dim" => u(|r| r.dim),
        "mode" => s(|r| r.mode.to_string()),
        "gallery" => u(|r| r.gallery),
        "probes" => u(|r| r.probes),
        "rank1" => x(|r| r.rank1),
        "rank5" => x(|r| r.rank5),
        "rank10" => x(|r| r.rank10),
        "tar_far_1e-3" => x(|r| r.tar_far_1e3),
        "precision_at_10" => x(|r| r.precision_at_10),
        "map" => x(|r| r.map),
        "train_s" => x(|r| r.train_s),
        "query_ms" => x(|r| r.query_ms),
        "score_ms" => x(|r| r.score_ms),
        "hers_query_ms" => x(|r| r.hers_query_ms),
        "speedup_vs_hers" => x(|r| r.speedup_vs_hers),
        "exact" => rows.iter().map(|r| r.exact).collect::<Vec<_>>(),
    )
    .map_err(Error::from)
}

/// CMC curves in long form: one row per cell and rank.
pub fn cmc_frame(rows: &[CellResult]) -> Result<DataFrame> {
    let (mut ds, mut me, mut di, mut mo, mut ga, mut rk, mut acc) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for r in rows {
        for (i, a) in r.cmc.iter().enumerate() {
            ds.push(r.dataset.clone());
            me.push(r.method.clone());
            di.push(r.dim as u64);
            mo.push(r.mode.to_string());
            ga.push(r.gallery as u64);
            rk.push(i as u64 + 1);
            acc.push(*a);
        }
    }
    df!("dataset" => ds, "method" => me, "dim" => di, "mode" => mo, "gallery" => ga, "rank" => rk, "accuracy" => acc)
        .map_err(Error::from)
}

/// Writes `results.parquet`, `results.csv`, `cmc.csv` and `summary.md` into `dir`, each
/// atomically.
pub fn write_results(dir: &Path, rows: &[CellResult]) -> Result<()> {
    let mut df = results_frame(rows)?;
    write_atomic(&dir.join("results.parquet"), &parquet(&df)?)?;
    write_atomic(&dir.join("results.csv"), &csv(&mut df)?)?;
    write_atomic(&dir.join("cmc.csv"), &csv(&mut cmc_frame(rows)?)?)?;
    write_atomic(&dir.join("summary.md"), summary(rows).as_bytes())
}

/// A frame of string, unsigned, float and boolean columns as parquet bytes.
fn parquet(df: &DataFrame) -> Result<Vec<u8>> {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, UInt64Array};
    use arrow::datatypes::{DataType as ArrowType, Field, Schema};

    let table = |e: &dyn std::fmt::Display| Error::Table(e.to_string());
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for col in df.columns() {
        let s = col.as_materialized_series();
        let (ty, array): (ArrowType, ArrayRef) = match s.dtype() {
            DataType::String => (ArrowType::Utf8, {
                let c = s.str()?;
                Arc::new((0..c.len()).map(|i| c.get(i)).collect::<StringArray>())
            }),
            DataType::UInt64 => (ArrowType::UInt64, {
                let c = s.u64()?;
                Arc::new((0..c.len()).map(|i| c.get(i)).collect::<UInt64Array>())
            }),
            DataType::Float64 => (ArrowType::Float64, {
                let c = s.f64()?;
                Arc::new((0..c.len()).map(|i| c.get(i)).collect::<Float64Array>())
            }),
            DataType::Boolean => (ArrowType::Boolean, {
                let c = s.bool()?;
                Arc::new((0..c.len()).map(|i| c.get(i)).collect::<BooleanArray>())
            }),
            other => return Err(table(&format!("column {} of type {other} has no parquet mapping", s.name()))),
        };
        fields.push(Field::new(s.name().as_str(), ty, true));
        arrays.push(array);
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|e| table(&e))?;
    let mut bytes = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut bytes, batch.schema(), None).map_err(|e| table(&e))?;
    w.write(&batch).map_err(|e| table(&e))?;
    w.close().map_err(|e| table(&e))?;
    Ok(bytes)
}

/// A frame as CSV with a header.
fn csv(df: &mut DataFrame) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    CsvWriter::new(&mut bytes).include_header(true).finish(df)?;
    Ok(bytes)
}

/// A markdown table like the paper's: rank-1 (and TAR) per method and dimension, then the
/// encrypted timings. Encrypted cells search at most `max_encrypted_probes` probes, so their
/// rank-1 is over that subset; `exact` says every decrypted score equalled the plaintext
/// integer inner product of the quantised vectors.
pub fn summary(rows: &[CellResult]) -> String {
    let mut s = String::from("# Sweep results\n\n");
    s += "| dataset | method | dim | mode | gallery | probes | rank-1 | rank-10 | TAR@FAR=1e-3 | P@10 | mAP | query (ms) | HERS alg. (ms) | speed-up | exact |\n";
    s += "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    let f = |x: f64, p: usize| if x.is_finite() && x != 0.0 { format!("{x:.p$}") } else { "–".into() };
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {:.4} | {:.4} | {} | {} | {} | {:.3} | {} | {} | {} |",
            r.dataset,
            r.method,
            r.dim,
            r.mode,
            r.gallery,
            r.probes,
            r.rank1,
            r.rank10,
            f(r.tar_far_1e3, 4),
            f(r.precision_at_10, 4),
            f(r.map, 4),
            r.query_ms,
            f(r.hers_query_ms, 1),
            f(r.speedup_vs_hers, 1),
            if r.mode != Mode::Plaintext { if r.exact { "yes" } else { "NO" } } else { "–" },
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parquet_keeps_every_column_and_value() {
        let df = df!(
            "name" => ["a", "b", "c"],
            "n" => [1u64, 2, 3],
            "x" => [0.5f64, -1.0, 2.25],
            "ok" => [true, false, true],
        )
        .expect("frame");
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("t.parquet");
        std::fs::write(&path, parquet(&df).expect("parquet")).expect("write");
        let file = std::fs::File::open(&path).expect("open");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("reader")
            .build()
            .expect("build");
        let batches: Vec<_> = reader.map(|b| b.expect("batch")).collect();
        let batch = &batches[0];
        let names: Vec<String> = batch.schema().fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names, ["name", "n", "x", "ok"]);
        assert_eq!(batch.num_rows(), 3);
        let x = batch.column(2).as_any().downcast_ref::<arrow::array::Float64Array>().expect("f64");
        assert_eq!(x.values().to_vec(), vec![0.5, -1.0, 2.25]);
    }
}
