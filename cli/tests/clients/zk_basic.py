"""ZooKeeper semantics through weir's ZooKeeper frontend, with kazoo (and zk_raw for the requests
kazoo 2.11 does not send). Usage:
  zk_basic.py ping HOSTS                   connect, write and read once (readiness probe)
  zk_basic.py ls HOSTS PATH                print PATH's children, one a line
  zk_basic.py all HOST HOSTS PREFIX        every check; client A on HOST, client B on HOSTS
Exits non-zero (AssertionError / exception) on any violation; prints "basic: ok" at the end."""

import os
import queue
import subprocess
import sys
import threading
import time

from kazoo.client import KazooClient
from kazoo.exceptions import (BadArgumentsError, BadVersionError, NoAuthError,
                              NoChildrenForEphemeralsError, NodeExistsError,
                              NoNodeError, NotEmptyError, RolledBackError,
                              RuntimeInconsistency)
from kazoo.protocol.states import EventType
from kazoo.security import make_digest_acl, OPEN_ACL_UNSAFE

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zk_raw  # noqa: E402


def client(hosts, timeout=4.0):
    zk = KazooClient(hosts=hosts, timeout=timeout)
    zk.start(timeout=15)
    return zk


def next_event(q, limit=10.0):
    try:
        return q.get(timeout=limit)
    except queue.Empty:
        raise AssertionError("watch did not fire")


def no_event(q, wait=0.5):
    try:
        ev = q.get(timeout=wait)
    except queue.Empty:
        return
    raise AssertionError(f"unexpected extra event {ev}")


def crud(a, b, p):
    a.create(p, b"")
    assert a.create(f"{p}/x", b"one") == f"{p}/x"
    b.sync(p)  # b is on another node: its reads see a's acknowledged write after a sync
    data, st = b.get(f"{p}/x")
    assert data == b"one" and st.version == 0 and st.dataLength == 3, (data, st)
    st = a.set(f"{p}/x", b"two", version=0)
    assert st.version == 1 and st.mzxid > st.czxid
    for call in (lambda: a.set(f"{p}/x", b"z", version=0),
                 lambda: a.delete(f"{p}/x", version=7)):
        try:
            call()
            raise AssertionError("stale version accepted")
        except BadVersionError:
            pass
    try:
        a.create(f"{p}/x", b"")
        raise AssertionError("duplicate create accepted")
    except NodeExistsError:
        pass
    for call in (lambda: a.get(f"{p}/nope"), lambda: a.set(f"{p}/nope", b""),
                 lambda: a.delete(f"{p}/nope"), lambda: a.create(f"{p}/nope/child", b"")):
        try:
            call()
            raise AssertionError("missing node accepted")
        except NoNodeError:
            pass
    a.create(f"{p}/x/c", b"")
    try:
        a.delete(f"{p}/x")
        raise AssertionError("deleted a node with children")
    except NotEmptyError:
        pass
    assert a.exists(f"{p}/nope") is None
    assert sorted(a.get_children(f"{p}/x")) == ["c"]
    children, st = a.get_children(f"{p}/x", include_data=True)
    assert children == ["c"] and st.numChildren == 1
    a.delete(f"{p}/x", recursive=True)
    assert a.exists(f"{p}/x") is None
    a.ensure_path(f"{p}/deep/er/path")
    assert a.exists(f"{p}/deep/er/path") is not None
    # Sequential nodes: unique, increasing, 10 digits, counter not reused after delete.
    names = [a.create(f"{p}/seq-", b"", sequence=True) for _ in range(5)]
    a.delete(names[-1])
    names.append(a.create(f"{p}/seq-", b"", sequence=True))
    assert names == sorted(names) and len(set(names)) == 6, names
    assert names[0].endswith("0000000000") or names[0][-10:].isdigit(), names
    # Ephemerals are owned by the session and cannot have children.
    e = a.create(f"{p}/eph-", b"", ephemeral=True, sequence=True)
    assert a.exists(e).ephemeralOwner == a.client_id[0]
    try:
        a.create(f"{e}/child", b"")
        raise AssertionError("child of an ephemeral accepted")
    except NoChildrenForEphemeralsError:
        pass
    b.sync(p)
    assert b.exists(e) is not None
    print("crud: ok", flush=True)


def watches(a, b, p):
    a.create(p + "/w", b"0")
    q = queue.Queue()
    data, _ = a.get(p + "/w", watch=q.put)
    b.set(p + "/w", b"1")
    ev = next_event(q)
    assert ev.type == EventType.CHANGED and ev.path == p + "/w", ev
    b.set(p + "/w", b"2")  # one-shot: no second event
    no_event(q)
    # exists watch on a missing node fires on create
    assert a.exists(p + "/later", watch=q.put) is None
    b.create(p + "/later", b"")
    ev = next_event(q)
    assert ev.type == EventType.CREATED, ev
    # child watch fires on a child create, then (re-armed) on delete of the parent
    a.get_children(p + "/later", watch=q.put)
    b.create(p + "/later/kid", b"")
    ev = next_event(q)
    assert ev.type == EventType.CHILD and ev.path == p + "/later", ev
    no_event(q)
    a.get(p + "/later/kid", watch=q.put)
    b.delete(p + "/later/kid")
    ev = next_event(q)
    assert ev.type == EventType.DELETED and ev.path == p + "/later/kid", ev
    print("watches: ok", flush=True)


def persistent_watches(host, hosts, b, p):
    raw = zk_raw.Raw(host)
    b.create(p + "/pw", b"")
    # b is on another node: without the sync raw's node may apply the create after the watch is
    # added, and the watch rightly fires CREATED first.
    assert raw.sync(p) == 0
    assert raw.add_watch(p + "/pw", 0) == 0  # PERSISTENT
    assert raw.add_watch(p + "/rw", 1) == 0  # PERSISTENT_RECURSIVE (node does not exist yet)
    b.set(p + "/pw", b"a")
    b.set(p + "/pw", b"b")
    b.create(p + "/pw/kid", b"")
    b.create(p + "/rw", b"")
    b.create(p + "/rw/x", b"")
    b.create(p + "/rw/x/y", b"")
    b.set(p + "/rw/x/y", b"1")
    b.delete(p + "/rw/x/y")
    evs = raw.wait_events(8)
    want = [(zk_raw.CHANGED, p + "/pw"), (zk_raw.CHANGED, p + "/pw"), (zk_raw.CHILD, p + "/pw"),
            (zk_raw.CREATED, p + "/rw"), (zk_raw.CREATED, p + "/rw/x"),
            (zk_raw.CREATED, p + "/rw/x/y"), (zk_raw.CHANGED, p + "/rw/x/y"),
            (zk_raw.DELETED, p + "/rw/x/y")]
    assert evs == want, evs
    # Recursive watches see no child events; removeWatches ends a persistent watch.
    assert raw.check_watches(p + "/pw", 3) == 0
    assert raw.remove_watches(p + "/pw", 3) == 0
    assert raw.check_watches(p + "/pw", 3) == zk_raw.NOWATCHER
    assert raw.remove_watches(p + "/nowatch", 2) == zk_raw.NOWATCHER
    b.set(p + "/pw", b"c")
    b.set(p + "/rw", b"after")
    evs = raw.wait_events(9)
    assert evs[8:] == [(zk_raw.CHANGED, p + "/rw")], evs
    # getAllChildrenNumber, multiRead
    err, n = raw.all_children_number(p + "/rw")
    assert (err, n) == (0, 1), (err, n)
    err, res = raw.multi_read([(4, p + "/rw"), (8, p + "/rw"), (4, p + "/missing")])
    assert err == 0 and res[0][0] == "data" and res[0][1] == b"after", res
    assert res[1] == ("children", ["x"]) and res[2] == ("error", zk_raw.NONODE), res
    raw.close()
    print("persistent watches: ok", flush=True)


def set_watches_after_reattach(host, hosts, b, p):
    """A raw session re-attached on another node re-arms its watches with setWatches: a node
    changed while it was away fires at once, the others fire on the next change."""
    raw = zk_raw.Raw(host, timeout_ms=6000)
    b.create(p + "/sw1", b"")
    b.create(p + "/sw2", b"")
    assert raw.sync(p) == 0  # raw's node has applied b's creates
    err, _ = raw.get(p + "/sw1", watch=True)
    assert err == 0
    zxid = raw.zxid
    sid, pw = raw.session, raw.passwd
    raw.close(close_session=False)  # connection lost, session lives
    b.set(p + "/sw1", b"changed while away")
    other = [h for h in hosts.split(",") if h != host][0]
    # A wrong password is refused as an expired session.
    try:
        zk_raw.Raw(other, session=sid, passwd=b"x" * 16)
        raise AssertionError("wrong password accepted")
    except (RuntimeError, ConnectionError):
        pass
    raw = zk_raw.Raw(other, session=sid, passwd=pw, last_zxid=zxid)
    assert raw.session == sid
    assert raw.set_watches(zxid, data=[p + "/sw1", p + "/sw2"], exist=[p + "/sw3"]) == 0
    evs = raw.wait_events(1)
    assert evs == [(zk_raw.CHANGED, p + "/sw1")], evs
    b.create(p + "/sw3", b"")
    b.set(p + "/sw2", b"x")
    evs = raw.wait_events(3)
    assert sorted(evs[1:]) == sorted([(zk_raw.CREATED, p + "/sw3"), (zk_raw.CHANGED, p + "/sw2")]), evs
    # setWatches2 re-arms persistent and recursive watches too (on a third node).
    sid, pw, zxid = raw.session, raw.passwd, raw.zxid
    raw.close(close_session=False)
    third = [h for h in hosts.split(",") if h not in (host, other)][0]
    raw = zk_raw.Raw(third, session=sid, passwd=pw, last_zxid=zxid)
    assert raw.set_watches2(zxid, persistent=[p + "/sw1"], recursive=[p + "/sw2"]) == 0
    b.set(p + "/sw1", b"p")
    b.create(p + "/sw2/deep", b"")
    b.set(p + "/sw1", b"q")
    evs = raw.wait_events(3)
    assert evs == [(zk_raw.CHANGED, p + "/sw1"), (zk_raw.CREATED, p + "/sw2/deep"),
                   (zk_raw.CHANGED, p + "/sw1")], evs
    raw.close()
    print("setWatches: ok", flush=True)


def acls(host, b, p):
    a = client(host)
    a.add_auth("digest", "alice:secret")
    mine = [make_digest_acl("alice", "secret", all=True)]
    a.create(p + "/priv", b"s3cr3t", acl=mine)
    a.create(p + "/priv/kid", b"", acl=mine)
    b.sync(p)
    for call in (lambda: b.get(p + "/priv"), lambda: b.set(p + "/priv", b"x"),
                 lambda: b.create(p + "/priv/other", b""), lambda: b.delete(p + "/priv/kid"),
                 lambda: b.get_children(p + "/priv")):
        try:
            call()
            raise AssertionError("NOAUTH expected")
        except NoAuthError:
            pass
    assert b.exists(p + "/priv") is not None  # exists needs no permission
    acl, st = a.get_acls(p + "/priv")
    assert acl[0].id.scheme == "digest" and acl[0].id.id.startswith("alice:"), acl
    # Wrong password: still no access. Right password: access.
    c = client(host)
    c.add_auth("digest", "alice:wrong")
    try:
        c.get(p + "/priv")
        raise AssertionError("wrong password got access")
    except NoAuthError:
        pass
    c.add_auth("digest", "alice:secret")
    assert c.get(p + "/priv")[0] == b"s3cr3t"
    c.stop()
    # setACL with versions; read-only for everyone.
    read_all = make_digest_acl("alice", "secret", all=True)
    from kazoo.security import ACL, Id, Permissions
    world_read = ACL(Permissions.READ, Id("world", "anyone"))
    try:
        a.set_acls(p + "/priv", [read_all, world_read], version=5)
        raise AssertionError("stale aversion accepted")
    except BadVersionError:
        pass
    st = a.set_acls(p + "/priv", [read_all, world_read], version=0)
    assert st.aversion == 1, st
    b.sync(p)
    assert b.get(p + "/priv")[0] == b"s3cr3t"
    try:
        b.set(p + "/priv", b"x")
        raise AssertionError("world may only read")
    except NoAuthError:
        pass
    a.stop()
    # INVALIDACL: an empty list, an unknown scheme, the `auth` scheme without any auth.
    raw = zk_raw.Raw(host)
    for bad in ([], [(31, "bogus", "x")], [(31, "auth", "")], [(64, "world", "anyone")]):
        err, _ = raw.create(p + "/badacl", acl_list=bad)
        assert err == -114, (bad, err)
    raw.close()
    print("acls: ok", flush=True)


def transactions(a, b, p):
    a.create(p + "/tx", b"v")
    t = a.transaction()
    t.create(p + "/tx/new", b"n")
    t.set_data(p + "/tx", b"v2", version=0)
    t.check(p + "/tx", 1)
    t.delete(p + "/tx/new")
    res = t.commit()
    assert res[0] == p + "/tx/new" and res[1].version == 1 and res[2] is True and res[3] is True, res
    t = a.transaction()
    t.create(p + "/tx/never", b"")
    t.check(p + "/tx", 0)  # stale: the whole transaction fails
    t.delete(p + "/tx")
    res = t.commit()
    assert isinstance(res[0], RolledBackError), res
    assert isinstance(res[1], BadVersionError), res
    assert isinstance(res[2], RuntimeInconsistency), res
    assert b.exists(p + "/tx/never") is None
    print("transactions: ok", flush=True)


def containers_and_ttl(host, b, p):
    raw = zk_raw.Raw(host)
    err, path = raw.create(p + "/box", op=19, flags=4)  # createContainer
    assert err == 0, err
    b.create(p + "/box/a", b"")
    b.create(p + "/box/b", b"")
    b.delete(p + "/box/a")
    assert b.exists(p + "/box") is not None  # still has a child
    b.delete(p + "/box/b")
    b.sync(p)
    assert b.exists(p + "/box") is None, "container outlived its last child"
    # createTTL: a 700 ms TTL node disappears once unmodified that long; with a child it stays.
    err, path = raw.create(p + "/ttl", op=21, flags=5, ttl=700)
    assert err == 0 and path == p + "/ttl", (err, path)
    err, _ = raw.create(p + "/ttlp", op=21, flags=5, ttl=700)
    assert err == 0
    b.create(p + "/ttlp/kid", b"")
    err, seq = raw.create(p + "/ttls-", op=21, flags=6, ttl=60000)
    assert err == 0 and seq.startswith(p + "/ttls-"), seq
    err, _ = raw.create(p + "/bad", op=21, flags=0, ttl=100)  # TTL op without a TTL mode
    assert err == zk_raw.BADARGUMENTS, err
    err, _ = raw.create(p + "/bad", op=1, flags=5)  # TTL mode without createTTL
    assert err == zk_raw.BADARGUMENTS, err
    deadline = time.time() + 10
    while b.exists(p + "/ttl") is not None and time.time() < deadline:
        time.sleep(0.1)
    assert b.exists(p + "/ttl") is None, "TTL node did not expire"
    b.sync(p)
    assert b.exists(p + "/ttlp") is not None and b.exists(seq) is not None
    raw.close()
    print("containers and ttl: ok", flush=True)


def expiry(hosts, b, p):
    """A client process that dies without closing its session: its ephemeral goes after the
    session timeout, and a watcher is told."""
    child = subprocess.run(
        [sys.executable, "-c", f"""
import os
from kazoo.client import KazooClient
zk = KazooClient(hosts={hosts!r}, timeout=1.5)
zk.start(timeout=15)
zk.create({p + '/dies'!r}, b'', ephemeral=True)
print(zk.client_id[0], flush=True)
os._exit(0)
"""], capture_output=True, text=True, timeout=30)
    assert child.returncode == 0, child.stderr
    q = queue.Queue()
    b.sync(p)
    st = b.exists(p + "/dies", watch=q.put)
    assert st is not None and st.ephemeralOwner == int(child.stdout.split()[0]), (st, child.stdout)
    t0 = time.time()
    ev = next_event(q, limit=15)
    assert ev.type == EventType.DELETED, ev
    assert b.exists(p + "/dies") is None
    print(f"expiry: ok ({time.time() - t0:.1f}s)", flush=True)


def main():
    if sys.argv[1] == "ping":
        zk = client(sys.argv[2])
        zk.ensure_path("/ready")
        zk.stop()
        return
    if sys.argv[1] == "four":
        # kazoo's own four-letter-word call (a separate socket to the connected server).
        zk = client(sys.argv[2])
        for word in (b"ruok", b"srvr", b"mntr"):
            print(f"== {word.decode()}\n{zk.command(word)}", flush=True)
        zk.stop()
        return
    if sys.argv[1] == "ls":
        zk = client(sys.argv[2])
        for c in sorted(zk.get_children(sys.argv[3])):
            print(c)
        zk.stop()
        return
    host, hosts, p = sys.argv[2], sys.argv[3], sys.argv[4]
    a = client(host)
    others = ",".join(h for h in hosts.split(",") if h != host)
    b = client(others)
    crud(a, b, p)
    watches(a, b, p)
    persistent_watches(host, hosts, b, p)
    set_watches_after_reattach(host, hosts, b, p)
    acls(host, b, p)
    transactions(a, b, p)
    containers_and_ttl(host, b, p)
    expiry(host, b, p)
    a.stop()
    b.stop()
    print("basic: ok", flush=True)


if __name__ == "__main__":
    main()
