//! report::charts::throughput — maximum sustainable throughput against batch.size per
//! linger.ms, and the latency–throughput frontier per codec.
//!
//! Owns those two charts. Must not choose what other charts show.

use std::collections::BTreeMap;

use plotters::prelude::*;

use super::{
    bounds, bytes_label, color, draw_legend, index_label, is_max, svg, Res, FONT, MAX_PER_KIND,
};
use crate::point::Point;
use crate::report::{Axis, Chart, View};
use crate::results::{Stat, Summary};

/// Maximum sustainable throughput against batch.size, a line per linger.ms, per codec × acks.
pub(super) fn throughput_vs_batch(view: &View) -> Res<Vec<Chart>> {
    let points = view.select(
        &[Axis::Linger, Axis::Batch, Axis::Codec, Axis::Acks],
        is_max,
    );
    let batches = &view.header.plan.axes.batch_size;
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
                    .push((batch_position(batches, p.batch_size), s.mb_per_s));
            }
            let y = bounds(mine.iter().map(|(_, s)| s.mb_per_s.max), false);
            let title = format!("Max sustainable throughput vs batch.size — {codec}, acks={acks}");
            let svg = svg(|root| {
                let mut chart = ChartBuilder::on(root)
                    .caption(&title, (FONT, 16))
                    .margin(12)
                    .x_label_area_size(40)
                    .y_label_area_size(60)
                    .build_cartesian_2d(0f64..batches.len() as f64, y.0..y.1)?;
                chart
                    .configure_mesh()
                    .x_desc("batch.size (the plan's values, in order)")
                    .y_desc("MB/s (median, min–max)")
                    .x_labels(batches.len() * 2 + 1)
                    .x_label_formatter(&|v| index_label(*v, batches, |b| bytes_label(*b as f64)))
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
                draw_legend(&mut chart, false)?;
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
pub(super) fn frontier(view: &View) -> Res<Vec<Chart>> {
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
        draw_legend(&mut chart, false)?;
        Ok(())
    })?;
    Ok(vec![Chart {
        title,
        svg,
        note: view.caption(&view.acks_list()),
    }])
}

/// Where a batch.size sits on the chart: the centre of its slot in the plan's list.
fn batch_position(batches: &[usize], batch_size: usize) -> f64 {
    batches.iter().position(|&b| b == batch_size).unwrap_or(0) as f64 + 0.5
}
