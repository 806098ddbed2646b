//! The first admin of an empty shop (defect S4): only someone holding the
//! machine — the setup token from `ECAP_SETUP_TOKEN` or the server's log — may
//! register as admin, once, while no admin exists; on every database, and with
//! two processes racing on one database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{PASSWORD, SETUP_TOKEN, TestApp, assert_error, spawn_app, spawn_app_with};
use ecap_core::{config::Shape, db::Backend};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn admin_body(email: &str, token: Option<&str>) -> Value {
    let mut body =
        json!({ "name": "Would Be Admin", "email": email, "password": PASSWORD, "role": "admin" });
    if let Some(t) = token {
        body["setupToken"] = json!(t);
    }
    body
}

async fn register_admin(base: &str, client: &reqwest::Client, email: &str) -> StatusCode {
    client
        .post(format!("{base}/api/auth/register"))
        .json(&admin_body(email, Some(SETUP_TOKEN)))
        .send()
        .await
        .unwrap()
        .status()
}

/// Eight registrations as admin with the setup token at once, spread over
/// `bases`; their statuses.
async fn race(app: &TestApp, bases: &[String], prefix: &str) -> Vec<StatusCode> {
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let base = bases[i % bases.len()].clone();
            let client = app.client.clone();
            let email = format!("{prefix}{i}@example.com");
            tokio::spawn(async move { register_admin(&base, &client, &email).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for r in racers {
        statuses.push(r.await.unwrap());
    }
    statuses
}

async fn first_admin_needs_the_setup_token_once(backend: Backend) {
    let app = spawn_app(backend).await;
    // Without the token, or with a wrong one: 403 saying what is needed, and no account.
    for token in [
        None,
        Some(""),
        Some("not-the-setup-token"),
        Some(&SETUP_TOKEN[1..]),
    ] {
        let r = app
            .post(
                "/api/auth/register",
                None,
                admin_body("mallory@example.com", token),
            )
            .await;
        let msg = assert_error(&r, StatusCode::FORBIDDEN);
        assert!(msg.contains("setup token"), "{msg}");
    }
    assert_eq!(
        app.login("mallory@example.com", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Customers and merchants register as before, token or not.
    let (m, _) = app
        .register_as("Shop Owner", "shop@example.com", "merchant")
        .await;
    assert_eq!(
        app.get("/api/auth/me", Some(&m)).await.body["data"]["user"]["role"],
        "merchant"
    );

    // Eight holders of the token at once: exactly one becomes admin.
    let statuses = race(&app, std::slice::from_ref(&app.base), "racer").await;
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::FORBIDDEN),
        "{statuses:?}"
    );
    assert_eq!(admins(&app).await, 1);

    // Once an admin exists the token opens nothing.
    let r = app
        .post(
            "/api/auth/register",
            None,
            admin_body("late@example.com", Some(SETUP_TOKEN)),
        )
        .await;
    assert!(
        assert_error(&r, StatusCode::FORBIDDEN).contains("an admin already exists"),
        "{}",
        r.body
    );
    assert_eq!(admins(&app).await, 1);
}

/// Two processes on one database (two replicas of the users service), each
/// with the configured token, racing: one admin.
async fn replicas_racing_on_one_database_make_one_admin(backend: Backend) {
    let app = spawn_app(backend).await;
    let (platform, addr, stop) = common::serve(&app.config).await;
    let bases = [app.base.clone(), format!("http://{addr}")];
    let statuses = race(&app, &bases, "replica").await;
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1);
    assert_eq!(admins(&app).await, 1);
    let _ = stop.send(());
    platform.close().await;
}

ecap_core::on_every_backend!(
    first_admin_needs_the_setup_token_once,
    replicas_racing_on_one_database_make_one_admin
);

/// How many admins the database holds.
async fn admins(app: &TestApp) -> i64 {
    let db = ecap_core::db::Db::connect(&app.db.url, 1).await.unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE role = 'admin'")
        .fetch_one(db.pool())
        .await
        .unwrap();
    db.close().await;
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_registration_can_be_closed_entirely() {
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.ecap_admin_bootstrap = false;
        c.ecap_setup_token = None;
    })
    .await;
    let r = app
        .post(
            "/api/auth/register",
            None,
            admin_body("first@example.com", Some(SETUP_TOKEN)),
        )
        .await;
    assert!(
        assert_error(&r, StatusCode::FORBIDDEN).contains("ecap users create-admin"),
        "{}",
        r.body
    );
    // The two settings contradict each other: start-up refuses.
    let mut config = app.config.clone();
    config.ecap_admin_bootstrap = false;
    config.ecap_setup_token = Some(ecap_core::config::Secret::new(SETUP_TOKEN));
    let err = ecap::assemble(&config, Shape::AllInOne)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("ECAP_SETUP_TOKEN"), "{err}");
    config.ecap_admin_bootstrap = true;
    config.ecap_setup_token = Some(ecap_core::config::Secret::new("short"));
    let err = ecap::assemble(&config, Shape::AllInOne)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("at least 16"), "{err}");
}
