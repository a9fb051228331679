#!/bin/bash
# A/B of two weir builds' coordinators through the ZooKeeper protocol, in one run on this machine:
# for each round and workload, a fresh 3-node ensemble of build A then of build B (alternating, so
# both see the same machine), `weir bench zk` against it, one JSON per run and a line each.
#
#   bench/zk/ab.sh A=path/to/weir B=path/to/weir DIR     (DIR on the disk under test)
#
# Knobs (env): ROUNDS (2), OPS ("create-seq set get"), CLIENTS (16), IN_FLIGHT (32),
# DURATION_S (8), WARMUP_S (2), WEIR_COORD_ARGS (none: weir's defaults). Creates carry 128 B,
# sets and gets 1 KiB. Limits of the machine (../shared/tools/limits) go to DIR/limits.json when
# that tool exists.
set -euo pipefail
usage() { echo "usage: bench/zk/ab.sh A=path B=path DIR" >&2; exit 2; }
[ $# -eq 3 ] || usage
case $1 in A=*) A=${1#A=} ;; *) usage ;; esac
case $2 in B=*) B=${2#B=} ;; *) usage ;; esac
DIR=$3
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$DIR"
LIMITS="$HERE/../../../shared/tools/limits"
[ -x "$LIMITS" ] && "$LIMITS" "$DIR" >"$DIR/limits.json" 2>/dev/null || true
for round in $(seq 1 "${ROUNDS:-2}"); do
    for op in ${OPS:-create-seq set get}; do
        size=1024
        [ "$op" = create-seq ] && size=128
        for side in A B; do
            bin=$A
            [ $side = B ] && bin=$B
            d="$DIR/ensemble-$side"
            rm -rf "$d"
            mkdir -p "$d"
            WEIR=$bin "$HERE/ensemble.sh" weir start "$d" >/dev/null
            addrs=$(WEIR=$bin "$HERE/ensemble.sh" weir addrs "$d")
            out="$DIR/$side-$op-$round"
            "$bin" bench zk --servers "$addrs" --op "$op" --size "$size" \
                --clients "${CLIENTS:-16}" --in-flight "${IN_FLIGHT:-32}" \
                --duration-s "${DURATION_S:-8}" --warmup-s "${WARMUP_S:-2}" \
                --json "$out.json" >"$out.txt" 2>&1 || true
            WEIR=$bin "$HERE/ensemble.sh" weir stop "$d" >/dev/null
            rm -rf "$d"
            python3 - "$out.json" "$side" "$op" "$round" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except (OSError, ValueError) as e:
    print(f"{sys.argv[2]} {sys.argv[3]} round {sys.argv[4]}: no result ({e})")
    sys.exit(0)
print(f"{sys.argv[2]} {sys.argv[3]:<10} round {sys.argv[4]}: {r['ops_per_s']:>12,.0f} ops/s  "
      f"p50 {r['p50_ms']:.2f}  p99 {r['p99_ms']:.2f}  p99.9 {r['p999_ms']:.2f} ms  "
      f"errors {r['errors']}  reconnects {r['reconnects']}")
PY
        done
    done
done
