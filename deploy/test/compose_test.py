"""The `compose` part of deploy/test/run.py: the real docker-compose.yml, up for
real on this machine.

The override written here only swaps images (the test image of the real
Dockerfile, an nginx from Debian's package on the local base), puts every
container on the host network, and points the services at the machine's own
PostgreSQL, MariaDB and Redis (fresh databases and a Redis key prefix of this
run; the compose file's database containers become stand-ins whose health check
is the real server's port). Ports are free ones picked here, so nothing
collides with the machine's own services. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import threading
import time
import uuid
from pathlib import Path

NGINX_IMAGE = "ecap-test/nginx:bookworm"
ECAP_SERVICES = ["gateway", "users", "catalog", "orders-1", "orders-2", "analytics"]


def run_compose(ctx) -> None:  # noqa: C901, PLR0915 - one story, told in order
    root: Path = ctx.ROOT
    check, figure, run, http = ctx.check, ctx.figure, ctx.run, ctx.http
    def skip(why: str) -> None:
        # Not a failure: the split shape and its nginx config are other issues' work.
        print(f"  skip  compose: {why}", flush=True)

    if not (root / "deploy/nginx/nginx.conf").exists():
        return skip("no deploy/nginx/nginx.conf in this tree yet")
    docker = ctx.docker_cli()
    binary = ctx.ensure_image()
    help_text = run([str(root / binary), "serve", "--help"]).stdout
    if not all(w in help_text for w in ("orders", "analytics", "gateway")):
        return skip("this tree's ecap has no `serve --only orders|analytics|gateway` yet")
    build_nginx(ctx, docker)

    rid = ctx.RUN_ID
    project = f"ecapdeploy{rid}"
    ports = {name: ctx.free_port() for name in ["nginx", *ECAP_SERVICES]}
    prefix = f"ecapdeploy_{rid}"
    dbs = {"users": f"{prefix}_users", "catalog": f"{prefix}_catalog",
           "orders": f"{prefix}_orders", "analytics": f"{prefix}_analytics"}
    redis_prefix = f"ecap-deploy-{rid}:"
    work = root / "target" / f"deploy-compose-{rid}"
    work.mkdir(parents=True, exist_ok=True)

    ctx.mysql(f"CREATE DATABASE {dbs['users']}")
    for key in ("catalog", "orders", "analytics"):
        ctx.psql(f"CREATE DATABASE {dbs[key]}")

    env_file = work / "test.env"
    env_file.write_text("\n".join([
        f"JWT_SECRET={secrets.token_hex(24)}",
        f"INTERNAL_TOKEN={secrets.token_hex(24)}",
        f"MARIADB_ROOT_PASSWORD={secrets.token_hex(12)}",
        f"MARIADB_PASSWORD={secrets.token_hex(12)}",
        f"POSTGRES_PASSWORD={secrets.token_hex(12)}",
        f"REDIS_PASSWORD={secrets.token_hex(12)}",
        f"REDIS_KEY_PREFIX={redis_prefix}",
        "ECAP_SETUP_TOKEN=",
        f"ECAP_IMAGE={ctx.IMAGE}",
        f"NGINX_IMAGE={NGINX_IMAGE}",
        f"HTTP_PORT={ports['nginx']}",
        "",
    ]))
    # deploy/nginx/nginx.conf runs as written; its two includes say where this
    # run's gateway and nginx listen on the host network.
    (work / "gateways.conf").write_text(f"server 127.0.0.1:{ports['gateway']} max_fails=2 fail_timeout=5s;\n")
    (work / "listen.conf").write_text(f"listen 127.0.0.1:{ports['nginx']};\n")
    override = work / "compose.override.yml"
    override.write_text(json.dumps(override_doc(ctx, ports, dbs, work), indent=2))

    # Compose merges docker-compose.yml with the override; published ports of
    # host-network containers are then dropped, as Docker itself discards them
    # (Compose v1's API client refuses the combination instead of warning).
    merged = ctx.run(ctx.compose_cli() + ["--project-directory", str(root), "-p", project,
                                          "--env-file", str(env_file), "-f", str(root / "docker-compose.yml"),
                                          "-f", str(override), "config"], check_rc=True).stdout
    import yaml

    doc = yaml.safe_load(merged)
    for svc in doc["services"].values():
        if svc.get("network_mode") == "host":
            svc.pop("ports", None)
    resolved = work / "compose.resolved.yml"
    resolved.write_text(yaml.safe_dump(doc, sort_keys=False))
    compose = ctx.compose_cli() + ["--project-directory", str(root), "-p", project, "-f", str(resolved)]

    def dc(*args: str, timeout: float = 300, input: str | None = None) -> subprocess.CompletedProcess:
        return run(compose + list(args), timeout=timeout, input=input)

    base = f"http://127.0.0.1:{ports['nginx']}"
    try:
        t0 = time.monotonic()
        p = dc("up", "-d", "--no-build", timeout=600)
        check("compose up", p.returncode == 0, (p.stderr or p.stdout)[-1500:])
        healthy = wait_all_healthy(ctx, docker, dc, 240)
        check("every container healthy", healthy is not None, container_states(docker, dc))
        if healthy is None:
            for svc in unhealthy_services(ctx, docker, dc):
                print(f"  --- {svc}: last health checks and logs", flush=True)
                print(dc("logs", "--tail", "15", svc).stdout[-3000:])
            return
        figure("compose_up_to_healthy_seconds", round(time.monotonic() - t0, 1), " s")

        status, body = http("GET", f"{base}/health")
        check("nginx answers /health", status == 200, str(body)[:200])

        # --- the API story, all through nginx → gateway → services ---
        admin_email = f"admin-{rid}@example.com"
        p = dc("exec", "-T", "users", "ecap", "users", "create-admin", "--email", admin_email,
               "--name", "Deploy Admin", input="Admin-pass-123!\n")
        check("first admin made with `ecap users create-admin` in the users container", p.returncode == 0,
              (p.stderr or p.stdout)[-500:])
        status, body = http("POST", f"{base}/api/auth/login", {"email": admin_email, "password": "Admin-pass-123!"})
        admin = body["data"]["token"] if status == 200 else None
        check("admin logs in through nginx", admin is not None, f"{status} {str(body)[:300]}")
        products = []
        for i, (price, stock) in enumerate([(19.5, 500), (5.0, 500)]):
            status, body = http("POST", f"{base}/api/products", {
                "name": f"Deploy product {i} {rid}", "description": "made by the compose test",
                "price": price, "inventory": stock, "category": "sports"}, token=admin)
            if status == 201:
                products.append((body["data"]["product"]["id"], price))
        check("admin creates products", len(products) == 2, f"{status} {str(body)[:300]}")
        status, body = http("GET", f"{base}/api/products?limit=100")
        listed = {p["id"] for p in body["data"]["products"]} if status == 200 else set()
        check("the catalog lists them", {p for p, _ in products} <= listed, f"{status}")
        status, body = http("POST", f"{base}/api/auth/register",
                            {"name": "Deploy Shopper", "email": f"shopper-{rid}@example.com",
                             "password": "Shopper-pass-1!"})
        shopper = body["data"]["token"] if status == 201 else None
        check("a customer registers", shopper is not None, f"{status} {str(body)[:300]}")

        def place(n: int = 1) -> tuple[int, str | None]:
            pid, price = products[n % 2]
            s, b = http("POST", f"{base}/api/orders", {
                "items": [{"productId": pid, "quantity": 1, "price": price}],
                "paymentMethod": "card", "shippingAddress": {"street": "1 Test Road", "city": "Pune",
                                                             "zipCode": "411001"}},
                token=shopper, headers={"Idempotency-Key": uuid.uuid4().hex}, timeout=20)
            return s, (b["data"]["order"]["id"] if s == 201 and isinstance(b, dict) else None)

        first = [place(i) for i in range(3)]
        check("the customer places orders", all(s == 201 for s, _ in first), str([s for s, _ in first]))
        acknowledged = [o for s, o in first if o]
        status, body = http("GET", f"{base}/api/orders/{acknowledged[0]}", token=shopper) if acknowledged else (0, "")
        check("and reads one back", status == 200, f"{status} {str(body)[:200]}")
        seen = wait_for(lambda: analytics_orders(http, base, admin) >= len(acknowledged), 30)
        check("analytics counts them (events through Redis)", seen, f"{analytics_orders(http, base, admin)}")

        # --- restart both orders replicas, one after the other, under load ---
        stop = threading.Event()
        results: list[tuple[int, str | None]] = []

        def load() -> None:
            i = 0
            while not stop.is_set():
                try:
                    results.append(place(i))
                except OSError:
                    results.append((0, None))
                i += 1

        workers = [threading.Thread(target=load) for _ in range(2)]
        for w in workers:
            w.start()
        restarts = []
        try:
            time.sleep(2)
            for svc in ("orders-1", "orders-2"):
                t1 = time.monotonic()
                p = dc("restart", svc, timeout=120)
                back = wait_all_healthy(ctx, docker, dc, 120)
                restarts.append((svc, p.returncode, back is not None, round(time.monotonic() - t1, 1)))
            time.sleep(2)
        finally:
            stop.set()
            for w in workers:
                w.join(timeout=60)
        check("both orders replicas restarted and healthy again", all(rc == 0 and ok for _, rc, ok, _ in restarts),
              str(restarts))
        figure("orders_restart_seconds", [r[3] for r in restarts], " s")
        ok = [o for s, o in results if o]
        refused = [s for s, o in results if not o]
        figure("orders_during_restarts", {"acknowledged": len(ok), "not_acknowledged": len(refused),
                                          "statuses_not_acknowledged": sorted(set(refused))})
        check("orders were acknowledged during the restarts", len(ok) >= 10, f"{len(ok)} acknowledged")
        acknowledged += ok
        missing = [o for o in acknowledged if http("GET", f"{base}/api/orders/{o}", token=shopper)[0] != 200]
        check("no acknowledged order is lost", not missing, f"{len(missing)} of {len(acknowledged)} missing")
        status, body = http("GET", f"{base}/api/orders?limit=10000", token=shopper)
        listed = {o["id"] for o in body["data"]["orders"]} if status == 200 else set()
        check("the customer's list holds every acknowledged order", set(acknowledged) <= listed,
              f"{len(set(acknowledged) - listed)} absent")
        counted = wait_for(lambda: analytics_orders(http, base, admin) >= len(acknowledged), 60)
        check("analytics caught up with every order", counted,
              f"{analytics_orders(http, base, admin)} of {len(acknowledged)}")

        # --- down and up keep the data (databases, and the media volume) ---
        p = dc("exec", "-T", "catalog", "sh", "-c", f"echo {rid} > /var/lib/ecap/volume-probe")
        check("catalog writes its media volume", p.returncode == 0, p.stderr[-300:])
        p = dc("down", timeout=300)
        check("compose down", p.returncode == 0, p.stderr[-500:])
        t2 = time.monotonic()
        p = dc("up", "-d", "--no-build", timeout=600)
        healthy = wait_all_healthy(ctx, docker, dc, 240) if p.returncode == 0 else None
        check("compose up again, every container healthy", healthy is not None, container_states(docker, dc))
        figure("compose_reup_to_healthy_seconds", round(time.monotonic() - t2, 1), " s")
        status, body = http("POST", f"{base}/api/auth/login",
                            {"email": f"shopper-{rid}@example.com", "password": "Shopper-pass-1!"})
        check("the customer still logs in", status == 200, f"{status}")
        token = body["data"]["token"] if status == 200 else shopper
        status, body = http("GET", f"{base}/api/orders?limit=10000", token=token)
        listed = {o["id"] for o in body["data"]["orders"]} if status == 200 else set()
        check("every order is still there", set(acknowledged) <= listed, f"{len(set(acknowledged) - listed)} absent")
        p = dc("exec", "-T", "catalog", "cat", "/var/lib/ecap/volume-probe")
        check("the media volume kept its file", p.stdout.strip() == rid, p.stdout + p.stderr)
    finally:
        if os.environ.get("ECAP_DEPLOY_KEEP_UP"):
            print(f"  note  left up: {' '.join(compose)}", flush=True)
            return
        dc("down", "-v", "--remove-orphans", timeout=300)
        ctx.run(["mysql", "--protocol=tcp", "-h", "127.0.0.1", "-u", "root", "-e", f"DROP DATABASE IF EXISTS {dbs['users']}"])
        for key in ("catalog", "orders", "analytics"):
            ctx.run(["psql", "-h", "127.0.0.1", "-U", ctx.PG_ADMIN, "-d", "postgres", "-qc",
                     f"DROP DATABASE IF EXISTS {dbs[key]} WITH (FORCE)"])
        delete_redis_prefix(ctx, redis_prefix)


def build_nginx(ctx, docker: list[str]) -> None:
    """nginx from Debian's package on the local base (no registry here)."""
    if ctx.run(docker + ["image", "inspect", NGINX_IMAGE]).returncode == 0:
        return
    dockerfile = (f"FROM {ctx.BASE_TAG}\n"
                  "RUN apt-get update && apt-get install -y --no-install-recommends nginx-light curl "
                  "&& rm -rf /var/lib/apt/lists/*\n"
                  'CMD ["nginx", "-g", "daemon off;"]\n')
    ctx.run(docker + ["build", "--network", "host", "-t", NGINX_IMAGE, "-"], input=dockerfile, check_rc=True,
            timeout=600, env={"DOCKER_BUILDKIT": "1"})


def override_doc(ctx, ports: dict[str, int], dbs: dict[str, str], work: Path) -> dict:
    loop = "127.0.0.1"
    urls = {
        "USER_SERVICE_URL": f"http://{loop}:{ports['users']}",
        "PRODUCT_SERVICE_URL": f"http://{loop}:{ports['catalog']}",
        "ORDER_SERVICE_URL": f"http://{loop}:{ports['orders-1']},http://{loop}:{ports['orders-2']}",
        "ANALYTICS_SERVICE_URL": f"http://{loop}:{ports['analytics']}",
    }
    pg = f"postgres://{ctx.PG_ADMIN}@{loop}:5432"
    database = {
        "users": f"mysql://root@{loop}:3306/{dbs['users']}",
        "catalog": f"{pg}/{dbs['catalog']}",
        "orders-1": f"{pg}/{dbs['orders']}",
        "orders-2": f"{pg}/{dbs['orders']}",
        "analytics": f"{pg}/{dbs['analytics']}",
    }
    services: dict[str, dict] = {}
    for name in ECAP_SERVICES:
        # Every test request comes from 127.0.0.1, so the per-IP budgets are
        # raised: this test is about the topology, not the limiter.
        env = {"PORT": str(ports[name]), "HOST": loop, "REDIS_URL": f"redis://{loop}:6379",
               "TRUSTED_PROXIES": f"{loop}/32", "CORS_ORIGIN": f"http://{loop}:{ports['nginx']}",
               "RATE_LIMIT_MAX_REQUESTS": "1000000", "AUTH_RATE_LIMIT_MAX_REQUESTS": "10000", **urls}
        if name in database:
            env["DATABASE_URL"] = database[name]
        services[name] = {"image": ctx.IMAGE, "network_mode": "host", "environment": env}
    services["nginx"] = {"image": NGINX_IMAGE, "network_mode": "host",
                         "volumes": [f"{work}/gateways.conf:/etc/ecap/nginx/gateways.conf:ro",
                                     f"{work}/listen.conf:/etc/ecap/nginx/listen.conf:ro"],
                         "healthcheck": {"test": ["CMD", "curl", "-fsS", "-o", "/dev/null",
                                                  f"http://{loop}:{ports['nginx']}/health"]}}
    for name, port in (("mariadb", 3306), ("postgres", 5432), ("redis", 6379)):
        services[name] = {
            "image": ctx.BASE_TAG, "network_mode": "host", "init": True,
            "entrypoint": ["sleep"], "command": ["infinity"],
            "healthcheck": {"test": ["CMD", "bash", "-c", f"exec 3<>/dev/tcp/{loop}/{port}"],
                            "interval": "2s", "timeout": "2s", "retries": 10, "start_period": "0s"},
        }
    return {"services": services}


def unhealthy_services(ctx, docker: list[str], dc) -> list[str]:
    out = []
    for cid in compose_ids(dc):
        if ctx.health(docker, cid) != "healthy":
            name = ctx.run(docker + ["inspect", "-f", '{{index .Config.Labels "com.docker.compose.service"}}', cid])
            out.append(name.stdout.strip())
    return out


def compose_ids(dc) -> list[str]:
    return [i for i in dc("ps", "-q").stdout.split() if i]


def container_states(docker: list[str], dc) -> str:
    out = []
    for cid in compose_ids(dc):
        p = subprocess.run(docker + ["inspect", "-f", "{{.Name}} {{.State.Status}} "
                                     "{{if .State.Health}}{{.State.Health.Status}}{{end}}", cid],
                           capture_output=True, text=True)
        out.append(p.stdout.strip())
    return "; ".join(out)


def wait_all_healthy(ctx, docker: list[str], dc, limit: float) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        ids = compose_ids(dc)
        if len(ids) >= 10 and all(ctx.health(docker, i) == "healthy" for i in ids):
            return time.monotonic() - t0
        time.sleep(1)
    return None


def wait_for(cond, limit: float) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        try:
            if cond():
                return True
        except (OSError, KeyError, TypeError, ValueError):
            pass
        time.sleep(0.5)
    return False


def analytics_orders(http, base: str, admin: str | None) -> int:
    status, body = http("GET", f"{base}/api/analytics/dashboard?period=today", token=admin)
    if status != 200 or not isinstance(body, dict):
        return -1
    return int(body["data"].get("totalOrders") or 0)


def delete_redis_prefix(ctx, prefix: str) -> None:
    """Removes this run's keys only (never a flush: the server is shared)."""
    keys = ctx.run(["redis-cli", "-h", "127.0.0.1", "--scan", "--pattern", f"{prefix}*"]).stdout.split()
    for i in range(0, len(keys), 500):
        ctx.run(["redis-cli", "-h", "127.0.0.1", "DEL", *keys[i:i + 500]])
