//! `weir bench produce` when the broker misbehaves, against a real `weir serve`:
//! - coordinated omission is visible: with a rate and a small buffer.memory, a broker stopped
//!   (SIGSTOP) for about a second makes the records scheduled during the stall wait, and the
//!   publish delay (intended → actual send) shows it, while the same run without the stall has a
//!   small delay;
//! - a broker stopped longer than delivery.timeout.ms makes records fail, counted as expired and
//!   (buffer.memory full past max.block.ms) blocked, while records before and after succeed;
//! - through the fault proxy (`support::fault_proxy`), which loses Produce acknowledgements and
//!   cuts connections, an idempotent run stores every record exactly once (read back with
//!   `weir bench consume`) and a plain run stores duplicates;
//! - Produce requests lost by the proxy make an idempotent run's numbered batches expire: the
//!   producer bumps its epoch and goes on, and the later records are stored.

mod support;

use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use support::fault_proxy::Proxy;
use support::{free_port, wait_for, ServeProcess};

/// The tests of this file run one at a time: each stops a broker or measures delays, which the
/// others' load would blur.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn weir_bench(args: &[&str], json: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_weir"));
    c.arg("bench")
        .args(args)
        .arg("--json")
        .arg(json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn read_json(json: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap()
}

fn start(dir: &std::path::Path, tag: &str, advertised: Option<&str>) -> ServeProcess {
    let data = dir.join(format!("data-{tag}"));
    let addr = format!("127.0.0.1:{}", free_port());
    let mut args = vec![
        "--data-dir".to_string(),
        data.to_str().unwrap().to_string(),
        "--shards".into(),
        "1".into(),
        "--kafka-addr".into(),
        addr,
        "--num-partitions".into(),
        "2".into(),
    ];
    if let Some(a) = advertised {
        args.extend(["--advertised-addr".to_string(), a.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ServeProcess::start(&dir.join(format!("serve-{tag}.stderr")), &args)
}

fn signal(broker: &ServeProcess, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(broker.pid() as i32, sig) };
}

/// Runs `cmd`; `stall` = (after, for): SIGSTOP the broker `after` into the run, SIGCONT `for`
/// later. Returns the exit success and the JSON report.
fn run_with_stall(
    broker: &ServeProcess,
    cmd: Command,
    json: &std::path::Path,
    stall: Option<(Duration, Duration)>,
) -> (bool, serde_json::Value) {
    let stop = |on: bool| signal(broker, if on { libc::SIGSTOP } else { libc::SIGCONT });
    run_with_fault(
        cmd,
        json,
        stall.map(|(after, length)| (after, length, &stop as &dyn Fn(bool))),
    )
}

/// A fault switched on `after` into a run and off `for` later: (after, for, switch).
type Fault<'a> = (Duration, Duration, &'a dyn Fn(bool));

/// Runs `cmd`; with a fault, `switch(true)` `after` into the run and `switch(false)` `for`
/// later. Returns the exit success and the JSON report.
fn run_with_fault(
    mut cmd: Command,
    json: &std::path::Path,
    fault: Option<Fault<'_>>,
) -> (bool, serde_json::Value) {
    let mut child = cmd.spawn().unwrap();
    if let Some((after, length, switch)) = fault {
        std::thread::sleep(after);
        switch(true);
        let started = Instant::now();
        std::thread::sleep(length);
        switch(false);
        eprintln!("fault on for {:?}", started.elapsed());
    }
    let status = wait_for(&mut child, Duration::from_secs(120), "weir bench produce");
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut o, &mut out);
    }
    eprintln!("{out}{err}");
    assert!(json.exists(), "no report: {out}{err}");
    (status.success(), read_json(json))
}

/// A broker that advertises a fault proxy's address (so every connection goes through it),
/// dropping one Produce response in `drop_every` while the proxy's faults are on.
fn behind_proxy(
    dir: &std::path::Path,
    tag: &str,
    drop_every: usize,
    shards: u32,
    partitions: u32,
) -> (Proxy, ServeProcess) {
    let kafka_addr = format!("127.0.0.1:{}", free_port());
    let proxy = Proxy::start(kafka_addr.clone(), drop_every);
    let data = dir.join(format!("data-{tag}"));
    let (shards, partitions) = (shards.to_string(), partitions.to_string());
    let broker = ServeProcess::start(
        &dir.join(format!("serve-{tag}.stderr")),
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "--shards",
            &shards,
            "--kafka-addr",
            &kafka_addr,
            "--advertised-addr",
            &proxy.addr,
            "--num-partitions",
            &partitions,
        ],
    );
    (proxy, broker)
}

/// Records stored in `topic`, read back with `weir bench consume` (until 2 s without any).
fn stored_records(bootstrap: &str, topic: &str, dir: &std::path::Path) -> u64 {
    let json = dir.join(format!("{topic}-consumed.json"));
    let cmd = weir_bench(
        &[
            "consume",
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--idle-s",
            "2",
            "--duration-s",
            "60",
        ],
        &json,
    );
    let (ok, consumed) = run_with_fault(cmd, &json, None);
    assert!(ok, "{consumed}");
    consumed["records"].as_u64().unwrap()
}

/// Records fail fast: a request unanswered for 300 ms is retried after 50 ms, and a batch
/// unacknowledged 700 ms after it was created fails as expired.
const SHORT_TIMEOUTS: &[&str] = &[
    "--request-timeout-ms",
    "300",
    "--delivery-timeout-ms",
    "700",
    "--retry-backoff-ms",
    "50",
];

const RATE_ARGS: &[&str] = &[
    "--rate",
    "2000",
    "--record-size",
    "512",
    "--acks",
    "1",
    "--linger-ms",
    "1",
    // ~100 records: a stalled broker fills it in 50 ms, and then sends block.
    "--buffer-memory",
    "64KiB",
    "--batch-size",
    "16KiB",
];

#[test]
fn a_broker_stall_shows_in_publish_delay_and_not_without_it() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), "stall", None);
    let produce = |topic: &str, json: &std::path::Path| {
        let mut args = vec!["produce", "--bootstrap", &broker.addr, "--topic", topic];
        args.extend_from_slice(RATE_ARGS);
        args.extend_from_slice(&["--records", "6000"]);
        weir_bench(&args, json)
    };
    // Warm-up: creating the topic (its partition logs) takes weir a moment, which is not what
    // this test is about.
    let warm_json = dir.path().join("warm.json");
    let mut args = vec!["produce", "--bootstrap", &broker.addr, "--topic", "co"];
    args.extend_from_slice(RATE_ARGS);
    args.extend_from_slice(&["--records", "500"]);
    let (ok, report) = run_with_stall(&broker, weir_bench(&args, &warm_json), &warm_json, None);
    assert!(ok, "{report}");
    let control_json = dir.path().join("control.json");
    let (ok, control) = run_with_stall(&broker, produce("co", &control_json), &control_json, None);
    assert!(ok, "{control}");
    let stall_json = dir.path().join("stall.json");
    let (ok, stalled) = run_with_stall(
        &broker,
        produce("co", &stall_json),
        &stall_json,
        Some((Duration::from_millis(1000), Duration::from_millis(1000))),
    );
    assert!(ok, "{stalled}");
    // The result document (docs/bench-results.md): `publish_delay_ms.max` for ("publish_delay", "max_ms").
    let ms = |r: &serde_json::Value, h: &str, q: &str| {
        r[format!("{h}_ms")][q.trim_end_matches("_ms")]
            .as_f64()
            .unwrap()
    };
    // Every record scheduled is accounted for in publish delay, in both runs.
    assert_eq!(control["publish_delay_ms"]["count"], 6000);
    assert_eq!(stalled["publish_delay_ms"]["count"], 6000);
    assert_eq!(stalled["publish"]["records"], 6000, "{stalled}");
    // The stall: the record scheduled just after the buffer filled waited nearly the whole stall
    // to be sent; about a third of the records (2000 of 6000 scheduled during the second) waited
    // for it, spread from 0 to ~1 s, so p90 is hundreds of ms.
    assert!(
        ms(&stalled, "publish_delay", "max_ms") >= 800.0,
        "{stalled}"
    );
    assert!(
        ms(&stalled, "publish_delay", "p90_ms") >= 300.0,
        "{stalled}"
    );
    assert!(
        ms(&stalled, "publish_latency", "max_ms") >= 800.0,
        "{stalled}"
    );
    // The delay is the stall's: the same load without it shows far less (compared with each
    // other, not with a fixed bound, which a busy test machine's hiccups could reach).
    assert!(
        ms(&stalled, "publish_delay", "mean_ms") > 2.0 * ms(&control, "publish_delay", "mean_ms"),
        "{stalled}\n{control}"
    );
    broker.stop();
}

#[test]
fn a_broker_stopped_past_delivery_timeout_fails_records_counted_as_expired_and_blocked() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), "stopped", None);
    let json = dir.path().join("stopped.json");
    let mut args = vec!["produce", "--bootstrap", &broker.addr, "--topic", "stopped"];
    args.extend_from_slice(RATE_ARGS);
    args.extend_from_slice(&["--records", "6000", "--max-block-ms", "100"]);
    args.extend_from_slice(SHORT_TIMEOUTS);
    let (ok, report) = run_with_stall(
        &broker,
        weir_bench(&args, &json),
        &json,
        Some((Duration::from_millis(800), Duration::from_millis(2000))),
    );
    // Failed records make the command fail, and the report says which.
    assert!(!ok, "{report}");
    let n = |k: &str| report["publish"][k].as_u64().unwrap();
    assert!(n("expired") > 0, "{report}");
    assert!(n("blocked") > 0, "{report}");
    assert_eq!(n("failed"), n("expired") + n("blocked"), "{report}");
    assert_eq!(n("records") + n("failed"), 6000, "{report}");
    // Before and after the stop the broker acknowledged.
    assert!(n("records") > 1000, "{report}");
    broker.stop();
}

#[test]
fn through_a_lossy_proxy_an_idempotent_run_stores_each_record_once_and_a_plain_one_duplicates() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (proxy, broker) = behind_proxy(dir.path(), "lossy", 8, 2, 3);
    let run = |topic: &str, idempotent: bool| -> (u64, u64) {
        proxy.set_faults(true);
        let json = dir.path().join(format!("{topic}.json"));
        let mut args = vec![
            "produce",
            "--bootstrap",
            &proxy.addr,
            "--topic",
            topic,
            "--records",
            "5000",
            "--record-size",
            "100",
            "--keys",
            "30",
            "--acks",
            "all",
            "--linger-ms",
            "1",
            "--batch-size",
            "4KiB",
            "--retry-backoff-ms",
            "20",
        ];
        if idempotent {
            args.push("--idempotence");
        }
        let (ok, report) = run_with_stall(&broker, weir_bench(&args, &json), &json, None);
        assert!(ok, "{report}");
        assert_eq!(report["publish"]["records"], 5000, "{report}");
        assert!(
            report["publish"]["retries"].as_u64().unwrap() > 0,
            "{report}"
        );
        proxy.set_faults(false);
        (
            stored_records(&proxy.addr, topic, dir.path()),
            proxy.dropped.load(Ordering::SeqCst) as u64,
        )
    };
    let (stored, dropped) = run("safe", true);
    assert!(
        dropped >= 3,
        "the proxy dropped only {dropped} acknowledgements"
    );
    assert_eq!(stored, 5000, "idempotent: every record exactly once");
    let (stored, dropped_more) = run("plain", false);
    assert!(dropped_more > dropped);
    assert!(stored > 5000, "plain: lost acknowledgements must duplicate");
    broker.stop();
}

/// Produce requests lost on their way (the proxy swallows them for 1.2 s) make an idempotent
/// run's batches expire with their sequences unused: the producer bumps its epoch (KIP-360) and
/// the records after the loss are stored, instead of every later batch of those partitions
/// failing OUT_OF_ORDER_SEQUENCE_NUMBER. Every acknowledged record is stored; a batch whose
/// outcome was unknown (its answer came after request.timeout.ms) may be stored although it
/// expired, or twice if it was renumbered under the new epoch — as with Kafka's client, the
/// idempotence guarantee is per epoch.
#[test]
fn an_idempotent_run_bumps_its_epoch_after_lost_batches_expire_and_goes_on() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (proxy, broker) = behind_proxy(dir.path(), "bump", usize::MAX, 1, 2);
    let json = dir.path().join("bump.json");
    let args = [
        "produce",
        "--bootstrap",
        &proxy.addr,
        "--topic",
        "bump",
        "--idempotence",
        "--acks",
        "all",
        "--rate",
        "2000",
        "--records",
        "8000",
        "--record-size",
        "200",
        "--keys",
        "30",
        "--linger-ms",
        "1",
    ]
    .iter()
    .chain(SHORT_TIMEOUTS)
    .copied()
    .collect::<Vec<_>>();
    let lose = |on: bool| proxy.lose_produce.store(on, Ordering::SeqCst);
    let (ok, report) = run_with_fault(
        weir_bench(&args, &json),
        &json,
        Some((
            Duration::from_millis(1000),
            Duration::from_millis(1200),
            &lose,
        )),
    );
    assert!(!ok, "expired records make the run fail: {report}");
    assert!(proxy.lost.load(Ordering::SeqCst) > 0, "nothing was lost");
    let n = |k: &str| report["publish"][k].as_u64().unwrap();
    assert!(n("expired") > 0, "{report}");
    assert_eq!(
        n("failed"),
        n("expired"),
        "only the lost batches fail, none out of sequence: {report}"
    );
    assert!(n("epoch_bumps") >= 1, "{report}");
    assert_eq!(n("records") + n("failed"), 8000, "{report}");
    // 2 s before the loss and ~1.4 s after it at 2000/s are acknowledged.
    assert!(n("records") >= 4_000, "{report}");

    let stored = stored_records(&proxy.addr, "bump", dir.path());
    eprintln!(
        "{stored} stored, {} acknowledged, {} expired",
        n("records"),
        n("expired")
    );
    assert!(stored >= n("records"), "an acknowledged record is missing");
    broker.stop();
}
