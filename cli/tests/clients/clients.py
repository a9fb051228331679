# kafka-python (3.0.12) and confluent-kafka (2.16.1, librdkafka 2.16) commands for
# cli/tests/kafka_clients.rs: the produce/consume conformance matrix, admin (create, describe,
# alter configs, delete, metadata at the advertised address) and the crash-test producer.
#
# The records of the matrix are defined once here, once in kafkajs_client.js and once in the Rust
# checker (`matrix_record` in kafka_clients.rs), and must stay equal: record i of n has
#   key       "k{i % 37}"
#   value     "{key}/{i}/" + "weir" * (i % 13)
#   headers   [("seq", str(i)), ("acks", acks)] for even i, [("seq", str(i))] for odd i
#   timestamp base_ts + i (CreateTime)
# and records [0, n/3) go with acks=0, [n/3, 2n/3) with acks=1, [2n/3, n) with acks=all.
# Each run is a new producer, whose connection may land on another shard than the previous one's,
# and nothing orders the old connection's requests (acks=0 ones are not waited for) before the new
# one's: a run starts once every record of the runs before it is stored (see wait_stored), so each
# key's records stay in produce order across runs.
# Consumers print one line per record: partition, offset, timestamp, key, value and headers
# ("k=v,k=v", as kcat's %h) separated by tabs, reading every partition from offset 0 to its end.
import sys
import time

KEYS = 37


def record(i, base_ts, acks):
    key = "k%d" % (i % KEYS)
    value = "%s/%d/%s" % (key, i, "weir" * (i % 13))
    headers = [("seq", str(i).encode())]
    if i % 2 == 0:
        headers.append(("acks", acks.encode()))
    return key.encode(), value.encode(), headers, base_ts + i


def runs(n):
    """(acks, first, end) of the three produce runs."""
    b = [0, n // 3, 2 * n // 3, n]
    return [("0", b[0], b[1]), ("1", b[1], b[2]), ("all", b[2], b[3])]


def line(partition, offset, ts, key, value, headers):
    hs = ",".join("%s=%s" % (k, (v or b"").decode()) for k, v in (headers or []))
    return "%d\t%d\t%d\t%s\t%s\t%s\n" % (partition, offset, ts, key.decode(), value.decode(), hs)


def wait_for_end(end_offsets, expected, limit=60):
    """End offsets once they add up to at least `expected` (acks=0 records may still be on their
    way when the producer exits); then every stored record is read, duplicates included."""
    deadline = time.time() + limit
    while True:
        ends = end_offsets()
        if sum(ends.values()) >= expected or time.time() > deadline:
            return ends
        time.sleep(0.1)


def wait_stored(total, expected, what, limit=60):
    """Returns once total() (the topic's end offsets added up) reaches `expected`; fails naming
    `what` past `limit` seconds."""
    deadline = time.time() + limit
    while True:
        got = total()
        if got >= expected:
            return
        if time.time() > deadline:
            raise SystemExit("%s: %d of %d records stored after %d s" % (what, got, expected, limit))
        time.sleep(0.05)


# ---- kafka-python ----------------------------------------------------------------------------

def kp_produce(bootstrap, topic, codec, n, base_ts):
    from kafka import KafkaProducer
    for acks, first, end in runs(n):
        common = dict(bootstrap_servers=bootstrap, linger_ms=5, request_timeout_ms=20000,
                      compression_type=None if codec == "none" else codec)
        if acks == "all":
            # kafka-python's default at acks=all is the idempotent producer (InitProducerId).
            p = KafkaProducer(**common)
            assert p.config["enable_idempotence"] and p.config["acks"] == -1, p.config
        else:
            p = KafkaProducer(acks=int(acks), enable_idempotence=False, **common)
        futures = []
        for i in range(first, end):
            k, v, h, ts = record(i, base_ts, acks)
            futures.append(p.send(topic, key=k, value=v, headers=h, timestamp_ms=ts))
        p.flush(timeout=60)
        for f in futures:
            f.get(timeout=30)
        p.close()
        kp_wait_stored(bootstrap, topic, end, "acks=%s run" % acks)


def kp_wait_stored(bootstrap, topic, expected, what):
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                      request_timeout_ms=20000)
    tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or [])]
    assert tps, "no partitions for %s" % topic
    wait_stored(lambda: sum(c.end_offsets(tps).values()), expected, what)
    c.close()


def kp_consume(bootstrap, topic, partitions, expected):
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                      request_timeout_ms=20000)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    ends = wait_for_end(lambda: {tp: o for tp, o in c.end_offsets(tps).items()}, expected)
    out, deadline = [], time.time() + 60
    while any(c.position(tp) < ends[tp] for tp in tps) and time.time() < deadline:
        for tp, msgs in c.poll(timeout_ms=500).items():
            for m in msgs:
                assert m.timestamp_type == 0, "CreateTime expected: %r" % (m,)
                out.append(line(m.partition, m.offset, m.timestamp, m.key, m.value, m.headers))
    c.close()
    sys.stdout.write("".join(out))


def kp_metadata(admin, advertised):
    cluster = admin.describe_cluster()
    brokers = [(b["host"], b["port"]) for b in cluster["brokers"]]
    host, port = advertised.rsplit(":", 1)
    assert brokers == [(host, int(port))], (brokers, advertised)
    assert cluster["cluster_id"], cluster


def kp_admin(bootstrap, advertised):
    from kafka import KafkaProducer
    from kafka.admin import (ConfigResource, ConfigResourceType, KafkaAdminClient,
                             NewPartitions, NewTopic)
    from kafka.errors import (InvalidPartitionsError, InvalidTopicError,
                              TopicAlreadyExistsError)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=20000)
    kp_metadata(admin, advertised)
    admin.create_topics([NewTopic("cfg", num_partitions=2, replication_factor=1,
                                  topic_configs={"retention.ms": "3600000"})])
    res = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "cfg")],
                                 config_filter="all")
    configs = {k: v["value"] for k, v in res["topic"]["cfg"].items()}
    assert configs["retention.ms"] == "3600000", configs
    assert configs["segment.bytes"] == "8388608", configs
    res = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "cfg")])
    assert list(res["topic"]["cfg"]) == ["retention.ms"], res
    for bad, err in (("bad/name", InvalidTopicError), ("cfg", TopicAlreadyExistsError)):
        try:
            admin.create_topics([NewTopic(bad, num_partitions=1, replication_factor=1)])
            raise SystemExit("creating %r should fail" % bad)
        except err:
            pass
    assert "cfg" in admin.list_topics()
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


def kp_alter(bootstrap):
    # AlterConfigs through kafka-python re-sends the topic's other overrides itself (it reads
    # them first), so the replace-everything rule is checked with confluent-kafka and kafkajs.
    from kafka.admin import (AlterConfigOp, ConfigResource, ConfigResourceType,
                             KafkaAdminClient, NewTopic)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=20000)
    topic = "alter-kp"
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1,
                                  topic_configs={"retention.ms": "3600000"})])

    def describe():
        res = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)],
                                     config_filter="all")
        return {k: (v["value"], v["config_source"]) for k, v in res["topic"][topic].items()}

    def alter(configs, incremental, validate_only=False):
        res = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs)],
                                  validate_only=validate_only, raise_on_unknown=False,
                                  incremental=incremental)
        return res["topic"][topic]

    default = describe()
    DYNAMIC = "DYNAMIC_TOPIC_CONFIG"
    # AlterConfigs (the client keeps retention.ms by sending it again).
    assert alter({"retention.bytes": "1048576"}, incremental=False) == "OK"
    d = describe()
    assert d["retention.bytes"] == ("1048576", DYNAMIC), d
    assert d["retention.ms"] == ("3600000", DYNAMIC), d
    r = alter({"no.such.config": "1"}, incremental=False)
    assert "InvalidConfigurationError" in r, r
    assert alter({"retention.ms": "1"}, incremental=False, validate_only=True) == "OK"
    assert describe() == d, "validate_only changed the configs"
    # IncrementalAlterConfigs: SET, DELETE, APPEND to a list config, SUBTRACT from a plain one.
    assert alter({"retention.ms": (AlterConfigOp.SET, "7200000"),
                  "retention.bytes": (AlterConfigOp.DELETE, None),
                  "cleanup.policy": (AlterConfigOp.APPEND, "delete")}, incremental=True) == "OK"
    d = describe()
    assert d["retention.ms"] == ("7200000", DYNAMIC), d
    assert d["retention.bytes"] == default["retention.bytes"], d
    assert d["retention.bytes"][1] != DYNAMIC, d
    assert d["cleanup.policy"] == ("delete", DYNAMIC), d
    r = alter({"retention.ms": (AlterConfigOp.SUBTRACT, "1")}, incremental=True)
    assert "InvalidConfigurationError" in r, r
    r = alter({"no.such.config": (AlterConfigOp.SET, "1")}, incremental=True)
    assert "InvalidConfigurationError" in r, r
    assert alter({"retention.ms": (AlterConfigOp.SET, "1")}, incremental=True,
                 validate_only=True) == "OK"
    assert describe() == d, "validate_only changed the configs"
    assert describe() == d, "a failed alter changed the configs"
    admin.delete_topics([topic])
    admin.close()
    print("alter ok")


def kp_create(bootstrap, topic, partitions):
    from kafka.admin import KafkaAdminClient, NewTopic
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=20000)
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    admin.close()


def kp_produce_until_killed(bootstrap, topic, count):
    # acks=all, no retries: prints each record the broker acknowledged, until it dies.
    from kafka import KafkaProducer
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


# ---- confluent-kafka -------------------------------------------------------------------------

def ck_produce(bootstrap, topic, codec, n, base_ts):
    from confluent_kafka import Producer
    for acks, first, end in runs(n):
        # librdkafka's default is not idempotent: it is switched on for acks=all.
        p = Producer({"bootstrap.servers": bootstrap, "compression.type": codec,
                      "acks": "-1" if acks == "all" else acks,
                      "enable.idempotence": acks == "all", "linger.ms": 5})
        errors = []

        def report(err, _msg):
            if err is not None:
                errors.append(err)
        for i in range(first, end):
            k, v, h, ts = record(i, base_ts, acks)
            while True:
                try:
                    p.produce(topic, key=k, value=v, headers=h, timestamp=ts,
                              on_delivery=report)
                    break
                except BufferError:
                    p.poll(0.05)
            if i % 500 == 0:
                p.poll(0)
        assert p.flush(60) == 0 and not errors, errors[:3]
        ck_wait_stored(bootstrap, topic, end, "acks=%s run" % acks)


def ck_wait_stored(bootstrap, topic, expected, what):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused",
                  "enable.auto.commit": False})
    partitions = c.list_topics(topic, timeout=20).topics[topic].partitions
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    assert tps, "no partitions for %s" % topic
    wait_stored(lambda: sum(c.get_watermark_offsets(tp, timeout=10)[1] for tp in tps),
                expected, what)
    c.close()


def ck_read_all(bootstrap, topic, partitions, expected, show):
    """Every stored record of TOPIC's partitions, from offset 0 to the end offsets once they add
    up to `expected` (see wait_for_end), as show(message) lines. Shared with idempotence.py."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    tps = [TopicPartition(topic, p, 0) for p in range(partitions)]
    ends = wait_for_end(
        lambda: {tp.partition: c.get_watermark_offsets(tp, timeout=10)[1] for tp in tps}, expected)
    c.assign(tps)
    done = {p for p, e in ends.items() if e == 0}
    out, deadline = [], time.time() + 60
    while len(done) < partitions and time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
            if m.offset() >= ends[m.partition()]:
                done.add(m.partition())
            continue
        out.append(show(m))
        if m.offset() + 1 >= ends[m.partition()]:
            done.add(m.partition())
    c.close()
    return out


def ck_consume(bootstrap, topic, partitions, expected):
    from confluent_kafka import TIMESTAMP_CREATE_TIME

    def show(m):
        ts_type, ts = m.timestamp()
        assert ts_type == TIMESTAMP_CREATE_TIME, (ts_type, ts)
        return line(m.partition(), m.offset(), ts, m.key(), m.value(), m.headers())
    sys.stdout.write("".join(ck_read_all(bootstrap, topic, partitions, expected, show)))


def ck_create(bootstrap, topic, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": bootstrap})
    a.create_topics([NewTopic(topic, partitions, 1)])[topic].result(20)


def ck_admin(bootstrap, advertised):
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import (AdminClient, ConfigResource, ConfigSource, NewPartitions,
                                       NewTopic, ResourceType)
    a = AdminClient({"bootstrap.servers": bootstrap})
    md = a.list_topics(timeout=20)
    brokers = [(b.host, b.port) for b in md.brokers.values()]
    host, port = advertised.rsplit(":", 1)
    assert brokers == [(host, int(port))], (brokers, advertised)
    topic = "cfg-ck"
    fs = a.create_topics([NewTopic(topic, 3, 1, config={"retention.ms": "3600000",
                                                        "max.message.bytes": "2000000"})])
    fs[topic].result(20)
    try:
        a.create_topics([NewTopic(topic, 1, 1)])[topic].result(20)
        raise SystemExit("creating %s twice should fail" % topic)
    except KafkaException as e:
        assert e.args[0].name() == "TOPIC_ALREADY_EXISTS", e
    md = a.list_topics(topic, timeout=20)
    assert len(md.topics[topic].partitions) == 3, md.topics
    [f] = a.describe_configs([ConfigResource(ResourceType.TOPIC, topic)]).values()
    configs = f.result(20)
    assert configs["retention.ms"].value == "3600000", configs
    assert configs["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value, configs
    assert configs["max.message.bytes"].value == "2000000", configs
    assert configs["segment.bytes"].value == "8388608", configs
    assert configs["segment.bytes"].source != ConfigSource.DYNAMIC_TOPIC_CONFIG.value, configs
    a.create_partitions([NewPartitions(topic, 4)])[topic].result(20)
    assert len(a.list_topics(topic, timeout=20).topics[topic].partitions) == 4
    a.delete_topics([topic])[topic].result(20)
    deadline = time.time() + 20
    while topic in a.list_topics(timeout=20).topics and time.time() < deadline:
        time.sleep(0.1)
    assert topic not in a.list_topics(timeout=20).topics
    print("admin ok")


def ck_alter(bootstrap):
    import warnings
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry,
                                       ConfigResource, ConfigSource, NewTopic, ResourceType)
    warnings.simplefilter("ignore", DeprecationWarning)  # alter_configs is deprecated, not gone
    a = AdminClient({"bootstrap.servers": bootstrap})
    topic = "alter-ck"
    a.create_topics([NewTopic(topic, 1, 1, config={"retention.ms": "3600000"})])[topic].result(20)
    DYNAMIC = ConfigSource.DYNAMIC_TOPIC_CONFIG.value

    def describe():
        [f] = a.describe_configs([ConfigResource(ResourceType.TOPIC, topic)]).values()
        return {k: (v.value, v.source) for k, v in f.result(20).items()}

    def fails_invalid_config(fs):
        [f] = fs.values()
        try:
            f.result(20)
        except KafkaException as e:
            assert e.args[0].name() == "INVALID_CONFIG", e
            return
        raise SystemExit("alter should fail with INVALID_CONFIG")

    default = describe()
    # AlterConfigs replaces the topic's whole set of overrides: retention.ms falls back.
    r = ConfigResource(ResourceType.TOPIC, topic, set_config={"retention.bytes": "1048576"})
    [f] = a.alter_configs([r]).values()
    f.result(20)
    d = describe()
    assert d["retention.bytes"] == ("1048576", DYNAMIC), d
    assert d["retention.ms"][1] != DYNAMIC and d["retention.ms"][0] != "3600000", d
    r = ConfigResource(ResourceType.TOPIC, topic, set_config={"retention.ms": "5"})
    [f] = a.alter_configs([r], validate_only=True).values()
    f.result(20)
    assert describe() == d, "validate_only changed the configs"
    fails_invalid_config(a.alter_configs(
        [ConfigResource(ResourceType.TOPIC, topic, set_config={"no.such.config": "1"})]))
    assert describe() == d, "a failed alter changed the configs"
    # IncrementalAlterConfigs.
    ops = [ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET),
           ConfigEntry("retention.bytes", None, incremental_operation=AlterConfigOpType.DELETE),
           ConfigEntry("cleanup.policy", "delete",
                       incremental_operation=AlterConfigOpType.APPEND)]
    [f] = a.incremental_alter_configs(
        [ConfigResource(ResourceType.TOPIC, topic, incremental_configs=ops)]).values()
    f.result(20)
    d = describe()
    assert d["retention.ms"] == ("7200000", DYNAMIC), d
    assert d["retention.bytes"] == default["retention.bytes"], d
    assert d["cleanup.policy"] == ("delete", DYNAMIC), d
    ops = [ConfigEntry("cleanup.policy", "compact",
                       incremental_operation=AlterConfigOpType.SUBTRACT)]
    [f] = a.incremental_alter_configs(
        [ConfigResource(ResourceType.TOPIC, topic, incremental_configs=ops)]).values()
    f.result(20)
    assert describe() == d, "subtracting an absent list element changes nothing"
    for name, op in (("retention.ms", AlterConfigOpType.SUBTRACT),
                     ("no.such.config", AlterConfigOpType.SET)):
        ops = [ConfigEntry(name, "1", incremental_operation=op)]
        fails_invalid_config(a.incremental_alter_configs(
            [ConfigResource(ResourceType.TOPIC, topic, incremental_configs=ops)]))
    ops = [ConfigEntry("retention.ms", "9", incremental_operation=AlterConfigOpType.SET)]
    [f] = a.incremental_alter_configs(
        [ConfigResource(ResourceType.TOPIC, topic, incremental_configs=ops)],
        validate_only=True).values()
    f.result(20)
    assert describe() == d, "validate_only or a failed alter changed the configs"
    a.delete_topics([topic])[topic].result(20)
    print("alter ok")


def main():
    lib, cmd, bootstrap = sys.argv[1], sys.argv[2], sys.argv[3]
    rest = sys.argv[4:]
    kp = lib == "kafka-python"
    assert kp or lib == "confluent", lib
    if cmd == "produce":
        (kp_produce if kp else ck_produce)(bootstrap, rest[0], rest[1], int(rest[2]),
                                           int(rest[3]))
    elif cmd == "consume":
        (kp_consume if kp else ck_consume)(bootstrap, rest[0], int(rest[1]), int(rest[2]))
    elif cmd == "admin":
        (kp_admin if kp else ck_admin)(bootstrap, rest[0])
    elif cmd == "alter":
        (kp_alter if kp else ck_alter)(bootstrap)
    elif cmd == "create":
        (kp_create if kp else ck_create)(bootstrap, rest[0], int(rest[1]))
    elif cmd == "produce_until_killed" and kp:
        kp_produce_until_killed(bootstrap, rest[0], int(rest[1]))
    else:
        raise SystemExit("unknown command %s %s" % (lib, cmd))


if __name__ == "__main__":
    main()
