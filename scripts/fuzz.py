#!/usr/bin/env python3
"""Fuzz the API from its own OpenAPI document with schemathesis (issue 14).

Starts `ecap serve --demo` on SQLite in a temporary data directory on a free
port, then runs schemathesis with every check and every phase (examples,
coverage, fuzzing, stateful through the spec's links) once anonymous and once
as each demo account (customer, merchant, admin), each role on a fresh
instance so one role's writes never decide another's answers. Exits 1 when
any check failed for any role.

    python3 scripts/fuzz.py --budget 240            # the bounded run of `make test`
    python3 scripts/fuzz.py --budget 3600 --long    # bench/fuzz.sh

Needs target/debug/ecap (or ECAP_BIN) and schemathesis 4.x (installed with
pip when missing).
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROLES = ("anonymous", "customer", "merchant", "admin")
# The demo accounts `serve --demo` creates (crates/ecap/src/lib.rs DEMO_ACCOUNTS).
ACCOUNTS = {
    "customer": ("customer@demo.ecap.local", "Customer123!"),
    "merchant": ("merchant@demo.ecap.local", "Merchant123!"),
    "admin": ("admin@demo.ecap.local", "Admin123!"),
}
# Operations left out, and why: they would revoke the fuzzer's own token (then
# every later answer is a 401 that says nothing about the operation fuzzed) or
# take away the account or role the run is about. Everything else is fuzzed,
# including DELETE /api/users/all: ECAP_DANGEROUS_OPERATIONS stays off, so it
# answers its documented 403 and wipes nothing.
EXCLUDED = {
    "anonymous": [],
    "customer": [
        ("POST", "/api/auth/logout", "revokes the fuzzer's token"),
    ],
    "merchant": [
        ("POST", "/api/auth/logout", "revokes the fuzzer's token"),
    ],
    "admin": [
        ("POST", "/api/auth/logout", "revokes the fuzzer's token"),
        ("PATCH", "/api/users/{id}/role", "could demote the fuzzer (once it has created a second admin)"),
    ],
}
# Left out of the bounded run only (the long run, bench/fuzz.sh, keeps them):
# each call walks every order of the demo data set (3,000), 20–30 s on a
# debug build, which a run of a few minutes cannot afford.
SLOW = {
    "admin": [
        ("POST", "/api/orders/sync-inventory", "walks all 3,000 demo orders (20–30 s on a debug build)"),
        ("POST", "/api/orders/undo-sync-inventory", "walks all 3,000 demo orders (20–30 s on a debug build)"),
    ],
}
# The operation ids of the excluded operations (schemathesis filters by id).
OPERATION_IDS = {
    ("POST", "/api/auth/logout"): "logout",
    ("PATCH", "/api/users/{id}/role"): "change_role",
    ("POST", "/api/orders/sync-inventory"): "sync_inventory",
    ("POST", "/api/orders/undo-sync-inventory"): "undo_sync_inventory",
}
# Expected answers declared per operation, each with its reason: the
# analytics reports' rules across parameters (schemathesis.toml).
CONFIG = ROOT / "scripts" / "schemathesis.toml"
SCHEMATHESIS = "schemathesis>=4,<5"


def log(*args):
    print(*args, flush=True)


def ensure_schemathesis():
    if shutil.which("schemathesis"):
        out = subprocess.run(["schemathesis", "--version"], capture_output=True, text=True).stdout
        if re.search(r"version 4\.", out):
            return
    log(f"== installing {SCHEMATHESIS} with pip")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", SCHEMATHESIS], check=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url, body=None, token=None, timeout=10):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(req, timeout=timeout) as res:
        return json.loads(res.read() or b"null")


class Server:
    """One `ecap serve --demo` on SQLite in a temporary directory."""

    def __init__(self, binary, tag):
        self.dir = tempfile.mkdtemp(prefix=f"ecap-fuzz-{tag}-")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        # A fuzzer sends thousands of requests a minute from one address: the
        # limits would answer 429 to most of them and test nothing else.
        env.update(
            {
                "ECAP_DATA_DIR": self.dir,
                "JWT_SECRET": "fuzz-" + "x" * 40,
                "RATE_LIMIT_MAX_REQUESTS": "100000000",
                "AUTH_RATE_LIMIT_MAX_REQUESTS": "100000000",
                "ECAP_LOGIN_MAX_FAILURES": "100000000",
                "LOG_LEVEL": "error",
            }
        )
        for key in ("DATABASE_URL", "REDIS_URL", "ECAP_ONLY", "PORT"):
            env.pop(key, None)
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        self.proc = subprocess.Popen(
            [binary, "serve", "--demo", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=self.dir,
        )
        deadline = time.time() + 300
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"ecap serve exited ({self.proc.returncode}); log: {self.log.name}")
            try:
                with urllib.request.urlopen(self.base + "/ready", timeout=2) as res:
                    if res.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        raise SystemExit("ecap serve did not become ready in 300 s")

    def token(self, role):
        email, password = ACCOUNTS[role]
        res = request(self.base + "/api/auth/login", {"email": email, "password": password})
        return res["data"]["token"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        alive = self.proc.returncode not in (0, -signal.SIGTERM, None)
        return alive


def excluded(role, long):
    return EXCLUDED[role] + ([] if long else SLOW.get(role, []))


def run_role(binary, role, seconds, workers, report_dir, seed, long):
    server = Server(binary, role)
    try:
        cmd = [
            "schemathesis",
            "--config-file",
            str(CONFIG),
            "run",
            server.base + "/api/openapi.json",
            "--url",
            server.base,
            "--checks",
            "all",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-time",
            str(seconds),
            "--workers",
            str(workers),
            "--request-timeout",
            "30",
            "--suppress-health-check",
            "all",
            "--no-color",
            "--report",
            "junit",
            "--report-junit-path",
            str(report_dir / f"{role}.xml"),
        ]
        if seed is not None:
            cmd += ["--seed", str(seed)]
        if role != "anonymous":
            cmd += ["-H", f"Authorization: Bearer {server.token(role)}"]
        for method, path, _ in excluded(role, long):
            cmd += ["--exclude-operation-id", OPERATION_IDS[(method, path)]]
        started = time.time()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=server.dir)
        elapsed = time.time() - started
        (report_dir / f"{role}.txt").write_text(proc.stdout + proc.stderr)
        server_alive = server.proc.poll() is None
    finally:
        server.stop()
    result = summarise(proc.stdout + proc.stderr)
    result.update(role=role, seconds=round(elapsed), status=proc.returncode, alive=server_alive)
    if server_alive:
        shutil.rmtree(server.dir, ignore_errors=True)
    return result


def summarise(text):
    """Operations, cases and failures per check, from schemathesis' summary."""
    ops = cases = errors = 0
    failures = {}
    m = re.search(r"Selected:\s*(\d+)/\d+", text)
    if m:
        ops = int(m.group(1))
    m = re.search(r"Test cases:\s*\n\s*(\d+) generated", text)
    if m:
        cases = int(m.group(1))
    block = re.search(r"\nFailures:\n(.*?)\n\n", text, re.S)
    if block:
        for line in block.group(1).splitlines():
            m = re.match(r"\s*\S+\s+(.+?):\s*(\d+)\s*$", line)
            if m:
                failures[m.group(1)] = int(m.group(2))
    block = re.search(r"\nErrors:\n(.*?)\n\n", text, re.S)
    if block:
        errors = sum(int(n) for n in re.findall(r":\s*(\d+)\s*$", block.group(1), re.M))
    return {"operations": ops, "cases": cases, "failures": failures, "errors": errors}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=int, default=240, help="seconds of fuzzing for all roles together")
    ap.add_argument("--roles", default=",".join(ROLES))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--report-dir", default=str(ROOT / "target" / "fuzz"))
    ap.add_argument("--long", action="store_true", help="print a BENCHMARKS.md table at the end")
    args = ap.parse_args()

    # Absolute: each server runs in its own temporary directory.
    binary = os.path.abspath(os.environ.get("ECAP_BIN", str(ROOT / "target" / "debug" / "ecap")))
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"{binary} not found: build it first (cargo build -p ecap)")
    ensure_schemathesis()
    roles = [r for r in args.roles.split(",") if r]
    report_dir = Path(args.report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    per_role = max(10, args.budget // len(roles))

    for role in roles:
        for method, path, why in excluded(role, args.long):
            log(f"   excluded for {role}: {method} {path} ({why})")
    started = time.time()
    results = []
    for role in roles:
        log(f"== schemathesis as {role} ({per_role} s)")
        r = run_role(
            binary, role, per_role, args.workers, report_dir, args.seed, args.long
        )
        results.append(r)
        failed = sum(r["failures"].values())
        log(
            f"   {role}: {r['operations']} operations, {r['cases']} cases, {failed} failures "
            f"{json.dumps(r['failures'], ensure_ascii=False)}, {r['errors']} errors, "
            f"exit {r['status']}, {r['seconds']} s"
            + ("" if r["alive"] else ", THE SERVER DIED")
        )
        if r["status"] != 0:
            text = (report_dir / f"{role}.txt").read_text()
            log(text[-20000:])
    total = time.time() - started
    log(f"== fuzzing took {total:.0f} s; reports in {report_dir}")
    if args.long:
        log(
            "\n| role | operations | cases | failures | errors | seconds |"
            "\n|---|---:|---:|---:|---:|---:|"
        )
        for r in results:
            log(
                f"| {r['role']} | {r['operations']} | {r['cases']} | "
                f"{sum(r['failures'].values())} | {r['errors']} | {r['seconds']} |"
            )
    bad = [r["role"] for r in results if r["status"] != 0 or not r["alive"]]
    if bad:
        log(f"schemathesis failed for: {', '.join(bad)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
