#!/usr/bin/env bash
# Latency grid A/B of two weir builds: for each round and build (alternating), a fresh one-shard
# broker, then `weir bench produce` of that build paced at each grid point (1 KiB records,
# linger.ms 5, 6 s each): the grid of issue #14 (20k/s and 100k/s with 64 KiB batches, 100k/s lz4,
# 5k/s acks=all). Prints "ROUND SIDE POINT p50 p99 p99.9 max" (ms) per point. Measure the machine's
# limits beside it (../shared/tools/limits DIR).
# Usage: bench/kafka/latency_grid.sh WEIR_BEFORE WEIR_AFTER DIR [ROUNDS]
set -u
before=$(realpath "${1:?usage: latency_grid.sh WEIR_BEFORE WEIR_AFTER DIR [ROUNDS]}")
after=$(realpath "${2:?usage: latency_grid.sh WEIR_BEFORE WEIR_AFTER DIR [ROUNDS]}")
cd "${3:?usage: latency_grid.sh WEIR_BEFORE WEIR_AFTER DIR [ROUNDS]}"
for r in $(seq "${4:-2}"); do for side in before after; do
  bin=$before; [ "$side" = after ] && bin=$after; rm -rf d
  $bin serve --data-dir d --kafka-addr 127.0.0.1:0 --shards 1 --cores 0 --coord-core 1 > s.out 2> s.err & pid=$!
  for i in $(seq 50); do addr=$(sed -n 's/^weir: serving Kafka on \([^ ]*\).*/\1/p' s.out); [ -n "$addr" ] && break; sleep 0.1; done
  for pt in "20000 65536 1 none" "100000 65536 1 none" "100000 65536 1 lz4" "5000 16384 all none"; do
    set -- $pt
    $bin bench produce --bootstrap $addr --topic g$1$2$3$4 --records $(( $1 * 6 )) --rate $1 --batch-size $2 --acks $3 --compression $4 --linger-ms 5 --quiet --check-ceiling false --json p.json >/dev/null 2>&1
    python3 -c "
import json;d=json.load(open('p.json'));l=d['publish_latency_ms'];print('$r $side rate=$1 batch=$2 acks=$3 $4', l['p50'],l['p99'],l['p99_9'],l['max'])"
  done
  kill -TERM $pid; (sleep 15; kill -9 $pid 2>/dev/null && echo "HUNG $side") & wait $pid 2>/dev/null
done; done
