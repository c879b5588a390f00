#!/usr/bin/env python3
"""Interleaved rounds of several servers under the same wrk loads, for the A/Bs of
`make bench` (scripts/bench_references.py, scripts/bench_writes.py) and for
one-off A/Bs of two builds or two settings.

Each server runs pinned to one core and wrk to the other (on a machine with at
least two), so that servers are compared per core and wrk does not take the
server's CPU. The order of the servers rotates each round, so that a slow spell of
a shared machine hits each alike; what counts is the median of the per-round
ratios. Besides requests per second, each load reports the server's CPU time per
request (user + system, from /proc), steadier on a busy machine, and the time the
hypervisor took the server's core during the round (steal).

Alone, an A/B of two builds or settings on a fresh demo database:
  python3 scripts/bench_ab.py --mode get --rounds 8 \\
      A=target/ab/web-before B=target/release/web
  python3 scripts/bench_ab.py --mode get --seed-with target/ab/old \\
      BEFORE=target/ab/web-before AFTER=target/ab/web-pg
  python3 scripts/bench_ab.py --mode create NORMAL=:SQLITE_SYNCHRONOUS=NORMAL \\
      FULL=:SQLITE_SYNCHRONOUS=FULL
BENCH_PIN=0 runs them without pinning. A variant is NAME=BINARY[:KEY=VALUE,...]: the binary defaults to the release
`web`, and one named web* is run as `web serve`.
"""

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

# BENCH_PIN=0 leaves every process free to run on any core.
PINNED = (os.cpu_count() or 1) >= 2 and os.environ.get("BENCH_PIN") != "0"
SERVER_CPU, WRK_CPU = "1", "0"
WARM_UP_SECONDS = 1


class Variant:
    """One server to measure: a name, its command, its settings and folder."""

    def __init__(self, name, argv, env=None, cwd=None):
        self.name, self.argv, self.env, self.cwd = name, argv, env or {}, cwd

    def start(self, db, folder):
        argv = (["taskset", "-c", SERVER_CPU] if PINNED else []) + self.argv
        return bench.Server(argv, bench.env_for(db, **self.env), self.cwd or folder)


def series(variants, modes, db, folder, rounds=None, seconds=None, label="", fresh=False):
    """{variant: {mode: [result of each round]}}, with the variants' order rotated
    each round; each result also has the server's memory after that load. By
    default, `make bench`'s rounds. `fresh`: every round starts from the file as
    it was before the first (for writes, which otherwise grow it round after round
    and make later rounds slower than earlier ones)."""
    rounds = rounds or bench.ROUNDS
    seconds = seconds or bench.ROUND_SECONDS
    out = {v.name: {m: [] for m in modes} for v in variants}
    pristine = Path(folder) / "pristine.db"
    # The core whose steal a round reports: the server's, or all when not pinned.
    cpu = SERVER_CPU if PINNED else None
    if fresh:
        # Whole in the file itself, so that a copy of the file is the database.
        checkpoint(db)
        shutil.copyfile(db, pristine)
    for i in range(rounds):
        order = variants[i % len(variants):] + variants[:i % len(variants)]
        for v in order:
            bench.log(f"{label}{v.name} (round {i + 1} of {rounds})...")
            if fresh:
                # Whatever WAL the last server left belongs to the file replaced here.
                for suffix in ("-wal", "-shm"):
                    Path(f"{db}{suffix}").unlink(missing_ok=True)
                shutil.copyfile(pristine, db)
                # On disk before the server starts: otherwise the kernel writes the
                # copy back ~30 s later, in the middle of a later round's load.
                os.sync()
            server = v.start(db, folder)
            try:
                bench.wrk(server.port, modes[0], seconds=WARM_UP_SECONDS,
                          cpus=WRK_CPU if PINNED else None)
                for mode in modes:
                    # How the machine fared in the round: the server's core taken by
                    # the hypervisor, the disk's waits.
                    disk = bench.disk_counters(db)
                    r = bench.measured_wrk(server, mode, seconds,
                                           cpus=WRK_CPU if PINNED else None, steal_cpu=cpu)
                    r.update(VmHWM=server.peak_rss_mib(), RssAnon=server.rss_anon_mib(),
                             disk=bench.disk_waits(disk, bench.disk_counters(db)))
                    out[v.name][mode].append(r)
            finally:
                server.stop()
                # A server that leaves its WAL behind (the seed's stack does) would
                # make the next one read through it; a fresh round replaces the file.
                if not fresh:
                    checkpoint(db)
    return out


def checkpoint(db):
    """Copies the WAL into the file and empties it."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def ratio(results, a, b, mode, key="rps"):
    """Median and range of the per-round ratios a/b of `key`."""
    # A round where b answered nothing at all (every request past wrk's timeout) is
    # an infinite ratio, not a crash.
    return bench.median_and_range(x[key] / y[key] if y[key] else float("inf") for x, y in
                                  zip(results[a][mode], results[b][mode]))


def median_round(runs):
    return bench.median_item(runs, key=lambda r: r["rps"])


def standalone(measure, evaluate, record_lines):
    """Runs one section of `make bench` alone, on a fresh demo database, and prints
    its table and targets (nothing is recorded)."""
    bench.ensure_wrk()
    with tempfile.TemporaryDirectory() as folder:
        db = bench.prepare_db(folder, bench.USERS, bench.POSTS)
        results = measure(db, folder)
    targets = []
    evaluate(results, targets)
    print("\n".join(record_lines(results)))
    for t in targets:
        print(f"{t['name']}: {t['value']} (goal {t['target']}) {bench.verdict(t)}")
    return 0


def parse_variant(text):
    name, _, rest = text.partition("=")
    binary, _, settings = rest.partition(":")
    env = dict(kv.split("=", 1) for kv in settings.split(",") if kv)
    binary = str(Path(binary).resolve()) if binary else str(bench.REL / "web")
    # `web` serves with `serve`; the examples (ceiling, reference) just serve.
    return Variant(name, [binary] + (["serve"] if Path(binary).name.startswith("web") else []),
                   env)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", default="get", help="get, list, create or mix")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--json", help="also write every round's figures to this file")
    parser.add_argument("--fresh", action="store_true",
                        help="start every round from the demo file as it was made (for writes)")
    parser.add_argument("--seed-with", metavar="DIR", default=bench.REL,
                        help="the folder whose `web` and `seed` make the demo database "
                             "(a build older than the newest migration needs its own)")
    parser.add_argument("variants", nargs="+", metavar="NAME=BINARY[:KEY=VALUE,...]")
    args = parser.parse_args()
    variants = [parse_variant(v) for v in args.variants]
    bench.ensure_wrk()
    with tempfile.TemporaryDirectory() as folder:
        db = bench.prepare_db(folder, bench.USERS, bench.POSTS, args.seed_with)
        results = series(variants, [args.mode], db, folder, args.rounds, args.seconds,
                         fresh=args.fresh)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    base = variants[0].name
    print(f"\n{args.mode}, {args.rounds} rounds of {args.seconds} s, "
          f"{'pinned to one core each' if PINNED else 'not pinned'}; {bench.machine()}")
    print("| round | " + " | ".join(f"{v.name} req/s (CPU µs/req; steal ms)" for v in variants)
          + " |")
    print("|---|" + "---:|" * len(variants))
    for i in range(args.rounds):
        cells = [f"{results[v.name][args.mode][i]['rps']:.0f} "
                 f"({results[v.name][args.mode][i]['cpu_us']:.1f}; "
                 f"{results[v.name][args.mode][i]['steal_ms']:.0f})" for v in variants]
        print(f"| {i + 1} | " + " | ".join(cells) + " |")
    # Each against the first, and each against the one before it.
    pairs = [(v.name, base) for v in variants[1:]]
    pairs += [(b.name, a.name) for a, b in zip(variants[1:], variants[2:])]
    for name, other in pairs:
        mid, low, high = ratio(results, name, other, args.mode)
        cpu, _, _ = ratio(results, name, other, args.mode, key="cpu_us")
        p99 = statistics.median(r["p99_us"] for r in results[name][args.mode]) / 1000
        other_p99 = statistics.median(r["p99_us"] for r in results[other][args.mode]) / 1000
        print(f"{name}/{other}: req/s median ratio {mid:.2f} ({low:.2f}-{high:.2f}), "
              f"CPU per request {cpu:.2f}; p99 {p99:.2f} ms against {other_p99:.2f} ms")
    for v in variants:
        mem = results[v.name][args.mode][-1]
        print(f"{v.name}: peak RSS {mem['VmHWM']:.1f} MiB, RssAnon {mem['RssAnon']:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
