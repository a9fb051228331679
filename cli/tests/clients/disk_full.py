"""The disk-full test's client (kafka-python), driven by cli/tests/disk_full.rs.

fill BOOTSTRAP TOPIC FIRST: synchronous acks=1 sends of 64 KiB values "FIRST+i:..." until the
  broker refuses one with KAFKA_STORAGE_ERROR; prints "acked i" per acknowledged send, "unknown i"
  for one that timed out (accepted, waiting for space), then "refused i ERROR".
resume BOOTSTRAP TOPIC FIRST N: sends N values from FIRST, each retried on KAFKA_STORAGE_ERROR
  for up to 30 s (the broker takes appends again once space is freed); prints "acked i".
read BOOTSTRAP TOPIC: every value of partition 0 from the beginning to the end, "value i".
"""
import sys
import time

VALUE_BYTES = 64 * 1024


def value(i):
    head = ("%d:" % i).encode()
    return head + b"v" * (VALUE_BYTES - len(head))


def producer(bootstrap):
    from kafka import KafkaProducer
    return KafkaProducer(bootstrap_servers=bootstrap, acks=1, retries=0, linger_ms=0,
                         max_request_size=1 << 20, request_timeout_ms=5000)


def fill(bootstrap, topic, first):
    from kafka.errors import KafkaStorageError, KafkaTimeoutError, RequestTimedOutError
    p = producer(bootstrap)
    i = int(first)
    while i < int(first) + 100000:
        try:
            p.send(topic, value=value(i), partition=0).get(timeout=10)
            print("acked %d" % i, flush=True)
        except KafkaStorageError as e:
            print("refused %d %s" % (i, type(e).__name__), flush=True)
            break
        except (KafkaTimeoutError, RequestTimedOutError):
            print("unknown %d" % i, flush=True)
        i += 1
    p.close(timeout=5)


def resume(bootstrap, topic, first, n):
    from kafka.errors import KafkaStorageError, KafkaTimeoutError, RequestTimedOutError
    p = producer(bootstrap)
    for i in range(int(first), int(first) + int(n)):
        deadline = time.time() + 30
        while True:
            try:
                p.send(topic, value=value(i), partition=0).get(timeout=10)
                print("acked %d" % i, flush=True)
                break
            except (KafkaStorageError, KafkaTimeoutError, RequestTimedOutError) as e:
                if time.time() > deadline:
                    raise
                print("retry %d %s" % (i, type(e).__name__), flush=True)
                time.sleep(0.2)
    p.close(timeout=5)


def read(bootstrap, topic):
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                      max_partition_fetch_bytes=1 << 20, fetch_max_bytes=8 << 20)
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    end = c.end_offsets([tp])[tp]
    while c.position(tp) < end:
        for records in c.poll(timeout_ms=1000).values():
            for r in records:
                print("value %s" % r.value.split(b":", 1)[0].decode(), flush=True)
    c.close()


def main():
    cmd = sys.argv[1]
    if cmd == "fill":
        fill(*sys.argv[2:5])
    elif cmd == "resume":
        resume(*sys.argv[2:6])
    elif cmd == "read":
        read(*sys.argv[2:4])
    else:
        raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    main()
