#!/usr/bin/env python3
"""References in the same run, for `make bench`: `web serve` beside a minimal
actix-web + rusqlite server (bin/web/examples/reference.rs: inline reads, cached
statements, one transaction per write, no auth) and the seed's own stack, Node
with drizzle-orm and better-sqlite3 (bench/node: the seed's schema.ts and
connection setup), answering the same three loads (bench/wrk.lua, unchanged) on
the same demo file, at the same `SQLITE_SYNCHRONOUS`. Each server is pinned to
one core and wrk to the other (scripts/bench_ab.py), in interleaved rounds.

The seed's stack is installed from npm into target/bench-node when `node` and
`npm` are present; without them its row is skipped, and the output says so.

Alone: python3 scripts/bench_references.py (builds what it runs).
"""

import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402
import bench_ab  # noqa: E402

# Not bench.ROOT: bench.py imports this module before it has defined anything.
ROOT = Path(__file__).resolve().parent.parent
NODE_SOURCE = ROOT / "bench" / "node"
NODE_DIR = ROOT / "target" / "bench-node"
LOADS = [("GET /posts/{id}", "get"), ("GET /posts?limit=20", "list"), ("POST /posts", "create")]
WEB, REFERENCE, SEED = "web", "rusqlite reference", "seed stack (Node)"


# What bench.py's release build adds for these references.
EXAMPLES = ["--example", "reference"]


def build():
    bench.run(["cargo", "build", "--release", "-p", "web", "--bins"] + EXAMPLES, cwd=bench.ROOT)


def seed_stack():
    """The seed's stack as a variant, installed (again when its package.json
    changed); or None and the reason it is skipped."""
    missing = [tool for tool in ("node", "npm") if not shutil.which(tool)]
    if missing:
        return None, f"{' and '.join(missing)} not installed"
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    for source in NODE_SOURCE.iterdir():
        shutil.copy(source, NODE_DIR / source.name)
    wanted = (NODE_SOURCE / "package.json").read_text()
    installed = NODE_DIR / ".installed-package.json"
    if not installed.exists() or installed.read_text() != wanted:
        bench.log("installing the seed's stack from npm into target/bench-node...")
        try:
            bench.run(["npm", "install", "--no-audit", "--no-fund"], cwd=NODE_DIR,
                      stdout=subprocess.DEVNULL)
        except subprocess.CalledProcessError as err:
            return None, f"npm install failed ({err.returncode})"
        installed.write_text(wanted)
    # node itself, not a wrapper: its pid is the server's, for CPU and memory.
    return bench_ab.Variant(SEED, ["node", "--import", "tsx", "server.ts"], cwd=NODE_DIR), None


def measure(db, folder):
    variants = [bench_ab.Variant(WEB, [str(bench.REL / "web"), "serve"]),
                bench_ab.Variant(REFERENCE, [str(bench.REL / "examples" / "reference")])]
    seed, skipped = seed_stack()
    if seed:
        variants.append(seed)
    else:
        bench.log(f"references: skipping the seed's stack: {skipped}")
    rounds = bench_ab.series(variants, [mode for _, mode in LOADS], db, folder,
                             label="references: ")
    return {"rounds": rounds, "skipped": skipped}


def http_rows(refs):
    """The median round of each server and load, as rows of the run's table and chart."""
    return {f"1 core: {server} {name}": bench_ab.median_round(refs["rounds"][server][mode])
            for name, mode in LOADS for server in refs["rounds"]}


def evaluate(refs, targets):
    rounds = refs["rounds"]
    ratio, low, high = bench_ab.ratio(rounds, WEB, REFERENCE, "create")
    targets.append({"name": "POST /posts, 64 connections, vs rusqlite reference (1 core each), "
                            "median round (range)",
                    "value": f"{ratio:.2f}x ({low:.2f}-{high:.2f}x)", "target": ">= 1.0x",
                    "pass": ratio >= 1.0})
    for name, mode in LOADS[:2]:
        ratio, low, high = bench_ab.ratio(rounds, WEB, REFERENCE, mode)
        targets.append({"name": f"(reference) {name} vs rusqlite reference (1 core each)",
                        "value": f"{ratio:.2f}x ({low:.2f}-{high:.2f}x)", "target": "-",
                        "pass": True})
    for name, mode in LOADS:
        if SEED in rounds:
            ratio, low, high = bench_ab.ratio(rounds, WEB, SEED, mode)
            value = f"{ratio:.1f}x ({low:.1f}-{high:.1f}x)"
        else:
            value = f"skipped: {refs['skipped']}"
        targets.append({"name": f"(reference) {name} vs the seed's stack (1 core each)",
                        "value": value, "target": "-", "pass": True})


def record_lines(refs):
    rounds = refs["rounds"]
    servers = list(rounds)
    lines = ["", f"References, each server pinned to one core and wrk to the other, "
             f"{bench.ROUNDS} interleaved rounds of {bench.ROUND_SECONDS} s, median round "
             f"(CPU µs per request in brackets)"
             + (f"; the seed's stack skipped: {refs['skipped']}" if refs["skipped"] else "")
             + ":", "",
             "| load | " + " | ".join(servers) + " |", "|---|" + "---:|" * len(servers)]
    for name, mode in LOADS:
        cells = []
        for server in servers:
            r = bench_ab.median_round(rounds[server][mode])
            cpu = statistics.median(x["cpu_us"] for x in rounds[server][mode])
            cells.append(f"{r['rps']:.0f} req/s, p99 {r['p99_us'] / 1000:.1f} ms ({cpu:.0f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def main():
    build()
    return bench_ab.standalone(measure, evaluate, record_lines)


if __name__ == "__main__":
    sys.exit(main())
