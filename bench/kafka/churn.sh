#!/usr/bin/env bash
# Broker churn stress: what a `weir tune sweep --local` does to its broker, back to back and
# without the measuring — per round CreateTopics (8 partitions), `weir bench produce` with the
# round's codec × acks × linger × batch (the standard plan's axes, in turn), `weir bench consume`
# of everything from the start, DeleteTopics — against a multi-shard `weir serve`, until SECONDS
# have passed or the broker dies. Exits 1 if the broker died (its stderr's tail is printed, and
# with `ulimit -c unlimited` the kernel's core_pattern says where its core went).
#
# Written for the broker deaths of the tuning sweep (`free(): double free detected in tcache 2`,
# a glommio task freed twice after a foreign wake: engine/src/shard/mesh.rs). With two shards
# most produce and fetch requests cross shards, which is what exercised it.
#
# Usage: bench/kafka/churn.sh DIR [SECONDS]   (DIR: scratch space; removed data after each round)
# Env: WEIR (broker binary, default target/release/weir), CLIENT (the bench client binary,
# default WEIR), SHARDS (2), RECORDS per round (200000), RECORD_SIZE (1KiB).
# Needs: python3 with kafka-python (topic create/delete).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(realpath "${1:?usage: churn.sh DIR [SECONDS]}")
seconds=${2:-600}
weir=${WEIR:-${CARGO_TARGET_DIR:-$root/target}/release/weir}
client=${CLIENT:-$weir}
shards=${SHARDS:-2}
records=${RECORDS:-200000}
record_size=${RECORD_SIZE:-1KiB}
[ -x "$weir" ] || { echo "no broker binary $weir (cargo build --release -p weir-cli)" >&2; exit 2; }
python3 -c 'import kafka' 2>/dev/null || { echo "needs kafka-python (pip install kafka-python)" >&2; exit 2; }

work=$dir/weir-churn
rm -rf "$work"
mkdir -p "$work"
# No preallocation: a round's topic then takes its data's size, not 1 GiB per partition.
printf 'log.preallocate = false\n' >"$work/weir.toml"
"$weir" serve --config "$work/weir.toml" --data-dir "$work/data" --kafka-addr 127.0.0.1:0 \
  --shards "$shards" >"$work/serve.stdout" 2>"$work/serve.stderr" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work/data"' EXIT
addr=
for _ in $(seq 100); do
  addr=$(sed -n 's/^weir: serving Kafka on \([^ ]*\).*/\1/p' "$work/serve.stdout" 2>/dev/null || true)
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { echo "weir serve did not start: $(cat "$work/serve.stderr")" >&2; exit 1; }

admin() { # admin create|delete TOPIC
  python3 - "$addr" "$1" "$2" <<'EOF'
import sys
from kafka.admin import KafkaAdminClient, NewTopic
addr, op, topic = sys.argv[1:4]
a = KafkaAdminClient(bootstrap_servers=addr, request_timeout_ms=30000)
if op == "create":
    a.create_topics([NewTopic(topic, num_partitions=8, replication_factor=1)])
else:
    a.delete_topics([topic])
a.close()
EOF
}

codecs=(none lz4 zstd)
acks=(1 all)
lingers=(0 5 20)
batches=(16384 131072 1048576)
end=$((SECONDS + seconds))
round=0
died=0
while [ $SECONDS -lt $end ]; do
  i=$round
  codec=${codecs[i % 3]}; ack=${acks[i / 3 % 2]}; linger=${lingers[i / 6 % 3]}
  batch=${batches[i / 18 % 3]}
  topic=churn-$round
  admin create "$topic" >>"$work/admin.log" 2>&1 || true
  timeout 300 "$client" bench produce --bootstrap "$addr" --topic "$topic" --records "$records" \
    --record-size "$record_size" --compression "$codec" --acks "$ack" --linger-ms "$linger" \
    --batch-size "$batch" --connections 4 --check-ceiling false --quiet \
    >"$work/produce.log" 2>&1 || echo "round $round: produce failed: $(tail -1 "$work/produce.log")"
  timeout 300 "$client" bench consume --bootstrap "$addr" --topic "$topic" --from earliest \
    --records "$records" --idle-s 5 >"$work/consume.log" 2>&1 ||
    echo "round $round: consume failed: $(tail -1 "$work/consume.log")"
  admin delete "$topic" >>"$work/admin.log" 2>&1 || true
  round=$((round + 1))
  if ! kill -0 "$pid" 2>/dev/null; then died=1; break; fi
  echo "round $round ($codec acks=$ack linger=$linger batch=$batch): broker alive"
done
if [ $died = 1 ]; then
  wait "$pid" && rc=0 || rc=$?
  echo "BROKER DIED in round $round (exit status $rc); its stderr ends:"
  tail -20 "$work/serve.stderr"
  exit 1
fi
echo "broker survived $round rounds in ${seconds}s"
