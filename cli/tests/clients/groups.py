# Consumer-group commands for cli/tests/consumer_groups.rs, with kafka-python ("kafka-python")
# and confluent-kafka ("confluent"):
#   produce BOOTSTRAP TOPIC PARTITIONS FIRST N   creates TOPIC if needed; values "FIRST".."FIRST+N-1",
#                                                round-robin over the partitions, acks=all
#   consume LIB BOOTSTRAP GROUP TOPIC OUT STOP   LIB is kafka-python, confluent (range) or
#                                                confluent-cooperative (cooperative-sticky); a group member: appends "assigned p,p,..." after each
#                                                rebalance and "rec PARTITION OFFSET VALUE" per
#                                                record to OUT; commits synchronously after every
#                                                poll; leaves the group cleanly when file STOP exists
#   describe LIB BOOTSTRAP GROUP                  ListGroups and DescribeGroups (see describe())
#   committed LIB BOOTSTRAP GROUP TOPIC PARTS    prints "PARTITION OFFSET" of each committed offset
import os
import sys
import time


def log(out, line):
    with open(out, "a") as f:
        f.write(line + "\n")


def produce(bootstrap, topic, partitions, first, n):
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, int(partitions), 1)])
    except TopicAlreadyExistsError:
        pass
    admin.close()
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for i in range(int(first), int(first) + int(n)):
        p.send(topic, value=str(i).encode(), partition=i % int(partitions))
    p.flush()
    p.close()


def consume_kp(bootstrap, group, topic, out, stop):
    from kafka import KafkaConsumer, ConsumerRebalanceListener

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            pass

        def on_partitions_assigned(self, assigned):
            log(out, "assigned " + ",".join(str(tp.partition) for tp in sorted(assigned)))

    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                      auto_offset_reset="earliest", session_timeout_ms=10000,
                      heartbeat_interval_ms=500, max_poll_interval_ms=30000)
    c.subscribe([topic], listener=Listener())
    while not os.path.exists(stop):
        batches = c.poll(timeout_ms=200)
        for tp, records in batches.items():
            for r in records:
                log(out, "rec %d %d %s" % (tp.partition, r.offset, r.value.decode()))
        if batches:
            c.commit()
    c.close()


def consume_ck(bootstrap, group, topic, out, stop, strategy="range", instance=None):
    from confluent_kafka import Consumer
    current = set()

    def on_assign(consumer, partitions):
        current.update(p.partition for p in partitions)
        if strategy == "cooperative-sticky":
            consumer.incremental_assign(partitions)
        log(out, "assigned " + ",".join(str(p) for p in sorted(current)))

    def on_revoke(consumer, partitions):
        current.difference_update(p.partition for p in partitions)
        if strategy == "cooperative-sticky":
            consumer.incremental_unassign(partitions)

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "session.timeout.ms": 10000,
                  "heartbeat.interval.ms": 500, "partition.assignment.strategy": strategy,
                  **({"group.instance.id": instance} if instance else {})})
    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    while not os.path.exists(stop):
        msgs = c.consume(num_messages=100, timeout=0.2)
        got = False
        for m in msgs:
            if m.error():
                continue
            got = True
            log(out, "rec %d %d %s" % (m.partition(), m.offset(), m.value().decode()))
        if got:
            c.commit(asynchronous=False)
    c.close()


def committed(lib, bootstrap, group, topic, parts):
    if lib == "kafka-python":
        from kafka import KafkaConsumer, TopicPartition
        c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
        for p in range(int(parts)):
            o = c.committed(TopicPartition(topic, p))
            print("%d %d" % (p, -1 if o is None else o))
        c.close()
    else:
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
        for tp in c.committed([TopicPartition(topic, p) for p in range(int(parts))], timeout=20):
            print("%d %d" % (tp.partition, tp.offset))
        c.close()


def describe(lib, bootstrap, group):
    """Prints "listed GROUP STATE" for every group, then "state STATE" and per member of GROUP
    a "member PARTITIONS" line (sorted, comma-separated) and a "member_id ID HOST" line."""
    if lib == "kafka-python":
        from kafka import KafkaAdminClient
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        for g in admin.list_groups():
            print("listed %s %s" % (g["group_id"], g["group_state"]))
        info = admin.describe_groups([group])[group]
        print("state %s" % info["group_state"])
        for m in info["members"]:
            parts = sorted(p for a in m["member_assignment"]["assigned_partitions"]
                           for p in a["partitions"])
            print("member " + ",".join(str(p) for p in parts))
            print("member_id %s %s" % (m["member_id"], m["client_host"]))
        admin.close()
    else:
        from confluent_kafka.admin import AdminClient
        admin = AdminClient({"bootstrap.servers": bootstrap})
        listed = admin.list_consumer_groups().result(timeout=20)
        for g in listed.valid:
            print("listed %s %s" % (g.group_id, g.state.name.title().replace("_", "")))
        info = admin.describe_consumer_groups([group])[group].result(timeout=20)
        print("state %s" % info.state.name.title().replace("_", ""))
        for m in info.members:
            parts = sorted(tp.partition for tp in m.assignment.topic_partitions)
            print("member " + ",".join(str(p) for p in parts))
            print("member_id %s %s" % (m.member_id, m.host))


def delete_groups(lib, bootstrap, *groups):
    """DeleteGroups through LIB's admin client: prints "GROUP OK" or "GROUP ERRORNAME"."""
    if lib == "kafka-python":
        from kafka import KafkaAdminClient
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        res = admin.delete_groups(list(groups))
        for group, res in (res.items() if isinstance(res, dict) else res):
            print("%s %s" % (group, res))
        admin.close()
    else:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for group, fut in admin.delete_consumer_groups(list(groups)).items():
            try:
                fut.result(timeout=20)
                print("%s OK" % group)
            except KafkaException as e:
                print("%s %s" % (group, e.args[0].name()))


def delete_offsets(bootstrap, group, topic, parts):
    """OffsetDelete (kafka-python) of TOPIC's partitions 0..PARTS: prints "P ERRORNAME" per
    partition, or "error ERRORNAME" for a group-level error."""
    from kafka import KafkaAdminClient, TopicPartition
    from kafka.errors import KafkaError
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        res = admin.delete_group_offsets(group, [TopicPartition(topic, p) for p in range(int(parts))])
        for tp, err in sorted(res.items(), key=lambda x: x[0].partition):
            print("%d %s" % (tp.partition, err.__name__))
    except KafkaError as e:
        print("error %s" % type(e).__name__)
    admin.close()


def main():
    cmd = sys.argv[1]
    if cmd == "produce":
        produce(*sys.argv[2:7])
    elif cmd == "consume":
        lib, rest = sys.argv[2], sys.argv[3:]
        if lib == "kafka-python":
            consume_kp(*rest)
        elif lib == "confluent":
            consume_ck(*rest)
        elif lib.startswith("confluent-static="):
            consume_ck(*rest, instance=lib.split("=", 1)[1])
        elif lib == "confluent-cooperative":
            consume_ck(*rest, strategy="cooperative-sticky")
        else:
            sys.exit("unknown client " + lib)
    elif cmd == "describe":
        describe(*sys.argv[2:5])
    elif cmd == "delete-groups":
        delete_groups(*sys.argv[2:])
    elif cmd == "delete-offsets":
        delete_offsets(*sys.argv[2:6])
    elif cmd == "committed":
        committed(*sys.argv[2:7])
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
