#!/usr/bin/env bash
# A/B of `weir serve` without and with the io-properties of `weir hw iotune`, in one run on one
# machine: the machine's limits (../shared/tools/limits: loopback TCP, O_DIRECT write/read), one
# `weir hw iotune --dir DIR`, then ROUNDS rounds of a fresh one-shard broker per variant (order
# alternating A,B / B,A to cancel drifts), each loaded by `weir bench produce` at full speed
# (1 KiB records, one partition), then the limits again. Prints one line per run and the file
# iotune wrote (what the B runs used).
#
# Usage: bench/kafka/io_properties_ab.sh WEIR DIR [ROUNDS]
#   WEIR: a `weir` release binary; DIR: a folder on the disk under test (emptied of what the
#   script creates); ROUNDS: 4. Env: ACKS (all), RECORDS (400000), EXTRA (more `bench produce`
#   flags, e.g. "--batch-size 1MiB").
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
weir=$(realpath "${1:?usage: io_properties_ab.sh WEIR DIR [ROUNDS]}")
dir=$(realpath "${2:?usage: io_properties_ab.sh WEIR DIR [ROUNDS]}")
rounds=${3:-4}
acks=${ACKS:-all}
records=${RECORDS:-400000}
extra=${EXTRA:-}
limits=${LIMITS:-$root/../shared/tools/limits}
out=$dir/io-ab
rm -rf "$out" "$dir/io-ab-data"
mkdir -p "$out"
trap 'rm -rf "$dir/io-ab-data"' EXIT

"$limits" "$dir" 1G >"$out/limits-before.json"
"$weir" hw iotune --dir "$dir" --out "$out/io-properties.toml" >"$out/iotune.txt" 2>&1

run() { # $1: a or b, $2: round
  local variant=$1 round=$2 io=none port pid
  [ "$variant" = b ] && io=$out/io-properties.toml
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  rm -rf "$dir/io-ab-data"
  "$weir" serve --data-dir "$dir/io-ab-data" --shards 1 --kafka-addr "127.0.0.1:$port" \
    --num-partitions 1 --io-properties "$io" >"$out/$variant-$round.serve.out" 2>"$out/$variant-$round.serve.err" &
  pid=$!
  for _ in $(seq 100); do grep -q "serving Kafka" "$out/$variant-$round.serve.out" && break; sleep 0.1; done
  grep -q "serving Kafka" "$out/$variant-$round.serve.out" \
    || { echo "broker $variant did not start:" >&2; cat "$out/$variant-$round.serve.err" >&2; exit 1; }
  # shellcheck disable=SC2086
  "$weir" bench produce --bootstrap "127.0.0.1:$port" --topic t --records "$records" \
    --record-size 1KiB --acks "$acks" $extra --quiet --check-ceiling false --broker-pid "$pid" \
    >"$out/$variant-$round.txt" 2>&1
  kill -TERM "$pid"
  wait "$pid" || true
  printf '%s round %s: %s MB/s, latency p50 %s p99 %s ms, %s\n' "$variant" "$round" \
    "$(awk '/^publish/ {print $4}' "$out/$variant-$round.txt")" \
    "$(awk '/^latency/ {print $2}' "$out/$variant-$round.txt")" \
    "$(awk '/^latency/ {print $4}' "$out/$variant-$round.txt")" \
    "$(grep -o '[0-9.]* CPU-s per GB' "$out/$variant-$round.txt" || echo '?')"
}

for round in $(seq "$rounds"); do
  if [ $((round % 2)) = 1 ]; then run a "$round"; run b "$round"; else run b "$round"; run a "$round"; fi
done
"$limits" "$dir" 1G >"$out/limits-after.json"
echo "limits before: $(cat "$out/limits-before.json")"
echo "limits after:  $(cat "$out/limits-after.json")"
echo "a: no io-properties; b: $(grep -A2 '^\[suggested\]' "$out/io-properties.toml" | tail -2 | tr '\n' ' ')"
