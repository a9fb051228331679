#!/usr/bin/env bash
# ZooKeeper wire protocol, side by side in one run (issue #8): the same load client
# (`weir bench zk`, pipelined jute over TCP) against a 3-node Apache ZooKeeper 3.8 ensemble
# (Debian's package) and a 3-node `weir coord` ensemble (its ZooKeeper frontend, --zk-addr), both
# on loopback, one after the other, with their data on DIR's disk:
#   create-seq  sequential creates (PERSISTENT_SEQUENTIAL, CREATE_SIZE bytes)
#   set         pipelined 1 KiB setData
#   get         1 KiB getData
#   kill        1 KiB setData while the leader is kill -9'd KILL_AT_S seconds in: the longest
#               gap without any successful write afterwards is the recovery time
# Prints a markdown table (median of RUNS runs: ops/s, p50, p99 per workload and system, ratio
# weir/ZooKeeper) and writes it with all raw reports to DIR/zk-compare.{md,json}.
#
# Usage: bench/zk/compare.sh DIR
# Needs: a release build (cargo build --release -p weir-cli), Debian's zookeeper package, python3.
# Environment: RUNS (3 per workload and system), CLIENTS (16), IN_FLIGHT (32), DURATION_S (10),
# WARMUP_S (3), CREATE_SIZE (128), KILL_AT_S (3), EXECUTORS (1), ZK_HEAP (512m), WEIR (the binary), KEEP=1 keeps the data dirs,
# WEIR_COORD_ARGS (default "--snapshot-entries 100000": a snapshot every 100,000 log entries, as
# ZooKeeper's default snapCount; weir's own default of 10,000 re-serialises the whole tree ten
# times as often, which dominates once the creates have grown the tree — see BENCHMARKS.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(realpath "${1:?usage: compare.sh DIR}")
target=${CARGO_TARGET_DIR:-$root/target}
export WEIR=${WEIR:-$target/release/weir}
[ -x "$WEIR" ] || { echo "build first: cargo build --release -p weir-cli" >&2; exit 2; }
clients=${CLIENTS:-16}
in_flight=${IN_FLIGHT:-32}
duration=${DURATION_S:-10}
warmup=${WARMUP_S:-3}
create_size=${CREATE_SIZE:-128}
kill_at=${KILL_AT_S:-3}
executors=${EXECUTORS:-1}
runs=${RUNS:-3}
ens=$root/bench/zk/ensemble.sh
export WEIR_COORD_ARGS=${WEIR_COORD_ARGS---snapshot-entries 100000}
work=$dir/zk-compare
out=$work/results
rm -rf "$work"
mkdir -p "$out"

cleanup() {
    "$ens" zk stop "$work" >/dev/null 2>&1 || true
    "$ens" weir stop "$work" >/dev/null 2>&1 || true
    [ "${KEEP:-0}" = 1 ] || rm -rf "$work/zk" "$work/weir"
}
trap cleanup EXIT

# Context: how fast this disk makes a 4 KiB write durable (both systems fsync every commit).
if command -v fio >/dev/null 2>&1; then
    fio --name=sync --filename="$work/.fsync-probe" --rw=write --bs=4k --size=16M --fdatasync=1 \
        --ioengine=sync --output-format=json 2>/dev/null >"$out/fsync.json" || true
    rm -f "$work/.fsync-probe"
fi

# One workload against the running ensemble: SYSTEM NAME SERVERS [extra flags...]
load() {
    local system=$1 name=$2 servers=$3
    shift 3
    echo "== $system $name" >&2
    "$WEIR" bench zk --servers "$servers" --clients "$clients" --in-flight "$in_flight" \
        --duration-s "$duration" --warmup-s "$warmup" --executors "$executors" \
        --root "/bench-${name%-*}" --json "$out/$system-$name.json" "$@" >/dev/null ||
        echo "{\"failed\": true}" >"$out/$system-$name.json"
    cat "$out/$system-$name.json" >&2
}

# Every run gets a fresh ensemble (empty data dirs), so one system's faster creates don't leave it
# a bigger tree to snapshot in the next workload. The systems alternate run by run, so a burst of
# load from elsewhere on the machine hits both alike; the table shows each system's median run.
one_run() {
    local system=$1 w=$2 r=$3 servers extra=() name=$1
    [ "$system" = zk ] && name=zookeeper
    rm -rf "${work:?}/zk" "$work/weir"
    servers=$("$ens" "$system" start "$work")
    if [ "$system" = weir ]; then
        extra=(--weir-status "$("$ens" weir native "$work")")
    fi
    case $w in
    create-seq) load "$name" "$w-$r" "$servers" --op create-seq --size "$create_size" ;;
    set) load "$name" "$w-$r" "$servers" --op set --size 1024 ;;
    get) load "$name" "$w-$r" "$servers" --op get --size 1024 ;;
    kill) load "$name" "$w-$r" "$servers" --op set --size 1024 --kill-leader-at-s "$kill_at" "${extra[@]}" ;;
    esac
    "$ens" "$system" stop "$work"
}

for w in create-seq set get kill; do
    for r in $(seq "$runs"); do
        one_run zk "$w" "$r"
        one_run weir "$w" "$r"
    done
done

python3 "$root/bench/zk/table.py" "$out" "$dir/zk-compare" "$runs"
