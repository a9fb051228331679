#!/usr/bin/env bash
# A/B of two weir builds on the produce path, in one run on one machine: for each round, for each
# build (alternating A, B), a fresh one-shard `weir serve` (shard on core 0, coordinator on core 1)
# and on it
#   1. librdkafka's perf tool (rdkafka_performance: 1 KiB records, acks=1, linger.ms=5,
#      batch.size=65536, one partition) at full speed — MB/s and broker cores busy;
#   2. `weir bench produce` of the same build at a fixed offered load (20,000 records/s of 1 KiB,
#      acks=1, linger.ms=5, batch.size=16 KiB, 6 s) — publish latency p50/p99/p99.9/max;
#   3. `weir bench produce` of the same build at full speed (acks=1, 64 KiB batches) — MB/s.
# The machine's limits (../shared/tools/limits: loopback TCP, O_DIRECT write) are measured once in
# the same run, so every figure can be read as a ratio.
#
# Usage: bench/kafka/ab.sh WEIR_A WEIR_B DIR [ROUNDS]
#   WEIR_A, WEIR_B: two `weir` release binaries; DIR: a folder on the disk under test; ROUNDS: 3.
# Needs rdkafka_performance: $PERF, or target/rdkafka_performance (bench/kafka/produce.sh builds it).
# Prints one JSON line per measurement and a summary table (medians) at the end.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
a=$(realpath "${1:?usage: ab.sh WEIR_A WEIR_B DIR [ROUNDS]}")
b=$(realpath "${2:?usage: ab.sh WEIR_A WEIR_B DIR [ROUNDS]}")
dir=$(realpath "${3:?usage: ab.sh WEIR_A WEIR_B DIR [ROUNDS]}")
rounds=${4:-3}
perf=${PERF:-${CARGO_TARGET_DIR:-$root/target}/rdkafka_performance}
limits=${LIMITS:-$root/../shared/tools/limits}
records=${RECORDS:-2000000}
[ -x "$perf" ] || { echo "no rdkafka_performance at $perf (set PERF)" >&2; exit 2; }
out=$dir/ab-results.jsonl
: >"$out"

serve() { # $1: binary; sets pid, addr
  rm -rf "$dir/ab-data" "$dir/ab.stdout"
  "$1" serve --data-dir "$dir/ab-data" --kafka-addr 127.0.0.1:0 --shards 1 --cores 0 \
    --coord-core "$(($(nproc) - 1))" >"$dir/ab.stdout" 2>"$dir/ab.stderr" &
  pid=$!
  for _ in $(seq 100); do
    addr=$(sed -n 's/^weir: serving Kafka on \([^ ]*\).*/\1/p' "$dir/ab.stdout" 2>/dev/null || true)
    [ -n "$addr" ] && return
    sleep 0.1
  done
  echo "weir serve did not start: $(cat "$dir/ab.stderr")" >&2; exit 1
}
stop() { kill -TERM "$pid"; wait "$pid" || true; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# One JSON line from a `weir bench produce --json` result ($1) for test $2 of this round and side:
# throughput and publish latency percentiles.
bench_line() {
  python3 - "$1" "$2" "$round" "$side" <<'PY' | tee -a "$out"
import json, sys
doc = json.load(open(sys.argv[1]))
lat = doc.get("publish_latency_ms") or {}
print(json.dumps({"round": int(sys.argv[3]), "side": sys.argv[4], "test": sys.argv[2],
                  "MBps": doc["publish"]["mb_per_s"], "msg_per_s": doc["publish"]["msg_per_s"],
                  "publish_latency_ms": {k: lat.get(k) for k in ("p50", "p99", "p99_9", "max")}}))
PY
}

limit_json=$("$limits" "$dir")
echo "{\"limits\": $limit_json}" | tee -a "$out"
for round in $(seq "$rounds"); do
  for side in A B; do
    bin=$a; [ "$side" = B ] && bin=$b
    serve "$bin"
    before=$(cpu_ticks "$pid"); t0=$(date +%s.%N)
    mbps=$("$perf" -P -t perf -p 0 -b "$addr" -s 1024 -c "$records" -a 1 -X linger.ms=5 \
      -X batch.size=65536 -X queue.buffering.max.kbytes=1048576 -q -u 2>&1 |
      awk -F'|' '/^\|/ && $2+0 > 0 {m=$8+0} END {print m}')
    wall=$(echo "$(date +%s.%N) $t0" | awk '{print $1 - $2}')
    cores=$(echo "$(( $(cpu_ticks "$pid") - before )) $wall" |
      awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", $1 / hz / $2}')
    echo "{\"round\": $round, \"side\": \"$side\", \"test\": \"rdkafka_performance\", \"MBps\": $mbps, \"broker_cores\": $cores}" | tee -a "$out"
    "$bin" bench produce --bootstrap "$addr" --topic paced --records 120000 --rate 20000 \
      --acks 1 --linger-ms 5 --batch-size 16384 --quiet --check-ceiling false \
      --json "$dir/ab-paced.json" >/dev/null 2>&1
    bench_line "$dir/ab-paced.json" bench_paced_20k
    "$bin" bench produce --bootstrap "$addr" --topic max --records 1000000 --acks 1 \
      --linger-ms 5 --batch-size 65536 --quiet --check-ceiling false \
      --json "$dir/ab-max.json" >/dev/null 2>&1
    bench_line "$dir/ab-max.json" bench_max
    stop
  done
done
rm -rf "$dir/ab-data"
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
limits = rows[0]["limits"]
low = min(limits["tcp_loopback_MBps"], limits["disk_write_direct_MBps"])
def med(side, test, f):
    v = [f(r) for r in rows[1:] if r.get("side") == side and r.get("test") == test]
    v = [x for x in v if x is not None]
    return (statistics.median(v), v) if v else (None, v)
print(f"limits: {limits}  (lower: {low} MB/s)")
for test, label, f in [
    ("rdkafka_performance", "rdkafka_performance MB/s", lambda r: r["MBps"]),
    ("rdkafka_performance", "  broker cores busy", lambda r: r["broker_cores"]),
    ("bench_max", "weir bench produce max MB/s", lambda r: r["MBps"]),
    ("bench_paced_20k", "20k/s publish p50 ms", lambda r: (r["publish_latency_ms"] or {}).get("p50")),
    ("bench_paced_20k", "20k/s publish p99 ms", lambda r: (r["publish_latency_ms"] or {}).get("p99")),
    ("bench_paced_20k", "20k/s publish p99.9 ms", lambda r: (r["publish_latency_ms"] or {}).get("p99_9")),
]:
    ma, va = med("A", test, f)
    mb, vb = med("B", test, f)
    print(f"{label:32s} A median {ma} {va}   B median {mb} {vb}")
PY
