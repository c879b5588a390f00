#!/usr/bin/env python3
"""PostgreSQL figures of `make bench`, on a local cluster (scripts/postgres.sh):

  - `web move` of the demo database (1 000 users, 100 000 posts) from SQLite into
    a fresh PostgreSQL database: rows/s as the command reports it (reading SQLite,
    writing in one transaction, committing), median of ROUNDS fresh databases;
    target >= 50 000 rows/s;
  - the HTTP loads GET /posts/{id}, GET /posts?limit=20 and POST /posts at 64
    connections against `web serve` on that PostgreSQL database; target: zero
    errors (socket errors, non-2xx, 5xx).

`scripts/bench.py` calls measure(), evaluate() and lines() on its demo database.
Alone, `python3 scripts/bench_postgres.py` builds the release binaries, seeds a demo
database, runs the same loads on SQLite too for reference (same run, same
machine), and appends its own section to BENCHMARKS.md.

BENCH_PG_PORT picks the cluster's port (default 55439); a cluster this script
started is stopped at the end.
"""

import datetime
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import bench

PORT = os.environ.get("BENCH_PG_PORT", "55439")
DATABASE = "bench_move"
MOVE_TARGET = 50_000
LOADS = [("GET /posts/{id}", "get"), ("GET /posts?limit=20", "list"), ("POST /posts", "create")]


def cluster(action):
    env = dict(os.environ, PG_PORT=PORT)
    return subprocess.run([str(bench.ROOT / "scripts" / "postgres.sh"), action], env=env,
                          text=True, capture_output=True)


def psql(url, *sql):
    args = ["psql", url, "-qtA", "-v", "ON_ERROR_STOP=1"]
    for statement in sql:
        args += ["-c", statement]
    # No NOTICE about a database that was not there to drop.
    env = dict(os.environ, PGOPTIONS="-c client_min_messages=warning")
    bench.run(args, stdout=subprocess.DEVNULL, env=env)


def fresh_database(server_url):
    """An empty database DATABASE on the cluster (dropped first when present)."""
    psql(server_url, f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)",
         f"CREATE DATABASE {DATABASE} TEMPLATE template0")
    return server_url.rsplit("/", 1)[0] + "/" + DATABASE


def move(db, folder, url):
    """One `web move` into `url`; (rows, seconds, rows/s) as it reports them."""
    out = bench.run([str(bench.REL / "web"), "move"], env=bench.env_for(db, MOVE_TO=url),
                    cwd=folder, capture_output=True).stdout
    m = re.search(r"moved (\d+) rows .* in ([\d.]+) s \((\d+) rows/s\)", out)
    if not m or "verified" not in out:
        raise RuntimeError(f"web move said: {out}")
    restore = re.search(r"of which ([\d.]+) s built the indexes", out)
    return (int(m.group(1)), float(m.group(2)), int(m.group(3)),
            float(restore.group(1)) if restore else 0.0)


def loads(env, folder, backend):
    server = bench.Server([str(bench.REL / "web"), "serve"], env, folder)
    out = {}
    for name, mode in LOADS:
        bench.log(f"load: {name} ({backend})...")
        out[name] = bench.wrk(server.port, mode)
    server.stop()
    return out


def measure(db, folder):
    """The move rounds and the HTTP loads on PostgreSQL, for the demo SQLite `db`."""
    was_running = cluster("url").returncode == 0
    started = cluster("start")
    if started.returncode != 0:
        raise RuntimeError(f"scripts/postgres.sh start: {started.stderr}")
    server_url = started.stdout.strip().splitlines()[-1]
    try:
        rounds = []
        for i in range(bench.ROUNDS):
            bench.log(f"move: SQLite to PostgreSQL (round {i + 1} of {bench.ROUNDS})...")
            url = fresh_database(server_url)
            rows, seconds, rate, restore = move(db, folder, url)
            rounds.append({"rows": rows, "seconds": seconds, "rows_per_s": rate,
                           "restore_seconds": restore})
        # The last round's copy is the database the loads run on.
        http = loads(bench.env_for(db, DATABASE_URL=url), folder, "PostgreSQL")
        version = subprocess.run(["psql", server_url, "-qtA", "-c", "SHOW server_version"],
                                 text=True, capture_output=True).stdout.strip()
    finally:
        if not was_running:
            cluster("stop")
    return {"move_rounds": rounds,
            "move": bench.median_item(rounds, key=lambda r: r["rows_per_s"]),
            "http": http, "server_version": version}


def evaluate(r):
    """Appends the PostgreSQL targets to r["targets"]."""
    pg = r["postgres"]
    rates = sorted(m["rows_per_s"] for m in pg["move_rounds"])
    rate = statistics.median(rates)
    r["targets"].append({
        "name": "web move, 100 000-post demo, SQLite to local PostgreSQL, median round (range)",
        "value": f"{rate:,.0f} rows/s ({rates[0]:,.0f}-{rates[-1]:,.0f})",
        "target": f">= {MOVE_TARGET:,} rows/s", "pass": rate >= MOVE_TARGET})
    # The copy without the indexes and keys it sets aside: mostly the search index
    # (GIN over every post's words), built once at the end inside the same transaction.
    bare = sorted(m["rows"] / max(1e-9, m["seconds"] - m.get("restore_seconds", 0.0))
                  for m in pg["move_rounds"])
    r["targets"].append({
        "name": "(reference) web move, the copy alone: without building the indexes and "
                "checking the keys set aside",
        "value": f"{statistics.median(bare):,.0f} rows/s", "target": "-", "pass": True})
    for name, h in pg["http"].items():
        bad = h["socket_errors"] + h["non2xx"]
        r["targets"].append({
            "name": f"PostgreSQL {name}, {bench.CONNECTIONS} connections: errors / 5xx "
                    f"({h['rps']:.0f} req/s)",
            "value": f"{bad} / {h['server_errors']}", "target": "0 / 0",
            "pass": bad == 0 and h["server_errors"] == 0})


def lines(r):
    """BENCHMARKS.md lines of the PostgreSQL figures."""
    pg = r["postgres"]
    out = ["", f"PostgreSQL {pg['server_version']}, local cluster (scripts/postgres.sh), "
               f"same machine:", "",
           "| web move, SQLite to PostgreSQL (fresh database each round) | rows | time | rows/s "
           "| of the time: indexes built, keys checked |",
           "|---|---:|---:|---:|---:|"]
    for i, m in enumerate(pg["move_rounds"]):
        out.append(f"| round {i + 1} | {m['rows']} | {m['seconds']:.2f} s | {m['rows_per_s']:,} "
                   f"| {m.get('restore_seconds', 0.0):.2f} s |")
    reference = r.get("http", {})
    out += ["", "| load on PostgreSQL | req/s | p50 | p99 | socket errors | non-2xx | 5xx "
                "| SQLite req/s, same run |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, h in pg["http"].items():
        sqlite = f"{reference[name]['rps']:.0f}" if name in reference else "-"
        out.append(f"| {name} | {h['rps']:.0f} | {h['p50_us']/1000:.2f} ms "
                   f"| {h['p99_us']/1000:.2f} ms | {h['socket_errors']} | {h['non2xx']} "
                   f"| {h['server_errors']} | {sqlite} |")
    return out


def main():
    bench.ensure_wrk()
    bench.build()
    r = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
         "machine": bench.machine(), "targets": []}
    with tempfile.TemporaryDirectory() as folder:
        db = bench.prepare_db(folder, bench.USERS, bench.POSTS)
        r["postgres"] = measure(db, folder)
        # The SQLite reference after PostgreSQL's loads, on the same demo rows (the
        # PostgreSQL copy was taken before any POST).
        r["http"] = loads(bench.env_for(db), folder, "SQLite")
    evaluate(r)
    load = os.getloadavg()
    text = "\n".join(
        [f"\n## {r['date']}: PostgreSQL (scripts/bench_postgres.py alone)\n",
         f"Machine: {r['machine']}, busy with other work (load average {load[0]:.1f} at the "
         f"end): absolute figures are low and noisy, compare within the run. "
         f"{bench.DURATION} s per load, {bench.CONNECTIONS} connections, wrk with 2 threads "
         f"on the same machine; the server on PostgreSQL with default settings "
         f"(DB_WRITERS=4)."]
        + lines(r)
        + ["", "| target | measured | goal | |", "|---|---:|---:|---|"]
        + [f"| {t['name']} | {t['value']} | {t['target']} | {'pass' if t['pass'] else 'FAIL'} |"
           for t in r["targets"]]) + "\n"
    with (bench.ROOT / "BENCHMARKS.md").open("a") as f:
        f.write(text)
    print(text)
    return 0 if all(t["pass"] for t in r["targets"]) else 1


if __name__ == "__main__":
    sys.exit(main())
