//! report::charts::costs — what acks=all costs against acks=1, and compression ratio and
//! broker CPU per GB per codec.
//!
//! Owns those charts. Must not choose the load (`chosen_load` does).

use std::collections::BTreeMap;

use plotters::prelude::*;

use super::{
    bounds, chosen_load, color, draw_legend, index_label, is_max, svg, Comparison, Res, FONT,
};
use crate::point::{Mode, Point};
use crate::report::{Axis, Chart, View};
use crate::results::{Stat, Summary};

/// What acks=all costs: each configuration measured with both acks, acks=1 against acks=all,
/// for max throughput and for p99 at the chosen load.
pub(super) fn acks_cost(view: &View) -> Res<Vec<Chart>> {
    let acks = &view.header.plan.axes.acks;
    if !(acks.iter().any(|a| a == "1") && acks.iter().any(|a| a == "all")) {
        return Ok(Vec::new());
    }
    let free = [Axis::Linger, Axis::Batch, Axis::Codec, Axis::Acks];
    let load = chosen_load(view);
    let mut out = Vec::new();
    let kinds: [Comparison; 2] = [
        (
            "max sustainable MB/s".into(),
            "MB/s",
            Box::new(is_max),
            |s| s.mb_per_s.median,
        ),
        (
            load.map_or("publish p99".into(), |l| {
                format!("publish p99 at {l} MB/s offered")
            }),
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
            draw_legend(&mut chart, false)?;
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

/// Compression ratio and broker CPU seconds per GB per codec: median over the codec's points
/// (all other settings), whiskers min–max over them.
pub(super) fn codec_costs(view: &View) -> Res<Vec<Chart>> {
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
