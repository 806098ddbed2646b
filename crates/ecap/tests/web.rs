//! The browser app served by the binary and the browser's session: the app
//! never shadows the API, assets are cached and precompressed, and the
//! HttpOnly cookie with its CSRF token works beside bearer tokens.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ecap::web::{Asset, router_with};
use ecap_core::{db::Backend, http::HttpOptions};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

fn cookie_of(r: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    r.get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

fn value_of(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_owned())
        .unwrap()
}

/// A request with only the session cookie (and a CSRF header when given).
async fn with_cookie(
    app: &TestApp,
    method: Method,
    path: &str,
    session: &str,
    csrf: Option<&str>,
    body: Option<Value>,
) -> Resp {
    let mut req = app
        .client
        .request(method, format!("{}{path}", app.base))
        .header(header::COOKIE, format!("ecap_session={session}"));
    if let Some(c) = csrf {
        req = req.header("x-csrf-token", c);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    Resp::of(req.send().await.unwrap()).await
}

async fn cookie_login(app: &TestApp, email: &str, tls: bool) -> (Resp, String, String) {
    let mut req = app
        .client
        .post(format!("{}/api/auth/login", app.base))
        .header("x-auth-session", "cookie")
        .json(&json!({ "email": email, "password": PASSWORD }));
    if tls {
        req = req.header("x-forwarded-proto", "https");
    }
    let r = Resp::of(req.send().await.unwrap()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let session = value_of(&cookie_of(&r.headers, "ecap_session").expect("session cookie"));
    let csrf = r.body["data"]["csrfToken"].as_str().unwrap().to_owned();
    (r, session, csrf)
}

#[tokio::test]
async fn the_app_never_shadows_the_api() {
    let app = spawn_app(Backend::Sqlite).await;
    // The JSON index moved to /api.
    let r = app.get("/api", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["name"], "ecap");
    assert_eq!(r.body["docs"], "/api/docs");
    // Unknown API paths stay the JSON 404, whatever the method.
    for (m, p) in [
        (Method::GET, "/api/nope"),
        (Method::POST, "/api/nope/deeper"),
        (Method::GET, "/internal/anything"),
        (Method::DELETE, "/metrics/x"),
    ] {
        let r = app.call(m, p, None, None).await;
        assert_error(&r, StatusCode::NOT_FOUND);
        assert_eq!(r.body["code"], "route_not_found", "{p}: {}", r.body);
    }
    let r = app.get("/health", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.is_object(), "{}", r.body);
    let r = app.get("/media/products/missing.png", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.get("/api/products", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["success"], true);

    // Client routes get the app (or, in a binary built without it, the page
    // that says how to build it), never cached, under a strict CSP.
    for p in ["/", "/products", "/orders/12", "/my-orders?status=pending"] {
        let r = app.get(p, None).await;
        assert_eq!(r.status, StatusCode::OK, "{p}");
        assert!(
            r.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{p}"
        );
        assert_eq!(r.headers[header::CACHE_CONTROL], "no-cache", "{p}");
        let csp = r.headers["content-security-policy"].to_str().unwrap();
        assert!(
            !csp.contains("'unsafe-inline'") || !ecap::web::is_built(),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        let text = r.body.as_str().unwrap();
        if ecap::web::is_built() {
            assert!(text.contains("id=\"root\""), "{text}");
            assert!(csp.contains("script-src 'self'"), "{csp}");
        } else {
            assert!(text.contains("npm run build"), "{text}");
        }
    }
    // A missing asset is a plain 404, not the app.
    let r = app.get("/assets/index-deadbeef.js", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.get("/favicon-missing.png", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Writes to app paths are not pages.
    let r = app.post("/products", None, json!({})).await;
    assert_error(&r, StatusCode::NOT_FOUND);
}

static FAKE: &[Asset] = &[
    Asset {
        path: "index.html",
        body: b"<!doctype html><div id=\"root\"></div>",
        gzip: None,
        br: None,
    },
    Asset {
        path: "assets/app-1a2b3c.js",
        body: b"console.log('plain')",
        gzip: Some(b"GZIP-BYTES"),
        br: Some(b"BROTLI-BYTES"),
    },
    Asset {
        path: "robots.txt",
        body: b"User-agent: *",
        gzip: None,
        br: None,
    },
];

/// The app's router over a fixed set of files, inside the shared HTTP layers
/// (compression included), on a random port.
async fn fake_site() -> String {
    let service = ecap_core::http::foundation(
        router_with(FAKE),
        &HttpOptions {
            cors_origin: "*".into(),
            body_limit_bytes: 1 << 20,
            upload_limit_bytes: 1 << 20,
        },
        None::<tower::layer::util::Identity>,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(ecap_core::http::serve(
        listener,
        service,
        std::future::pending(),
    ));
    format!("http://{addr}")
}

#[tokio::test]
async fn assets_are_immutable_and_precompressed() {
    let base = fake_site().await;
    let client = reqwest::Client::builder().no_gzip().build().unwrap();
    let get = |path: &str, enc: Option<&str>| {
        let mut req = client.get(format!("{base}{path}"));
        if let Some(e) = enc {
            req = req.header(header::ACCEPT_ENCODING, e);
        }
        req.send()
    };
    let r = get("/assets/app-1a2b3c.js", Some("gzip, deflate, br"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(r.headers()[header::CONTENT_ENCODING], "br");
    assert_eq!(r.headers()[header::VARY], "Accept-Encoding");
    assert!(
        r.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"BROTLI-BYTES");
    let r = get("/assets/app-1a2b3c.js", Some("gzip")).await.unwrap();
    assert_eq!(r.headers()[header::CONTENT_ENCODING], "gzip");
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"GZIP-BYTES");
    let r = get("/assets/app-1a2b3c.js", Some("identity"))
        .await
        .unwrap();
    assert!(r.headers().get(header::CONTENT_ENCODING).is_none());
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"console.log('plain')");
    // Unhashed files revalidate; client routes get index.html with the CSP.
    let r = get("/robots.txt", None).await.unwrap();
    assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");
    let r = get("/dashboard/deep/link", None).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");
    assert_eq!(r.headers()["content-security-policy"], ecap::web::APP_CSP);
    assert!(r.text().await.unwrap().contains("id=\"root\""));
    let r = get("/index.html", None).await.unwrap();
    assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");
    let r = get("/api/whatever", None).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "route_not_found");
}

#[tokio::test]
async fn the_browser_session_is_an_httponly_cookie_with_csrf() {
    let app = spawn_app(Backend::Sqlite).await;
    // Registering with X-Auth-Session: cookie: the token is in an HttpOnly
    // cookie, not in the body.
    let r = Resp::of(
        app.client
            .post(format!("{}/api/auth/register", app.base))
            .header("x-auth-session", "cookie")
            .json(&json!({ "name": "Jane Doe", "email": "jane@example.com", "password": PASSWORD }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(r.body["data"].get("token").is_none(), "{}", r.body);
    assert_eq!(r.body["data"]["user"]["email"], "jane@example.com");
    let csrf = r.body["data"]["csrfToken"].as_str().unwrap().to_owned();
    let set = cookie_of(&r.headers, "ecap_session").unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP: {set}");
    let readable = cookie_of(&r.headers, "ecap_csrf").unwrap();
    assert!(!readable.contains("HttpOnly"), "{readable}");
    assert_eq!(value_of(&readable), csrf);
    let session = value_of(&set);

    // Reads need only the cookie.
    let r = with_cookie(&app, Method::GET, "/api/auth/me", &session, None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["user"]["email"], "jane@example.com");
    // Writes need the session's CSRF token: missing, wrong, or another
    // session's token are refused and change nothing.
    let change = json!({ "name": "Changed Name", "email": "jane@example.com" });
    let r = with_cookie(
        &app,
        Method::PUT,
        "/api/users/profile",
        &session,
        None,
        Some(change.clone()),
    )
    .await;
    assert!(assert_error(&r, StatusCode::FORBIDDEN).contains("CSRF"));
    let r = with_cookie(
        &app,
        Method::PUT,
        "/api/users/profile",
        &session,
        Some("forged"),
        Some(change.clone()),
    )
    .await;
    assert_error(&r, StatusCode::FORBIDDEN);
    let (_, _, other_csrf) = cookie_login(&app, "jane@example.com", false).await;
    assert_ne!(other_csrf, csrf);
    let r = with_cookie(
        &app,
        Method::PUT,
        "/api/users/profile",
        &session,
        Some(&other_csrf),
        Some(change.clone()),
    )
    .await;
    assert_error(&r, StatusCode::FORBIDDEN);
    let r = with_cookie(&app, Method::GET, "/api/auth/me", &session, None, None).await;
    assert_eq!(r.body["data"]["user"]["name"], "Jane Doe");
    let r = with_cookie(
        &app,
        Method::PUT,
        "/api/users/profile",
        &session,
        Some(&csrf),
        Some(change),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = with_cookie(&app, Method::GET, "/api/auth/me", &session, None, None).await;
    assert_eq!(r.body["data"]["user"]["name"], "Changed Name");

    // Bearer clients are unchanged: the token in the body, no CSRF needed.
    let r = app.login("jane@example.com", PASSWORD).await;
    let bearer = r.body["data"]["token"].as_str().unwrap().to_owned();
    assert!(r.headers.get(header::SET_COOKIE).is_none());
    let r = app
        .put(
            "/api/users/profile",
            Some(&bearer),
            json!({ "name": "Bearer Name", "email": "jane@example.com" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // A bad cookie next to nothing else is a 401, as a bad token is.
    let r = with_cookie(&app, Method::GET, "/api/auth/me", "not-a-jwt", None, None).await;
    assert_error(&r, StatusCode::UNAUTHORIZED);

    // Refresh through the cookie (CSRF needed) rotates it; the old one is dead.
    let r = with_cookie(
        &app,
        Method::POST,
        "/api/auth/refresh",
        &session,
        None,
        Some(json!({})),
    )
    .await;
    assert_error(&r, StatusCode::FORBIDDEN);
    let mut req = app
        .client
        .post(format!("{}/api/auth/refresh", app.base))
        .header(header::COOKIE, format!("ecap_session={session}"))
        .header("x-csrf-token", &csrf)
        .header("x-auth-session", "cookie")
        .json(&json!({}));
    req = req.header("x-forwarded-proto", "https");
    let r = Resp::of(req.send().await.unwrap()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["data"].get("token").is_none(), "{}", r.body);
    let set = cookie_of(&r.headers, "ecap_session").unwrap();
    assert!(set.contains("; Secure"), "behind TLS: {set}");
    let fresh = value_of(&set);
    let fresh_csrf = r.body["data"]["csrfToken"].as_str().unwrap().to_owned();
    assert_ne!(fresh, session);
    let r = with_cookie(&app, Method::GET, "/api/auth/me", &session, None, None).await;
    assert_error(&r, StatusCode::UNAUTHORIZED);
    let r = with_cookie(&app, Method::GET, "/api/auth/me", &fresh, None, None).await;
    assert_eq!(r.status, StatusCode::OK);

    // Logout (a write: CSRF) clears both cookies and revokes the session.
    let r = with_cookie(&app, Method::POST, "/api/auth/logout", &fresh, None, None).await;
    assert_error(&r, StatusCode::FORBIDDEN);
    let r = with_cookie(
        &app,
        Method::POST,
        "/api/auth/logout",
        &fresh,
        Some(&fresh_csrf),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for name in ["ecap_session", "ecap_csrf"] {
        let c = cookie_of(&r.headers, name).unwrap();
        assert!(c.contains("Max-Age=0"), "{c}");
    }
    let r = with_cookie(&app, Method::GET, "/api/auth/me", &fresh, None, None).await;
    assert_error(&r, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_live_stream_and_admin_routes_take_the_cookie() {
    let app = spawn_app(Backend::Sqlite).await;
    app.admin().await;
    app.customer("c@example.com").await;
    let (_, admin, _) = cookie_login(&app, "admin@example.com", false).await;
    let (_, customer, _) = cookie_login(&app, "c@example.com", false).await;
    // The stream authenticates by the cookie: no token in the URL.
    let stream = |session: String| {
        app.client
            .get(format!("{}/api/analytics/stream?period=today", app.base))
            .header(header::COOKIE, format!("ecap_session={session}"))
            .send()
    };
    let res = stream(admin.clone()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    drop(res);
    let res = stream(customer.clone()).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let r = with_cookie(
        &app,
        Method::GET,
        "/api/analytics/dashboard",
        &admin,
        None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = with_cookie(&app, Method::GET, "/api/users", &customer, None, None).await;
    assert_error(&r, StatusCode::FORBIDDEN);
}

/// The dashboard's top products carry what it shows: name, category, image
/// (JSON routes and the CSV export); order lists carry each line's image.
#[tokio::test]
async fn top_products_carry_names_categories_and_images() {
    let app = spawn_app(Backend::Sqlite).await;
    let (admin, _) = app.admin().await;
    let (customer, _) = app.customer("buyer@example.com").await;
    let r = app
        .post(
            "/api/products",
            Some(&admin),
            json!({"name": "Teal Kettle, 1.5 l", "description": "boils", "price": 25.0,
                "inventory": 9, "category": "books",
                "images": ["https://cdn.example.com/kettle.jpg"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let pid = r.body["data"]["product"]["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            "/api/orders",
            Some(&customer),
            json!({"items": [{"productId": pid, "quantity": 2}], "paymentMethod": "cod",
                "shippingAddress": {"street": "1 Main St", "city": "Pune", "state": "MH",
                    "zipCode": "411001", "country": "India"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // The customer's order list shows each line's current image.
    let r = app.get("/api/orders", Some(&customer)).await;
    assert_eq!(
        r.body["data"]["orders"][0]["items"][0]["image"], "https://cdn.example.com/kettle.jpg",
        "{}",
        r.body
    );
    // Analytics follows the outbox within a moment.
    let mut top = Value::Null;
    for _ in 0..50 {
        let r = app
            .get("/api/analytics/top-products?period=today", Some(&admin))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        top = r.body["data"]["products"][0].clone();
        if !top.is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(top["key"], pid.as_str(), "{top}");
    assert_eq!(top["name"], "Teal Kettle, 1.5 l");
    assert_eq!(top["category"], "books");
    assert_eq!(top["image"], "https://cdn.example.com/kettle.jpg");
    let r = app
        .get("/api/analytics/dashboard?period=today", Some(&admin))
        .await;
    let row = &r.body["data"]["topProducts"][0];
    assert_eq!(row["productId"], pid.as_str());
    assert_eq!(row["name"], "Teal Kettle, 1.5 l");
    assert_eq!(row["image"], "https://cdn.example.com/kettle.jpg");
    let csv = app
        .client
        .get(format!(
            "{}/api/analytics/export?report=top-products&period=today",
            app.base
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        csv.contains(&format!(
            "1,{pid},1,2,2,50.00,50.00,\"Teal Kettle, 1.5 l\",books,https://cdn.example.com/kettle.jpg\n"
        )),
        "{csv}"
    );
    // Other breakdowns are not product rows and get no names.
    let r = app
        .get("/api/analytics/categories?period=today", Some(&admin))
        .await;
    assert!(
        r.body["data"]["categories"][0].get("name").is_none(),
        "{}",
        r.body
    );
}

/// `ecap openapi` prints what `/api/openapi.json` serves, in a shape client
/// generators accept: unique operation ids, path parameters only where the
/// path has them, and the browser's cookie scheme beside the bearer one.
#[tokio::test]
async fn the_openapi_document_generates_clients() {
    let text = ecap::openapi_document().await.unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let app = spawn_app(Backend::Sqlite).await;
    let served = app.get("/api/openapi.json", None).await.body;
    assert_eq!(doc["paths"], served["paths"]);
    let mut ids = std::collections::HashSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(id) = op.get("operationId").and_then(Value::as_str) else {
                continue;
            };
            assert!(ids.insert(id.to_owned()), "{method} {path}: duplicate {id}");
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "path" {
                    let name = p["name"].as_str().unwrap();
                    assert!(
                        path.contains(&format!("{{{name}}}")),
                        "{method} {path}: {name}"
                    );
                }
            }
        }
    }
    let list = &doc["paths"]["/api/orders"]["get"]["parameters"];
    assert!(
        list.as_array().unwrap().iter().all(|p| p["in"] == "query"),
        "{list}"
    );
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["cookie"]["in"], "cookie");
    assert_eq!(schemes["cookie"]["name"], "ecap_session");
}
