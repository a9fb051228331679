//! report::charts — the report's charts as SVG text (plotters' SVG backend): throughput vs
//! batch.size per linger.ms, the latency–throughput frontier per codec, the linger × batch
//! heatmap of p99 at one load, the cost of acks=all, log-percentile latency curves, and
//! compression ratio and CPU per GB per codec.
//!
//! Owns drawing. Must not pick recommendations or write files.

use std::collections::BTreeMap;
use std::error::Error;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Axis, Chart, View};
use crate::point::{Mode, Point};
use crate::results::{Stat, Summary};

type Res<T> = Result<T, Box<dyn Error>>;
/// A kind of chart: zero or more charts from the view.
type Kind = fn(&View) -> Res<Vec<Chart>>;
/// Which points of a mode a chart takes.
type ModeFilter = Box<dyn Fn(&Mode) -> bool>;
/// One comparison: what, its unit, which points, which figure.
type Comparison = (&'static str, &'static str, ModeFilter, fn(&Summary) -> f64);

const SIZE: (u32, u32) = (760, 420);
const FONT: &str = "sans-serif";
/// Most charts of one kind (one per codec × acks, ...).
const MAX_PER_KIND: usize = 6;
/// Most curves on the percentile chart.
const MAX_CURVES: usize = 8;

/// Every chart the results allow.
pub(super) fn all(view: &View) -> Result<Vec<Chart>, crate::TuneError> {
    let mut charts = Vec::new();
    let kinds: [Kind; 6] = [
        throughput_vs_batch,
        frontier,
        heatmap,
        acks_cost,
        percentile_curves,
        codec_costs,
    ];
    for kind in kinds {
        charts.extend(kind(view).map_err(|e| crate::TuneError::Report(format!("drawing: {e}")))?);
    }
    Ok(charts)
}

/// Draws on a fresh SVG canvas.
fn svg(draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Res<()>) -> Res<String> {
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    Ok(text)
}

fn color(i: usize) -> RGBAColor {
    Palette99::pick(i).to_rgba()
}

/// (lo, hi) padded for an axis; `log` keeps it positive.
fn bounds(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
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

fn is_max(m: &Mode) -> bool {
    m.is_max_throughput()
}

/// Maximum sustainable throughput against batch.size, a line per linger.ms, per codec × acks.
fn throughput_vs_batch(view: &View) -> Res<Vec<Chart>> {
    let points = view.select(
        &[Axis::Linger, Axis::Batch, Axis::Codec, Axis::Acks],
        is_max,
    );
    let mut out = Vec::new();
    for codec in view.codecs() {
        for acks in &view.header.plan.axes.acks {
            if out.len() >= MAX_PER_KIND {
                return Ok(out);
            }
            let mine: Vec<&(&Point, &Summary)> = points
                .iter()
                .filter(|(p, _)| p.codec_label() == codec && &p.acks == acks)
                .collect();
            if mine.is_empty() {
                continue;
            }
            let mut lines: BTreeMap<u64, Vec<(f64, Stat)>> = BTreeMap::new();
            for (p, s) in &mine {
                lines
                    .entry(p.linger_ms)
                    .or_default()
                    .push((p.batch_size as f64, s.mb_per_s));
            }
            let x = bounds(mine.iter().map(|(p, _)| p.batch_size as f64), true);
            let y = bounds(mine.iter().map(|(_, s)| s.mb_per_s.max), false);
            let title = format!("Max sustainable throughput vs batch.size — {codec}, acks={acks}");
            let svg = svg(|root| {
                let mut chart = ChartBuilder::on(root)
                    .caption(&title, (FONT, 16))
                    .margin(12)
                    .x_label_area_size(40)
                    .y_label_area_size(60)
                    .build_cartesian_2d((x.0..x.1).log_scale(), y.0..y.1)?;
                chart
                    .configure_mesh()
                    .x_desc("batch.size (bytes, log)")
                    .y_desc("MB/s (median, min–max)")
                    .x_label_formatter(&|v| bytes_label(*v))
                    .draw()?;
                for (i, (linger, mut pts)) in lines.into_iter().enumerate() {
                    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                    let c = color(i);
                    chart
                        .draw_series(LineSeries::new(
                            pts.iter().map(|(b, s)| (*b, s.median)),
                            c.stroke_width(2),
                        ))?
                        .label(format!("linger.ms={linger}"))
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2))
                        });
                    chart.draw_series(pts.iter().map(|(b, s)| {
                        ErrorBar::new_vertical(*b, s.min, s.median, s.max, c.filled(), 6)
                    }))?;
                }
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperLeft)
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .draw()?;
                Ok(())
            })?;
            out.push(Chart {
                title,
                svg,
                note: view.caption(acks),
            });
        }
    }
    Ok(out)
}

/// Publish p99 against achieved throughput, every point of a codec as a dot and its Pareto
/// frontier (no other point both faster and lower) as a line.
fn frontier(view: &View) -> Res<Vec<Chart>> {
    let points = view.select(
        &[Axis::Linger, Axis::Batch, Axis::Codec, Axis::Acks],
        |_| true,
    );
    let points: Vec<_> = points.into_iter().filter(|(_, s)| s.sustained).collect();
    if points.is_empty() {
        return Ok(Vec::new());
    }
    let x = bounds(points.iter().map(|(_, s)| s.mb_per_s.median), false);
    let y = bounds(points.iter().map(|(_, s)| s.publish_p99_ms.median), true);
    let title = "Latency–throughput frontier per codec (sustained points)".to_string();
    let codecs = view.codecs();
    let svg = svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(&title, (FONT, 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x.0..x.1, (y.0..y.1).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("achieved MB/s (median)")
            .y_desc("publish p99 ms (median, log)")
            .draw()?;
        for (i, codec) in codecs.iter().enumerate() {
            let mut mine: Vec<(f64, f64)> = points
                .iter()
                .filter(|(p, _)| &p.codec_label() == codec)
                .map(|(_, s)| (s.mb_per_s.median, s.publish_p99_ms.median))
                .filter(|(_, l)| *l > 0.0)
                .collect();
            if mine.is_empty() {
                continue;
            }
            let c = color(i);
            chart.draw_series(
                mine.iter()
                    .map(|&(t, l)| Circle::new((t, l), 3, c.mix(0.45))),
            )?;
            mine.sort_by(|a, b| b.0.total_cmp(&a.0));
            let mut front = Vec::new();
            let mut best = f64::INFINITY;
            for (t, l) in mine {
                if l < best {
                    best = l;
                    front.push((t, l));
                }
            }
            front.reverse();
            chart
                .draw_series(LineSeries::new(front, c.stroke_width(2)))?
                .label(codec.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })?;
    Ok(vec![Chart {
        title,
        svg,
        note: view.caption(&view.acks_list()),
    }])
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

/// p99 at one fixed load over linger.ms × batch.size (first codec and acks).
fn heatmap(view: &View) -> Res<Vec<Chart>> {
    let Some(load) = chosen_load(view) else {
        return Ok(Vec::new());
    };
    let cells = view.select(
        &[Axis::Linger, Axis::Batch],
        |m| matches!(m, Mode::FixedLoad { offered_mbps } if *offered_mbps == load),
    );
    if cells.is_empty() {
        return Ok(Vec::new());
    }
    let a = &view.header.plan.axes;
    let (lingers, batches) = (&a.linger_ms, &a.batch_size);
    let (lo, hi) = bounds(cells.iter().map(|(_, s)| s.publish_p99_ms.median), true);
    let codec = cells[0].0.codec_label();
    let acks = view.first_acks();
    let title = format!(
        "Publish p99 at {load} MB/s offered — linger.ms × batch.size ({codec}, acks={acks})"
    );
    let svg = svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(&title, (FONT, 15))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..batches.len() as f64, 0f64..lingers.len() as f64)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("batch.size")
            .y_desc("linger.ms")
            .x_labels(batches.len() * 2 + 1)
            .y_labels(lingers.len() * 2 + 1)
            .x_label_formatter(&|v| index_label(*v, batches, |b| bytes_label(*b as f64)))
            .y_label_formatter(&|v| index_label(*v, lingers, |l| l.to_string()))
            .draw()?;
        let centre =
            TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
        for (p, s) in &cells {
            let (Some(xi), Some(yi)) = (
                batches.iter().position(|b| *b == p.batch_size),
                lingers.iter().position(|l| *l == p.linger_ms),
            ) else {
                continue;
            };
            let v = s.publish_p99_ms.median;
            // Green (low) to red (high), on a log scale.
            let t = if hi > lo && v > 0.0 {
                ((v.ln() - lo.ln()) / (hi.ln() - lo.ln())).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let fill = HSLColor(0.33 * (1.0 - t), 0.65, 0.55);
            let (x0, y0) = (xi as f64, yi as f64);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x0 + 0.02, y0 + 0.02), (x0 + 0.98, y0 + 0.98)],
                fill.filled(),
            )))?;
            let label = if s.sustained {
                format!("{v:.2} ms")
            } else {
                format!("{v:.2} ms ✗")
            };
            chart.draw_series(std::iter::once(Text::new(
                label,
                (x0 + 0.5, y0 + 0.5),
                centre.clone(),
            )))?;
        }
        Ok(())
    })?;
    Ok(vec![Chart {
        title,
        svg,
        note: format!(
            "{} ✗: the load was not sustained (achieved < 95 % or publish delay p99 > 100 ms).",
            view.caption(&acks)
        ),
    }])
}

/// A tick label for cell index `v` (labels at the cell centres only).
fn index_label<T>(v: f64, values: &[T], show: impl Fn(&T) -> String) -> String {
    let i = v - 0.5;
    if (i - i.round()).abs() < 1e-6 && i >= 0.0 {
        values.get(i.round() as usize).map(show).unwrap_or_default()
    } else {
        String::new()
    }
}

fn bytes_label(b: f64) -> String {
    const MIB: f64 = 1_048_576.0;
    if b >= MIB && (b / MIB).fract() == 0.0 {
        format!("{}MiB", b / MIB)
    } else if b >= 1024.0 {
        format!("{:.0}KiB", b / 1024.0)
    } else {
        format!("{b:.0}")
    }
}

/// What acks=all costs: each configuration measured with both acks, acks=1 against acks=all,
/// for max throughput and for p99 at the chosen load.
fn acks_cost(view: &View) -> Res<Vec<Chart>> {
    let acks = &view.header.plan.axes.acks;
    if !(acks.iter().any(|a| a == "1") && acks.iter().any(|a| a == "all")) {
        return Ok(Vec::new());
    }
    let free = [Axis::Linger, Axis::Batch, Axis::Codec, Axis::Acks];
    let load = chosen_load(view);
    let mut out = Vec::new();
    let kinds: [Comparison; 2] = [
        ("max sustainable MB/s", "MB/s", Box::new(is_max), |s| {
            s.mb_per_s.median
        }),
        (
            "publish p99 at the chosen load",
            "ms",
            Box::new(
                move |m: &Mode| matches!((m, load), (Mode::FixedLoad { offered_mbps }, Some(l)) if *offered_mbps == l),
            ),
            |s| s.publish_p99_ms.median,
        ),
    ];
    for (what, unit, mode, figure) in kinds {
        let points = view.select(&free, mode);
        let key = |p: &Point| format!("{} {} {}", p.linger_ms, p.batch_size, p.codec_label());
        let mut pairs: BTreeMap<String, (Option<f64>, Option<f64>)> = BTreeMap::new();
        for (p, s) in &points {
            let e = pairs.entry(key(p)).or_default();
            match p.acks.as_str() {
                "1" => e.0 = Some(figure(s)),
                "all" => e.1 = Some(figure(s)),
                _ => {}
            }
        }
        let xy: Vec<(f64, f64)> = pairs
            .values()
            .filter_map(|(one, all)| one.zip(*all))
            .collect();
        if xy.is_empty() {
            continue;
        }
        let (lo, hi) = bounds(xy.iter().flat_map(|(a, b)| [*a, *b]), false);
        let title = format!("Cost of acks=all: {what}");
        let svg = svg(|root| {
            let mut chart = ChartBuilder::on(root)
                .caption(&title, (FONT, 16))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(lo..hi, lo..hi)?;
            chart
                .configure_mesh()
                .x_desc(format!("acks=1 ({unit})"))
                .y_desc(format!("acks=all ({unit})"))
                .draw()?;
            chart
                .draw_series(LineSeries::new([(lo, lo), (hi, hi)], BLACK.mix(0.4)))?
                .label("equal")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK.mix(0.4)));
            chart
                .draw_series(
                    xy.iter()
                        .map(|&(a, b)| Circle::new((a, b), 4, color(0).filled())),
                )?
                .label("one configuration (linger, batch, codec)")
                .legend(|(x, y)| Circle::new((x + 8, y), 4, color(0).filled()));
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()?;
            Ok(())
        })?;
        out.push(Chart {
            title,
            svg,
            note: view.caption("1 and all"),
        });
    }
    Ok(out)
}

/// OMB-style latency curves: publish latency by percentile (log "nines" axis) at the chosen
/// load, for up to eight configurations spread from the best p99 to the worst; each from its
/// median repetition.
fn percentile_curves(view: &View) -> Res<Vec<Chart>> {
    let Some(load) = chosen_load(view) else {
        return Ok(Vec::new());
    };
    let mut recs: Vec<_> = view
        .points
        .iter()
        .filter(|r| r.error.is_none())
        .filter(
            |r| matches!(r.point.mode, Mode::FixedLoad { offered_mbps } if offered_mbps == load),
        )
        .filter_map(|r| r.summary.as_ref().map(|s| (r, s.publish_p99_ms.median)))
        .collect();
    if recs.is_empty() {
        return Ok(Vec::new());
    }
    recs.sort_by(|a, b| a.1.total_cmp(&b.1));
    let n = recs.len();
    let picks: Vec<usize> = if n <= MAX_CURVES {
        (0..n).collect()
    } else {
        (0..MAX_CURVES)
            .map(|i| i * (n - 1) / (MAX_CURVES - 1))
            .collect()
    };
    let nines = [
        (50.0, "p50"),
        (90.0, "p90"),
        (99.0, "p99"),
        (99.9, "p99.9"),
        (99.99, "p99.99"),
    ];
    let x_of = |q: f64| -(1.0 - q / 100.0).log10();
    let mut curves = Vec::new();
    for &i in &picks {
        let r = recs[i].0;
        let mut reps: Vec<_> = r.repetitions.iter().collect();
        reps.sort_by(|a, b| {
            a.result
                .publish_latency_ms
                .p99
                .total_cmp(&b.result.publish_latency_ms.p99)
        });
        let Some(rep) = reps.get(reps.len() / 2) else {
            continue;
        };
        let p = &rep.result.publish_latency_ms;
        let ys = [p.p50, p.p90, p.p99, p.p99_9, p.p99_99];
        let pts: Vec<(f64, f64)> = nines
            .iter()
            .zip(ys)
            .map(|((q, _), y)| (x_of(*q), y.max(0.001)))
            .collect();
        curves.push((r.point.settings_label(), pts));
    }
    if curves.is_empty() {
        return Ok(Vec::new());
    }
    let y = bounds(curves.iter().flat_map(|(_, p)| p.iter().map(|q| q.1)), true);
    let title = format!("Publish latency by percentile at {load} MB/s offered");
    let svg = svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(&title, (FONT, 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.2f64..4.2, (y.0..y.1).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("publish latency ms (log)")
            .x_labels(5)
            .x_label_formatter(&|v| {
                nines
                    .iter()
                    .find(|(q, _)| (x_of(*q) - v).abs() < 0.15)
                    .map(|(_, l)| l.to_string())
                    .unwrap_or_default()
            })
            .draw()?;
        for (i, (label, pts)) in curves.into_iter().enumerate() {
            let c = color(i);
            chart
                .draw_series(LineSeries::new(pts, c.stroke_width(2)))?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FONT, 10))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })?;
    Ok(vec![Chart {
        title,
        svg,
        note: view.caption(&view.acks_list()),
    }])
}

/// Compression ratio and broker CPU seconds per GB per codec: median over the codec's points
/// (all other settings), whiskers min–max over them.
fn codec_costs(view: &View) -> Res<Vec<Chart>> {
    let codecs = view.codecs();
    let per_codec = |figure: &dyn Fn(&Summary) -> Option<f64>| -> Vec<(String, Stat)> {
        codecs
            .iter()
            .filter_map(|c| {
                let v: Vec<f64> = view
                    .points
                    .iter()
                    .filter(|r| r.error.is_none() && &r.point.codec_label() == c)
                    .filter_map(|r| r.summary.as_ref().and_then(figure))
                    .collect();
                Stat::of(&v).map(|s| (c.clone(), s))
            })
            .collect()
    };
    let ratio = per_codec(&|s| Some(s.compression_ratio.median));
    let cpu = per_codec(&|s| s.cpu_s_per_gb.map(|c| c.median));
    let mut out = Vec::new();
    for (what, unit, bars) in [
        (
            "Compression ratio per codec",
            "uncompressed / on the wire",
            ratio,
        ),
        (
            "Broker CPU per GB of values, per codec",
            "CPU s per GB",
            cpu,
        ),
    ] {
        if bars.is_empty() {
            continue;
        }
        let hi = bounds(bars.iter().map(|(_, s)| s.max), false).1;
        let names: Vec<String> = bars.iter().map(|(n, _)| n.clone()).collect();
        let title = what.to_string();
        let svg = svg(|root| {
            let mut chart = ChartBuilder::on(root)
                .caption(&title, (FONT, 16))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(0f64..bars.len() as f64, 0f64..hi)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_desc("compression.type")
                .y_desc(unit)
                .x_labels(bars.len() * 2 + 1)
                .x_label_formatter(&|v| index_label(*v, &names, |n| n.clone()))
                .draw()?;
            for (i, (_, s)) in bars.iter().enumerate() {
                let x = i as f64;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x + 0.2, 0.0), (x + 0.8, s.median)],
                    color(i).filled(),
                )))?;
                chart.draw_series(std::iter::once(ErrorBar::new_vertical(
                    x + 0.5,
                    s.min,
                    s.median,
                    s.max,
                    BLACK.stroke_width(1),
                    10,
                )))?;
            }
            Ok(())
        })?;
        out.push(Chart {
            title,
            svg,
            note: format!(
                "Median over each codec's points (all linger, batch and acks values), whiskers min–max. {}",
                view.caption(&view.acks_list())
            ),
        });
    }
    Ok(out)
}
