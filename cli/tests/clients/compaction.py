# Commands for cli/tests/compaction.rs, with confluent-kafka and kafka-python:
#   create BOOTSTRAP TOPIC PARTITIONS K=V,...      creates TOPIC with those topic configs
#   commit BOOTSTRAP GROUP TOPIC PARTITIONS FROM TO
#                                                  commits offset FROM, FROM+1 .. TO on every
#                                                  partition, one synchronous commit each (a
#                                                  "simple" commit: no group membership)
#   produce BOOTSTRAP TOPIC CODEC                  produces stdin's "key:value" lines (an empty
#                                                  value is a tombstone) to partition 0 with
#                                                  compression.type CODEC, idempotent, 7
#                                                  records a batch (so batches straddle rounds)
#   internal BOOTSTRAP                             what clients see of __consumer_offsets: prints
#                                                  "is_internal BOOL", "produce ERROR" and
#                                                  "delete ERROR"
import sys


def create(bootstrap, topic, partitions, configs):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    config = dict(kv.split("=", 1) for kv in configs.split(",") if kv)
    futures = admin.create_topics([NewTopic(topic, int(partitions), 1, config=config)])
    for f in futures.values():
        f.result(timeout=30)


def commit(bootstrap, group, topic, partitions, first, last):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    for offset in range(int(first), int(last) + 1):
        c.commit(offsets=[TopicPartition(topic, p, offset) for p in range(int(partitions))],
                 asynchronous=False)
    c.close()


def produce(bootstrap, topic, codec):
    from confluent_kafka import Producer
    errors = []
    p = Producer({"bootstrap.servers": bootstrap, "compression.type": codec,
                  "enable.idempotence": True, "batch.num.messages": 7, "linger.ms": 5})
    for line in sys.stdin.read().splitlines():
        key, value = line.split(":", 1)
        p.produce(topic, key=key.encode(), value=value.encode() if value else None, partition=0,
                  on_delivery=lambda err, msg: err and errors.append(err))
        p.poll(0)
    left = p.flush(30)
    if left or errors:
        sys.exit("produce failed: %d undelivered, errors %s" % (left, errors[:3]))


def internal(bootstrap):
    from kafka.admin import KafkaAdminClient
    from confluent_kafka import Producer
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    [described] = admin.describe_topics(["__consumer_offsets"])
    print("is_internal %s" % described["is_internal"])
    errors = []
    p = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 10000})
    p.produce("__consumer_offsets", key=b"k", value=b"v", partition=0,
              on_delivery=lambda err, msg: errors.append(err))
    p.flush(20)
    print("produce %s" % (errors[0].name() if errors and errors[0] else "NO_ERROR"))
    try:
        admin.delete_topics(["__consumer_offsets"])
        print("delete NO_ERROR")
    except Exception as e:  # kafka-python raises the broker's error as an exception
        print("delete %s" % type(e).__name__)
    # Its record loses cleanup.policy (an incremental DELETE; the record of an offsets topic
    # created before weir compacted it lacks it too): still compacted, and DescribeConfigs
    # says so.
    from kafka.admin import ConfigResource, ConfigResourceType
    resource = ConfigResource(ConfigResourceType.TOPIC, "__consumer_offsets",
                              configs={"cleanup.policy": ("DELETE", None)})
    print("alter %s" % admin.alter_configs([resource], incremental=True))
    described = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, "__consumer_offsets")], config_filter="all")
    for by_name in described.values():
        for configs in by_name.values():
            print("cleanup.policy %s" % configs["cleanup.policy"]["value"])
    admin.close()


def main():
    cmd = sys.argv[1]
    if cmd == "create":
        create(*sys.argv[2:6])
    elif cmd == "commit":
        commit(*sys.argv[2:8])
    elif cmd == "produce":
        produce(*sys.argv[2:5])
    elif cmd == "internal":
        internal(sys.argv[2])
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
