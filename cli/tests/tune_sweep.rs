//! `weir tune sweep` and `weir tune report` end to end against a real `weir serve`: a
//! 2 × 2 × 2 × 2 sweep (linger.ms × batch.size × compression × acks) at two fixed loads gives
//! every point once and a complete report (HTML with every chart, Markdown with the
//! recommendations, CSV) that headless Chromium renders without a console error; a
//! max-throughput point records the runner's search and the rate it measured at; a plan over its
//! budget is refused before anything runs.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::ServeProcess;

fn weir(args: &[&str], limit_s: u64) -> String {
    support::run(
        Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(args)
            .env("RUST_BACKTRACE", "0"),
        b"",
        Duration::from_secs(limit_s),
    )
}

fn serve(dir: &Path) -> ServeProcess {
    ServeProcess::one_shard(dir, &[])
}

fn write_plan(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("plan.toml");
    std::fs::write(&p, text).unwrap();
    p
}

const TINY: &str = r#"
name = "tiny"
description = "the test suite's 2 x 2 x 2 x 2 sweep"
budget_minutes = 5
[timing]
warmup_s = 0
measure_s = 0.25
repetitions = 2
# The ceiling is checked by the max-throughput test; 32 sink runs would only add time here.
ceiling = false
[modes]
fixed_load_mbps = [0.5, 2]
[axes]
linger_ms = [0, 5]
batch_size = [16384, 65536]
compression = ["none", "lz4"]
acks = ["1", "all"]
partitions = [2]
"#;

/// The ids of the point lines of a results file (each must parse).
fn point_ids(results: &Path) -> Vec<String> {
    std::fs::read_to_string(results)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "point")
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_tiny_sweep_gives_every_point_once_and_a_complete_report_that_chromium_renders() {
    let dir = tempfile::tempdir().unwrap();
    let broker = serve(dir.path());
    let plan = write_plan(dir.path(), TINY);
    let results = dir.path().join("r.jsonl");
    weir(
        &[
            "tune",
            "sweep",
            "--plan",
            plan.to_str().unwrap(),
            "--bootstrap",
            &broker.addr,
            "--out",
            results.to_str().unwrap(),
            "--limits-s",
            "0.2",
        ],
        240,
    );
    let ids = point_ids(&results);
    assert_eq!(ids.len(), 32, "{ids:#?}");
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 32);
    // Each point measured twice at its load, against this broker (its CPU read by port).
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&results)
            .unwrap()
            .lines()
            .nth(1)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["repetitions"].as_array().unwrap().len(), 2);
    assert_eq!(first["error"], serde_json::Value::Null, "{first:#}");
    let rep = &first["repetitions"][0]["result"];
    assert_eq!(rep["config"]["producer_rate"], 0.5e6 / 1024.0);
    assert!(rep["publish"]["records"].as_u64().unwrap() > 0, "{rep:#}");
    assert_eq!(rep["broker_cpu"]["pid"], broker.pid());
    // The machine's limits, measured before the first point on the results' filesystem: each
    // a figure or the reason there is none (O_DIRECT needs a real disk, not tmpfs).
    let header: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&results)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let limits = &header["limits"];
    assert!(
        limits["tcp_loopback_mb_per_s"].as_f64().unwrap() > 0.0,
        "{limits:#}"
    );
    assert!(
        limits["disk_write_mb_per_s"]
            .as_f64()
            .is_some_and(|w| w > 0.0)
            || limits["disk_error"].is_string(),
        "{limits:#}"
    );
    assert_eq!(limits["dir"], dir.path().display().to_string());

    let out = dir.path().join("report");
    let summary = weir(
        &[
            "tune",
            "report",
            results.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--slo-p99-ms",
            "1000",
            "--target-mbps",
            "1",
        ],
        60,
    );
    assert!(
        summary.contains("### highest throughput with publish p99 ≤ 1000 ms"),
        "{summary}"
    );
    assert!(summary.contains("### lowest publish p99 sustaining 1 MB/s"));
    // The Java defaults (linger 5, 16 KiB, acks all, no compression) were measured.
    assert!(
        summary.contains("Java client (Kafka 4.0) defaults (linger.ms 5, batch.size 16384, acks all): ")
            && !summary.contains("Java client (Kafka 4.0) defaults (linger.ms 5, batch.size 16384, acks all): not in this sweep"),
        "{summary}"
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    for title in [
        "Latency–throughput frontier per codec",
        "Publish p99 at ",
        "Cost of acks=all: publish p99 at ",
        "Publish latency by percentile at ",
        "Compression ratio per codec",
        "Broker CPU per GB of values, per codec",
    ] {
        assert!(html.contains(title), "no chart {title:?}");
    }
    assert!(html.matches("<svg").count() >= 6);
    assert!(html.contains("Machine: ") && html.contains("acks 1 and all"));
    // Every caption (the page's and each chart's) states the limits measured in the run.
    let stated = "Limits measured in the run: ";
    assert_eq!(
        html.matches(stated).count(),
        html.matches("<figcaption>").count() + 1,
        "{html}"
    );
    assert!(summary.contains(stated) && summary.contains("loopback TCP (1 stream) "));
    // Self-contained: nothing to fetch.
    for external in ["src=", "href=\"http", "url(", "@import"] {
        assert!(!html.contains(external), "{external} in the page");
    }
    let csv = std::fs::read_to_string(out.join("points.csv")).unwrap();
    assert_eq!(csv.lines().count(), 33);
    assert_eq!(
        std::fs::read_to_string(out.join("summary.md")).unwrap(),
        summary
    );
    chromium_renders(&out.join("report.html"), dir.path());
    broker.stop();
}

/// Headless Chromium loads the page without a console message and draws it.
fn chromium_renders(page: &Path, dir: &Path) {
    let chromium = |args: &[String]| {
        let profile = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("chromium");
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args);
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("chromium (scripts/test installs it): {e}"));
        assert!(out.status.success(), "{out:?}");
        (
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let url = format!("file://{}", page.display());
    let (dom, log) = chromium(&["--dump-dom".into(), url.clone()]);
    let console: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught"))
        .collect();
    assert!(console.is_empty(), "{console:#?}");
    assert!(dom.matches("<svg").count() >= 6, "{dom}");
    let shot = dir.join("report.png");
    chromium(&[
        "--window-size=1200,2400".into(),
        format!("--screenshot={}", shot.display()),
        url,
    ]);
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{}",
        png.len()
    );
}

#[test]
fn a_max_throughput_point_records_the_search_and_measures_at_its_rate() {
    let dir = tempfile::tempdir().unwrap();
    let broker = serve(dir.path());
    let plan = write_plan(
        dir.path(),
        &TINY
            .replace("fixed_load_mbps = [0.5, 2]", "max_throughput = true")
            .replace("linger_ms = [0, 5]", "linger_ms = [5]")
            .replace("batch_size = [16384, 65536]", "batch_size = [65536]")
            .replace(
                "compression = [\"none\", \"lz4\"]",
                "compression = [\"lz4\"]",
            )
            .replace("acks = [\"1\", \"all\"]", "acks = [\"1\"]")
            .replace("repetitions = 2", "repetitions = 1")
            .replace("measure_s = 0.25", "measure_s = 1"),
    );
    let results = dir.path().join("r.jsonl");
    weir(
        &[
            "tune",
            "sweep",
            "--plan",
            plan.to_str().unwrap(),
            "--bootstrap",
            &broker.addr,
            "--out",
            results.to_str().unwrap(),
            "--limits-s",
            "0",
        ],
        120,
    );
    let text = std::fs::read_to_string(&results).unwrap();
    let point: serde_json::Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
    let result = &point["repetitions"][0]["result"];
    let search = result["rate_search"].as_array().unwrap();
    assert!(search.len() >= 2, "{result:#}");
    assert_eq!(search[0]["offered"], 0.0, "the closed-loop probe first");
    let rate = point["offered_msg_per_s"].as_f64().unwrap();
    assert_eq!(result["config"]["producer_rate"].as_f64().unwrap(), rate);
    assert!(search.iter().any(|s| s["offered"].as_f64() == Some(rate)));
    let out = dir.path().join("report");
    weir(
        &[
            "tune",
            "report",
            results.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        60,
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("Max sustainable throughput vs batch.size — lz4, acks=1"));
    // --limits-s 0 skipped the limits: the captions say so.
    assert!(html.contains("Limits (disk, network): not measured"));
    broker.stop();
}

#[test]
fn a_plan_over_its_budget_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        dir.path(),
        &TINY.replace("budget_minutes = 5", "budget_minutes = 0.1"),
    );
    let results = dir.path().join("r.jsonl");
    let err = support::try_run(
        Command::new(env!("CARGO_BIN_EXE_weir")).args([
            "tune",
            "sweep",
            "--plan",
            plan.to_str().unwrap(),
            // Nothing listens there: refused before connecting.
            "--bootstrap",
            "127.0.0.1:1",
            "--out",
            results.to_str().unwrap(),
        ]),
        b"",
        Duration::from_secs(30),
    )
    .unwrap_err();
    assert!(
        err.contains("32 points would take up to") && err.contains("budget_minutes = 0.1"),
        "{err}"
    );
    assert!(!results.exists());
}
