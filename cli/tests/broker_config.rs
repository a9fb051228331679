//! Broker configuration through real processes and real clients: AlterConfigs and
//! IncrementalAlterConfigs (kafka-python and confluent-kafka) with DescribeConfigs afterwards, as
//! a conformance check (the semantics are in-process in `engine/tests/configs.rs`),
//! retention enforced by the broker after a live config change, `weir serve --config FILE` with
//! flags over it, and `weir serve --coord ADDR` against a separate `weir coord` process across a
//! broker restart.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{free_port, read, ServeProcess};

const PY: &str = r#"
import sys, time
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic, ConfigResource, ConfigResourceType, AlterConfigOp

cmd, bootstrap = sys.argv[1], sys.argv[2]
admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=20000)
TOPIC = ConfigResourceType.TOPIC

def describe(topic):
    res = admin.describe_configs([ConfigResource(TOPIC, topic)], config_filter="all")
    return {k: (v["value"], v["config_source"]) for k, v in res["topic"][topic].items()}

def alter(topic, configs, **kw):
    res = admin.alter_configs([ConfigResource(TOPIC, topic, configs=configs)], **kw)
    return res["topic"][topic]

def produce(topic, n, size):
    p = KafkaProducer(bootstrap_servers=bootstrap, acks=1, enable_idempotence=False,
                      linger_ms=0, request_timeout_ms=20000)
    for i in range(n):
        p.send(topic, key=b"k%d" % i, value=b"v%d-" % i + b"x" * size).get(timeout=20)
    p.close()

def offsets(topic):
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, request_timeout_ms=20000)
    tp = TopicPartition(topic, 0)
    r = c.beginning_offsets([tp])[tp], c.end_offsets([tp])[tp]
    c.close()
    return r

if cmd == "alter":
    # Conformance only: each admin client's calls reach the broker and its answers reach the
    # client. The semantics (sources, refusals, validate_only, restarts) are in
    # engine/tests/configs.rs.
    admin.create_topics([NewTopic("alt", num_partitions=2, replication_factor=1,
                                  topic_configs={"segment.bytes": "1048576"})])
    d = describe("alt")
    assert d["retention.ms"] == ("604800000", "DEFAULT_CONFIG"), d["retention.ms"]
    assert d["segment.bytes"] == ("1048576", "DYNAMIC_TOPIC_CONFIG"), d["segment.bytes"]
    # kafka-python's IncrementalAlterConfigs: SET one, DELETE another.
    assert alter("alt", {"retention.ms": "1234", "segment.bytes": (AlterConfigOp.DELETE, None)}) == "OK"
    d = describe("alt")
    assert d["retention.ms"] == ("1234", "DYNAMIC_TOPIC_CONFIG"), d
    assert d["segment.bytes"] == ("1073741824", "DEFAULT_CONFIG"), d
    # A refusal reaches the client as its error type, naming the config.
    got = alter("alt", {"retention.msx": "5"}, raise_on_unknown=False)
    assert "InvalidConfigurationError" in got and "retention.msx" in got, got
    # Legacy AlterConfigs (confluent-kafka's alter_configs) replaces every override.
    from confluent_kafka.admin import AdminClient, ConfigResource as CR, ResourceType
    ck = AdminClient({"bootstrap.servers": bootstrap})
    for f in ck.alter_configs([CR(ResourceType.TOPIC, "alt",
                                  set_config={"segment.bytes": "2097152"})]).values():
        f.result()
    d = describe("alt")
    assert d["segment.bytes"] == ("2097152", "DYNAMIC_TOPIC_CONFIG"), d
    assert d["retention.ms"] == ("604800000", "DEFAULT_CONFIG"), d
    bad = ck.alter_configs([CR(ResourceType.TOPIC, "alt", set_config={"no.such": "1"})])
    for f in bad.values():
        try:
            f.result()
            raise SystemExit("an unknown config was accepted")
        except Exception as e:
            assert "no.such" in str(e), e
    # With librdkafka's IncrementalAlterConfigs too.
    from confluent_kafka.admin import ConfigEntry, AlterConfigOpType
    entry = ConfigEntry("retention.ms", "4321", incremental_operation=AlterConfigOpType.SET)
    for f in ck.incremental_alter_configs([CR(ResourceType.TOPIC, "alt",
                                              incremental_configs=[entry])]).values():
        f.result()
    d = describe("alt")
    assert d["retention.ms"] == ("4321", "DYNAMIC_TOPIC_CONFIG"), d
    assert d["segment.bytes"] == ("2097152", "DYNAMIC_TOPIC_CONFIG"), d
    print("alter ok")
elif cmd == "retention":
    # Small segments: 40 records of ~2 KB make several sealed segments.
    admin.create_topics([NewTopic("ret", num_partitions=1, replication_factor=1,
                                  topic_configs={"segment.bytes": "16384"})])
    produce("ret", 40, 2000)
    start, end = offsets("ret")
    assert (start, end) == (0, 40), (start, end)
    time.sleep(1.5)  # several retention checks: nothing is past the default 7 days
    assert offsets("ret")[0] == 0
    assert alter("ret", {"retention.ms": "100"}) == "OK"
    t0, deadline = time.time(), time.time() + 10
    while offsets("ret")[0] == 0 and time.time() < deadline:
        time.sleep(0.1)
    start, end = offsets("ret")
    assert 0 < start <= end == 40, (start, end)
    print("log start moved to %d after %.1f s" % (start, time.time() - t0))
elif cmd == "describe_broker":
    res = admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1")], config_filter="all")
    for k, v in sorted(res["broker"]["1"].items()):
        print("broker", k, v["value"], v["config_source"])
    admin.create_topics([NewTopic("fromfile", num_partitions=1, replication_factor=1)])
    for k, (v, s) in sorted(describe("fromfile").items()):
        print("topic", k, v, s)
elif cmd == "produce_consume":
    topic, n = sys.argv[3], int(sys.argv[4])
    if topic not in admin.list_topics():
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=20000)
    for i in range(n):
        p.send(topic, key=b"k%d" % i, value=b"v%d" % i).get(timeout=20)
    p.close()
    print("produced", n)
elif cmd == "consume":
    topic, n = sys.argv[3], int(sys.argv[4])
    assert topic in admin.list_topics(), admin.list_topics()
    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                      auto_offset_reset="earliest", consumer_timeout_ms=1000)
    got, deadline = set(), time.time() + 30
    while len(got) < n and time.time() < deadline:
        for m in c:
            got.add(m.value.decode())
    c.close()
    assert got == {"v%d" % i for i in range(n)}, sorted(got)
    print("consumed", len(got))
admin.close()
"#;

/// Runs the client script against `broker`; a failure shows the broker's log too.
fn python(broker: &ServeProcess, dir: &Path, args: &[&str]) -> String {
    let script = dir.join("client.py");
    std::fs::write(&script, PY).expect("writing client.py");
    let mut cmd = Command::new("python3");
    cmd.arg(&script).args(args);
    broker.run_client(&mut cmd, b"", Duration::from_secs(120))
}

fn serve_args<'a>(data_dir: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--data-dir",
        data_dir.to_str().expect("utf-8 path"),
        "--kafka-addr",
        "127.0.0.1:0",
        "--shards",
        "2",
    ];
    args.extend_from_slice(extra);
    args
}

/// Conformance of the admin clients' config calls (kafka-python's IncrementalAlterConfigs and
/// DescribeConfigs, confluent-kafka's AlterConfigs and IncrementalAlterConfigs, a refusal surfacing
/// as the client's error). The semantics are tested in-process in engine/tests/configs.rs.
#[test]
fn admin_clients_alter_and_describe_configs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let broker = ServeProcess::start(&dir.path().join("serve.stderr"), &serve_args(&data, &[]));
    let out = python(&broker, dir.path(), &["alter", &broker.addr]);
    assert!(out.contains("alter ok"), "{out}");
    broker.stop();
}

/// Two brokers on one address: the second must refuse to start (naming the address), not join
/// the first one's SO_REUSEPORT group and take half of its connections; the first keeps serving.
#[test]
fn a_second_broker_on_a_taken_port_refuses_to_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = ServeProcess::start(
        &dir.path().join("first.stderr"),
        &serve_args(&dir.path().join("first"), &[]),
    );
    let second_data = dir.path().join("second");
    let second_dir = second_data.to_str().expect("utf-8 path");
    let err = match ServeProcess::try_start(
        &dir.path().join("second.stderr"),
        None,
        &[
            "--data-dir",
            second_dir,
            "--kafka-addr",
            &first.addr,
            "--shards",
            "2",
        ],
    ) {
        Ok(_) => panic!("a second broker started on {}", first.addr),
        Err(e) => e,
    };
    assert!(
        err.contains("another process listens") && err.contains(&first.addr),
        "{err}"
    );
    let out = python(&first, dir.path(), &["alter", &first.addr]);
    assert!(out.contains("alter ok"), "{out}");
    first.stop();
}

#[test]
fn lowering_retention_ms_live_moves_the_log_start_within_seconds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let broker = ServeProcess::start(
        &dir.path().join("serve.stderr"),
        &serve_args(&data, &["--log-retention-check-interval-ms", "200"]),
    );
    let out = python(&broker, dir.path(), &["retention", &broker.addr]);
    assert!(out.contains("log start moved"), "{out}");
    broker.stop();
    let log = read(&dir.path().join("serve.stderr"));
    assert!(log.contains("retention deleted segments"), "{log}");
}

#[test]
fn a_config_file_sets_broker_and_topic_defaults_and_flags_override_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let file = dir.path().join("weir.toml");
    std::fs::write(
        &file,
        format!(
            "data.dir = {data:?}\nkafka.addr = \"127.0.0.1:0\"\nshards = 2\n\
             num.partitions = 3\n\
             [log]\nretention.check.interval.ms = 1000\nretention.ms = 3600000\n\
             segment.bytes = 4194304\n\
             retention.bytes = 100000000\ncleanup.policy = \"delete\"\n\
             [message]\nmax.bytes = 2000000\n"
        ),
    )
    .expect("writing weir.toml");
    let file_arg = file.to_str().expect("utf-8 path");
    let broker = ServeProcess::start(
        &dir.path().join("serve.stderr"),
        &["--config", file_arg, "--num-partitions", "5"],
    );
    let out = python(&broker, dir.path(), &["describe_broker", &broker.addr]);
    for line in [
        "broker num.partitions 5 STATIC_BROKER_CONFIG",
        "broker log.retention.check.interval.ms 1000 STATIC_BROKER_CONFIG",
        "broker log.retention.ms 3600000 STATIC_BROKER_CONFIG",
        "broker message.max.bytes 2000000 STATIC_BROKER_CONFIG",
        "broker log.roll.ms 604800000 DEFAULT_CONFIG",
        "topic retention.ms 3600000 STATIC_BROKER_CONFIG",
        "topic segment.bytes 4194304 STATIC_BROKER_CONFIG",
        "topic retention.bytes 100000000 STATIC_BROKER_CONFIG",
        "topic max.message.bytes 2000000 STATIC_BROKER_CONFIG",
        "topic flush.ms 9223372036854775807 DEFAULT_CONFIG",
    ] {
        assert!(out.lines().any(|l| l == line), "no {line:?} in\n{out}");
    }
    broker.stop();

    // Mistakes stop the broker at startup with the key named.
    for (text, words) in [
        ("log.retention.msx = 5\n", &["log.retention.msx"][..]),
        (
            "log.cleanup.policy = \"compacted\"\n",
            &["log.cleanup.policy", "compacted"][..],
        ),
        (
            "compression.type = \"zstd\"\n",
            &["compression.type", "zstd"][..],
        ),
        ("num.partitions = -2\n", &["num.partitions"][..]),
    ] {
        std::fs::write(&file, text).expect("writing weir.toml");
        let stderr = dir.path().join("bad.stderr");
        let err = match ServeProcess::try_start(
            &stderr,
            None,
            &["--config", file_arg, "--data-dir", "x"],
        ) {
            Ok(_) => panic!("{text:?} was accepted"),
            Err(e) => e,
        };
        for w in words {
            assert!(err.contains(w), "{text:?}: {err}");
        }
    }
}

#[test]
fn a_broker_joins_a_separate_coordinator_and_finds_its_topics_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let coord_addr = format!("127.0.0.1:{}", free_port());
    let coord_log = std::fs::File::create(dir.path().join("coord.stderr")).expect("log file");
    let mut coord = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["coord", "--id", "1", "--data-dir"])
        .arg(dir.path().join("coord"))
        .args(["--listen", &coord_addr, "--no-zk"])
        .stdout(Stdio::null())
        .stderr(coord_log)
        .spawn()
        .expect("spawning weir coord");
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&coord_addr).is_err() {
        assert!(
            coord.try_wait().ok().flatten().is_none(),
            "weir coord exited: {}",
            read(&dir.path().join("coord.stderr"))
        );
        assert!(Instant::now() < deadline, "weir coord did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let coord = Kill(coord);

    let data = dir.path().join("data");
    let args = serve_args(&data, &["--coord", &coord_addr]);
    let broker = ServeProcess::start(&dir.path().join("serve.stderr"), &args);
    let out = python(
        &broker,
        dir.path(),
        &["produce_consume", &broker.addr, "joined", "50"],
    );
    assert!(out.contains("produced 50"), "{out}");
    broker.stop();
    assert!(
        !data.join("coord").exists(),
        "no embedded coordinator was started"
    );

    let broker = ServeProcess::start(&dir.path().join("serve2.stderr"), &args);
    let log = read(&dir.path().join("serve2.stderr"));
    assert!(
        log.lines()
            .any(|l| l.contains("partition log open") && l.contains("joined")),
        "the topic's logs were reopened: {log}"
    );
    let out = python(
        &broker,
        dir.path(),
        &["consume", &broker.addr, "joined", "50"],
    );
    assert!(out.contains("consumed 50"), "{out}");
    broker.stop();
    drop(coord);
}
