#!/usr/bin/env python3
"""ecap benchmark harness: one command, results written to BENCHMARKS.md.

    python3 bench/run.py [--duration 10] [--rounds 1] [--only core,catalog,reserve,orders,analytics,gateway]
                         [--analytics-sizes 10000,1000000,10000000] [--no-build]

Everything is reported as a ratio against a baseline measured in the same
invocation (the bare axum server from bench/src/main.rs, or ecap itself while
idle), because absolute figures on a small, shared machine are noise.

Measures:
  * throughput + p50/p99 latency at 32 connections, ecap vs bare server, for
    GET /health and GET /api/auth/me (both servers send the same bytes);
  * p99 of GET /health (1 connection) idle (before and after) vs during a
    POST /api/auth/login flood;
  * VmRSS of ecap idle after start and after all the load;
  * start-up time to a 200 from /ready, fresh data dir and migrated data dir;
  * (catalog) GET /api/products?page=1&limit=20 on a seeded 10k catalog, no
    filter / category / full-text search: throughput + p50/p99 at 32
    connections, ecap with the product cache warm and with it off
    (ECAP_CACHE_TTL_SECS=0) vs the bare server sending the same bytes;
  * (reserve) CatalogStore::reserve calls per second, 32 concurrent tasks, on
    SQLite and PostgreSQL, spread over 1000 products and all on one product,
    with a stock/ledger consistency check (bench/src/reserve.rs);
  * (orders) POST /api/orders (3 lines) per second with 8 and 32 concurrent
    clients on SQLite and PostgreSQL, p50/p99 (bench/src/orders.rs), and
    pgbench's TPC-B-like script on the same PostgreSQL at the same client
    counts, right after each point, as the yardstick; on PostgreSQL also
    what ecap's connections were doing (pg_stat_activity samples) and commits
    per order;
  * (analytics) per size (10k, 1M, 10M orders seeded on SQLite): seed time,
    p50/p99 of GET /api/analytics/dashboard and /revenue (bench/src/analytics.rs),
    the same answers from the raw orders by SQLite GROUP BY and by DuckDB on
    Parquet (timed, and checked equal to the cent); AnalyticsStore::apply events
    per second on SQLite and PostgreSQL; order-to-SSE-update delay;
  * (gateway) the same product page from `serve --only catalog` directly, through
    nginx (deploy/nginx/nginx.conf), through `serve --only gateway` (in-process
    and Redis rate limiter) and through nginx + gateway: the gateway's added
    p50/p99 as a ratio to nginx's (needs nginx and Redis on 127.0.0.1:6379).

`--only` runs some of the six parts (core, catalog, reserve, orders, analytics, gateway) and rewrites
only their sections of BENCHMARKS.md.

Python 3.11 standard library only (the analytics part makes bench/.venv with
DuckDB from PyPI for its DuckDB baseline); needs `wrk` on PATH. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
LOGIN_LUA = BENCH_DIR / "login.lua"
MARK_START = "<!-- bench/run.py:start -->"
MARK_END = "<!-- bench/run.py:end -->"
# One generated section per part, so `--only` rewrites just its own.
MARKS = {
    "core": (MARK_START, MARK_END),
    "catalog": ("<!-- bench/run.py:catalog:start -->", "<!-- bench/run.py:catalog:end -->"),
    "reserve": ("<!-- bench/run.py:reserve:start -->", "<!-- bench/run.py:reserve:end -->"),
    "orders": ("<!-- bench/run.py:orders:start -->", "<!-- bench/run.py:orders:end -->"),
    "analytics": ("<!-- bench/run.py:analytics:start -->", "<!-- bench/run.py:analytics:end -->"),
    "gateway": ("<!-- bench/run.py:gateway:start -->", "<!-- bench/run.py:gateway:end -->"),
}

USER_NAME = "Bench User"
USER_EMAIL = "bench@example.com"
USER_PASSWORD = "Secret1!"
JWT_SECRET = "bench-jwt-secret-0123456789abcdef"

CONNECTIONS = 32
STARTUP_RUNS = 5
STARTUP_POLL_S = 0.002
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0

# Catalog part: product listing on a seeded catalog, and reservations.
CATALOG_PRODUCTS = 10_000
CATALOG_CATEGORY = "electronics"
RESERVE_TASKS = 32
RESERVE_PRODUCTS = 1000
RESERVE_POOL = 10  # ecap's default DB_MAX_CONNECTIONS
RESERVE_DURATION_S = 5.0
PG_URL = "postgres://postgres@127.0.0.1:5432/postgres"
PARTS = ("core", "catalog", "reserve", "orders", "analytics", "gateway")
ORDER_CLIENTS = (8, 32)
ORDER_CUSTOMERS = 64
ORDER_PRODUCTS = 200
ORDER_MAX = 200_000  # measured orders per point at most (the time bound is --duration)
ORDER_SAMPLE_S = 0.5  # pg_stat_activity sampling period during the PostgreSQL runs
GOAL_ORDERS_VS_PGBENCH = 0.5  # orders/s on PostgreSQL >= 0.5 x pgbench TPC-B tps

# Goals (see BENCHMARKS.md).
GOAL_ME_RATIO = 0.8  # ecap /me throughput >= 0.8 x bare
GOAL_CATALOG_RATIO = 0.5  # product listing, cache warm, throughput >= 0.5 x bare
GOAL_FLOOD_P99 = 3.0  # /health p99 during a login flood <= 3 x idle
GOAL_IDLE_RSS_MB = 30.0
GOAL_STARTUP_MS = 300.0

# Settings ecap reads from the environment (crates/core/src/config.rs ENV_KEYS):
# none leaks in from the caller's shell; the bench sets its own.
ECAP_ENV_KEYS = [
    "PORT", "HOST", "ECAP_DATA_DIR", "DATABASE_URL", "USERS_DATABASE_URL",
    "DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME", "DB_MAX_CONNECTIONS",
    "JWT_SECRET", "JWT_EXPIRY", "CORS_ORIGIN", "RATE_LIMIT_WINDOW_MS",
    "RATE_LIMIT_MAX_REQUESTS", "AUTH_RATE_LIMIT_WINDOW_MS",
    "AUTH_RATE_LIMIT_MAX_REQUESTS", "TRUSTED_PROXIES", "REDIS_URL", "REDIS_HOST",
    "REDIS_PORT", "REDIS_PASSWORD", "LOG_LEVEL", "LOG_FORMAT", "BODY_LIMIT_BYTES",
    "ECAP_DANGEROUS_OPERATIONS", "ECAP_ADMIN_BOOTSTRAP", "ECAP_SETUP_TOKEN", "ECAP_LOGIN_MAX_FAILURES",
    "ECAP_LOGIN_LOCKOUT_SECS", "ECAP_HASH_CONCURRENCY", "RUST_LOG", "CATALOG_DATABASE_URL",
    "ORDERS_DATABASE_URL", "ECAP_CACHE_TTL_SECS", "ECAP_RESERVATION_GRACE_SECS",
    "REDIS_KEY_PREFIX", "USER_SERVICE_URL", "PRODUCT_SERVICE_URL", "ORDER_SERVICE_URL",
    "ANALYTICS_SERVICE_URL", "GATEWAY_CONNECT_TIMEOUT_MS", "GATEWAY_READ_TIMEOUT_MS",
    "GATEWAY_HEALTH_INTERVAL_MS", "GATEWAY_EJECT_MS", "RATE_LIMIT_FAIL_OPEN", "INTERNAL_TOKEN",
]


class BenchError(Exception):
    pass


class Timeout(BenchError):
    pass


# --------------------------------------------------------------------------
# Process bookkeeping: every child is tracked and killed on exit, error, ^C.
# --------------------------------------------------------------------------

_children: list[subprocess.Popen] = []


def spawn(args: list[str], **kw) -> subprocess.Popen:
    # Own process group, so a ^C in the terminal reaches only us and we stop
    # the children in order (and only the ones we started).
    proc = subprocess.Popen(args, start_new_session=True, **kw)
    _children.append(proc)
    return proc


def stop(proc: subprocess.Popen, timeout: float = STOP_TIMEOUT_S) -> None:
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        except ProcessLookupError:
            pass
    if proc in _children:
        _children.remove(proc)


def stop_all() -> None:
    for proc in list(_children):
        try:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
        _children.remove(proc)


def _on_signal(signum, _frame):
    if signum == signal.SIGALRM:
        raise Timeout("the benchmark exceeded its time budget")
    raise KeyboardInterrupt


atexit.register(stop_all)
# Explicit, so ^C works even where SIGINT was inherited as ignored (background jobs).
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGHUP, _on_signal)
signal.signal(signal.SIGALRM, _on_signal)


def run_capture(args: list[str], timeout: float, env: dict | None = None,
                cwd: Path | None = None) -> str:
    """Run a tracked child to completion, return stdout (raise on failure)."""
    proc = spawn(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                 cwd=str(cwd) if cwd else None)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(proc, 2)
        raise Timeout(f"{' '.join(args)} did not finish within {timeout:.0f}s")
    finally:
        if proc in _children and proc.poll() is not None:
            _children.remove(proc)
    if proc.returncode != 0:
        raise BenchError(f"{' '.join(args)} failed ({proc.returncode}): {err.strip()}")
    return out


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_request(port: int, method: str, path: str, body: dict | None = None,
                 token: str | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def http_get(port: int, path: str, timeout: float = 10.0) -> tuple[int, dict, bytes]:
    """GET with the response headers (lower-cased names)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def wait_ready(port: int, proc: subprocess.Popen, path: str = "/ready",
               timeout: float = READY_TIMEOUT_S, poll: float = STARTUP_POLL_S) -> float:
    """Poll `path` every `poll` seconds until 200; return the time it took."""
    start = time.perf_counter()
    deadline = start + timeout
    while True:
        try:
            status, _ = http_request(port, "GET", path, timeout=1.0)
            if status == 200:
                return time.perf_counter() - start
        except (OSError, http.client.HTTPException):
            pass
        if proc.poll() is not None:
            raise BenchError(f"{proc.args[0]} exited with {proc.returncode} before {path} answered 200")
        if time.perf_counter() > deadline:
            raise Timeout(f"{path} on port {port} not 200 after {timeout:.0f}s")
        time.sleep(poll)


def rss_kb(pid: int, key: str = "VmRSS") -> int:
    """A numeric field of /proc/<pid>/status (VmRSS, VmHWM in kB; Threads)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise BenchError(f"no {key} in /proc/{pid}/status")


def tail(path: Path, n: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


# --------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------


@dataclass
class Wrk:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int = 0
    socket_errors: dict = field(default_factory=dict)
    raw: str = ""

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_wrk(out: str) -> Wrk:
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise BenchError(f"cannot parse wrk output:\n{out}")
    rps = float(m.group(1))
    lat = {}
    for pct, value, unit in re.findall(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M):
        lat[pct] = float(value) * _UNIT_MS[unit]
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return Wrk(
        rps=rps,
        p50_ms=lat.get("50", float("nan")),
        p99_ms=lat.get("99", float("nan")),
        requests=int(total.group(1)) if total else 0,
        non_2xx=int(non2xx.group(1)) if non2xx else 0,
        socket_errors=dict(zip(("connect", "read", "write", "timeout"),
                               map(int, sock.groups()))) if sock else {},
        raw=out,
    )


def wrk_args(url: str, threads: int, conns: int, duration: float,
             token: str | None = None, script: Path | None = None,
             timeout_s: int | None = None) -> list[str]:
    args = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{int(round(duration))}s", "--latency"]
    if timeout_s:
        args.append(f"--timeout={timeout_s}s")
    if token:
        args += ["-H", f"Authorization: Bearer {token}"]
    if script:
        args += ["-s", str(script)]
    args.append(url)
    return args


def run_wrk(url: str, threads: int, conns: int, duration: float,
            token: str | None = None) -> Wrk:
    out = run_capture(wrk_args(url, threads, conns, duration, token), timeout=duration + 30)
    return parse_wrk(out)


# --------------------------------------------------------------------------
# ecap / baseline processes
# --------------------------------------------------------------------------


def target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")).resolve()


def ecap_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ECAP_ENV_KEYS}
    env.update({
        "HOST": "127.0.0.1",
        "JWT_SECRET": JWT_SECRET,
        # bench/src/orders.rs registers its admin with this token.
        "ECAP_SETUP_TOKEN": "bench-setup-token-0123456789",
        "RATE_LIMIT_MAX_REQUESTS": "100000000",
        "AUTH_RATE_LIMIT_MAX_REQUESTS": "100000000",
        "ECAP_LOGIN_MAX_FAILURES": "100000000",
        "LOG_LEVEL": "warn",
    })
    return env


def start_ecap(bin_path: Path, port: int, data_dir: Path, log_path: Path,
               extra_env: dict | None = None) -> subprocess.Popen:
    logf = open(log_path, "ab")
    env = ecap_env()
    env.update(extra_env or {})
    try:
        # cwd = the data dir's parent: no stray ./ecap.toml or .env is picked up.
        return spawn([str(bin_path), "serve", "--port", str(port), "--data-dir", str(data_dir)],
                     cwd=str(data_dir.parent), env=env, stdin=subprocess.DEVNULL,
                     stdout=logf, stderr=subprocess.STDOUT)
    finally:
        logf.close()


def start_bare(bin_path: Path, port: int, log_path: Path, health: Path | None = None,
               me: Path | None = None, serve: dict[str, Path] | None = None) -> subprocess.Popen:
    """The baseline server; `serve` maps exact path-with-query strings to body files."""
    args = [str(bin_path), "--port", str(port)]
    if health:
        args += ["--health", str(health)]
    if me:
        args += ["--me", str(me)]
    for path, file in (serve or {}).items():
        args += ["--serve", path, str(file)]
    logf = open(log_path, "ab")
    try:
        return spawn(args, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT)
    finally:
        logf.close()


# --------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------


def measure_startup(ecap_bin: Path, work: Path) -> dict:
    """Start-up to first 200 from /ready: fresh (non-existent) data dir, then migrated."""
    results = {"fresh": [], "existing": []}
    existing_dir = None
    log_path = work / "startup.log"
    # One discarded run first: warms the page cache for the binary.
    for kind, runs in (("warmup", 1), ("fresh", STARTUP_RUNS), ("existing", STARTUP_RUNS)):
        for i in range(runs):
            if kind == "existing":
                data_dir = existing_dir
            else:
                data_dir = work / f"startup-{kind}-{i}" / "data"
                data_dir.parent.mkdir()
            port = free_port()
            t0 = time.perf_counter()
            proc = start_ecap(ecap_bin, port, data_dir, log_path)
            try:
                wait_ready(port, proc)
                elapsed = time.perf_counter() - t0
            except BenchError as e:
                raise BenchError(f"start-up ({kind}): {e}\n{tail(log_path)}") from None
            finally:
                stop(proc)
            if kind != "warmup":
                results[kind].append(elapsed * 1000)
            if existing_dir is None and kind == "fresh":
                existing_dir = data_dir  # migrated by this run, cleanly shut down
    return results


def register(port: int) -> str:
    status, body = http_request(port, "POST", "/api/auth/register",
                                {"name": USER_NAME, "email": USER_EMAIL, "password": USER_PASSWORD})
    if status != 201:
        raise BenchError(f"register: HTTP {status}: {body[:300]!r}")
    status, body = http_request(port, "POST", "/api/auth/login",
                                {"email": USER_EMAIL, "password": USER_PASSWORD})
    if status != 200:
        raise BenchError(f"login: HTTP {status}: {body[:300]!r}")
    token = json.loads(body)["data"]["token"]
    if not token:
        raise BenchError("login returned no token")
    return token


def throughput(ecap_port: int, bare_port: int, token: str, duration: float, rounds: int) -> dict:
    """Per endpoint: lists of Wrk results for ecap and bare, alternating order per round."""
    endpoints = {"/health": None, "/api/auth/me": token}
    res = {ep: {"ecap": [], "bare": []} for ep in endpoints}
    warm = min(2.0, max(1.0, duration / 5))
    for ep, tok in endpoints.items():
        for port in (ecap_port, bare_port):  # connection set-up, lazy init, caches
            run_wrk(f"http://127.0.0.1:{port}{ep}", 2, CONNECTIONS, warm, tok)
    for r in range(rounds):
        for ep, tok in endpoints.items():
            order = [("ecap", ecap_port), ("bare", bare_port)]
            if r % 2:
                order.reverse()
            for name, port in order:
                w = run_wrk(f"http://127.0.0.1:{port}{ep}", 2, CONNECTIONS, duration, tok)
                log(f"  round {r + 1} {name:4} {ep:14} {w.rps:10.0f} req/s  "
                    f"p50 {w.p50_ms:.3f} ms  p99 {w.p99_ms:.3f} ms  errors {w.errors}")
                res[ep][name].append(w)
    return res


def login_flood(ecap_port: int, duration: float) -> dict:
    health_url = f"http://127.0.0.1:{ecap_port}/health"
    login_url = f"http://127.0.0.1:{ecap_port}/api/auth/login"
    idle_before = run_wrk(health_url, 1, 1, duration)
    log(f"  idle  /health p99 {idle_before.p99_ms:.3f} ms ({idle_before.rps:.0f} req/s)")
    lead = 2.0  # the flood runs alone this long first, and this long after
    env = dict(os.environ, BENCH_EMAIL=USER_EMAIL, BENCH_PASSWORD=USER_PASSWORD)
    flood_args = wrk_args(login_url, 2, CONNECTIONS, duration + 2 * lead,
                          script=LOGIN_LUA, timeout_s=30)
    flood = spawn(flood_args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        time.sleep(lead)
        if flood.poll() is not None:
            raise BenchError(f"login wrk exited early: {flood.stderr.read() if flood.stderr else ''}")
        during = run_wrk(health_url, 1, 1, duration)
        out, err = flood.communicate(timeout=duration + 2 * lead + 40)
    except subprocess.TimeoutExpired:
        raise Timeout("login flood wrk did not finish") from None
    finally:
        stop(flood, 2)
    if flood.returncode != 0:
        raise BenchError(f"login wrk failed ({flood.returncode}): {err.strip()}")
    logins = parse_wrk(out)
    log(f"  flood /health p99 {during.p99_ms:.3f} ms; logins {logins.rps:.1f}/s "
        f"(p50 {logins.p50_ms:.0f} ms, p99 {logins.p99_ms:.0f} ms, errors {logins.errors})")
    # Idle again afterwards: the machine is noisy, so the baseline is taken on
    # both sides of the flood and the lower (stricter) p99 is the one compared.
    time.sleep(1.0)
    idle_after = run_wrk(health_url, 1, 1, duration)
    log(f"  idle  /health p99 {idle_after.p99_ms:.3f} ms ({idle_after.rps:.0f} req/s), after the flood")
    idle = min((idle_before, idle_after), key=lambda w: w.p99_ms)
    return {"idle": idle, "idle_before": idle_before, "idle_after": idle_after,
            "during": during, "login": logins}


# ---- catalog: product listing on a 10k catalog, cache on and off -----------

CATALOG_LIST = "/api/products?page=1&limit=20"
# Words of the generated demo names (crates/catalog/src/demo.rs), tried in
# order; the first one that fills a page of 20 is the search query.
SEARCH_WORDS = ("wireless", "headphones", "cotton", "leather", "smart")


def catalog_queries(port: int) -> tuple[dict[str, str], dict[str, int]]:
    """label -> path-with-query, and the `total` ecap reports for each."""
    queries = {"no filter": CATALOG_LIST,
               "category": f"{CATALOG_LIST}&category={CATALOG_CATEGORY}"}
    totals = {}
    word = None
    for w in SEARCH_WORDS:
        status, body = http_request(port, "GET", f"{CATALOG_LIST}&search={w}")
        if status == 200 and json.loads(body)["data"]["pagination"]["total"] >= 20:
            word = w
            break
    if word is None:
        raise BenchError(f"none of {SEARCH_WORDS} matches 20 products in the seeded catalog")
    queries["search"] = f"{CATALOG_LIST}&search={word}"
    for label, q in queries.items():
        status, body = http_request(port, "GET", q)
        if status != 200:
            raise BenchError(f"GET {q}: HTTP {status}: {body[:200]!r}")
        totals[label] = json.loads(body)["data"]["pagination"]["total"]
    return queries, totals


def catalog_bench(ecap_bin: Path, bare_bin: Path, work: Path, duration: float, rounds: int,
                  products: int) -> dict:
    root = work / "catalog"
    root.mkdir()
    data_dir = root / "data"
    log(f"catalog: seeding {products} products (ecap seed --products {products} --seed 1)")
    t0 = time.perf_counter()
    out = run_capture([str(ecap_bin), "--data-dir", str(data_dir), "seed", "--products",
                       str(products), "--seed", "1"], timeout=600, env=ecap_env(), cwd=root)
    seed_s = time.perf_counter() - t0
    seed_line = out.strip().splitlines()[-1] if out.strip() else ""
    log(f"  {seed_line} ({seed_s:.1f} s wall)")

    ports = {}
    procs = {}
    # Same data dir, one after the other (the second must not race the first's
    # start-up); the cache-off process reads every request from SQLite.
    for name, extra in (("on", {}), ("off", {"ECAP_CACHE_TTL_SECS": "0"})):
        port = free_port()
        while port in ports.values():
            port = free_port()
        log_path = root / f"ecap-cache-{name}.log"
        proc = start_ecap(ecap_bin, port, data_dir, log_path, extra)
        try:
            wait_ready(port, proc, poll=0.02)
        except BenchError as e:
            raise BenchError(f"{e}\n--- ecap (cache {name}) log ---\n{tail(log_path)}") from None
        ports[name], procs[name] = port, proc
    log(f"  ecap cache on: port {ports['on']} (pid {procs['on'].pid}); "
        f"cache off: port {ports['off']} (pid {procs['off'].pid})")

    queries, totals = catalog_queries(ports["on"])
    files = {}
    sizes = {}
    etags = {}
    for i, (label, q) in enumerate(queries.items()):
        st_on, h_on, body_on = http_get(ports["on"], q)
        st_off, h_off, body_off = http_get(ports["off"], q)
        if st_on != 200 or st_off != 200:
            raise BenchError(f"GET {q}: HTTP {st_on} (cache on) / {st_off} (cache off)")
        if body_on != body_off:
            raise BenchError(f"GET {q}: the cache-on and cache-off processes send different bodies")
        if http_get(ports["on"], q)[2] != body_on:
            raise BenchError(f"GET {q}: the body changes between requests")
        etags[label] = h_on.get("etag")
        files[q] = root / f"products-{i}.json"
        files[q].write_bytes(body_on)
        sizes[label] = len(body_on)
        log(f"  {label:9} {q}: {totals[label]} matching, body {len(body_on)} B, "
            f"ETag {etags[label] or 'missing'}")

    bare_port = free_port()
    while bare_port in ports.values():
        bare_port = free_port()
    bare_log = root / "bare.log"
    bare = start_bare(bare_bin, bare_port, bare_log, serve=files)
    try:
        wait_ready(bare_port, bare, path=CATALOG_LIST, poll=0.02)
    except BenchError as e:
        raise BenchError(f"{e}\n--- bare server log ---\n{tail(bare_log)}") from None
    for q, f in files.items():
        st, got = http_request(bare_port, "GET", q)
        if st != 200 or got != f.read_bytes():
            raise BenchError(f"bare server {q}: HTTP {st}, body differs from ecap's")

    servers = {"bare": bare_port, "on": ports["on"], "off": ports["off"]}
    res = {label: {name: [] for name in servers} for label in queries}
    warm = min(2.0, max(1.0, duration / 5))
    for q in queries.values():
        for port in servers.values():  # connections, lazy init, the product cache
            run_wrk(f"http://127.0.0.1:{port}{q}", 2, CONNECTIONS, warm)
    order = list(servers.items())
    for r in range(rounds):
        for label, q in queries.items():
            for name, port in order[r % 3:] + order[:r % 3]:
                # The warm-up above may be more than the cache's 60 s TTL ago:
                # one request refills the entry, so the run measures a warm
                # cache rather than 32 connections missing at once.
                st, _ = http_request(port, "GET", q)
                if st != 200:
                    raise BenchError(f"{name} {q}: HTTP {st}")
                w = run_wrk(f"http://127.0.0.1:{port}{q}", 2, CONNECTIONS, duration)
                log(f"  round {r + 1} {name:4} {label:9} {w.rps:10.0f} req/s  "
                    f"p50 {w.p50_ms:.3f} ms  p99 {w.p99_ms:.3f} ms  errors {w.errors}")
                res[label][name].append(w)
    rss = {name: rss_kb(procs[name].pid) for name in procs}
    for name, proc in procs.items():
        if proc.poll() is not None:
            raise BenchError(f"ecap (cache {name}) exited during the run ({proc.returncode})")
    stop(bare)
    for proc in procs.values():
        stop(proc)
    return {"products": products, "seed_line": seed_line, "seed_s": seed_s, "queries": queries,
            "totals": totals, "sizes": sizes, "etags": etags, "wrk": res, "rss_kb": rss}


# ---- gateway: its hop against nginx's, the same service behind both ---------

GATEWAY_QUERY = "/api/products?page=1&limit=20"
GATEWAY_PRODUCTS = 1000
GATEWAY_REDIS = "redis://127.0.0.1:6379"
GOAL_GATEWAY_HOP = 1.0  # the gateway adds <= nginx's own hop, at p50 and p99


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> int:
    """User + system CPU time of a process so far, in clock ticks."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def start_nginx(work: Path, port: int, upstreams: list[int]) -> subprocess.Popen:
    """deploy/nginx/nginx.conf as committed, with its two include files written here."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise BenchError("nginx not found (apt-get install nginx)")
    d = work / f"nginx-{port}"
    d.mkdir()
    os.chmod(d, 0o755)  # workers may run as another user
    shutil.copy(ROOT / "deploy" / "nginx" / "nginx.conf", d / "nginx.conf")
    (d / "listen.conf").write_text(f"listen 127.0.0.1:{port};\n")
    (d / "gateways.conf").write_text(
        "".join(f"server 127.0.0.1:{p} max_fails=2 fail_timeout=5s;\n" for p in upstreams))
    logf = open(d / "error.log", "ab")
    try:
        return spawn([nginx, "-p", str(d), "-c", str(d / "nginx.conf"), "-e", "stderr",
                      "-g", "daemon off;"],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=logf)
    finally:
        logf.close()


def start_split(bin_path: Path, only: str, port: int, data_dir: Path, log_path: Path,
                extra_env: dict) -> subprocess.Popen:
    logf = open(log_path, "ab")
    env = ecap_env()
    env.update(extra_env)
    try:
        return spawn([str(bin_path), "serve", "--only", only, "--port", str(port),
                      "--data-dir", str(data_dir)],
                     cwd=str(data_dir.parent), env=env, stdin=subprocess.DEVNULL,
                     stdout=logf, stderr=subprocess.STDOUT)
    finally:
        logf.close()


def gateway_bench(ecap_bin: Path, work: Path, duration: float, rounds: int) -> dict:
    root = work / "gateway"
    root.mkdir()
    data_dir = root / "data"
    log(f"gateway: seeding {GATEWAY_PRODUCTS} products")
    run_capture([str(ecap_bin), "--data-dir", str(data_dir), "seed", "--products",
                 str(GATEWAY_PRODUCTS), "--seed", "1"], timeout=600, env=ecap_env(), cwd=root)
    # Split services need Redis (shared revocations, this run's own key prefix)
    # and the service credential.
    prefix = f"ecap-bench-{os.getpid()}-{int(time.time())}:"
    redis = {"REDIS_URL": GATEWAY_REDIS, "REDIS_KEY_PREFIX": prefix,
             "INTERNAL_TOKEN": "bench-internal-token-0123456789"}
    used: set[int] = set()

    def port() -> int:
        p = free_port()
        while p in used:
            p = free_port()
        used.add(p)
        return p

    catalog_port = port()
    catalog = start_split(ecap_bin, "catalog", catalog_port, data_dir, root / "catalog.log", redis)
    try:
        wait_ready(catalog_port, catalog, poll=0.02)
    except BenchError as e:
        raise BenchError(f"{e}\n--- catalog log ---\n{tail(root / 'catalog.log')}") from None
    dead = port()  # services this run does not start
    gw_env = {
        "PRODUCT_SERVICE_URL": f"http://127.0.0.1:{catalog_port}",
        "USER_SERVICE_URL": f"http://127.0.0.1:{dead}",
        "ORDER_SERVICE_URL": f"http://127.0.0.1:{dead}",
        "ANALYTICS_SERVICE_URL": f"http://127.0.0.1:{dead}",
        "TRUSTED_PROXIES": "127.0.0.1",
    }
    gw_port, gw_redis_port = port(), port()
    gateway = start_split(ecap_bin, "gateway", gw_port, data_dir, root / "gateway.log", gw_env)
    gateway_redis = start_split(ecap_bin, "gateway", gw_redis_port, data_dir,
                                root / "gateway-redis.log", {**gw_env, **redis})
    nginx_port, nginx_gw_port = port(), port()
    nginx = start_nginx(root, nginx_port, [catalog_port])
    nginx_gw = start_nginx(root, nginx_gw_port, [gw_port])
    servers = {"direct": catalog_port, "nginx": nginx_port, "gateway": gw_port,
               "gateway+redis": gw_redis_port, "nginx+gateway": nginx_gw_port}
    for name, proc, p in (("gateway", gateway, gw_port), ("gateway+redis", gateway_redis,
                                                         gw_redis_port),
                          ("nginx", nginx, nginx_port), ("nginx+gateway", nginx_gw, nginx_gw_port)):
        try:
            wait_ready(p, proc, path=GATEWAY_QUERY, poll=0.05)
        except BenchError as e:
            raise BenchError(f"{e}\n--- {name} ---\n{tail(root / 'gateway.log')}") from None
    body = http_get(catalog_port, GATEWAY_QUERY)[2]
    for name, p in servers.items():
        st, _, got = http_get(p, GATEWAY_QUERY)
        if st != 200 or got != body:
            raise BenchError(f"{name}: HTTP {st}, body differs from the catalog's own")
    log(f"  servers: {servers}; body {len(body)} B")
    # The proxies' own processes on each path (nginx: its workers), whose CPU
    # time per request is read from /proc around each run: on a shared 2-CPU
    # machine it is steadier than latency.
    def workers(proc: subprocess.Popen) -> list[int]:
        kids = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        try:
            return [int(x) for x in kids.read_text().split()]
        except OSError:
            return []

    proxies = {"direct": [], "nginx": workers(nginx), "gateway": [gateway.pid],
               "gateway+redis": [gateway_redis.pid],
               "nginx+gateway": workers(nginx_gw) + [gateway.pid]}
    res: dict = {name: [] for name in servers}
    cpu: dict = {name: [] for name in servers}
    for p in servers.values():
        run_wrk(f"http://127.0.0.1:{p}{GATEWAY_QUERY}", 2, CONNECTIONS, min(2.0, duration))
    order = list(servers.items())
    for r in range(rounds):
        for name, p in order[r % len(order):] + order[:r % len(order)]:
            before = sum(cpu_ticks(pid) for pid in proxies[name])
            w = run_wrk(f"http://127.0.0.1:{p}{GATEWAY_QUERY}", 2, CONNECTIONS, duration)
            used = sum(cpu_ticks(pid) for pid in proxies[name]) - before
            per_req = used / CLOCK_TICKS * 1e6 / max(w.requests, 1)
            log(f"  round {r + 1} {name:14} {w.rps:9.0f} req/s  p50 {w.p50_ms:.3f} ms  "
                f"p99 {w.p99_ms:.3f} ms  proxy CPU {per_req:.1f} us/req  errors {w.errors}")
            res[name].append(w)
            cpu[name].append(per_req)
    rss = {"catalog": rss_kb(catalog.pid), "gateway": rss_kb(gateway.pid),
           "gateway+redis": rss_kb(gateway_redis.pid)}
    for proc in (nginx, nginx_gw, gateway, gateway_redis, catalog):
        stop(proc)
    return {"wrk": res, "cpu_us": cpu, "body": len(body), "rss_kb": rss,
            "products": GATEWAY_PRODUCTS}


def build_gateway_report(args, info: dict, r: dict) -> tuple[str, str]:
    w = r["wrk"]
    rps = {n: med([x.rps for x in w[n]]) for n in w}
    p50 = {n: med([x.p50_ms for x in w[n]]) for n in w}
    p99 = {n: med([x.p99_ms for x in w[n]]) for n in w}
    errs = {n: sum(x.errors for x in w[n]) for n in w}
    hop = {n: (p50[n] - p50["direct"], p99[n] - p99["direct"]) for n in w if n != "direct"}
    cpu = {n: med(v) for n, v in r.get("cpu_us", {}).items() if v}

    def ratio(a: float, b: float) -> float:
        return a / b if b > 0 else float("nan")

    r50 = ratio(hop["gateway"][0], hop["nginx"][0])
    r99 = ratio(hop["gateway"][1], hop["nginx"][1])
    met = r50 <= GOAL_GATEWAY_HOP and r99 <= GOAL_GATEWAY_HOP
    t = [f"gateway: {GATEWAY_QUERY}, wrk {CONNECTIONS} connections, 2 threads, "
         f"{args.duration:g}s x {args.rounds} round(s)",
         f"{'path':15} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'+p50 ms':>8} {'+p99 ms':>8}"]
    for n in w:
        h = hop.get(n, (0.0, 0.0))
        t.append(f"{n:15} {rps[n]:9.0f} {p50[n]:8.3f} {p99[n]:8.3f} {h[0]:8.3f} {h[1]:8.3f}"
                 + (f"  (errors {errs[n]})" if errs[n] else ""))
    t.append(f"goal {'MET    ' if met else 'NOT MET'}  gateway hop / nginx hop <= "
             f"{GOAL_GATEWAY_HOP:g}: p50 {fmt_ratio(r50)}, p99 {fmt_ratio(r99)}")
    rounds = "1 round" if args.rounds == 1 else f"{args.rounds} rounds (median across rounds)"
    start, end = MARKS["gateway"]
    m = [start, "## Gateway: its hop against nginx's", ""]
    m += run_lines(args, info)
    m.append(f"- Service: `ecap serve --only catalog` on SQLite ({r['products']:,} products, "
             f"`ecap seed --seed 1`), product cache in Redis; `GET {GATEWAY_QUERY}` "
             f"({r['body']:,} B)")
    m.append(f"- Load: `wrk -t2 -c{CONNECTIONS} -d{args.duration:g}s --latency`, {rounds}, "
             "client, proxies and service on the same machine; nginx with 2 workers "
             "(`auto`), "
             "`deploy/nginx/nginx.conf` as committed")
    m.append("")
    m.append("| Goal | Measured | Status |")
    m.append("|---|---|---|")
    m.append(f"| The gateway's added latency ≤ nginx's own hop, p50 and p99 | "
             f"p50 {fmt_ratio(r50)}×, p99 {fmt_ratio(r99)}× nginx's | {ok(met)} |")
    if cpu.get("gateway") and cpu.get("nginx"):
        rc = ratio(cpu["gateway"], cpu["nginx"])
        m.append(f"| (steadier) the gateway's CPU per request ≤ nginx's | "
                 f"{cpu['gateway']:.1f} µs vs {cpu['nginx']:.1f} µs: {fmt_ratio(rc)}× | "
                 f"{ok(rc <= GOAL_GATEWAY_HOP)} |")
    m.append("")
    m.append("| Path | req/s | p50 | p99 | added p50 | added p99 | proxy CPU per request "
             "| errors |")
    m.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    labels = {"direct": "client → catalog", "nginx": "client → nginx → catalog",
              "gateway": "client → gateway → catalog",
              "gateway+redis": "client → gateway (Redis rate limit) → catalog",
              "nginx+gateway": "client → nginx → gateway → catalog"}
    for n in w:
        h = hop.get(n)
        m.append(f"| {labels.get(n, n)} | {rps[n]:,.0f} | {p50[n]:.3f} ms | {p99[n]:.3f} ms | "
                 + (f"{h[0]:+.3f} ms | {h[1]:+.3f} ms" if h else "— | —")
                 + (f" | {cpu[n]:.1f} µs" if n in cpu and n != "direct" else " | —")
                 + f" | {errs[n]} |")
    m.append("")
    m.append("Added latency is each path's p50/p99 minus the direct path's, under the same "
             "load; proxy CPU is the user + system time of the proxies on the path (nginx's "
             "workers, the gateway process) during a run, divided by its requests. RSS after "
             "the runs: "
             + ", ".join(f"{k} {v / 1024:.1f} MB" for k, v in r["rss_kb"].items()) + ".")
    m.append("")
    m.append(end)
    return "\n".join(t), "\n".join(m) + "\n"


# ---- reservations: CatalogStore::reserve on SQLite and PostgreSQL ----------


def pg_reachable(url: str) -> str | None:
    """None when something listens where the URL points, else why not."""
    m = re.match(r"^postgres(?:ql)?://(?:[^@/]*@)?(\[[^\]]+\]|[^:/?]+)?(?::(\d+))?", url)
    if not m:
        return f"cannot parse {url}"
    host = (m.group(1) or "127.0.0.1").strip("[]")
    port = int(m.group(2) or 5432)
    try:
        with socket.create_connection((host, port), timeout=2):
            return None
    except OSError as e:
        return f"{host}:{port}: {e.strerror or e}"


def run_reserve(reserve_bin: Path, url: str, create_database: bool, duration: float,
                timeout: float) -> dict:
    args = [str(reserve_bin), "--database-url", url, "--duration", f"{duration:g}",
            "--tasks", str(RESERVE_TASKS), "--products", str(RESERVE_PRODUCTS),
            "--pool", str(RESERVE_POOL)]
    if create_database:
        args.append("--create-database")
    # Progress lines go straight to our stderr; the JSON result comes on stdout.
    proc = spawn(args, stdout=subprocess.PIPE, stderr=None, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(proc, 5)  # SIGTERM first: lets it drop its PostgreSQL database
        raise Timeout(f"{reserve_bin.name} did not finish within {timeout:.0f}s") from None
    finally:
        if proc in _children and proc.poll() is not None:
            _children.remove(proc)
    lines = out.strip().splitlines()
    # Exit 3: ran, but the stock/ledger check failed; the JSON says how.
    if proc.returncode not in (0, 3) or not lines:
        raise BenchError(f"{' '.join(args)} failed ({proc.returncode})")
    return json.loads(lines[-1])


def reserve_bench(reserve_bin: Path, work: Path, duration: float, pg_url: str | None) -> dict:
    # Products, two phases of warm-up + duration, the check, connection set-up.
    timeout = 2 * (duration + 1) + 120
    res = {}
    root = work / "reserve"
    root.mkdir()
    log(f"reservations, SQLite ({RESERVE_TASKS} tasks, pool {RESERVE_POOL}, {duration:g} s per phase)")
    res["sqlite"] = run_reserve(reserve_bin, f"sqlite://{root / 'reserve.db'}", False, duration,
                                timeout)
    if pg_url:
        why = pg_reachable(pg_url)
        if why:
            log(f"reservations, PostgreSQL: skipped, nothing answers ({why})")
            res["postgres"] = {"skipped": f"PostgreSQL not reachable ({why})"}
        else:
            log(f"reservations, PostgreSQL ({pg_url}, a fresh database)")
            res["postgres"] = run_reserve(reserve_bin, pg_url, True, duration, timeout)
    else:
        res["postgres"] = {"skipped": "--no-pg"}
    return res


def psql(pg_url: str, sql: str) -> None:
    p = subprocess.run(["psql", pg_url, "-v", "ON_ERROR_STOP=1", "-qc", sql],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise BenchError(f"psql {sql!r}: {p.stderr.strip()}")


def db_url(pg_url: str, name: str) -> str:
    m = re.match(r"^(postgres(?:ql)?://[^/]*)(/[^?]*)?(\?.*)?$", pg_url)
    if not m:
        raise BenchError(f"cannot parse {pg_url}")
    return f"{m.group(1)}/{name}{m.group(3) or ''}"


def run_orders_client(orders_bin: Path, port: int, extra: list[str], timeout: float) -> dict:
    args = [str(orders_bin), "--base", f"http://127.0.0.1:{port}"] + extra
    proc = spawn(args, stdout=subprocess.PIPE, stderr=None, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(proc, 5)
        raise Timeout(f"{orders_bin.name} did not finish within {timeout:.0f}s") from None
    finally:
        if proc in _children and proc.poll() is not None:
            _children.remove(proc)
    lines = out.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise BenchError(f"{' '.join(args)} failed ({proc.returncode})")
    return json.loads(lines[-1])


def psql_rows(pg_url: str, sql: str, timeout: float = 10) -> list[list[str]]:
    p = subprocess.run(["psql", pg_url, "-XAtq", "-F", "\t", "-c", sql],
                       capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise BenchError(f"psql {sql!r}: {p.stderr.strip()}")
    return [line.split("\t") for line in p.stdout.splitlines() if line]


def pg_db_stats(pg_url: str, dbname: str) -> dict:
    rows = psql_rows(pg_url, "SELECT xact_commit, xact_rollback, deadlocks FROM pg_stat_database "
                             f"WHERE datname = '{dbname}'")
    if not rows:
        return {}
    return dict(zip(("commits", "rollbacks", "deadlocks"), map(int, rows[0])))


# What ecap's pool connections were doing, by pg_stat_activity state/wait event.
WAIT_KINDS = ("running", "row lock", "WAL", "other wait", "idle in transaction", "idle")


def wait_kind(state: str, wtype: str, wevent: str) -> str:
    if state == "idle in transaction":
        return "idle in transaction"
    if state == "idle":
        return "idle"
    if not wtype:
        return "running"
    if wtype == "Lock":
        return "row lock"
    if "WAL" in wevent:
        return "WAL"
    return "other wait"


class ActivitySampler:
    """Samples pg_stat_activity for one database every ORDER_SAMPLE_S in a thread."""

    def __init__(self, pg_url: str, dbname: str):
        self.pg_url, self.dbname = pg_url, dbname
        self.counts = {k: 0 for k in WAIT_KINDS}
        self.samples = 0
        self.events: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        sql = ("SELECT coalesce(state, ''), coalesce(wait_event_type, ''), "
               "coalesce(wait_event, ''), count(*) FROM pg_stat_activity "
               f"WHERE datname = '{self.dbname}' AND pid <> pg_backend_pid() GROUP BY 1, 2, 3")
        while not self._stop.wait(ORDER_SAMPLE_S):
            try:
                rows = psql_rows(self.pg_url, sql, timeout=5)
            except (BenchError, subprocess.TimeoutExpired):
                continue
            self.samples += 1
            for state, wtype, wevent, n in rows:
                self.counts[wait_kind(state, wtype, wevent)] += int(n)
                if wtype:
                    name = f"{wtype}:{wevent}"
                    self.events[name] = self.events.get(name, 0) + int(n)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *_):
        self._stop.set()
        self._thread.join(timeout=10)

    def result(self) -> dict:
        total = sum(self.counts.values())
        return {"samples": self.samples, "backend_samples": total,
                "share": {k: (v / total if total else 0.0) for k, v in self.counts.items()},
                "top_events": sorted(self.events.items(), key=lambda kv: -kv[1])[:6]}


def pgbench(pg_url: str, clients: int, duration: float) -> dict:
    p = subprocess.run(["pgbench", "-n", "-c", str(clients), "-j", "2", "-T", f"{duration:.0f}",
                        pg_url], capture_output=True, text=True, timeout=duration + 120)
    if p.returncode != 0:
        raise BenchError(f"pgbench -c {clients}: {p.stderr.strip()[-400:]}")
    tps = re.search(r"tps = ([0-9.]+)", p.stdout)
    lat = re.search(r"latency average = ([0-9.]+) ms", p.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", p.stdout)
    if not tps:
        raise BenchError(f"pgbench output without tps: {p.stdout[-400:]}")
    return {"clients": clients, "tps": float(tps.group(1)),
            "latency_avg_ms": float(lat.group(1)) if lat else None,
            "failed": int(failed.group(1)) if failed else 0}


def pgbench_init(pg_url: str, name: str) -> str:
    """A fresh database `name` with pgbench's tables at scale 10; returns its URL."""
    psql(pg_url, f"DROP DATABASE IF EXISTS {name}")
    psql(pg_url, f"CREATE DATABASE {name}")
    url = db_url(pg_url, name)
    log("pgbench -i -s 10 (TPC-B-like) on a scratch database")
    p = subprocess.run(["pgbench", "-i", "-q", "-s", "10", url], capture_output=True,
                       text=True, timeout=300)
    if p.returncode != 0:
        raise BenchError(f"pgbench -i: {p.stderr.strip()[-400:]}")
    return url


def orders_bench(ecap_bin: Path, orders_bin: Path, work: Path, args) -> dict:
    """Orders over HTTP on SQLite and PostgreSQL; on PostgreSQL each point is followed
    by pgbench at the same client count on the same server (pairs, `--rounds` times)."""
    duration, pg_url = args.duration, (None if args.no_pg else args.pg_url)
    res: dict = {}
    root = work / "orders"
    root.mkdir()
    backends = [("sqlite", None)]
    why = pg_reachable(pg_url) if pg_url else "--no-pg"
    if why is None and not (shutil.which("pgbench") and shutil.which("psql")):
        why = "pgbench/psql not on PATH (apt-get install postgresql-client)"
    if why is None:
        backends.append(("postgres", f"ecap_bench_orders_{os.getpid()}"))
    else:
        res["postgres"] = {"skipped": why}
        log(f"orders, PostgreSQL: skipped ({why})")
    pgbench_db = f"ecap_bench_pgbench_{os.getpid()}"
    for key, dbname in backends:
        data = root / key / "data"
        data.mkdir(parents=True)
        extra = {}
        bench_url = None
        if dbname:
            bench_url = pgbench_init(pg_url, pgbench_db)
            res["pgbench"] = {c: [] for c in ORDER_CLIENTS}
            psql(pg_url, f"DROP DATABASE IF EXISTS {dbname}")
            psql(pg_url, f"CREATE DATABASE {dbname}")
            extra["DATABASE_URL"] = db_url(pg_url, dbname)
        port = free_port()
        log(f"orders, {key}: {args.order_products} products, {ORDER_CUSTOMERS} customers; "
            f"clients {ORDER_CLIENTS}, {duration:g} s each (at most {args.orders_max:,} orders), "
            f"{args.rounds} round(s)")
        proc = start_ecap(ecap_bin, port, data, root / f"{key}.log", extra)
        try:
            wait_ready(port, proc)
            state = root / f"{key}-state.json"
            setup = run_orders_client(orders_bin, port, [
                "--setup", str(state), "--customers", str(ORDER_CUSTOMERS),
                "--products", str(args.order_products)], timeout=300)
            db_before = None
            if dbname:
                # An idle backend may hold its counters up to 10 s (PGSTAT_IDLE_INTERVAL):
                # wait them out, so the set-up is not counted below.
                time.sleep(10.5)
                db_before = pg_db_stats(pg_url, dbname)
            phases: dict[int, list] = {c: [] for c in ORDER_CLIENTS}
            for rnd in range(args.rounds):
                for c in ORDER_CLIENTS:
                    client_args = ["--state", str(state), "--clients", str(c), "--duration",
                                   f"{duration:g}", "--max-orders", str(args.orders_max)]
                    timeout = duration + 120
                    if dbname:
                        with ActivitySampler(pg_url, dbname) as sampler:
                            out = run_orders_client(orders_bin, port, client_args, timeout)
                        ph = out["phases"][0]
                        ph["activity"] = sampler.result()
                    else:
                        ph = run_orders_client(orders_bin, port, client_args, timeout)["phases"][0]
                    log(f"  round {rnd + 1} {key:8} {c:3} clients {ph['per_sec']:7.0f} orders/s  "
                        f"p50 {ph['p50_ms']:.1f} ms  p99 {ph['p99_ms']:.1f} ms  "
                        f"errors {ph['errors']}")
                    phases[c].append(ph)
                    if proc.poll() is not None:
                        raise BenchError(f"ecap ({key}) exited during the run ({proc.returncode})")
                    if bench_url:
                        b = pgbench(bench_url, c, duration)
                        log(f"  round {rnd + 1} pgbench  {c:3} clients {b['tps']:7.0f} tps")
                        res["pgbench"][c].append(b)
            res[key] = {"customers": setup["customers"], "products": setup["products"],
                        "rounds": phases}
            if dbname:
                stop(proc)  # closing its connections makes every backend report its counters
                time.sleep(1.0)
                after = pg_db_stats(pg_url, dbname)
                res[key]["db"] = {k: after.get(k, 0) - db_before.get(k, 0) for k in after}
                res[key]["db"]["orders"] = sum(ph["orders"] + ph.get("warmup_orders", 0)
                                               for rs in phases.values() for ph in rs)
        except BenchError as e:
            raise BenchError(f"{e}\n--- ecap log ---\n{tail(root / f'{key}.log')}") from None
        finally:
            stop(proc)
            if dbname:
                psql(pg_url, f"DROP DATABASE IF EXISTS {dbname}")
                psql(pg_url, f"DROP DATABASE IF EXISTS {pgbench_db}")
    return res


def median_phase(rounds: list[dict]) -> dict:
    """One client count over `--rounds` rounds: the round with the median orders/s
    (its latencies and activity belong to it); errors summed."""
    ordered = sorted(rounds, key=lambda ph: ph["per_sec"])
    ph = dict(ordered[(len(ordered) - 1) // 2])
    ph["errors"] = sum(x["errors"] for x in rounds)
    ph["per_sec_all"] = [x["per_sec"] for x in rounds]
    return ph


def build_orders_report(args, info: dict, r: dict) -> tuple[str, str]:
    names = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
    t = [f"orders: POST /api/orders, 3 lines, clients {ORDER_CLIENTS}, {args.duration:g} s each"]
    start, end = MARKS["orders"]
    m = [start, "## Orders: placement over HTTP, and pgbench as the yardstick", ""]
    m += run_lines(args, info)
    m.append(f"- Load: `ecap-bench-orders` (`bench/src/orders.rs`): {ORDER_CUSTOMERS} customers "
             f"registered and {args.order_products} products with 10 million units each created "
             f"through the API; every order 3 distinct random products × 1 unit, inline address, "
             f"no Idempotency-Key; per client count 1 s of warm-up, then {args.duration:g} s "
             f"(or {args.orders_max:,} orders, whichever comes first). Client, ecap and the "
             f"database share the machine's CPUs. ecap all-in-one release build "
             f"(`ecap serve`, catalog and orders in one database), pool of 10 connections "
             f"(the default), rate limits raised out of the way")
    m.append("- Yardstick: `pgbench -i -s 10` on a scratch database, then `pgbench -n -c N -j 2 "
             f"-T {args.duration:g}` (the built-in TPC-B-like script) on the same PostgreSQL "
             "server right after each ecap point at the same client count, so each pair sees "
             "the same machine load")
    if args.rounds > 1:
        m.append(f"- {args.rounds} rounds; each row is the round with the median orders/s "
                 "(pgbench: median tps), errors summed over the rounds")
    m.append("")
    m.append("| Database | Clients | orders/s | p50 | p99 | max | errors |")
    m.append("|---|---:|---:|---:|---:|---:|---:|")
    notes = []
    activity = []
    for key in ("sqlite", "postgres"):
        res = r.get(key)
        if res is None:
            continue
        if "skipped" in res:
            notes.append(f"{names[key]}: skipped, {res['skipped']}.")
            t.append(f"{names[key]:10} skipped: {res['skipped']}")
            continue
        for ph in (median_phase(rs) for rs in res["rounds"].values()):
            m.append(f"| {names[key]} | {ph['clients']} | **{ph['per_sec']:,.0f}** | "
                     f"{ph['p50_ms']:.1f} ms | {ph['p99_ms']:.1f} ms | {ph['max_ms']:.1f} ms | "
                     f"{ph['errors']} |")
            if len(ph["per_sec_all"]) > 1:
                notes.append(f"{names[key]} {ph['clients']} clients, orders/s per round: "
                             + ", ".join(f"{x:,.0f}" for x in ph["per_sec_all"]) + ".")
            t.append(f"{names[key]:10} {ph['clients']:3} clients {ph['per_sec']:8.0f}/s  p50 "
                     f"{ph['p50_ms']:.1f} ms  p99 {ph['p99_ms']:.1f} ms  errors {ph['errors']}")
            if ph.get("first_error"):
                notes.append(f"{names[key]} {ph['clients']} clients: first error: "
                             f"{ph['first_error'][:200]}")
            if ph.get("seconds") and ph["seconds"] < args.duration - 0.01:
                notes.append(f"{names[key]} {ph['clients']} clients: stopped at "
                             f"{args.orders_max:,} orders after {ph['seconds']:.1f} s.")
            if ph.get("activity", {}).get("backend_samples"):
                activity.append((ph["clients"], ph["activity"]))
    m.append("")
    db = (r.get("postgres") or {}).get("db")
    if db and db.get("orders"):
        m.append(f"PostgreSQL commits per order: **{db['commits'] / db['orders']:.2f}** "
                 f"(`pg_stat_database.xact_commit` of ecap's database over all the points, "
                 f"warm-ups and ecap's background work such as the outbox relay included, ÷ "
                 f"{db['orders']:,} orders placed); {db['rollbacks']} rollbacks, "
                 f"{db['deadlocks']} deadlocks. A TPC-B transaction is one commit.")
        m.append("")
        t.append(f"PostgreSQL commits/order {db['commits'] / db['orders']:.2f}, rollbacks "
                 f"{db['rollbacks']}, deadlocks {db['deadlocks']}")
    if r.get("pgbench"):
        pg = {c: median_phase(rs) for c, rs in r["postgres"]["rounds"].items()}
        m.append("| Clients | pgbench TPC-B tps | pgbench latency avg | ecap orders/s on PostgreSQL "
                 f"| ratio (goal ≥ {GOAL_ORDERS_VS_PGBENCH}) |")
        m.append("|---:|---:|---:|---:|---:|")
        for c, bs in r["pgbench"].items():
            b = {"clients": c, "tps": med([x["tps"] for x in bs]),
                 "latency_avg_ms": med([x["latency_avg_ms"] or 0.0 for x in bs]),
                 "failed": sum(x.get("failed", 0) for x in bs)}
            ours = pg.get(c, {}).get("per_sec", 0.0)
            ratio = ours / b["tps"] if b["tps"] else float("nan")
            lat = f"{b['latency_avg_ms']:.1f} ms" if b["latency_avg_ms"] is not None else "—"
            m.append(f"| {b['clients']} | {b['tps']:,.0f} | {lat} | {ours:,.0f} | "
                     f"**{fmt_ratio(ratio)}** {ok(ratio >= GOAL_ORDERS_VS_PGBENCH)} |")
            t.append(f"pgbench    {b['clients']:3} clients {b['tps']:8.0f} tps; ecap/pgbench "
                     f"{fmt_ratio(ratio)}")
            if len(bs) > 1:
                notes.append(f"pgbench -c {c}, tps per round: "
                             + ", ".join(f"{x['tps']:,.0f}" for x in bs) + ".")
            if b.get("failed"):
                notes.append(f"pgbench -c {b['clients']}: {b['failed']} failed transactions.")
        m.append("")
    if activity:
        m.append(f"What ecap's PostgreSQL connections were doing during the runs "
                 f"(`pg_stat_activity` of the ecap database sampled every {ORDER_SAMPLE_S:g} s; "
                 f"share of backend samples):")
        m.append("")
        m.append("| Clients | running | row-lock wait | WAL write/flush | other wait "
                 "| idle in transaction | idle | top wait events |")
        m.append("|---:|---:|---:|---:|---:|---:|---:|---|")
        for clients, a in activity:
            sh = a["share"]
            top = ", ".join(f"{name} {n / a['backend_samples']:.0%}"
                            for name, n in a["top_events"][:3])
            m.append(f"| {clients} | " + " | ".join(f"{sh[k]:.0%}" for k in WAIT_KINDS)
                     + f" | {top} |")
            t.append(f"PG activity {clients:3} clients: " + ", ".join(
                f"{k} {sh[k]:.0%}" for k in WAIT_KINDS))
        m.append("")
        m.append("*idle in transaction*: the database has answered and waits for ecap's next "
                 "statement of an open transaction; *idle*: a pooled connection with no "
                 "transaction; *row-lock wait*: waiting for another transaction's row lock "
                 "(stock rows, the customer's order counter).")
        m.append("")
    for line in notes:
        m.append(f"Note: {line}")
        m.append("")
    m.append("Here catalog and orders share each database, so an order is one transaction: the "
             "reservation of all lines (one conditional `UPDATE … RETURNING` per line, one "
             "ledger insert, the reservation row) and the order with its number, items, history "
             "row and outbox event — plus the HTTP, JSON and token work; a TPC-B transaction is "
             "five statements in one. The outbox relay's reads and `delivered_at` updates are "
             "the commits beyond one per order. See the analysis below for where the time goes.")
    m.append("")
    m.append(end)
    return "\n".join(t), "\n".join(m) + "\n"


# ---- analytics: dashboard/revenue latency at growing sizes, against the raw orders ----

ANALYTICS_SIZES = (10_000, 1_000_000, 10_000_000)
DASHBOARD_PATH = "/api/analytics/dashboard?period=30d&tz=UTC"
REVENUE_PATH = "/api/analytics/revenue?period=12m&granularity=day&tz=UTC"
AN_ENDPOINTS = (("dashboard", DASHBOARD_PATH), ("revenue", REVENUE_PATH))
AN_ADMIN_EMAIL = "bench-admin@example.com"
AN_ADMIN_PASSWORD = "Admin123!x"
AN_CUSTOMER_EMAIL = "bench-customer@example.com"
AN_REQUESTS = 3000  # sequential requests per endpoint, one kept-alive connection
AN_CLIENTS = 8
AN_CLIENT_REQUESTS = 1000  # per concurrent client
AN_WARMUP_S = 2.0
AN_MAX_S = 120.0  # per latency run at most (ends the run early if ecap is slow)
AN_SQLITE_RUNS = 3
AN_DUCKDB_RUNS = 5  # after one warm-up run
AN_CONSUMER_BATCHES = (1, 100)
AN_CONSUMER_S = 10.0
AN_SSE_RATE = 10.0  # orders per second
AN_SSE_S = 10.0
AN_SSE_SEED_ORDERS = 1000
AN_SEED = 1
DUCKDB_SPEC = "duckdb==2.0.1"
VENV_DIR = BENCH_DIR / ".venv"
GOAL_SEED_1M_S = 60.0  # ecap seed --orders 1000000 on SQLite
GOAL_FLAT = 2.0  # p50 at the largest size / p50 at the smallest
GOAL_VS_DUCKDB = 100.0  # ecap p50 at least this many times faster than DuckDB at 10M
DAY_MS = 86_400_000
NOT_COUNTED = "('cancelled', 'refunded', 'deleted')"


def fmt_n(n: int) -> str:
    """10000 -> 10k, 1000000 -> 1M."""
    for div, unit in ((1_000_000, "M"), (1_000, "k")):
        if n >= div and n % div == 0:
            return f"{n // div}{unit}"
    return f"{n:,}"


def baseline_queries(orders: str, items: str, idiv: str, lo: int, hi: int) -> dict:
    """The raw-order queries both baselines run; `idiv` is the integer division
    operator (SQLite `/`, DuckDB `//`). Grouped as the two endpoints."""
    return {
        "revenue": [
            f"SELECT created_at {idiv} {DAY_MS} AS day, COUNT(*), "
            f"SUM(CASE WHEN status NOT IN {NOT_COUNTED} THEN total_cents ELSE 0 END), "
            f"SUM(total_cents) FROM {orders} WHERE created_at >= {int(lo)} "
            f"AND created_at < {int(hi)} GROUP BY day",
        ],
        "dashboard": [
            f"SELECT status, COUNT(*), SUM(total_cents) FROM {orders} GROUP BY status",
            f"SELECT SUM(quantity) FROM {items}",
            # IN (subquery) rather than a join: 3-4x faster on SQLite (the join
            # walks the product index and probes orders row by row).
            f"SELECT product_id, SUM(quantity) AS units, SUM(quantity * price_cents) AS revenue "
            f"FROM {items} WHERE order_id IN (SELECT id FROM {orders} WHERE status NOT IN "
            f"{NOT_COUNTED}) GROUP BY product_id ORDER BY units DESC, revenue DESC, product_id "
            f"LIMIT 10",
        ],
    }


def answer_from_rows(revenue_rows, status_rows, items_rows, top_rows) -> dict:
    """The comparable answer from the baseline queries' rows (integers only)."""
    epoch = dt.date(1970, 1, 1)
    days = {}
    for day, n, net, gross in revenue_rows:
        days[(epoch + dt.timedelta(days=int(day))).isoformat()] = [int(n), int(net or 0),
                                                                   int(gross or 0)]
    statuses = {s: [int(n), int(g or 0)] for s, n, g in status_rows}
    uncounted = ("cancelled", "refunded", "deleted")
    return {
        "days": days,
        "totalOrders": sum(v[0] for v in statuses.values()),
        "totalRevenue": sum(v[1] for s, v in statuses.items() if s not in uncounted),
        "itemsSold": int(items_rows[0][0] or 0),
        "statuses": statuses,
        "top": [[p, int(u), int(r)] for p, u, r in top_rows],
    }


def cents(x) -> int:
    return int(round(float(x) * 100))


def ecap_answer(dashboard: dict, revenue: dict) -> tuple[dict, list[str]]:
    """ecap's answer in the same shape, and problems with the series itself."""
    problems = []
    series = revenue["revenue"]
    first, last = revenue["range"]["firstDay"], revenue["range"]["lastDay"]
    want = dt.date.fromisoformat(first)
    for p in series:
        if p["date"] != want.isoformat():
            problems.append(f"revenue series: expected {want}, got {p['date']} (not complete)")
            break
        want += dt.timedelta(days=1)
    if series and series[-1]["date"] != last:
        problems.append(f"revenue series ends at {series[-1]['date']}, lastDay is {last}")
    days = {p["date"]: [int(p["orders"]), cents(p["revenue"]), cents(p["grossSales"])]
            for p in series if p["orders"] or p["revenue"] or p["grossSales"]}
    statuses = {s["status"]: [int(s["count"]), cents(s["revenue"])]
                for s in dashboard["statusBreakdown"] if s["count"] or s["revenue"]}
    return {
        "days": days,
        "totalOrders": int(dashboard["totalOrders"]),
        "totalRevenue": cents(dashboard["totalRevenue"]),
        "itemsSold": int(dashboard["itemsSold"]),
        "statuses": statuses,
        "top": [[t["productId"], int(t["sales"]), cents(t["revenue"])]
                for t in dashboard["topProducts"]],
    }, problems


def compare_answers(ours: dict, theirs: dict, name: str) -> list[str]:
    """Every difference (first few per kind), described with both values."""
    out = []
    day_diffs = [d for d in sorted(set(ours["days"]) | set(theirs["days"]))
                 if ours["days"].get(d, [0, 0, 0]) != theirs["days"].get(d, [0, 0, 0])]
    for d in day_diffs[:5]:
        out.append(f"{name}: day {d}: ecap [orders, net cents, gross cents] "
                   f"{ours['days'].get(d, [0, 0, 0])}, {name} {theirs['days'].get(d, [0, 0, 0])}")
    if len(day_diffs) > 5:
        out.append(f"{name}: … {len(day_diffs)} days differ in all")
    for k in ("totalOrders", "totalRevenue", "itemsSold"):
        if ours[k] != theirs[k]:
            out.append(f"{name}: {k}: ecap {ours[k]}, {name} {theirs[k]}")
    for s in sorted(set(ours["statuses"]) | set(theirs["statuses"])):
        a, b = ours["statuses"].get(s, [0, 0]), theirs["statuses"].get(s, [0, 0])
        if a != b:
            out.append(f"{name}: status {s} [count, gross cents]: ecap {a}, {name} {b}")
    if ours["top"] != theirs["top"]:
        out.append(f"{name}: top products [id, units, net cents]: ecap {ours['top']}, "
                   f"{name} {theirs['top']}")
    return out


def sqlite_baseline(db_path: Path, lo: int, hi: int, runs: int) -> dict:
    """The queries on ecap's SQLite file (read-only), median of `runs` runs per endpoint."""
    import sqlite3
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        qs = baseline_queries("orders", "order_items", "/", lo, hi)
        times = {k: [] for k in qs}
        rows = {}
        for _ in range(runs):
            for k, group in qs.items():
                t0 = time.perf_counter()
                rows[k] = [con.execute(q).fetchall() for q in group]
                times[k].append(time.perf_counter() - t0)
        plans = {k: [" / ".join(r[-1] for r in con.execute("EXPLAIN QUERY PLAN " + q))
                     for q in group] for k, group in qs.items()}
    finally:
        con.close()
    answer = answer_from_rows(rows["revenue"][0], *rows["dashboard"])
    return {"version": sqlite3.sqlite_version, "runs": runs, "times": times, "answer": answer,
            "plans": plans}


def duckdb_worker(spec: dict) -> int:
    """Runs inside bench/.venv (which has duckdb): exports the SQLite orders to
    Parquet through DuckDB's own COPY, then times the baseline queries on the
    Parquet files. Prints one JSON object."""
    import csv
    import sqlite3

    import duckdb  # noqa: PLC0415 - only in the venv

    work = Path(spec["dir"])
    work.mkdir(parents=True, exist_ok=True)
    # Nothing may be fetched at run time: Parquet and CSV are in the core wheel.
    con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                 "autoload_known_extensions": False})
    src = sqlite3.connect(f"file:{spec['sqlite']}?mode=ro", uri=True)
    tables = {
        "orders": ("SELECT id, user_id, created_at, status, total_cents, payment_method "
                   "FROM orders ORDER BY id",
                   {"id": "BIGINT", "user_id": "BIGINT", "created_at": "BIGINT",
                    "status": "VARCHAR", "total_cents": "BIGINT", "payment_method": "VARCHAR"}),
        "order_items": ("SELECT order_id, product_id, category, quantity, price_cents "
                        "FROM order_items ORDER BY id",
                        {"order_id": "BIGINT", "product_id": "VARCHAR", "category": "VARCHAR",
                         "quantity": "BIGINT", "price_cents": "BIGINT"}),
    }
    t0 = time.perf_counter()
    files, rows, sizes = {}, {}, {}
    for name, (sql, cols) in tables.items():
        csv_path = work / f"{name}.csv"
        n = 0
        with open(csv_path, "w", newline="") as f:
            w = csv.writer(f)
            cur = src.execute(sql)
            while True:
                chunk = cur.fetchmany(100_000)
                if not chunk:
                    break
                w.writerows(chunk)
                n += len(chunk)
        pq = work / f"{name}.parquet"
        col_spec = ", ".join(f"'{c}': '{t}'" for c, t in cols.items())
        con.execute(f"COPY (SELECT * FROM read_csv('{csv_path}', header = false, "
                    f"columns = {{{col_spec}}})) TO '{pq}' (FORMAT parquet)")
        csv_path.unlink()
        files[name], rows[name], sizes[name] = pq, n, pq.stat().st_size
    src.close()
    export_s = time.perf_counter() - t0
    qs = baseline_queries(f"read_parquet('{files['orders']}')",
                          f"read_parquet('{files['order_items']}')", "//", spec["lo"], spec["hi"])
    times = {k: [] for k in qs}
    results = {}
    for i in range(spec["runs"] + 1):  # the first run is the warm-up
        for k, group in qs.items():
            t = time.perf_counter()
            results[k] = [con.execute(q).fetchall() for q in group]
            if i > 0:
                times[k].append(time.perf_counter() - t)
    con.close()
    for pq in files.values():
        pq.unlink()
    answer = answer_from_rows(results["revenue"][0], *results["dashboard"])
    print(json.dumps({"version": duckdb.__version__, "export_s": export_s, "rows": rows,
                      "parquet_bytes": sizes, "runs": spec["runs"], "times": times,
                      "answer": answer}))
    return 0


def ensure_duckdb() -> tuple[Path | None, str | None]:
    """bench/.venv with DuckDB from PyPI (created on first use); (python, why not)."""
    py = VENV_DIR / "bin" / "python"
    check = [str(py), "-c", "import duckdb"]
    if py.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return py, None
    log(f"creating {VENV_DIR} with {DUCKDB_SPEC} (pip, PyPI)")
    p = subprocess.run([sys.executable, "-m", "venv", str(VENV_DIR)], capture_output=True,
                       text=True, timeout=300)
    if p.returncode != 0:
        return None, f"python3 -m venv failed: {p.stderr.strip()[-300:]}"
    p = subprocess.run([str(py), "-m", "pip", "install", "-q", DUCKDB_SPEC],
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0 or subprocess.run(check, capture_output=True).returncode != 0:
        return None, f"pip install {DUCKDB_SPEC} failed: {p.stderr.strip()[-300:]}"
    return py, None


def create_admin(ecap_bin: Path, data_dir: Path) -> None:
    p = subprocess.run([str(ecap_bin), "--data-dir", str(data_dir), "users", "create-admin",
                        "--email", AN_ADMIN_EMAIL, "--name", "Bench Admin"],
                       input=AN_ADMIN_PASSWORD + "\n", capture_output=True, text=True,
                       env=ecap_env(), cwd=str(data_dir.parent), timeout=120)
    if p.returncode != 0:
        raise BenchError(f"users create-admin: {p.stderr.strip()[-400:]}")


def login(port: int, email: str, password: str) -> str:
    status, body = http_request(port, "POST", "/api/auth/login",
                                {"email": email, "password": password})
    if status != 200:
        raise BenchError(f"login {email}: HTTP {status}: {body[:300]!r}")
    return json.loads(body)["data"]["token"]


def get_json(port: int, path: str, token: str, timeout: float = 60.0) -> dict:
    status, body = http_request(port, "GET", path, token=token, timeout=timeout)
    if status != 200:
        raise BenchError(f"GET {path}: HTTP {status}: {body[:300]!r}")
    return json.loads(body)["data"]


def seed_orders(ecap_bin: Path, data_dir: Path, n: int) -> dict:
    timeout = 300 + n * 4e-4
    args = [str(ecap_bin), "--data-dir", str(data_dir), "seed", "--orders", str(n),
            "--seed", str(AN_SEED)]
    t0 = time.perf_counter()
    proc = spawn(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ecap_env(),
                 cwd=str(data_dir.parent))
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(proc, 5)
        raise Timeout(f"ecap seed --orders {n} did not finish within {timeout:.0f}s") from None
    finally:
        if proc in _children and proc.poll() is not None:
            _children.remove(proc)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise BenchError(f"ecap seed --orders {n} failed ({proc.returncode}): {err.strip()[-600:]}")
    # Its summary lines go to stdout or stderr; the log lines start with a timestamp.
    lines = [x.strip() for x in (out + "\n" + err).splitlines()
             if x.strip().startswith(("seeded", "analytics rebuilt"))]
    rebuild = None
    for line in lines:
        m = re.search(r"analytics rebuilt from \d+ orders in ([\d.]+) s", line)
        if m:
            rebuild = float(m.group(1))
    db = data_dir / "ecap.db"
    return {"wall_s": wall, "lines": lines, "rebuild_s": rebuild,
            "db_bytes": db.stat().st_size if db.exists() else None}


def run_bench_json(args: list[str], timeout: float) -> dict:
    """A bench binary with progress on our stderr and one JSON line on stdout."""
    proc = spawn(args, stdout=subprocess.PIPE, stderr=None, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(proc, 5)  # SIGTERM first
        raise Timeout(f"{Path(args[0]).name} did not finish within {timeout:.0f}s") from None
    finally:
        if proc in _children and proc.poll() is not None:
            _children.remove(proc)
    lines = out.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise BenchError(f"{' '.join(args[:2])} failed ({proc.returncode})")
    return json.loads(lines[-1])


def analytics_size(ecap_bin: Path, an_bin: Path, root: Path, n: int, duck_py: Path | None,
                   keep: bool) -> dict:
    res: dict = {"orders": n}
    data = root / f"n{n}" / "data"
    data.mkdir(parents=True)
    log(f"analytics {fmt_n(n)}: ecap seed --orders {n} --seed {AN_SEED} (SQLite, fresh data dir)")
    res["seed"] = seed_orders(ecap_bin, data, n)
    log(f"  seeded in {res['seed']['wall_s']:.1f} s wall ({'; '.join(res['seed']['lines'])})")
    create_admin(ecap_bin, data)
    port = free_port()
    log_path = root / f"ecap-n{n}.log"
    t0 = time.perf_counter()
    proc = start_ecap(ecap_bin, port, data, log_path)
    try:
        try:
            wait_ready(port, proc, timeout=60 + n * 2e-5, poll=0.02)
        except BenchError as e:
            raise BenchError(f"{e}\n--- ecap log ---\n{tail(log_path)}") from None
        res["ready_s"] = time.perf_counter() - t0
        time.sleep(0.5)
        res["rss_kb_start"] = rss_kb(proc.pid)
        token = login(port, AN_ADMIN_EMAIL, AN_ADMIN_PASSWORD)
        before = {k: get_json(port, p, token) for k, p in AN_ENDPOINTS}
        log(f"  ecap ready in {res['ready_s']:.2f} s (RSS {res['rss_kb_start'] / 1024:.0f} MB); "
            f"totalOrders {before['dashboard']['totalOrders']:,}")
        res["latency"] = run_bench_json(
            [str(an_bin), "latency", "--base", f"http://127.0.0.1:{port}", "--token", token,
             "--path", DASHBOARD_PATH, "--path", REVENUE_PATH, "--warmup", f"{AN_WARMUP_S:g}",
             "--requests", str(AN_REQUESTS), "--clients", str(AN_CLIENTS),
             "--client-requests", str(AN_CLIENT_REQUESTS), "--max-seconds", f"{AN_MAX_S:g}"],
            timeout=4 * (AN_MAX_S + AN_WARMUP_S) + 60)
        after = {k: get_json(port, p, token) for k, p in AN_ENDPOINTS}
        res["rss_kb_after"] = rss_kb(proc.pid)
        if proc.poll() is not None:
            raise BenchError(f"ecap exited during the run ({proc.returncode})\n{tail(log_path)}")
    finally:
        stop(proc)
    ours, problems = ecap_answer(after["dashboard"], after["revenue"])
    if ecap_answer(before["dashboard"], before["revenue"])[0] != ours:
        problems.append("ecap's answers changed during the latency run (nothing wrote)")
    rng = after["revenue"]["range"]
    iso_ms = lambda s: int(dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000)
    lo, hi = iso_ms(rng["start"]), iso_ms(rng["end"])
    res["window"] = {"firstDay": rng["firstDay"], "lastDay": rng["lastDay"], "lo": lo, "hi": hi,
                     "days": len(after["revenue"]["revenue"])}
    res["ecap"] = {"totalOrders": ours["totalOrders"], "days_with_orders": len(ours["days"]),
                   "problems": problems}
    db_path = data / "ecap.db"
    log(f"  SQLite GROUP BY on the same file ({AN_SQLITE_RUNS} runs)")
    sq = sqlite_baseline(db_path, lo, hi, AN_SQLITE_RUNS)
    sq["mismatches"] = compare_answers(ours, sq.pop("answer"), "SQLite")
    res["sqlite"] = sq
    log(f"  SQLite: revenue {med(sq['times']['revenue']) * 1000:.0f} ms, dashboard "
        f"{med(sq['times']['dashboard']) * 1000:.0f} ms; "
        f"{'match' if not sq['mismatches'] else 'MISMATCH'}")
    if duck_py is None:
        res["duckdb"] = {"skipped": "no DuckDB"}
    else:
        log(f"  DuckDB: export to Parquet, then {AN_DUCKDB_RUNS} runs after a warm-up")
        spec = {"sqlite": str(db_path), "dir": str(root / f"n{n}" / "parquet"), "lo": lo,
                "hi": hi, "runs": AN_DUCKDB_RUNS}
        duck = run_bench_json([str(duck_py), str(Path(__file__).resolve()), "--duckdb-worker",
                               json.dumps(spec)], timeout=600 + n * 2e-4)
        duck["mismatches"] = compare_answers(ours, duck.pop("answer"), "DuckDB")
        res["duckdb"] = duck
        log(f"  DuckDB {duck['version']}: export {duck['export_s']:.1f} s; revenue "
            f"{med(duck['times']['revenue']) * 1000:.1f} ms, dashboard "
            f"{med(duck['times']['dashboard']) * 1000:.1f} ms; "
            f"{'match' if not duck['mismatches'] else 'MISMATCH'}")
    for line in problems + res["sqlite"]["mismatches"] + res["duckdb"].get("mismatches", []):
        log(f"  MISMATCH {line}")
    if not keep:
        shutil.rmtree(root / f"n{n}", ignore_errors=True)
    return res


def analytics_consumer(an_bin: Path, root: Path, pg_url: str | None, duration: float) -> dict:
    res: dict = {"sqlite": [], "postgres": []}
    timeout = duration + 300
    for batch in AN_CONSUMER_BATCHES:
        log(f"analytics consumer, SQLite, batches of {batch}, {duration:g} s")
        url = f"sqlite://{root / f'consumer-b{batch}.db'}"
        res["sqlite"].append(run_bench_json(
            [str(an_bin), "consumer", "--database-url", url, "--batch", str(batch),
             "--duration", f"{duration:g}"], timeout))
    why = pg_reachable(pg_url) if pg_url else "--no-pg"
    if why:
        res["postgres"] = {"skipped": why}
        log(f"analytics consumer, PostgreSQL: skipped ({why})")
        return res
    for batch in AN_CONSUMER_BATCHES:
        log(f"analytics consumer, PostgreSQL (a fresh database), batches of {batch}")
        res["postgres"].append(run_bench_json(
            [str(an_bin), "consumer", "--database-url", pg_url, "--create-database",
             "--batch", str(batch), "--duration", f"{duration:g}"], timeout))
    return res


def analytics_sse(ecap_bin: Path, an_bin: Path, root: Path) -> dict:
    data = root / "sse" / "data"
    data.mkdir(parents=True)
    log(f"analytics stream: ecap seed --orders {AN_SSE_SEED_ORDERS}, then orders at "
        f"{AN_SSE_RATE:g}/s for {AN_SSE_S:g} s with one stream open")
    seed = seed_orders(ecap_bin, data, AN_SSE_SEED_ORDERS)
    create_admin(ecap_bin, data)
    port = free_port()
    log_path = root / "ecap-sse.log"
    proc = start_ecap(ecap_bin, port, data, log_path)
    try:
        try:
            wait_ready(port, proc, poll=0.02)
        except BenchError as e:
            raise BenchError(f"{e}\n--- ecap log ---\n{tail(log_path)}") from None
        admin = login(port, AN_ADMIN_EMAIL, AN_ADMIN_PASSWORD)
        status, body = http_request(port, "POST", "/api/auth/register",
                                    {"name": "Bench Customer", "email": AN_CUSTOMER_EMAIL,
                                     "password": USER_PASSWORD})
        if status != 201:
            raise BenchError(f"register customer: HTTP {status}: {body[:300]!r}")
        customer = json.loads(body)["data"]["token"]
        status, body = http_request(port, "GET", "/api/products?page=1&limit=50")
        if status != 200:
            raise BenchError(f"GET /api/products: HTTP {status}")
        products = [p["id"] for p in json.loads(body)["data"]["products"]
                    if p.get("inventory", 0) >= 10]
        if not products:
            raise BenchError("no product with stock in the seeded catalog")
        out = run_bench_json(
            [str(an_bin), "sse", "--base", f"http://127.0.0.1:{port}", "--admin-token", admin,
             "--customer-token", customer, "--products", ",".join(products),
             "--rate", f"{AN_SSE_RATE:g}", "--duration", f"{AN_SSE_S:g}"],
            timeout=AN_SSE_S + 120)
        if proc.poll() is not None:
            raise BenchError(f"ecap exited during the run ({proc.returncode})\n{tail(log_path)}")
    finally:
        stop(proc)
    out["seed_orders"] = AN_SSE_SEED_ORDERS
    out["seed_s"] = seed["wall_s"]
    return out


def analytics_bench(ecap_bin: Path, an_bin: Path, work: Path, args, progress) -> dict:
    """Consumer throughput and stream delay first (short), then each size in
    ascending order; `progress(results)` after every step, so a long run that
    stops part-way still leaves the sizes it finished."""
    root = work / "analytics"
    root.mkdir()
    res: dict = {"sizes": [], "sizes_planned": list(args.analytics_sizes)}
    duck_py, why = ensure_duckdb()
    if why:
        log(f"DuckDB: skipped ({why})")
        res["duckdb_skipped"] = why
    res["consumer"] = analytics_consumer(an_bin, root, None if args.no_pg else args.pg_url,
                                         AN_CONSUMER_S)
    res["sse"] = analytics_sse(ecap_bin, an_bin, root)
    progress(res)
    for n in sorted(args.analytics_sizes):
        res["sizes"].append(analytics_size(ecap_bin, an_bin, root, n, duck_py, args.keep))
        progress(res)
    return res


def analytics_failed(r: dict) -> list[str]:
    """Every mismatch and failed check of an analytics result."""
    out = []
    for s in r.get("sizes", []):
        out += [f"{fmt_n(s['orders'])}: {x}" for x in s["ecap"]["problems"]]
        out += [f"{fmt_n(s['orders'])}: {x}" for x in s["sqlite"]["mismatches"]]
        out += [f"{fmt_n(s['orders'])}: {x}" for x in s["duckdb"].get("mismatches", [])]
    for key in ("sqlite", "postgres"):
        runs = r.get("consumer", {}).get(key)
        if isinstance(runs, list):
            for c in runs:
                if not c["verify_ok"]:
                    out.append(f"consumer {key} batch {c['batch']}: verify found "
                               f"{c['differences']} differences: {c['first_differences']}")
    return out


def fmt_ms(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f} ms"
    if x >= 1:
        return f"{x:.2f} ms"
    return f"{x:.3f} ms"


def fmt_x(x: float) -> str:
    if x != x:
        return "—"
    return f"{x:,.0f}×" if x >= 10 else f"{x:.1f}×"


def fmt_bytes(b: int | None) -> str:
    if b is None:
        return "—"
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if b >= div:
            return f"{b / div:.1f} {unit}"
    return f"{b} B"


def build_analytics_report(args, info: dict, r: dict) -> tuple[str, str]:
    sizes = r.get("sizes", [])
    planned = r.get("sizes_planned", list(args.analytics_sizes))
    done = [s["orders"] for s in sizes]
    t = [f"analytics: sizes {', '.join(fmt_n(n) for n in done) or 'none'} "
         f"(planned {', '.join(fmt_n(n) for n in planned)})"]
    start, end = MARKS["analytics"]
    m = [start, "## Analytics: dashboard and revenue from 10k to 10M orders", ""]
    m += run_lines(args, info)
    m.append(f"- Tools: SQLite {sizes[0]['sqlite']['version'] if sizes else '—'} "
             f"(Python `sqlite3`); DuckDB "
             f"{next((s['duckdb']['version'] for s in sizes if 'version' in s['duckdb']), '—')} "
             f"(PyPI wheel in `bench/.venv`, no extensions)")
    m.append(f"- Data: per size a fresh SQLite data dir, `ecap seed --orders N --seed {AN_SEED}` "
             f"(orders over the last 365 days, then the aggregates rebuilt from them); ecap "
             f"release build, `ecap serve`, `LOG_LEVEL=warn`")
    m.append(f"- Load: `ecap-bench-analytics latency` (`bench/src/analytics.rs`), keep-alive "
             f"HTTP/1.1 with an admin token (gzip accepted, as a browser does): "
             f"{AN_WARMUP_S:g} s warm-up, {AN_REQUESTS:,} sequential requests on one "
             f"connection, then {AN_CLIENTS} concurrent clients × {AN_CLIENT_REQUESTS:,} "
             f"requests (one connection each), then the {AN_REQUESTS:,} sequential requests "
             f"again without `Accept-Encoding: gzip`; latency per request, body read to the end; "
             f"all goals use the gzip figures")
    missing = [n for n in planned if n not in done]
    if missing:
        m.append(f"- **Not measured in this run: {', '.join(fmt_n(n) for n in missing)}** "
                 f"(stopped before it finished, or still running when this was written)")
    m.append("")

    def lat(s, ep):
        return next(p for p in s["latency"]["paths"] if p["path"] == dict(AN_ENDPOINTS)[ep])

    # ---- goals
    goals = []
    one_m = next((s for s in sizes if s["orders"] == 1_000_000), None)
    if one_m:
        w = one_m["seed"]["wall_s"]
        goals.append((f"`ecap seed --orders 1000000` on SQLite < {GOAL_SEED_1M_S:g} s",
                      f"{w:.0f} s", w < GOAL_SEED_1M_S))
    else:
        goals.append((f"`ecap seed --orders 1000000` on SQLite < {GOAL_SEED_1M_S:g} s",
                      "not measured", None))
    flat = {}
    if len(sizes) >= 2:
        small, big = sizes[0], sizes[-1]
        for ep, _ in AN_ENDPOINTS:
            a, b = lat(small, ep)["sequential"]["p50_ms"], lat(big, ep)["sequential"]["p50_ms"]
            flat[ep] = b / a if a else float("nan")
            goals.append((f"`{ep}` p50 at {fmt_n(big['orders'])} / p50 at "
                          f"{fmt_n(small['orders'])} ≤ {GOAL_FLAT:g}"
                          + ("" if big["orders"] == 10_000_000 else " (goal is at 10M)"),
                          f"{flat[ep]:.2f}", flat[ep] <= GOAL_FLAT))
    ten_m = next((s for s in sizes if s["orders"] == 10_000_000), None)
    for ep, _ in AN_ENDPOINTS:
        if ten_m and "times" in ten_m["duckdb"]:
            x = med(ten_m["duckdb"]["times"][ep]) * 1000 / lat(ten_m, ep)["sequential"]["p50_ms"]
            goals.append((f"`{ep}` p50 ≥ {GOAL_VS_DUCKDB:g}× faster than DuckDB at 10M",
                          fmt_x(x), x >= GOAL_VS_DUCKDB))
        else:
            goals.append((f"`{ep}` p50 ≥ {GOAL_VS_DUCKDB:g}× faster than DuckDB at 10M",
                          "not measured", None))
    failed = analytics_failed(r)
    goals.append(("answers equal SQLite's and DuckDB's exactly, consumer verify clean",
                  "all match" if not failed else f"{len(failed)} mismatches", not failed))
    m.append("| Goal | Measured | Status |")
    m.append("|---|---|---|")
    for what, value, met in goals:
        m.append(f"| {what} | {value} | {'—' if met is None else ok(met)} |")
        t.append(f"goal {'-      ' if met is None else ('MET    ' if met else 'NOT MET')}  "
                 f"{what.replace('`', '')}: {value}")
    m.append("")

    # ---- per size
    if sizes:
        m.append("### Seeding and start-up (SQLite)")
        m.append("")
        m.append("| Orders | `ecap seed` wall | of which aggregates rebuilt | SQLite file "
                 "| `ecap serve` to `/ready` | RSS after start → after load |")
        m.append("|---:|---:|---:|---:|---:|---:|")
        for s in sizes:
            sd = s["seed"]
            rb = f"{sd['rebuild_s']:.1f} s" if sd["rebuild_s"] is not None else "—"
            m.append(f"| {s['orders']:,} | **{sd['wall_s']:.1f} s** | {rb} "
                     f"| {fmt_bytes(sd['db_bytes'])} | {s['ready_s']:.2f} s "
                     f"| {s['rss_kb_start'] / 1024:.0f} → {s['rss_kb_after'] / 1024:.0f} MB |")
            t.append(f"{fmt_n(s['orders']):>4} seed {sd['wall_s']:.1f} s (rebuild {rb}), "
                     f"ready {s['ready_s']:.2f} s")
        m.append("")
        m.append("### Latency of the two endpoints")
        m.append("")
        m.append(f"| Orders | Endpoint | JSON body | p50 (1 conn) | p99 (1 conn) | req/s (1 conn) "
                 f"| p50 ({AN_CLIENTS} clients) | p99 ({AN_CLIENTS} clients) "
                 f"| req/s ({AN_CLIENTS} clients) | p50 without gzip (1 conn) | errors |")
        m.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for s in sizes:
            for ep, _ in AN_ENDPOINTS:
                p = lat(s, ep)
                sq, cc = p["sequential"], p["concurrent"]
                ident = p.get("sequential_identity")
                m.append(f"| {s['orders']:,} | `{ep}` | {fmt_bytes(p['bytes'])} "
                         f"| **{fmt_ms(sq['p50_ms'])}** | {fmt_ms(sq['p99_ms'])} "
                         f"| {sq['per_sec']:,.0f} | {fmt_ms(cc['p50_ms'])} | {fmt_ms(cc['p99_ms'])} "
                         f"| {cc['per_sec']:,.0f} | {fmt_ms(ident['p50_ms']) if ident else '—'} "
                         f"| {sq['errors'] + cc['errors'] + (ident or {}).get('errors', 0)} |")
                t.append(f"{fmt_n(s['orders']):>4} {ep:9} p50 {sq['p50_ms']:.3f} ms p99 "
                         f"{sq['p99_ms']:.3f} ms {sq['per_sec']:.0f}/s; {AN_CLIENTS} clients p50 "
                         f"{cc['p50_ms']:.3f} ms p99 {cc['p99_ms']:.3f} ms {cc['per_sec']:.0f}/s")
        if any("sequential_identity" not in p for s in sizes for p in s["latency"]["paths"]):
            m.append("")
            m.append("—: not measured at that size in this run (the run without gzip was added "
                     "to the harness while this run was under way).")
        m.append("")
        if flat:
            m.append(f"Flatness: p50 at {fmt_n(sizes[-1]['orders'])} ÷ p50 at "
                     f"{fmt_n(sizes[0]['orders'])} (1 connection): "
                     + ", ".join(f"`{ep}` **{v:.2f}**" for ep, v in flat.items())
                     + f" (goal ≤ {GOAL_FLAT:g}).")
            m.append("")
        m.append("### Against the raw orders: the same answers by `GROUP BY`")
        m.append("")
        m.append(f"| Orders | Endpoint | ecap p50 | SQLite `GROUP BY` (median of "
                 f"{AN_SQLITE_RUNS}) | ecap faster by | DuckDB on Parquet (median of "
                 f"{AN_DUCKDB_RUNS}) | ecap faster by | answers |")
        m.append("|---:|---|---:|---:|---:|---:|---:|---|")
        for s in sizes:
            bad = (s["ecap"]["problems"] + s["sqlite"]["mismatches"]
                   + s["duckdb"].get("mismatches", []))
            verdict = "match (SQLite, DuckDB)" if not bad else f"**MISMATCH** ({len(bad)})"
            if "times" not in s["duckdb"] and not bad:
                verdict = "match (SQLite; DuckDB skipped)"
            for ep, _ in AN_ENDPOINTS:
                ours = lat(s, ep)["sequential"]["p50_ms"]
                sq = med(s["sqlite"]["times"][ep]) * 1000
                if "times" in s["duckdb"]:
                    dk = med(s["duckdb"]["times"][ep]) * 1000
                    dk_s, dk_x = fmt_ms(dk), f"**{fmt_x(dk / ours)}**"
                else:
                    dk_s, dk_x = "skipped", "—"
                m.append(f"| {s['orders']:,} | `{ep}` | {fmt_ms(ours)} | {fmt_ms(sq)} "
                         f"| **{fmt_x(sq / ours)}** | {dk_s} | {dk_x} | {verdict} |")
                t.append(f"{fmt_n(s['orders']):>4} {ep:9} ecap {ours:.3f} ms, SQLite {sq:.1f} ms "
                         f"({sq / ours:.0f}x), DuckDB {dk_s} ({dk_x.strip('*')}); {verdict}")
        m.append("")
        m.append(f"What is compared, exactly (integers, money in cents): for every UTC day of the "
                 f"revenue series (12 months, from the first day of the month 11 months ago "
                 f"through today: {sizes[-1]['window']['days']} days in the last size) the "
                 f"orders placed, net revenue and gross sales; the dashboard's `totalOrders`, "
                 f"`totalRevenue` (net), `itemsSold`, every status's count and gross revenue, "
                 f"and the top 10 products by units in counted orders with their units and "
                 f"net revenue (ties by revenue, then id). The baselines' time is the query "
                 f"time inside the process, no HTTP, no JSON; ecap's is a full HTTP request "
                 f"with the JSON body. `revenue` = one query (`created_at / 86400000` as the "
                 f"day, `GROUP BY` day over the window); `dashboard` = three (per status; "
                 f"`SUM(quantity)` of the items; top products over the items of counted orders, "
                 f"`order_id IN (SELECT id … WHERE status NOT IN (…))`, which SQLite runs 3–4× "
                 f"faster than the join). SQLite reads ecap's own file read-only (its indexes "
                 f"included, page cache warm); DuckDB reads Parquet exported from that file "
                 f"(orders: id, user_id, created_at, status, total_cents, payment_method; "
                 f"items: order_id, product_id, category, quantity, price_cents), written with "
                 f"DuckDB's `COPY … (FORMAT parquet)`.")
        m.append("")
        notes = []
        for s in sizes:
            d = s["duckdb"]
            if "export_s" in d:
                notes.append(f"{fmt_n(s['orders'])}: {d['rows']['orders']:,} orders and "
                             f"{d['rows']['order_items']:,} items exported in "
                             f"{d['export_s']:.1f} s (Parquet {fmt_bytes(d['parquet_bytes']['orders'])}"
                             f" + {fmt_bytes(d['parquet_bytes']['order_items'])})")
        if notes:
            m.append("Parquet export (not in the timings): " + "; ".join(notes) + ".")
            m.append("")
        plans = sizes[-1]["sqlite"].get("plans", {})
        if plans:
            m.append("SQLite query plans (largest size): " + "; ".join(
                f"{ep}: " + " | ".join(f"`{p}`" for p in ps) for ep, ps in plans.items()) + ".")
            m.append("")
    for line in failed:
        m.append(f"**Mismatch:** {line}")
        m.append("")
        t.append(f"MISMATCH {line}")

    # ---- consumer
    c = r.get("consumer")
    if c:
        m.append("### Consumer: events applied per second (`AnalyticsStore::apply`)")
        m.append("")
        m.append(f"`ecap-bench-analytics consumer`: a fresh database per row, events as the "
                 f"outbox relay delivers them, in batches of the given size, for "
                 f"{AN_CONSUMER_S:g} s: 40 % `created` events of new orders (1–4 lines over 300 "
                 f"products, 20,000 customers, placed now), 60 % status changes of earlier open "
                 f"orders (pending → processing → shipped → out for delivery → delivered, with "
                 f"cancellations, cancel requests, refunds, deletions). Pool of 10 connections, "
                 f"in-process (no HTTP). Afterwards `AnalyticsStore::verify` compares every "
                 f"aggregate table (orders, customers, slots, cells) and the in-memory totals "
                 f"with a recomputation from the final order states.")
        m.append("")
        m.append("| Database | Batch | events/s | batch p50 | batch p99 | batch max | events "
                 "(created + changes) | orders | verify |")
        m.append("|---|---:|---:|---:|---:|---:|---:|---:|---|")
        names = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
        for key in ("sqlite", "postgres"):
            runs = c.get(key)
            if isinstance(runs, dict):
                m.append(f"| {names[key]} | — | skipped: {runs['skipped']} | | | | | | |")
                continue
            for x in runs or []:
                v = "OK" if x["verify_ok"] else f"**FAIL** ({x['differences']})"
                m.append(f"| {names[key]} | {x['batch']} | **{x['events_per_sec']:,.0f}** "
                         f"| {fmt_ms(x['batch_p50_ms'])} | {fmt_ms(x['batch_p99_ms'])} "
                         f"| {fmt_ms(x['batch_max_ms'])} | {x['events']:,} ({x['created_events']:,}"
                         f" + {x['change_events']:,}) | {x['orders']:,} | {v} |")
                t.append(f"consumer {names[key]:10} batch {x['batch']:3}: "
                         f"{x['events_per_sec']:8.0f} events/s, batch p50 {x['batch_p50_ms']:.2f} ms"
                         f" p99 {x['batch_p99_ms']:.2f} ms, verify {'OK' if x['verify_ok'] else 'FAIL'}")
        m.append("")
        m.append("SQLite: a file in the temp dir (WAL, `synchronous = FULL`: every batch's commit "
                 "waits for the disk); PostgreSQL: the local server, a database created for the "
                 "row and dropped after it.")
        m.append("")

    # ---- stream
    sse = r.get("sse")
    if sse:
        m.append("### Live stream: order commit → `dashboard` event")
        m.append("")
        m.append(f"`ecap-bench-analytics sse` against `ecap serve` on a fresh SQLite data dir "
                 f"(`ecap seed --orders {sse['seed_orders']}`): one "
                 f"`GET /api/analytics/stream?period=today` open with the admin token, orders of "
                 f"one line placed one at a time by a customer at {sse['rate']:g}/s; per order the "
                 f"time from its `POST /api/orders` returning 201 to the first `dashboard` event "
                 f"whose `totalOrders` includes it.")
        m.append("")
        m.append("| orders placed | events received | delay p50 | delay p90 | delay p99 "
                 "| delay max | POST p50 | errors | never seen |")
        m.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        m.append(f"| {sse['placed']} | {sse['events']} | **{fmt_ms(sse['delay_p50_ms'])}** "
                 f"| {fmt_ms(sse['delay_p90_ms'])} | **{fmt_ms(sse['delay_p99_ms'])}** "
                 f"| {fmt_ms(sse['delay_max_ms'])} | {fmt_ms(sse['post_p50_ms'])} "
                 f"| {sse['errors']} | {sse['missed']} |")
        m.append("")
        if sse.get("first_error"):
            m.append(f"Note: first error: {sse['first_error'][:200]}")
            m.append("")
        t.append(f"stream: {sse['placed']} orders, delay p50 {sse['delay_p50_ms']:.0f} ms p99 "
                 f"{sse['delay_p99_ms']:.0f} ms, errors {sse['errors']}, never seen "
                 f"{sse['missed']}")
    m.append(end)
    return "\n".join(t), "\n".join(m) + "\n"


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def machine_info(load_before: str) -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass

    def cmd(*args: str) -> str | None:
        try:
            p = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=10)
            return p.stdout.strip() if p.returncode == 0 else None
        except (OSError, subprocess.TimeoutExpired):
            return None

    commit = cmd("git", "rev-parse", "--short=12", "--verify", "HEAD")
    if commit:
        if cmd("git", "status", "--porcelain", "--untracked-files=no"):
            commit += " (plus uncommitted changes)"
    else:
        commit = "uncommitted"
    wrk_v = cmd("wrk", "--version") or ""
    # `wrk --version` prints the banner and exits 1 on some builds.
    if not wrk_v:
        try:
            p = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10)
            wrk_v = (p.stdout or p.stderr).splitlines()[0] if (p.stdout or p.stderr) else ""
        except (OSError, subprocess.TimeoutExpired):
            wrk_v = ""
    return {
        "nproc": os.cpu_count() or 0,
        "nproc_avail": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu": cpu,
        "mem": mem,
        "loadavg": load_before,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "rustc": cmd("rustc", "--version") or "unknown",
        "wrk": wrk_v.split(" Copyright")[0].strip() or "unknown",
    }


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def med(values):
    return statistics.median(values) if values else float("nan")


def ok(flag: bool) -> str:
    return "met" if flag else "**not met**"


def build_report(args, info: dict, r: dict) -> tuple[str, str]:
    """Return (terminal table, markdown section)."""
    rows = []  # (what, ecap, bare, ratio)
    tp = r["throughput"]
    ratios = {}
    for ep in ("/health", "/api/auth/me"):
        e, b = tp[ep]["ecap"], tp[ep]["bare"]
        e_rps, b_rps = med([w.rps for w in e]), med([w.rps for w in b])
        ratios[ep] = e_rps / b_rps if b_rps else float("nan")
        rows.append((f"GET {ep}", e_rps, b_rps, ratios[ep],
                     med([w.p50_ms for w in e]), med([w.p50_ms for w in b]),
                     med([w.p99_ms for w in e]), med([w.p99_ms for w in b]),
                     sum(w.errors for w in e), sum(w.errors for w in b)))
    fl = r["flood"]
    flood_ratio = fl["during"].p99_ms / fl["idle"].p99_ms if fl["idle"].p99_ms else float("nan")
    ib, ia = fl["idle_before"].p99_ms, fl["idle_after"].p99_ms
    idle_unstable = max(ib, ia) > 2 * min(ib, ia)
    idle_mb = r["rss_idle_kb"] / 1024
    after_mb = r["rss_after_kb"] / 1024
    after_tp_mb = r["rss_after_throughput_kb"] / 1024
    hwm_mb = r["rss_hwm_kb"] / 1024
    st = r["startup"]
    st_fresh, st_existing = med(st["fresh"]), med(st["existing"])

    goals = [
        (f"`/me` throughput ecap/bare ≥ {GOAL_ME_RATIO}", f"{ratios['/api/auth/me']:.2f}",
         ratios["/api/auth/me"] >= GOAL_ME_RATIO),
        (f"`/health` p99 during login flood ≤ {GOAL_FLOOD_P99:g}× idle", f"{flood_ratio:.2f}×",
         flood_ratio <= GOAL_FLOOD_P99),
        (f"idle RSS ≤ {GOAL_IDLE_RSS_MB:g} MB", f"{idle_mb:.1f} MB", idle_mb <= GOAL_IDLE_RSS_MB),
        (f"start-up, fresh data dir ≤ {GOAL_STARTUP_MS:g} ms", f"{st_fresh:.0f} ms",
         st_fresh <= GOAL_STARTUP_MS),
        (f"start-up, migrated data dir ≤ {GOAL_STARTUP_MS:g} ms", f"{st_existing:.0f} ms",
         st_existing <= GOAL_STARTUP_MS),
    ]

    # ---- terminal
    t = []
    t.append(f"machine: {info['nproc']} CPUs, {info['cpu']}, {info['mem']}; {info['date']}; "
             f"commit {info['commit']}")
    t.append(f"wrk: {CONNECTIONS} connections, 2 threads, {args.duration:g}s x {args.rounds} round(s)")
    t.append("")
    t.append(f"{'endpoint':18} {'ecap req/s':>11} {'bare req/s':>11} {'ratio':>6} "
             f"{'p50 ecap':>9} {'p50 bare':>9} {'p99 ecap':>9} {'p99 bare':>9}")
    for what, er, br, ratio, e50, b50, e99, b99, eerr, berr in rows:
        t.append(f"{what:18} {er:11.0f} {br:11.0f} {ratio:6.2f} "
                 f"{e50:7.3f}ms {b50:7.3f}ms {e99:7.3f}ms {b99:7.3f}ms"
                 + (f"  (errors: ecap {eerr}, bare {berr})" if eerr or berr else ""))
    t.append("")
    t.append(f"login flood: /health p99 idle {ib:.3f} ms before / {ia:.3f} ms after, during flood "
             f"{fl['during'].p99_ms:.3f} ms -> {flood_ratio:.2f}x; logins {fl['login'].rps:.1f}/s "
             f"(p99 {fl['login'].p99_ms:.0f} ms, errors {fl['login'].errors})")
    if idle_unstable:
        t.append("  warning: the two idle p99s differ by more than 2x; the machine was busy, re-run")
    t.append(f"load average before the run: {info['loadavg']}")
    t.append(f"RSS: idle {idle_mb:.1f} MB, after throughput runs {after_tp_mb:.1f} MB, after login "
             f"flood {after_mb:.1f} MB (peak {hwm_mb:.1f} MB, {r['threads_after']} threads)")
    t.append(f"start-up (median of {STARTUP_RUNS}): fresh {st_fresh:.0f} ms "
             f"[{min(st['fresh']):.0f}–{max(st['fresh']):.0f}], migrated {st_existing:.0f} ms "
             f"[{min(st['existing']):.0f}–{max(st['existing']):.0f}]")
    t.append("")
    for what, value, met in goals:
        t.append(f"goal {'MET    ' if met else 'NOT MET'}  {what.replace('`', '')}: {value}")

    # ---- markdown
    m = []
    m.append(MARK_START)
    m.append("## Latest run")
    m.append("")
    m.append(f"- Date: {info['date']}")
    m.append(f"- Commit: {info['commit']}")
    cpus = f"{info['nproc']}"
    if info["nproc_avail"] and info["nproc_avail"] != info["nproc"]:
        cpus += f" ({info['nproc_avail']} usable by this process)"
    m.append(f"- Machine: {cpus} CPUs (`nproc`), {info['cpu']}, {info['mem']} RAM")
    m.append(f"- Load average before the run (1/5/15 min): {info['loadavg']}")
    m.append(f"- Tools: {info['rustc']}; {info['wrk']}")
    m.append(f"- Command: `{command_line(args)}`")
    rounds = "1 round" if args.rounds == 1 else f"{args.rounds} rounds (median across rounds)"
    m.append(f"- Load: `wrk -t2 -c{CONNECTIONS} -d{args.duration:g}s --latency`, {rounds}, "
             "client and servers on the same machine")
    m.append("")
    m.append("### Goals")
    m.append("")
    m.append("| Goal | Measured | Status |")
    m.append("|---|---|---|")
    for what, value, met in goals:
        m.append(f"| {what} | {value} | {ok(met)} |")
    m.append("")
    m.append(f"### Throughput and latency ({CONNECTIONS} connections), ecap vs bare axum")
    m.append("")
    m.append("| Endpoint | ecap req/s | bare req/s | ecap/bare | p50 ecap | p50 bare | p99 ecap | p99 bare |")
    m.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for what, er, br, ratio, e50, b50, e99, b99, eerr, berr in rows:
        m.append(f"| `{what}` | {er:,.0f} | {br:,.0f} | **{ratio:.2f}** | {e50:.3f} ms | {b50:.3f} ms "
                 f"| {e99:.3f} ms | {b99:.3f} ms |")
    for row in rows:
        what, eerr, berr = row[0], row[8], row[9]
        if eerr or berr:
            m.append(f"\nNote: `{what}` had non-2xx responses or socket errors "
                     f"(ecap {eerr}, bare {berr}).")
    m.append("")
    m.append("Both servers send byte-identical bodies (captured from ecap before the run); the bare "
             "server is `bench/src/main.rs` (axum 0.8, no middleware). `/api/auth/me` on ecap checks "
             "the bearer token and reads the user from SQLite on every request.")
    m.append("")
    m.append("### Login flood")
    m.append("")
    m.append("| | `GET /health` p99 (1 connection) |")
    m.append("|---|---:|")
    m.append(f"| idle, before the flood | {ib:.3f} ms |")
    m.append(f"| during `POST /api/auth/login` flood ({CONNECTIONS} connections) | "
             f"{fl['during'].p99_ms:.3f} ms |")
    m.append(f"| idle, after the flood | {ia:.3f} ms |")
    m.append(f"| ratio flood / lower idle | **{flood_ratio:.2f}×** |")
    m.append("")
    if idle_unstable:
        m.append("**Warning:** the two idle p99s differ by more than 2×: the machine was busy "
                 "during this run and the ratio is unreliable; re-run.")
        m.append("")
    lg = fl["login"]
    m.append(f"Logins (correct password, full argon2 verification): **{lg.rps:.1f}/s**, "
             f"p50 {lg.p50_ms:.0f} ms, p99 {lg.p99_ms:.0f} ms, {lg.requests} requests, "
             f"{lg.errors} non-2xx/socket errors.")
    m.append("")
    m.append("### Memory and start-up")
    m.append("")
    m.append("| | |")
    m.append("|---|---:|")
    m.append(f"| RSS idle after start (VmRSS) | {idle_mb:.1f} MB |")
    m.append(f"| RSS after the throughput runs | {after_tp_mb:.1f} MB |")
    m.append(f"| RSS after the login flood (all load) | {after_mb:.1f} MB |")
    m.append(f"| Peak RSS (VmHWM) | {hwm_mb:.1f} MB |")
    m.append(f"| Threads after all load | {r['threads_after']} |")
    m.append(f"| Start-up to `/ready` 200, fresh data dir (median of {STARTUP_RUNS}) | "
             f"{st_fresh:.0f} ms (min {min(st['fresh']):.0f}, max {max(st['fresh']):.0f}) |")
    m.append(f"| Start-up to `/ready` 200, migrated data dir (median of {STARTUP_RUNS}) | "
             f"{st_existing:.0f} ms (min {min(st['existing']):.0f}, max {max(st['existing']):.0f}) |")
    m.append("")
    m.append(MARK_END)
    return "\n".join(t), "\n".join(m) + "\n"


def command_line(args) -> str:
    cmd = f"python3 bench/run.py --duration {args.duration:g}"
    if args.rounds != 1:
        cmd += f" --rounds {args.rounds}"
    if args.only != list(PARTS):
        cmd += f" --only {','.join(args.only)}"
    if args.catalog_products != CATALOG_PRODUCTS:
        cmd += f" --catalog-products {args.catalog_products}"
    if args.reserve_duration != RESERVE_DURATION_S:
        cmd += f" --reserve-duration {args.reserve_duration:g}"
    if "orders" in args.only and args.order_products != ORDER_PRODUCTS:
        cmd += f" --order-products {args.order_products}"
    if "orders" in args.only and args.orders_max != ORDER_MAX:
        cmd += f" --orders-max {args.orders_max}"
    if "analytics" in args.only and tuple(args.analytics_sizes) != ANALYTICS_SIZES:
        cmd += " --analytics-sizes " + ",".join(str(n) for n in args.analytics_sizes)
    if args.no_pg:
        cmd += " --no-pg"
    return cmd


def run_lines(args, info: dict) -> list[str]:
    """The short provenance list of the catalog and reservation sections."""
    cpus = f"{info['nproc']}"
    if info["nproc_avail"] and info["nproc_avail"] != info["nproc"]:
        cpus += f" ({info['nproc_avail']} usable)"
    return [
        f"- Date: {info['date']}; commit {info['commit']}",
        f"- Machine: {cpus} CPUs, {info['cpu']}, {info['mem']} RAM; load average before the "
        f"run {info['loadavg']}",
        f"- Command: `{command_line(args)}`",
    ]


def fmt_ratio(x: float) -> str:
    """Two decimals; three below 0.1 so a small ratio does not print as 0.00."""
    return f"{x:.2f}" if x >= 0.1 or x != x else f"{x:.3f}"


def build_catalog_report(args, info: dict, r: dict) -> tuple[str, str]:
    rows = []
    for label, q in r["queries"].items():
        w = r["wrk"][label]
        rps = {n: med([x.rps for x in w[n]]) for n in ("bare", "on", "off")}
        p50 = {n: med([x.p50_ms for x in w[n]]) for n in ("bare", "on", "off")}
        p99 = {n: med([x.p99_ms for x in w[n]]) for n in ("bare", "on", "off")}
        errs = {n: sum(x.errors for x in w[n]) for n in ("bare", "on", "off")}
        ratio = {n: rps[n] / rps["bare"] if rps["bare"] else float("nan") for n in ("on", "off")}
        rows.append((label, q, rps, p50, p99, errs, ratio))
    goal_met = all(row[6]["on"] >= GOAL_CATALOG_RATIO for row in rows)
    measured = ", ".join(f"{row[0]} {row[6]['on']:.2f}" for row in rows)
    rounds = "1 round" if args.rounds == 1 else f"{args.rounds} rounds (median across rounds)"

    t = [f"catalog: {r['products']} products; wrk {CONNECTIONS} connections, 2 threads, "
         f"{args.duration:g}s x {args.rounds} round(s)",
         f"{'query':10} {'bare req/s':>11} {'on req/s':>9} {'on/bare':>7} {'off req/s':>9} "
         f"{'off/bare':>8}  p50 bare/on/off ms      p99 bare/on/off ms"]
    for label, q, rps, p50, p99, errs, ratio in rows:
        t.append(f"{label:10} {rps['bare']:11.0f} {rps['on']:9.0f} {fmt_ratio(ratio['on']):>7} "
                 f"{rps['off']:9.0f} {fmt_ratio(ratio['off']):>8}  "
                 f"{p50['bare']:.3f}/{p50['on']:.3f}/{p50['off']:.3f}  "
                 f"{p99['bare']:.3f}/{p99['on']:.3f}/{p99['off']:.3f}"
                 + (f"  (errors {errs})" if any(errs.values()) else ""))
    t.append(f"goal {'MET    ' if goal_met else 'NOT MET'}  product listing, cache warm, "
             f"ecap/bare >= {GOAL_CATALOG_RATIO}: {measured}")

    start, end = MARKS["catalog"]
    m = [start, f"## Catalog: product listing on {r['products']:,} products", ""]
    m += run_lines(args, info)
    m.append(f"- Catalog: `ecap seed --products {r['products']} --seed 1` on SQLite "
             f"(\"{r['seed_line']}\")")
    m.append(f"- Load: `wrk -t2 -c{CONNECTIONS} -d{args.duration:g}s --latency`, {rounds}, "
             "client and servers on the same machine")
    m.append("")
    m.append("| Goal | Measured | Status |")
    m.append("|---|---|---|")
    m.append(f"| `GET /api/products`, cache warm, throughput ecap/bare ≥ {GOAL_CATALOG_RATIO:g} "
             f"(every query) | {measured} | {ok(goal_met)} |")
    m.append("")
    m.append("| Query | matching | body | bare req/s | cache on req/s | **on/bare** "
             "| cache off req/s | **off/bare** |")
    m.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, q, rps, p50, p99, errs, ratio in rows:
        m.append(f"| {label}: `{q.replace(CATALOG_LIST, '…')}` | {r['totals'][label]:,} "
                 f"| {r['sizes'][label]:,} B | {rps['bare']:,.0f} | {rps['on']:,.0f} "
                 f"| **{fmt_ratio(ratio['on'])}** | {rps['off']:,.0f} "
                 f"| **{fmt_ratio(ratio['off'])}** |")
    m.append("")
    m.append("| Query | p50 bare | p50 cache on | p50 cache off | p99 bare | p99 cache on "
             "| p99 cache off |")
    m.append("|---|---:|---:|---:|---:|---:|---:|")
    for label, q, rps, p50, p99, errs, ratio in rows:
        m.append(f"| {label} | {p50['bare']:.3f} ms | {p50['on']:.3f} ms | {p50['off']:.3f} ms "
                 f"| {p99['bare']:.3f} ms | {p99['on']:.3f} ms | {p99['off']:.3f} ms |")
    for label, q, rps, p50, p99, errs, ratio in rows:
        if any(errs.values()):
            m.append(f"\nNote: {label} had non-2xx responses or socket errors "
                     f"(bare {errs['bare']}, cache on {errs['on']}, cache off {errs['off']}).")
    m.append("")
    m.append(f"`…` is `{CATALOG_LIST}`. Both ecap processes serve the same SQLite data dir; "
             "\"cache off\" runs with `ECAP_CACHE_TTL_SECS=0`, so every request counts and reads "
             "the page from SQLite and serialises it. The bare server (`bench/src/main.rs`) "
             "answers each exact path-and-query with the bytes captured from ecap (checked "
             "identical, and identical between the two ecap processes). RSS after the runs: "
             f"cache on {r['rss_kb']['on'] / 1024:.1f} MB, cache off "
             f"{r['rss_kb']['off'] / 1024:.1f} MB.")
    m.append("")
    m.append(end)
    return "\n".join(t), "\n".join(m) + "\n"


def build_reserve_report(args, info: dict, r: dict) -> tuple[str, str]:
    names = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
    t = [f"reservations: {RESERVE_TASKS} tasks, pool {RESERVE_POOL}, {RESERVE_PRODUCTS} products, "
         f"{args.reserve_duration:g} s per phase"]
    start, end = MARKS["reserve"]
    m = [start, "## Catalog: reservations", ""]
    m += run_lines(args, info)
    m.append(f"- Load: `ecap-bench-reserve` (`bench/src/reserve.rs`), {RESERVE_TASKS} concurrent "
             f"tasks calling `CatalogStore::reserve` with one line of 1 unit and a fresh order id, "
             f"pool of {RESERVE_POOL} connections (ecap's default), {RESERVE_PRODUCTS} products, "
             f"{args.reserve_duration:g} s per phase after 0.5 s of warm-up, in-process (no HTTP)")
    m.append("")
    m.append("| Database | Phase | reservations/s | p50 | p99 | max | errors | stock/ledger check |")
    m.append("|---|---|---:|---:|---:|---:|---:|---|")
    skipped = []
    for key in ("sqlite", "postgres"):
        res = r.get(key)
        if res is None:
            continue
        if "skipped" in res:
            skipped.append(f"{names[key]}: skipped, {res['skipped']}.")
            t.append(f"{names[key]:10} skipped: {res['skipped']}")
            continue
        chk = res["check"]
        status = "OK" if chk["ok"] else f"**FAIL** ({len(chk['mismatches'])} mismatches)"
        for ph in res["phases"]:
            what = ("random product" if ph["name"] == "uncontended"
                    else "all on 1 product")
            m.append(f"| {names[key]} | {ph['name']} ({what}) | **{ph['per_sec']:,.0f}** "
                     f"| {ph['p50_ms']:.2f} ms | {ph['p99_ms']:.2f} ms | {ph['max_ms']:.1f} ms "
                     f"| {ph['errors']} | {status} |")
            t.append(f"{names[key]:10} {ph['name']:11} {ph['per_sec']:8.0f}/s  p50 "
                     f"{ph['p50_ms']:.2f} ms  p99 {ph['p99_ms']:.2f} ms  max {ph['max_ms']:.1f} ms  "
                     f"errors {ph['errors']}  check {'OK' if chk['ok'] else 'FAIL'}")
            if ph.get("first_error"):
                skipped.append(f"{names[key]} {ph['name']}: first error: {ph['first_error']}")
        if not chk["ok"]:
            skipped.append(f"{names[key]} check: " + "; ".join(chk["mismatches"][:5]))
    m.append("")
    for line in skipped:
        m.append(f"Note: {line}")
        m.append("")
    m.append("The check, after both phases: for every product `stock = initial − reserved` and "
             "the ledger sums to the stock, and there is one reservation row per successful "
             "call. SQLite runs on a file in the temp dir (WAL, `synchronous = FULL`, so every "
             "commit waits for the disk); PostgreSQL on the local server, in a database created "
             "for the run and dropped after it.")
    m.append("")
    m.append(end)
    return "\n".join(t), "\n".join(m) + "\n"


INTRO = f"""# Benchmarks

Reproduce with `make bench` or `python3 bench/run.py` (options: `--duration N`
seconds per wrk run, default 10; `--rounds N`; `--only core,catalog,reserve,orders,analytics,gateway`;
`--analytics-sizes 10000,1000000,10000000`; `--no-build`). It needs `wrk` (`apt-get install wrk`),
a PostgreSQL server for the reservation and order figures (skipped when none answers) and
`pgbench`, and takes about five minutes after the build with the defaults, plus about 50 minutes
for the analytics part (most of it seeding 10M orders). See [bench/README.md](bench/README.md).

The machine this runs on is small and shared, so nothing is judged on absolute
numbers: every figure that has a goal is a ratio against a baseline measured in
the same invocation (a bare axum server sending the same bytes, or ecap itself
while idle), except memory and start-up time.

Goals:

- `GET /api/auth/me` throughput at {CONNECTIONS} connections ≥ {GOAL_ME_RATIO} × the bare axum handler.
- `GET /health` p99 during a login flood ≤ {GOAL_FLOOD_P99:g} × its idle p99 (password hashing
  must not starve the runtime).
- Idle RSS ≤ {GOAL_IDLE_RSS_MB:g} MB.
- Start-up to a 200 from `/ready` ≤ {GOAL_STARTUP_MS:g} ms, fresh and migrated data dir.
- `GET /api/products?page=1&limit=20` on a {CATALOG_PRODUCTS:,}-product catalog, product cache warm,
  throughput ≥ {GOAL_CATALOG_RATIO:g} × the bare axum handler (no filter, category, full-text search).

The sections between `bench/run.py` markers are rewritten by `bench/run.py`
(`--only` rewrites just the parts it runs); everything else is written by hand.

"""


def write_markdown(path: Path, part: str, section: str) -> None:
    """Replace `part`'s generated section (between its markers); the rest stays."""
    mark_start, mark_end = MARKS[part]
    if path.exists():
        text = path.read_text()
        start, end = text.find(mark_start), text.find(mark_end)
        if start != -1 and end > start:
            text = text[:start] + section.rstrip("\n") + text[end + len(mark_end):]
        else:
            text = text.rstrip("\n") + "\n\n" + section
    else:
        text = INTRO + section
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# --------------------------------------------------------------------------


def run_core(ecap_bin: Path, bare_bin: Path, work: Path, args) -> dict:
    """Start-up, /health and /me against the bare server, login flood, memory."""
    results: dict = {}
    log(f"start-up: {STARTUP_RUNS} runs fresh, {STARTUP_RUNS} runs with a migrated data dir")
    results["startup"] = measure_startup(ecap_bin, work)

    ecap_port, bare_port = free_port(), free_port()
    while bare_port == ecap_port:
        bare_port = free_port()
    ecap_log, bare_log = work / "ecap.log", work / "bare.log"
    (work / "main").mkdir()
    ecap = start_ecap(ecap_bin, ecap_port, work / "main" / "data", ecap_log)
    try:
        wait_ready(ecap_port, ecap, poll=0.02)
    except BenchError as e:
        raise BenchError(f"{e}\n--- ecap log ---\n{tail(ecap_log)}") from None
    log(f"ecap ready on port {ecap_port} (pid {ecap.pid})")
    time.sleep(0.5)
    results["rss_idle_kb"] = rss_kb(ecap.pid)

    token = register(ecap_port)
    status_h, health_body = http_request(ecap_port, "GET", "/health")
    status_m, me_body = http_request(ecap_port, "GET", "/api/auth/me", token=token)
    if status_h != 200 or status_m != 200:
        raise BenchError(f"capturing bodies: /health {status_h}, /me {status_m}: {me_body[:200]!r}")
    health_file, me_file = work / "health.json", work / "me.json"
    health_file.write_bytes(health_body)
    me_file.write_bytes(me_body)

    bare = start_bare(bare_bin, bare_port, bare_log, health=health_file, me=me_file)
    try:
        wait_ready(bare_port, bare, path="/health", poll=0.02)
    except BenchError as e:
        raise BenchError(f"{e}\n--- bare server log ---\n{tail(bare_log)}") from None
    for ep, expected in (("/health", health_body), ("/api/auth/me", me_body)):
        st, got = http_request(bare_port, "GET", ep)
        if st != 200 or got != expected:
            raise BenchError(f"bare server {ep}: HTTP {st}, body differs from ecap's")
    log(f"bare server ready on port {bare_port}; bodies: /health {len(health_body)} B, "
        f"/me {len(me_body)} B")

    log(f"throughput: {CONNECTIONS} connections, {args.duration:g}s per run, {args.rounds} round(s)")
    results["throughput"] = throughput(ecap_port, bare_port, token, args.duration, args.rounds)
    stop(bare)
    time.sleep(1.0)
    results["rss_after_throughput_kb"] = rss_kb(ecap.pid)

    log("login flood")
    results["flood"] = login_flood(ecap_port, args.duration)
    time.sleep(1.0)
    results["rss_after_kb"] = rss_kb(ecap.pid)
    results["rss_hwm_kb"] = rss_kb(ecap.pid, "VmHWM")
    results["threads_after"] = rss_kb(ecap.pid, "Threads")
    if ecap.poll() is not None:
        raise BenchError(f"ecap exited during the run ({ecap.returncode})\n{tail(ecap_log)}")
    stop(ecap)
    return results


def parse_parts(value: str) -> list[str]:
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if "all" in parts:
        return list(PARTS)
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {', '.join(PARTS)} (or all), got {value!r}")
    return [p for p in PARTS if p in parts]


def parse_sizes(value: str) -> list[int]:
    try:
        sizes = sorted({int(x.replace("_", "")) for x in value.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated order counts, got {value!r}")
    if not sizes or sizes[0] < 100:
        raise argparse.ArgumentTypeError("order counts must be >= 100")
    return sizes


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--duckdb-worker":
        # Internal: the DuckDB half of the analytics part, run with bench/.venv's python.
        return duckdb_worker(json.loads(sys.argv[2]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10, help="seconds per wrk run (default 10)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="throughput rounds, server order rotating (orders: each point and its "
                         "pgbench pair repeated); medians reported (default 1)")
    ap.add_argument("--only", type=parse_parts, default=list(PARTS), metavar="PARTS",
                    help="comma-separated parts to run: core (start-up, /health, /me, login "
                         "flood, memory), catalog (product listing on a 10k catalog), reserve "
                         "(reservations on SQLite and PostgreSQL), orders (placement over HTTP "
                         "on SQLite and PostgreSQL, pgbench as the yardstick), analytics (dashboard "
                         "and revenue latency at --analytics-sizes against SQLite and DuckDB "
                         "GROUP BY, consumer throughput, stream delay), gateway (the gateway's "
                         "hop against nginx's; needs nginx and Redis); default all. Only the "
                         "sections of the parts run are rewritten in the output file")
    ap.add_argument("--catalog-products", type=int, default=CATALOG_PRODUCTS,
                    help=f"products seeded for the catalog part (default {CATALOG_PRODUCTS})")
    ap.add_argument("--reserve-duration", type=float, default=RESERVE_DURATION_S,
                    help=f"seconds per reservation phase (default {RESERVE_DURATION_S:g})")
    ap.add_argument("--order-products", type=int, default=ORDER_PRODUCTS,
                    help=f"products the orders part spreads its orders over (default "
                         f"{ORDER_PRODUCTS})")
    ap.add_argument("--orders-max", type=int, default=ORDER_MAX,
                    help=f"at most this many measured orders per client count; the point ends "
                         f"at --duration or this count, whichever comes first "
                         f"(default {ORDER_MAX:,})")
    ap.add_argument("--analytics-sizes", type=parse_sizes, default=list(ANALYTICS_SIZES),
                    metavar="N,N,...",
                    help="order counts the analytics part seeds and measures, each on a fresh "
                         "SQLite data dir (default "
                         + ",".join(str(n) for n in ANALYTICS_SIZES) + "; e.g. 10000,100000 "
                         "for a quick run)")
    ap.add_argument("--pg-url", default=PG_URL,
                    help=f"PostgreSQL server for the reservation and order parts; fresh "
                         f"databases are created on it and dropped afterwards (default {PG_URL})")
    ap.add_argument("--no-pg", action="store_true", help="reservations and orders on SQLite only")
    ap.add_argument("--no-build", action="store_true", help="skip cargo build --release")
    ap.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md",
                    help="markdown file to update (default BENCHMARKS.md)")
    ap.add_argument("--json", type=Path, help="also write the raw figures as JSON here")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, data) for inspection")
    args = ap.parse_args()
    if args.duration < 1 or args.rounds < 1 or args.reserve_duration <= 0:
        ap.error("--duration must be >= 1, --rounds >= 1 and --reserve-duration > 0")
    if args.catalog_products < 20:
        ap.error("--catalog-products must be >= 20 (one full page)")
    if args.order_products < 3 or args.orders_max < 1:
        ap.error("--order-products must be >= 3 (three lines per order) and --orders-max >= 1")
    parts = args.only

    if not Path("/proc/self/status").exists():
        log("needs Linux (/proc) for RSS figures")
        return 2
    if ("core" in parts or "catalog" in parts or "gateway" in parts) and not shutil.which("wrk"):
        log("wrk not found on PATH. Install it: `sudo apt-get install wrk` (Debian/Ubuntu), "
            "`sudo dnf install wrk` (Fedora), `brew install wrk` (macOS), "
            "or build it from https://github.com/wg/wrk")
        return 2

    if not args.no_build:
        log("cargo build --release -p ecap -p ecap-bench")
        p = subprocess.run(["cargo", "build", "--release", "-p", "ecap", "-p", "ecap-bench"], cwd=ROOT)
        if p.returncode != 0:
            log("build failed")
            return 1
    tdir = target_dir() / "release"
    ecap_bin, bare_bin, reserve_bin = tdir / "ecap", tdir / "ecap-bench", tdir / "ecap-bench-reserve"
    orders_bin = tdir / "ecap-bench-orders"
    analytics_bin = tdir / "ecap-bench-analytics"
    needed = [ecap_bin] if parts == ["gateway"] else [
        ecap_bin, bare_bin, reserve_bin, orders_bin, analytics_bin]
    for b in needed:
        if not b.exists():
            log(f"missing {b} (build with cargo build --release -p ecap -p ecap-bench)")
            return 1

    # Hard bound on everything after the build (a normal run is far shorter).
    budget = 60
    if "core" in parts:
        budget += int(120 + (4 * args.rounds + 4) * (args.duration + 4))
    if "catalog" in parts:
        budget += int(300 + 9 * (args.rounds * (args.duration + 2) + 4))
    if "reserve" in parts:
        budget += int(2 * (2 * (args.reserve_duration + 1) + 120))
    if "orders" in parts:
        budget += int(args.rounds * len(ORDER_CLIENTS) * (3 * args.duration + 30) + 2 * 240 + 400)
    if "analytics" in parts:
        # Consumer and stream, then per size: seed, start, latency, both baselines.
        budget += int(900 + sum(600 + n * 6e-4 for n in args.analytics_sizes))
    if "gateway" in parts:
        budget += int(180 + 5 * (args.rounds * (args.duration + 2) + 4))
    signal.alarm(budget)

    load_before = loadavg()
    work = Path(tempfile.mkdtemp(prefix="ecap-bench-"))
    results: dict = {}
    t_start = time.perf_counter()
    try:
        if "core" in parts:
            results["core"] = run_core(ecap_bin, bare_bin, work, args)
        if "catalog" in parts:
            results["catalog"] = catalog_bench(ecap_bin, bare_bin, work, args.duration,
                                               args.rounds, args.catalog_products)
        if "reserve" in parts:
            results["reserve"] = reserve_bench(reserve_bin, work, args.reserve_duration,
                                               None if args.no_pg else args.pg_url)
        if "orders" in parts:
            results["orders"] = orders_bench(ecap_bin, orders_bin, work, args)
        if "analytics" in parts:
            def progress(partial: dict) -> None:
                # Written after every step: a long run that stops part-way keeps what it did.
                _, section = build_analytics_report(args, machine_info(load_before), partial)
                write_markdown(args.output, "analytics", section)
            results["analytics"] = analytics_bench(ecap_bin, analytics_bin, work, args, progress)
        if "gateway" in parts:
            results["gateway"] = gateway_bench(ecap_bin, work, args.duration, args.rounds)
    except KeyboardInterrupt:
        log("interrupted; stopping everything")
        shutil.rmtree(work, ignore_errors=True)
        return 130
    except BenchError as e:
        log(f"error: {e}")
        log(f"logs and data kept in {work}")
        return 1
    else:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")
    finally:
        signal.alarm(0)
        stop_all()

    info = machine_info(load_before)
    builders = {"core": build_report, "catalog": build_catalog_report,
                "reserve": build_reserve_report, "orders": build_orders_report,
                "analytics": build_analytics_report, "gateway": build_gateway_report}
    for part in parts:
        table, section = builders[part](args, info, results[part])
        print(table)
        print()
        write_markdown(args.output, part, section)
    log(f"wrote {args.output} ({time.perf_counter() - t_start:.0f}s after the build)")
    if args.json:
        def enc(o):
            if isinstance(o, Wrk):
                d = dict(o.__dict__)
                d.pop("raw", None)
                return d
            if isinstance(o, Path):
                return str(o)
            raise TypeError(type(o))
        args.json.write_text(json.dumps({"machine": info, "results": results}, default=enc, indent=2))
    if "analytics" in parts and analytics_failed(results["analytics"]):
        log("analytics: answers or checks did not match (see MISMATCH above): failing")
        return 3
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        stop_all()
        sys.exit(130)
