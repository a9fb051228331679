#!/usr/bin/env python3
"""The table of bench/zk/compare.sh: reads RESULTS/{zookeeper,weir}-WORKLOAD-RUN.json (reports of
`weir bench zk`) and fsync.json (fio), prints the markdown table (each system's median run by
ops/s), and writes DEST.md and DEST.json.

Usage: table.py RESULTS DEST RUNS
"""
import json
import os
import sys

out, dest, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
WORKLOADS = [("create-seq", "sequential create"), ("set", "set 1 KiB"), ("get", "get 1 KiB"),
             ("kill", "set 1 KiB, leader killed")]


def load1(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {"failed": True}


def runs_of(system, workload):
    return [load1(f"{system}-{workload}-{r}.json") for r in range(1, runs + 1)]


def median(rs):
    ok = sorted((x for x in rs if x.get("ops_per_s") is not None), key=lambda x: x["ops_per_s"])
    return dict(ok[(len(ok) - 1) // 2]) if ok else {"failed": True}


def num(v, digits=2):
    if v is None:
        return "—"
    return f"{v:,.0f}" if digits == 0 else f"{v:.{digits}f}"


raw = {"runs": runs}
lines = [
    f"| workload | ZooKeeper ops/s | weir ops/s | weir/ZooKeeper | ZooKeeper p50 ms | weir p50 ms "
    f"| ZooKeeper p99 ms | weir p99 ms | errors ZooKeeper / weir |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
]
every = []
for w, label in WORKLOADS:
    zs, xs = runs_of("zookeeper", w), runs_of("weir", w)
    z, x = median(zs), median(xs)
    zr, xr = z.get("ops_per_s"), x.get("ops_per_s")
    ratio = xr / zr if zr and xr is not None else None
    raw[w] = {"zookeeper": zs, "weir": xs, "ratio_of_medians": ratio}
    lines.append(
        f"| {label} | {num(zr, 0)} | {num(xr, 0)} | {('%.2fx' % ratio) if ratio else '—'} "
        f"| {num(z.get('p50_ms'))} | {num(x.get('p50_ms'))} | {num(z.get('p99_ms'))} "
        f"| {num(x.get('p99_ms'))} | {z.get('errors', '—')} / {x.get('errors', '—')} |")
    for name, rs in (("ZooKeeper", zs), ("weir", xs)):
        every.append(f"{name} {w}: " + ", ".join(num(r.get("ops_per_s"), 0) for r in rs))

lines += ["", "| leader kill -9, every run | ZooKeeper | weir |", "|---|---:|---:|"]
zs, xs = raw["kill"]["zookeeper"], raw["kill"]["weir"]
gaps = lambda rs: ", ".join(num(r.get("gap_after_kill_ms"), 0) for r in rs)
recon = lambda rs: ", ".join(str(r.get("reconnects", "—")) for r in rs)
lines.append(f"| longest gap without a successful write after the kill, ms | {gaps(zs)} | {gaps(xs)} |")
lines.append(f"| reconnects | {recon(zs)} | {recon(xs)} |")
lines += ["", "ops/s of every run: " + "; ".join(every) + "."]
fs = load1("fsync.json")
try:
    pct = fs["jobs"][0]["sync"]["lat_ns"]["percentile"]
    raw["fsync_p50_ms"], raw["fsync_p99_ms"] = pct["50.000000"] / 1e6, pct["99.000000"] / 1e6
    lines += ["", f"fdatasync after a 4 KiB write on this disk (fio, same run): "
                  f"p50 {raw['fsync_p50_ms']:.2f} ms, p99 {raw['fsync_p99_ms']:.2f} ms."]
except (KeyError, IndexError, TypeError):
    pass
table = "\n".join(lines)
print(table)
with open(dest + ".md", "w") as f:
    f.write(table + "\n")
with open(dest + ".json", "w") as f:
    json.dump(raw, f, indent=1)
print(f"\n(raw reports: {out}; table and JSON: {dest}.md, {dest}.json)")
