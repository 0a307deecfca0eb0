//! Plots of a sweep, as PNG and SVG: CMC curves, rank-1 vs dimension per method, and query
//! time vs gallery size (ours encrypted, the HERS algorithm, plaintext).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::Result;
use crate::cells::CellResult;
use crate::config::Mode;

/// One named line.
type Series = (String, Vec<(f64, f64)>);

static FONT: Once = Once::new();

/// Registers the shipped DejaVu Sans, so text renders the same everywhere with no system
/// font lookup (no fontconfig needed).
fn font() {
    FONT.call_once(|| {
        let _ =
            plotters::style::register_font("sans-serif", FontStyle::Normal, include_bytes!("../assets/DejaVuSans.ttf"));
    });
}

fn plot_err(e: impl std::fmt::Display) -> crate::Error {
    crate::Error::Table(format!("plot: {e}"))
}

struct Chart<'a> {
    title: String,
    x_label: &'a str,
    y_label: &'a str,
    log_x: bool,
    log_y: bool,
    legend: SeriesLabelPosition,
    series: Vec<Series>,
}

macro_rules! draw_body {
    ($chart:expr, $c:expr) => {{
        let mut cc = $c;
        cc.configure_mesh()
            .x_labels(8)
            .y_labels(8)
            .x_label_formatter(&|x: &f64| tick(*x))
            .x_desc($chart.x_label)
            .y_desc($chart.y_label)
            .label_style(("sans-serif", 16))
            .axis_desc_style(("sans-serif", 18))
            .draw()
            .map_err(plot_err)?;
        for (i, (name, pts)) in $chart.series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            cc.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                .map_err(plot_err)?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
            cc.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(plot_err)?;
        }
        cc.configure_series_labels()
            .position($chart.legend.clone())
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .draw()
            .map_err(plot_err)?;
    }};
}

/// Axis ticks without float noise: `16`, `0.5`, `10k`, `1M`.
fn tick(x: f64) -> String {
    let a = x.abs();
    if a >= 1e6 {
        format!("{}M", trim(x / 1e6))
    } else if a >= 1e4 {
        format!("{}k", trim(x / 1e3))
    } else {
        trim(x)
    }
}

fn trim(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, chart: &Chart) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(plot_err)?;
    let pts = chart.series.iter().flat_map(|s| s.1.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        return Ok(());
    }
    let pad = |a: f64, b: f64, log: bool| {
        if log {
            (a / 1.5, b * 1.5)
        } else {
            let m = ((b - a) * 0.05).max(1e-3);
            (a - m, b + m)
        }
    };
    let (x0, x1) = pad(x0, x1, chart.log_x);
    let (y0, y1) = pad(y0, y1, chart.log_y);
    let mut b = ChartBuilder::on(&root);
    b.caption(&chart.title, ("sans-serif", 22)).margin(15).x_label_area_size(45).y_label_area_size(70);
    match (chart.log_x, chart.log_y) {
        (false, false) => draw_body!(chart, b.build_cartesian_2d(x0..x1, y0..y1).map_err(plot_err)?),
        (true, false) => draw_body!(chart, b.build_cartesian_2d((x0..x1).log_scale(), y0..y1).map_err(plot_err)?),
        (false, true) => draw_body!(chart, b.build_cartesian_2d(x0..x1, (y0..y1).log_scale()).map_err(plot_err)?),
        (true, true) => {
            draw_body!(chart, b.build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale()).map_err(plot_err)?)
        }
    }
    root.present().map_err(plot_err)?;
    Ok(())
}

fn save(dir: &Path, name: &str, chart: &Chart) -> Result<()> {
    font();
    let png = dir.join(format!("{name}.png"));
    draw(BitMapBackend::new(&png, (1000, 650)).into_drawing_area(), chart)?;
    let svg = dir.join(format!("{name}.svg"));
    draw(SVGBackend::new(&svg, (1000, 650)).into_drawing_area(), chart)
}

/// Writes every plot the results support into `dir`.
pub fn write_plots(dir: &Path, rows: &[CellResult]) -> Result<()> {
    let datasets: Vec<String> = {
        let mut d: Vec<String> = rows.iter().map(|r| r.dataset.clone()).collect();
        d.dedup();
        d
    };
    for ds in &datasets {
        let of: Vec<&CellResult> = rows.iter().filter(|r| &r.dataset == ds).collect();
        let smallest_gallery = of.iter().map(|r| r.gallery).min().unwrap_or(0);
        let base: Vec<&&CellResult> = of.iter().filter(|r| r.gallery == smallest_gallery).collect();

        // CMC: every method and dimension, plaintext where measured.
        let mode = if base.iter().any(|r| r.mode == Mode::Plaintext) { Mode::Plaintext } else { Mode::Encrypted };
        let cmc: Vec<Series> = base
            .iter()
            .filter(|r| r.mode == mode)
            .map(|r| {
                (
                    format!("{} {}-D", r.method, r.dim),
                    r.cmc.iter().enumerate().map(|(i, a)| ((i + 1) as f64, *a)).collect(),
                )
            })
            .collect();
        save(
            dir,
            &format!("cmc-{ds}"),
            &Chart {
                title: format!("CMC, {ds} ({mode}, gallery {smallest_gallery})"),
                x_label: "rank",
                y_label: "identification rate",
                log_x: false,
                log_y: false,
                legend: SeriesLabelPosition::LowerRight,
                series: cmc,
            },
        )?;

        // Rank-1 vs dimension, one line per method (`none` is a flat reference line).
        let full_dim = base.iter().filter(|r| r.method == "none").map(|r| (r.dim, r.rank1)).next();
        let dims: Vec<usize> = {
            let mut d: Vec<usize> = base.iter().filter(|r| r.method != "none").map(|r| r.dim).collect();
            d.sort_unstable();
            d.dedup();
            d
        };
        let mut by_method: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for r in base.iter().filter(|r| r.mode == mode && r.method != "none") {
            by_method.entry(r.method.clone()).or_default().push((r.dim as f64, r.rank1));
        }
        // Two-stage cells: first stage at the x dimension, full dimension rescoring the candidates.
        let mut two_stage = false;
        for r in base.iter().filter(|r| r.mode == Mode::TwoStage && r.method != "none") {
            two_stage = true;
            by_method
                .entry(format!("{} two-stage ({} probes)", r.method, r.probes))
                .or_default()
                .push((r.dim as f64, r.rank1));
        }
        for v in by_method.values_mut() {
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        let mut series: Vec<Series> = by_method.into_iter().collect();
        if let (Some((d, acc)), Some(lo), Some(hi)) = (full_dim, dims.first(), dims.last()) {
            series.push((format!("none ({d}-D)"), vec![(*lo as f64, acc), (*hi as f64, acc)]));
        }
        save(
            dir,
            &format!("rank1-vs-dim-{ds}"),
            &Chart {
                title: if two_stage {
                    format!("Rank-1 vs dimension, {ds} ({mode}; two-stage: x-D encrypted stage, full-D rescoring)")
                } else {
                    format!("Rank-1 vs dimension, {ds} ({mode})")
                },
                x_label: "dimension",
                y_label: "rank-1 accuracy",
                log_x: false,
                log_y: false,
                legend: SeriesLabelPosition::LowerRight,
                series,
            },
        )?;

        // Query time vs gallery size, per dimension of the encrypted cells.
        let enc: Vec<&&CellResult> = of.iter().filter(|r| r.mode == Mode::Encrypted).collect();
        if !enc.is_empty() {
            let mut series: Vec<Series> = Vec::new();
            // Time depends on the dimension, not on the method: one method's lines suffice.
            let method =
                enc.iter().map(|r| r.method.as_str()).find(|m| *m == "deepmds++").unwrap_or(enc[0].method.as_str());
            let mut keys: Vec<(String, usize)> =
                enc.iter().filter(|r| r.method == method).map(|r| (r.method.clone(), r.dim)).collect();
            keys.sort();
            keys.dedup();
            for (m, d) in keys {
                let sel = |mode: Mode, f: fn(&CellResult) -> f64| -> Vec<(f64, f64)> {
                    let mut v: Vec<(f64, f64)> = of
                        .iter()
                        .filter(|r| r.method == m && r.dim == d && r.mode == mode)
                        .map(|r| (r.gallery as f64, f(r)))
                        .filter(|p| p.1 > 0.0)
                        .collect();
                    v.sort_by(|a, b| a.0.total_cmp(&b.0));
                    v
                };
                series.push((format!("hers encrypted, {m} {d}-D"), sel(Mode::Encrypted, |r| r.query_ms)));
                series.push((format!("HERS algorithm, {m} {d}-D"), sel(Mode::Encrypted, |r| r.hers_query_ms)));
                series.push((format!("plaintext, {m} {d}-D"), sel(Mode::Plaintext, |r| r.query_ms)));
                series.push((format!("hers two-stage, {m} {d}-D"), sel(Mode::TwoStage, |r| r.query_ms)));
            }
            series.retain(|s| !s.1.is_empty());
            save(
                dir,
                &format!("time-vs-gallery-{ds}"),
                &Chart {
                    title: format!("Query time vs gallery size, {ds}"),
                    x_label: "gallery size (templates, log scale)",
                    y_label: "time per query (ms, log scale)",
                    log_x: true,
                    log_y: true,
                    legend: SeriesLabelPosition::MiddleRight,
                    series,
                },
            )?;
        }
    }
    Ok(())
}
