//! The HTTP foundation every service shares: probes, errors, headers, CORS,
//! limits, compression, metrics, rate limiting, OpenAPI.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ecap_core::db::Backend;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn probes_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let h = app.get("/health", None).await;
    assert_eq!(h.status, StatusCode::OK);
    assert_eq!(h.body["status"], "healthy");
    assert_eq!(h.body["service"], "ecap");
    assert!(h.body["uptime"].as_f64().unwrap() >= 0.0);
    assert!(h.body["timestamp"].as_str().unwrap().ends_with('Z'));
    let r = app.get("/ready", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["checks"]["users"], "up");
}

ecap_core::on_every_backend!(probes_answer);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_503_while_the_database_does_not_answer() {
    let app = spawn_app(Backend::Sqlite).await;
    let platform = ecap::assemble(&app.config, ecap_core::config::Shape::AllInOne)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    platform.close().await;
    tokio::spawn(ecap_core::http::serve(
        listener,
        platform.router,
        std::future::pending(),
    ));
    let r = app
        .client
        .get(format!("{base}/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["checks"]["users"], "down");
    // Liveness is not readiness.
    let r = app
        .client
        .get(format!("{base}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_answer_json() {
    let app = spawn_app(Backend::Sqlite).await;
    let r = app.get("/api/nothing-here", None).await;
    assert_eq!(assert_error(&r, StatusCode::NOT_FOUND), "Route not found");
    assert_eq!(r.body["code"], "route_not_found");
    let r = app
        .call(Method::DELETE, "/api/auth/login", None, None)
        .await;
    assert_error(&r, StatusCode::METHOD_NOT_ALLOWED);
    let r = app.get("/api/users/abc", Some("x")).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "auth is checked before the id"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_security_headers_and_a_request_id() {
    let app = spawn_app(Backend::Sqlite).await;
    for path in ["/health", "/api/nothing", "/api/auth/me"] {
        let r = app.get(path, None).await;
        for h in [
            "content-security-policy",
            "strict-transport-security",
            "x-content-type-options",
            "x-frame-options",
            "referrer-policy",
            "cross-origin-opener-policy",
            "x-request-id",
        ] {
            assert!(r.headers.contains_key(h), "{path} lacks {h}");
        }
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
    }
    let r = app
        .client
        .get(format!("{}/health", app.base))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["x-request-id"],
        "trace-me-42",
        "a caller's id is kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_the_configured_origin_only() {
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.cors_origin = "http://shop.example, http://admin.example".into();
    })
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(Method::OPTIONS, format!("{}/api/auth/login", app.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,authorization",
            )
            .send()
    };
    let ok = preflight("http://admin.example").await.unwrap();
    assert!(ok.status().is_success());
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "http://admin.example"
    );
    assert_eq!(ok.headers()["access-control-allow-credentials"], "true");
    let no = preflight("http://evil.example").await.unwrap();
    assert!(!no.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_are_413_json_and_responses_compress() {
    let app = spawn_app_with(Backend::Sqlite, |c| c.body_limit_bytes = 4096).await;
    let r = app
        .post(
            "/api/auth/login",
            None,
            json!({ "email": "a@example.com", "password": "x".repeat(5000) }),
        )
        .await;
    assert!(!assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE).is_empty());
    assert_eq!(r.body["code"], "payload_too_large");
    // Chunked bodies without a length are cut off at the limit too.
    let stream = futures::stream::iter(
        (0..10).map(|_| Ok::<_, std::io::Error>(bytes_of(&"y".repeat(1000)))),
    );
    let r = app
        .client
        .post(format!("{}/api/auth/login", app.base))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let raw = reqwest::Client::builder().no_gzip().build().unwrap();
    let r = raw
        .get(format!("{}/api/openapi.json", app.base))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
}

fn bytes_of(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_and_status() {
    let app = spawn_app(Backend::Sqlite).await;
    app.get("/api/auth/me", None).await;
    app.get("/health", None).await;
    let m = app.get("/metrics", None).await;
    assert_eq!(m.status, StatusCode::OK);
    let text = m.body.as_str().unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("http_requests_total")
            && l.contains(r#"route="/api/auth/me""#)
            && l.contains(r#"status="401""#)),
        "{text}"
    );
    assert!(text.contains("http_request_duration_seconds_bucket"));
    assert!(
        text.contains(r#"db_pool_connections{database="users",state="idle"}"#),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_budget_headers_and_429() {
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.rate_limit_max_requests = 4;
        c.rate_limit_window_ms = 60_000;
    })
    .await;
    for remaining in (0..4).rev() {
        let r = app.get("/api/nothing", None).await;
        assert_eq!(r.headers["x-ratelimit-limit"], "4");
        assert_eq!(
            r.headers["x-ratelimit-remaining"],
            remaining.to_string().as_str()
        );
        assert_eq!(r.headers["ratelimit-policy"], "4;w=60");
    }
    let r = app.get("/api/auth/me", None).await;
    assert_eq!(
        assert_error(&r, StatusCode::TOO_MANY_REQUESTS),
        "Too many requests. Please try again later."
    );
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    // One request comes back every window / budget = 15 s.
    assert!((1..=15).contains(&retry), "{retry}");
    // Probes are never limited.
    assert_eq!(app.get("/health", None).await.status, StatusCode::OK);
    assert_eq!(app.get("/ready", None).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_counts_only_from_trusted_proxies() {
    let limited = |trusted: bool| {
        spawn_app_with(Backend::Sqlite, move |c| {
            c.rate_limit_max_requests = 2;
            if trusted {
                c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
            }
        })
    };
    let hit = |app: &TestApp, xff: &str| {
        app.client
            .get(format!("{}/api/nothing", app.base))
            .header("x-forwarded-for", xff.to_owned())
            .send()
    };
    // Behind a trusted proxy each client has its own budget.
    let app = limited(true).await;
    for _ in 0..2 {
        assert_eq!(
            hit(&app, "198.51.100.1").await.unwrap().status(),
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(
        hit(&app, "198.51.100.1").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        hit(&app, "198.51.100.2").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    // From an untrusted peer the header is ignored: spoofing buys nothing.
    let app = limited(false).await;
    assert_eq!(
        hit(&app, "198.51.100.1").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        hit(&app, "198.51.100.2").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        hit(&app, "198.51.100.3").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_describes_every_route_and_docs_work_offline() {
    let app = spawn_app(Backend::Sqlite).await;
    let spec = app.get("/api/openapi.json", None).await;
    assert_eq!(spec.status, StatusCode::OK);
    let paths = spec.body["paths"].as_object().unwrap();
    let expect = [
        ("/api/auth/register", "post"),
        ("/api/auth/login", "post"),
        ("/api/auth/logout", "post"),
        ("/api/auth/me", "get"),
        ("/api/auth/refresh", "post"),
        ("/api/users/profile", "get"),
        ("/api/users/profile", "put"),
        ("/api/users/addresses", "get"),
        ("/api/users/addresses", "post"),
        ("/api/users/addresses/{id}", "get"),
        ("/api/users/addresses/{id}", "put"),
        ("/api/users/addresses/{id}", "patch"),
        ("/api/users/addresses/{id}", "delete"),
        ("/api/users/addresses/{id}/default", "put"),
        ("/api/users", "get"),
        ("/api/users", "post"),
        ("/api/users/all", "delete"),
        ("/api/users/{id}", "get"),
        ("/api/users/{id}", "put"),
        ("/api/users/{id}", "patch"),
        ("/api/users/{id}", "delete"),
        ("/api/users/{id}/details", "get"),
        ("/api/users/{id}/role", "patch"),
        ("/api/products", "get"),
        ("/api/products", "post"),
        ("/api/products/{id}", "get"),
        ("/api/products/{id}", "put"),
        ("/api/products/{id}", "delete"),
        ("/api/products/{id}/inventory", "patch"),
        ("/api/products/{id}/inventory/history", "get"),
        ("/api/products/{id}/reviews", "post"),
        ("/api/products/{id}/reviews", "get"),
        ("/api/products/{id}/images", "post"),
        ("/api/products/{id}/images/{imageId}", "delete"),
        ("/api/categories", "get"),
        ("/api/categories", "post"),
        ("/api/categories/{name}", "put"),
        ("/api/categories/{name}", "delete"),
        ("/api/orders", "get"),
        ("/api/orders", "post"),
        ("/api/orders/sync-inventory", "post"),
        ("/api/orders/undo-sync-inventory", "post"),
        ("/api/orders/{id}/detail-request", "post"),
        ("/api/orders/{id}/detail-request", "get"),
        ("/api/orders/detail-requests/list", "get"),
        ("/api/orders/detail-requests/{requestId}/{action}", "put"),
        ("/api/orders/{id}/status", "put"),
        ("/api/orders/{id}/cancel-request", "post"),
        ("/api/orders/{id}/approve-cancel", "put"),
        ("/api/orders/{id}/reject-cancel", "put"),
        ("/api/orders/{id}/review", "post"),
        ("/api/orders/{id}/tracking", "get"),
        ("/api/orders/{id}", "get"),
        ("/api/orders/{id}", "delete"),
        ("/api/orders/active", "get"),
        ("/api/orders/deleted", "get"),
        ("/api/orders/{id}/soft", "delete"),
        ("/api/orders/{id}/restore-request", "post"),
        ("/api/orders/restoration-requests", "get"),
        ("/api/orders/{id}/restoration/approve", "post"),
        ("/api/orders/{id}/restoration/reject", "post"),
        ("/api/orders/cleanup/expired", "post"),
        ("/api/orders/bulk-delete", "post"),
        ("/api/orders/outbox", "get"),
        ("/api/analytics/dashboard", "get"),
        ("/api/analytics/revenue", "get"),
        ("/api/analytics/top-products", "get"),
        ("/api/analytics/categories", "get"),
        ("/api/analytics/status-breakdown", "get"),
        ("/api/analytics/payment-methods", "get"),
        ("/api/analytics/export", "get"),
        ("/api/analytics/stream", "get"),
        ("/api/analytics/track/order", "post"),
        ("/api/analytics/reset/daily", "post"),
    ];
    for (path, method) in expect {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    assert!(spec.body["components"]["securitySchemes"]["bearer"].is_object());
    let docs = app
        .client
        .get(format!("{}/api/docs/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    let html = docs.text().await.unwrap();
    assert!(html.contains("swagger"), "the page is Swagger UI");
    assert!(
        !html.contains("https://"),
        "no asset comes from the internet"
    );
    // Its script is served by us, too.
    let js = app
        .client
        .get(format!("{}/api/docs/swagger-ui-bundle.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), StatusCode::OK);
}
