//! The reverse proxy of the split shape (API_CONTRACT.md §3, without its defects).
//!
//! Prefix routing to replica lists, least-outstanding choice (round-robin among
//! equals), active checks on each replica's `/ready`, passive ejection on
//! connection failures and timeouts, bodies streamed both ways, status and
//! end-to-end headers kept, hop-by-hop headers dropped (RFC 9110 §7.6.1),
//! `X-Forwarded-*` set, forged tokens refused at the edge. hyper's own client
//! does the HTTP (docs/adr/0007-gateway.md says why).

use std::{
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{
        Arc, Weak,
        atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    body::Body,
    extract::{ConnectInfo, Request, State},
    http::{
        HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version, header,
        request::Parts,
    },
    response::{IntoResponse, Response},
    routing::{any, get},
};
use bytes::Bytes;
use ecap_core::{
    auth::AuthState,
    clock,
    error::{ApiError, ErrorCode},
    http::route_not_found,
};
use http_body::{Frame, SizeHint};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use ipnet::IpNet;
use serde_json::json;
use tower::ServiceExt;

/// A service behind the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Users,
    Catalog,
    Orders,
    Analytics,
}

impl Service {
    pub const ALL: [Service; 4] = [
        Service::Users,
        Service::Catalog,
        Service::Orders,
        Service::Analytics,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Catalog => "catalog",
            Self::Orders => "orders",
            Self::Analytics => "analytics",
        }
    }

    /// The variable naming its replicas (the original's names).
    pub fn env(self) -> &'static str {
        match self {
            Self::Users => "USER_SERVICE_URL",
            Self::Catalog => "PRODUCT_SERVICE_URL",
            Self::Orders => "ORDER_SERVICE_URL",
            Self::Analytics => "ANALYTICS_SERVICE_URL",
        }
    }

    pub fn default_url(self) -> &'static str {
        match self {
            Self::Users => "http://127.0.0.1:8001",
            Self::Catalog => "http://127.0.0.1:8002",
            Self::Orders => "http://127.0.0.1:8003",
            Self::Analytics => "http://127.0.0.1:8004",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Users => 0,
            Self::Catalog => 1,
            Self::Orders => 2,
            Self::Analytics => 3,
        }
    }
}

/// §3.1: plain prefix match in this order (so `/api/authx` goes to users, as in
/// the original), plus the catalog's local image files under `/media/`.
pub fn route(path: &str) -> Option<Service> {
    const ROUTES: [(&str, Service); 7] = [
        ("/api/auth", Service::Users),
        ("/api/users", Service::Users),
        ("/api/products", Service::Catalog),
        ("/api/categories", Service::Catalog),
        ("/api/orders", Service::Orders),
        ("/api/analytics", Service::Analytics),
        ("/media/", Service::Catalog),
    ];
    ROUTES
        .iter()
        .find(|(prefix, _)| path.starts_with(prefix))
        .map(|(_, s)| *s)
}

/// Paths the gateway never forwards: the services' internal routes, also when
/// spelled with dot segments.
fn refused(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower == "/internal"
        || lower.starts_with("/internal/")
        || lower
            .split('/')
            .any(|seg| seg == ".." || seg == "." || seg.contains("%2e") || seg.contains("%2f"))
}

/// How the gateway reaches and watches its upstreams.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// Replica base URLs per service, in [`Service::ALL`] order.
    pub upstreams: [Vec<String>; 4],
    pub connect_timeout: Duration,
    /// From the request sent to the response's head.
    pub read_timeout: Duration,
    pub health_interval: Duration,
    /// How long a replica that failed is left out before it is tried again.
    pub eject_for: Duration,
    /// Largest request body forwarded (multipart uploads: `upload_limit`).
    pub body_limit: usize,
    pub upload_limit: usize,
    /// Peers whose `X-Forwarded-Proto`/`-Host` are kept.
    pub trusted_proxies: Vec<IpNet>,
}

impl GatewaySettings {
    /// Splits a comma-separated replica list; checks each is `http://host:port`.
    pub fn parse_list(service: Service, value: Option<&str>) -> Result<Vec<String>, String> {
        let raw = value
            .filter(|v| !v.trim().is_empty())
            .unwrap_or(service.default_url());
        let mut out = Vec::new();
        for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let uri: Uri = item
                .parse()
                .map_err(|e| format!("{}: {item:?} is not a URL: {e}", service.env()))?;
            if uri.scheme_str() != Some("http") || uri.authority().is_none() {
                return Err(format!(
                    "{}: {item:?} must be http://host:port (TLS ends at nginx)",
                    service.env()
                ));
            }
            out.push(item.trim_end_matches('/').to_owned());
        }
        if out.is_empty() {
            return Err(format!("{}: no upstream given", service.env()));
        }
        Ok(out)
    }
}

/// One replica and what the gateway knows about it.
pub struct Upstream {
    pub url: String,
    authority: String,
    /// The last active check passed.
    healthy: AtomicBool,
    /// The last active check got an HTTP answer (ready or not).
    answers: AtomicBool,
    check_failures: AtomicU32,
    /// Left out until this time (ms since the gateway started); 0 = not ejected.
    ejected_until: AtomicU64,
    /// Timeouts in a row.
    failures: AtomicU32,
    in_flight: AtomicUsize,
    m: UpstreamMetrics,
}

struct UpstreamMetrics {
    requests: [metrics::Counter; 5],
    connect_errors: metrics::Counter,
    timeouts: metrics::Counter,
    io_errors: metrics::Counter,
    retries: metrics::Counter,
    ejections: metrics::Counter,
    available: metrics::Gauge,
    in_flight: metrics::Gauge,
}

impl UpstreamMetrics {
    fn new(service: Service, url: &str) -> Self {
        let labels = |extra: Option<(&'static str, &'static str)>| {
            let mut l = vec![
                metrics::Label::new("service", service.name()),
                metrics::Label::new("upstream", url.to_owned()),
            ];
            if let Some((k, v)) = extra {
                l.push(metrics::Label::new(k, v));
            }
            l
        };
        let class = |c: &'static str| {
            metrics::counter!(
                "gateway_upstream_requests_total",
                labels(Some(("class", c)))
            )
        };
        let error = |k: &'static str| {
            metrics::counter!("gateway_upstream_errors_total", labels(Some(("kind", k))))
        };
        Self {
            requests: [
                class("1xx"),
                class("2xx"),
                class("3xx"),
                class("4xx"),
                class("5xx"),
            ],
            connect_errors: error("connect"),
            timeouts: error("timeout"),
            io_errors: error("io"),
            retries: metrics::counter!("gateway_upstream_retries_total", labels(None)),
            ejections: metrics::counter!("gateway_upstream_ejections_total", labels(None)),
            available: metrics::gauge!("gateway_upstream_available", labels(None)),
            in_flight: metrics::gauge!("gateway_upstream_in_flight", labels(None)),
        }
    }
}

struct Pool {
    service: Service,
    upstreams: Vec<Arc<Upstream>>,
    next: AtomicUsize,
    /// Request sent to response head, per service.
    duration: metrics::Histogram,
}

/// The gateway's state: upstream pools, the HTTP client, the edge token check.
pub struct Gateway {
    pools: Vec<Pool>,
    client: Client<HttpConnector, Body>,
    settings: GatewaySettings,
    auth: AuthState,
    started: Instant,
    fallback: Option<Router>,
}

/// Decrements a replica's in-flight count when the attempt ends.
struct InFlight<'a>(&'a Upstream);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Gateway {
    /// `fallback` answers paths no service owns (the dashboard), else 404.
    /// Starts the active health checks (needs a Tokio runtime); they stop when
    /// the gateway is dropped.
    pub fn new(
        settings: GatewaySettings,
        auth: AuthState,
        fallback: Option<Router>,
    ) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        ecap_core::http::metrics_handle();
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(settings.connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .build(connector);
        let pools = Service::ALL
            .iter()
            .map(|&service| Pool {
                service,
                upstreams: settings.upstreams[service.index()]
                    .iter()
                    .map(|url| {
                        let authority = url
                            .parse::<Uri>()
                            .ok()
                            .and_then(|u| u.authority().map(|a| a.as_str().to_owned()))
                            .unwrap_or_default();
                        let m = UpstreamMetrics::new(service, url);
                        m.available.set(1.0);
                        Arc::new(Upstream {
                            url: url.clone(),
                            authority,
                            healthy: AtomicBool::new(true),
                            answers: AtomicBool::new(true),
                            check_failures: AtomicU32::new(0),
                            ejected_until: AtomicU64::new(0),
                            failures: AtomicU32::new(0),
                            in_flight: AtomicUsize::new(0),
                            m,
                        })
                    })
                    .collect(),
                next: AtomicUsize::new(0),
                duration: metrics::histogram!(
                    "gateway_upstream_duration_seconds",
                    "service" => service.name()
                ),
            })
            .collect();
        let gateway = Arc::new(Self {
            pools,
            client,
            settings,
            auth,
            started: Instant::now(),
            fallback,
        });
        let checks = tokio::spawn(health_checks(Arc::downgrade(&gateway)));
        (gateway, checks)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn available(&self, u: &Upstream, now: u64) -> bool {
        u.healthy.load(Ordering::Relaxed) && u.ejected_until.load(Ordering::Relaxed) <= now
    }

    /// Least outstanding requests among available replicas, starting the scan
    /// at a rotating index so equals take turns.
    ///
    /// When no replica is available but some answer their `/ready` with an
    /// error (a dependency of theirs is down, Redis for instance), those that
    /// answer and are not ejected still get the requests: they can serve what
    /// does not need the missing dependency, and say 503 for the rest.
    fn pick(&self, pool: &Pool, tried: &[usize]) -> Option<usize> {
        let now = self.now_ms();
        let n = pool.upstreams.len();
        let start = pool.next.fetch_add(1, Ordering::Relaxed);
        for degraded in [false, true] {
            let mut best: Option<(usize, usize)> = None;
            for i in 0..n {
                let idx = (start + i) % n;
                let u = &pool.upstreams[idx];
                let usable = if degraded {
                    u.answers.load(Ordering::Relaxed)
                        && u.ejected_until.load(Ordering::Relaxed) <= now
                } else {
                    self.available(u, now)
                };
                if tried.contains(&idx) || !usable {
                    continue;
                }
                let load = u.in_flight.load(Ordering::Relaxed);
                if best.is_none_or(|(_, b)| load < b) {
                    best = Some((idx, load));
                }
            }
            if best.is_some() {
                return best.map(|(i, _)| i);
            }
        }
        None
    }

    fn eject(&self, service: Service, u: &Upstream, why: &str) {
        let until = self.now_ms() + duration_ms(self.settings.eject_for);
        let before = u.ejected_until.swap(until, Ordering::Relaxed);
        u.failures.store(0, Ordering::Relaxed);
        u.m.ejections.increment(1);
        u.m.available.set(0.0);
        if before <= self.now_ms() {
            tracing::warn!(
                service = service.name(),
                upstream = %u.url,
                reason = why,
                for_ms = duration_ms(self.settings.eject_for),
                "upstream ejected"
            );
        }
    }

    fn timed_out(&self, service: Service, u: &Upstream) {
        if u.failures.fetch_add(1, Ordering::Relaxed) + 1 >= 3 {
            self.eject(service, u, "3 timeouts in a row");
        }
    }

    /// Per service: how many replicas are available, of how many.
    pub fn availability(&self) -> Vec<(Service, usize, usize)> {
        let now = self.now_ms();
        self.pools
            .iter()
            .map(|p| {
                let up = p
                    .upstreams
                    .iter()
                    .filter(|u| self.available(u, now))
                    .count();
                (p.service, up, p.upstreams.len())
            })
            .collect()
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Probes every replica's `/ready` each interval. A refused connection marks a
/// replica down at once; other failures after two checks in a row. A passing
/// check brings a replica back, ejected or not.
async fn health_checks(gateway: Weak<Gateway>) {
    loop {
        let Some(gw) = gateway.upgrade() else { return };
        let interval = gw.settings.health_interval;
        let timeout = interval.clamp(Duration::from_millis(200), Duration::from_secs(2));
        let checks = gw.pools.iter().flat_map(|pool| {
            let gw = &gw;
            pool.upstreams.iter().map(move |u| async move {
                let outcome = probe(&gw.client, u, timeout).await;
                record_check(gw, pool.service, u, outcome);
            })
        });
        futures::future::join_all(checks).await;
        drop(gw);
        tokio::time::sleep(interval).await;
    }
}

enum Check {
    Ready,
    Refused,
    /// `/ready` answered, not 2xx.
    NotReady(String),
    Failed(String),
}

async fn probe(client: &Client<HttpConnector, Body>, u: &Upstream, timeout: Duration) -> Check {
    let Ok(uri) = format!("{}/ready", u.url).parse::<Uri>() else {
        return Check::Failed("bad URL".into());
    };
    let mut req = Request::new(Body::empty());
    *req.uri_mut() = uri;
    let call = async {
        let res = client.request(req).await?;
        let status = res.status();
        // Read the small answer so the connection goes back to the pool.
        let _ = http_body_util::BodyExt::collect(res.into_body()).await;
        Ok::<_, hyper_util::client::legacy::Error>(status)
    };
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(s)) if s.is_success() => Check::Ready,
        Ok(Ok(s)) => Check::NotReady(format!("/ready answered {s}")),
        Ok(Err(e)) if e.is_connect() => Check::Refused,
        Ok(Err(e)) => Check::Failed(e.to_string()),
        Err(_) => Check::Failed("/ready timed out".into()),
    }
}

fn record_check(gw: &Gateway, service: Service, u: &Upstream, outcome: Check) {
    let was = u.healthy.load(Ordering::Relaxed);
    let now_healthy = match &outcome {
        Check::Ready => {
            u.check_failures.store(0, Ordering::Relaxed);
            u.ejected_until.store(0, Ordering::Relaxed);
            u.failures.store(0, Ordering::Relaxed);
            true
        }
        Check::Refused => false,
        Check::NotReady(_) | Check::Failed(_) => {
            u.check_failures.fetch_add(1, Ordering::Relaxed) + 1 < 2 && was
        }
    };
    u.answers.store(
        matches!(outcome, Check::Ready | Check::NotReady(_)),
        Ordering::Relaxed,
    );
    u.healthy.store(now_healthy, Ordering::Relaxed);
    let available = gw.available(u, gw.now_ms());
    u.m.available.set(if available { 1.0 } else { 0.0 });
    if was != now_healthy {
        if now_healthy {
            tracing::info!(service = service.name(), upstream = %u.url, "upstream ready");
        } else {
            let reason = match outcome {
                Check::Failed(why) | Check::NotReady(why) => why,
                _ => "connection refused".into(),
            };
            tracing::warn!(service = service.name(), upstream = %u.url, %reason, "upstream not ready");
        }
    }
}

/// The gateway's own routes; everything else is proxied (or the fallback).
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(render_metrics))
        .route("/", any(proxy))
        .route("/{*path}", any(proxy))
        .with_state(gateway)
}

async fn health(State(gw): State<Arc<Gateway>>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "healthy",
        "service": "api-gateway",
        "timestamp": clock::now_iso(),
        "uptime": gw.started.elapsed().as_secs_f64(),
    }))
}

/// Ready when every service has at least one available replica; the answer
/// names the ones that have none.
async fn ready(State(gw): State<Arc<Gateway>>) -> Response {
    let now = gw.now_ms();
    let mut checks = serde_json::Map::new();
    let mut missing = Vec::new();
    for pool in &gw.pools {
        let replicas: Vec<_> = pool
            .upstreams
            .iter()
            .map(|u| {
                json!({
                    "url": u.url,
                    "ready": u.healthy.load(Ordering::Relaxed),
                    "answers": u.answers.load(Ordering::Relaxed),
                    "ejected": u.ejected_until.load(Ordering::Relaxed) > now,
                    "in_flight": u.in_flight.load(Ordering::Relaxed),
                })
            })
            .collect();
        let up = pool
            .upstreams
            .iter()
            .filter(|u| gw.available(u, now))
            .count();
        if up == 0 {
            missing.push(pool.service.name());
        }
        checks.insert(
            pool.service.name().to_owned(),
            json!({
                "status": if up > 0 { "up" } else { "down" },
                "available": up,
                "replicas": replicas,
            }),
        );
    }
    let ok = missing.is_empty();
    let body = json!({
        "success": ok,
        "status": if ok { "ready" } else { "unavailable" },
        "service": "api-gateway",
        "missing": missing,
        "checks": checks,
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn render_metrics(State(gw): State<Arc<Gateway>>) -> Response {
    let now = gw.now_ms();
    for u in gw.pools.iter().flat_map(|p| &p.upstreams) {
        u.m.in_flight
            .set(u.in_flight.load(Ordering::Relaxed) as f64);
        u.m.available
            .set(if gw.available(u, now) { 1.0 } else { 0.0 });
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        ecap_core::http::metrics_handle().render(),
    )
        .into_response()
}

/// Every path that is not the gateway's own.
pub async fn proxy(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let path = req.uri().path();
    if refused(path) {
        return route_not_found().await.into_response();
    }
    let Some(service) = route(path) else {
        return match &gw.fallback {
            Some(app) => match app.clone().oneshot(req).await {
                Ok(res) => res,
                Err(never) => match never {},
            },
            None => route_not_found().await.into_response(),
        };
    };
    let (parts, body) = req.into_parts();
    // A forged or malformed token (bearer or session cookie) never reaches a
    // service: the check is core's, the one every service's extractor runs.
    // Expired and revoked tokens, and a cookie write without its CSRF token,
    // go on: the service answers exactly as the all-in-one process does
    // (public pages read them as anonymous, protected ones say why).
    if ecap_core::session::has_credential(&parts.headers)
        && let Err(e) =
            ecap_core::session::request_claims(&gw.auth, &parts.method, &parts.headers).await
        && e.code == ErrorCode::InvalidToken
    {
        return e.into_response();
    }
    forward(&gw, service, parts, body).await
}

const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Removes the headers that belong to one connection: the fixed list, those
/// the `Connection` header names, and `Upgrade` (no protocol switch through
/// the gateway).
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        h.remove(name);
    }
    for name in HOP_BY_HOP {
        h.remove(name);
    }
    h.remove(header::UPGRADE);
}

/// `X-Forwarded-For` gets the peer appended; `-Proto` and `-Host` are kept
/// from a trusted proxy, else set from this hop. `Host` becomes the upstream's.
fn forwarded_headers(h: &mut HeaderMap, peer: Option<IpAddr>, trusted: &[IpNet]) {
    let host = h.remove(header::HOST);
    let from_proxy = peer.is_some_and(|p| crate::client_ip::is_trusted(p, trusted));
    if let Some(peer) = peer {
        let before: Vec<&str> = h
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect();
        let value = if before.is_empty() {
            peer.to_string()
        } else {
            format!("{}, {peer}", before.join(", "))
        };
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(HeaderName::from_static("x-forwarded-for"), v);
        }
    }
    if !(from_proxy && h.contains_key("x-forwarded-proto")) {
        h.insert(
            HeaderName::from_static("x-forwarded-proto"),
            HeaderValue::from_static("http"),
        );
    }
    if !(from_proxy && h.contains_key("x-forwarded-host")) {
        match host {
            Some(host) => {
                h.insert(HeaderName::from_static("x-forwarded-host"), host);
            }
            None => {
                h.remove("x-forwarded-host");
            }
        }
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
        ErrorCode::PayloadTooLarge
    } else {
        ErrorCode::Unavailable
    };
    ApiError::new(status, code, message).into_response()
}

/// The declared `Content-Length`, when it is a number.
fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
}

fn timed_out_answer() -> Response {
    error(
        StatusCode::GATEWAY_TIMEOUT,
        "Gateway timeout: the service did not answer in time",
    )
}

fn broke_off_answer() -> Response {
    error(
        StatusCode::BAD_GATEWAY,
        "Bad gateway: the service broke off the exchange",
    )
}

fn unavailable() -> Response {
    let mut e = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Unavailable,
        "Service unavailable",
    );
    e.retry_after_secs = Some(1);
    e.into_response()
}

/// Bodies up to this size of idempotent requests are kept, so a replica that
/// refuses the connection can be replaced by another.
const REPLAYABLE: usize = 64 * 1024;
/// Answers up to this size (by `Content-Length`) are read whole before they
/// are sent on.
const BUFFERED_RESPONSE: usize = 256 * 1024;

async fn forward(gw: &Gateway, service: Service, mut parts: Parts, body: Body) -> Response {
    let pool = &gw.pools[service.index()];
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    strip_hop_by_hop(&mut parts.headers);
    forwarded_headers(&mut parts.headers, peer, &gw.settings.trusted_proxies);
    let multipart = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("multipart/form-data"));
    let limit = if multipart {
        gw.settings.upload_limit.max(gw.settings.body_limit)
    } else {
        gw.settings.body_limit
    };
    let declared = content_length(&parts.headers);
    if declared.is_some_and(|n| n > limit) {
        return too_large(limit);
    }
    let idempotent = matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    );
    let empty = http_body::Body::is_end_stream(&body)
        || http_body::Body::size_hint(&body).exact() == Some(0);
    let (replay, mut body) = if empty {
        (Some(Bytes::new()), None)
    } else if idempotent && declared.is_some_and(|n| n <= REPLAYABLE) {
        match axum::body::to_bytes(body, REPLAYABLE).await {
            Ok(bytes) => (Some(bytes), None),
            Err(_) => return error(StatusCode::BAD_REQUEST, "Could not read the request body"),
        }
    } else {
        (None, Some(body))
    };
    let retry = idempotent && replay.is_some();
    let tripped = Arc::new(AtomicBool::new(false));
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    let mut tried: Vec<usize> = Vec::new();
    loop {
        let Some(idx) = gw.pick(pool, &tried) else {
            return if tried.is_empty() {
                unavailable()
            } else {
                error(
                    StatusCode::BAD_GATEWAY,
                    "Bad gateway: the service could not be reached",
                )
            };
        };
        let u = &pool.upstreams[idx];
        let Ok(uri) = Uri::builder()
            .scheme("http")
            .authority(u.authority.as_str())
            .path_and_query(path_and_query.as_str())
            .build()
        else {
            return error(StatusCode::BAD_REQUEST, "Malformed request target");
        };
        let outgoing_body = match (&replay, body.take()) {
            (Some(bytes), _) => Body::from(bytes.clone()),
            (None, Some(b)) => Body::new(Capped {
                inner: b,
                remaining: limit,
                tripped: tripped.clone(),
            }),
            (None, None) => {
                return error(
                    StatusCode::BAD_GATEWAY,
                    "Bad gateway: the service could not be reached",
                );
            }
        };
        let mut outgoing = Request::new(outgoing_body);
        *outgoing.method_mut() = parts.method.clone();
        *outgoing.uri_mut() = uri;
        *outgoing.version_mut() = Version::HTTP_11;
        // Headers are copied only when another attempt may need them.
        *outgoing.headers_mut() = if retry {
            parts.headers.clone()
        } else {
            std::mem::take(&mut parts.headers)
        };
        u.in_flight.fetch_add(1, Ordering::Relaxed);
        let guard = InFlight(u);
        let started = Instant::now();
        let result =
            tokio::time::timeout(gw.settings.read_timeout, gw.client.request(outgoing)).await;
        drop(guard);
        pool.duration.record(started.elapsed().as_secs_f64());
        match result {
            Ok(Ok(res)) => {
                u.failures.store(0, Ordering::Relaxed);
                let class = usize::from(res.status().as_u16() / 100).clamp(1, 5) - 1;
                u.m.requests[class].increment(1);
                let (mut head, incoming) = res.into_parts();
                strip_hop_by_hop(&mut head.headers);
                // An event stream must not wait in a proxy's buffer (nginx reads this).
                if head
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("text/event-stream"))
                {
                    head.headers
                        .entry(HeaderName::from_static("x-accel-buffering"))
                        .or_insert(HeaderValue::from_static("no"));
                }
                // A small answer of known length goes out in one write, as
                // nginx's proxy buffer sends it: fewer frames, wake-ups and
                // system calls than relaying it chunk by chunk. Streams (SSE,
                // no length) and large bodies are relayed as they come.
                if content_length(&head.headers).is_some_and(|n| n <= BUFFERED_RESPONSE) {
                    let whole = tokio::time::timeout(
                        gw.settings.read_timeout,
                        axum::body::to_bytes(Body::new(incoming), BUFFERED_RESPONSE),
                    );
                    return match whole.await {
                        Ok(Ok(bytes)) => Response::from_parts(head, Body::from(bytes)),
                        Err(_) => {
                            u.m.timeouts.increment(1);
                            timed_out_answer()
                        }
                        Ok(Err(e)) => {
                            u.m.io_errors.increment(1);
                            tracing::warn!(service = service.name(), upstream = %u.url, error = %e, "upstream response broke off");
                            broke_off_answer()
                        }
                    };
                }
                return Response::from_parts(head, Body::new(incoming));
            }
            Ok(Err(e)) if e.is_connect() => {
                u.m.connect_errors.increment(1);
                gw.eject(service, u, "connection failed");
                if retry {
                    u.m.retries.increment(1);
                    tried.push(idx);
                    continue;
                }
                tracing::warn!(service = service.name(), upstream = %u.url, error = %e, "upstream connection failed");
                return error(
                    StatusCode::BAD_GATEWAY,
                    "Bad gateway: the service could not be reached",
                );
            }
            Ok(Err(e)) => {
                if tripped.load(Ordering::Relaxed) {
                    return too_large(limit);
                }
                u.m.io_errors.increment(1);
                tracing::warn!(service = service.name(), upstream = %u.url, error = %e, "upstream request failed");
                return broke_off_answer();
            }
            Err(_) => {
                u.m.timeouts.increment(1);
                gw.timed_out(service, u);
                tracing::warn!(
                    service = service.name(),
                    upstream = %u.url,
                    after_ms = duration_ms(gw.settings.read_timeout),
                    "upstream timed out"
                );
                return timed_out_answer();
            }
        }
    }
}

fn too_large(limit: usize) -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("Request body is too large (limit {limit} bytes)"),
    )
}

#[derive(Debug, thiserror::Error)]
#[error("request body over the limit")]
struct OverLimit;

/// A request body that fails once more than `remaining` bytes went through.
struct Capped {
    inner: Body,
    remaining: usize,
    tripped: Arc<AtomicBool>,
}

impl http_body::Body for Capped {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    if data.len() > this.remaining {
                        this.tripped.store(true, Ordering::Relaxed);
                        return Poll::Ready(Some(Err(axum::Error::new(OverLimit))));
                    }
                    this.remaining -= data.len();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_follow_the_contract_order() {
        assert_eq!(route("/api/auth/login"), Some(Service::Users));
        assert_eq!(route("/api/authx"), Some(Service::Users));
        assert_eq!(route("/api/users/1"), Some(Service::Users));
        assert_eq!(route("/api/products?page=2"), Some(Service::Catalog));
        assert_eq!(route("/api/categories"), Some(Service::Catalog));
        assert_eq!(route("/api/orders/active"), Some(Service::Orders));
        assert_eq!(route("/api/analytics/stream"), Some(Service::Analytics));
        assert_eq!(route("/media/a.png"), Some(Service::Catalog));
        assert_eq!(route("/api/health"), None);
        assert_eq!(route("/"), None);
    }

    #[test]
    fn internal_paths_are_refused_however_spelled() {
        assert!(refused("/internal"));
        assert!(refused("/internal/orders/reserve"));
        assert!(refused("/INTERNAL/x"));
        assert!(refused("/api/orders/../../internal/x"));
        assert!(refused("/api/orders/%2e%2e/x"));
        assert!(!refused("/api/orders/internal-notes"));
    }

    #[test]
    fn hop_by_hop_headers_go_including_those_connection_names() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret-hop"),
        );
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key(header::CONTENT_TYPE));
    }

    #[test]
    fn replica_lists_are_checked() {
        assert_eq!(
            GatewaySettings::parse_list(Service::Orders, None).unwrap(),
            vec!["http://127.0.0.1:8003"]
        );
        assert_eq!(
            GatewaySettings::parse_list(Service::Users, Some("http://a:1/, http://b:2")).unwrap(),
            vec!["http://a:1", "http://b:2"]
        );
        assert!(GatewaySettings::parse_list(Service::Users, Some("https://a:1")).is_err());
        assert!(GatewaySettings::parse_list(Service::Users, Some("a b")).is_err());
    }

    #[test]
    fn forwarded_headers_append_and_distrust() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("shop.example"));
        h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.1"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        let peer: IpAddr = "198.51.100.9".parse().unwrap();
        forwarded_headers(&mut h, Some(peer), &[]);
        assert_eq!(h["x-forwarded-for"], "203.0.113.1, 198.51.100.9");
        // An untrusted peer cannot claim TLS.
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "shop.example");
        assert!(!h.contains_key(header::HOST));

        let mut h = HeaderMap::new();
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        h.insert("x-forwarded-host", HeaderValue::from_static("shop.example"));
        h.insert(header::HOST, HeaderValue::from_static("gateway:8000"));
        let nginx: IpAddr = "127.0.0.1".parse().unwrap();
        forwarded_headers(&mut h, Some(nginx), &["127.0.0.1/32".parse().unwrap()]);
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "shop.example");
        assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    }
}
