#!/usr/bin/env python3
"""Soak: the all-in-one server under a steady mixed load for a long time.

    python3 bench/soak.py [--minutes 30] [--bin target/release/ecap] [--rate R] [--write]

Seeds a fresh SQLite data dir with a history (`ecap seed --orders 100000`, so
the caches fill during the warm-up instead of over the whole run), starts
`ecap serve --demo` on it (127.0.0.1, a random port), measures the mix's
capacity (`--capacity-seconds` unpaced from the same threads) and drives it
at half of that (or `--rate`) at a fixed pace, each request on a kept-alive
connection:

  * reads (70 %): product pages, a product, categories, the dashboard, the
    admin's order list, `/api/auth/me`;
  * orders (20 %): a customer places a one-line order;
  * status moves (10 %): the admin moves an order one step along
    pending → processing → shipped → delivered.

Every `--sample` seconds it records the server's RSS, open file descriptors,
threads, database pool connections (`/metrics`), the database and WAL sizes,
and the window's request count, errors and p50/p99 latency. At the end it
checks the books: every acknowledged order is there, the product's stock
equals its starting stock minus what the orders hold, and `ecap analytics
verify` is clean. It fails (exit 1) on any 5xx or connection error, on RSS at
the end more than 10 % above the median of the three samples after the
warm-up (`--warmup` minutes), on a p99 of the last 5 minutes above 1.5 × the
p99 of the first 5 (all their requests together), on open files or pool
connections growing, or on a broken book. The report also gives each route's
p99 in the first and the last five minutes, so a drift names its route. `--write` puts the table into BENCHMARKS.md between the
`bench/soak.py` markers. Python standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START_STOCK = 10_000_000
MARK_START, MARK_END = "<!-- bench/soak.py:start -->", "<!-- bench/soak.py:end -->"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """One kept-alive connection; reconnects after an error."""

    def __init__(self, port: int):
        self.port = port
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, token: str | None = None,
                body: dict | None = None) -> tuple[int, dict | None, float]:
        headers = {"accept": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        started = time.perf_counter()
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                raw = r.read()
                took = time.perf_counter() - started
                try:
                    parsed = json.loads(raw) if raw else None
                except ValueError:
                    parsed = None
                return r.status, parsed, took
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    return 0, None, time.perf_counter() - started
        return 0, None, time.perf_counter() - started


def proc_figures(pid: int) -> dict:
    out = {"rss_kb": 0, "threads": 0, "fds": 0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss_kb"] = int(line.split()[1])
            elif line.startswith("Threads:"):
                out["threads"] = int(line.split()[1])
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        pass
    return out


def pool_connections(port: int) -> int:
    """Open database connections of every pool (idle and in use), from /metrics."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
    except OSError:
        return -1
    return sum(int(float(m)) for m in re.findall(r"^db_pool_connections\{[^}]*\} (\S+)$", text, re.M))


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--bin", default=str(ROOT / "target/release/ecap"))
    ap.add_argument("--rate", type=float, default=0.0,
                    help="requests per second in all (default: half the measured capacity)")
    ap.add_argument("--capacity-seconds", type=float, default=20.0)
    ap.add_argument("--seed-orders", type=int, default=100_000)
    ap.add_argument("--warmup", type=float, default=5.0, help="minutes before RSS must stay flat")
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--sample", type=float, default=60.0, help="seconds per sample")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()

    binary = Path(args.bin).resolve()
    if not binary.exists():
        print(f"{binary} not found: cargo build --release -p ecap", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="ecap-soak-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not re.match(r"^(DATABASE_URL|.*_DATABASE_URL|REDIS_.*|DB_.*|S3_.*)$", k)}
    env.update({"HOST": "127.0.0.1", "JWT_SECRET": "soak-secret-soak-secret-soak-secret-0123",
                "LOG_LEVEL": "warn", "RATE_LIMIT_MAX_REQUESTS": "100000000",
                "AUTH_RATE_LIMIT_MAX_REQUESTS": "100000000"})
    log = open(work / "server.log", "wb")
    if args.seed_orders:
        t0 = time.time()
        subprocess.run([str(binary), "--data-dir", str(work / "data"), "seed", "--orders",
                        str(args.seed_orders)], env=env, stdout=log, stderr=subprocess.STDOUT,
                       cwd=str(work), check=True, timeout=1800)
        print(f"seeded {args.seed_orders:,} orders in {time.time() - t0:.0f} s", flush=True)
    server = subprocess.Popen([str(binary), "--data-dir", str(work / "data"), "serve", "--demo",
                               "--port", str(port)], env=env, stdout=log,
                              stderr=subprocess.STDOUT, cwd=str(work))
    try:
        return run(args, binary, work, port, env, server)
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def run(args, binary: Path, work: Path, port: int, env: dict, server: subprocess.Popen) -> int:
    c = Client(port)
    deadline = time.time() + 120
    while time.time() < deadline:
        st, _, _ = c.request("GET", "/ready")
        if st == 200:
            break
        if server.poll() is not None:
            print((work / "server.log").read_text()[-3000:], file=sys.stderr)
            return 1
        time.sleep(0.2)
    else:
        print("server not ready in 120 s", file=sys.stderr)
        return 1

    def login(email: str, password: str) -> str:
        st, b, _ = c.request("POST", "/api/auth/login", body={"email": email, "password": password})
        if st != 200 or not b:
            raise SystemExit(f"login {email}: HTTP {st}")
        return b["data"]["token"]

    admin = login("admin@demo.ecap.local", "Admin123!")
    customer = login("customer@demo.ecap.local", "Customer123!")
    st, b, _ = c.request("POST", "/api/products", admin, {
        "name": "Soak Item", "description": "The soak test's product", "price": 2.5,
        "inventory": START_STOCK, "category": "sports"})
    if st != 201 or not b:
        raise SystemExit(f"creating the product: HTTP {st} {b}")
    product = b["data"]["product"]["id"]
    st, b, _ = c.request("GET", "/api/products?limit=5")
    some_products = [p["id"] for p in (b or {}).get("data", {}).get("products", [])] or [product]

    lock = threading.Lock()
    stop = threading.Event()
    window: dict = {"lat": [], "routes": {}, "n": 0, "err": 0, "s5xx": 0, "s4xx": 0}
    totals = {"n": 0, "err": 0, "s5xx": 0, "orders": 0, "moves": 0}
    placed: list[int] = []
    next_step = {"pending": "processing", "processing": "shipped", "shipped": "delivered"}
    reads = [
        ("GET", "/api/products?page=1&limit=20", None),
        ("GET", "/api/products?page=2&limit=20&sort=price", None),
        ("GET", "/api/categories", None),
        ("GET", "/api/analytics/dashboard?period=30d", "admin"),
        ("GET", "/api/orders?limit=20", "admin"),
        ("GET", "/api/auth/me", "customer"),
    ]

    pace = {"gap": 0.0}

    def worker(seed: int) -> None:
        rnd = random.Random(seed)
        cl = Client(port)
        due = time.perf_counter()
        while not stop.is_set():
            gap = pace["gap"]
            if gap:
                due += gap
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
            else:
                due = time.perf_counter()
            x = rnd.random()
            kind = "read"
            route = "POST /api/orders"
            if x < 0.2:
                kind = "order"
                st, b, took = cl.request("POST", "/api/orders", customer, {
                    "items": [{"productId": product, "quantity": 1}],
                    "paymentMethod": "card", "shippingAddress": "1 Soak Street, Pune"})
                if st == 201 and b:
                    with lock:
                        placed.append(b["data"]["order"]["id"])
                        totals["orders"] += 1
            elif x < 0.3:
                kind = "move"
                route = "PUT /api/orders/:id/status (the GET before it when nothing moves)"
                with lock:
                    oid = rnd.choice(placed[-200:]) if placed else None
                if oid is None:
                    continue
                st, b, took = cl.request("GET", f"/api/orders/{oid}", admin)
                status = (b or {}).get("data", {}).get("order", {}).get("status") if st == 200 else None
                if status in next_step:
                    body = {"status": next_step[status]}
                    if body["status"] == "shipped":
                        body.update({"trackingNumber": f"TRK{oid}", "courierName": "Delhivery"})
                    st, b, took = cl.request("PUT", f"/api/orders/{oid}/status", admin, body)
                    if st == 200:
                        with lock:
                            totals["moves"] += 1
                    elif st == 409:
                        st = 200  # another worker moved it first: expected
            else:
                method, path, who = reads[rnd.randrange(len(reads))]
                route = f"{method} {path} ({who or 'anonymous'})"
                path = path.replace("{p}", rnd.choice(some_products))
                st, b, took = cl.request(method, path, {"admin": admin, "customer": customer}.get(who))
            with lock:
                window["n"] += 1
                totals["n"] += 1
                window["lat"].append(took * 1000)
                window["routes"].setdefault(route, []).append(took * 1000)
                if st == 0:
                    window["err"] += 1
                    totals["err"] += 1
                elif st >= 500:
                    window["s5xx"] += 1
                    totals["s5xx"] += 1
                elif st >= 400 and not (kind == "order" and st == 409):
                    window["s4xx"] += 1

    threads = [threading.Thread(target=worker, args=(i,), daemon=True)
               for i in range(args.threads)]
    for t in threads:
        t.start()
    # Capacity: the same mix, unpaced, from the same threads.
    capacity = 0.0
    if args.capacity_seconds > 0:
        time.sleep(args.capacity_seconds)
        with lock:
            capacity = window["n"] / args.capacity_seconds
            cap_errors = window["s5xx"] + window["err"]
            window.update({"lat": [], "routes": {}, "n": 0, "err": 0, "s5xx": 0, "s4xx": 0})
        print(f"capacity of the mix: {capacity:,.0f} req/s unpaced ({cap_errors} 5xx/errors)",
              flush=True)
    rate = args.rate or max(10.0, capacity / 2)
    args.rate, args.capacity = rate, capacity
    with lock:
        totals.update({"n": 0, "err": 0, "s5xx": 0})
    pace["gap"] = args.threads / rate
    started = time.time()
    samples = []
    lat_by_sample: list[list[float]] = []
    routes_by_sample: list[dict] = []
    db = work / "data" / "ecap.db"
    end = started + args.minutes * 60
    print(f"soak: {args.minutes:g} min at {args.rate:g} req/s on port {port} ({work})", flush=True)
    while time.time() < end:
        time.sleep(min(args.sample, max(0.0, end - time.time())))
        with lock:
            w = dict(window)
            window.update({"lat": [], "routes": {}, "n": 0, "err": 0, "s5xx": 0, "s4xx": 0})
        lat_by_sample.append(w["lat"])
        routes_by_sample.append(w["routes"])
        f = proc_figures(server.pid)
        f["pool"] = pool_connections(port)
        wal = Path(str(db) + "-wal")
        s = {"t_min": (time.time() - started) / 60, "requests": w["n"], "errors": w["err"],
             "s5xx": w["s5xx"], "s4xx": w["s4xx"], "p50_ms": pct(w["lat"], 50),
             "p99_ms": pct(w["lat"], 99), **f,
             "db_mb": db.stat().st_size / 1e6 if db.exists() else 0.0,
             "wal_mb": wal.stat().st_size / 1e6 if wal.exists() else 0.0}
        samples.append(s)
        print(f"  {s['t_min']:5.1f} min  {s['requests']:6d} req  p50 {s['p50_ms']:6.2f} ms  "
              f"p99 {s['p99_ms']:7.2f} ms  5xx {s['s5xx']}  err {s['errors']}  "
              f"RSS {s['rss_kb'] / 1024:6.1f} MB  fds {s['fds']}  threads {s['threads']}  "
              f"pool {s['pool']}  "
              f"db {s['db_mb']:.1f} MB  wal {s['wal_mb']:.1f} MB", flush=True)
        if server.poll() is not None:
            print("the server exited during the soak", file=sys.stderr)
            break
    stop.set()
    for t in threads:
        t.join(60)

    # The books.
    problems = []
    st, b, _ = c.request("GET", f"/api/products/{product}")
    stock = (b or {}).get("data", {}).get("product", {}).get("inventory")
    st2, b2, _ = c.request("GET", "/api/orders?limit=1", admin)
    total_orders = (b2 or {}).get("data", {}).get("pagination", {}).get("total")
    missing = 0
    for oid in placed[:: max(1, len(placed) // 200)]:
        s3, _, _ = c.request("GET", f"/api/orders/{oid}", admin)
        if s3 != 200:
            missing += 1
    if stock != START_STOCK - len(placed):
        problems.append(f"stock {stock} != {START_STOCK} - {len(placed)} acknowledged orders")
    if missing:
        problems.append(f"{missing} acknowledged orders not found")
    server.terminate()
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()
    verify = subprocess.run([str(binary), "--data-dir", str(work / "data"), "analytics", "verify"],
                            env=env, capture_output=True, text=True, timeout=600, cwd=str(work))
    verified = verify.returncode == 0
    if not verified:
        problems.append("analytics verify: " + (verify.stdout + verify.stderr)[-500:])
    if totals["s5xx"] or totals["err"]:
        problems.append(f"{totals['s5xx']} 5xx answers and {totals['err']} connection errors")
    # RSS after the warm-up: the median of the three samples that follow it.
    after = [s["rss_kb"] for s in samples if s["t_min"] > args.warmup][:3]
    first_rss = sorted(after)[len(after) // 2] if after else 0
    last_rss = samples[-1]["rss_kb"] if samples else 0
    rss_growth = (last_rss / first_rss - 1) * 100 if first_rss else float("nan")
    if not first_rss or last_rss > first_rss * 1.10:
        problems.append(f"RSS grew {rss_growth:.1f} % after the warm-up "
                        f"({first_rss / 1024:.1f} → {last_rss / 1024:.1f} MB)")
    # p99 of all the requests of the first and of the last five minutes.
    per = max(1, round(300 / args.sample))
    first_p99 = pct([x for lat in lat_by_sample[:per] for x in lat], 99)
    last_p99 = pct([x for lat in lat_by_sample[-per:] for x in lat], 99)
    if not last_p99 <= 1.5 * first_p99:
        problems.append(f"p99 of the last 5 minutes {last_p99:.2f} ms > 1.5 × the first 5 "
                        f"({first_p99:.2f} ms)")
    if samples and samples[-1]["fds"] - samples[0]["fds"] > 20:
        problems.append(f"open files grew from {samples[0]['fds']} to {samples[-1]['fds']}")
    pools = [s["pool"] for s in samples if s["pool"] >= 0]
    if not pools or max(pools) - min(pools) > 8:
        problems.append(f"pool connections not flat: {min(pools or [0])}–{max(pools or [0])}")

    ok = not problems
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [MARK_START, f"## Soak: {args.minutes:g} minutes of mixed load on the all-in-one server",
             "",
             f"`python3 bench/soak.py --minutes {args.minutes:g} --write` "
             f"({when}, binary `{binary.relative_to(ROOT) if binary.is_relative_to(ROOT) else binary}`, "
             f"SQLite seeded with {args.seed_orders:,} orders, {os.cpu_count()} CPUs; load "
             f"average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}): reads 70 %, "
             "orders 20 %, status moves 10 %, from "
             f"{args.threads} threads on kept-alive connections. Capacity of the mix measured "
             f"first ({args.capacity_seconds:g} s unpaced): {args.capacity:,.0f} req/s; the soak "
             f"paced at {args.rate:,.0f} req/s.", "",
             "| minute | requests | p50 ms | p99 ms | 4xx | 5xx | conn. errors | RSS MB "
             "| open files | pool conns | threads | db MB | WAL MB |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    step = max(1, len(samples) // 10)
    shown = samples[::step] + ([samples[-1]] if samples and (len(samples) - 1) % step else [])
    for s in shown:
        lines.append(f"| {s['t_min']:.1f} | {s['requests']:,} | {s['p50_ms']:.2f} | "
                     f"{s['p99_ms']:.2f} | {s['s4xx']} | {s['s5xx']} | {s['errors']} | "
                     f"{s['rss_kb'] / 1024:.1f} | {s['fds']} | {s['pool']} | {s['threads']} | "
                     f"{s['db_mb']:.1f} | {s['wal_mb']:.1f} |")
    # Which route moved: p99 per route, first and last five minutes.
    def route_p99(chunk: list[dict]) -> dict:
        merged: dict = {}
        for d in chunk:
            for k, v in d.items():
                merged.setdefault(k, []).extend(v)
        return {k: pct(v, 99) for k, v in merged.items()}
    r_first, r_last = route_p99(routes_by_sample[:per]), route_p99(routes_by_sample[-per:])
    lines += ["", "| route | p99 first 5 min (ms) | p99 last 5 min (ms) | ratio |",
              "|---|---:|---:|---:|"]
    for k in sorted(r_first):
        a, z = r_first[k], r_last.get(k, float("nan"))
        lines.append(f"| `{k}` | {a:.2f} | {z:.2f} | {z / a:.2f}× |")
    lines += ["", f"In all {totals['n']:,} requests, {totals['orders']:,} orders acknowledged, "
              f"{totals['moves']:,} status moves; {totals['s5xx']} 5xx, {totals['err']} connection "
              f"errors. Books: stock {stock:,} = {START_STOCK:,} − {len(placed):,} acknowledged "
              f"orders: {'yes' if stock == START_STOCK - len(placed) else 'NO'}; orders in the "
              f"list {total_orders}; sampled acknowledged orders missing: {missing}; "
              f"`ecap analytics verify`: {'clean' if verified else 'DIFFERENCES'}. "
              f"RSS after the {args.warmup:g}-minute warm-up {first_rss / 1024:.1f} MB, at the end "
              f"{last_rss / 1024:.1f} MB ({rss_growth:+.1f} %, limit +10 %); p99 of the first "
              f"5 minutes {first_p99:.2f} ms, of the last 5 {last_p99:.2f} ms "
              f"({last_p99 / first_p99:.2f}×, limit 1.5×); pool connections "
              f"{min(pools or [0])}–{max(pools or [0])}. Verdict: **{'held' if ok else 'FAILED'}**"
              + ("" if ok else " — " + "; ".join(problems)) + ".", "", MARK_END]
    table = "\n".join(lines) + "\n"
    print(table)
    if args.write:
        path = ROOT / "BENCHMARKS.md"
        text = path.read_text()
        if MARK_START in text and MARK_END in text:
            a = text.index(MARK_START)
            z = text.index(MARK_END) + len(MARK_END) + 1
            text = text[:a] + table + text[z:]
        else:
            text = text.rstrip("\n") + "\n\n" + table
        path.write_text(text)
        print(f"wrote {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
