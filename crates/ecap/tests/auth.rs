//! Registration, login, tokens and sessions over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ecap_core::{auth::Role, db::Backend};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::json;

async fn register_login_me_logout(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app
        .post(
            "/api/auth/register",
            None,
            json!({ "name": "  Jane Doe ", "email": "Jane.Doe@Example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["message"], "User registered successfully");
    let user = &r.body["data"]["user"];
    assert_eq!(user["email"], "jane.doe@example.com");
    assert_eq!(user["name"], "Jane Doe");
    assert_eq!(user["role"], "customer");
    assert!(
        !r.body.to_string().contains("argon2"),
        "no hash in responses"
    );
    let token = r.body["data"]["token"].as_str().unwrap().to_owned();

    // A freshly registered user's token works at once (defect C14).
    let me = app.get("/api/auth/me", Some(&token)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["data"]["user"]["email"], "jane.doe@example.com");
    assert!(me.body["data"]["user"]["created_at"].is_string());

    // Another letter case is the same account.
    let dup = app
        .post(
            "/api/auth/register",
            None,
            json!({ "name": "Jane Again", "email": "JANE.DOE@example.COM", "password": PASSWORD }),
        )
        .await;
    assert_eq!(
        assert_error(&dup, StatusCode::CONFLICT),
        "User with this email already exists"
    );

    let login = app.login("JANE.DOE@example.com", PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    assert_eq!(login.body["message"], "Login successful");
    let second = login.body["data"]["token"].as_str().unwrap().to_owned();
    assert_ne!(second, token);

    let out = app.post("/api/auth/logout", Some(&token), json!({})).await;
    assert_eq!(out.status, StatusCode::OK);
    assert_eq!(out.body["message"], "Logout successful");
    let after = app.get("/api/auth/me", Some(&token)).await;
    assert_eq!(
        assert_error(&after, StatusCode::UNAUTHORIZED),
        "Session expired or invalid"
    );
    // Only that session ended.
    assert_eq!(
        app.get("/api/auth/me", Some(&second)).await.status,
        StatusCode::OK
    );
    // A logged-out token cannot be refreshed (defect S5).
    let r = app
        .post("/api/auth/refresh", None, json!({ "token": token }))
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::UNAUTHORIZED),
        "Invalid or expired token"
    );
}

async fn refresh_replaces_the_token_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _) = app.customer("ref@example.com").await;
    let r = app
        .post("/api/auth/refresh", None, json!({ "token": token }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let fresh = r.body["data"]["token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get("/api/auth/me", Some(&fresh)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/auth/me", Some(&token)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let again = app
        .post("/api/auth/refresh", None, json!({ "token": token }))
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    let missing = app.post("/api/auth/refresh", None, json!({})).await;
    assert_eq!(
        assert_error(&missing, StatusCode::BAD_REQUEST),
        "Token is required"
    );
}

ecap_core::on_every_backend!(register_login_me_logout, refresh_replaces_the_token_once);

fn sign(claims: serde_json::Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn b64(s: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = s.as_bytes();
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=c.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_expired_and_malformed_tokens_are_refused() {
    let app = spawn_app(Backend::Sqlite).await;
    let (_, id) = app.customer("tok@example.com").await;
    let claims = |iat: u64, exp: u64, role: &str| json!({ "userId": id, "email": "tok@example.com", "role": role, "iat": iat, "exp": exp, "jti": "j1" });
    let cases = [
        (None, "Authentication token required"),
        (Some("not-a-jwt".to_owned()), "Invalid token"),
        (
            Some(sign(
                claims(now() - 7200, now() - 3600, "customer"),
                JWT_SECRET,
            )),
            "Token expired",
        ),
        (
            Some(sign(
                claims(now(), now() + 3600, "admin"),
                "another-secret-entirely-123",
            )),
            "Invalid token",
        ),
        (
            Some(format!(
                "{}.{}.",
                b64(r#"{"alg":"none","typ":"JWT"}"#),
                b64(&claims(now(), now() + 3600, "admin").to_string())
            )),
            "Invalid token",
        ),
        // Issued in the future.
        (
            Some(sign(
                claims(now() + 3600, now() + 7200, "customer"),
                JWT_SECRET,
            )),
            "Invalid token",
        ),
        // No expiry at all.
        (
            Some(sign(
                json!({ "userId": id, "email": "x@example.com", "role": "admin", "iat": now(), "jti": "j" }),
                JWT_SECRET,
            )),
            "Invalid token",
        ),
    ];
    for (token, message) in cases {
        let r = app.get("/api/users", token.as_deref()).await;
        assert_eq!(
            assert_error(&r, StatusCode::UNAUTHORIZED),
            message,
            "token {token:?}"
        );
    }
    // "Bearer" with nothing after it, or another scheme.
    let r = app
        .client
        .get(format!("{}/api/auth/me", app.base))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A well-signed token is accepted: the rejections above were about the token.
    let good = sign(claims(now(), now() + 3600, "customer"), JWT_SECRET);
    assert_eq!(
        app.get("/api/auth/me", Some(&good)).await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_registrations_are_clear_400s_and_change_nothing() {
    // A small body limit: an oversized body that still fits the socket buffers
    // is answered 413 without the client's write racing the server's close.
    let app = spawn_app_with(Backend::Sqlite, |c| c.body_limit_bytes = 16 * 1024).await;
    let (admin, _) = app.admin().await;
    let cases = [
        (
            json!({ "email": "a@example.com", "password": "Secret1!", "name": 5 }),
            "name",
        ),
        (
            json!({ "email": ["a@example.com"], "password": "Secret1!", "name": "Al" }),
            "email",
        ),
        (
            json!({ "email": "not-an-email", "password": "Secret1!", "name": "Al" }),
            "email",
        ),
        (
            json!({ "email": "a@example.com", "password": "short", "name": "Al" }),
            "password",
        ),
        (
            json!({ "email": "a@example.com", "password": "alllowercase1!", "name": "Al" }),
            "password",
        ),
        (
            json!({ "email": "a@example.com", "password": "Secret1!", "name": "A" }),
            "name",
        ),
        (
            json!({ "email": "a@example.com", "password": "Secret1!", "name": "Al", "role": "king" }),
            "role",
        ),
        (json!({}), "email"),
    ];
    for (body, path) in cases {
        let r = app.post("/api/auth/register", None, body.clone()).await;
        assert_error(&r, StatusCode::BAD_REQUEST);
        let paths: Vec<&str> = r.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap())
            .collect();
        assert!(paths.contains(&path), "{body} → {}", r.body);
    }
    let all_missing = app.post("/api/auth/register", None, json!({})).await;
    let msgs: Vec<&str> = all_missing.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["msg"].as_str().unwrap())
        .collect();
    assert_eq!(
        msgs,
        [
            "Valid email is required",
            "Password must be at least 8 characters",
            "Name must be at least 2 characters"
        ]
    );
    assert_eq!(all_missing.body["message"], "Valid email is required");

    // Malformed JSON, another content type, an oversized body.
    let r = app
        .client
        .post(format!("{}/api/auth/register", app.base))
        .header("content-type", "application/json")
        .body(r#"{"email": "a@example.com", "#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "malformed_json");
    let r = app
        .client
        .post(format!("{}/api/auth/register", app.base))
        .header("content-type", "text/plain")
        .body("email=a@example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge =
        json!({ "email": "a@example.com", "password": "Secret1!", "name": "x".repeat(32 * 1024) });
    let r = app.post("/api/auth/register", None, huge).await;
    assert!(!assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE).is_empty());
    // The unread body ends the connection, and the answer says so.
    assert_eq!(r.headers["connection"], "close");

    // Nothing was created.
    let list = app.get("/api/users", Some(&admin)).await;
    assert_eq!(list.body["data"]["pagination"]["total"], 1, "{}", list.body);
    assert_eq!(
        app.login("a@example.com", "Secret1!").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_errors() {
    let app = spawn_app(Backend::Sqlite).await;
    app.customer("log@example.com").await;
    let r = app.login("log@example.com", "Wrong1!pass").await;
    assert_eq!(
        assert_error(&r, StatusCode::UNAUTHORIZED),
        "Invalid credentials"
    );
    let r = app.login("nobody@example.com", PASSWORD).await;
    assert_eq!(
        assert_error(&r, StatusCode::UNAUTHORIZED),
        "Invalid credentials"
    );
    let r = app
        .post(
            "/api/auth/login",
            None,
            json!({ "email": "log@example.com" }),
        )
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST),
        "Password is required"
    );
    let r = app
        .post(
            "/api/auth/login",
            None,
            json!({ "email": "nope", "password": "x" }),
        )
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST),
        "Valid email is required"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_lock_the_account_not_others() {
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.ecap_login_max_failures = 3;
        c.ecap_login_lockout_secs = 600;
    })
    .await;
    app.customer("victim@example.com").await;
    app.customer("bystander@example.com").await;
    for _ in 0..3 {
        assert_eq!(
            app.login("victim@example.com", "Wrong1!pass").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = app.login("victim@example.com", PASSWORD).await;
    let msg = assert_error(&r, StatusCode::TOO_MANY_REQUESTS);
    assert!(msg.starts_with("Too many failed login attempts"), "{msg}");
    assert_eq!(r.body["code"], "account_locked");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 500 && retry <= 600, "{retry}");
    assert_eq!(
        app.login("bystander@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_change_needs_the_current_one_and_ends_other_sessions() {
    let app = spawn_app(Backend::Sqlite).await;
    let (token, _) = app.customer("pw@example.com").await;
    let other = app.login("pw@example.com", PASSWORD).await.body["data"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let change = |current: Option<&str>, new: &str| {
        let mut body = json!({ "name": "Pat Word", "newPassword": new });
        if let Some(c) = current {
            body["currentPassword"] = json!(c);
        }
        body
    };
    let r = app
        .put(
            "/api/users/profile",
            Some(&token),
            change(None, "Better2@pass"),
        )
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST),
        "Current password is required to set a new password"
    );
    let r = app
        .put(
            "/api/users/profile",
            Some(&token),
            change(Some("Wrong1!pass"), "Better2@pass"),
        )
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::UNAUTHORIZED),
        "Current password is incorrect"
    );
    // The registration rule applies to new passwords too (defect C16).
    let r = app
        .put(
            "/api/users/profile",
            Some(&token),
            change(Some(PASSWORD), "weakweakweak"),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.get("/api/auth/me", Some(&other)).await.status,
        StatusCode::OK,
        "failures changed nothing"
    );

    let r = app
        .put(
            "/api/users/profile",
            Some(&token),
            change(Some(PASSWORD), "Better2@pass"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let fresh = r.body["data"]["token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get("/api/auth/me", Some(&fresh)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/auth/me", Some(&token)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/auth/me", Some(&other)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("pw@example.com", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("pw@example.com", "Better2@pass").await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_update_keeps_omitted_phone_and_checks_email() {
    let app = spawn_app(Backend::Sqlite).await;
    let (token, _) = app.customer("prof@example.com").await;
    app.customer("taken@example.com").await;
    let r = app
        .put(
            "/api/users/profile",
            Some(&token),
            json!({ "name": "Pro File", "phone": "+91 98765 43210" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["message"], "Profile updated successfully");
    // Omitting phone keeps it (defect C15).
    let r = app
        .put(
            "/api/users/profile",
            Some(&token),
            json!({ "name": "Pro File" }),
        )
        .await;
    assert_eq!(r.body["data"]["user"]["phone"], "+91 98765 43210");
    let r = app
        .put("/api/users/profile", Some(&token), json!({ "phone": "1" }))
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST),
        "Name is required"
    );
    let r = app
        .put(
            "/api/users/profile",
            Some(&token),
            json!({ "name": "Pro File", "email": "TAKEN@example.com" }),
        )
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::CONFLICT),
        "Email address is already in use by another account"
    );
    let r = app
        .put(
            "/api/users/profile",
            Some(&token),
            json!({ "name": "Pro File", "email": "not an email" }),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST);
    let r = app.get("/api/users/profile", Some(&token)).await;
    assert_eq!(r.body["data"]["user"]["email"], "prof@example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_bcrypt_hashes_log_in_and_are_upgraded() {
    let app = spawn_app(Backend::Sqlite).await;
    let db = ecap_core::db::Db::connect(&app.db.url, 2).await.unwrap();
    let store = ecap_users::UserStore::new(db);
    let legacy = bcrypt::hash("Legacy1!pass", 10).unwrap();
    store
        .create(
            ecap_users::store::NewUser {
                email: "old@example.com".into(),
                password_hash: legacy,
                name: "Old Timer".into(),
                phone: None,
                role: Role::Customer,
            },
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        app.login("old@example.com", "Wrong1!pass").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("old@example.com", "Legacy1!pass").await.status,
        StatusCode::OK
    );
    let row = store.by_email("old@example.com").await.unwrap().unwrap();
    assert!(
        row.password_hash.starts_with("$argon2id$"),
        "{}",
        row.password_hash
    );
    assert_eq!(
        app.login("old@example.com", "Legacy1!pass").await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_forgets_no_logout() {
    let app = spawn_app(Backend::Sqlite).await;
    let (token, _) = app.customer("restart@example.com").await;
    let (kept, _) = app.customer("kept@example.com").await;
    app.post("/api/auth/logout", Some(&token), json!({})).await;
    // A second process on the same database and secret.
    let platform = ecap::assemble(&app.config, ecap_core::config::Shape::AllInOne)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(ecap_core::http::serve(
        listener,
        platform.router,
        std::future::pending(),
    ));
    let me = |t: String| {
        let c = app.client.clone();
        let url = format!("{base}/api/auth/me");
        async move { c.get(url).bearer_auth(t).send().await.unwrap().status() }
    };
    assert_eq!(me(token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(kept).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_register_have_their_own_stricter_budget() {
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.auth_rate_limit_max_requests = 3;
        c.auth_rate_limit_window_ms = 60_000;
    })
    .await;
    let (token, _) = app.customer("budget@example.com").await;
    app.login("budget@example.com", "Wrong1!pass").await;
    app.login("budget@example.com", "Wrong1!pass").await;
    let r = app.login("budget@example.com", PASSWORD).await;
    assert_eq!(
        assert_error(&r, StatusCode::TOO_MANY_REQUESTS),
        "Too many requests. Please try again later."
    );
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    // Other routes keep working for the same client.
    assert_eq!(
        app.get("/api/auth/me", Some(&token)).await.status,
        StatusCode::OK
    );
}

/// Two replicas on one database: with `REDIS_URL` a logout on one is seen by the
/// other at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_revocations_through_redis() {
    let redis =
        std::env::var("ECAP_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.redis_url = Some(ecap_core::config::Secret::new(redis));
    })
    .await;
    let platform = ecap::assemble(&app.config, ecap_core::config::Shape::AllInOne)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let replica = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(ecap_core::http::serve(
        listener,
        platform.router,
        std::future::pending(),
    ));
    let me = |t: &str| {
        app.client
            .get(format!("{replica}/api/auth/me"))
            .bearer_auth(t)
            .send()
    };
    let (token, _) = app.customer("replica@example.com").await;
    assert_eq!(me(&token).await.unwrap().status(), StatusCode::OK);
    app.post("/api/auth/logout", Some(&token), json!({})).await;
    assert_eq!(me(&token).await.unwrap().status(), StatusCode::UNAUTHORIZED);
}
