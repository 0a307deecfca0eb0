//! The results of a sweep as tables: `results.parquet` and `results.csv` (polars), the CMC
//! curves in long form (`cmc.csv`), and `summary.md`, a table like the paper's.

use std::fmt::Write as _;
use std::path::Path;

use polars::prelude::*;

use crate::atomic::write_atomic;
use crate::cells::CellResult;
use crate::config::Mode;
use crate::{Error, Result};

/// A results-file error as text (for `write_matches` / `read_matches`).
fn table_err(e: impl std::fmt::Display) -> Error {
    Error::Table(e.to_string())
}

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
    let mut bytes = Vec::new();
    ParquetWriter::new(&mut bytes).finish(&mut df)?;
    write_atomic(&dir.join("results.parquet"), &bytes)?;
    write_atomic(&dir.join("results.csv"), &csv(&mut df)?)?;
    write_atomic(&dir.join("cmc.csv"), &csv(&mut cmc_frame(rows)?)?)?;
    write_atomic(&dir.join("summary.md"), summary(rows).as_bytes())
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

/// Writes search results `probe_id, rank, gallery_id, score, similarity` to `path`: parquet,
/// or CSV when the file name ends in `.csv`. Atomic (temporary file, then rename).
pub fn write_matches(path: &Path, matches: &[encsearch::Match]) -> Result<()> {
    let mut df = df!(
        "probe_id" => matches.iter().map(|m| m.probe_id.clone()).collect::<Vec<_>>(),
        "rank" => matches.iter().map(|m| m.rank as u32).collect::<Vec<_>>(),
        "gallery_id" => matches.iter().map(|m| m.gallery_id.clone()).collect::<Vec<_>>(),
        "score" => matches.iter().map(|m| m.score).collect::<Vec<_>>(),
        "similarity" => matches.iter().map(|m| m.similarity).collect::<Vec<_>>(),
    )
    .map_err(table_err)?;
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let mut file = std::fs::File::create(&tmp).map_err(|e| crate::sweep::io(&tmp, e))?;
    if name.to_ascii_lowercase().ends_with(".csv") {
        CsvWriter::new(&mut file).include_header(true).finish(&mut df).map_err(table_err)?;
    } else {
        ParquetWriter::new(&mut file).finish(&mut df).map_err(table_err)?;
    }
    file.sync_all().map_err(|e| crate::sweep::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| crate::sweep::io(path, e))
}

/// Reads results written by [`write_matches`] (parquet, or CSV for a `.csv` name): the
/// first stage's candidates of a two-stage search run role by role.
pub fn read_matches(path: &Path) -> Result<Vec<encsearch::Match>> {
    let name = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    let at = |e: PolarsError| Error::Table(format!("{}: {e}", path.display()));
    let df = if name.ends_with(".csv") {
        CsvReadOptions::default()
            .with_has_header(true)
            .try_into_reader_with_file_path(Some(path.into()))
            .and_then(|r| r.finish())
    } else {
        ParquetReader::new(std::fs::File::open(path).map_err(|e| crate::sweep::io(path, e))?).finish()
    }
    .map_err(at)?;
    let column = |c: &str, t: DataType| df.column(c).and_then(|x| x.cast(&t)).map_err(at);
    let (probe, gallery) = (column("probe_id", DataType::String)?, column("gallery_id", DataType::String)?);
    let (rank, score, sim) =
        (column("rank", DataType::Int64)?, column("score", DataType::Int64)?, column("similarity", DataType::Float64)?);
    let (probe, gallery) = (probe.str().map_err(at)?, gallery.str().map_err(at)?);
    let (rank, score, sim) = (rank.i64().map_err(at)?, score.i64().map_err(at)?, sim.f64().map_err(at)?);
    (0..df.height())
        .map(|i| {
            let missing = || Error::Table(format!("{}: row {i} has an empty field", path.display()));
            Ok(encsearch::Match {
                probe_id: probe.get(i).ok_or_else(missing)?.to_string(),
                rank: usize::try_from(rank.get(i).ok_or_else(missing)?).map_err(|_| missing())?,
                gallery_id: gallery.get(i).ok_or_else(missing)?.to_string(),
                score: score.get(i).ok_or_else(missing)?,
                similarity: sim.get(i).ok_or_else(missing)?,
            })
        })
        .collect()
}
