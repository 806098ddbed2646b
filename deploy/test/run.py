#!/usr/bin/env python3
"""`make test-deploy`: every deployment file is either run for real here or
checked by a real scanner (docs/deploy.md says which).

Parts (all by default; name some to run only those):
  scan     checkov over Terraform, the Dockerfile, the workflows and (secrets)
           the compose files: 0 failed, every skip with a reason; hadolint,
           actionlint, `terraform fmt -check`, `docker-compose config` of both
           compose files, and the project's own rules for them.
  image    builds the runtime stage of the real Dockerfile on a local Debian
           base from the host's release binary; size, start → healthy time,
           non-root, HEALTHCHECK turning unhealthy when /ready fails and
           healthy again, `docker stop` time and a clean exit.
  compose  the real docker-compose.yml with an override that swaps images and
           puts every container on the host network (databases and Redis: the
           machine's own servers); every container healthy, an API story
           through nginx, orders placed while the orders replicas restart
           (none acknowledged is lost), `down` and `up` keep the data.

Ends with a line "N passed, M failed"; exit status 1 when anything failed.
Traffic stays on 127.0.0.1. Figures go to stdout and target/deploy-test.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASE_TAG = os.environ.get("ECAP_BASE_IMAGE", "ecap-base/debian:bookworm")
RUN_ID = uuid.uuid4().hex[:8]
IMAGE = f"ecap-test/ecap:{RUN_ID}"
PG_ADMIN = os.environ.get("ECAP_TEST_PG_ADMIN", "postgres")
FIGURES: dict[str, object] = {}

passed = 0
failed = 0
failures: list[str] = []


def check(name: str, ok: bool, detail: str = "") -> bool:
    global passed, failed
    if ok:
        passed += 1
        short = detail.strip() if detail and len(detail) <= 100 and "\n" not in detail.strip() else ""
        print(f"  ok    {name}" + (f" ({short})" if short else ""), flush=True)
    else:
        failed += 1
        failures.append(name)
        print(f"  FAIL  {name}" + (f": {detail}" if detail else ""), flush=True)
    return ok


def figure(name: str, value: object, unit: str = "") -> None:
    FIGURES[name] = value
    print(f"  figure {name} = {value}{unit}", flush=True)


def run(cmd: list[str], *, check_rc: bool = False, timeout: float = 600, env: dict | None = None,
        cwd: Path | None = None, input: str | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd or ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, input=input)
    if check_rc and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: object | None = None, token: str | None = None,
         headers: dict | None = None, timeout: float = 15) -> tuple[int, dict | str]:
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read().decode()
            status = r.status
    except urllib.error.HTTPError as e:
        raw = e.read().decode()
        status = e.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


# --------------------------------------------------------------------- docker

def docker_cli() -> list[str]:
    """A docker client that builds with BuildKit: one with buildx, else Debian's
    20.10 client (BuildKit built in)."""
    if run(["docker", "buildx", "version"]).returncode == 0:
        return ["docker"]
    for candidate in ("/usr/bin/docker", "docker"):
        if shutil.which(candidate):
            v = run([candidate, "version", "-f", "{{.Client.Version}}"]).stdout.strip()
            if v and int(v.split(".")[0]) < 23:
                return [candidate]
    raise RuntimeError("no docker client that builds with BuildKit (install buildx or Debian's docker.io)")


def compose_cli() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return ["docker", "compose"]


def ensure_base() -> None:
    t0 = time.monotonic()
    run(["bash", "deploy/docker/make-base.sh"], check_rc=True, timeout=900)
    figure("base_image_seconds", round(time.monotonic() - t0, 1), " s")


def host_binary() -> str:
    """The binary the image is built from: the debug one `make test` just built
    (no release build to wait for in CI, even when a stale target/release is
    around; the size figure then says so), or the release one with
    `ECAP_DEPLOY_PROFILE=release`. Cargo brings it up to date either way;
    ECAP_DEPLOY_BINARY=path uses that binary as it is."""
    given = os.environ.get("ECAP_DEPLOY_BINARY")
    if given:
        figure("binary_profile", given)
        return given
    profile = os.environ.get("ECAP_DEPLOY_PROFILE") or "debug"
    t0 = time.monotonic()
    cmd = ["cargo", "build", "-p", "ecap", "--locked"] + (["--release"] if profile == "release" else [])
    run(cmd, check_rc=True, timeout=3600)
    figure("binary_profile", profile)
    figure(f"{profile}_build_seconds", round(time.monotonic() - t0, 1), " s")
    return f"target/{profile}/ecap"


def build_image(docker: list[str], binary: str) -> None:
    t0 = time.monotonic()
    run(docker + ["build", "--network", "host",
                  "--build-arg", "ECAP_BINARY=prebuilt", "--build-arg", f"ECAP_PREBUILT={binary}",
                  "--build-arg", f"RUNTIME_IMAGE={BASE_TAG}",
                  "--target", "runtime", "-t", IMAGE, "."],
        check_rc=True, timeout=900, env={"DOCKER_BUILDKIT": "1"})
    figure("image_build_seconds", round(time.monotonic() - t0, 1), " s")


def health(docker: list[str], container: str) -> str:
    return run(docker + ["inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}{{end}}", container]).stdout.strip()


def wait_health(docker: list[str], container: str, want: str, limit: float) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if health(docker, container) == want:
            return time.monotonic() - t0
        time.sleep(0.25)
    return None


# ----------------------------------------------------------------------- psql

def psql(sql: str, db: str = "postgres") -> str:
    return run(["psql", "-h", "127.0.0.1", "-U", PG_ADMIN, "-d", db, "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
               check_rc=True).stdout


def mysql(sql: str) -> str:
    return run(["mysql", "--protocol=tcp", "-h", "127.0.0.1", "-P", "3306", "-u", "root", "-N", "-e", sql],
               check_rc=True).stdout


# ----------------------------------------------------------------------- scan

CHECKOV_RUNS = {
    "terraform": ["-d", "deploy/terraform", "--framework", "terraform"],
    "dockerfile": ["-f", "Dockerfile", "--framework", "dockerfile"],
    "github_actions": ["-d", ".github/workflows", "--framework", "github_actions"],
    # The secrets scanner has no "passed" count: it only reports findings.
    "secrets": ["--framework", "secrets", "-f", "docker-compose.yml", "-f", "docker-compose.prod.yml",
                "-f", ".env.example", "-f", "Dockerfile", "-d", "deploy", "-d", ".github"],
}


def scan_checkov() -> None:
    """The four checkov runs at once (each spends most of its time starting)."""
    procs = {label: subprocess.Popen(["checkov", "--quiet", "--skip-download", "-o", "json"] + args, cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for label, args in CHECKOV_RUNS.items()}
    for label, proc in procs.items():
        out, err = proc.communicate(timeout=900)
        # One JSON document per scanned root when -f and -d are mixed.
        reports: list[dict] = []
        decoder, pos, text = json.JSONDecoder(), 0, out.strip()
        try:
            while pos < len(text):
                doc, end = decoder.raw_decode(text, pos)
                reports.extend(doc if isinstance(doc, list) else [doc])
                pos = end
                while pos < len(text) and text[pos].isspace():
                    pos += 1
        except ValueError as e:
            check(f"checkov {label}", False, f"{e}: {out[:300]} {err[-500:]}")
            continue
        if not reports:
            check(f"checkov {label}", False, f"no report (exit {proc.returncode}): {err[-800:]}")
            continue
        passed_n = failed_n = skipped_n = parse_errors = 0
        unexplained = []
        for rep in reports:
            summary = rep.get("summary", rep)
            passed_n += summary.get("passed", 0)
            failed_n += summary.get("failed", 0)
            skipped_n += summary.get("skipped", 0)
            parse_errors += summary.get("parsing_errors", 0)
            results = rep.get("results", {})
            for f in results.get("failed_checks", []):
                print(f"        {f['check_id']} {f['check_name']} — {f.get('resource')} "
                      f"{f.get('file_path')}:{f.get('file_line_range')}")
            for sk in results.get("skipped_checks", []):
                if not (sk.get("check_result", {}).get("suppress_comment") or "").strip():
                    unexplained.append(f"{sk['check_id']} {sk.get('resource')}")
        FIGURES[f"checkov_{label}"] = {"passed": passed_n, "failed": failed_n, "skipped": skipped_n}
        scanned = label == "secrets" or passed_n > 0
        check(f"checkov {label}: 0 failed, 0 parse errors", failed_n == 0 and parse_errors == 0 and scanned,
              f"{passed_n} passed, {failed_n} failed, {skipped_n} skipped")
        check(f"checkov {label}: every skip has its reason inline", not unexplained, ", ".join(unexplained))


def compose_config(files: list[str], env_file: Path) -> dict:
    proc = run(compose_cli() + ["--project-directory", str(ROOT), "--env-file", str(env_file)]
               + sum((["-f", f] for f in files), []) + ["config"])
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip()[-2000:])
    import yaml
    return yaml.safe_load(proc.stdout)


def scan() -> None:
    print("scan", flush=True)
    scan_checkov()

    if shutil.which("hadolint"):
        p = run(["hadolint", "--no-color", "Dockerfile"])
        check("hadolint Dockerfile", p.returncode == 0, (p.stdout + p.stderr).strip()[-1500:])
    else:
        print("  skip  hadolint not installed (deploy/test/prepare.sh installs it)")
    if shutil.which("actionlint"):
        wf = sorted(str(p) for p in (ROOT / ".github/workflows").glob("*.yml"))
        p = run(["actionlint", "-shellcheck=", *wf])
        check("actionlint workflows", p.returncode == 0, (p.stdout + p.stderr).strip()[-1500:])
    else:
        print("  skip  actionlint not installed (deploy/test/prepare.sh installs it)")

    # Terraform: formatting by terraform itself where the binary exists (init,
    # validate and plan need the provider registry, which is not reachable here);
    # every file parsed by python-hcl2 (the parser checkov uses).
    import hcl2
    tf_files = sorted((ROOT / "deploy/terraform").glob("*.tf"))
    bad = []
    for f in tf_files:
        try:
            hcl2.loads(f.read_text())
        except Exception as e:  # noqa: BLE001 - any parse error is the finding
            bad.append(f"{f.name}: {e}")
    check(f"terraform: {len(tf_files)} files parse (python-hcl2)", not bad and len(tf_files) > 5, "; ".join(bad))
    if shutil.which("terraform"):
        p = run(["terraform", "fmt", "-check", "-recursive", "-diff", "deploy/terraform"])
        check("terraform fmt -check", p.returncode == 0, p.stdout[-1500:])
    else:
        print("  skip  terraform fmt: no terraform binary")
    variables = hcl2.loads((ROOT / "deploy/terraform/variables.tf").read_text()).get("variable", [])
    undocumented = [n for v in variables for n, body in v.items() if not body.get("description")]
    check("terraform: every variable has a description", not undocumented and variables, ", ".join(undocumented))
    outputs = hcl2.loads((ROOT / "deploy/terraform/outputs.tf").read_text()).get("output", [])
    check("terraform: outputs with descriptions", outputs and all(b.get("description") for o in outputs for b in o.values()))

    # Dockerfile rules checkov cannot see through build arguments.
    text = (ROOT / "Dockerfile").read_text()
    args = dict(re.findall(r"^ARG (\w+_IMAGE)=(\S+)$", text, re.M))
    untagged = [f"{k}={v}" for k, v in args.items() if ":" not in v.rsplit("/", 1)[-1] or v.endswith(":latest")]
    check("Dockerfile: every base image argument has a version tag", len(args) >= 3 and not untagged,
          ", ".join(untagged) or ", ".join(args))
    for rule, pattern in [("USER is numeric, not root", r"^USER \$\{ECAP_UID\}:\$\{ECAP_UID\}$"),
                          ("HEALTHCHECK runs ecap healthcheck", r'^HEALTHCHECK .*CMD \["ecap", "healthcheck"\]$'),
                          ("STOPSIGNAL SIGTERM", r"^STOPSIGNAL SIGTERM$"),
                          ("serve is the default command", r'^CMD \["serve"\]$')]:
        check(f"Dockerfile: {rule}", re.search(pattern, text, re.M) is not None)

    # Compose: valid for Compose itself, and the rules docs/deploy.md promises.
    try:
        dev = compose_config(["docker-compose.yml"], ROOT / ".env.example")
        check("docker-compose config: docker-compose.yml", True)
    except RuntimeError as e:
        check("docker-compose config: docker-compose.yml", False, str(e))
        dev = None
    with tempfile.NamedTemporaryFile("w", suffix=".env", delete=False) as f:
        f.write("\n".join([
            "ECAP_IMAGE=123456789012.dkr.ecr.eu-west-1.amazonaws.com/ecap-production:v0.1.0",
            "JWT_SECRET=example-jwt-secret-0123456789", "INTERNAL_TOKEN=example-internal-token-0123",
            "REDIS_URL=rediss://:token@example.cache.amazonaws.com:6379", "CORS_ORIGIN=https://shop.example.com",
            "S3_BUCKET=example-images", "AWS_REGION=eu-west-1",
            "USERS_DATABASE_URL=mysql://ecap:pw@mysql.example.rds.amazonaws.com:3306/users_db",
            "CATALOG_DATABASE_URL=postgres://ecap:pw@pg.example.rds.amazonaws.com:5432/catalog_db",
            "ORDERS_DATABASE_URL=postgres://ecap:pw@pg.example.rds.amazonaws.com:5432/orders_db",
            "ANALYTICS_DATABASE_URL=postgres://ecap:pw@pg.example.rds.amazonaws.com:5432/analytics_db", ""]))
        prod_env = Path(f.name)
    try:
        prod = compose_config(["docker-compose.prod.yml"], prod_env)
        check("docker-compose config: docker-compose.prod.yml", True)
    except RuntimeError as e:
        check("docker-compose config: docker-compose.prod.yml", False, str(e))
        prod = None
    finally:
        prod_env.unlink()
    if dev:
        services = dev["services"]
        want = {"nginx", "gateway", "users", "catalog", "orders-1", "orders-2", "analytics", "mariadb", "postgres", "redis"}
        check("compose: the original's topology (orders twice)", want <= set(services), ", ".join(sorted(services)))
        check("compose: every service has a health check", all("healthcheck" in s for s in services.values()))
        deps = [(n, d, c.get("condition")) for n, s in services.items() for d, c in (s.get("depends_on") or {}).items()]
        check("compose: every dependency waits for service_healthy", deps and all(c == "service_healthy" for *_, c in deps))
        published = sorted(n for n, s in services.items() if s.get("ports"))
        check("compose: only nginx publishes a port", published == ["nginx"], ", ".join(published))
        vols = {v.split(":")[0] if isinstance(v, str) else v.get("source") for n in ("mariadb", "postgres", "redis")
                for v in services[n].get("volumes", [])}
        check("compose: databases keep data in named volumes", {"mariadb-data", "postgres-data", "redis-data"} <= vols)
        ecap_services = [n for n, s in services.items() if "ECAP_ONLY" in (s.get("environment") or {})]
        nonroot = all(services[n].get("read_only") and "ALL" in services[n].get("cap_drop", []) for n in ecap_services)
        check("compose: ecap services read-only, all capabilities dropped", len(ecap_services) == 6 and nonroot)
    raw = (ROOT / "docker-compose.yml").read_text() + (ROOT / "docker-compose.prod.yml").read_text()
    literal = re.findall(r"^\s*(\w*(?:SECRET|PASSWORD|TOKEN)\w*):\s*(?!\$\{)(\S+)", raw, re.M)
    check("compose: secrets only from the env file (no literal values)", not literal, str(literal) if literal else "")
    if prod:
        images = [s.get("image", "") for s in prod["services"].values()]
        check("compose prod: no database container",
              not any(re.search(r"mysql|mariadb|postgres|redis", i) for i in images), ", ".join(sorted(set(images))))
        envs = [s.get("environment") or {} for s in prod["services"].values()]
        check("compose prod: S3 for images, TLS Redis", all(e.get("S3_BUCKET") for e in envs if "ECAP_ONLY" in e)
              and all(str(e.get("REDIS_URL", "")).startswith("rediss://") for e in envs if "ECAP_ONLY" in e))
    env_example = (ROOT / ".env.example").read_text()
    check(".env.example: placeholders only", all(v in ("",) or v.startswith("change-me")
                                                  for k, v in re.findall(r"^(\w*(?:SECRET|PASSWORD|TOKEN)\w*)=(.*)$", env_example, re.M)))
    gitignore = (ROOT / ".gitignore").read_text().split()
    check(".env is git-ignored", ".env" in gitignore)


# ---------------------------------------------------------------------- image

_built: dict[str, str] = {}


def ensure_image() -> str:
    """Builds the test image once per run; returns the host binary it holds."""
    if "binary" not in _built:
        ensure_base()
        binary = host_binary()
        build_image(docker_cli(), binary)
        _built["binary"] = binary
    return _built["binary"]


def image() -> None:
    print("image", flush=True)
    docker = docker_cli()
    binary = ensure_image()
    size = int(run(docker + ["image", "inspect", "-f", "{{.Size}}", IMAGE], check_rc=True).stdout.strip())
    figure("image_size_mb", round(size / 1e6, 1), " MB")
    figure("binary_size_mb", round((ROOT / binary).stat().st_size / 1e6, 1), " MB")
    limit = 200e6 if binary.startswith("target/release") else 600e6
    check(f"image size under {limit / 1e6:.0f} MB", size < limit, f"{size / 1e6:.1f} MB")
    cfg = json.loads(run(docker + ["image", "inspect", IMAGE], check_rc=True).stdout)[0]["Config"]
    check("image: user 10001, SIGTERM, healthcheck, ecap serve",
          cfg.get("User") == "10001:10001" and cfg.get("StopSignal") == "SIGTERM"
          and cfg.get("Healthcheck", {}).get("Test") == ["CMD", "ecap", "healthcheck"]
          and cfg.get("Entrypoint") == ["ecap"] and cfg.get("Cmd") == ["serve"], json.dumps(cfg)[:400])

    # A PostgreSQL role and database of its own, so /ready can be made to fail
    # (the role loses LOGIN) without touching anyone else's data.
    role = f"ecap_deploy_{RUN_ID}"
    psql(f"CREATE ROLE {role} LOGIN")
    psql(f"CREATE DATABASE {role} OWNER {role}")
    port = free_port()
    name = f"ecap-test-{RUN_ID}"
    try:
        t0 = time.monotonic()
        run(docker + ["run", "-d", "--name", name, "--network", "host",
                      "-e", f"PORT={port}", "-e", "HOST=127.0.0.1",
                      "-e", f"DATABASE_URL=postgres://{role}@127.0.0.1:5432/{role}",
                      "-e", f"REDIS_KEY_PREFIX=ecap-deploy-{RUN_ID}:",
                      IMAGE], check_rc=True)
        ready_at = None
        while time.monotonic() - t0 < 60:
            try:
                if http("GET", f"http://127.0.0.1:{port}/ready", timeout=2)[0] == 200:
                    ready_at = time.monotonic() - t0
                    break
            except OSError:
                pass
            time.sleep(0.1)
        check("container answers /ready", ready_at is not None)
        if ready_at is not None:
            figure("start_to_ready_seconds", round(ready_at, 2), " s")
        healthy = wait_health(docker, name, "healthy", 60)
        check("HEALTHCHECK reports healthy", healthy is not None, health(docker, name))
        if healthy is not None:
            figure("start_to_healthy_seconds", round(time.monotonic() - t0, 1), " s (HEALTHCHECK interval 5 s)")
        uid = run(docker + ["exec", name, "id", "-u"]).stdout.strip()
        pid_uid = run(docker + ["exec", name, "sh", "-c", "stat -c %u /proc/1"]).stdout.strip()
        check("runs as uid 10001 (not root)", uid == "10001" and pid_uid == "10001", f"exec {uid}, pid 1 {pid_uid}")
        ro = run(docker + ["exec", name, "sh", "-c", "touch /usr/local/bin/x 2>&1; echo $?"]).stdout.strip()
        check("cannot write outside its data directory", not ro.endswith("\n0") and ro != "0", ro)
        p = run(docker + ["exec", name, "ecap", "healthcheck"])
        check("`ecap healthcheck` exits 0 when ready", p.returncode == 0, (p.stdout + p.stderr).strip()[-300:])

        # /ready fails: the role may no longer log in and its sessions end.
        psql(f"ALTER ROLE {role} NOLOGIN")
        psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'")
        t1 = time.monotonic()
        p = run(docker + ["exec", name, "ecap", "healthcheck"])
        check("`ecap healthcheck` exits 1 when /ready fails", p.returncode == 1, (p.stdout + p.stderr).strip()[-300:])
        unhealthy = wait_health(docker, name, "unhealthy", 60)
        check("HEALTHCHECK turns unhealthy when /ready fails", unhealthy is not None, health(docker, name))
        if unhealthy is not None:
            figure("ready_fails_to_unhealthy_seconds", round(time.monotonic() - t1, 1), " s")
        psql(f"ALTER ROLE {role} LOGIN")
        back = wait_health(docker, name, "healthy", 60)
        check("healthy again once the database answers", back is not None, health(docker, name))

        # docker stop: SIGTERM, graceful shutdown, exit 0 well within the grace period.
        t2 = time.monotonic()
        run(docker + ["stop", "-t", "30", name], check_rc=True, timeout=60)
        stop_s = time.monotonic() - t2
        figure("docker_stop_seconds", round(stop_s, 2), " s")
        state = json.loads(run(docker + ["inspect", "-f", "{{json .State}}", name]).stdout)
        logs = run(docker + ["logs", name])
        check("docker stop: exit 0 within the grace period", state.get("ExitCode") == 0 and stop_s < 10,
              f"exit {state.get('ExitCode')} after {stop_s:.1f} s")
        check("graceful shutdown logged", "stopped cleanly" in logs.stdout + logs.stderr)
    finally:
        run(docker + ["rm", "-f", name])
        run(["psql", "-h", "127.0.0.1", "-U", PG_ADMIN, "-d", "postgres", "-qc", f"DROP DATABASE IF EXISTS {role} WITH (FORCE)"])
        run(["psql", "-h", "127.0.0.1", "-U", PG_ADMIN, "-d", "postgres", "-qc", f"DROP ROLE IF EXISTS {role}"])


# -------------------------------------------------------------------- compose

def compose() -> None:
    print("compose", flush=True)
    from compose_test import run_compose  # noqa: PLC0415 - only this part needs it

    run_compose(ctx=sys.modules[__name__])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", help="scan, image, compose (default: all)")
    parser.add_argument("--keep", action="store_true", help="leave the test images in place")
    opts = parser.parse_args()
    parts = opts.parts or ["scan", "image", "compose"]
    unknown = [p for p in parts if p not in ("scan", "image", "compose")]
    if unknown:
        parser.error(f"unknown part(s): {', '.join(unknown)}")
    t0 = time.monotonic()
    try:
        for part in parts:
            try:
                {"scan": scan, "image": image, "compose": compose}[part]()
            except Exception as e:  # noqa: BLE001 - a broken part is a failure, the others still run
                check(f"{part}: ran to the end", False, f"{type(e).__name__}: {e}")
    finally:
        if not opts.keep and ("image" in parts or "compose" in parts):
            run(["docker", "image", "rm", "-f", IMAGE])
    figure("total_seconds", round(time.monotonic() - t0, 1), " s")
    out = ROOT / "target/deploy-test.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(FIGURES, indent=2) + "\n")
    if failures:
        print("failed: " + "; ".join(failures))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main())
