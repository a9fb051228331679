# Raw pipelined Produce requests (v7, acks=1) repeating one prebuilt record batch: the broker's
# intake without any client per-record work (bench/kafka/produce.sh uses a real client instead).
# Needs kafka-python (for its batch builder). Usage:
#   raw_produce.py HOST:PORT TOPIC BATCH_BYTES REQUESTS [IN_FLIGHT]   (the topic must exist)
import socket, struct, sys, threading, time
from kafka.record.default_records import DefaultRecordBatchBuilder
host, port = sys.argv[1].split(":"); topic = sys.argv[2].encode()
batch_bytes, n = int(sys.argv[3]), int(sys.argv[4]); inflight = int(sys.argv[5]) if len(sys.argv) > 5 else 64
b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False, producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=batch_bytes + 4096)
i = 0
while b.size() + 1100 < batch_bytes:
    b.append(i, timestamp=int(time.time()*1000), key=None, value=b"x" * 1024, headers=[]); i += 1
records = bytes(b.build())
body = struct.pack(">hhi", -1, 1, 30000) + struct.pack(">i", 1) + struct.pack(">h", len(topic)) + topic + struct.pack(">i", 1) + struct.pack(">i", 0) + struct.pack(">i", len(records)) + records
def frame(corr):
    hdr = struct.pack(">hhih", 0, 7, corr, 3) + b"raw"
    m = hdr + body
    return struct.pack(">i", len(m)) + m
s = socket.create_connection((host, int(port))); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
sem = threading.Semaphore(inflight); errors = [0]
def reader():
    f = s.makefile("rb")
    for _ in range(n):
        size = struct.unpack(">i", f.read(4))[0]; resp = f.read(size)
        # v7 response: corr(4) topics(4) name(2+len) parts(4) index(4) error(2)
        off = 4 + 4 + 2 + len(topic) + 4 + 4
        if struct.unpack(">h", resp[off:off+2])[0] != 0: errors[0] += 1
        sem.release()
t = threading.Thread(target=reader); t.start()
msg = frame(1)
t0 = time.perf_counter()
for c in range(n):
    sem.acquire(); s.sendall(msg)
t.join(); dt = time.perf_counter() - t0
print(f"records/request={i} request_bytes={len(msg)} requests={n} MB/s={n*len(records)/dt/1e6:.0f} errors={errors[0]}")
