#!/usr/bin/env python3
"""Search figures for `make bench` (`GET /posts?q=`), or alone:
`python3 scripts/bench_search.py [POSTS]` (release binaries must be built).

On the seed's demo data (POSTS posts, 24 to 40 words each drawn by Zipf's law from
bin/seed/src/words.txt):
  - the time `web reindex` takes to build the index from every post;
  - p50 and p99 latency at one connection (sequential requests on one keep-alive
    connection) for one-word, two-word, prefix and phrase queries, each kind
    cycling through many different queries;
  - throughput at 64 connections (wrk) over all kinds mixed.
The words come from the long tail of the vocabulary (ranks 500 to 4000 of 5000,
see BAND); a query for one of the most common words, which matches most posts, is
measured for reference.
"""

import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (the servers, environment and log of make bench)

ROOT = Path(__file__).resolve().parent.parent
REL = ROOT / "target" / "release"
POSTS, USERS = 1_000_000, 1000
CONNECTIONS = 64
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
# Requests per kind at one connection (cycling through its queries).
SAMPLES = 400
P99_TARGET_MS, BUILD_TARGET_S = 20.0, 60.0
KINDS = ["one word", "two words", "prefix", "phrase"]
# Vocabulary ranks the query words come from (of 5 000; Zipf's law puts each of
# them in roughly 0.1% to 0.8% of the posts, as a content word of real text).
BAND = (500, 4000)


def vocabulary():
    words = []
    for line in (ROOT / "bin" / "seed" / "src" / "words.txt").read_text().splitlines():
        for word in [] if line.startswith("#") else line.split():
            if word not in words:
                words.append(word)
    return words


def get(conn, path):
    conn.request("GET", path)
    reply = conn.getresponse()
    body = reply.read()
    if reply.status != 200:
        raise RuntimeError(f"GET {path}: {reply.status} {body[:200]!r}")
    return json.loads(body)


def queries(conn, posts):
    """Queries of each kind, the same on every run."""
    words = vocabulary()
    band = [w for w in words[BAND[0]:BAND[1]] if w.isascii() and len(w) >= 5]
    one = band[::37][:40]
    two = [f"{a} {b}" for a, b in zip(band[5::41], band[11::43])][:40]
    # The first five letters of a word, typed: a prefix that several words share.
    prefix = [w[:5] for w in band[17::47]][:40]
    # Phrases that occur: two neighbouring words of demo posts, neither of them
    # among the 100 most common words.
    common = set(words[:100])
    phrase = []
    for post_id in range(1, posts + 1, max(1, posts // 120)):
        try:
            content = get(conn, f"/posts/{post_id}")["content"].split()
        except RuntimeError:
            continue
        for a, b in zip(content[10:], content[11:]):
            if a not in common and b not in common:
                phrase.append(f'"{a} {b}"')
                break
    return {"one word": one, "two words": two, "prefix": prefix, "phrase": phrase[:40],
            "common word (reference)": [w for w in words[:12] if len(w) >= 3]}


def path_of(q):
    return "/posts?q=" + urllib.parse.quote(q)


def latencies(port, table):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out = {}
    for kind, qs in table.items():
        times, hits = [], 0
        for q in qs[:5]:  # warm the page cache and the statement path
            get(conn, path_of(q))
        samples = SAMPLES if "reference" not in kind else SAMPLES // 4
        for i in range(samples):
            q = qs[i % len(qs)]
            started = time.perf_counter()
            page = get(conn, path_of(q))
            times.append((time.perf_counter() - started) * 1000)
            hits += len(page["items"])
        times.sort()
        out[kind] = {"p50_ms": statistics.median(times),
                     "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))],
                     "queries": len(qs), "requests": samples,
                     "items_per_page": hits / samples, "example": qs[0]}
        bench.log(f"  {kind}: p50 {out[kind]['p50_ms']:.2f} ms, p99 {out[kind]['p99_ms']:.2f} ms")
    conn.close()
    return out


def throughput(port, table):
    paths = [path_of(q) for kind in KINDS for q in table[kind]]
    script = "paths = {" + ",".join(json.dumps(p) for p in paths) + "}\n" + """
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n % #paths) + 1])
end
done = function(summary, latency, requests)
  io.write(string.format("JSON {\\"requests\\": %d, \\"seconds\\": %f, \\"p50_us\\": %d, \\"p99_us\\": %d, \\"non2xx\\": %d, \\"errors\\": %d}\\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency",
                              "-s", f.name, f"http://127.0.0.1:{port}"],
                             check=True, text=True, capture_output=True).stdout
    finally:
        os.unlink(f.name)
    r = json.loads(re.search(r"^JSON (.*)$", out, re.M).group(1))
    r["rps"] = r["requests"] / r["seconds"]
    bench.log(f"  {CONNECTIONS} connections: {r['rps']:.0f} req/s, p99 {r['p99_us'] / 1000:.1f} ms")
    return r


def seed(folder, posts=POSTS, users=USERS):
    """The demo file of `posts` posts in `folder`, seeded with the triggers on (so
    each post is indexed as it comes): (path, seconds the seeding took)."""
    bench.log(f"search: seeding {posts} posts (the triggers index them as they come)...")
    started = time.perf_counter()
    db = bench.prepare_db(folder, users, posts)
    return db, time.perf_counter() - started


def measure(server_class, env_for, posts=POSTS, users=USERS, seeded=None):
    """Builds the index again, loads the server. `server_class` and `env_for` are
    bench.py's (so both scripts start servers alike); `seeded` is what seed()
    returned for a file of `posts` posts that others read first (make bench's
    studio), else this seeds one of its own."""
    r = {"posts": posts}
    with tempfile.TemporaryDirectory() as own:
        db, r["seed_s"] = seeded or seed(own, posts, users)
        folder = db.parent
        env = env_for(db)
        bench.log("search: web reindex (the index built again from every post)...")
        started = time.perf_counter()
        subprocess.run([str(REL / "web"), "reindex"], env=env, cwd=folder, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        r["build_s"] = time.perf_counter() - started
        bench.log(f"  index built in {r['build_s']:.1f} s")
        r["file_mib"] = db.stat().st_size / 2**20
        server = server_class([str(REL / "web"), "serve"], env, folder)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            table = queries(conn, posts)
            conn.close()
            bench.log("search: latency at one connection...")
            r["latency"] = latencies(server.port, table)
            bench.log(f"search: throughput at {CONNECTIONS} connections...")
            r["throughput"] = throughput(server.port, table)
        finally:
            server.stop()
    return r


def evaluate(s, targets):
    for kind in KINDS:
        p99 = s["latency"][kind]["p99_ms"]
        targets.append({"name": f"search, {kind}: p99 at one connection ({s['posts']:,} posts)",
                        "value": f"{p99:.2f} ms", "target": f"< {P99_TARGET_MS:.0f} ms",
                        "pass": p99 < P99_TARGET_MS})
    targets.append({"name": f"search index build, {s['posts']:,} posts (web reindex)",
                    "value": f"{s['build_s']:.1f} s", "target": f"< {BUILD_TARGET_S:.0f} s",
                    "pass": s["build_s"] < BUILD_TARGET_S})
    t = s["throughput"]
    targets.append({"name": f"search at {CONNECTIONS} connections: non-2xx / errors",
                    "value": f"{t['non2xx']} / {t['errors']}", "target": "0 / 0",
                    "pass": t["non2xx"] == 0 and t["errors"] == 0})


def lines(s):
    out = ["", f"| search, {s['posts']:,} demo posts, 1 connection | example | p50 | p99 | items/page |",
           "|---|---|---:|---:|---:|"]
    for kind, l in s["latency"].items():
        out.append(f"| {kind} ({l['queries']} queries, {l['requests']} requests) | `{l['example']}` "
                   f"| {l['p50_ms']:.2f} ms | {l['p99_ms']:.2f} ms | {l['items_per_page']:.1f} |")
    t = s["throughput"]
    out += ["", f"| search, {CONNECTIONS} connections, kinds mixed | req/s | p50 | p99 | non-2xx | errors |",
            "|---|---:|---:|---:|---:|---:|",
            f"| GET /posts?q= | {t['rps']:.0f} | {t['p50_us'] / 1000:.2f} ms | {t['p99_us'] / 1000:.2f} ms "
            f"| {t['non2xx']} | {t['errors']} |",
            "", f"Index build (`web reindex`): {s['build_s']:.1f} s; seeding with the triggers on: "
            f"{s['seed_s']:.1f} s; file {s['file_mib']:.0f} MiB."]
    return out


def main():
    posts = int(sys.argv[1]) if len(sys.argv) > 1 else POSTS
    bench.ensure_wrk()
    s = measure(bench.Server, bench.env_for, posts=posts)
    targets = []
    evaluate(s, targets)
    print("\n".join(lines(s)))
    for t in targets:
        print(f"{t['name']}: {t['value']} (goal {t['target']}) {'pass' if t['pass'] else 'FAIL'}")
    print(json.dumps(s, indent=2))


if __name__ == "__main__":
    main()
