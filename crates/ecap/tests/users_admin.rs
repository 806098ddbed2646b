//! User administration (`/api/users` admin and owner routes): who may call
//! what, and the admin's management story on every backend.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use ecap_core::{
    auth::{JwtKeys, Role},
    config::Secret,
    db::Backend,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

// ---- helpers -------------------------------------------------------------------

/// The `id`s of `data.users`, in answer order.
fn ids(r: &Resp) -> Vec<i64> {
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["data"]["users"]
        .as_array()
        .expect("data.users")
        .iter()
        .map(|u| u["id"].as_i64().expect("id"))
        .collect()
}

fn pagination(r: &Resp) -> (u64, u64, u64, u64) {
    let p = &r.body["data"]["pagination"];
    let n = |k: &str| {
        p[k].as_u64()
            .unwrap_or_else(|| panic!("pagination.{k}: {p}"))
    };
    (n("page"), n("limit"), n("total"), n("pages"))
}

/// Total number of users, as the admin list reports it.
async fn user_total(app: &TestApp, admin: &str) -> u64 {
    let r = app.get("/api/users?limit=100", Some(admin)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    pagination(&r).2
}

/// The role carried inside a token (verified with the test secret).
fn token_role(token: &str) -> Role {
    JwtKeys::new(&Secret::new(JWT_SECRET), Duration::from_secs(3600))
        .verify(token)
        .expect("a valid token")
        .role
}

/// An error answer with the given status and exactly this message.
fn assert_error_msg(r: &Resp, status: StatusCode, msg: &str) {
    assert_eq!(assert_error(r, status), msg, "{}", r.body);
}

/// The `errors[]` item naming `path`, for validation answers.
fn error_for<'a>(r: &'a Resp, path: &str) -> &'a Value {
    r.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .find(|e| e["path"] == path)
        .unwrap_or_else(|| panic!("no error for {path}: {}", r.body))
}

// ---- authorization matrix ----------------------------------------------------------

const CALLERS: [&str; 5] = ["anonymous", "A", "B", "merchant", "admin"];

/// Expected status per route and caller. `{A}` is customer A's id. The admin's
/// `DELETE /api/users/all` is 403 too: dangerous operations are off by default.
#[rustfmt::skip]
const MATRIX: &[(&str, &str, [u16; 5])] = &[
    // method    path                       anonymous  A    B  merchant admin
    ("GET",    "/api/users",                [401,    403, 403, 403,   200]),
    ("POST",   "/api/users",                [401,    403, 403, 403,   201]),
    ("DELETE", "/api/users/all",            [401,    403, 403, 403,   403]),
    ("GET",    "/api/users/{A}",            [401,    200, 403, 403,   200]),
    ("GET",    "/api/users/{A}/details",    [401,    403, 403, 403,   200]),
    ("PUT",    "/api/users/{A}",            [401,    200, 403, 403,   200]),
    ("PATCH",  "/api/users/{A}",            [401,    200, 403, 403,   200]),
    ("PATCH",  "/api/users/{A}/role",       [401,    403, 403, 403,   200]),
    ("DELETE", "/api/users/{A}",            [401,    403, 403, 403,   200]),
];

/// What each caller sends: every write tries to change A (or escalate A to admin).
fn matrix_body(method: &str, path: &str, caller: &str) -> Option<Value> {
    let who = caller.to_lowercase();
    match (method, path) {
        ("POST", _) => Some(json!({
            "email": format!("made-by-{who}@example.com"),
            "password": PASSWORD,
            "name": "Made User",
            "role": "customer",
        })),
        ("DELETE", "/api/users/all") => Some(json!({ "includeAdmins": true })),
        ("PUT", _) => Some(json!({ "name": format!("Put by {caller}") })),
        ("PATCH", p) if p.ends_with("/role") => Some(json!({ "role": "admin" })),
        ("PATCH", _) => Some(json!({
            "name": format!("Patched by {caller}"),
            "email": format!("patched-by-{who}@example.com"),
        })),
        _ => None,
    }
}

/// Runs one caller's row of calls; returns the mismatches.
async fn run_caller(app: &TestApp, col: usize, token: Option<&str>, a_id: i64) -> Vec<String> {
    let caller = CALLERS[col];
    let mut wrong = Vec::new();
    for (method, template, expected) in MATRIX {
        let path = template.replace("{A}", &a_id.to_string());
        let body = matrix_body(method, template, caller);
        let m = Method::from_bytes(method.as_bytes()).expect("method");
        let r = app.call(m, &path, token, body).await;
        let want = expected[col];
        if r.status.as_u16() != want {
            wrong.push(format!(
                "{caller:>9} {method} {template}: expected {want}, got {} {}",
                r.status, r.body
            ));
        } else if want >= 400 {
            let shaped = r.body["success"] == false
                && r.body["errors"].is_array()
                && r.body["message"].as_str().is_some_and(|m| !m.is_empty());
            if !shaped {
                wrong.push(format!(
                    "{caller} {method} {template}: error shape {}",
                    r.body
                ));
            }
        } else if r.body["success"] != true {
            wrong.push(format!("{caller} {method} {template}: {}", r.body));
        }
    }
    wrong
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_matrix() {
    let app = spawn_app(Backend::Sqlite).await;
    let (admin, _) = app.admin().await;
    let (a, a_id) = app
        .register_as("Customer A", "a@example.com", "customer")
        .await;
    let (b, _) = app
        .register_as("Customer B", "b@example.com", "customer")
        .await;
    let (merchant, _) = app
        .register_as("Merchant M", "m@example.com", "merchant")
        .await;
    let tokens = [
        None,
        Some(a.as_str()),
        Some(b.as_str()),
        Some(merchant.as_str()),
    ];

    // Callers one after the other, the admin last (its calls change and finally delete A).
    let mut wrong = Vec::new();
    for (col, token) in tokens.iter().enumerate() {
        wrong.extend(run_caller(&app, col, *token, a_id).await);
    }
    assert!(
        wrong.is_empty(),
        "authorization matrix:\n{}",
        wrong.join("\n")
    );

    // None of the refused calls changed anything: A's own last PATCH stands,
    // A is still a customer, nobody was created or deleted.
    let r = app.get(&format!("/api/users/{a_id}"), Some(&admin)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let user = &r.body["data"]["user"];
    assert_eq!(user["name"], "Patched by A");
    assert_eq!(user["email"], "patched-by-a@example.com");
    assert_eq!(user["role"], "customer");
    assert_eq!(user_total(&app, &admin).await, 4);
    // A's token still works (no role change happened).
    assert_eq!(
        app.get("/api/auth/me", Some(&a)).await.status,
        StatusCode::OK
    );

    let wrong = run_caller(&app, 4, Some(&admin), a_id).await;
    assert!(
        wrong.is_empty(),
        "authorization matrix:\n{}",
        wrong.join("\n")
    );
    // The admin's calls did happen: A is gone, the admin's new user exists.
    assert_error(
        &app.get(&format!("/api/users/{a_id}"), Some(&admin)).await,
        StatusCode::NOT_FOUND,
    );
    let r = app
        .get("/api/users?search=made-by-admin", Some(&admin))
        .await;
    assert_eq!(pagination(&r).2, 1, "{}", r.body);
    assert_eq!(user_total(&app, &admin).await, 4);
    // A's token died with A.
    assert_error(
        &app.get("/api/auth/me", Some(&a)).await,
        StatusCode::UNAUTHORIZED,
    );
}

// ---- the admin's story, on every backend --------------------------------------------

async fn create_user(app: &TestApp, admin: &str, body: Value) -> Value {
    let r = app.post("/api/users", Some(admin), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["success"], true);
    r.body["data"]["user"].clone()
}

async fn admin_manages_users(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, admin_id) = app.admin().await;
    let tok = Some(admin.as_str());

    // ---- create -------------------------------------------------------------
    let r = app
        .post(
            "/api/users",
            tok,
            json!({
                "email": "Alice.Zed@Example.COM",
                "password": PASSWORD,
                "name": "  Alice Zed ",
                "role": "customer",
                "phone": "+91 98765-43210",
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["message"], "User created successfully");
    let alice = &r.body["data"]["user"];
    assert_eq!(alice["email"], "alice.zed@example.com");
    assert_eq!(alice["name"], "Alice Zed");
    assert_eq!(alice["role"], "customer");
    assert_eq!(alice["phone"], "+91 98765-43210");
    assert!(alice["createdAt"].is_string(), "{alice}");
    assert!(alice.get("password").is_none() && alice.get("password_hash").is_none());
    assert!(
        !r.body.to_string().contains("$argon2"),
        "hash leaked: {}",
        r.body
    );
    let alice_id = alice["id"].as_i64().expect("id");

    let bob = create_user(
        &app,
        &admin,
        json!({ "email": "bob.young@example.com", "password": PASSWORD, "name": "Bob Young", "role": "merchant" }),
    )
    .await;
    assert_eq!(bob["role"], "merchant");
    assert_eq!(bob["phone"], Value::Null);
    let bob_id = bob["id"].as_i64().expect("id");
    let (carol, carol_id) = app
        .register_as("Carol Xu", "carol.xu@example.com", "customer")
        .await;
    let r = app
        .post(
            "/api/users",
            tok,
            json!({ "email": "dave.wu@example.com", "password": PASSWORD, "name": "Dave Wu", "role": "admin" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["message"], "Admin created successfully");
    assert_eq!(r.body["data"]["user"]["role"], "admin");
    let dave_id = r.body["data"]["user"]["id"].as_i64().expect("id");

    // Refused creations create nothing.
    let r = app
        .post(
            "/api/users",
            tok,
            json!({ "email": "ALICE.ZED@example.com", "password": PASSWORD, "name": "Alice Again", "role": "customer" }),
        )
        .await;
    assert_error_msg(
        &r,
        StatusCode::CONFLICT,
        "User with this email already exists",
    );
    let r = app
        .post(
            "/api/users",
            tok,
            json!({ "email": "weak@example.com", "password": "weakpassword", "name": "Weak", "role": "customer" }),
        )
        .await;
    assert_error_msg(
        &r,
        StatusCode::BAD_REQUEST,
        "Password must contain uppercase, lowercase, number and special character",
    );
    assert_eq!(error_for(&r, "password")["location"], "body");
    let r = app
        .post(
            "/api/users",
            tok,
            json!({ "email": "norole@example.com", "password": PASSWORD, "name": "No Role" }),
        )
        .await;
    assert_error_msg(&r, StatusCode::BAD_REQUEST, "Invalid role");
    assert_eq!(error_for(&r, "role")["msg"], "Invalid role");
    let r = app
        .post(
            "/api/users",
            tok,
            json!({ "email": "king@example.com", "password": PASSWORD, "name": "King", "role": "king" }),
        )
        .await;
    assert_error_msg(&r, StatusCode::BAD_REQUEST, "Invalid role");
    let r = app
        .post(
            "/api/users",
            tok,
            json!({ "email": "not-an-email", "password": PASSWORD, "name": "Nomail", "role": "customer" }),
        )
        .await;
    assert_error_msg(&r, StatusCode::BAD_REQUEST, "Valid email is required");
    assert_eq!(user_total(&app, &admin).await, 5);

    // Bulk deletion is off by default and deletes nothing.
    let r = app
        .call(
            Method::DELETE,
            "/api/users/all",
            tok,
            Some(json!({ "includeAdmins": true })),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN);
    assert_eq!(user_total(&app, &admin).await, 5);

    // ---- list: pagination, search, filter, sort ------------------------------
    let newest_first = vec![dave_id, carol_id, bob_id, alice_id, admin_id];
    let r = app.get("/api/users", tok).await;
    assert_eq!(ids(&r), newest_first);
    assert_eq!(pagination(&r), (1, 50, 5, 1));
    for u in r.body["data"]["users"].as_array().expect("users") {
        assert_eq!(u["orderCount"], 0, "{u}");
        assert_eq!(u["totalSpent"].as_f64(), Some(0.0), "{u}");
        assert!(u.get("password_hash").is_none(), "{u}");
    }
    let r = app.get("/api/users?page=1&limit=2", tok).await;
    assert_eq!(ids(&r), newest_first[..2]);
    assert_eq!(pagination(&r), (1, 2, 5, 3));
    let r = app.get("/api/users?page=2&limit=2", tok).await;
    assert_eq!(ids(&r), newest_first[2..4]);
    let r = app.get("/api/users?page=3&limit=2", tok).await;
    assert_eq!(ids(&r), [admin_id]);
    assert_eq!(pagination(&r), (3, 2, 5, 3));
    let r = app.get("/api/users?page=4&limit=2", tok).await;
    assert_eq!(ids(&r), Vec::<i64>::new());
    assert_eq!(pagination(&r), (4, 2, 5, 3));

    let search = |q: &'static str| {
        let app = &app;
        async move { ids(&app.get(&format!("/api/users?search={q}"), tok).await) }
    };
    assert_eq!(
        search("ALICE").await,
        [alice_id],
        "search by name, any case"
    );
    assert_eq!(
        search("yOuNg%40EXAMPLE").await,
        [bob_id],
        "search by e-mail, any case"
    );
    assert_eq!(search("xu").await, [carol_id]);
    assert_eq!(search("example.com").await.len(), 5);
    assert_eq!(search("%25").await, Vec::<i64>::new(), "% is no wildcard");
    assert_eq!(search("_").await, Vec::<i64>::new(), "_ is no wildcard");
    let r = app.get("/api/users?search=nobody-at-all", tok).await;
    assert_eq!(ids(&r), Vec::<i64>::new());
    assert_eq!(pagination(&r), (1, 50, 0, 0));

    let r = app.get("/api/users?role=merchant", tok).await;
    assert_eq!(ids(&r), [bob_id]);
    assert_eq!(pagination(&r).2, 1);
    assert_eq!(
        ids(&app.get("/api/users?role=admin", tok).await),
        [dave_id, admin_id]
    );
    assert_eq!(
        ids(&app.get("/api/users?role=customer&search=carol", tok).await),
        [carol_id]
    );
    assert_eq!(
        ids(&app.get("/api/users?role=merchant&search=alice", tok).await),
        Vec::<i64>::new()
    );

    // Names: Alice Zed, Bob Young, Carol Xu, Dave Wu, Test Admin.
    let by_name = vec![alice_id, bob_id, carol_id, dave_id, admin_id];
    assert_eq!(ids(&app.get("/api/users?sort=name", tok).await), by_name);
    let mut rev = by_name.clone();
    rev.reverse();
    assert_eq!(ids(&app.get("/api/users?sort=-name", tok).await), rev);
    assert_eq!(
        ids(&app.get("/api/users?sort=-createdAt", tok).await),
        newest_first
    );
    let mut oldest_first = newest_first.clone();
    oldest_first.reverse();
    assert_eq!(
        ids(&app.get("/api/users?sort=createdAt", tok).await),
        oldest_first
    );
    assert_eq!(
        ids(&app.get("/api/users?sort=email&limit=2", tok).await),
        [admin_id, alice_id]
    );

    // The original's admin pages ask for 1000 at once (§11.2).
    assert_eq!(
        ids(&app.get("/api/users?limit=1000", tok).await),
        newest_first
    );
    for bad in [
        "limit=0",
        "limit=1001",
        "limit=abc",
        "page=0",
        "sort=bogus",
        "sort=-bogus",
        "role=king",
    ] {
        let r = app.get(&format!("/api/users?{bad}"), tok).await;
        assert_error(&r, StatusCode::BAD_REQUEST);
        assert_eq!(
            r.body["errors"][0]["location"], "query",
            "{bad}: {}",
            r.body
        );
    }

    // ---- details ------------------------------------------------------------------
    let r = app
        .get(&format!("/api/users/{alice_id}/details"), tok)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let d = &r.body["data"];
    assert_eq!(d["user"]["id"], alice_id);
    assert_eq!(d["user"]["email"], "alice.zed@example.com");
    for k in [
        "totalOrders",
        "completedOrders",
        "cancelledOrders",
        "totalSpent",
        "avgOrderValue",
    ] {
        assert_eq!(
            d["statistics"][k].as_f64(),
            Some(0.0),
            "statistics.{k}: {d}"
        );
    }
    assert_eq!(d["orders"], json!([]));
    assert_error_msg(
        &app.get("/api/users/999999/details", tok).await,
        StatusCode::NOT_FOUND,
        "User not found",
    );
    assert_error(
        &app.get("/api/users/abc/details", tok).await,
        StatusCode::BAD_REQUEST,
    );

    // ---- update -------------------------------------------------------------------
    let alice_path = format!("/api/users/{alice_id}");
    let r = app
        .put(&alice_path, tok, json!({ "name": "Alice Zedd" }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["message"], "User updated successfully");
    assert_eq!(r.body["data"]["user"]["name"], "Alice Zedd");
    assert_eq!(r.body["data"]["user"]["email"], "alice.zed@example.com");
    assert_eq!(r.body["data"]["user"]["phone"], "+91 98765-43210");
    assert!(
        r.body["data"]["user"]["updated_at"].is_string(),
        "{}",
        r.body
    );
    let r = app
        .patch(&alice_path, tok, json!({ "email": " ALICE@Example.COM " }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["user"]["email"], "alice@example.com");
    assert_eq!(r.body["data"]["user"]["name"], "Alice Zedd");
    let r = app
        .patch(&alice_path, tok, json!({ "phone": "+1 555 0100" }))
        .await;
    assert_eq!(r.body["data"]["user"]["phone"], "+1 555 0100", "{}", r.body);
    let r = app.patch(&alice_path, tok, json!({ "phone": "" })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["data"]["user"]["phone"],
        Value::Null,
        "empty phone clears it"
    );
    assert_error_msg(
        &app.patch(
            &alice_path,
            tok,
            json!({ "email": "BOB.YOUNG@example.com" }),
        )
        .await,
        StatusCode::CONFLICT,
        "Email already in use",
    );
    assert_error_msg(
        &app.patch(&alice_path, tok, json!({})).await,
        StatusCode::BAD_REQUEST,
        "No fields to update",
    );
    assert_error_msg(
        &app.put(&alice_path, tok, json!({ "name": "A" })).await,
        StatusCode::BAD_REQUEST,
        "Name must be at least 2 characters",
    );
    assert_error_msg(
        &app.patch(&alice_path, tok, json!({ "email": "nope" }))
            .await,
        StatusCode::BAD_REQUEST,
        "Valid email is required",
    );
    assert_error_msg(
        &app.patch("/api/users/999999", tok, json!({ "name": "Ghost" }))
            .await,
        StatusCode::NOT_FOUND,
        "User not found",
    );
    let r = app.get(&alice_path, tok).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let u = &r.body["data"]["user"];
    assert_eq!(
        (&u["name"], &u["email"], &u["phone"], &u["role"]),
        (
            &json!("Alice Zedd"),
            &json!("alice@example.com"),
            &Value::Null,
            &json!("customer")
        )
    );

    // ---- role change revokes the user's tokens ------------------------------------
    let r = app.get("/api/auth/me", Some(&carol)).await;
    assert_eq!(r.body["data"]["user"]["role"], "customer", "{}", r.body);
    let carol_role = format!("/api/users/{carol_id}/role");
    let r = app
        .patch(&carol_role, tok, json!({ "role": "merchant" }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["message"], "User role updated successfully");
    assert_eq!(r.body["data"]["user"]["role"], "merchant");
    assert_eq!(r.body["data"]["user"]["id"], carol_id);
    assert_error(
        &app.get("/api/auth/me", Some(&carol)).await,
        StatusCode::UNAUTHORIZED,
    );
    let r = app.login("carol.xu@example.com", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["user"]["role"], "merchant");
    let carol = r.body["data"]["token"].as_str().expect("token").to_owned();
    assert_eq!(token_role(&carol), Role::Merchant);
    let r = app.get("/api/auth/me", Some(&carol)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["user"]["role"], "merchant");

    assert_error_msg(
        &app.patch(&carol_role, tok, json!({ "role": "king" })).await,
        StatusCode::BAD_REQUEST,
        "Invalid role",
    );
    assert_error_msg(
        &app.patch(&carol_role, tok, json!({})).await,
        StatusCode::BAD_REQUEST,
        "Invalid role",
    );
    assert_error_msg(
        &app.patch("/api/users/999999/role", tok, json!({ "role": "merchant" }))
            .await,
        StatusCode::NOT_FOUND,
        "User not found",
    );
    assert_error(
        &app.patch("/api/users/abc/role", tok, json!({ "role": "merchant" }))
            .await,
        StatusCode::BAD_REQUEST,
    );
    // The refused changes left Carol's new token alone.
    assert_eq!(
        app.get("/api/auth/me", Some(&carol)).await.status,
        StatusCode::OK
    );

    // ---- the last admin keeps the role --------------------------------------------
    let r = app
        .patch(
            &format!("/api/users/{dave_id}/role"),
            tok,
            json!({ "role": "customer" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_error_msg(
        &app.patch(
            &format!("/api/users/{admin_id}/role"),
            tok,
            json!({ "role": "customer" }),
        )
        .await,
        StatusCode::CONFLICT,
        "The last admin cannot lose the admin role",
    );
    let r = app.get("/api/auth/me", tok).await;
    assert_eq!(r.body["data"]["user"]["role"], "admin", "{}", r.body);
    assert_eq!(
        ids(&app.get("/api/users?role=admin", tok).await),
        [admin_id]
    );

    // ---- delete ---------------------------------------------------------------------
    let carol_path = format!("/api/users/{carol_id}");
    let r = app.delete(&carol_path, tok).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["message"],
        "User \"Carol Xu\" and all associated data deleted successfully"
    );
    assert!(
        r.body["message"]
            .as_str()
            .expect("message")
            .contains("Carol Xu")
    );
    assert_eq!(
        r.body["data"]["deletedUser"],
        json!({ "id": carol_id, "name": "Carol Xu" })
    );
    assert_eq!(r.body["data"]["deletedOrders"], 0);
    assert_error(
        &app.get("/api/auth/me", Some(&carol)).await,
        StatusCode::UNAUTHORIZED,
    );
    assert_error_msg(
        &app.get(&carol_path, tok).await,
        StatusCode::NOT_FOUND,
        "User not found",
    );
    assert_error_msg(
        &app.delete(&carol_path, tok).await,
        StatusCode::NOT_FOUND,
        "User not found",
    );
    assert_error(
        &app.login("carol.xu@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
    );
    assert_error_msg(
        &app.delete(&format!("/api/users/{admin_id}"), tok).await,
        StatusCode::CONFLICT,
        "You cannot delete your own account",
    );
    assert_error_msg(
        &app.delete("/api/users/999999", tok).await,
        StatusCode::NOT_FOUND,
        "User not found",
    );
    assert_error(
        &app.delete("/api/users/abc", tok).await,
        StatusCode::BAD_REQUEST,
    );
    assert_eq!(
        ids(&app.get("/api/users", tok).await),
        [dave_id, bob_id, alice_id, admin_id]
    );
}

// ---- DELETE /api/users/all ----------------------------------------------------------

async fn delete_all(app: &TestApp, admin: &str, include_admins: bool) -> Resp {
    delete_all_with(app, admin, json!({ "includeAdmins": include_admins })).await
}

async fn delete_all_with(app: &TestApp, admin: &str, body: Value) -> Resp {
    app.call(Method::DELETE, "/api/users/all", Some(admin), Some(body))
        .await
}

/// `(id, name, role)` of `data.deletedUsers`, sorted by id.
fn deleted_users(r: &Resp) -> Vec<(i64, String, String)> {
    let mut v: Vec<_> = r.body["data"]["deletedUsers"]
        .as_array()
        .unwrap_or_else(|| panic!("deletedUsers: {}", r.body))
        .iter()
        .map(|u| {
            (
                u["id"].as_i64().expect("id"),
                u["name"].as_str().expect("name").to_owned(),
                u["role"].as_str().expect("role").to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

async fn bulk_delete_users(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.ecap_dangerous_operations = true).await;
    let (admin, admin_id) = app.admin().await;
    let second_admin = create_user(
        &app,
        &admin,
        json!({ "email": "second@example.com", "password": PASSWORD, "name": "Second Admin", "role": "admin" }),
    )
    .await;
    let second_id = second_admin["id"].as_i64().expect("id");
    let (cust, cust_id) = app
        .register_as("Cus Tomer", "cust@example.com", "customer")
        .await;
    let merchant = create_user(
        &app,
        &admin,
        json!({ "email": "merch@example.com", "password": PASSWORD, "name": "Mer Chant", "role": "merchant" }),
    )
    .await;
    let merchant_id = merchant["id"].as_i64().expect("id");
    // An address of the customer goes with them.
    let r = app
        .post(
            "/api/users/addresses",
            Some(&cust),
            json!({ "label": "Home", "street": "1 Road", "city": "Pune", "state": "MH", "zipCode": "411001", "phone": "9876543210" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // Not for non-admins, even with the flag.
    assert_error(&delete_all(&app, &cust, true).await, StatusCode::FORBIDDEN);

    let r = delete_all(&app, &admin, false).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["message"], "Successfully deleted 2 user(s)");
    assert_eq!(r.body["data"]["deletedCount"], 2);
    let mut expected = vec![
        (cust_id, "Cus Tomer".to_owned(), "customer".to_owned()),
        (merchant_id, "Mer Chant".to_owned(), "merchant".to_owned()),
    ];
    expected.sort();
    assert_eq!(deleted_users(&r), expected);
    assert!(r.body["data"]["timestamp"].is_string(), "{}", r.body);
    let mut left = ids(&app.get("/api/users", Some(&admin)).await);
    left.sort_unstable();
    assert_eq!(left, [admin_id, second_id], "admins and the caller stay");
    assert_error(
        &app.get("/api/auth/me", Some(&cust)).await,
        StatusCode::UNAUTHORIZED,
    );

    let r = delete_all(&app, &admin, false).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["message"], "No users to delete");
    assert_eq!(r.body["data"]["deletedCount"], 0);

    // With admins: everyone but the caller, only with the count a dry run shows.
    let (late, _) = app.customer("late@example.com").await;
    let r = delete_all(&app, &admin, true).await;
    assert!(
        assert_error(&r, StatusCode::BAD_REQUEST).contains("confirm"),
        "{}",
        r.body
    );
    let dry = app
        .call(
            Method::DELETE,
            "/api/users/all?dryRun=true",
            Some(&admin),
            Some(json!({ "includeAdmins": true })),
        )
        .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    assert_eq!(dry.body["data"]["dryRun"], true);
    assert_eq!(dry.body["data"]["count"], 2, "{}", dry.body);
    assert_eq!(
        dry.body["data"]["byRole"],
        json!({ "admin": 1, "customer": 1 })
    );
    let same = delete_all_with(
        &app,
        &admin,
        json!({ "includeAdmins": true, "dryRun": true }),
    )
    .await;
    assert_eq!(same.body["data"], dry.body["data"]);
    // Someone registers after the dry run: the count no longer matches, nothing goes.
    app.customer("later@example.com").await;
    let r = delete_all_with(&app, &admin, json!({ "includeAdmins": true, "confirm": 2 })).await;
    assert!(
        assert_error(&r, StatusCode::CONFLICT).contains("3 account(s)"),
        "{}",
        r.body
    );
    assert_eq!(
        app.get("/api/auth/me", Some(&late)).await.status,
        StatusCode::OK,
        "nothing was deleted"
    );
    let r = delete_all_with(
        &app,
        &admin,
        json!({ "includeAdmins": true, "confirm": "x" }),
    )
    .await;
    assert_error(&r, StatusCode::BAD_REQUEST);
    let r = delete_all_with(&app, &admin, json!({ "includeAdmins": true, "confirm": 3 })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["message"], "Successfully deleted 3 user(s)");
    assert_eq!(r.body["data"]["deletedCount"], 3);
    assert!(
        deleted_users(&r).contains(&(second_id, "Second Admin".to_owned(), "admin".to_owned())),
        "{}",
        r.body
    );
    assert_eq!(ids(&app.get("/api/users", Some(&admin)).await), [admin_id]);

    let r = delete_all_with(&app, &admin, json!({ "includeAdmins": true, "confirm": 0 })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["message"], "No users to delete");
    assert_eq!(r.body["data"]["deletedCount"], 0);
    // The caller is never deleted, and their token still works.
    let r = app.get("/api/auth/me", Some(&admin)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["user"]["id"], admin_id);
}

ecap_core::on_every_backend!(admin_manages_users, bulk_delete_users);
