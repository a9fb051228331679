"""A minimal ZooKeeper jute client written from zookeeper.jute, for what kazoo 2.11 does not
send: addWatch (persistent, persistent-recursive), removeWatches/checkWatches, setWatches on a
re-attached session, createContainer, createTTL, getAllChildrenNumber, multiRead, whoAmI.
Independent of weir's Rust codec on purpose (a second reading of the spec)."""

import socket
import struct
import time

OK, NONODE, NOAUTH, BADVERSION, NODEEXISTS, NOTEMPTY, BADARGUMENTS, NOWATCHER = (
    0, -101, -102, -103, -110, -111, -8, -121)
CREATED, DELETED, CHANGED, CHILD = 1, 2, 3, 4
WORLD_ALL = [(31, "world", "anyone")]


def s(v):
    b = v.encode() if isinstance(v, str) else v
    return struct.pack(">i", len(b)) + b


def acl(lst):
    out = struct.pack(">i", len(lst))
    for perms, scheme, ident in lst:
        out += struct.pack(">i", perms) + s(scheme) + s(ident)
    return out


def strings(lst):
    return struct.pack(">i", len(lst)) + b"".join(s(x) for x in lst)


class Reader:
    def __init__(self, b):
        self.b, self.o = b, 0

    def i32(self):
        v = struct.unpack_from(">i", self.b, self.o)[0]
        self.o += 4
        return v

    def i64(self):
        v = struct.unpack_from(">q", self.b, self.o)[0]
        self.o += 8
        return v

    def bool(self):
        v = self.b[self.o] != 0
        self.o += 1
        return v

    def buf(self):
        n = self.i32()
        if n < 0:
            return b""
        v = self.b[self.o:self.o + n]
        self.o += n
        return v

    def str(self):
        return self.buf().decode()

    def stat(self):
        names = "czxid mzxid ctime mtime version cversion aversion ephemeralOwner dataLength numChildren pzxid"
        vals = [self.i64(), self.i64(), self.i64(), self.i64(), self.i32(), self.i32(),
                self.i32(), self.i64(), self.i32(), self.i32(), self.i64()]
        return dict(zip(names.split(), vals))


class Raw:
    def __init__(self, hostport, session=0, passwd=b"\0" * 16, timeout_ms=4000, last_zxid=0):
        host, port = hostport.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.buf = b""
        self.events = []
        self.xid = 0
        self.zxid = last_zxid
        req = struct.pack(">iqiq", 0, last_zxid, timeout_ms, session) + s(passwd) + b"\0"
        self._send(req)
        r = Reader(self._frame())
        self.proto, self.timeout_ms, self.session = r.i32(), r.i32(), r.i64()
        self.passwd = r.buf()
        if self.timeout_ms <= 0:
            raise RuntimeError("session expired")

    def _send(self, body):
        self.sock.sendall(struct.pack(">i", len(body)) + body)

    def _frame(self):
        while len(self.buf) < 4 or len(self.buf) < 4 + struct.unpack(">i", self.buf[:4])[0]:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        n = struct.unpack(">i", self.buf[:4])[0]
        f, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
        return f

    def call(self, op, body=b"", xid=None):
        """Sends one request; returns (err, Reader over the body). Events seen meanwhile are
        appended to self.events as (type, path)."""
        if xid is None:
            self.xid += 1
            xid = self.xid
        self._send(struct.pack(">ii", xid, op) + body)
        while True:
            r = Reader(self._frame())
            rx, zxid, err = r.i32(), r.i64(), r.i32()
            if rx == -1:
                t, _state, path = r.i32(), r.i32(), r.str()
                self.events.append((t, path))
                continue
            if zxid > 0:
                self.zxid = max(self.zxid, zxid)
            assert rx == xid, (rx, xid)
            return err, r

    def wait_events(self, n, limit=10.0):
        """Waits until at least n events arrived (pings keep the session and socket busy)."""
        deadline = time.time() + limit
        while len(self.events) < n and time.time() < deadline:
            self.sock.settimeout(0.2)
            try:
                r = Reader(self._frame())
                rx, _z, _e = r.i32(), r.i64(), r.i32()
                if rx == -1:
                    t, _state, path = r.i32(), r.i32(), r.str()
                    self.events.append((t, path))
            except socket.timeout:
                self.call(11, xid=-2)
            finally:
                self.sock.settimeout(10)
        return self.events

    def create(self, path, data=b"", flags=0, op=1, ttl=None, acl_list=WORLD_ALL):
        body = s(path) + s(data) + acl(acl_list) + struct.pack(">i", flags)
        if ttl is not None:
            body += struct.pack(">q", ttl)
        err, r = self.call(op, body)
        return err, (r.str() if err == 0 else None)

    def set(self, path, data, version=-1):
        return self.call(5, s(path) + s(data) + struct.pack(">i", version))[0]

    def delete(self, path, version=-1):
        return self.call(2, s(path) + struct.pack(">i", version))[0]

    def exists(self, path, watch=False):
        err, r = self.call(3, s(path) + (b"\1" if watch else b"\0"))
        return err, (r.stat() if err == 0 else None)

    def get(self, path, watch=False):
        err, r = self.call(4, s(path) + (b"\1" if watch else b"\0"))
        return err, ((r.buf(), r.stat()) if err == 0 else None)

    def sync(self, path):
        return self.call(9, s(path))[0]

    def add_watch(self, path, mode):
        return self.call(106, s(path) + struct.pack(">i", mode))[0]

    def remove_watches(self, path, kind):
        return self.call(18, s(path) + struct.pack(">i", kind))[0]

    def check_watches(self, path, kind):
        return self.call(17, s(path) + struct.pack(">i", kind))[0]

    def all_children_number(self, path):
        err, r = self.call(104, s(path))
        return err, (r.i32() if err == 0 else None)

    def set_watches(self, rel_zxid, data=(), exist=(), child=()):
        body = struct.pack(">q", rel_zxid) + strings(data) + strings(exist) + strings(child)
        return self.call(101, body, xid=-8)[0]

    def set_watches2(self, rel_zxid, data=(), exist=(), child=(), persistent=(), recursive=()):
        body = (struct.pack(">q", rel_zxid) + strings(data) + strings(exist) + strings(child)
                + strings(persistent) + strings(recursive))
        return self.call(105, body, xid=-8)[0]

    def multi_read(self, paths):
        body = b""
        for op, p in paths:
            body += struct.pack(">i?i", op, False, -1) + s(p) + b"\0"
        body += struct.pack(">i?i", -1, True, -1)
        err, r = self.call(22, body)
        out = []
        while True:
            t, done, e = r.i32(), r.bool(), r.i32()
            if done:
                return err, out
            if t == 4:
                out.append(("data", r.buf(), r.stat()))
            elif t == 8:
                out.append(("children", [r.str() for _ in range(r.i32())]))
            else:
                out.append(("error", r.i32()))

    def close(self, close_session=True):
        if close_session:
            try:
                self.call(-11)
            except ConnectionError:
                pass
        self.sock.close()
