#!/usr/bin/env python3
"""The studio's figures: server time of its pages over 1 000 000 posts.

Builds the release binaries, makes a database of STUDIO_POSTS demo posts, starts
`studio` on a free port, signs in through the one-time URL it prints, and asks
each page many times one after another, reading the server's own time from the
`Server-Timing` header (the wall time seen by the client is recorded beside it).
The target: the posts page, p50 under 50 ms.

`scripts/bench.py` calls `measure()`, `evaluate()` and `record_lines()`; run alone
(`python3 scripts/bench_studio.py`) it measures, prints and appends its own
section to BENCHMARKS.md.
"""

import datetime
import http.client
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (make bench's build, demo data, ports and machine)

ROOT = Path(__file__).resolve().parent.parent
REL = ROOT / "target" / "release"
POSTS = int(os.environ.get("STUDIO_POSTS", "1000000"))
USERS = 1000
REQUESTS = int(os.environ.get("STUDIO_REQUESTS", "200"))
TARGET_MS = 50.0
# The pages measured; the first is the one the target is about.
PAGES = {
    "posts, first page": "/t/posts",
    "posts, a page in the middle": f"/t/posts?after={POSTS // 2}",
    "posts by one author": "/t/posts?f=author_id:eq:demo-000500",
    "posts sorted by author": "/t/posts?sort=author_id&dir=asc",
    "posts, search box (no index)": "/t/posts?q=rust",
    "tables with their counts": "/",
    "one post": f"/t/posts/row?key={POSTS // 2}",
}


def prepare(folder):
    """The demo file, and the environment that points at it."""
    return bench.env_for(bench.prepare_db(folder, USERS, POSTS))


def get(port, path, cookie=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Cookie": f"studio_session={cookie}"} if cookie else {}
    started = time.perf_counter()
    conn.request("GET", path, headers=headers)
    reply = conn.getresponse()
    body = reply.read()
    wall = (time.perf_counter() - started) * 1000
    conn.close()
    return reply, body, wall


def server_ms(reply):
    match = re.search(r"dur=([0-9.]+)", reply.getheader("Server-Timing") or "")
    return float(match.group(1)) if match else float("nan")


def measure(db=None):
    """{page: {server_p50_ms, server_p95_ms, wall_p50_ms}} over POSTS posts, with
    the release binaries built (make bench builds them first): on `db`, a demo
    file of POSTS posts and USERS users that make bench shares with the search
    figures, else on one of its own."""
    with tempfile.TemporaryDirectory() as folder:
        env = bench.env_for(db) if db else prepare(folder)
        port = bench.free_port()
        env["STUDIO_BIND"] = f"127.0.0.1:{port}"
        studio = subprocess.Popen([str(REL / "studio")], env=env, cwd=folder, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            login = studio.stdout.readline().strip()
            path = login.split(str(port), 1)[1]
            reply, _, _ = get(port, path)
            cookie = re.search(r"studio_session=([0-9a-f]+)", reply.getheader("Set-Cookie")).group(1)
            out = {}
            for name, page in PAGES.items():
                bench.log(f"studio: {name} ({REQUESTS} requests)...")
                server, wall = [], []
                for _ in range(REQUESTS):
                    reply, _, ms = get(port, page, cookie)
                    assert reply.status == 200, (page, reply.status)
                    server.append(server_ms(reply))
                    wall.append(ms)
                server.sort()
                out[name] = {
                    "server_p50_ms": statistics.median(server),
                    "server_p95_ms": server[int(len(server) * 0.95) - 1],
                    "wall_p50_ms": statistics.median(wall),
                }
            return {"posts": POSTS, "requests": REQUESTS, "pages": out}
        finally:
            studio.terminate()
            studio.wait(timeout=10)


def evaluate(s):
    """The studio's target row, in bench.py's shape."""
    p50 = s["pages"]["posts, first page"]["server_p50_ms"]
    return [{"name": f"studio posts page at {s['posts']:,} posts: server time p50",
             "value": f"{p50:.2f} ms", "target": f"< {TARGET_MS:.0f} ms", "pass": p50 < TARGET_MS}]


def record_lines(s):
    lines = ["", f"| studio page ({s['posts']:,} posts, {s['requests']} requests one at a time) "
             "| server p50 | server p95 | client p50 |", "|---|---:|---:|---:|"]
    for name, p in s["pages"].items():
        lines.append(f"| {name} | {p['server_p50_ms']:.2f} ms | {p['server_p95_ms']:.2f} ms "
                     f"| {p['wall_p50_ms']:.2f} ms |")
    return lines


def main():
    # make bench's own build (one cargo run for every binary and example), so
    # that neither run rebuilds what the other built.
    bench.build()
    s = measure()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = bench.machine()
    lines = [f"\n## {date}: studio (`python3 scripts/bench_studio.py`)\n",
             f"Machine: {machine}, shared: other builds and tests may run at the same "
             "time, and the figures are as measured."]
    lines += record_lines(s)
    lines += ["", "| target | measured | goal | |", "|---|---:|---:|---|"]
    for t in evaluate(s):
        lines.append(f"| {t['name']} | {t['value']} | {t['target']} | {'pass' if t['pass'] else 'FAIL'} |")
    text = "\n".join(lines) + "\n"
    print(text)
    with (ROOT / "BENCHMARKS.md").open("a") as f:
        f.write(text)
    return 0 if all(t["pass"] for t in evaluate(s)) else 1


if __name__ == "__main__":
    sys.exit(main())
