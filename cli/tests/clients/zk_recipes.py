"""kazoo's Lock, Election, Counter and Barrier recipes across separate client processes, each
connected to one node of the ensemble (round-robin). Usage:
  zk_recipes.py driver HOST1,HOST2,HOST3     spawns the workers and checks what they promise
  zk_recipes.py lock|election|counter|barrier HOST ID   (a worker; the driver starts these)
Prints "<recipe>: ok" for each recipe whose guarantee held; exits non-zero otherwise."""

import json
import os
import subprocess
import sys
import time

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError
from kazoo.recipe.barrier import Barrier
from kazoo.recipe.counter import Counter
from kazoo.recipe.election import Election
from kazoo.recipe.lock import Lock

WORKERS = 4
LOCK_ROUNDS = 10
COUNTER_ROUNDS = 25


def client(host):
    zk = KazooClient(hosts=host, timeout=6.0)
    zk.start(timeout=20)
    return zk


def worker_lock(zk, wid):
    """Inside the lock: a marker node must not exist (someone else inside), and a counter is
    incremented with a plain read-modify-write that only mutual exclusion keeps exact."""
    lock = Lock(zk, "/recipes/lock", identifier=wid)
    for _ in range(LOCK_ROUNDS):
        with lock:
            try:
                zk.create("/recipes/lock-holder", wid.encode(), ephemeral=True)
            except NodeExistsError:
                print("VIOLATION: two holders", flush=True)
                sys.exit(3)
            v, _ = zk.get("/recipes/lock-count")
            time.sleep(0.005)
            zk.set("/recipes/lock-count", str(int(v) + 1).encode())
            zk.delete("/recipes/lock-holder")


def worker_election(zk, wid):
    election = Election(zk, "/recipes/election", identifier=wid)

    def lead():
        try:
            zk.create("/recipes/leader-holder", wid.encode(), ephemeral=True)
        except NodeExistsError:
            print("VIOLATION: two leaders", flush=True)
            sys.exit(3)
        zk.create("/recipes/elected/e-", wid.encode(), sequence=True)
        time.sleep(0.3)
        zk.delete("/recipes/leader-holder")

    election.run(lead)


def worker_counter(zk, wid):
    c = Counter(zk, "/recipes/counter")
    for _ in range(COUNTER_ROUNDS):
        c += 1


def worker_barrier(zk, wid):
    b = Barrier(zk, "/recipes/barrier")
    zk.create(f"/recipes/waiting/{wid}", b"", ephemeral=True)
    assert b.wait(timeout=60), "barrier never released"
    released = time.time()
    zk.create(f"/recipes/released/{wid}", json.dumps(released).encode())


def driver(hosts):
    hosts = hosts.split(",")
    zk = client(",".join(hosts))
    zk.ensure_path("/recipes")
    me = os.path.abspath(__file__)

    def spawn(kind):
        return [subprocess.Popen([sys.executable, me, kind, hosts[i % len(hosts)], f"w{i}"],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                for i in range(WORKERS)]

    def join(procs, what):
        for p in procs:
            out, _ = p.communicate(timeout=90)
            assert p.returncode == 0, f"{what} worker failed ({p.returncode}):\n{out}"

    # Lock: mutual exclusion, so the unprotected counter is exact.
    zk.create("/recipes/lock-count", b"0")
    join(spawn("lock"), "lock")
    zk.sync("/recipes")
    count = int(zk.get("/recipes/lock-count")[0])
    assert count == WORKERS * LOCK_ROUNDS, f"lost updates under the lock: {count}"
    print("lock: ok", flush=True)

    # Election: every candidate leads once, never two at a time.
    zk.ensure_path("/recipes/elected")
    join(spawn("election"), "election")
    zk.sync("/recipes")
    leaders = [zk.get("/recipes/elected/" + c)[0].decode()
               for c in sorted(zk.get_children("/recipes/elected"))]
    assert sorted(leaders) == sorted(f"w{i}" for i in range(WORKERS)), leaders
    print("election: ok", flush=True)

    # Counter: exact count from concurrent CAS increments.
    join(spawn("counter"), "counter")
    c = Counter(zk, "/recipes/counter")
    assert c.value == WORKERS * COUNTER_ROUNDS, c.value
    print("counter: ok", flush=True)

    # Barrier: nobody passes before it is removed, everybody passes after.
    zk.ensure_path("/recipes/waiting")
    zk.ensure_path("/recipes/released")
    barrier = Barrier(zk, "/recipes/barrier")
    barrier.create()
    procs = spawn("barrier")
    deadline = time.time() + 60
    while len(zk.get_children("/recipes/waiting")) < WORKERS and time.time() < deadline:
        time.sleep(0.05)
    assert len(zk.get_children("/recipes/waiting")) == WORKERS, "workers did not arrive"
    time.sleep(0.5)
    assert zk.get_children("/recipes/released") == [], "released before the barrier was removed"
    removed = time.time()
    barrier.remove()
    join(procs, "barrier")
    zk.sync("/recipes")
    rel = [json.loads(zk.get("/recipes/released/" + c)[0])
           for c in zk.get_children("/recipes/released")]
    assert len(rel) == WORKERS and all(t >= removed - 0.05 for t in rel), (removed, rel)
    print("barrier: ok", flush=True)
    zk.stop()


def main():
    kind = sys.argv[1]
    if kind == "driver":
        driver(sys.argv[2])
        return
    zk = client(sys.argv[2])
    {"lock": worker_lock, "election": worker_election, "counter": worker_counter,
     "barrier": worker_barrier}[kind](zk, sys.argv[3])
    zk.stop()


if __name__ == "__main__":
    main()
