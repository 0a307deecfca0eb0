//! Plots of a sweep, as PNG and SVG: CMC curves, rank-1 vs dimension per method, and query
//! time: vs gallery size (ours encrypted, the HERS algorithm, plaintext) when the sweep has two
//! or more gallery sizes, otherwise a bar per method, dimension and mode.
//!
//! With many series, colour says the method (or, for timings, what is timed) and the marker (and
//! in CMC plots the line style) says the dimension; the legend, in two parts, sits beside the data.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use crate::cells::CellResult;
use crate::config::Mode;
use crate::plan::NO_REDUCTION;
use crate::{Error, Result};

/// What a drawing step returns: the plotting library's error, boxed.
type DrawResult = std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Image size in pixels, and the width of the legend panel on the right.
const SIZE: (u32, u32) = (1200, 650);
const LEGEND_WIDTH: u32 = 250;

/// Well-separated hues (Tableau 10), one per method or timed thing.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
/// Legend samples of line style and marker (no colour meaning).
const NEUTRAL: RGBColor = RGBColor(70, 70, 70);

/// How a line is stroked.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Line {
    Solid,
    Dashed,
    Dotted,
}

/// The shape drawn at a point.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Marker {
    Circle,
    Triangle,
    Square,
    Diamond,
    Cross,
}

const LINES: [Line; 3] = [Line::Solid, Line::Dashed, Line::Dotted];
const MARKERS: [Marker; 5] = [Marker::Circle, Marker::Triangle, Marker::Square, Marker::Diamond, Marker::Cross];

/// One line of a chart, a marker at each point.
struct Series {
    color: RGBColor,
    line: Line,
    points: Vec<(f64, f64)>,
    markers: Vec<Marker>,
}

/// One row of the legend: a heading (no sample), or a sample of colour, line and marker.
struct Key {
    label: String,
    color: RGBColor,
    line: Option<Line>,
    marker: Option<Marker>,
}

impl Key {
    fn heading(label: &str) -> Key {
        Key { label: label.into(), color: BLACK, line: None, marker: None }
    }
}

/// A line chart.
struct Chart<'a> {
    title: String,
    x_label: &'a str,
    y_label: &'a str,
    log_x: bool,
    log_y: bool,
    series: Vec<Series>,
    legend: Vec<Key>,
}

/// Horizontal bar charts side by side, one panel each, on one log-scaled axis: in a panel,
/// bars in groups (a label on a group's first bar, a gap between groups).
struct Bars<'a> {
    title: String,
    x_label: &'a str,
    panels: Vec<Panel>,
    legend: Vec<Key>,
}

/// One bar: its value and colour.
type Bar = (f64, RGBColor);

/// One panel of [`Bars`]: its title and its groups of bars, each group named.
struct Panel {
    title: String,
    groups: Vec<(String, Vec<Bar>)>,
}

static FONT: Once = Once::new();

/// Registers the shipped DejaVu Sans, so text renders the same everywhere with no system
/// font lookup (no fontconfig needed).
fn font() {
    FONT.call_once(|| {
        let _ =
            plotters::style::register_font("sans-serif", FontStyle::Normal, include_bytes!("../assets/DejaVuSans.ttf"));
    });
}

/// Draws the markers of `$pts` (an iterator of `(point, Marker)`, cloneable) in `$color`:
/// `$body` draws the iterator of elements `$it` of one marker shape, once per shape.
macro_rules! draw_markers {
    ($pts:expr, $color:expr, |$it:ident| $body:expr) => {{
        let color: RGBColor = $color;
        let style = color.filled();
        let pts = $pts;
        let at = |kind: Marker| pts.clone().filter(move |(_, m)| *m == kind).map(|(p, _)| EmptyElement::at(p));
        {
            let $it = at(Marker::Circle).map(|e| e + Circle::new((0, 0), 4, style));
            $body;
        }
        {
            let $it = at(Marker::Triangle).map(|e| e + TriangleMarker::new((0, 0), 5, style));
            $body;
        }
        {
            let $it = at(Marker::Square).map(|e| e + Rectangle::new([(-4, -4), (4, 4)], style));
            $body;
        }
        {
            let $it = at(Marker::Diamond).map(|e| e + Polygon::new(vec![(0, -5), (5, 0), (0, 5), (-5, 0)], style));
            $body;
        }
        {
            let $it = at(Marker::Cross).map(|e| e + Cross::new((0, 0), 4, color.stroke_width(2)));
            $body;
        }
    }};
}

/// Dash and gap lengths of a non-solid line.
fn dash(line: Line) -> (u32, u32) {
    match line {
        Line::Dotted => (2, 4),
        _ => (8, 5),
    }
}

macro_rules! draw_lines {
    ($chart:expr, $c:expr) => {{
        let mut cc = $c;
        cc.configure_mesh()
            .x_labels(8)
            .y_labels(8)
            .x_label_formatter(&|x: &f64| tick(*x))
            .y_label_formatter(&|y: &f64| tick(*y))
            .x_desc($chart.x_label)
            .y_desc($chart.y_label)
            .label_style(("sans-serif", 16))
            .axis_desc_style(("sans-serif", 18))
            .draw()?;
        for s in &$chart.series {
            let style = s.color.stroke_width(2);
            match s.line {
                Line::Solid => {
                    cc.draw_series(LineSeries::new(s.points.iter().copied(), style))?;
                }
                other => {
                    let (size, gap) = dash(other);
                    cc.draw_series(DashedLineSeries::new(s.points.iter().copied(), size, gap, style))?;
                }
            }
            draw_markers!(s.points.iter().copied().zip(s.markers.iter().copied()), s.color, |it| cc.draw_series(it)?);
        }
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

/// `x` with two decimals, more below 0.01 (so 0.001 does not read 0), trailing zeros dropped.
fn trim(x: f64) -> String {
    if x.abs() < 1e-9 {
        return "0".into();
    }
    let digits = (2 - x.abs().log10().floor() as i32).clamp(2, 8) as usize;
    let s = format!("{x:.digits$}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Padded axis range of values `lo..hi`.
fn pad(lo: f64, hi: f64, log: bool) -> (f64, f64) {
    if log {
        (lo / 1.5, hi * 1.5)
    } else {
        let m = ((hi - lo) * 0.05).max(1e-3);
        (lo - m, hi + m)
    }
}

/// Splits off the legend panel on the right and draws the legend into it.
fn with_legend<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    legend: &[Key],
) -> std::result::Result<DrawingArea<DB, Shift>, Box<dyn std::error::Error + Send + Sync>>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (w, _) = root.dim_in_pixel();
    let (plot, panel) = root.split_horizontally(w.saturating_sub(LEGEND_WIDTH));
    let font = ("sans-serif", 15).into_font();
    let mut y = 60;
    for key in legend {
        if key.line.is_none() && key.marker.is_none() {
            y += 6;
            panel.draw(&Text::new(key.label.clone(), (8, y - 8), font.clone().style(FontStyle::Bold)))?;
        } else {
            let style = key.color.stroke_width(2);
            match key.line {
                Some(Line::Solid) => panel.draw(&PathElement::new(vec![(10, y), (46, y)], style))?,
                Some(other) => {
                    let (size, gap) = dash(other);
                    panel.draw(&DashedPathElement::new(vec![(10, y), (46, y)], size, gap, style))?;
                }
                None => {}
            }
            if let Some(m) = key.marker {
                draw_markers!(std::iter::once(((28, y), m)), key.color, |it| {
                    for e in it {
                        panel.draw(&e)?;
                    }
                });
            }
            panel.draw(&Text::new(key.label.clone(), (54, y - 8), font.clone()))?;
        }
        y += 22;
    }
    Ok(plot)
}

fn draw_chart<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, chart: &Chart) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let plot = with_legend(&root, &chart.legend)?;
    let pts = chart.series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        return Ok(root.present()?);
    }
    let (x0, x1) = pad(x0, x1, chart.log_x);
    let (y0, y1) = pad(y0, y1, chart.log_y);
    let mut b = ChartBuilder::on(&plot);
    b.caption(&chart.title, ("sans-serif", 22)).margin(15).x_label_area_size(45).y_label_area_size(70);
    match (chart.log_x, chart.log_y) {
        (false, false) => draw_lines!(chart, b.build_cartesian_2d(x0..x1, y0..y1)?),
        (true, false) => draw_lines!(chart, b.build_cartesian_2d((x0..x1).log_scale(), y0..y1)?),
        (false, true) => draw_lines!(chart, b.build_cartesian_2d(x0..x1, (y0..y1).log_scale())?),
        (true, true) => draw_lines!(chart, b.build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())?),
    }
    root.present()?;
    Ok(())
}

fn draw_bars<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, chart: &Bars) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let plot = with_legend(&root, &chart.legend)?;
    let values = chart.panels.iter().flat_map(|p| p.groups.iter().flat_map(|g| g.1.iter().map(|b| b.0)));
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if chart.panels.is_empty() || lo > hi {
        return Ok(root.present()?);
    }
    let plot = plot.titled(&chart.title, ("sans-serif", 22))?;
    let (x0, x1) = (lo / 3.0, hi * 3.0);
    let longest = chart.panels.iter().flat_map(|p| p.groups.iter().map(|g| g.0.chars().count())).max().unwrap_or(0);
    for (area, panel) in plot.split_evenly((1, chart.panels.len())).iter().zip(&chart.panels) {
        // Rows: each group's bars, then one empty row between groups.
        let mut rows: Vec<(Option<&str>, Option<Bar>)> = Vec::new();
        for (gi, (label, bars)) in panel.groups.iter().enumerate() {
            if gi > 0 {
                rows.push((None, None));
            }
            for (bi, bar) in bars.iter().enumerate() {
                rows.push(((bi == 0).then_some(label.as_str()), Some(*bar)));
            }
        }
        let n = rows.len().max(1);
        let mut cc = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(45)
            .y_label_area_size(20 + 8 * longest as u32)
            .build_cartesian_2d((x0..x1).log_scale(), (0..n as i32 - 1).into_segmented())?;
        // The first row on top.
        let row = |i: usize| (n - 1 - i) as i32;
        cc.configure_mesh()
            .disable_y_mesh()
            .x_labels(5)
            .y_labels(n)
            .x_label_formatter(&|x: &f64| tick(*x))
            .y_label_formatter(&|v: &SegmentValue<i32>| match v {
                SegmentValue::CenterOf(r) | SegmentValue::Exact(r) => usize::try_from(n as i32 - 1 - r)
                    .ok()
                    .and_then(|i| rows.get(i))
                    .and_then(|r| r.0)
                    .unwrap_or_default()
                    .to_string(),
                SegmentValue::Last => String::new(),
            })
            .x_desc(chart.x_label)
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 16))
            .draw()?;
        let bars = rows.iter().enumerate().filter_map(|(i, r)| r.1.map(|b| (i, b)));
        cc.draw_series(bars.clone().map(|(i, (v, color))| {
            let mut bar = Rectangle::new(
                [(x0, SegmentValue::Exact(row(i))), (v, SegmentValue::Exact(row(i) + 1))],
                color.filled(),
            );
            bar.set_margin(2, 2, 0, 0);
            bar
        }))?;
        cc.draw_series(bars.map(|(i, (v, _))| {
            Text::new(format!(" {}", trim_ms(v)), (v, SegmentValue::CenterOf(row(i))), ("sans-serif", 12).into_font())
        }))?;
    }
    root.present()?;
    Ok(())
}

/// A time in ms with three significant digits.
fn trim_ms(ms: f64) -> String {
    let digits = (2 - ms.abs().log10().floor() as i32).clamp(0, 3) as usize;
    format!("{ms:.digits$} ms")
}

/// Writes `<name>.png` and `<name>.svg` into `dir`.
fn save(dir: &Path, name: &str, draw: impl Fn(DrawArea<'_>) -> DrawResult) -> Result<()> {
    font();
    let png = dir.join(format!("{name}.png"));
    draw(DrawArea::Png(BitMapBackend::new(&png, SIZE).into_drawing_area()))
        .map_err(|source| Error::Plot { path: png.clone(), source })?;
    let svg = dir.join(format!("{name}.svg"));
    draw(DrawArea::Svg(SVGBackend::new(&svg, SIZE).into_drawing_area()))
        .map_err(|source| Error::Plot { path: svg, source })
}

/// The two image backends, so one drawing closure serves both.
enum DrawArea<'a> {
    Png(DrawingArea<BitMapBackend<'a>, Shift>),
    Svg(DrawingArea<SVGBackend<'a>, Shift>),
}

fn save_chart(dir: &Path, name: &str, chart: &Chart) -> Result<()> {
    save(dir, name, |area| match area {
        DrawArea::Png(a) => draw_chart(a, chart),
        DrawArea::Svg(a) => draw_chart(a, chart),
    })
}

fn save_bars(dir: &Path, name: &str, chart: &Bars) -> Result<()> {
    save(dir, name, |area| match area {
        DrawArea::Png(a) => draw_bars(a, chart),
        DrawArea::Svg(a) => draw_bars(a, chart),
    })
}

/// Distinct values in order of first appearance.
fn distinct<T: PartialEq>(values: impl Iterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// Index of `v` in `all` (0 when absent).
fn index_of<T: PartialEq>(all: &[T], v: &T) -> usize {
    all.iter().position(|x| x == v).unwrap_or(0)
}

/// Writes every plot the results support into `dir`.
pub fn write_plots(dir: &Path, rows: &[CellResult]) -> Result<()> {
    for ds in distinct(rows.iter().map(|r| r.dataset.as_str())) {
        let of: Vec<&CellResult> = rows.iter().filter(|r| r.dataset == ds).collect();
        // Colours follow the sweep's order of methods, the same in every plot of the dataset.
        let methods = distinct(of.iter().map(|r| r.method.as_str()));
        let color = |m: &str| PALETTE[index_of(&methods, &m) % PALETTE.len()];
        let mut dims: Vec<usize> = distinct(of.iter().map(|r| r.dim));
        dims.sort_unstable();
        let mark = |d: usize| MARKERS[index_of(&dims, &d) % MARKERS.len()];
        let line = |d: usize| LINES[index_of(&dims, &d) % LINES.len()];
        let dim_keys = |with_line: bool| -> Vec<Key> {
            let mut keys = vec![Key::heading("dimension")];
            keys.extend(dims.iter().map(|&d| Key {
                label: format!("{d}-D"),
                color: NEUTRAL,
                line: with_line.then(|| line(d)),
                marker: Some(mark(d)),
            }));
            keys
        };
        let method_keys = |ms: &[&str]| -> Vec<Key> {
            let mut keys = vec![Key::heading("method")];
            keys.extend(ms.iter().map(|m| Key {
                label: m.to_string(),
                color: color(m),
                line: Some(Line::Solid),
                marker: None,
            }));
            keys
        };
        let smallest_gallery = of.iter().map(|r| r.gallery).min().unwrap_or(0);
        let base: Vec<&CellResult> = of.iter().copied().filter(|r| r.gallery == smallest_gallery).collect();

        // CMC: every method and dimension, plaintext where measured.
        let mode = if base.iter().any(|r| r.mode == Mode::Plaintext) { Mode::Plaintext } else { Mode::Encrypted };
        let cmc_rows: Vec<&CellResult> = base.iter().copied().filter(|r| r.mode == mode).collect();
        let cmc: Vec<Series> = cmc_rows
            .iter()
            .map(|r| Series {
                color: color(&r.method),
                line: line(r.dim),
                points: r.cmc.iter().enumerate().map(|(i, a)| ((i + 1) as f64, *a)).collect(),
                markers: vec![mark(r.dim); r.cmc.len()],
            })
            .collect();
        let mut legend = method_keys(&distinct(cmc_rows.iter().map(|r| r.method.as_str())));
        legend.extend(dim_keys(true));
        save_chart(
            dir,
            &format!("cmc-{ds}"),
            &Chart {
                title: format!("CMC, {ds} ({mode}, gallery {smallest_gallery})"),
                x_label: "rank",
                y_label: "identification rate",
                log_x: false,
                log_y: false,
                series: cmc,
                legend,
            },
        )?;

        // Rank-1 vs dimension, one line per method (`none` is a flat reference line); two-stage
        // cells (first stage at the x dimension, full dimension rescoring the candidates) dashed.
        let reduced: Vec<&CellResult> = base.iter().copied().filter(|r| r.method != NO_REDUCTION).collect();
        let reduced_dims = distinct(reduced.iter().map(|r| r.dim));
        let mut series = Vec::new();
        let mut legend_methods = Vec::new();
        let mut two_stage_probes = None;
        for &m in methods.iter().filter(|m| **m != NO_REDUCTION) {
            for (cell_mode, style) in [(mode, Line::Solid), (Mode::TwoStage, Line::Dashed)] {
                let mut pts: Vec<(f64, f64, usize)> = reduced
                    .iter()
                    .filter(|r| r.method == m && r.mode == cell_mode)
                    .map(|r| (r.dim as f64, r.rank1, r.dim))
                    .collect();
                if pts.is_empty() {
                    continue;
                }
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                if cell_mode == Mode::TwoStage {
                    two_stage_probes = reduced.iter().find(|r| r.mode == Mode::TwoStage).map(|r| r.probes);
                }
                if !legend_methods.contains(&m) {
                    legend_methods.push(m);
                }
                series.push(Series {
                    color: color(m),
                    line: style,
                    points: pts.iter().map(|p| (p.0, p.1)).collect(),
                    markers: pts.iter().map(|p| mark(p.2)).collect(),
                });
            }
        }
        let mut legend = method_keys(&legend_methods);
        if let Some(probes) = two_stage_probes {
            legend.push(Key::heading("two-stage"));
            legend.push(Key {
                label: format!("x-D, then full-D ({probes} probes)"),
                color: NEUTRAL,
                line: Some(Line::Dashed),
                marker: None,
            });
        }
        let full = base.iter().find(|r| r.method == NO_REDUCTION && r.mode == mode);
        if let (Some(full), Some(lo), Some(hi)) = (full, reduced_dims.iter().min(), reduced_dims.iter().max()) {
            legend.push(Key::heading("reference"));
            legend.push(Key {
                label: format!("{NO_REDUCTION} ({}-D)", full.dim),
                color: color(NO_REDUCTION),
                line: Some(Line::Dotted),
                marker: None,
            });
            series.push(Series {
                color: color(NO_REDUCTION),
                line: Line::Dotted,
                points: vec![(*lo as f64, full.rank1), (*hi as f64, full.rank1)],
                markers: Vec::new(),
            });
        }
        legend.push(Key::heading("dimension"));
        legend.extend(dimension_keys(reduced_dims.clone(), mark));
        save_chart(
            dir,
            &format!("rank1-vs-dim-{ds}"),
            &Chart {
                title: if two_stage_probes.is_some() {
                    format!("Rank-1 vs dimension, {ds} ({mode}; two-stage: x-D encrypted stage, full-D rescoring)")
                } else {
                    format!("Rank-1 vs dimension, {ds} ({mode})")
                },
                x_label: "dimension",
                y_label: "rank-1 accuracy",
                log_x: false,
                log_y: false,
                series,
                legend,
            },
        )?;

        // Query time: against gallery size when the sweep has several, else one bar per cell.
        let galleries = distinct(of.iter().map(|r| r.gallery));
        if galleries.len() >= 2 {
            time_vs_gallery(dir, ds, &of, &dims)?;
        } else if of.iter().any(|r| r.query_ms > 0.0) {
            time_bars(dir, ds, &of, smallest_gallery)?;
        }
    }
    Ok(())
}

/// What a timing series or bar measures, each with its colour.
const TIMED: [(&str, RGBColor); 4] = [
    ("hers encrypted", PALETTE[0]),
    ("HERS algorithm", PALETTE[3]),
    ("plaintext", PALETTE[2]),
    ("hers two-stage", PALETTE[4]),
];

/// The timing of `r` under `TIMED[k]`, if the cell measures it.
fn timed(r: &CellResult, k: usize) -> Option<f64> {
    let v = match (k, r.mode) {
        (0, Mode::Encrypted) => r.query_ms,
        (1, Mode::Encrypted) => r.hers_query_ms,
        (2, Mode::Plaintext) => r.query_ms,
        (3, Mode::TwoStage) => r.query_ms,
        _ => return None,
    };
    (v > 0.0).then_some(v)
}

/// Query time vs gallery size, one line per timed thing and dimension. Time depends on the
/// dimension, not on the method: one method's cells suffice (deepmds++ where there is one).
fn time_vs_gallery(dir: &Path, ds: &str, of: &[&CellResult], dims: &[usize]) -> Result<()> {
    let reduced: Vec<&CellResult> = of.iter().copied().filter(|r| r.method != NO_REDUCTION).collect();
    let pool = if reduced.is_empty() { of.to_vec() } else { reduced };
    let Some(method) =
        pool.iter().map(|r| r.method.as_str()).find(|m| *m == "deepmds++").or(pool.first().map(|r| r.method.as_str()))
    else {
        return Ok(());
    };
    let mark = |d: usize| MARKERS[index_of(dims, &d) % MARKERS.len()];
    let mut series = Vec::new();
    let mut used_kinds = Vec::new();
    let mut used_dims = Vec::new();
    for (k, (_, color)) in TIMED.iter().enumerate() {
        for &d in dims {
            let mut pts: Vec<(f64, f64)> = pool
                .iter()
                .filter(|r| r.method == method && r.dim == d)
                .filter_map(|r| timed(r, k).map(|v| (r.gallery as f64, v)))
                .collect();
            if pts.is_empty() {
                continue;
            }
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            used_kinds.push(k);
            used_dims.push(d);
            series.push(Series { color: *color, line: Line::Solid, markers: vec![mark(d); pts.len()], points: pts });
        }
    }
    if series.is_empty() {
        return Ok(());
    }
    let mut legend = vec![Key::heading("timed")];
    legend.extend(distinct(used_kinds.into_iter()).into_iter().map(|k| Key {
        label: TIMED[k].0.into(),
        color: TIMED[k].1,
        line: Some(Line::Solid),
        marker: None,
    }));
    legend.push(Key::heading(&format!("dimension ({method})")));
    legend.extend(dimension_keys(distinct(used_dims.into_iter()), mark));
    save_chart(
        dir,
        &format!("time-vs-gallery-{ds}"),
        &Chart {
            title: format!("Query time vs gallery size, {ds}"),
            x_label: "gallery size (templates, log scale)",
            y_label: "time per query (ms, log scale)",
            log_x: true,
            log_y: true,
            series,
            legend,
        },
    )
}

/// Query time for a sweep of one gallery size: a panel per dimension, a group per method, a
/// bar per timed thing (encrypted, HERS, plaintext, two-stage), so every label reads.
fn time_bars(dir: &Path, ds: &str, of: &[&CellResult], gallery: usize) -> Result<()> {
    let mut used = Vec::new();
    let mut panels = Vec::new();
    for d in distinct(of.iter().map(|r| r.dim)) {
        let mut groups: Vec<(String, Vec<Bar>)> = Vec::new();
        for method in distinct(of.iter().filter(|r| r.dim == d).map(|r| r.method.as_str())) {
            let mut bars = Vec::new();
            for (k, (_, color)) in TIMED.iter().enumerate() {
                // One bar per timed thing: the first cell of this method and dimension that has it.
                if let Some(v) = of.iter().filter(|r| r.dim == d && r.method == method).find_map(|r| timed(r, k)) {
                    bars.push((v, *color));
                    used.push(k);
                }
            }
            if !bars.is_empty() {
                groups.push((method.to_string(), bars));
            }
        }
        if !groups.is_empty() {
            panels.push(Panel { title: format!("{d}-D"), groups });
        }
    }
    let mut legend = vec![Key::heading("timed")];
    legend.extend(distinct(used.into_iter()).into_iter().map(|k| Key {
        label: TIMED[k].0.into(),
        color: TIMED[k].1,
        line: Some(Line::Solid),
        marker: Some(Marker::Square),
    }));
    save_bars(
        dir,
        &format!("time-per-method-{ds}"),
        &Bars {
            title: format!("Query time per method and mode, {ds} (gallery {gallery})"),
            x_label: "ms per query (log)",
            panels,
            legend,
        },
    )
}

/// Legend keys for dimensions, smallest first: one marker each (`mark`), in the neutral colour.
fn dimension_keys(mut dims: Vec<usize>, mark: impl Fn(usize) -> Marker) -> Vec<Key> {
    dims.sort_unstable();
    dims.into_iter()
        .map(|d| Key { label: format!("{d}-D"), color: NEUTRAL, line: None, marker: Some(mark(d)) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sweep of one gallery size with 6 methods × 3 dimensions × 3 modes: the time chart gets
    /// a panel per dimension and a group per method (as many label rows as methods, not bars).
    #[test]
    fn time_bars_group_by_dimension_and_method() {
        let mut rows = Vec::new();
        for method in ["pca", "lda", "deepmds++", "supcon", "supcon-ablation", NO_REDUCTION] {
            for dim in [16, 32, 64] {
                for (mode, ms) in [(Mode::Plaintext, 0.5), (Mode::Encrypted, 20.0), (Mode::TwoStage, 40.0)] {
                    rows.push(CellResult {
                        dataset: "synth".into(),
                        method: method.into(),
                        dim,
                        mode,
                        gallery: 10_000,
                        probes: 100,
                        rank1: 0.9,
                        rank5: 0.95,
                        rank10: 0.97,
                        tar_far_1e3: 0.9,
                        precision_at_10: 0.8,
                        map: 0.7,
                        train_s: 1.0,
                        query_ms: ms * dim as f64 / 16.0,
                        score_ms: ms,
                        hers_query_ms: if mode == Mode::Encrypted { 300.0 } else { 0.0 },
                        speedup_vs_hers: 1.0,
                        exact: true,
                        cmc: vec![0.9],
                    });
                }
            }
        }
        let dir = std::env::var_os("HERS_PLOT_DIR").map_or_else(std::env::temp_dir, Into::into).join("time-bars");
        std::fs::create_dir_all(&dir).expect("dir");
        let of: Vec<&CellResult> = rows.iter().collect();
        time_bars(&dir, "synth", &of, 10_000).expect("drawn");
        let png = std::fs::metadata(dir.join("time-per-method-synth.png")).expect("png written");
        assert!(png.len() > 10_000, "an image, not an empty canvas");
        let svg = std::fs::read_to_string(dir.join("time-per-method-synth.svg")).expect("svg written");
        for label in ["16-D", "32-D", "64-D", "supcon-ablation"] {
            assert!(svg.contains(label), "{label} is drawn");
        }
        // Each method's name once per panel: 3 panels.
        assert_eq!(svg.matches("supcon-ablation").count(), 3, "one label per group");
    }
}
