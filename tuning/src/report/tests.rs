//! The report's statement of the machine's measured limits, against hand-made results: every
//! chart caption and summary.md state them, throughputs are shown as shares of the disk-write
//! limit, and a file from before limits were recorded says "not measured".

use std::collections::BTreeMap;

use bench::limits::Limits;

use super::*;
use crate::machine::Machine;
use crate::plan::SweepPlan;
use crate::results::{Stat, TargetInfo, FORMAT, VERSION};

fn header(limits: Option<Limits>) -> Header {
    let plan = SweepPlan::parse(
        "name = \"limits\"\nbudget_minutes = 5\n[timing]\nwarmup_s = 0\nmeasure_s = 1\n\
         repetitions = 1\nceiling = false\n[modes]\nmax_throughput = true\n[axes]\n\
         linger_ms = [0, 5]\nbatch_size = [16384, 65536]\ncompression = [\"none\"]\nacks = [\"1\"]\n",
    )
    .unwrap();
    Header {
        format: FORMAT.into(),
        version: VERSION,
        started_unix_ms: 1,
        weir_version: "0".into(),
        plan,
        machine: Machine::this(),
        target: TargetInfo {
            kind: "bootstrap".into(),
            bootstrap: "127.0.0.1:9092".into(),
            broker_settings: BTreeMap::new(),
        },
        limits,
    }
}

fn limits() -> Limits {
    Limits {
        dir: "/data".into(),
        disk_write_mb_per_s: Some(400.0),
        disk_read_mb_per_s: Some(900.0),
        disk_bytes: 512 << 20,
        disk_block_bytes: 1 << 20,
        disk_depth: 8,
        disk_error: None,
        tcp_loopback_mb_per_s: Some(3000.0),
        tcp_error: None,
        elapsed_s: 4.0,
    }
}

/// The plan's points, each with a made-up summary (`mbps` grows with the point's index).
fn points(h: &Header) -> Vec<PointRecord> {
    let one = |x: f64| Stat {
        median: x,
        min: x,
        max: x,
    };
    h.plan
        .points()
        .unwrap()
        .into_iter()
        .enumerate()
        .map(|(i, point)| {
            let mbps = 100.0 * (i + 1) as f64;
            PointRecord {
                id: point.id(),
                point,
                offered_msg_per_s: Some(mbps * 1e6 / 1024.0),
                repetitions: Vec::new(),
                summary: Some(Summary {
                    mb_per_s: one(mbps),
                    msg_per_s: one(mbps * 1e6 / 1024.0),
                    publish_p50_ms: one(1.0),
                    publish_p99_ms: one(2.0 + i as f64),
                    publish_p99_9_ms: one(9.0),
                    delay_p99_ms: None,
                    e2e_p99_ms: None,
                    compression_ratio: one(1.0),
                    cpu_s_per_gb: None,
                    write_amplification: None,
                    failed: 0,
                    sustained: true,
                    ceiling_sufficient: None,
                }),
                error: None,
            }
        })
        .collect()
}

fn report(headers: Vec<Header>) -> (tempfile::TempDir, Vec<Chart>, String, String, String) {
    let points = points(&headers[0]);
    let results = Results {
        headers,
        points,
        torn_tail: false,
    };
    let view = View::new(
        results.headers.last().unwrap(),
        &results.points,
        results.limits(),
    );
    let charts = charts::all(&view).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let criteria = Criteria {
        slo_p99_ms: Some(10.0),
        target_mbps: None,
    };
    let written = write(&results, dir.path(), &criteria).unwrap();
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    let csv = std::fs::read_to_string(dir.path().join("points.csv")).unwrap();
    (dir, charts, written.summary_markdown, html, csv)
}

#[test]
fn every_caption_and_the_summary_state_the_limits_measured_in_the_run() {
    let (_dir, charts, summary, html, csv) = report(vec![header(Some(limits()))]);
    let stated = "Limits measured in the run: disk under /data (O_DIRECT, 1024 KiB × 8 in flight, \
                  512 MiB): write 400 MB/s, read 900 MB/s; loopback TCP (1 stream) 3000 MB/s";
    assert!(!charts.is_empty());
    for c in &charts {
        assert!(c.note.contains(stated), "{}: {}", c.title, c.note);
    }
    assert!(summary.contains(stated), "{summary}");
    assert!(html.contains(&html::esc(stated)));
    // The best point (400 MB/s) is the disk's write limit: ratio 1.
    assert!(
        summary.contains("| 400.00 (400.00–400.00) | 1.000 |"),
        "{summary}"
    );
    assert!(
        summary.contains(
            "throughput 400.00 MB/s (1.000 of the disk's O_DIRECT write limit, 400 MB/s)"
        ),
        "{summary}"
    );
    assert!(html.contains("<td>0.250</td>"), "the 100 MB/s point");
    let header = csv.lines().next().unwrap().split(',').collect::<Vec<_>>();
    let column = header
        .iter()
        .position(|c| *c == "mb_per_s_per_disk_write")
        .unwrap();
    let ratios: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(column).unwrap())
        .collect();
    assert_eq!(ratios, ["0.2500", "0.5000", "0.7500", "1.0000"]);
}

#[test]
fn results_without_limits_say_not_measured_and_show_no_ratio() {
    let (_dir, charts, summary, _html, csv) = report(vec![header(None)]);
    for c in &charts {
        assert!(
            c.note.contains("Limits (disk, network): not measured"),
            "{}",
            c.note
        );
    }
    assert!(summary.contains("not measured") && !summary.contains("O_DIRECT write limit"));
    assert!(
        summary.contains("| 400.00 (400.00–400.00) | – |"),
        "{summary}"
    );
    assert!(csv.lines().nth(1).unwrap().contains(",100.0000,,"), "{csv}");
    // A resumption that did measure them: those are stated.
    let (_dir, charts, ..) = report(vec![header(Some(limits())), header(None)]);
    assert!(charts[0].note.contains("write 400 MB/s"));
}

#[test]
fn a_limit_that_could_not_be_measured_is_stated_with_its_reason() {
    let mut l = limits();
    l.disk_write_mb_per_s = None;
    l.disk_read_mb_per_s = None;
    l.disk_error = Some("opening: Invalid argument (os error 22)".into());
    let (_dir, charts, summary, ..) = report(vec![header(Some(l))]);
    assert!(charts[0]
        .note
        .contains("disk not measured (opening: Invalid argument (os error 22)); loopback TCP (1 stream) 3000 MB/s"));
    assert!(!summary.contains("O_DIRECT write limit"));
}
