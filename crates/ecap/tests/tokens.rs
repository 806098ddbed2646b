//! Every service of the all-in-one process verifies every token (S1, S2, S3,
//! S6): a forged signature, `alg: none`, an expired token, one issued in the
//! future, one logged out and one whose admin was demoted are refused by a
//! route of the orders service, the catalog's writes, analytics and the users
//! service alike — each as an admin's claims, so a pass would be an
//! escalation — and nothing changes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{JWT_SECRET, TestApp, assert_error, spawn_app};
use ecap_core::db::Backend;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn sign(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// Unpadded base64url, for a hand-made `alg: none` token.
fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A route of each service, with a body where it writes.
fn routes(product: &str, user: i64) -> Vec<(&'static str, Method, String, Option<Value>)> {
    vec![
        ("orders: list", Method::GET, "/api/orders".into(), None),
        (
            "orders: sync inventory",
            Method::POST,
            "/api/orders/sync-inventory".into(),
            Some(json!({})),
        ),
        (
            "catalog: create",
            Method::POST,
            "/api/products".into(),
            Some(
                json!({ "name": "Forged Product", "description": "must not exist",
                "price": 1, "inventory": 1, "category": "home" }),
            ),
        ),
        (
            "catalog: inventory",
            Method::PATCH,
            format!("/api/products/{product}/inventory"),
            Some(json!({ "change": 500 })),
        ),
        (
            "analytics: dashboard",
            Method::GET,
            "/api/analytics/dashboard".into(),
            None,
        ),
        (
            "analytics: track",
            Method::POST,
            "/api/analytics/track/order".into(),
            Some(json!({ "orderId": "forged-1", "amount": 1000000,
                "items": [{ "productId": "p", "quantity": 1 }] })),
        ),
        ("users: list", Method::GET, "/api/users".into(), None),
        (
            "users: role",
            Method::PATCH,
            format!("/api/users/{user}/role"),
            Some(json!({ "role": "admin" })),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_refuses_bad_tokens() {
    let app = spawn_app(Backend::Sqlite).await;
    let (admin, admin_id) = app.admin().await;
    let r = app
        .post(
            "/api/products",
            Some(&admin),
            json!({ "name": "Real Product", "description": "exists", "price": 5,
                "inventory": 7, "category": "home" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let product = r.body["data"]["product"]["id"].as_str().unwrap().to_owned();
    let (_, customer_id) = app.customer("victim@example.com").await;

    // The real admin's identity in every token: only the token is wrong.
    let claims = |iat: u64, exp: u64| {
        json!({ "userId": admin_id, "email": "admin@example.com", "role": "admin",
            "iat": iat, "exp": exp, "jti": format!("forged-{iat}-{exp}"), "ver": 0 })
    };
    let live = claims(now(), now() + 3600);
    let alg_none = format!(
        "{}.{}.",
        b64url(br#"{"alg":"none","typ":"JWT"}"#),
        b64url(live.to_string().as_bytes())
    );
    let logged_out = app.login("admin@example.com", common::PASSWORD).await.body["data"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post("/api/auth/logout", Some(&logged_out), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // A second admin, demoted: tokens issued before the change are refused.
    let r = app
        .post(
            "/api/users",
            Some(&admin),
            json!({ "name": "Soon Demoted", "email": "demoted@example.com",
                "password": common::PASSWORD, "role": "admin" }),
        )
        .await;
    let demoted_id = r.body["data"]["user"]["id"].as_i64().unwrap();
    let demoted = app
        .login("demoted@example.com", common::PASSWORD)
        .await
        .body["data"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .patch(
            &format!("/api/users/{demoted_id}/role"),
            Some(&admin),
            json!({ "role": "customer" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let bad_tokens = [
        (
            "forged (another key)",
            sign(&live, "another-secret-of-sixteen-plus"),
            "invalid_token",
        ),
        ("alg: none", alg_none, "invalid_token"),
        (
            "expired",
            sign(&claims(now() - 7200, now() - 3600), JWT_SECRET),
            "token_expired",
        ),
        (
            "issued in the future",
            sign(&claims(now() + 3600, now() + 7200), JWT_SECRET),
            "invalid_token",
        ),
        ("logged out", logged_out, "token_revoked"),
        ("demoted admin", demoted, "token_revoked"),
    ];
    for (route, method, path, body) in routes(&product, customer_id) {
        for (kind, token, code) in &bad_tokens {
            let r = app
                .call(method.clone(), &path, Some(token), body.clone())
                .await;
            assert_error(&r, StatusCode::UNAUTHORIZED);
            assert_eq!(
                r.body["code"], *code,
                "{route} with a {kind} token: {}",
                r.body
            );
        }
    }

    // Nothing changed.
    let state = world(&app, &admin, &product, customer_id).await;
    assert_eq!(
        state,
        json!({ "products": 1, "stock": 7, "tracked": 0,
        "role": "customer", "admins": 1 })
    );
    // And the same routes take the real admin's live token, so the refusals
    // above were about the tokens.
    for (route, method, path, body) in routes(&product, customer_id) {
        let r = app.call(method, &path, Some(&admin), body).await;
        assert!(r.status.is_success(), "{route}: {} {}", r.status, r.body);
    }
}

/// What the refused requests would have changed.
async fn world(app: &TestApp, admin: &str, product: &str, customer: i64) -> Value {
    let products = app.get("/api/products?status=all", Some(admin)).await;
    let stock = app
        .get(&format!("/api/products/{product}"), Some(admin))
        .await;
    let dashboard = app.get("/api/analytics/dashboard", Some(admin)).await;
    let user = app
        .get(&format!("/api/users/{customer}"), Some(admin))
        .await;
    let admins = app.get("/api/users?role=admin", Some(admin)).await;
    json!({
        "products": products.body["data"]["pagination"]["total"],
        "stock": stock.body["data"]["product"]["inventory"],
        "tracked": dashboard.body["data"]["totalOrders"],
        "role": user.body["data"]["user"]["role"],
        "admins": admins.body["data"]["pagination"]["total"],
    })
}
