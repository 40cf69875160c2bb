#!/usr/bin/env python3
"""What one appended event costs the SQLite server: bytes and write calls,
CPU time, and which B-trees the WAL's frames belong to.

Where loadbench says how fast appends go, this says why. It drives the
load benchmark's own server (the bench binary re-executed with `--serve`)
with 100 operations appending as fast as their commits come back, reads
the server's /proc counters over a few seconds, then copies the database
and its WAL while the server runs and maps every WAL frame's page to its
table or index with SQLite's `dbstat`.

    CARGO_PROFILE_BENCH_OPT_LEVEL=3 CARGO_PROFILE_BENCH_LTO=false CARGO_PROFILE_BENCH_CODEGEN_UNITS=16 \\
      cargo bench -p optrail-server --bench loadbench --no-run   # prints the binary's path
    python3 server/benches/append_cost.py target/release/deps/loadbench-HASH [another build …]

Give two builds to compare them: they run alternately, three times each.
"""

import collections
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

OPERATIONS = 100
SECONDS = 3


def measure(binary):
    work = tempfile.mkdtemp(prefix="append-cost-")
    db = os.path.join(work, "optrail.db")
    server = subprocess.Popen([binary, "--serve", db, "512"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    base = server.stdout.readline().strip().removeprefix("listening on ")

    def call(method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(base + path, data=data, method=method,
                                         headers={"content-type": "application/json"})
        return urllib.request.urlopen(request, timeout=10).read()

    params = {"amount": 1, "description": "cost", "stepMs": 0, "steps": 10000, "failureRate": 0}
    ids = {json.loads(call("POST", "/operations", {"kind": "payment", "params": params}))["id"]
           for _ in range(OPERATIONS)}

    def heads():
        total, before = 0, None
        while True:
            page = json.loads(call("GET", "/operations?limit=100"
                                   + (f"&before={before}" if before else "")))
            total += sum(o["head"] for o in page["operations"] if o["id"] in ids)
            before = page.get("nextBefore")
            if not before:
                return total

    def counters():
        io = dict(line.split(": ") for line in open(f"/proc/{server.pid}/io").read().splitlines())
        stat = open(f"/proc/{server.pid}/stat").read().split(") ")[1].split()
        return int(io["wchar"]), int(io["syscw"]), int(stat[11]) + int(stat[12])

    time.sleep(0.5)
    h0, c0, t0 = heads(), counters(), time.time()
    time.sleep(SECONDS)
    h1, c1, t1 = heads(), counters(), time.time()
    # The WAL as it stands, and the database beside it.
    snapshot = os.path.join(work, "snapshot")
    os.mkdir(snapshot)
    shutil.copy(db, snapshot)
    shutil.copy(db + "-wal", snapshot)
    for id in ids:
        call("DELETE", f"/operations/{id}")
    server.stdin.close()
    server.wait()

    events = h1 - h0
    ticks = os.sysconf("SC_CLK_TCK")
    print(f"{os.path.basename(binary)}: {events / (t1 - t0):.0f} events/s; per event: "
          f"{(c1[0] - c0[0]) / events / 1024:.2f} KiB written in {(c1[1] - c0[1]) / events:.1f} "
          f"write calls, {(c1[2] - c0[2]) / ticks / events * 1e6:.1f} µs of server CPU")

    wal = open(os.path.join(snapshot, "optrail.db-wal"), "rb").read()
    page_size = struct.unpack(">I", wal[8:12])[0]
    pages, commits, offset = [], 0, 32
    while offset + 24 + page_size <= len(wal):
        page, size_after_commit = struct.unpack(">II", wal[offset:offset + 8])
        pages.append(page)
        commits += size_after_commit != 0
        offset += 24 + page_size
    with sqlite3.connect(os.path.join(snapshot, "optrail.db")) as snapshot_db:
        owner = {page: f"{name} {kind}" for name, page, kind
                 in snapshot_db.execute("SELECT name, pageno, pagetype FROM dbstat")}
    counts = collections.Counter(owner.get(page, "?") for page in pages)
    print(f"  WAL: {len(pages)} frames in {commits} commits; by B-tree: " + ", ".join(
        f"{name} {n / len(pages):.0%}" for name, n in counts.most_common(6)))
    shutil.rmtree(work)


if __name__ == "__main__":
    builds = sys.argv[1:]
    if not builds:
        sys.exit(__doc__)
    for _ in range(3 if len(builds) > 1 else 1):
        for build in builds:
            measure(build)
