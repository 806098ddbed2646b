#!/usr/bin/env python3
"""Split shape vs all-in-one: the same requests, and event delivery through Redis Streams.

    python3 bench/split.py [--bin target/release/ecap] [--duration 8] [--products 2000]

Starts, on 127.0.0.1 with PostgreSQL (fresh databases, dropped after) and the
local Redis (a key prefix of its own, deleted after):

  * all-in-one: `ecap serve` on one PostgreSQL database (catalog and orders
    commit together: the single-transaction placement);
  * split: users, catalog, orders, analytics (`serve --only …`, one database
    each) and one gateway (`--only gateway`) in front.

and measures with wrk (2 threads, 32 connections):

  * GET /api/products?page=1&limit=20 on the same seeded catalog: all-in-one,
    the split catalog directly, and through the gateway;
  * POST /api/orders (one line, the same body each time) by 32 customers in turn:
    all-in-one, a split orders replica directly, and through the gateway;
  * events from commit to applied by analytics through Redis Streams: the
    `events_lag_seconds` quantiles analytics exports (p50, p99) after the split
    order run, and how long the last order took to arrive.

Prints a Markdown table; `--write` puts it into BENCHMARKS.md between the
`bench/split.py` markers. Python standard library; needs wrk, psql, redis-cli.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("ECAP_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("ECAP_BENCH_REDIS", "redis://127.0.0.1:6379")
PASSWORD = "Passw0rd!23"
SETUP = "bench-split-setup-token-123"
PROCS: list[subprocess.Popen] = []
BUYERS = 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(method: str, url: str, body=None, token=None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def wait_health(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            sys.exit(f"{url} exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"{url} did not start:\n{log.read_text()[-3000:]}")


def start(binary: str, args: list[str], env: dict, log: Path) -> subprocess.Popen:
    f = open(log, "ab")
    p = subprocess.Popen([binary, *args], env=env, stdout=f, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    PROCS.append(p)
    return p


def stop_all() -> None:
    for p in PROCS:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in PROCS:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


def psql(sql: str) -> None:
    subprocess.run(["psql", f"{PG}/postgres", "-qc", sql], check=True,
                   stdout=subprocess.DEVNULL)


def wrk(url: str, duration: int, token: str | None = None, lua: Path | None = None) -> dict:
    args = ["wrk", "-t2", "-c32", f"-d{duration}s", "--latency"]
    if token:
        args += ["-H", f"Authorization: Bearer {token}"]
    if lua:
        args += ["-s", str(lua)]
    out = subprocess.run(args + [url], capture_output=True, text=True, timeout=duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)\b", out)
        if not m:
            return float("nan")
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": rps, "p50": pct("50"), "p99": pct("99"),
            "non2xx": int(non2xx.group(1)) if non2xx else 0}


def metric_quantiles(url: str, name: str) -> dict:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for m in re.finditer(rf'^{name}\{{quantile="([\d.]+)"\}} ([\d.e+-]+)$', text, re.M):
        out[m.group(1)] = float(m.group(2))
    for suffix in ("count", "sum"):
        m = re.search(rf"^{name}_{suffix} ([\d.e+-]+)$", text, re.M)
        if m:
            out[suffix] = float(m.group(1))
    return out


def order_lua(work: Path, product: str, tokens: list[str]) -> Path:
    """Each request by the next of the customers (one customer's orders queue on
    its order-number counter, as they should)."""
    body = json.dumps({"items": [{"productId": product, "quantity": 1}], "paymentMethod": "upi",
                       "shippingAddress": "1 Bench Road, Pune"})
    lua = work / "order.lua"
    toks = ", ".join(json.dumps(t) for t in tokens)
    lua.write_text(
        f"local tokens = {{{toks}}}\nlocal body = {json.dumps(body)}\nlocal i = 0\n"
        "request = function()\n  i = i % #tokens + 1\n"
        '  return wrk.format("POST", nil, {["Content-Type"] = "application/json", '
        '["Authorization"] = "Bearer " .. tokens[i]}, body)\nend\n')
    return lua


def seed_shop(base_users: str, base_catalog: str, email: str) -> tuple[str, list[str], str]:
    """The demo admin (`ecap seed` made it), a customer, and a product with a large stock."""
    s, b = call("POST", base_users + "/api/auth/login",
                {"email": "admin@demo.ecap.local", "password": "Admin123!"})
    if s != 200:
        sys.exit(f"admin: {s} {b}")
    admin = b["data"]["token"]
    buyers = []
    for i in range(BUYERS):
        s, b = call("POST", base_users + "/api/auth/register",
                    {"name": "Bench Buyer", "email": f"{i}-{email}", "password": PASSWORD})
        if s != 201:
            sys.exit(f"customer: {s} {b}")
        buyers.append(b["data"]["token"])
    s, b = call("POST", base_catalog + "/api/products",
                {"name": "Bench Item", "description": "An item for the order benchmark",
                 "price": 1.5, "inventory": 10_000_000, "category": "sports"}, admin)
    if s != 201:
        sys.exit(f"product: {s} {b}")
    return admin, buyers, b["data"]["product"]["id"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(ROOT / "target/release/ecap"))
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--products", type=int, default=2000)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ecap-split-bench-"))
    tag = uuid.uuid4().hex[:10]
    dbs = {k: f"ecap_bs_{tag}_{k}" for k in ("aio", "users", "catalog", "orders", "analytics")}
    prefix = f"ecap_bench_{tag}:"
    for d in dbs.values():
        psql(f"CREATE DATABASE {d}")
    results: dict = {}
    try:
        base = {"PATH": os.environ.get("PATH", ""), "HOST": "127.0.0.1", "LOG_LEVEL": "warn",
                "JWT_SECRET": "bench-split-jwt-secret-0123456789", "ECAP_SETUP_TOKEN": SETUP,
                "RATE_LIMIT_MAX_REQUESTS": "100000000", "AUTH_RATE_LIMIT_MAX_REQUESTS": "100000",
                "ECAP_HASH_CONCURRENCY": "1", "REDIS_KEY_PREFIX": prefix,
                "ECAP_DATA_DIR": str(work / "data")}

        # ---- all-in-one on one PostgreSQL database ----
        aio_port = free_port()
        env = dict(base, PORT=str(aio_port), DATABASE_URL=f"{PG}/{dbs['aio']}")
        subprocess.run([a.bin, "seed", "--products", str(a.products)], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        log = work / "aio.log"
        p = start(a.bin, ["serve"], env, log)
        aio = f"http://127.0.0.1:{aio_port}"
        wait_health(aio, p, log)
        _, buyers, product = seed_shop(aio, aio, "aio@example.com")
        lua = order_lua(work, product, buyers)
        wrk(aio + "/api/products?page=1&limit=20", 2)
        results[("products", "all-in-one")] = wrk(aio + "/api/products?page=1&limit=20", a.duration)
        wrk(aio + "/api/orders", 2, None, lua)
        results[("orders", "all-in-one")] = wrk(aio + "/api/orders", a.duration, None, lua)
        stop_all()
        PROCS.clear()

        # ---- split: four services and a gateway ----
        ports = {k: free_port() for k in ("users", "catalog", "orders", "analytics", "gateway")}
        url = {k: f"http://127.0.0.1:{v}" for k, v in ports.items()}
        env = dict(base, REDIS_URL=REDIS, INTERNAL_TOKEN="bench-split-internal-token-0123",
                   USERS_DATABASE_URL=f"{PG}/{dbs['users']}",
                   CATALOG_DATABASE_URL=f"{PG}/{dbs['catalog']}",
                   ORDERS_DATABASE_URL=f"{PG}/{dbs['orders']}",
                   ANALYTICS_DATABASE_URL=f"{PG}/{dbs['analytics']}",
                   USER_SERVICE_URL=url["users"], PRODUCT_SERVICE_URL=url["catalog"],
                   ORDER_SERVICE_URL=url["orders"], ANALYTICS_SERVICE_URL=url["analytics"])
        subprocess.run([a.bin, "seed", "--products", str(a.products)], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for name in ("users", "catalog", "orders", "analytics", "gateway"):
            log = work / f"{name}.log"
            p = start(a.bin, ["serve", "--only", name], dict(env, PORT=str(ports[name])), log)
            wait_health(url[name], p, log)
        gw = url["gateway"]
        _, buyers, product = seed_shop(url["users"], url["catalog"], "split@example.com")
        lua = order_lua(work, product, buyers)
        for label, base_url in (("split, catalog directly", url["catalog"]),
                                ("split, through the gateway", gw)):
            wrk(base_url + "/api/products?page=1&limit=20", 2)
            results[("products", label)] = wrk(base_url + "/api/products?page=1&limit=20",
                                               a.duration)
        for label, base_url in (("split, orders directly", url["orders"]),
                                ("split, through the gateway", gw)):
            wrk(base_url + "/api/orders", 2, None, lua)
            results[("orders", label)] = wrk(base_url + "/api/orders", a.duration, None, lua)
        # Every order reaches analytics; then read the lag figures.
        _, admin_b = call("POST", url["users"] + "/api/auth/login",
                          {"email": "admin@demo.ecap.local", "password": "Admin123!"})
        admin = admin_b["data"]["token"]
        t0 = time.time()
        while time.time() - t0 < 120:
            _, ob = call("GET", url["orders"] + "/api/orders/outbox", None, admin)
            if ob.get("data", {}).get("pending") == 0:
                break
            time.sleep(0.2)
        drained = time.time() - t0
        time.sleep(1.5)
        results["lag"] = metric_quantiles(url["analytics"], "events_lag_seconds")
        results["drain_s"] = drained
    finally:
        stop_all()
        for d in dbs.values():
            try:
                psql(f"DROP DATABASE IF EXISTS {d} WITH (FORCE)")
            except subprocess.CalledProcessError:
                pass
        subprocess.run(["redis-cli", "-u", REDIS, "DEL", f"{prefix}events:orders",
                        f"{prefix}catalog:gen"], stdout=subprocess.DEVNULL)

    lines = ["| request | shape | req/s | p50 ms | p99 ms | ratio to all-in-one |",
             "|---|---|---:|---:|---:|---:|"]
    for kind, title in (("products", "GET /api/products?page=1&limit=20"),
                        ("orders", "POST /api/orders (1 line)")):
        aio = results[(kind, "all-in-one")]
        for (k, label), r in [(k, v) for k, v in results.items() if isinstance(k, tuple)]:
            if k != kind:
                continue
            note = f" ({r['non2xx']} non-2xx)" if r["non2xx"] else ""
            lines.append(f"| {title} | {label}{note} | {r['rps']:.0f} | {r['p50']:.2f} | "
                         f"{r['p99']:.2f} | {r['rps'] / aio['rps']:.2f} |")
    lag = results.get("lag", {})
    lines += ["",
              f"Events commit → applied by analytics through Redis Streams, over "
              f"{int(lag.get('count', 0))} events (the split order runs): "
              f"p50 {lag.get('0.5', float('nan')) * 1000:.0f} ms, "
              f"p99 {lag.get('0.99', float('nan')) * 1000:.0f} ms, "
              f"max {lag.get('1', float('nan')) * 1000:.0f} ms; the outbox was empty "
              f"{results.get('drain_s', float('nan')):.1f} s after the last run."]
    table = "\n".join(lines)
    print(table)
    if a.write:
        md = ROOT / "BENCHMARKS.md"
        text = md.read_text()
        block = (f"<!-- bench/split.py:start -->\n## Split shape vs all-in-one\n\n"
                 f"`python3 bench/split.py --write` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
                 f"binary `{Path(a.bin).relative_to(ROOT) if Path(a.bin).is_relative_to(ROOT) else a.bin}`, "
                 f"{a.duration} s per run, wrk 2 threads × 32 connections, PostgreSQL, {a.products} products):\n\n"
                 f"{table}\n<!-- bench/split.py:end -->")
        if "<!-- bench/split.py:start -->" in text:
            text = re.sub(r"<!-- bench/split.py:start -->.*<!-- bench/split.py:end -->",
                          lambda _: block, text, flags=re.S)
        else:
            text = text.rstrip() + "\n\n" + block + "\n"
        md.write_text(text)


if __name__ == "__main__":
    try:
        main()
    finally:
        stop_all()
