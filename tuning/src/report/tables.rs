//! report::tables — the Markdown summary (what ran, on what and against which measured limits,
//! the recommendations, the best points with their share of the disk-write limit, the charts'
//! list) and the CSV of every point.
//!
//! Owns text layout. Must not choose (recommend does) or draw (charts does).

use std::fmt::Write as _;

use super::{Chart, View};
use crate::recommend::{self, Recommendation};
use crate::results::{PointRecord, Stat};

/// Most rows of the best-points table.
const TOP_ROWS: usize = 10;

/// summary.md
pub(super) fn markdown(view: &View, recs: &[Recommendation], charts: &[Chart]) -> String {
    let h = view.header;
    let ok = view
        .points
        .iter()
        .filter(|r| r.error.is_none() && r.summary.is_some())
        .count();
    let mut s = format!("# weir tune report: {}\n\n", h.plan.name);
    let _ = writeln!(
        s,
        "{} points ({} with figures, {} failed) against {}.\n",
        view.points.len(),
        ok,
        view.points.iter().filter(|r| r.error.is_some()).count(),
        view.target()
    );
    let _ = writeln!(s, "{}\n", view.caption(&view.acks_list()));
    if view.disk_write_mb_per_s().is_some() {
        s += "\"÷ disk write\" is a throughput (MB/s of values) divided by the disk's O_DIRECT sequential write limit measured in the run.\n\n";
    }
    s += "## Recommendations\n\n";
    if recs.is_empty() {
        s += "None asked for: give --slo-p99-ms and/or --target-mbps.\n\n";
    }
    for r in recs {
        s += &recommend::markdown(r, view.disk_write_mb_per_s());
    }
    s += "## Highest sustained throughput\n\n";
    s += "| settings | mode | MB/s | ÷ disk write | msg/s | publish p50 ms | p99 ms | p99.9 ms | compression | CPU s/GB |\n";
    s += "|---|---|---|---|---|---|---|---|---|---|\n";
    let mut best: Vec<&PointRecord> = view
        .points
        .iter()
        .filter(|r| r.error.is_none() && r.summary.as_ref().is_some_and(|s| s.sustained))
        .collect();
    best.sort_by(|a, b| {
        let m = |r: &PointRecord| r.summary.as_ref().map_or(0.0, |s| s.mb_per_s.median);
        m(b).total_cmp(&m(a))
    });
    for r in best.iter().take(TOP_ROWS) {
        let Some(x) = &r.summary else { continue };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.0} | {:.2} | {} | {:.2} | {:.2} | {} |",
            r.point.settings_label(),
            r.point.mode.label(),
            spread(&x.mb_per_s),
            view.disk_ratio(x.mb_per_s.median),
            x.msg_per_s.median,
            x.publish_p50_ms.median,
            spread(&x.publish_p99_ms),
            x.publish_p99_9_ms.median,
            x.compression_ratio.median,
            x.cpu_s_per_gb
                .map_or("–".into(), |c| format!("{:.1}", c.median))
        );
    }
    let bound: Vec<&PointRecord> = view
        .points
        .iter()
        .filter(|r| {
            r.summary
                .as_ref()
                .is_some_and(|s| s.ceiling_sufficient == Some(false))
        })
        .collect();
    if !bound.is_empty() {
        let _ = writeln!(
            s,
            "\n**{} point(s) may be generator-bound** (the generator's null-sink ceiling was under 2× their rate): their throughput is a lower bound.",
            bound.len()
        );
    }
    let failed: Vec<&PointRecord> = view.points.iter().filter(|r| r.error.is_some()).collect();
    if !failed.is_empty() {
        s += "\n## Failed points\n\n";
        for r in failed {
            let _ = writeln!(s, "- `{}`: {}", r.id, r.error.as_deref().unwrap_or(""));
        }
    }
    s += "\n## Charts (report.html)\n\n";
    for c in charts {
        let _ = writeln!(s, "- {}", c.title);
    }
    s
}

fn spread(x: &Stat) -> String {
    format!("{:.2} ({:.2}–{:.2})", x.median, x.min, x.max)
}

/// points.csv: one row per point, medians and spreads.
pub(super) fn csv(view: &View) -> String {
    let points = view.points;
    let mut s = String::from(
        "id,mode,offered_mbps,linger_ms,batch_size,compression,acks,message_size,partitions,producers,key_distribution,max_in_flight,idempotence,broker,repetitions,mb_per_s_median,mb_per_s_min,mb_per_s_max,mb_per_s_per_disk_write,msg_per_s_median,publish_p50_ms,publish_p99_ms_median,publish_p99_ms_min,publish_p99_ms_max,publish_p99_9_ms,delay_p99_ms,e2e_p99_ms,compression_ratio,cpu_s_per_gb,write_amplification,failed,sustained,ceiling_sufficient,error\n",
    );
    for r in points {
        let p = &r.point;
        let offered = match p.mode {
            crate::point::Mode::FixedLoad { offered_mbps } => offered_mbps.to_string(),
            crate::point::Mode::MaxThroughput => String::new(),
        };
        let opt = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v:.4}"));
        let sm = r.summary.as_ref();
        let f = |get: &dyn Fn(&crate::results::Summary) -> f64| opt(sm.map(get));
        let fields = [
            quote(&r.id),
            p.mode.label(),
            offered,
            p.linger_ms.to_string(),
            p.batch_size.to_string(),
            p.codec_label(),
            p.acks.clone(),
            p.message_size.to_string(),
            p.partitions.to_string(),
            p.producers.to_string(),
            p.key_distribution.clone(),
            p.max_in_flight.to_string(),
            p.idempotence.to_string(),
            quote(&p.broker),
            r.repetitions.len().to_string(),
            f(&|s| s.mb_per_s.median),
            f(&|s| s.mb_per_s.min),
            f(&|s| s.mb_per_s.max),
            opt(sm
                .zip(view.disk_write_mb_per_s())
                .map(|(s, w)| s.mb_per_s.median / w)),
            f(&|s| s.msg_per_s.median),
            f(&|s| s.publish_p50_ms.median),
            f(&|s| s.publish_p99_ms.median),
            f(&|s| s.publish_p99_ms.min),
            f(&|s| s.publish_p99_ms.max),
            f(&|s| s.publish_p99_9_ms.median),
            opt(sm.and_then(|s| s.delay_p99_ms.map(|d| d.median))),
            opt(sm.and_then(|s| s.e2e_p99_ms.map(|d| d.median))),
            f(&|s| s.compression_ratio.median),
            opt(sm.and_then(|s| s.cpu_s_per_gb.map(|d| d.median))),
            opt(sm.and_then(|s| s.write_amplification.map(|d| d.median))),
            sm.map_or(String::new(), |s| s.failed.to_string()),
            sm.map_or(String::new(), |s| s.sustained.to_string()),
            sm.and_then(|s| s.ceiling_sufficient)
                .map_or(String::new(), |b| b.to_string()),
            quote(r.error.as_deref().unwrap_or("")),
        ];
        s += &fields.join(",");
        s.push('\n');
    }
    s
}

/// A CSV field, quoted when it needs to be.
fn quote(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}
