//! report::charts::latency — publish p99 over linger.ms × batch.size at one fixed load (a
//! heatmap), and OMB-style latency-by-percentile curves at that load.
//!
//! Owns those two charts. Must not choose the load (`chosen_load` does).

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    bounds, bytes_label, chosen_load, color, draw_legend, index_label, svg, Res, FONT, MAX_CURVES,
};
use crate::point::Mode;
use crate::report::{Axis, Chart, View};

/// p99 at one fixed load over linger.ms × batch.size (first codec and acks).
pub(super) fn heatmap(view: &View) -> Res<Vec<Chart>> {
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

/// OMB-style latency curves: publish latency by percentile (log "nines" axis) at the chosen
/// load, for up to eight configurations spread from the best p99 to the worst; each from its
/// median repetition.
pub(super) fn percentile_curves(view: &View) -> Res<Vec<Chart>> {
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
        draw_legend(&mut chart, true)?;
        Ok(())
    })?;
    Ok(vec![Chart {
        title,
        svg,
        note: view.caption(&view.acks_list()),
    }])
}
