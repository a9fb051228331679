"""Session failover: kill -9 the weir coord node a kazoo client is connected to; the session
moves to another node with its ephemeral node, its data watch (kazoo's DataWatch re-reads on
reconnect) and a raw client's one-shot watch (re-armed with setWatches). Usage:
  zk_failover.py HOSTS ADDR=PID,ADDR=PID,ADDR=PID FIRST   (the client connects to FIRST)
Prints "failover: ok"; exits non-zero otherwise."""

import os
import queue
import signal
import sys
import time

from kazoo.client import KazooClient
from kazoo.protocol.states import KazooState
from kazoo.recipe.watchers import DataWatch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zk_raw  # noqa: E402


def main():
    hosts = sys.argv[1]
    pids = dict(x.rsplit("=", 1) for x in sys.argv[2].split(","))
    first = sys.argv[3]
    ordered = ",".join([first] + [h for h in hosts.split(",") if h != first])
    states = queue.Queue()
    a = KazooClient(hosts=ordered, timeout=6.0, randomize_hosts=False)
    a.add_listener(states.put)
    a.start(timeout=20)
    sid = a.client_id[0]
    a.ensure_path("/fo")
    eph = a.create("/fo/eph", b"mine", ephemeral=True)
    seen = queue.Queue()
    DataWatch(a, "/fo/watched", func=lambda data, stat: seen.put(data))
    assert seen.get(timeout=10) is None  # does not exist yet

    host, port = a._connection._socket.getpeername()[:2]
    victim = f"{host}:{port}"
    assert victim == first and victim in pids, (victim, first, pids)
    survivors = [h for h in hosts.split(",") if h != victim]
    # A raw session on the victim with a one-shot data watch, moved by hand afterwards.
    raw = zk_raw.Raw(victim, timeout_ms=6000)
    a.create("/fo/raw", b"")
    raw_zxid = raw.zxid
    assert raw.get("/fo/raw", watch=True)[0] == 0
    raw_zxid = raw.zxid
    raw_session, raw_pw = raw.session, raw.passwd

    while not states.empty():  # the initial CONNECTED
        states.get()
    os.kill(int(pids[victim]), signal.SIGKILL)
    t0 = time.time()
    raw.sock.close()

    # kazoo reconnects elsewhere with the same session (SUSPENDED, then CONNECTED; never LOST).
    deadline = time.time() + 30
    reconnected = False
    while time.time() < deadline:
        try:
            st = states.get(timeout=1)
        except queue.Empty:
            continue
        assert st != KazooState.LOST, "session lost"
        if st == KazooState.CONNECTED:
            reconnected = True
            break
    assert reconnected, "did not reconnect"
    assert a.client_id[0] == sid
    now = "%s:%s" % a._connection._socket.getpeername()[:2]
    assert now != victim and now in survivors, now
    print(f"reconnected to {now} in {time.time() - t0:.2f}s", flush=True)

    # The ephemeral survives, still owned by the session.
    st = a.exists(eph)
    assert st is not None and st.ephemeralOwner == sid, st

    # Another client on the survivors changes the watched nodes: watchers are told.
    b = KazooClient(hosts=",".join(survivors), timeout=6.0)
    b.start(timeout=20)
    b.create("/fo/watched", b"v1")
    deadline = time.time() + 15
    got = None
    while time.time() < deadline and got != b"v1":
        got = seen.get(timeout=15)
    assert got == b"v1", got

    raw = zk_raw.Raw(survivors[0], session=raw_session, passwd=raw_pw, last_zxid=raw_zxid)
    assert raw.set_watches(raw_zxid, data=["/fo/raw"]) == 0
    b.set("/fo/raw", b"changed")
    evs = raw.wait_events(1)
    assert evs == [(zk_raw.CHANGED, "/fo/raw")], evs

    # The session still works for writes, and closing it removes the ephemeral at once.
    a.set(eph, b"still mine")
    a.stop()
    b.sync("/fo")
    assert b.exists(eph) is None, "ephemeral outlived its closed session"
    raw.close()
    b.stop()
    print("failover: ok", flush=True)


if __name__ == "__main__":
    main()
