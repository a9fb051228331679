//! `weir bench run WORKLOAD` and `weir bench compare`, and the output machinery every measuring
//! `weir bench` command shares (`OutputArgs`): the result document (`--json`), the HDR histogram
//! log (`--hdr-log`), the live progress line (off with `--quiet` or when stderr is not a
//! terminal), the null-sink ceiling check (`--check-ceiling`, on by default), the broker's CPU
//! (`--broker-pid`, else found by its listening port), and the librdkafka cross-check
//! (`--cross-check-librdkafka`: confluent-kafka in python3 on the same broker and configuration).
//!
//! Owns flags, topic creation (through `kclient::blocking`), printing and files. Must not measure:
//! phases, the search and the ceiling are `bench::runner`'s.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use bench::payload::{PayloadPool, PayloadSpec};
use bench::report::{self, BenchResult, CrossCheck};
use bench::runner::{self, Outcome, RunOptions, Target};
use bench::workload::{KeyDistributor, Plan, Workload};
use clap::Args;
use kafka_protocol::messages::ApiKey;
use kclient::producer::ProducerConfig;

use kclient::blocking as admin;

/// Output and honesty flags shared by `produce`, `run` and `compare`.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Write an HDR histogram interval log, one interval per second of the measured phase
    /// (publish latency; publish delay when a rate is offered; end-to-end latency when the
    /// workload has consumers; tags `publish_latency`, `publish_delay`, `e2e_latency`; values
    /// in µs).
    #[arg(long)]
    pub hdr_log: Option<PathBuf>,
    /// No live progress line (it is also off when stderr is not a terminal).
    #[arg(long)]
    pub quiet: bool,
    /// Also run the same load (closed loop) against an in-process null sink, after the measured
    /// phase: the generator's own ceiling. A
    /// ceiling under 2x the measured rate is reported loudly (summary and JSON warnings).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub check_ceiling: bool,
    /// The broker's pid, for its CPU seconds (default: the process listening on the bootstrap
    /// port, when it is on this machine and visible).
    #[arg(long)]
    pub broker_pid: Option<u32>,
    /// Also run the same configuration with librdkafka (confluent-kafka, python3) on the same
    /// broker, closed loop, same record count (capped at 500,000), and report both rates.
    #[arg(long)]
    pub cross_check_librdkafka: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Workload file (OpenMessaging Benchmark's names; YAML, or TOML by its .toml extension).
    pub workload: PathBuf,
    /// bootstrap.servers: one host:port.
    #[arg(long)]
    pub bootstrap: String,
    /// Name of the target in the summary and JSON.
    #[arg(long, default_value = "target")]
    pub name: String,
    /// Topic name prefix (default: weir-bench-<workload>-<unix seconds>); topics are
    /// PREFIX-0, PREFIX-1, …, created with CreateTopics when the target answers it.
    #[arg(long)]
    pub topic_prefix: Option<String>,
    /// Override the workload's test duration (seconds).
    #[arg(long)]
    pub test_seconds: Option<f64>,
    /// Override the workload's warm-up duration (seconds).
    #[arg(long)]
    pub warmup_seconds: Option<f64>,
    /// Override the workload's producerRate (records/s over all producers; 0 = search the
    /// maximum sustainable rate: ≥ 95 % achieved, publish delay p99 ≤ 100 ms and, with
    /// consumers, their backlog under a second of the rate and not growing by more than 5 % of
    /// it a second; docs/bench-results.md).
    #[arg(long)]
    pub producer_rate: Option<f64>,
    /// Write the result document (docs/bench-results.md) to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Workload file, run against every target in turn.
    pub workload: PathBuf,
    /// NAME=HOST:PORT, two or more.
    #[arg(long = "target", required = true, value_parser = parse_target)]
    pub targets: Vec<(String, String)>,
    /// Override the workload's test duration (seconds).
    #[arg(long)]
    pub test_seconds: Option<f64>,
    /// Override the workload's warm-up duration (seconds).
    #[arg(long)]
    pub warmup_seconds: Option<f64>,
    /// Write a JSON array of result documents, one per target, to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub out: OutputArgs,
}

fn parse_target(text: &str) -> anyhow::Result<(String, String)> {
    match text.split_once('=') {
        Some((name, addr)) if !name.is_empty() && addr.contains(':') => {
            Ok((name.to_string(), addr.to_string()))
        }
        _ => bail!("--target {text:?}: use NAME=HOST:PORT"),
    }
}

fn load_plan(path: &Path, test: Option<f64>, warmup: Option<f64>) -> anyhow::Result<Plan> {
    let mut plan = Workload::load(path)?.plan()?;
    if let Some(s) = test {
        plan.test = Duration::try_from_secs_f64(s).context("--test-seconds")?;
        if plan.test.is_zero() {
            bail!("--test-seconds must be positive");
        }
    }
    if let Some(s) = warmup {
        plan.warmup = Duration::try_from_secs_f64(s).context("--warmup-seconds")?;
    }
    Ok(plan)
}

fn topic_names(plan: &Plan, prefix: Option<&str>) -> Vec<String> {
    let prefix = prefix.map(str::to_string).unwrap_or_else(|| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let name: String = plan
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(120)
            .collect();
        format!("weir-bench-{name}-{secs}")
    });
    (0..plan.topics).map(|i| format!("{prefix}-{i}")).collect()
}

/// Creates the topics when the target answers CreateTopics (a null sink does not: its topics
/// exist when asked for).
fn prepare_topics(bootstrap: &str, names: &[String], partitions: u32) -> anyhow::Result<()> {
    if admin::supports(bootstrap, ApiKey::CreateTopics)? {
        admin::create_topics(bootstrap, names, partitions)
            .with_context(|| format!("creating the topics on {bootstrap}"))?;
    }
    Ok(())
}

fn options(out: &OutputArgs, kind: &str) -> RunOptions {
    RunOptions {
        broker_pid: out.broker_pid,
        check_ceiling: out.check_ceiling,
        progress: !out.quiet && std::io::stderr().is_terminal(),
        kind: kind.to_string(),
        known_ceiling: None,
    }
}

/// Everything after a run: cross-check, summary, files. Returns the result as finished.
fn finish(
    mut outcome: Outcome,
    plan: &Plan,
    target: &Target,
    out: &OutputArgs,
) -> anyhow::Result<BenchResult> {
    if out.cross_check_librdkafka {
        let progress = !out.quiet && std::io::stderr().is_terminal();
        let x = cross_check(plan, target, &outcome.result, progress)
            .context("--cross-check-librdkafka")?;
        outcome.result.cross_check = Some(x);
    }
    if let Some(path) = &out.hdr_log {
        // One interval per second of the measured phase; the delay only in rated runs, the
        // end-to-end latency only with consumers.
        let with_delay = outcome.result.publish_delay_ms.is_some();
        let intervals: Vec<report::LogInterval> = outcome
            .intervals
            .cuts
            .iter()
            .map(|cut| {
                let mut histograms = vec![("publish_latency", &cut.histograms.latency)];
                if with_delay {
                    histograms.push(("publish_delay", &cut.histograms.delay));
                }
                if let Some(e2e) = &cut.e2e {
                    histograms.push(("e2e_latency", e2e));
                }
                report::LogInterval {
                    start_s: cut.start_s,
                    length_s: cut.length_s,
                    histograms,
                }
            })
            .collect();
        report::write_hdr_log(path, outcome.intervals.started_unix_ms, &intervals)?;
    }
    Ok(outcome.result)
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut plan = load_plan(&args.workload, args.test_seconds, args.warmup_seconds)
        .with_context(|| format!("workload {}", args.workload.display()))?;
    if let Some(rate) = args.producer_rate {
        if !(rate >= 0.0 && rate.is_finite()) {
            bail!("--producer-rate must be 0 or a positive number of records/s");
        }
        plan.producer_rate = rate;
    }
    let target = Target {
        name: args.name.clone(),
        bootstrap: args.bootstrap.clone(),
        topic_names: topic_names(&plan, args.topic_prefix.as_deref()),
    };
    prepare_topics(
        &target.bootstrap,
        &target.topic_names,
        plan.partitions_per_topic,
    )?;
    let outcome = runner::run(&plan, &target, &options(&args.out, "run"))
        .with_context(|| format!("running {} against {}", plan.name, args.bootstrap))?;
    let result = finish(outcome, &plan, &target, &args.out)?;
    print!("{}", result.summary());
    if let Some(path) = &args.json {
        result.write_json(path)?;
    }
    check_failures(&result)
}

pub fn compare(args: CompareArgs) -> anyhow::Result<()> {
    if args.targets.len() < 2 {
        bail!("compare needs at least two --target NAME=HOST:PORT");
    }
    let plan = load_plan(&args.workload, args.test_seconds, args.warmup_seconds)
        .with_context(|| format!("workload {}", args.workload.display()))?;
    let names = topic_names(&plan, None);
    let mut opts = options(&args.out, "run");
    let mut results = Vec::new();
    for (name, bootstrap) in &args.targets {
        let target = Target {
            name: name.clone(),
            bootstrap: bootstrap.clone(),
            topic_names: names.clone(),
        };
        prepare_topics(bootstrap, &names, plan.partitions_per_topic)?;
        let outcome = runner::run(&plan, &target, &opts)
            .with_context(|| format!("running {} against {name} ({bootstrap})", plan.name))?;
        // One ceiling for every target: it is the same load against the same sink.
        if let Some(c) = &outcome.result.ceiling {
            opts.known_ceiling = Some((c.msg_per_s, c.mb_per_s));
        }
        let result = finish(outcome, &plan, &target, &args.out)?;
        print!("{}", result.summary());
        results.push(result);
    }
    println!();
    print!("{}", report::compare_table(&results));
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&results)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    for r in &results {
        check_failures(r)?;
    }
    Ok(())
}

/// `weir bench produce`: plain flags as a one-topic, record-bounded plan through the runner.
pub fn produce(
    config: ProducerConfig,
    json: Option<&Path>,
    out: &OutputArgs,
) -> anyhow::Result<()> {
    let partitions = admin::topic_partitions(&config.bootstrap, &config.topic)
        .ok()
        .flatten()
        .unwrap_or(1);
    let plan = Plan {
        name: "produce".into(),
        topics: 1,
        partitions_per_topic: partitions,
        payload: PayloadSpec::JsonLog,
        message_size: config.record_size,
        key_distributor: KeyDistributor::NoKey,
        consumers_per_subscription: 0,
        producer_rate: config.rate.unwrap_or(0.0),
        warmup: Duration::ZERO,
        test: Duration::ZERO,
        records: Some(config.records),
        producer: config.clone(),
        consumer_config: Default::default(),
    };
    let target = Target {
        name: "target".into(),
        bootstrap: config.bootstrap.clone(),
        topic_names: vec![config.topic.clone()],
    };
    let outcome = runner::run(&plan, &target, &options(out, "produce"))
        .with_context(|| format!("producing to {} on {}", config.topic, config.bootstrap))?;
    let result = finish(outcome, &plan, &target, out)?;
    print!("{}", result.summary());
    if let Some(path) = json {
        result.write_json(path)?;
    }
    check_failures(&result)
}

fn check_failures(r: &BenchResult) -> anyhow::Result<()> {
    if r.publish.failed > 0 {
        bail!(
            "{}: {} records failed (first error code {:?})",
            r.target_name,
            r.publish.failed,
            r.publish.first_error
        );
    }
    Ok(())
}

/// Most records the librdkafka cross-check sends (python's per-record cost bounds its rate).
const CROSS_CHECK_MAX: u64 = 500_000;

const CROSS_CHECK_PY: &str = r#"
import json, sys, time
import confluent_kafka
from confluent_kafka import Producer
cfg, topic, n, path, size = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
data = open(path, "rb").read()
values = [data[i:i + size] for i in range(0, len(data), size)]
done = [0, 0]
def cb(err, msg):
    done[1 if err else 0] += 1
p = Producer(cfg)
t0 = time.perf_counter()
for i in range(n):
    while True:
        try:
            p.produce(topic, values[i % len(values)], on_delivery=cb)
            break
        except BufferError:
            p.poll(0.001)
    if i % 1000 == 0:
        p.poll(0)
left = p.flush(120)
elapsed = time.perf_counter() - t0
print(json.dumps({"acked": done[0], "failed": done[1] + left, "elapsed_s": elapsed,
                  "tool": "librdkafka %s (confluent-kafka %s)" % (confluent_kafka.libversion()[0], confluent_kafka.__version__)}))
"#;

/// Runs the plan's producer configuration with librdkafka on the target's first topic, closed
/// loop, and ours the same way when the measured phase was not closed loop.
fn cross_check(
    plan: &Plan,
    target: &Target,
    ours: &BenchResult,
    progress: bool,
) -> anyhow::Result<CrossCheck> {
    let p = &plan.producer;
    let pool = PayloadPool::generate(&plan.payload, plan.message_size, 0x5eed)?;
    let size = pool.value_size();
    let dir = std::env::temp_dir().join(format!("weir-cross-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let values = dir.join("values.bin");
    std::fs::write(&values, pool.values.concat())?;
    let mut cfg = serde_json::json!({
        "bootstrap.servers": target.bootstrap,
        "acks": p.acks.to_string(),
        "linger.ms": p.linger.as_millis() as u64,
        "batch.size": p.batch_size,
        "compression.type": p.compression.name(),
        "max.in.flight.requests.per.connection": p.max_in_flight,
        "queue.buffering.max.kbytes": (p.buffer_memory / 1024).max(1),
        "message.max.bytes": (p.batch_size.max(size) + 1024).max(1_000_000),
    });
    if let Some(level) = p.compression_level {
        cfg["compression.level"] = serde_json::json!(level);
    }
    let n = ours.publish.records.clamp(1, CROSS_CHECK_MAX);
    let output = Command::new("python3")
        .arg("-c")
        .arg(CROSS_CHECK_PY)
        .arg(cfg.to_string())
        .arg(&target.topic_names[0])
        .arg(n.to_string())
        .arg(&values)
        .arg(size.to_string())
        .output()
        .context("running python3 (confluent-kafka)")?;
    let _ = std::fs::remove_dir_all(&dir);
    if !output.status.success() {
        bail!(
            "python3 confluent-kafka failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    #[derive(serde::Deserialize)]
    struct Out {
        acked: u64,
        failed: u64,
        elapsed_s: f64,
        tool: String,
    }
    let o: Out = serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "confluent-kafka's output: {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })?;
    if o.failed > 0 {
        bail!("librdkafka: {} of {n} records failed", o.failed);
    }
    let msg_per_s = if o.elapsed_s > 0.0 {
        o.acked as f64 / o.elapsed_s
    } else {
        0.0
    };
    let ours_msg_per_s = if ours.config.producer_rate == 0.0 && plan.topics == 1 {
        ours.publish.msg_per_s
    } else {
        // Same records, one topic, closed loop: the conditions librdkafka just had.
        let closed = Plan {
            topics: 1,
            producer_rate: 0.0,
            warmup: Duration::ZERO,
            records: Some(n),
            ..plan.clone()
        };
        let one = Target {
            topic_names: vec![target.topic_names[0].clone()],
            ..target.clone()
        };
        let opts = RunOptions {
            broker_pid: None,
            check_ceiling: false,
            progress,
            kind: "produce".into(),
            known_ceiling: None,
        };
        runner::run(&closed, &one, &opts)?.result.publish.msg_per_s
    };
    Ok(CrossCheck {
        tool: o.tool,
        records: o.acked,
        elapsed_s: o.elapsed_s,
        msg_per_s,
        mb_per_s: msg_per_s * size as f64 / 1e6,
        ours_msg_per_s,
        ours_mb_per_s: ours_msg_per_s * size as f64 / 1e6,
        ratio: if ours_msg_per_s > 0.0 {
            msg_per_s / ours_msg_per_s
        } else {
            0.0
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_as_name_equals_address() {
        assert_eq!(
            parse_target("weir=127.0.0.1:9092").unwrap(),
            ("weir".to_string(), "127.0.0.1:9092".to_string())
        );
        assert!(parse_target("127.0.0.1:9092").is_err());
        assert!(parse_target("=h:1").is_err());
    }
}
