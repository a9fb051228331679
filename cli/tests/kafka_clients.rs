//! Real Kafka clients against `weir serve`: Debian's kcat (librdkafka 2.0.2, which also checks
//! the ApiVersions v3 tagged-field quirk), kafka-python, and confluent-kafka (librdkafka 2.16).
//! Each test starts the built binary on a free loopback port with a temporary data directory and
//! two shards (so requests cross shards). The clients must be installed (scripts/test installs them); a missing client fails
//! the test, it is never skipped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `weir serve` process.
struct Broker {
    child: Option<Child>,
    addr: String,
    stderr_path: PathBuf,
}

impl Broker {
    fn start(data_dir: &Path, tag: &str) -> Broker {
        let stderr_path = data_dir.with_extension(format!("{tag}.stderr"));
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["serve", "--data-dir"])
            .arg(data_dir)
            .args([
                "--kafka-addr",
                "127.0.0.1:0",
                "--shards",
                "2",
                "--log-segment-bytes",
                "8388608",
            ])
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawning weir serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let _ = tx.send(line);
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("weir serve did not become ready: {}", read(&stderr_path)));
        let addr = line
            .strip_prefix("weir: serving Kafka on ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected ready line {line:?}"))
            .to_string();
        Broker {
            child: Some(child),
            addr,
            stderr_path,
        }
    }

    /// SIGTERM, and the exit status must be success (every log closed cleanly).
    fn stop(mut self) {
        let mut child = self.child.take().expect("running");
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = wait_for(&mut child, Duration::from_secs(30), "weir serve to stop");
        let log = read(&self.stderr_path);
        assert!(status.success(), "weir serve exited with {status}: {log}");
        assert!(log.contains("stopped cleanly"), "{log}");
    }
}

impl Broker {
    /// SIGKILL: no flush, no clean-shutdown marker.
    fn kill9(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn wait_for(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a client command with `input` on stdin; returns stdout; fails on a non-zero exit.
fn run(cmd: &mut Command, input: &[u8], limit: Duration) -> String {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {cmd:?} (is it installed? scripts/test installs it): {e}")
        });
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = wait_for(&mut child, limit, &format!("{cmd:?}"));
    let _ = writer.join();
    let out = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    assert!(
        status.success(),
        "{cmd:?} failed with {status}\nstdout:\n{out}\nstderr:\n{err}"
    );
    out
}

fn require_clients() {
    let kcat = Command::new("kcat").arg("-V").output();
    assert!(
        kcat.is_ok_and(|o| o.status.success()),
        "kcat is not installed (scripts/test installs it: apt-get install kcat)"
    );
    let py = Command::new("python3")
        .args(["-c", "import kafka"])
        .output();
    assert!(
        py.is_ok_and(|o| o.status.success()),
        "kafka-python is not installed (scripts/test installs it: pip install kafka-python)"
    );
    let ck = Command::new("python3")
        .args(["-c", "import confluent_kafka"])
        .output();
    assert!(
        ck.is_ok_and(|o| o.status.success()),
        "confluent-kafka is not installed (scripts/test installs it: pip install confluent-kafka)"
    );
}

const PY: &str = r#"
import sys, time
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

cmd, bootstrap = sys.argv[1], sys.argv[2]
if cmd == "create":
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=20000)
    topic, partitions = sys.argv[3], int(sys.argv[4])
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    admin.close()
    print("created", topic)
elif cmd == "produce":
    # stdin: key:value lines
    topic, acks = sys.argv[3], sys.argv[4]
    if acks == "all":
        # kafka-python's defaults: acks=all with the idempotent producer (InitProducerId).
        p = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, request_timeout_ms=20000)
        assert p.config["enable_idempotence"]
    else:
        p = KafkaProducer(bootstrap_servers=bootstrap, acks=int(acks), enable_idempotence=False,
                          linger_ms=5, request_timeout_ms=20000)
    futures = []
    for line in sys.stdin:
        k, v = line.rstrip("\n").split(":", 1)
        futures.append(p.send(topic, key=k.encode(), value=v.encode(),
                              headers=[("h", b"x")]))
    p.flush(timeout=60)
    for f in futures:
        f.get(timeout=30)
    p.close()
    print("produced", len(futures))
elif cmd == "admin":
    from kafka.admin import ConfigResource, ConfigResourceType
    from kafka.errors import InvalidTopicError, TopicAlreadyExistsError
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=20000)
    admin.create_topics([NewTopic("cfg", num_partitions=2, replication_factor=1,
                                  topic_configs={"retention.ms": "3600000"})])
    res = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "cfg")],
                                 config_filter="all")
    configs = {k: v["value"] for k, v in res["topic"]["cfg"].items()}
    assert configs["retention.ms"] == "3600000", configs
    assert configs["segment.bytes"] == "8388608", configs
    res = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "cfg")])
    assert list(res["topic"]["cfg"]) == ["retention.ms"], res
    cluster = admin.describe_cluster()
    assert cluster["cluster_id"] and len(cluster["brokers"]) == 1, cluster
    for bad, err in (("bad/name", InvalidTopicError), ("cfg", TopicAlreadyExistsError)):
        try:
            admin.create_topics([NewTopic(bad, num_partitions=1, replication_factor=1)])
            raise SystemExit("creating %r should fail" % bad)
        except err:
            pass
    assert "cfg" in admin.list_topics()
    from kafka.admin import NewPartitions
    from kafka.errors import InvalidPartitionsError
    admin.create_partitions({"cfg": NewPartitions(total_count=5)})
    [desc] = admin.describe_topics(["cfg"])
    assert len(desc["partitions"]) == 5, desc
    try:
        admin.create_partitions({"cfg": NewPartitions(total_count=3)})
        raise SystemExit("shrinking partitions should fail")
    except InvalidPartitionsError:
        pass
    p = KafkaProducer(bootstrap_servers=bootstrap)
    p.send("cfg", value=b"to-the-new-partition", partition=4).get(timeout=20)
    p.close()
    admin.delete_topics(["cfg"])
    assert "cfg" not in admin.list_topics()
    admin.close()
    print("admin ok")
elif cmd == "produce_until_killed":
    # acks=all, no retries: prints each record the broker acknowledged, until it dies.
    topic, count = sys.argv[3], int(sys.argv[4])
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False,
                      retries=0, linger_ms=2, request_timeout_ms=3000, max_block_ms=3000)
    def acked(k, v):
        return lambda _md: sys.stdout.write("acked %s %s\n" % (k, v)) and sys.stdout.flush()
    failed = []
    try:
        for i in range(count):
            if failed:
                break
            k, v = "key%d" % (i % 50), "key%d-%d" % (i % 50, i // 50)
            f = p.send(topic, key=k.encode(), value=v.encode())
            f.add_callback(acked(k, v))
            f.add_errback(failed.append)
            if i % 200 == 0:
                time.sleep(0.005)
        p.flush(timeout=10)
    except Exception as e:
        sys.stderr.write("stopped: %r\n" % e)
    try:
        p.close(timeout=1)
    except Exception:
        pass
elif cmd == "confluent":
    # confluent-kafka (librdkafka 2.16): idempotent produce with a codec, then consume by assign.
    from confluent_kafka import Consumer, Producer, TopicPartition
    topic, codec, partitions = sys.argv[3], sys.argv[4], int(sys.argv[5])
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                  "compression.type": codec, "linger.ms": 5})
    errors, sent = [], 0
    def report(err, _msg):
        if err is not None:
            errors.append(err)
    for line in sys.stdin:
        k, v = line.rstrip("\n").split(":", 1)
        p.produce(topic, key=k.encode(), value=v.encode(), headers=[("h", b"x")],
                  on_delivery=report)
        sent += 1
        if sent % 500 == 0:
            p.poll(0)
    assert p.flush(60) == 0 and not errors, errors[:3]
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, i, 0) for i in range(partitions)])
    got, deadline = 0, time.time() + 60
    while got < sent and time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        assert not m.error(), m.error()
        assert m.headers() == [("h", b"x")], m.headers()
        print(m.partition(), m.offset(), m.key().decode(), m.value().decode())
        got += 1
    c.close()
elif cmd == "consume":
    topic, expected = sys.argv[3], int(sys.argv[4])
    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                      auto_offset_reset="earliest", consumer_timeout_ms=1000)
    got, deadline = 0, time.time() + 60
    while got < expected and time.time() < deadline:
        for m in c:
            print(m.partition, m.offset, m.key.decode(), m.value.decode())
            got += 1
            if got >= expected:
                break
    c.close()
"#;

fn python(dir: &Path, args: &[&str], input: &[u8]) -> String {
    let script = dir.join("client.py");
    std::fs::write(&script, PY).expect("writing client.py");
    run(
        Command::new("python3").arg(&script).args(args),
        input,
        Duration::from_secs(120),
    )
}

/// `KEYS` keys, `per_key` values each, interleaved; value = "<key>-<seq>".
fn keyed_input(keys: usize, per_key: usize) -> (Vec<u8>, usize) {
    let mut s = String::new();
    for seq in 0..per_key {
        for k in 0..keys {
            s.push_str(&format!("key{k}:key{k}-{seq}\n"));
        }
    }
    (s.into_bytes(), keys * per_key)
}

/// Checks "partition offset key value" lines: every record exactly once, each key in one
/// partition with its values in order, offsets strictly increasing per partition.
fn check_consumed(out: &str, keys: usize, per_key: usize) {
    let mut by_key: HashMap<String, Vec<(i32, u64, usize)>> = HashMap::new();
    let mut seen = HashSet::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 4, "bad line {line:?}");
        let partition: i32 = f[0].parse().expect("partition");
        let offset: u64 = f[1].parse().expect("offset");
        let (vk, seq) = f[3].rsplit_once('-').expect("value key-seq");
        assert_eq!(vk, f[2], "value {} does not belong to key {}", f[3], f[2]);
        assert!(
            seen.insert((partition, offset)),
            "offset {partition}/{offset} twice"
        );
        by_key.entry(f[2].to_string()).or_default().push((
            partition,
            offset,
            seq.parse().expect("seq"),
        ));
    }
    assert_eq!(seen.len(), keys * per_key, "records consumed");
    assert_eq!(by_key.len(), keys);
    let mut partitions = BTreeMap::new();
    for (key, mut recs) in by_key {
        assert_eq!(recs.len(), per_key, "{key}");
        let p = recs[0].0;
        assert!(recs.iter().all(|r| r.0 == p), "{key} spans partitions");
        recs.sort_by_key(|r| r.1);
        let seqs: Vec<usize> = recs.iter().map(|r| r.2).collect();
        assert_eq!(seqs, (0..per_key).collect::<Vec<_>>(), "{key} out of order");
        *partitions.entry(p).or_insert(0) += 1;
    }
    assert!(
        partitions.len() > 1,
        "keys should spread over partitions: {partitions:?}"
    );
}

fn kcat_consume(addr: &str, topic: &str) -> String {
    run(
        Command::new("kcat").args([
            "-b",
            addr,
            "-C",
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%p %o %k %s\n",
        ]),
        b"",
        Duration::from_secs(60),
    )
}

fn kcat_produce(addr: &str, topic: &str, config: &[&str], input: &[u8]) {
    run(
        Command::new("kcat")
            .args(["-b", addr, "-P", "-t", topic, "-K", ":"])
            .args(config),
        input,
        Duration::from_secs(60),
    );
}

#[test]
fn kcat_and_kafka_python_produce_and_consume_keyed_records_across_shards() {
    require_clients();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let broker = Broker::start(&data, "a");
    let addr = broker.addr.clone();
    let (keys, per_key) = (40, 75); // 3,000 records per run

    // kafka-python creates the topic; kcat (librdkafka 2.0.2) produces with acks=1;
    // kafka-python consumes.
    python(tmp.path(), &["create", &addr, "keyed", "4"], b"");
    let (input, n) = keyed_input(keys, per_key);
    kcat_produce(&addr, "keyed", &["-X", "acks=1"], &input);
    let out = python(
        tmp.path(),
        &["consume", &addr, "keyed", &n.to_string()],
        b"",
    );
    check_consumed(&out, keys, per_key);

    // kafka-python produces with its defaults (acks=all, idempotent), with headers; kcat
    // consumes.
    python(tmp.path(), &["create", &addr, "keyed2", "3"], b"");
    python(tmp.path(), &["produce", &addr, "keyed2", "all"], &input);
    check_consumed(&kcat_consume(&addr, "keyed2"), keys, per_key);

    // acks=0 from kafka-python (no responses at all), then everything is readable.
    python(tmp.path(), &["create", &addr, "noacks", "2"], b"");
    let (small, _) = keyed_input(10, 20);
    python(tmp.path(), &["produce", &addr, "noacks", "0"], &small);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = kcat_consume(&addr, "noacks");
        if out.lines().count() >= 200 || Instant::now() > deadline {
            check_consumed(&out, 10, 20);
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    broker.stop();
}

#[test]
fn confluent_kafka_idempotent_produce_with_every_codec_and_consume() {
    require_clients();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let broker = Broker::start(&data, "confluent");
    let (input, _) = keyed_input(20, 50);
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("codec-{codec}");
        python(tmp.path(), &["create", &broker.addr, &topic, "3"], b"");
        let out = python(
            tmp.path(),
            &["confluent", &broker.addr, &topic, codec, "3"],
            &input,
        );
        check_consumed(&out, 20, 50);
    }
    broker.stop();
}

#[test]
fn kafka_python_admin_creates_describes_and_deletes_topics() {
    require_clients();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let broker = Broker::start(&data, "admin");
    let out = python(tmp.path(), &["admin", &broker.addr], b"");
    assert!(out.contains("admin ok"), "{out}");
    assert!(
        !data.join("logs").join("cfg-0").exists(),
        "a deleted topic's log directories are removed"
    );
    broker.stop();
}

#[test]
fn sigterm_closes_logs_cleanly_and_a_restart_serves_every_acknowledged_record() {
    require_clients();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let broker = Broker::start(&data, "first");
    python(tmp.path(), &["create", &broker.addr, "durable", "4"], b"");
    let (input, _) = keyed_input(20, 100);
    kcat_produce(
        &broker.addr,
        "durable",
        &["-X", "acks=all", "-X", "enable.idempotence=true"],
        &input,
    );
    broker.stop();
    let markers = std::fs::read_dir(data.join("logs"))
        .expect("logs dir")
        .filter_map(Result::ok)
        .filter(|e| e.path().join(".clean_shutdown").exists())
        .count();
    assert_eq!(markers, 4, "every partition log is marked clean");

    let broker = Broker::start(&data, "second");
    check_consumed(&kcat_consume(&broker.addr, "durable"), 20, 100);
    broker.stop();
}

#[test]
fn kill9_during_an_acks_all_produce_loses_no_acknowledged_record() {
    require_clients();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let broker = Broker::start(&data, "doomed");
    python(tmp.path(), &["create", &broker.addr, "crash", "4"], b"");
    let script = tmp.path().join("client.py");
    let mut producer = Command::new("python3")
        .arg(&script)
        .args(["produce_until_killed", &broker.addr, "crash", "200000"])
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

    let broker = Broker::start(&data, "recovered");
    let out = kcat_consume(&broker.addr, "crash");
    let stored: HashSet<String> = out
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 4).then(|| format!("{} {}", f[2], f[3]))
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

/// Sends one raw frame and reads one response frame (None if the broker closed the connection).
fn roundtrip(stream: &mut TcpStream, body: &[u8]) -> Option<Vec<u8>> {
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    stream.write_all(&frame).ok()?;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).ok()?;
    let mut resp = vec![0u8; u32::from_be_bytes(size) as usize];
    stream.read_exact(&mut resp).ok()?;
    Some(resp)
}

fn api_versions_request(version: i16, correlation: i32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&18i16.to_be_bytes());
    b.extend_from_slice(&version.to_be_bytes());
    b.extend_from_slice(&correlation.to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes()); // null client id
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
    let broker = Broker::start(&tmp.path().join("data"), "raw");
    let connect = || {
        let s = TcpStream::connect(&broker.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s
    };

    // ApiVersions v3: header v0 response, error 0, and no tagged fields at the end.
    let mut s = connect();
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
    let mut s = connect();
    s.write_all(&(200u32 << 20).to_be_bytes()).expect("write");
    assert!(closed(&mut s));

    // An unknown API key closes the connection.
    let mut s = connect();
    let mut bad = api_versions_request(0, 1);
    bad[..2].copy_from_slice(&999i16.to_be_bytes());
    assert!(roundtrip(&mut s, &bad).is_none());

    // A truncated Metadata request closes the connection.
    let mut s = connect();
    let mut bad = vec![0, 3, 0, 1, 0, 0, 0, 5, 0xff, 0xff];
    bad.extend_from_slice(&[0, 0]);
    assert!(roundtrip(&mut s, &bad).is_none());

    // A Metadata request claiming 2^31 - 1 topics in 7 bytes (the decoder would allocate for
    // all of them) closes the connection.
    let mut s = connect();
    let mut bad = vec![0, 3, 0, 1, 0, 0, 0, 5, 0xff, 0xff];
    bad.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff, 0, 1, b'a']);
    assert!(roundtrip(&mut s, &bad).is_none());

    // The broker still serves new connections on both shards.
    for i in 0..8 {
        let mut s = connect();
        assert!(roundtrip(&mut s, &api_versions_request(3, i)).is_some());
    }
    broker.stop();
}
