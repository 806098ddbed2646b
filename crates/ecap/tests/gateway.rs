//! `serve --only gateway` over real HTTP: fake upstream services (axum on random
//! ports) and real ecap services behind the gateway, every test on its own ports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/nginx.rs"]
mod nginx;
use nginx::Nginx;

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    body::Body,
    extract::{Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{any, get, post},
};
use common::{JWT_SECRET, Resp, SETUP_TOKEN};
use ecap_core::{
    config::{Config, Secret, Shape},
    db::Backend,
    testing::TestDb,
};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};

fn redis_url() -> String {
    std::env::var("ECAP_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A fake service: echoes what it received, and a few special routes.
#[derive(Clone)]
struct Fake {
    name: &'static str,
    hits: Arc<AtomicUsize>,
    first_bytes: Arc<Notify>,
    ready: Arc<std::sync::atomic::AtomicBool>,
}

async fn ready(State(f): State<Fake>) -> Response {
    if f.ready.load(Ordering::SeqCst) {
        Json(json!({"status": "ready"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable"})),
        )
            .into_response()
    }
}

async fn echo(State(f): State<Fake>, req: Request) -> Response {
    f.hits.fetch_add(1, Ordering::SeqCst);
    let headers: HashMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_owned()))
        .collect();
    let status = if req.method() == axum::http::Method::POST {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = json!({
        "who": f.name,
        "method": req.method().as_str(),
        "uri": req.uri().to_string(),
        "headers": headers,
    });
    (
        status,
        [
            ("x-upstream", "kept"),
            ("keep-alive", "timeout=99"),
            ("proxy-authenticate", "Basic"),
        ],
        Json(body),
    )
        .into_response()
}

async fn stream(State(f): State<Fake>) -> Response {
    f.hits.fetch_add(1, Ordering::SeqCst);
    let events = futures::stream::unfold(0, |n| async move {
        match n {
            0 => Some((Ok::<_, std::io::Error>("data: first\n\n".to_owned()), 1)),
            1 => {
                tokio::time::sleep(Duration::from_secs(2)).await;
                Some((Ok("data: second\n\n".to_owned()), 2))
            }
            _ => None,
        }
    });
    (
        [
            ("content-type", "text/event-stream"),
            ("cache-control", "no-cache"),
        ],
        Body::from_stream(events),
    )
        .into_response()
}

async fn upload(State(f): State<Fake>, req: Request) -> Json<Value> {
    let mut body = req.into_body().into_data_stream();
    let mut total = 0usize;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        if total == 0 && !chunk.is_empty() {
            f.first_bytes.notify_one();
        }
        total += chunk.len();
    }
    Json(json!({ "bytes": total }))
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(3)).await;
    "late"
}

struct Upstream {
    addr: SocketAddr,
    fake: Fake,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Upstream {
    async fn start(name: &'static str) -> Self {
        Self::start_on(name, "127.0.0.1:0".parse().unwrap()).await
    }

    async fn start_on(name: &'static str, addr: SocketAddr) -> Self {
        let fake = Fake {
            name,
            hits: Arc::new(AtomicUsize::new(0)),
            first_bytes: Arc::new(Notify::new()),
            ready: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        };
        let app = Router::new()
            .route("/ready", get(ready))
            .route("/api/analytics/stream", get(stream))
            .route("/api/orders/upload", post(upload))
            .route("/api/orders/slow", get(slow))
            .route("/{*path}", any(echo))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        Self {
            addr,
            fake,
            stop: Some(tx),
            task: Some(task),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn hits(&self) -> usize {
        self.fake.hits.load(Ordering::SeqCst)
    }

    /// Stops listening and closes its connections.
    async fn kill(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

struct Gw {
    base: String,
    client: reqwest::Client,
    _stop: oneshot::Sender<()>,
    _platform: ecap::Platform,
}

fn gateway_config(
    users: &[&Upstream],
    catalog: &[&Upstream],
    orders: &[&Upstream],
    analytics: &[&Upstream],
) -> Config {
    let list = |u: &[&Upstream]| Some(u.iter().map(|u| u.url()).collect::<Vec<_>>().join(","));
    Config {
        jwt_secret: Some(Secret::new(JWT_SECRET)),
        user_service_url: list(users),
        product_service_url: list(catalog),
        order_service_url: list(orders),
        analytics_service_url: list(analytics),
        rate_limit_max_requests: 100_000,
        auth_rate_limit_max_requests: 100_000,
        gateway_health_interval_ms: 200,
        gateway_eject_ms: 500,
        ..Config::default()
    }
}

async fn start_gateway(config: Config) -> Gw {
    let platform = ecap::assemble(&config, Shape::Gateway).await.unwrap();
    let (addr, stop) = serve(platform.router.clone()).await;
    Gw {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        _stop: stop,
        _platform: platform,
    }
}

async fn serve(router: ecap_core::http::HttpService) -> (SocketAddr, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(ecap_core::http::serve(listener, router, async move {
        let _ = rx.await;
    }));
    (addr, tx)
}

impl Gw {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
    async fn get(&self, path: &str) -> Resp {
        Resp::of(self.client.get(self.url(path)).send().await.unwrap()).await
    }
}

#[tokio::test]
async fn routes_by_prefix_keeping_status_headers_and_query() {
    let (u, c, o, a) = (
        Upstream::start("users").await,
        Upstream::start("catalog").await,
        Upstream::start("orders").await,
        Upstream::start("analytics").await,
    );
    let gw = start_gateway(gateway_config(&[&u], &[&c], &[&o], &[&a])).await;
    for (path, who) in [
        ("/api/auth/login", "users"),
        ("/api/authx", "users"),
        ("/api/users/7?x=1", "users"),
        ("/api/products?page=2&limit=5", "catalog"),
        ("/api/categories", "catalog"),
        ("/media/products/a.png", "catalog"),
        ("/api/orders/active", "orders"),
        ("/api/analytics/dashboard", "analytics"),
    ] {
        let r = gw.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {:?}", r.body);
        assert_eq!(r.body["who"], who, "{path}");
        assert_eq!(r.body["uri"], path, "path and query unchanged");
        assert_eq!(r.headers["x-upstream"], "kept");
    }
    // C22: a 201 stays a 201, with the service's body.
    let r = Resp::of(
        gw.client
            .post(gw.url("/api/products"))
            .json(&json!({"name": "x"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["who"], "catalog");
    assert_eq!(r.body["headers"]["content-type"], "application/json");

    // Nothing else is proxied; internal routes are refused and never reach a service.
    let before = u.hits() + c.hits() + o.hits() + a.hits();
    for path in [
        "/internal/orders/reserve",
        "/internal",
        "/api/orders/../../internal/x",
        "/api/health",
        "/api/nowhere",
    ] {
        let r = gw.get(path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.body["success"], false, "{path}");
        assert_eq!(r.body["message"], "Route not found");
    }
    // Every other path is the browser app's (as in the all-in-one process).
    for path in ["/", "/admin/products"] {
        let r = gw.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
    }
    assert_eq!(u.hits() + c.hits() + o.hits() + a.hits(), before);

    // The gateway's own probes.
    let r = gw.get("/health").await;
    assert_eq!(r.body["service"], "api-gateway");
    let r = gw.get("/ready").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["checks"]["orders"]["available"], 1);
}

#[tokio::test]
async fn forwarded_headers_request_id_and_hop_by_hop() {
    let u = Upstream::start("users").await;
    let gw = start_gateway(gateway_config(&[&u], &[&u], &[&u], &[&u])).await;
    let request = || {
        gw.client
            .get(gw.url("/api/users/me"))
            .header("x-forwarded-for", "203.0.113.7")
            .header("x-forwarded-proto", "https")
            .header("x-request-id", "req-abc-123")
            .header("connection", "keep-alive, x-private-hop")
            .header("x-private-hop", "secret")
            .header("keep-alive", "timeout=5")
            .header("proxy-authorization", "Basic Zm9vOmJhcg==")
            .header("te", "trailers")
            .header("user-agent", "gateway-test")
    };
    // A malformed token is refused at the edge; without it the request goes on.
    let res = request()
        .header("authorization", "Bearer not-a-jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = request().send().await.unwrap();
    let r = Resp::of(res).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let seen = &r.body["headers"];
    assert_eq!(seen["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    // The test client is not a trusted proxy: it cannot claim TLS.
    assert_eq!(seen["x-forwarded-proto"], "http");
    assert!(
        seen["x-forwarded-host"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert_eq!(seen["host"], u.addr.to_string());
    assert_eq!(seen["x-request-id"], "req-abc-123");
    assert_eq!(seen["user-agent"], "gateway-test");
    for hop in ["x-private-hop", "keep-alive", "proxy-authorization", "te"] {
        assert!(seen.get(hop).is_none(), "{hop} went upstream: {seen}");
    }
    // Back to the client: the request id, end-to-end headers; no hop-by-hop ones.
    assert_eq!(r.headers["x-request-id"], "req-abc-123");
    assert_eq!(r.headers["x-upstream"], "kept");
    assert!(r.headers.get("proxy-authenticate").is_none());
    assert!(r.headers.get("keep-alive").is_none());
    // Security headers once, not twice.
    assert_eq!(
        r.headers.get_all("x-content-type-options").iter().count(),
        1
    );
}

#[tokio::test]
async fn round_robin_ejection_and_recovery() {
    let a = Upstream::start("a").await;
    let mut b = Upstream::start("b").await;
    let o = Upstream::start("orders").await;
    let gw = start_gateway(gateway_config(&[&a, &b], &[&o], &[&o], &[&o])).await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for _ in 0..10 {
        let r = gw.get("/api/users/1").await;
        assert_eq!(r.status, StatusCode::OK);
        *seen
            .entry(r.body["who"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(seen.get("a"), Some(&5), "{seen:?}");
    assert_eq!(seen.get("b"), Some(&5), "{seen:?}");

    // b dies: every request still succeeds (a refused connection is retried on
    // a, idempotent requests only) and b is left out.
    let b_addr = b.addr;
    b.kill().await;
    for _ in 0..6 {
        let r = gw.get("/api/users/1").await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.body["who"], "a");
    }
    let metrics = gw.get("/metrics").await.body.as_str().unwrap().to_owned();
    let b_url = format!("http://{b_addr}");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("gateway_upstream_ejections_total") && l.contains(&b_url)),
        "{metrics}"
    );
    let ready = gw.get("/ready").await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body["checks"]["users"]["available"], 1);

    // b comes back on the same port: the health check brings it back.
    let b = Upstream::start_on("b", b_addr).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = gw.get("/api/users/1").await;
        if r.body["who"] == "b" {
            break;
        }
        assert!(Instant::now() < deadline, "b never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(b.hits() >= 1);
}

#[tokio::test]
async fn replicas_that_are_not_ready_are_avoided_but_not_abandoned() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let o = Upstream::start("others").await;
    let gw = start_gateway(gateway_config(&[&a, &b], &[&o], &[&o], &[&o])).await;
    // b's /ready fails (say its database is down): traffic goes to a.
    b.fake.ready.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(700)).await;
    for _ in 0..6 {
        assert_eq!(gw.get("/api/users/1").await.body["who"], "a");
    }
    // Neither is ready, both answer (a shared dependency is down): they still
    // get the requests, to serve what they can; the gateway says it is not ready.
    a.fake.ready.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..6 {
        let r = gw.get("/api/users/1").await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        seen.insert(r.body["who"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    let ready = gw.get("/ready").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.body["missing"], json!(["users"]));
    // Ready again: back in.
    a.fake.ready.store(true, Ordering::SeqCst);
    b.fake.ready.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(gw.get("/ready").await.status, StatusCode::OK);
}

#[tokio::test]
async fn upstream_failures_answer_json_502_503_504() {
    let u = Upstream::start("users").await;
    let mut o = Upstream::start("orders").await;
    let mut config = gateway_config(&[&u], &[&u], &[&o], &[&u]);
    // Active checks out of the way: the passive path is under test.
    config.gateway_health_interval_ms = 60_000;
    config.gateway_eject_ms = 400;
    config.gateway_read_timeout_ms = 300;
    let gw = start_gateway(config).await;

    // Timeout: 504, JSON.
    let started = Instant::now();
    let r = gw.get("/api/orders/slow").await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{:?}", r.body);
    assert_eq!(r.body["success"], false);
    assert!(started.elapsed() < Duration::from_secs(2));

    // Refused connection on a POST (never retried): 502, JSON; then the replica
    // is ejected: 503 JSON while it is out.
    let o_addr = o.addr;
    o.kill().await;
    let r = Resp::of(
        gw.client
            .post(gw.url("/api/orders"))
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{:?}", r.body);
    assert_eq!(r.body["success"], false);
    assert!(r.body["message"].as_str().unwrap().contains("Bad gateway"));
    let r = gw.get("/api/orders/active").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.body);
    assert_eq!(r.body["message"], "Service unavailable");
    assert_eq!(r.headers["content-type"], "application/json");
    let ready = gw.get("/ready").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.body["missing"], json!(["orders"]));

    // Once the ejection ends the replica is tried again, and it is back.
    let _o = Upstream::start_on("orders", o_addr).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = gw.get("/api/orders/active").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["who"], "orders");
}

#[tokio::test]
async fn server_sent_events_pass_unbuffered() {
    let u = Upstream::start("analytics").await;
    let gw = start_gateway(gateway_config(&[&u], &[&u], &[&u], &[&u])).await;
    let started = Instant::now();
    let res = gw
        .client
        .get(gw.url("/api/analytics/stream"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut body = res.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(1), body.next())
        .await
        .expect("the first event arrives while the upstream is still open")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert_eq!(&first[..], b"data: first\n\n");
    let mut rest = Vec::new();
    while let Some(chunk) = body.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(rest, b"data: second\n\n");
    assert!(started.elapsed() >= Duration::from_secs(2));
}

#[tokio::test]
async fn request_bodies_stream_and_are_limited() {
    let u = Upstream::start("orders").await;
    let mut config = gateway_config(&[&u], &[&u], &[&u], &[&u]);
    config.body_limit_bytes = 8 * 1024 * 1024;
    let gw = start_gateway(config).await;

    // The upstream sees the first MiB before the client has sent the rest.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
    let first_bytes = u.fake.first_bytes.clone();
    let sender = tokio::spawn(async move {
        tx.send(Ok(vec![1u8; 1024 * 1024])).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), first_bytes.notified())
            .await
            .expect("the upstream got bytes before the upload ended");
        for _ in 0..3 {
            tx.send(Ok(vec![2u8; 1024 * 1024])).await.unwrap();
        }
    });
    let body = reqwest::Body::wrap_stream(tokio_stream_of(rx));
    let r = Resp::of(
        gw.client
            .post(gw.url("/api/orders/upload"))
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    sender.await.unwrap();
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["bytes"], 4 * 1024 * 1024);

    // Over the limit: declared, 413 before anything is sent upstream…
    // (The status only: the connection closes under the unread upload.)
    let hits = u.hits();
    let res = gw
        .client
        .post(gw.url("/api/orders"))
        .header("content-type", "application/json")
        .body(vec![b' '; 9 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(u.hits(), hits);
    // …and chunked, cut off once the limit is passed.
    let chunks =
        futures::stream::iter((0..10).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024 * 1024])));
    let res = gw
        .client
        .post(gw.url("/api/orders/upload"))
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await;
    if let Ok(res) = res {
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}

fn tokio_stream_of(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

fn token(secret: &str, exp_offset: i64) -> String {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    let claims = json!({
        "userId": 1, "email": "a@b.co", "role": "admin",
        "iat": now - 10, "exp": now + exp_offset, "jti": "t", "ver": 0,
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn forged_tokens_stop_at_the_edge() {
    let u = Upstream::start("users").await;
    let gw = start_gateway(gateway_config(&[&u], &[&u], &[&u], &[&u])).await;
    let call = |t: String| {
        gw.client
            .get(gw.url("/api/users/profile"))
            .bearer_auth(t)
            .send()
    };
    let before = u.hits();
    let r = Resp::of(
        call(token("another-secret-of-sixteen-chars", 3600))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["message"], "Invalid token");
    assert_eq!(r.body["success"], false);
    assert_eq!(u.hits(), before, "a forged token never reaches the service");
    // A good token goes through untouched; so does an expired one (the service
    // answers it as the all-in-one process does).
    let good = token(JWT_SECRET, 3600);
    let r = Resp::of(call(good.clone()).await.unwrap()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["headers"]["authorization"], format!("Bearer {good}"));
    let r = Resp::of(call(token(JWT_SECRET, -3600)).await.unwrap()).await;
    assert_eq!(r.status, StatusCode::OK);
    // No token: the service decides.
    let r = gw.get("/api/users/profile").await;
    assert_eq!(r.status, StatusCode::OK);
    // The browser's session cookie gets the same check.
    let before = u.hits();
    let r = Resp::of(
        gw.client
            .get(gw.url("/api/users/profile"))
            .header(
                "cookie",
                format!(
                    "ecap_session={}",
                    token("another-secret-of-sixteen-chars", 3600)
                ),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(u.hits(), before);
    let r = Resp::of(
        gw.client
            .get(gw.url("/api/users/profile"))
            .header("cookie", format!("theme=dark; ecap_session={good}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body["headers"]["cookie"]
            .as_str()
            .unwrap()
            .contains(&good)
    );
}

#[tokio::test]
async fn the_edge_rate_limit_counts_and_refuses() {
    let u = Upstream::start("users").await;
    let mut config = gateway_config(&[&u], &[&u], &[&u], &[&u]);
    config.rate_limit_max_requests = 3;
    let gw = start_gateway(config).await;
    for left in ["2", "1", "0"] {
        let r = gw.get("/api/products").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.headers["x-ratelimit-limit"], "3");
        assert_eq!(r.headers["x-ratelimit-remaining"], left);
    }
    let r = gw.get("/api/products").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.body["success"], false);
    assert!(r.headers.contains_key("retry-after"));
    // Probes are never limited.
    assert_eq!(gw.get("/health").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_shared_redis_budget_and_its_fail_policy() {
    let u = Upstream::start("users").await;
    let prefix = format!("ecap-test-{}:", uuid::Uuid::new_v4().simple());
    let mut config = gateway_config(&[&u], &[&u], &[&u], &[&u]);
    config.rate_limit_max_requests = 4;
    config.redis_url = Some(Secret::new(redis_url()));
    config.redis_key_prefix = prefix.clone();
    // Two gateway replicas, one budget.
    let one = start_gateway(config.clone()).await;
    let two = start_gateway(config.clone()).await;
    for gw in [&one, &two, &one, &two] {
        assert_eq!(gw.get("/api/products").await.status, StatusCode::OK);
    }
    let r = two.get("/api/products").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", r.body);
    assert_eq!(
        one.get("/api/products").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    // Redis unreachable: closed by default (503), open when configured.
    config.redis_url = Some(Secret::new("redis://127.0.0.1:1"));
    let closed = start_gateway(config.clone()).await;
    let r = closed.get("/api/products").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.body);
    assert_eq!(r.body["success"], false);
    config.rate_limit_fail_open = true;
    let open = start_gateway(config).await;
    let r = open.get("/api/products").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(r.headers.get("x-ratelimit-limit").is_none());

    // Clean up this test's keys only.
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty(), "the limiter wrote under the prefix");
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut conn)
        .await
        .unwrap();
}

/// `serve --only users` and `--only catalog`, each on its own SQLite database.
struct Split {
    users: SocketAddr,
    catalog: SocketAddr,
    platforms: Vec<ecap::Platform>,
    _stops: Vec<oneshot::Sender<()>>,
    _dbs: (TestDb, TestDb, tempfile::TempDir),
}

impl Split {
    async fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        let users_db = TestDb::create(Backend::Sqlite).await;
        let catalog_db = TestDb::create(Backend::Sqlite).await;
        let mut base = common::test_config(&users_db, data.path());
        base.database_url = None;
        base.users_database_url = Some(users_db.url.clone());
        base.catalog_database_url = Some(catalog_db.url.clone());
        // Services apart share revocations through Redis (this test's own prefix).
        base.redis_url = Some(Secret::new(redis_url()));
        base.redis_key_prefix = format!("ecap-test-{}:", uuid::Uuid::new_v4().simple());
        base.internal_token = Some(Secret::new("gateway-test-internal-token"));
        let users = ecap::assemble(&base, Shape::Users).await.unwrap();
        let (users_addr, s1) = serve(users.router.clone()).await;
        let catalog = ecap::assemble(&base, Shape::Catalog).await.unwrap();
        let (catalog_addr, s2) = serve(catalog.router.clone()).await;
        Self {
            users: users_addr,
            catalog: catalog_addr,
            platforms: vec![users, catalog],
            _stops: vec![s1, s2],
            _dbs: (users_db, catalog_db, data),
        }
    }

    async fn close(&self) {
        for p in &self.platforms {
            p.close().await;
        }
    }
}

/// Real services behind the gateway: users and catalog, each alone on its own
/// database, the register → login → product story through the gateway.
#[tokio::test]
async fn real_users_and_catalog_behind_the_gateway() {
    let split = Split::start().await;
    let (users_addr, catalog_addr) = (split.users, split.catalog);
    let config = Config {
        user_service_url: Some(format!("http://{users_addr}")),
        product_service_url: Some(format!("http://{catalog_addr}")),
        order_service_url: Some("http://127.0.0.1:1".into()),
        analytics_service_url: Some("http://127.0.0.1:1".into()),
        ..gateway_config(&[], &[], &[], &[])
    };
    let gw = start_gateway(config).await;
    let post = |path: &str, token: Option<&str>, body: Value| {
        let mut req = gw.client.post(gw.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let r = Resp::of(
        post(
            "/api/auth/register",
            None,
            json!({"name": "Ada Admin", "email": "ada@example.com", "password": common::PASSWORD,
                   "role": "admin", "setupToken": SETUP_TOKEN}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = Resp::of(
        post(
            "/api/auth/login",
            None,
            json!({"email": "ada@example.com", "password": common::PASSWORD}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let token = r.body["data"]["token"].as_str().unwrap().to_owned();
    let r = Resp::of(
        gw.client
            .get(gw.url("/api/auth/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = Resp::of(
        post(
            "/api/products",
            Some(&token),
            json!({"name": "Gateway Lamp", "description": "Lights the hop", "price": 19.5,
                   "category": "Home", "inventory": 7}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = gw.get("/api/products?search=Gateway").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let text = r.body.to_string();
    assert!(text.contains("Gateway Lamp"), "{text}");
    // The split services' own /ready passes through the health checks.
    let ready = gw.get("/ready").await;
    assert_eq!(
        ready.body["checks"]["users"]["available"], 1,
        "{:?}",
        ready.body
    );
    assert_eq!(ready.body["checks"]["catalog"]["available"], 1);
    assert_eq!(ready.body["missing"], json!(["orders", "analytics"]));
    split.close().await;
}

#[tokio::test]
async fn nginx_in_front_of_two_gateways() {
    let split = Split::start().await;
    let (users_addr, catalog_addr) = (split.users, split.catalog);
    let analytics = Upstream::start("analytics").await;
    let config = Config {
        user_service_url: Some(format!("http://{users_addr}")),
        product_service_url: Some(format!("http://{catalog_addr}")),
        order_service_url: Some(analytics.url()),
        analytics_service_url: Some(analytics.url()),
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        ..gateway_config(&[], &[], &[], &[])
    };
    let one = start_gateway(config.clone()).await;
    let two = start_gateway(config).await;
    let addr = |g: &Gw| g.base.trim_start_matches("http://").parse().unwrap();
    let nginx = Nginx::start(&[addr(&one), addr(&two)]);
    // Without decompression, to see the encoding.
    let client = reqwest::Client::builder().no_gzip().build().unwrap();

    // nginx's own health answer, as the original's.
    let res = client.get(nginx.url("/health")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "healthy\n");

    // The story through both hops: 201s stay 201s.
    let r = Resp::of(
        client
            .post(nginx.url("/api/auth/register"))
            .json(&json!({"name": "Nia Nginx", "email": "nia@example.com",
                          "password": common::PASSWORD, "role": "admin", "setupToken": SETUP_TOKEN}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let token = r.body["data"]["token"].as_str().unwrap().to_owned();
    let r = Resp::of(
        client
            .post(nginx.url("/api/products"))
            .bearer_auth(&token)
            .header("x-request-id", "through-nginx-1")
            .json(
                &json!({"name": "Proxy Pot", "description": "Two hops", "price": 3.5,
                          "category": "Home", "inventory": 2}),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.headers["x-request-id"], "through-nginx-1");
    // Security headers once (the gateway's / service's), none added by nginx.
    for name in [
        "x-content-type-options",
        "x-frame-options",
        "strict-transport-security",
    ] {
        assert_eq!(r.headers.get_all(name).iter().count(), 1, "{name}");
    }
    // A forged token stops at the gateway, behind nginx too.
    let r = Resp::of(
        client
            .get(nginx.url("/api/auth/me"))
            .bearer_auth(token.replace('.', ".x"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Large JSON lists come back compressed.
    for i in 0..30 {
        let r = Resp::of(
            client
                .post(nginx.url("/api/products"))
                .bearer_auth(&token)
                .json(
                    &json!({"name": format!("Filler {i}"), "description": "x".repeat(200),
                              "price": 1.0, "category": "Home", "inventory": 1}),
                )
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let res = client
        .get(nginx.url("/api/products?limit=50"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-encoding"], "gzip");
    // Internal routes are refused at the first hop.
    let res = client
        .get(nginx.url("/internal/anything"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // The event stream arrives unbuffered through nginx and the gateway.
    let started = Instant::now();
    let res = client
        .get(nginx.url("/api/analytics/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("x-accel-buffering").is_none());
    let mut body = res.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(1), body.next())
        .await
        .expect("the first event arrives before the stream ends")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first).contains("data: first"));
    assert!(started.elapsed() < Duration::from_millis(1500));

    // One gateway gone: nginx sends the reads to the other.
    drop(one);
    for _ in 0..6 {
        let res = client
            .get(nginx.url("/api/products?limit=1"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    drop(two);
    split.close().await;
}

/// The binary: `ecap serve --only gateway` on its own, configured by the
/// environment, says what it routes where and answers for missing services.
#[tokio::test]
async fn the_binary_serves_the_gateway() {
    let u = Upstream::start("users").await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ecap"))
        .args(["serve", "--only", "gateway", "--port", &port.to_string()])
        .env_clear()
        .env("HOST", "127.0.0.1")
        .env("JWT_SECRET", JWT_SECRET)
        .env("USER_SERVICE_URL", u.url())
        .env("PRODUCT_SERVICE_URL", "http://127.0.0.1:1")
        .env("ORDER_SERVICE_URL", "http://127.0.0.1:1")
        .env("ANALYTICS_SERVICE_URL", "http://127.0.0.1:1")
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.get(format!("{base}/health")).send().await.is_err() {
        assert!(child.try_wait().unwrap().is_none(), "the gateway exited");
        assert!(Instant::now() < deadline, "the gateway did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = Resp::of(
        client
            .get(format!("{base}/api/users/1"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.body["who"], "users");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = Resp::of(
        client
            .get(format!("{base}/api/orders"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        r.status == StatusCode::SERVICE_UNAVAILABLE || r.status == StatusCode::BAD_GATEWAY,
        "{:?}",
        r.body
    );
    assert_eq!(r.body["success"], false);
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("ORDER_SERVICE_URL"), "{log}");
    assert!(log.contains(&u.url()), "{log}");

    // Without JWT_SECRET it refuses to start, saying why.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ecap"))
        .args(["serve", "--only", "gateway", "--port", "0"])
        .env_clear()
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("JWT_SECRET"));
}
