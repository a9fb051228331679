//! Issue #6: the idempotent ("safe") producer against `weir serve` through a fault proxy.
//!
//! A TCP proxy (`support::fault_proxy`) sits between a real client and the broker, which advertises
//! the proxy's address so every connection goes through it. The proxy pairs each response frame
//! with its request by correlation id and, while faults are on, drops one in 16 Produce
//! responses and cuts the connection there: the broker appended the batch, the client never hears
//! of it and retries on a new connection. confluent-kafka (librdkafka 2.16) with
//! enable.idempotence=true, acks=all and 5 requests in flight then produces keyed records; they are
//! consumed back (faults off) and every record must be stored exactly once, in order per
//! partition. The same producer with idempotence off must show duplicates, which proves the proxy
//! really loses acknowledged appends. A third run kills the broker with SIGKILL mid-run and
//! restarts it: the producer table is rebuilt from the snapshot and the log tail, so retries
//! across the restart are still recognised. Small segments make the broker roll (and snapshot)
//! during the runs. kafkajs's idempotent producer (one request in flight, as kafkajs requires)
//! goes through the same lossy proxy.
//!
//! Client code: `tests/clients/idempotence.py` (confluent-kafka: produce, consume, create) and
//! `tests/clients/idempotence.js` (kafkajs: produce). confluent-kafka and kafkajs must be installed
//! (scripts/test installs them); a missing client fails the test, it is never skipped.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

mod support;
use support::fault_proxy::Proxy;
use support::{free_port, run, wait_for, ServeProcess};

const RECORDS: usize = 3000;
const PARTITIONS: usize = 3;
/// While faults are on, one Produce response in this many is dropped (counted over all
/// connections, so the runs are deterministic in how many are lost, not in which).
const DROP_EVERY: usize = 16;
const CLIENT_LIMIT: Duration = Duration::from_secs(240);

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

fn script(args: &[&str]) -> Command {
    let mut c = Command::new("python3");
    c.current_dir(clients_dir())
        .arg("idempotence.py")
        .args(args);
    c
}

fn require_confluent() {
    run(
        Command::new("python3").args(["-c", "import confluent_kafka"]),
        b"",
        Duration::from_secs(30),
    );
}

/// `weir serve` with two shards and 4 KiB segments on `kafka_addr`, advertising the proxy.
fn start(data: &Path, tag: &str, kafka_addr: &str, advertised: &str) -> ServeProcess {
    let data_dir = data.to_str().expect("utf-8 path");
    ServeProcess::start(
        &data.with_extension(format!("{tag}.stderr")),
        &[
            "--data-dir",
            data_dir,
            "--shards",
            "2",
            "--log-segment-bytes",
            "4096",
            "--kafka-addr",
            kafka_addr,
            "--advertised-addr",
            advertised,
        ],
    )
}

/// `text` without ANSI colour sequences (the broker's log is coloured).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Per partition, the values in offset order.
fn stored(out: &str) -> BTreeMap<i32, Vec<usize>> {
    let mut by_partition: BTreeMap<i32, Vec<(i64, usize)>> = BTreeMap::new();
    for line in out.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 3, "bad line {line:?}");
        let (p, o, v) = (
            f[0].parse().expect("partition"),
            f[1].parse().expect("offset"),
            f[2].parse().expect("value"),
        );
        by_partition.entry(p).or_default().push((o, v));
    }
    by_partition
        .into_iter()
        .map(|(p, mut rs)| {
            rs.sort_unstable();
            (p, rs.into_iter().map(|(_, v)| v).collect())
        })
        .collect()
}

/// Every record 0..RECORDS exactly once, and each partition's values strictly increasing.
fn check_exactly_once_in_order(out: &str, what: &str) {
    let by_partition = stored(out);
    let mut seen = HashSet::new();
    let mut duplicates = Vec::new();
    for (p, values) in &by_partition {
        for w in values.windows(2) {
            assert!(
                w[0] < w[1],
                "{what}: partition {p} out of order: {} then {}",
                w[0],
                w[1]
            );
        }
        for v in values {
            if !seen.insert(*v) {
                duplicates.push(*v);
            }
        }
    }
    assert!(
        duplicates.is_empty(),
        "{what}: {} duplicates, e.g. {:?}",
        duplicates.len(),
        &duplicates[..duplicates.len().min(5)]
    );
    let missing: Vec<usize> = (0..RECORDS).filter(|v| !seen.contains(v)).collect();
    assert!(
        missing.is_empty(),
        "{what}: {} records missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

fn duplicates(out: &str) -> usize {
    let total: usize = stored(out).values().map(Vec::len).sum();
    let distinct: HashSet<usize> = stored(out).into_values().flatten().collect();
    total - distinct.len()
}

fn produce(broker: &ServeProcess, proxy: &Proxy, topic: &str, idempotent: bool) {
    let n = RECORDS.to_string();
    let out = broker.run_client(
        &mut script(&[
            "produce",
            &proxy.addr,
            topic,
            &n,
            if idempotent { "1" } else { "0" },
        ]),
        b"",
        CLIENT_LIMIT,
    );
    assert!(out.contains(&format!("delivered {RECORDS}")), "{out}");
}

fn consume(broker: &ServeProcess, proxy: &Proxy, topic: &str) -> String {
    proxy.set_faults(false);
    let (p, n) = (PARTITIONS.to_string(), RECORDS.to_string());
    broker.run_client(
        &mut script(&["consume", &proxy.addr, topic, &p, &n]),
        b"",
        CLIENT_LIMIT,
    )
}

#[test]
fn an_idempotent_producer_through_a_lossy_proxy_stores_every_record_once_in_order_and_a_plain_one_duplicates(
) {
    require_confluent();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let kafka_addr = format!("127.0.0.1:{}", free_port());
    // The proxy's address must be known before the broker starts (it is advertised).
    let proxy = Proxy::start(kafka_addr.clone(), DROP_EVERY);
    let broker = start(&data, "lossy", &kafka_addr, &proxy.addr);
    let p = PARTITIONS.to_string();
    for topic in ["safe", "unsafe"] {
        broker.run_client(
            &mut script(&["create", &proxy.addr, topic, &p]),
            b"",
            CLIENT_LIMIT,
        );
    }

    proxy.set_faults(true);
    produce(&broker, &proxy, "safe", true);
    let dropped = proxy.dropped.load(Ordering::SeqCst);
    let responses = proxy.produce_responses.load(Ordering::SeqCst);
    eprintln!("idempotent run: {dropped} of {responses} Produce responses dropped");
    assert!(
        dropped >= 5,
        "the proxy dropped only {dropped} of {responses}"
    );
    check_exactly_once_in_order(&consume(&broker, &proxy, "safe"), "idempotent");

    proxy.set_faults(true);
    produce(&broker, &proxy, "unsafe", false);
    let dropped_plain = proxy.dropped.load(Ordering::SeqCst) - dropped;
    let out = consume(&broker, &proxy, "unsafe");
    let dups = duplicates(&out);
    eprintln!("plain run: {dropped_plain} responses dropped, {dups} duplicate records stored");
    assert!(
        dups > 0,
        "without idempotence the dropped responses ({dropped_plain}) must cause duplicates"
    );
    broker.stop();
}

#[test]
fn an_idempotent_producer_across_a_broker_kill9_and_restart_still_stores_every_record_once() {
    require_confluent();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let kafka_addr = format!("127.0.0.1:{}", free_port());
    let proxy = Proxy::start(kafka_addr.clone(), DROP_EVERY);
    let broker = start(&data, "doomed", &kafka_addr, &proxy.addr);
    let p = PARTITIONS.to_string();
    broker.run_client(
        &mut script(&["create", &proxy.addr, "crash", &p]),
        b"",
        CLIENT_LIMIT,
    );
    proxy.set_faults(true);
    let n = RECORDS.to_string();
    let mut producer = script(&["produce", &proxy.addr, "crash", &n, "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    let stdout = producer.stdout.take().expect("stdout");
    let mut stderr = producer.stderr.take().expect("stderr");
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line == "half" {
                let _ = tx.send(());
            }
            lines.push(line);
        }
        lines
    });
    rx.recv_timeout(Duration::from_secs(120))
        .expect("half of the records acknowledged before the kill");
    // The next Produce response is lost (the batch is durable: acks=all answers after the
    // fdatasync) and the broker is killed before the client can retry: only a producer table
    // rebuilt from disk recognises the retry after the restart.
    proxy.drop_next.store(true, Ordering::SeqCst);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !proxy.blocked.load(Ordering::SeqCst) {
        assert!(
            std::time::Instant::now() < deadline,
            "no Produce response to drop"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    broker.kill9();
    let broker = start(&data, "restarted", &kafka_addr, &proxy.addr);
    proxy.blocked.store(false, Ordering::SeqCst);
    let status = wait_for(&mut producer, CLIENT_LIMIT, "the producer");
    let lines = reader.join().expect("reader");
    let err = err_reader.join().unwrap_or_default();
    assert!(
        status.success() && lines.iter().any(|l| l == &format!("delivered {RECORDS}")),
        "producer failed ({status}): {lines:?}\n{err}\nbroker log:\n{}",
        broker.log()
    );
    eprintln!(
        "kill -9 run: {} of {} Produce responses dropped",
        proxy.dropped.load(Ordering::SeqCst),
        proxy.produce_responses.load(Ordering::SeqCst)
    );
    // Every partition rolled before the kill: its table came from a snapshot plus a replay of
    // the tail, not from the whole log.
    let log = plain(&broker.log());
    let opened: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("partition log open") && l.contains("topic=crash"))
        .collect();
    let from_snapshot = opened
        .iter()
        .filter(|l| l.contains(" snapshot=") && !l.contains(" snapshot=0 "))
        .count();
    eprintln!("{}", opened.join("\n"));
    assert_eq!(
        (opened.len(), from_snapshot),
        (PARTITIONS, PARTITIONS),
        "every partition rebuilt from a snapshot:\n{log}"
    );
    check_exactly_once_in_order(&consume(&broker, &proxy, "crash"), "across kill -9");
    broker.stop();
}

#[test]
fn a_kafkajs_idempotent_producer_through_a_lossy_proxy_stores_every_record_once_in_order() {
    require_confluent();
    run(
        Command::new("node")
            .current_dir(clients_dir())
            .args(["-e", "require('kafkajs')"]),
        b"",
        Duration::from_secs(30),
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let kafka_addr = format!("127.0.0.1:{}", free_port());
    let proxy = Proxy::start(kafka_addr.clone(), DROP_EVERY);
    let broker = start(&data, "kafkajs", &kafka_addr, &proxy.addr);
    let p = PARTITIONS.to_string();
    broker.run_client(
        &mut script(&["create", &proxy.addr, "js", &p]),
        b"",
        CLIENT_LIMIT,
    );
    proxy.set_faults(true);
    let n = RECORDS.to_string();
    let out = broker.run_client(
        Command::new("node").current_dir(clients_dir()).args([
            "idempotence.js",
            "produce",
            &proxy.addr,
            "js",
            &n,
        ]),
        b"",
        CLIENT_LIMIT,
    );
    assert!(out.contains(&format!("delivered {RECORDS}")), "{out}");
    let dropped = proxy.dropped.load(Ordering::SeqCst);
    let responses = proxy.produce_responses.load(Ordering::SeqCst);
    eprintln!("kafkajs run: {dropped} of {responses} Produce responses dropped");
    assert!(
        dropped >= 5,
        "the proxy dropped only {dropped} of {responses}"
    );
    check_exactly_once_in_order(&consume(&broker, &proxy, "js"), "kafkajs idempotent");
    broker.stop();
}
