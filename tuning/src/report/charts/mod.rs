//! report::charts — the report's charts as SVG text (plotters' SVG backend): throughput
//! ([`throughput`]: vs batch.size per linger.ms, the latency–throughput frontier per codec),
//! latency ([`latency`]: the linger × batch heatmap of p99 at one load, log-percentile curves)
//! and costs ([`costs`]: acks=all against acks=1, compression ratio and CPU per GB per codec).
//!
//! Owns drawing and the helpers every chart shares. Must not pick recommendations or write
//! files.

mod costs;
mod latency;
mod throughput;

use std::error::Error;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{Axis, Chart, View};
use crate::point::Mode;
use crate::results::Summary;

pub(super) type Res<T> = Result<T, Box<dyn Error>>;
/// A kind of chart: zero or more charts from the view.
pub(super) type Kind = fn(&View) -> Res<Vec<Chart>>;
/// Which points of a mode a chart takes.
pub(super) type ModeFilter = Box<dyn Fn(&Mode) -> bool>;
/// One comparison: what, its unit, which points, which figure.
pub(super) type Comparison = (String, &'static str, ModeFilter, fn(&Summary) -> f64);

pub(super) const SIZE: (u32, u32) = (760, 420);
pub(super) const FONT: &str = "sans-serif";
/// Most charts of one kind (one per codec × acks, ...).
pub(super) const MAX_PER_KIND: usize = 6;
/// Most curves on the percentile chart.
pub(super) const MAX_CURVES: usize = 8;

/// Every chart the results allow.
pub(super) fn all(view: &View) -> Result<Vec<Chart>, crate::TuneError> {
    let mut charts = Vec::new();
    let kinds: [Kind; 6] = [
        throughput::throughput_vs_batch,
        throughput::frontier,
        latency::heatmap,
        costs::acks_cost,
        latency::percentile_curves,
        costs::codec_costs,
    ];
    for kind in kinds {
        charts.extend(kind(view).map_err(|e| crate::TuneError::Report(format!("drawing: {e}")))?);
    }
    Ok(charts)
}

/// Draws on a fresh SVG canvas.
pub(super) fn svg(
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Res<()>,
) -> Res<String> {
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    Ok(text)
}

/// Draws the legend every chart has: upper left, on a translucent white box with a black border;
/// `small_labels` for charts with many series.
pub(super) fn draw_legend<'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, CT>,
    small_labels: bool,
) -> Res<()> {
    let mut style = chart.configure_series_labels();
    style
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK);
    if small_labels {
        style.label_font((FONT, 10));
    }
    style.draw()?;
    Ok(())
}

pub(super) fn color(i: usize) -> RGBAColor {
    Palette99::pick(i).to_rgba()
}

/// (lo, hi) padded for an axis; `log` keeps it positive.
pub(super) fn bounds(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite() && (!log || *v > 0.0)) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return if log { (0.1, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        (lo / 1.5, hi * 1.5)
    } else {
        (0.0f64.min(lo), if hi > 0.0 { hi * 1.15 } else { 1.0 })
    }
}

pub(super) fn is_max(m: &Mode) -> bool {
    m.is_max_throughput()
}

/// The fixed load the heatmap and percentile curves use: the highest load at which at least
/// half of the linger × batch cells were sustained, else the lowest load.
pub(super) fn chosen_load(view: &View) -> Option<f64> {
    let loads = &view.header.plan.modes.fixed_load_mbps;
    let cells = |load: f64| {
        view.select(
            &[Axis::Linger, Axis::Batch],
            |m| matches!(m, Mode::FixedLoad { offered_mbps } if *offered_mbps == load),
        )
    };
    let mut sorted = loads.clone();
    sorted.sort_by(f64::total_cmp);
    sorted
        .iter()
        .rev()
        .find(|&&l| {
            let c = cells(l);
            !c.is_empty() && c.iter().filter(|(_, s)| s.sustained).count() * 2 >= c.len()
        })
        .or(sorted.first())
        .copied()
}

/// A tick label for cell index `v` (labels at the cell centres only).
pub(super) fn index_label<T>(v: f64, values: &[T], show: impl Fn(&T) -> String) -> String {
    let i = v - 0.5;
    if (i - i.round()).abs() < 1e-6 && i >= 0.0 {
        values.get(i.round() as usize).map(show).unwrap_or_default()
    } else {
        String::new()
    }
}

pub(super) fn bytes_label(b: f64) -> String {
    const MIB: f64 = 1_048_576.0;
    if b >= MIB && (b / MIB).fract() == 0.0 {
        format!("{}MiB", b / MIB)
    } else if b >= 1024.0 {
        format!("{:.0}KiB", b / 1024.0)
    } else {
        format!("{b:.0}")
    }
}
