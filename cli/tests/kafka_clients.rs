//! Real Kafka clients against `weir serve` (issue #4's conformance matrix): Debian's kcat
//! (librdkafka 2.0.2, which also checks the ApiVersions v3 tagged-field quirk), kafka-python
//! 3.0.12, confluent-kafka 2.16.1 (librdkafka 2.16) and kafkajs 2.2.4.
//!
//! - `*_matrix`: per client, one 4-partition topic per codec (none, gzip, snappy, lz4, zstd: every
//!   client covers all five), `MATRIX_RECORDS` keyed records each, a third of them with acks=0,
//!   acks=1 and acks=all (idempotent there), each run a new producer that starts once the runs
//!   before it are stored, read back by the same client and, for one codec, by another client;
//!   `check_records` checks every key, value, header, timestamp, exactly-once, per-key order and
//!   contiguous offsets per partition.
//! - `admin_*`: create/describe/delete topics and metadata at the advertised address with every
//!   client; the alter-config test (AlterConfigs, IncrementalAlterConfigs) is separate.
//! - restart after SIGTERM, kill -9 during acks=all, and malformed requests.
//!
//! Client code lives in `tests/clients/` (`clients.py` for kafka-python and confluent-kafka,
//! `kafkajs_client.js` with its package-lock.json); the record definition is shared with it (see
//! `matrix_record`). Each test starts the built binary on a free loopback port with a temporary
//! data directory and two shards (so requests cross shards). The clients must be installed
//! (scripts/test installs them); a missing client fails the test, it is never skipped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod support;
use support::{free_port, header, roundtrip, run, wait_for, ServeProcess};

/// `weir serve` with two shards and 8 MiB segments on a port the kernel picks; advertises the
/// listen address. Its stderr goes beside `data_dir`, named after `tag`.
fn start(data_dir: &Path, tag: &str) -> ServeProcess {
    spawn(data_dir, tag, &["--kafka-addr", "127.0.0.1:0"])
}

/// As `start`, on a free port on every address, advertising 127.0.0.2 (the returned `addr`, what
/// clients bootstrap with, is 127.0.0.1), with `extra` arguments.
fn start_advertised(data_dir: &Path, tag: &str, extra: &[&str]) -> ServeProcess {
    // Listening on every address and advertising another loopback address than the one clients
    // bootstrap with: a client that reports 127.0.0.2 learned it from Metadata, not from its
    // bootstrap list, and its later connections go there.
    let port = free_port();
    let (listen, advertised) = (format!("0.0.0.0:{port}"), format!("127.0.0.2:{port}"));
    let mut args = vec!["--kafka-addr", &listen, "--advertised-addr", &advertised];
    args.extend_from_slice(extra);
    let mut broker = spawn(data_dir, tag, &args);
    assert_eq!(broker.addr, listen);
    assert_eq!(broker.advertised, advertised);
    broker.addr = format!("127.0.0.1:{port}");
    broker
}

fn spawn(data_dir: &Path, tag: &str, args: &[&str]) -> ServeProcess {
    let data = data_dir.to_str().expect("utf-8 path");
    let mut all = vec![
        "--data-dir",
        data,
        "--shards",
        "2",
        "--log-segment-bytes",
        "8388608",
    ];
    all.extend_from_slice(args);
    ServeProcess::start(&data_dir.with_extension(format!("{tag}.stderr")), &all)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

/// `tests/clients/`: the client scripts and kafkajs's node_modules.
fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

const CLIENT_LIMIT: Duration = Duration::from_secs(180);

/// The four clients.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Client {
    Kcat,
    KafkaPython,
    Confluent,
    Kafkajs,
}

use Client::{Confluent, KafkaPython, Kafkajs, Kcat};

const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];
/// Records per codec per client (a third per acks setting).
const MATRIX_RECORDS: usize = 20_000;
const MATRIX_PARTITIONS: usize = 4;

impl Client {
    /// Fails (never skips) when the client or a codec package it needs is missing.
    fn require(self) {
        let (mut cmd, what) = match self {
            Kcat => {
                let mut c = Command::new("kcat");
                c.arg("-V");
                (c, "kcat (apt-get install kcat)")
            }
            KafkaPython => {
                let mut c = Command::new("python3");
                c.args(["-c", "import kafka, snappy, lz4.frame, zstandard"]);
                (
                    c,
                    "kafka-python with its codec packages (pip install kafka-python python-snappy lz4 zstandard)",
                )
            }
            Confluent => {
                let mut c = Command::new("python3");
                c.args(["-c", "import confluent_kafka"]);
                (c, "confluent-kafka (pip install confluent-kafka)")
            }
            Kafkajs => {
                let mut c = Command::new("node");
                c.current_dir(clients_dir()).args([
                    "-e",
                    "for (const m of ['kafkajs', 'kafkajs-snappy', 'lz4-napi', '@mongodb-js/zstd']) require(m)",
                ]);
                (
                    c,
                    "kafkajs with its codec packages (npm ci in cli/tests/clients)",
                )
            }
        };
        let ok = cmd.output().is_ok_and(|o| o.status.success());
        assert!(ok, "{what} is not installed: scripts/test installs it");
    }

    /// A command of tests/clients/ for this client (not kcat).
    fn script(self, cmd: &str) -> Command {
        let dir = clients_dir();
        match self {
            KafkaPython | Confluent => {
                let mut c = Command::new("python3");
                c.arg(dir.join("clients.py"))
                    .arg(if self == KafkaPython {
                        "kafka-python"
                    } else {
                        "confluent"
                    })
                    .arg(cmd);
                c
            }
            Kafkajs => {
                let mut c = Command::new("node");
                c.arg(dir.join("kafkajs_client.js")).arg(cmd);
                c
            }
            Kcat => panic!("kcat has no script"),
        }
    }

    fn call(self, cmd: &str, args: &[&str]) -> String {
        run(self.script(cmd).args(args), b"", CLIENT_LIMIT)
    }

    /// Produces records 0..n of the matrix to `topic` in three runs (acks 0, 1, all) and returns
    /// what a consumer must read back.
    fn produce_matrix(self, addr: &str, topic: &str, codec: &str, n: usize) -> Expected {
        if self == Kcat {
            return kcat_produce_matrix(addr, topic, codec, n);
        }
        let base_ts = now_ms() - 60_000;
        self.call(
            "produce",
            &[addr, topic, codec, &n.to_string(), &base_ts.to_string()],
        );
        Expected {
            n,
            headers: Box::new(move |i| {
                let mut h = format!("seq={i}");
                if i % 2 == 0 {
                    h.push_str(&format!(",acks={}", acks_of(i, n)));
                }
                h
            }),
            timestamp: Box::new(move |i| {
                let ts = base_ts + i as i64;
                ts..=ts
            }),
        }
    }

    /// Every record of `topic` as "partition offset timestamp key value headers" lines.
    fn consume(self, addr: &str, topic: &str, partitions: usize, expected: usize) -> String {
        if self == Kcat {
            return kcat_consume(addr, topic, expected);
        }
        self.call(
            "consume",
            &[addr, topic, &partitions.to_string(), &expected.to_string()],
        )
    }

    fn create_topic(self, addr: &str, topic: &str, partitions: usize) {
        assert_ne!(self, Kcat, "kcat cannot create topics");
        self.call("create", &[addr, topic, &partitions.to_string()]);
    }
}

/// Record `i` of the matrix: key and value (as in tests/clients/clients.py's header).
fn matrix_record(i: usize) -> (String, String) {
    let key = format!("k{}", i % 37);
    let value = format!("{key}/{i}/{}", "weir".repeat(i % 13));
    (key, value)
}

/// The acks setting record `i` of `n` is produced with (the three runs).
fn acks_of(i: usize, n: usize) -> &'static str {
    match i {
        i if i < n / 3 => "0",
        i if i < 2 * n / 3 => "1",
        _ => "all",
    }
}

/// What the records 0..n must look like when read back.
struct Expected {
    n: usize,
    /// Headers of record i as "k=v,k=v".
    headers: Box<dyn Fn(usize) -> String + Send>,
    /// The timestamps record i may carry.
    timestamp: Box<dyn Fn(usize) -> RangeInclusive<i64> + Send>,
}

/// kcat cannot set per-record timestamps or headers: each run's records carry the run's headers
/// (`-H`) and a CreateTime inside the run's wall-clock span. Each run starts once the records of
/// the runs before it are stored (`support::kcat_wait_stored`).
fn kcat_produce_matrix(addr: &str, topic: &str, codec: &str, n: usize) -> Expected {
    let mut spans = Vec::new();
    for (acks, first, end) in [
        ("0", 0, n / 3),
        ("1", n / 3, 2 * n / 3),
        ("all", 2 * n / 3, n),
    ] {
        let mut input = String::new();
        for i in first..end {
            let (k, v) = matrix_record(i);
            input.push_str(&format!("{k}:{v}\n"));
        }
        let headers = [format!("acks={acks}"), format!("codec={codec}")];
        let settings = [format!("compression.codec={codec}"), format!("acks={acks}")];
        let mut config = vec!["-H", &headers[0], "-H", &headers[1]];
        config.extend(["-X", &settings[0], "-X", &settings[1]]);
        if acks == "all" {
            // librdkafka is not idempotent by default: switched on for acks=all.
            config.extend(["-X", "enable.idempotence=true"]);
        }
        let start = now_ms();
        kcat_produce(addr, topic, &config, input.as_bytes());
        spans.push((first..end, acks, start, now_ms()));
        let run = format!("kcat {codec} acks={acks} run");
        support::kcat_wait_stored(addr, topic, end, &run, CLIENT_LIMIT);
    }
    let codec = codec.to_string();
    let spans2 = spans.clone();
    Expected {
        n,
        headers: Box::new(move |i| {
            let (_, acks, _, _) = spans.iter().find(|s| s.0.contains(&i)).expect("run");
            format!("acks={acks},codec={codec}")
        }),
        timestamp: Box::new(move |i| {
            let (_, _, start, end) = spans2.iter().find(|s| s.0.contains(&i)).expect("run");
            *start..=*end
        }),
    }
}

/// Checks consumed "partition offset timestamp key value headers" lines (tab separated) against
/// `expected`: every record exactly once with its key, value, headers and timestamp; offsets of
/// each partition contiguous from 0; each key in one partition with its records in produce
/// order; keys spread over more than one partition.
fn check_records(out: &str, expected: &Expected, what: &str) {
    let mut records = Vec::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 6, "{what}: bad line {line:?}");
        let partition: usize = f[0].parse().expect("partition");
        let offset: u64 = f[1].parse().expect("offset");
        let ts: i64 = f[2].parse().expect("timestamp");
        let i: usize = f[4]
            .split('/')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{what}: value {:?} names no record", f[4]));
        assert!(i < expected.n, "{what}: record {i} was never produced");
        let (key, value) = matrix_record(i);
        assert_eq!((f[3], f[4]), (&*key, &*value), "{what}: record {i}");
        assert_eq!(f[5], (expected.headers)(i), "{what}: headers of record {i}");
        let stamps = (expected.timestamp)(i);
        assert!(
            stamps.contains(&ts),
            "{what}: record {i} has timestamp {ts}, expected {stamps:?}"
        );
        records.push((partition, offset, key, i));
    }
    records.sort();
    let mut seen = HashSet::new();
    for r in &records {
        assert!(seen.insert(r.3), "{what}: record {} read twice", r.3);
    }
    assert_eq!(records.len(), expected.n, "{what}: records read");
    let mut offsets: BTreeMap<usize, u64> = BTreeMap::new();
    let mut keys: HashMap<&str, (usize, usize)> = HashMap::new();
    for (partition, offset, key, i) in &records {
        let next = offsets.entry(*partition).or_insert(0);
        assert_eq!(offset, next, "{what}: offsets of partition {partition}");
        *next += 1;
        if let Some((p, last)) = keys.insert(key, (*partition, *i)) {
            assert_eq!(p, *partition, "{what}: key {key} spans partitions");
            assert!(last < *i, "{what}: key {key}: record {i} after {last}");
        }
    }
    assert!(
        offsets.len() > 1,
        "{what}: keys should spread over partitions: {offsets:?}"
    );
}

fn kcat_consume(addr: &str, topic: &str, expected: usize) -> String {
    let format = "%p\\t%o\\t%T\\t%k\\t%s\\t%h\\n";
    let wait = Duration::from_secs(30);
    support::kcat_consume_at_least(addr, topic, format, expected, wait, CLIENT_LIMIT)
}

fn kcat_produce(addr: &str, topic: &str, config: &[&str], input: &[u8]) {
    run(
        Command::new("kcat")
            .args(["-b", addr, "-P", "-t", topic, "-K", ":"])
            .args(config),
        input,
        CLIENT_LIMIT,
    );
}

/// The matrix for `client`: every codec, `MATRIX_RECORDS` records each (a third per acks
/// setting), read back by the same client; the `cross` codec's topic is also read by `reader`.
fn matrix(client: Client, reader: Client, cross: &str) {
    client.require();
    reader.require();
    let tmp = tempfile::tempdir().expect("tempdir");
    let extra = ["--num-partitions", "4"]; // kcat's topics are auto-created
    let broker = start_advertised(&tmp.path().join("data"), "matrix", &extra);
    let addr = broker.addr.clone();
    for codec in CODECS {
        let topic = format!("matrix-{codec}");
        if client != Kcat {
            client.create_topic(&addr, &topic, MATRIX_PARTITIONS);
        }
        let started = Instant::now();
        let expected = client.produce_matrix(&addr, &topic, codec, MATRIX_RECORDS);
        let produced = started.elapsed();
        check_stored_codec(&tmp.path().join("data"), &topic, codec, client);
        let out = client.consume(&addr, &topic, MATRIX_PARTITIONS, MATRIX_RECORDS);
        check_records(&out, &expected, &format!("{client:?} {codec}"));
        eprintln!(
            "{client:?} {codec}: {MATRIX_RECORDS} records produced in {produced:?}, read and checked in {:?}",
            started.elapsed() - produced
        );
        if codec == cross {
            let out = reader.consume(&addr, &topic, MATRIX_PARTITIONS, MATRIX_RECORDS);
            check_records(
                &out,
                &expected,
                &format!("{client:?} {codec} read by {reader:?}"),
            );
        }
    }
    broker.stop();
}

/// The batches on disk carry the codec the client was asked for: a client that silently falls
/// back to no compression (older librdkafka did — 1.9.2, 2.0.2 — against a broker whose Produce range
/// lacks v0) must fail here, not pass on read-back. Clients may send a batch uncompressed when
/// compressing would not shrink it, so other batches may be uncompressed, never another codec.
fn check_stored_codec(data: &Path, topic: &str, codec: &str, client: Client) {
    let id = CODECS
        .iter()
        .position(|c| *c == codec)
        .expect("a known codec") as i16;
    // The log writes behind the acknowledgement (acks 0 and 1): wait until all is on disk.
    let stored = || -> Vec<(i16, i32, i32)> {
        (0..MATRIX_PARTITIONS as i32)
            .flat_map(|p| support::disk_batches(data, topic, p))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut batches = stored();
    while batches.iter().map(|b| b.1 as usize).sum::<usize>() < MATRIX_RECORDS
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
        batches = stored();
    }
    let with_codec: i32 = batches.iter().filter(|b| b.0 == id).map(|b| b.1).sum();
    let all: i32 = batches.iter().map(|b| b.1).sum();
    assert!(
        batches.iter().all(|b| b.0 == id || b.0 == 0) && (with_codec * 2 > all),
        "{client:?} {codec}: {with_codec} of {all} stored records are in {codec} batches; \
         batches (codec, records, last delta): {batches:?}"
    );
}

#[test]
fn kcat_matrix_every_codec_and_acks_read_back_by_kcat_and_kafka_python() {
    matrix(Kcat, KafkaPython, "zstd");
}

#[test]
fn kafka_python_matrix_every_codec_and_acks_read_back_by_kafka_python_and_kafkajs() {
    matrix(KafkaPython, Kafkajs, "lz4");
}

#[test]
fn confluent_kafka_matrix_every_codec_and_acks_read_back_by_confluent_and_kcat() {
    matrix(Confluent, Kcat, "snappy");
}

#[test]
fn kafkajs_matrix_every_codec_and_acks_read_back_by_kafkajs_and_confluent() {
    matrix(Kafkajs, Confluent, "gzip");
}

#[test]
fn admin_create_describe_delete_and_metadata_at_the_advertised_address_with_every_client() {
    for c in [Kcat, KafkaPython, Confluent, Kafkajs] {
        c.require();
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let broker = start_advertised(&data, "admin", &[]);
    let (addr, adv) = (broker.addr.clone(), broker.advertised.clone());

    // kcat: metadata only (it has no admin API).
    KafkaPython.create_topic(&addr, "listed", 3);
    let md = run(
        Command::new("kcat").args(["-b", &addr, "-L", "-J"]),
        b"",
        CLIENT_LIMIT,
    );
    let md: serde_json::Value = serde_json::from_str(&md).expect("kcat -L -J");
    assert_eq!(
        md["brokers"],
        serde_json::json!([{"id": 1, "name": adv}]),
        "{md}"
    );
    let listed = md["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .find(|t| t["topic"] == "listed")
        .unwrap_or_else(|| panic!("topic listed missing: {md}"));
    assert_eq!(listed["partitions"].as_array().map(Vec::len), Some(3));

    for client in [KafkaPython, Confluent, Kafkajs] {
        let out = client.call("admin", &[&addr, &adv]);
        assert!(out.contains("admin ok"), "{client:?}: {out}");
    }
    for topic in ["cfg", "cfg-ck", "cfg-js"] {
        assert!(
            !data.join("logs").join(format!("{topic}-0")).exists(),
            "a deleted topic's log directories are removed ({topic})"
        );
    }
    broker.stop();
}

/// Needs AlterConfigs and IncrementalAlterConfigs in the broker (until then the clients get
/// UNSUPPORTED_VERSION). Kafka's semantics: AlterConfigs replaces the topic's whole set of
/// overrides (confluent-kafka, kafkajs; kafka-python re-sends the other overrides itself),
/// IncrementalAlterConfigs SET/DELETE/APPEND/SUBTRACT (kafka-python, confluent-kafka; kafkajs
/// 2.2.4 has no incremental API), describe shows DYNAMIC_TOPIC_CONFIG afterwards, an unknown
/// name or SUBTRACT on a non-list config is INVALID_CONFIG, validate_only changes nothing.
#[test]
fn admin_alter_configs_and_incremental_alter_configs_with_every_admin_client() {
    for c in [KafkaPython, Confluent, Kafkajs] {
        c.require();
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let broker = start(&tmp.path().join("data"), "alter");
    for client in [KafkaPython, Confluent, Kafkajs] {
        let out = client.call("alter", &[&broker.addr]);
        assert!(out.contains("alter ok"), "{client:?}: {out}");
    }
    broker.stop();
}

#[test]
fn sigterm_closes_logs_cleanly_and_a_restart_serves_every_acknowledged_record() {
    Kcat.require();
    KafkaPython.require();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let broker = start(&data, "first");
    KafkaPython.create_topic(&broker.addr, "durable", 4);
    let expected = Kcat.produce_matrix(&broker.addr, "durable", "none", 3000);
    broker.stop();
    let markers = std::fs::read_dir(data.join("logs"))
        .expect("logs dir")
        .filter_map(Result::ok)
        .filter(|e| e.path().join(".clean_shutdown").exists())
        .count();
    assert_eq!(markers, 4, "every partition log is marked clean");

    let broker = start(&data, "second");
    let out = kcat_consume(&broker.addr, "durable", expected.n);
    check_records(&out, &expected, "after restart");
    broker.stop();
}

#[test]
fn kill9_during_an_acks_all_produce_loses_no_acknowledged_record() {
    Kcat.require();
    KafkaPython.require();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let broker = start(&data, "doomed");
    KafkaPython.create_topic(&broker.addr, "crash", 4);
    let mut producer = KafkaPython
        .script("produce_until_killed")
        .args([&broker.addr, "crash", "200000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    let stdout = producer.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut acked = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix("acked ") {
                acked.push(rest.to_string());
                if acked.len() == 2000 {
                    let _ = tx.send(());
                }
            }
        }
        acked
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("2,000 acknowledged records before the kill");
    broker.kill9();
    wait_for(
        &mut producer,
        Duration::from_secs(60),
        "the producer to give up",
    );
    let acked = reader.join().expect("reader");
    assert!(acked.len() >= 2000);

    let broker = start(&data, "recovered");
    let out = kcat_consume(&broker.addr, "crash", acked.len());
    let stored: HashSet<String> = out
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() == 6).then(|| format!("{} {}", f[3], f[4]))
        })
        .collect();
    let lost: Vec<&String> = acked.iter().filter(|a| !stored.contains(*a)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged records lost, e.g. {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
    broker.stop();
}

fn api_versions_request(version: i16, correlation: i32) -> Vec<u8> {
    let mut b = header(18, version, correlation);
    if version >= 3 {
        b.extend_from_slice(&[0, 1, 1, 0]); // header tags; body: empty compact strings, no tags
    }
    b
}

fn closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1];
    matches!(stream.read(&mut buf), Ok(0) | Err(_))
}

#[test]
fn bad_input_closes_only_that_connection_and_unsupported_api_versions_fall_back_to_v0() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let broker = start(&tmp.path().join("data"), "raw");

    // ApiVersions v3: header v0 response, error 0, and no tagged fields at the end.
    let mut s = broker.connect();
    let r = roundtrip(&mut s, &api_versions_request(3, 11)).expect("v3 answer");
    assert_eq!(&r[..4], &11i32.to_be_bytes());
    assert_eq!(&r[4..6], &0i16.to_be_bytes());
    assert_eq!(*r.last().expect("bytes"), 0, "no top-level tagged fields");

    // An unsupported ApiVersions version: v0 answer with UNSUPPORTED_VERSION (35) and the table.
    let r = roundtrip(&mut s, &api_versions_request(77, 12)).expect("fallback answer");
    assert_eq!(&r[..4], &12i32.to_be_bytes());
    assert_eq!(&r[4..6], &35i16.to_be_bytes());
    let entries = i32::from_be_bytes(r[6..10].try_into().expect("len"));
    assert_eq!(r.len(), 10 + 6 * entries as usize, "v0 layout");

    // A frame over socket.request.max.bytes closes the connection.
    let mut s = broker.connect();
    s.write_all(&(200u32 << 20).to_be_bytes()).expect("write");
    assert!(closed(&mut s));

    // An unknown API key closes the connection.
    let mut s = broker.connect();
    let mut bad = api_versions_request(0, 1);
    bad[..2].copy_from_slice(&999i16.to_be_bytes());
    assert!(roundtrip(&mut s, &bad).is_none());

    // A truncated Metadata request closes the connection.
    let mut s = broker.connect();
    let mut bad = vec![0, 3, 0, 1, 0, 0, 0, 5, 0xff, 0xff];
    bad.extend_from_slice(&[0, 0]);
    assert!(roundtrip(&mut s, &bad).is_none());

    // A Metadata request claiming 2^31 - 1 topics in 7 bytes (the decoder would allocate for
    // all of them) closes the connection.
    let mut s = broker.connect();
    let mut bad = vec![0, 3, 0, 1, 0, 0, 0, 5, 0xff, 0xff];
    bad.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff, 0, 1, b'a']);
    assert!(roundtrip(&mut s, &bad).is_none());

    // The broker still serves new connections on both shards.
    for i in 0..8 {
        let mut s = broker.connect();
        assert!(roundtrip(&mut s, &api_versions_request(3, i)).is_some());
    }
    broker.stop();
}
