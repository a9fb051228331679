# confluent-kafka (2.16.1, librdkafka 2.16) commands for cli/tests/idempotence.rs: a producer
# that sends N keyed records through the fault proxy, idempotent or not, and a consumer that
# prints every stored record.
#
#   idempotence.py create BOOTSTRAP TOPIC PARTITIONS
#   idempotence.py produce BOOTSTRAP TOPIC N IDEMPOTENT(0|1)
#       record i: key "k{i % 7}", value "{i}"; acks=all, max.in.flight 5, small batches (so
#       there are many Produce requests), retries without end inside a long message timeout.
#       Prints "half" once N/2 records are acknowledged (the kill -9 test waits for it; the
#       second half is paced so the kill lands mid-run), then "delivered N" at the end.
#   idempotence.py consume BOOTSTRAP TOPIC PARTITIONS AT_LEAST
#       one line per record, "partition<TAB>offset<TAB>value", every partition from 0 to its end.
import sys
import time


def create(bootstrap, topic, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": bootstrap})
    a.create_topics([NewTopic(topic, partitions, 1)])[topic].result(20)


def produce(bootstrap, topic, n, idempotent):
    from confluent_kafka import Producer
    p = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": idempotent,
        "acks": "all",
        "max.in.flight.requests.per.connection": 5,
        "linger.ms": 2,
        "batch.num.messages": 10,
        "retries": 1000000,
        "retry.backoff.ms": 20,
        "reconnect.backoff.ms": 20,
        "reconnect.backoff.max.ms": 200,
        "message.timeout.ms": 180000,
        "request.timeout.ms": 10000,
    })
    state = {"acked": 0, "errors": [], "half": False}

    def report(err, _msg):
        if err is not None:
            state["errors"].append(str(err))
        else:
            state["acked"] += 1
            if not state["half"] and state["acked"] >= n // 2:
                state["half"] = True
                sys.stdout.write("half\n")
                sys.stdout.flush()

    for i in range(n):
        while True:
            try:
                p.produce(topic, key=("k%d" % (i % 7)).encode(), value=str(i).encode(),
                          on_delivery=report)
                break
            except BufferError:
                p.poll(0.01)
        p.poll(0)
        if state["half"]:
            time.sleep(0.001)
    left = p.flush(200)
    assert left == 0 and not state["errors"], (left, state["errors"][:3])
    sys.stdout.write("delivered %d\n" % state["acked"])


def consume(bootstrap, topic, partitions, at_least):
    from clients import ck_read_all

    def show(m):
        return "%d\t%d\t%s\n" % (m.partition(), m.offset(), m.value().decode())
    sys.stdout.write("".join(ck_read_all(bootstrap, topic, partitions, at_least, show)))


def main():
    cmd, bootstrap, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
    if cmd == "create":
        create(bootstrap, rest[0], int(rest[1]))
    elif cmd == "produce":
        produce(bootstrap, rest[0], int(rest[1]), rest[2] == "1")
    elif cmd == "consume":
        consume(bootstrap, rest[0], int(rest[1]), int(rest[2]))
    else:
        raise SystemExit("unknown command %s" % cmd)


main()
