#!/usr/bin/env bash
# Start / stop a 3-node ensemble on loopback: Apache ZooKeeper 3.8 (Debian's `zookeeper` package,
# run with java directly) or `weir coord` (with its ZooKeeper frontend, --zk-addr).
#
#   bench/zk/ensemble.sh zk   start DIR   # prints the client addresses, comma separated
#   bench/zk/ensemble.sh zk   stop  DIR
#   bench/zk/ensemble.sh weir start DIR   # WEIR=path/to/weir (default: weir on PATH)
#   bench/zk/ensemble.sh weir stop  DIR
#   bench/zk/ensemble.sh weir native DIR  # prints the nodes' native (weir protocol) addresses
#
# Everything (configs, data dirs, logs, pid files) lives under DIR/zk or DIR/weir; "stop" kills
# exactly the pids it started (never by name) and keeps the data for inspection.
# Ports (override with the environment): ZooKeeper clients ZK_PORT..+2 (default 12181), quorum
# ZK_PORT+100.., election ZK_PORT+200..; weir native WEIR_PORT..+2 (default 13181), ZooKeeper
# frontend WEIR_PORT+100..
# ZK_HEAP (default 512m) is the JVM heap of each ZooKeeper node: the box has 2 cores and other
# things run on it.
set -euo pipefail

SYSTEM=${1:?usage: ensemble.sh zk|weir start|stop|native DIR}
ACTION=${2:?usage: ensemble.sh zk|weir start|stop|native DIR}
DIR=${3:?usage: ensemble.sh zk|weir start|stop|native DIR}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
ZK_PORT=${ZK_PORT:-12181}
WEIR_PORT=${WEIR_PORT:-13181}
ZK_HEAP=${ZK_HEAP:-512m}
WEIR=${WEIR:-weir}
ZK_CP=${ZK_CP:-/etc/zookeeper/conf:/usr/share/java/zookeeper.jar}
WAIT_S=${WAIT_S:-60}

# Sends a four-letter word to HOST:PORT and prints the answer (empty if nothing answers).
four_letter() {
    local host=${1%:*} port=${1##*:}
    timeout 2 bash -c "exec 3<>/dev/tcp/$host/$port && printf '%s' '$2' >&3 && cat <&3" \
        2>/dev/null || true
}

zk_addrs() { echo "127.0.0.1:$ZK_PORT,127.0.0.1:$((ZK_PORT + 1)),127.0.0.1:$((ZK_PORT + 2))"; }
weir_zk_addrs() {
    echo "127.0.0.1:$((WEIR_PORT + 100)),127.0.0.1:$((WEIR_PORT + 101)),127.0.0.1:$((WEIR_PORT + 102))"
}
weir_native_addrs() {
    echo "127.0.0.1:$WEIR_PORT,127.0.0.1:$((WEIR_PORT + 1)),127.0.0.1:$((WEIR_PORT + 2))"
}

stop_pids() {
    local base=$1
    for i in 1 2 3; do
        local pf="$base/n$i.pid"
        [ -f "$pf" ] || continue
        local pid
        pid=$(cat "$pf")
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$pf"
    done
}

zk_start() {
    local base="$DIR/zk"
    [ -r /usr/share/java/zookeeper.jar ] || {
        echo "ZooKeeper not installed: apt-get install -y zookeeper" >&2
        exit 1
    }
    stop_pids "$base"
    for i in 1 2 3; do
        local n="$base/n$i"
        mkdir -p "$n/data"
        echo "$i" >"$n/data/myid"
        {
            echo "tickTime=2000"
            echo "initLimit=10"
            echo "syncLimit=5"
            echo "dataDir=$n/data"
            echo "clientPort=$((ZK_PORT + i - 1))"
            echo "clientPortAddress=127.0.0.1"
            echo "maxClientCnxns=0"
            echo "4lw.commands.whitelist=srvr,stat,ruok,mntr"
            echo "admin.enableServer=false"
            echo "autopurge.purgeInterval=0"
            for j in 1 2 3; do
                echo "server.$j=127.0.0.1:$((ZK_PORT + 99 + j)):$((ZK_PORT + 199 + j))"
            done
        } >"$n/zoo.cfg"
        # Not exec'd through zkServer.sh (Debian's expects a system install): plain java.
        nohup java "-Xmx$ZK_HEAP" "-Xms$ZK_HEAP" -XX:+UseG1GC \
            -Dzookeeper.log.dir="$n" -Dzookeeper.root.logger=INFO,CONSOLE \
            -cp "$ZK_CP" org.apache.zookeeper.server.quorum.QuorumPeerMain "$n/zoo.cfg" \
            >"$n/out.log" 2>&1 &
        echo $! >"$base/n$i.pid"
    done
    # Serving = every node answers `srvr` with a mode (leader/follower).
    local deadline=$((SECONDS + WAIT_S))
    for i in 1 2 3; do
        until four_letter "127.0.0.1:$((ZK_PORT + i - 1))" srvr | grep -qE 'Mode: (leader|follower)'; do
            if [ $SECONDS -ge $deadline ]; then
                echo "ZooKeeper node $i not serving after ${WAIT_S}s; see $base/n$i/out.log" >&2
                exit 1
            fi
            sleep 0.3
        done
    done
    zk_addrs
}

weir_start() {
    local base="$DIR/weir"
    command -v "$WEIR" >/dev/null || { echo "weir binary not found: set WEIR=" >&2; exit 1; }
    stop_pids "$base"
    local peers="1=127.0.0.1:$WEIR_PORT,2=127.0.0.1:$((WEIR_PORT + 1)),3=127.0.0.1:$((WEIR_PORT + 2))"
    ulimit -l unlimited 2>/dev/null || true
    for i in 1 2 3; do
        local n="$base/n$i"
        mkdir -p "$n/data"
        nohup "$WEIR" coord --id "$i" --data-dir "$n/data" \
            --listen "127.0.0.1:$((WEIR_PORT + i - 1))" \
            --zk-addr "127.0.0.1:$((WEIR_PORT + 99 + i))" \
            --peers "$peers" ${WEIR_COORD_ARGS:-} >"$n/out.log" 2>&1 &
        echo $! >"$base/n$i.pid"
    done
    # Serving = a leader is known to every node and every ZooKeeper port accepts connections.
    local deadline=$((SECONDS + WAIT_S))
    for i in 1 2 3; do
        until "$WEIR" coord status --server "127.0.0.1:$((WEIR_PORT + i - 1))" 2>/dev/null |
            grep -qE '"leader":[1-9]' &&
            timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$((WEIR_PORT + 99 + i))" 2>/dev/null; do
            if [ $SECONDS -ge $deadline ]; then
                echo "weir node $i not serving after ${WAIT_S}s; see $base/n$i/out.log" >&2
                exit 1
            fi
            sleep 0.3
        done
    done
    weir_zk_addrs
}

case "$SYSTEM:$ACTION" in
zk:start) zk_start ;;
zk:stop) stop_pids "$DIR/zk" ;;
zk:addrs) zk_addrs ;;
weir:start) weir_start ;;
weir:stop) stop_pids "$DIR/weir" ;;
weir:addrs) weir_zk_addrs ;;
weir:native) weir_native_addrs ;;
*)
    echo "usage: ensemble.sh zk|weir start|stop|addrs|native DIR" >&2
    exit 2
    ;;
esac
