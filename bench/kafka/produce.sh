#!/usr/bin/env bash
# The broker benchmark of issue #4, with a real client: librdkafka's own perf tool
# (rdkafka_performance) producing 1 KiB records, acks=1, linger.ms=5, batch.size=65536, to one
# partition on a one-shard `weir serve`, beside the machine's limits measured in the same run
# (../shared/tools/limits: raw loopback TCP and raw O_DIRECT write bandwidth).
# Then the tail-consumer check: a consumer following the log end while the producer runs must
# cause no disk reads (the broker's read_bytes in /proc/PID/io stays put), while a cold consumer
# reading from the beginning after a restart does read the disk (so the counter is live).
#
# Usage: bench/kafka/produce.sh DIR [RUNS]   (DIR: a folder on the disk under test; RUNS: 3)
# Needs: a release build (cargo build --release -p weir-cli), gcc, make; builds
# rdkafka_performance once from the librdkafka sources vendored in the rdkafka-sys crate
# (crates.io), into target/rdkafka_performance.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(realpath "${1:?usage: produce.sh DIR [RUNS]}")
runs=${2:-3}
target=${CARGO_TARGET_DIR:-$root/target}
weir=$target/release/weir
perf=$target/rdkafka_performance
limits=${LIMITS:-$root/../shared/tools/limits}
records=${RECORDS:-2000000}
[ -x "$weir" ] || { echo "build first: cargo build --release -p weir-cli" >&2; exit 2; }

if [ ! -x "$perf" ]; then
  # librdkafka 1.9.2's sources, as vendored by rdkafka-sys 4.3.0 on crates.io.
  work=$(mktemp -d)
  (cd "$work" && cargo init -q --name fetch_rdkafka &&
   echo 'rdkafka-sys = { version = "=4.3.0", default-features = false }' >>Cargo.toml &&
   cargo fetch -q)
  src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/rdkafka-sys-4.3.0+1.9.2/librdkafka | head -1)
  cp -r "$src" "$work/librdkafka"
  (cd "$work/librdkafka" && ./configure --disable-ssl --disable-gssapi --disable-sasl >/dev/null &&
   make -j"$(nproc)" libs >/dev/null && make -C examples rdkafka_performance >/dev/null)
  cp "$work/librdkafka/examples/rdkafka_performance" "$perf"
  rm -rf "$work"
fi

data=$dir/weir-bench-data
out=$dir/weir-bench-serve
serve() {
  rm -f "$out.stdout" # the previous run's ready line must not be mistaken for this one's
  "$weir" serve --data-dir "$data" --kafka-addr 127.0.0.1:0 --shards 1 --cores 0 \
    --coord-core "$(($(nproc) - 1))" >"$out.stdout" 2>"$out.stderr" &
  pid=$!
  for _ in $(seq 100); do
    addr=$(sed -n 's/^weir: serving Kafka on \([^ ]*\).*/\1/p' "$out.stdout" 2>/dev/null || true)
    [ -n "$addr" ] && return
    sleep 0.1
  done
  echo "weir serve did not start: $(cat "$out.stderr")" >&2; exit 1
}
stop() { kill -TERM "$pid"; wait "$pid" || true; }
read_bytes() { awk '/^read_bytes/ {print $2}' "/proc/$pid/io"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# One producer run to topic $1 (further arguments go to rdkafka_performance, e.g. -r RATE);
# prints "MBPS CLIENT_CPU_S BROKER_CPU_S WALL_S" (CPU: user + system seconds, all threads). The
# last table row of rdkafka_performance -u has delivered MB/s in its 7th column.
produce() {
  local topic=$1 before t0 line
  shift
  before=$(cpu_ticks "$pid"); t0=$(date +%s.%N)
  line=$( { /usr/bin/time -f 'cpu %U %S' "$perf" -P -t "$topic" -p 0 -b "$addr" -s 1024 \
      -c "$records" -a 1 -X linger.ms=5 -X batch.size=65536 -X queue.buffering.max.kbytes=1048576 \
      "$@" -q -u; } 2>&1 |
    awk -F'|' '/^\|/ && $2+0 > 0 {mbps=$8+0} /^cpu / {split($0, c, " "); cpu=c[2]+c[3]}
               END {print mbps, cpu}')
  echo "$line $(( $(cpu_ticks "$pid") - before )) $(date +%s.%N) $t0" |
    awk -v hz="$(getconf CLK_TCK)" '{printf "%s %s %.2f %.2f\n", $1, $2, $3 / hz, $4 - $5}'
}

rm -rf "$data"
limit_json=$("$limits" "$dir")
serve
results=()
for i in $(seq "$runs"); do results+=("$(produce "perf$i")"); done

# With 1 MiB batches instead (the same records in 16 times fewer requests), for comparison.
big_batches=$(produce perf-big -X batch.size=1048576 | cut -d" " -f1)

# Tail consumer: follows topic $1 from its end while the producer writes it (at rate $2 records/s,
# 0 for unlimited); prints "PRODUCE_MBPS BROKER_DISK_READ_BYTES". The topic is created first (its
# directory and files), so only the produce and the reads are counted.
tail_run() {
  local topic=$1 rate=$2 before consumer mbps
  "$perf" -P -t "$topic" -p 0 -b "$addr" -s 1024 -c 1 -a 1 -q >/dev/null 2>&1
  before=$(read_bytes)
  "$perf" -C -t "$topic" -p 0 -b "$addr" -o end -q -u >/dev/null 2>&1 &
  consumer=$!
  sleep 1
  if [ "$rate" -gt 0 ]; then mbps=$(produce "$topic" -r "$rate" | cut -d" " -f1)
  else mbps=$(produce "$topic" | cut -d" " -f1); fi
  sleep 1
  kill "$consumer" 2>/dev/null || true; wait "$consumer" 2>/dev/null || true
  echo "$mbps $(( $(read_bytes) - before ))"
}
# A quarter of the best rate measured above: a consumer that keeps up. Then unlimited: on a
# 2-core machine the consumer shares the cores with the producer and the broker, falls behind by
# more than the tail cache holds, and from then on reads the disk.
quarter=$(printf '%s\n' "${results[@]}" | awk '$1 > m {m = $1} END {printf "%d", m * 1000 / 4}')
tail_quarter=$(tail_run tail-quarter "$quarter")
tail_full=$(tail_run tail-full 0)
stop

# Cold consumer: restart (tail caches empty) and read topic perf1 from the beginning.
serve
before=$(read_bytes)
timeout 120 "$perf" -C -t perf1 -p 0 -b "$addr" -o beginning -c "$records" -q -u >/dev/null 2>&1
cold_read_bytes=$(( $(read_bytes) - before ))
stop
rm -rf "$data"

python3 - "$limit_json" "$tail_quarter" "$tail_full" "$cold_read_bytes" "$big_batches" "${results[@]}" <<'PY'
import json, sys
limits = json.loads(sys.argv[1])
tail_quarter, tail_full = [[float(f) for f in a.split()] for a in sys.argv[2:4]]
cold_read, big_batches = int(sys.argv[4]), float(sys.argv[5])
runs = [[float(f) for f in r.split()] for r in sys.argv[6:]]
anchor = min(limits["tcp_loopback_MBps"], limits["disk_write_direct_MBps"])
print(json.dumps({
    "limits": limits,
    "produce_MBps": [r[0] for r in runs],
    "ratio_to_lower_limit": [round(r[0] / anchor, 3) for r in runs],
    # Cores busy during each run (CPU seconds / wall seconds): the client and the whole broker.
    "client_cores": [round(r[1] / r[3], 2) for r in runs],
    "broker_cores": [round(r[2] / r[3], 2) for r in runs],
    "produce_MBps_1MiB_batches": big_batches,
    "tail_consumer_quarter_rate": {"produce_MBps": tail_quarter[0], "broker_disk_read_bytes": int(tail_quarter[1])},
    "tail_consumer_unlimited": {"produce_MBps": tail_full[0], "broker_disk_read_bytes": int(tail_full[1])},
    "cold_consumer_after_restart": {"broker_disk_read_bytes": cold_read},
}))
PY
