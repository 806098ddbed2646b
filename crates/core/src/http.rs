//! The HTTP foundation every service shares: request ids, structured request
//! logs, Helmet's security headers, CORS, body limit, compression, metrics,
//! JSON fallbacks, `/health`, `/ready`, `/metrics`, graceful shutdown.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::OnceLock,
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, MatchedPath, Request, State},
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use tower::{ServiceBuilder, ServiceExt, util::BoxCloneSyncService};
use tower_http::{
    catch_panic::CatchPanicLayer,
    compression::CompressionLayer,
    cors::{AllowOrigin, CorsLayer},
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    sensitive_headers::SetSensitiveRequestHeadersLayer,
    trace::TraceLayer,
};

use crate::{
    clock,
    db::Db,
    error::{ApiError, ErrorCode},
};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What the shared layers need to know.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub cors_origin: String,
    pub body_limit_bytes: usize,
    /// Limit for `multipart/form-data` bodies (uploads); routes that take
    /// uploads set their own `DefaultBodyLimit` up to this.
    pub upload_limit_bytes: usize,
}

/// Answers every unknown route in our shape.
pub async fn route_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::RouteNotFound,
        "Route not found",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        "Method not allowed",
    )
}

/// A whole process's HTTP service, ready for [`serve`].
pub type HttpService = BoxCloneSyncService<Request, Response, Infallible>;

/// Wraps a finished router (routes, health, state) in the shared layers.
///
/// Only the metrics layer sits inside the router (it needs the matched route);
/// everything else wraps the router once, so it is cloned per connection rather
/// than per request. `edge` is the process's own policy layer (rate limiting), placed
/// inside request ids, logging, security headers and CORS, and around the JSON
/// fallbacks, so unknown routes are limited too.
pub fn foundation<L>(router: Router, opts: &HttpOptions, edge: Option<L>) -> HttpService
where
    L: tower::Layer<Router> + Clone + Send + Sync + 'static,
    L::Service: tower::Service<Request, Response = Response, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    <L::Service as tower::Service<Request>>::Future: Send + 'static,
{
    let limit = opts.body_limit_bytes;
    let upload_limit = opts.upload_limit_bytes.max(limit);
    let router = router
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(record_metrics))
        .layer(DefaultBodyLimit::max(limit));
    let service = ServiceBuilder::new()
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!(
                        "request",
                        request_id = %id,
                        method = %req.method(),
                        path = %req.uri().path(),
                    )
                })
                .on_request(())
                .on_response(log_response),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("handler panicked").into_response()
        }))
        // Fastest: API bodies are small JSON; a higher level costs more CPU
        // per request than it saves on the wire.
        .layer(CompressionLayer::new().quality(tower_http::CompressionLevel::Fastest))
        .layer(middleware::map_response(security_headers))
        .layer(cors(&opts.cors_origin))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            reject_large_bodies(limit, upload_limit, req, next)
        }))
        .option_layer(edge)
        .service(router);
    BoxCloneSyncService::new(service.map_response(|res| res.map(axum::body::Body::new)))
}

fn log_response<B>(res: &http::Response<B>, latency: Duration, _span: &tracing::Span) {
    tracing::info!(
        status = res.status().as_u16(),
        latency_ms = latency.as_secs_f64() * 1000.0,
        "request finished"
    );
}

/// Helmet's defaults (minus `upgrade-insecure-requests`, which breaks plain-HTTP localhost).
async fn security_headers(mut res: Response) -> Response {
    const HEADERS: [(&str, &str); 12] = [
        (
            "content-security-policy",
            "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data: blob:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline'",
        ),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        ("origin-agent-cluster", "?1"),
        ("referrer-policy", "no-referrer"),
        (
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        ),
        ("x-content-type-options", "nosniff"),
        ("x-dns-prefetch-control", "off"),
        ("x-download-options", "noopen"),
        ("x-frame-options", "SAMEORIGIN"),
        ("x-permitted-cross-domain-policies", "none"),
        ("x-xss-protection", "0"),
    ];
    let headers = res.headers_mut();
    headers.reserve(HEADERS.len());
    for (name, value) in HEADERS {
        headers
            .entry(HeaderName::from_static(name))
            .or_insert(HeaderValue::from_static(value));
    }
    res
}

fn cors(origin: &str) -> CorsLayer {
    let base = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_NONE_MATCH,
            HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([
            REQUEST_ID,
            header::RETRY_AFTER,
            header::ETAG,
            HeaderName::from_static("x-ratelimit-limit"),
            HeaderName::from_static("x-ratelimit-remaining"),
            HeaderName::from_static("ratelimit-limit"),
            HeaderName::from_static("ratelimit-remaining"),
            HeaderName::from_static("ratelimit-reset"),
            HeaderName::from_static("ratelimit-policy"),
        ])
        .max_age(Duration::from_secs(600));
    if origin.trim() == "*" {
        return base.allow_origin(AllowOrigin::any());
    }
    let origins: Vec<HeaderValue> = origin
        .split(',')
        .filter_map(|o| HeaderValue::from_str(o.trim()).ok())
        .collect();
    base.allow_origin(origins).allow_credentials(true)
}

/// A declared body over the limit is refused before it is read.
/// Request headers beyond this many bytes in all are refused with a JSON 431
/// (nginx's default buffers hold 32 KiB; hyper's own, far larger, limit
/// answers without a body).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// True when a percent-encoded path or query carries a control character
/// (`%00`–`%1F` or `%7F`; tab, newline and carriage return included: none
/// belongs in a URL).
fn encodes_control_character(raw: &str) -> bool {
    let b = raw.as_bytes();
    b.windows(3).any(|w| {
        w[0] == b'%'
            && matches!((w[1], w[2].to_ascii_uppercase()),
                (b'0' | b'1', b'0'..=b'9' | b'A'..=b'F') | (b'7', b'F'))
    })
}

async fn reject_large_bodies(
    limit: usize,
    upload_limit: usize,
    req: Request,
    next: Next,
) -> Response {
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorCode::HeadersTooLarge,
            format!("Request headers are too large (limit {MAX_HEADER_BYTES} bytes)"),
        )
        .into_response();
    }
    if encodes_control_character(req.uri().path())
        || req.uri().query().is_some_and(encodes_control_character)
    {
        return ApiError::bad_request("The URL must not contain control characters (such as %00)")
            .into_response();
    }
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("multipart/form-data"));
    let limit = if multipart { upload_limit } else { limit };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("Request body is too large (limit {limit} bytes)"),
        )
        .into_response();
    }
    next.run(req).await
}

/// The process-wide Prometheus recorder.
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("http_request_duration_seconds".into()),
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ],
            )
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // A second install (several apps in one test process) keeps the first recorder.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

async fn record_metrics(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    res
}

/// Something besides a database that `/ready` checks (Redis for revocations,
/// an upstream, the event bus…).
#[async_trait::async_trait]
pub trait Dependency: Send + Sync + 'static {
    /// True when the dependency answers now.
    async fn is_up(&self) -> bool;

    /// Down makes `/ready` answer 503; when `false`, `/ready` reports
    /// `degraded` with 200 (the process still serves what does not need it:
    /// another service, the event stream).
    fn required(&self) -> bool {
        true
    }
}

/// What `/health`, `/ready` and `/metrics` report on.
#[derive(Clone)]
pub struct Probe {
    pub service: &'static str,
    pub started: Instant,
    pub databases: Vec<(&'static str, Db)>,
    /// Named checks `/ready` runs beside the databases; any down → 503.
    pub dependencies: Vec<(&'static str, std::sync::Arc<dyn Dependency>)>,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe")
            .field("service", &self.service)
            .field("databases", &self.databases)
            .field(
                "dependencies",
                &self.dependencies.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// `/health`, `/ready` and `/metrics` for one process.
pub fn probe_routes(probe: Probe) -> Router {
    metrics_handle();
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(render_metrics))
        .with_state(probe)
}

async fn health(State(p): State<Probe>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "healthy",
        "service": p.service,
        "timestamp": clock::now_iso(),
        "uptime": p.started.elapsed().as_secs_f64(),
    }))
}

async fn ready(State(p): State<Probe>) -> Response {
    let mut checks = serde_json::Map::new();
    let mut all_ok = true;
    let mut degraded = false;
    let mut missing: Vec<&str> = Vec::new();
    for (name, db) in &p.databases {
        let ok = tokio::time::timeout(Duration::from_secs(2), db.ping())
            .await
            .is_ok_and(|r| r.is_ok());
        all_ok &= ok;
        checks.insert((*name).to_owned(), json!(if ok { "up" } else { "down" }));
        if !ok {
            missing.push(name);
        }
    }
    let results = futures::future::join_all(p.dependencies.iter().map(|(name, dep)| async move {
        let ok = tokio::time::timeout(Duration::from_secs(2), dep.is_up())
            .await
            .unwrap_or(false);
        (*name, dep.required(), ok)
    }))
    .await;
    for (name, required, ok) in results {
        checks.insert(name.to_owned(), json!(if ok { "up" } else { "down" }));
        if !ok {
            missing.push(name);
            if required {
                all_ok = false;
            } else {
                degraded = true;
            }
        }
    }
    let status = if all_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = json!({
        "success": all_ok,
        "status": if !all_ok { "unavailable" } else if degraded { "degraded" } else { "ready" },
        "service": p.service,
        "checks": checks,
    });
    if !missing.is_empty() {
        body["missing"] = json!(missing);
        body["message"] = json!(format!("not answering: {}", missing.join(", ")));
    }
    (status, Json(body)).into_response()
}

async fn render_metrics(State(p): State<Probe>) -> Response {
    for (name, db) in &p.databases {
        let size = f64::from(db.pool().size());
        let idle = db.pool().num_idle() as f64;
        metrics::gauge!("db_pool_connections", "database" => *name, "state" => "idle").set(idle);
        metrics::gauge!("db_pool_connections", "database" => *name, "state" => "in_use")
            .set(size - idle);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics_handle().render(),
    )
        .into_response()
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: HttpService,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        axum::ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(app),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

/// Installs the tracing subscriber (`LOG_FORMAT=json` for JSON lines).
pub fn init_tracing(level: &str, format: crate::config::LogFormat) {
    use tracing_subscriber::{EnvFilter, fmt};
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        crate::config::LogFormat::Json => builder.json().flatten_event(true).try_init(),
        crate::config::LogFormat::Text => builder.try_init(),
    };
}
