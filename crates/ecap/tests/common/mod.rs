//! Black-box test support: the whole platform on a random port with a fresh
//! database, and a small HTTP client that returns (status, JSON).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use ecap_core::{
    config::{Config, Secret, Shape},
    db::Backend,
    testing::TestDb,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const JWT_SECRET: &str = "test-secret-of-at-least-sixteen-chars";
pub const PASSWORD: &str = "Secret1!";
/// `ECAP_SETUP_TOKEN` of every test app: the first admin registers with it.
pub const SETUP_TOKEN: &str = "test-setup-token-0123456789";

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub config: Config,
    pub db: TestDb,
    _data: tempfile::TempDir,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

pub fn test_config(db: &TestDb, data: &std::path::Path) -> Config {
    Config {
        database_url: Some(db.url.clone()),
        ecap_data_dir: data.to_path_buf(),
        jwt_secret: Some(Secret::new(JWT_SECRET)),
        ecap_setup_token: Some(Secret::new(SETUP_TOKEN)),
        rate_limit_max_requests: 100_000,
        auth_rate_limit_max_requests: 100_000,
        db_max_connections: 5,
        ..Config::default()
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn_platform(backend, tweak).await.0
}

/// The app and the platform behind it (its stores, bus and background tasks).
pub async fn spawn_platform(
    backend: Backend,
    tweak: impl FnOnce(&mut Config),
) -> (TestApp, ecap::Platform) {
    let db = TestDb::create(backend).await;
    let data = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(&db, data.path());
    tweak(&mut config);
    let (platform, addr, tx) = serve(&config).await;
    let app = TestApp {
        addr,
        base: format!("http://{addr}"),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        config,
        db,
        _data: data,
        _shutdown: tx,
    };
    (app, platform)
}

/// Assembles a platform from `config` and serves it on a random port until
/// the returned sender is dropped or fired (a second process on the same
/// databases, for instance).
pub async fn serve(
    config: &Config,
) -> (ecap::Platform, SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let platform = ecap::assemble(config, Shape::AllInOne)
        .await
        .expect("the platform assembles");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(ecap_core::http::serve(
        listener,
        platform.router.clone(),
        async move {
            let _ = rx.await;
        },
    ));
    (platform, addr, tx)
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    /// Status, headers and the body as JSON (as a string when it is not JSON).
    pub async fn of(res: reqwest::Response) -> Self {
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Self {
            status,
            headers,
            body,
        }
    }
}

impl TestApp {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Resp::of(req.send().await.expect("request")).await
    }

    /// Sends `body` as `application/x-www-form-urlencoded` (written as given:
    /// nested keys like `items[0][productId]` are the caller's to spell).
    pub async fn form(&self, method: Method, path: &str, token: Option<&str>, body: &str) -> Resp {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Resp::of(req.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.call(Method::GET, path, token, None).await
    }
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.call(Method::POST, path, token, Some(body)).await
    }
    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.call(Method::PUT, path, token, Some(body)).await
    }
    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.call(Method::PATCH, path, token, Some(body)).await
    }
    pub async fn delete(&self, path: &str, token: Option<&str>) -> Resp {
        self.call(Method::DELETE, path, token, None).await
    }

    /// Registers with the given role and returns (token, id); `admin` sends the
    /// setup token (the first admin's registration).
    pub async fn register_as(&self, name: &str, email: &str, role: &str) -> (String, i64) {
        let mut body = json!({ "name": name, "email": email, "password": PASSWORD, "role": role });
        if role == "admin" {
            body["setupToken"] = json!(SETUP_TOKEN);
        }
        let r = self.post("/api/auth/register", None, body).await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "register {email}: {}",
            r.body
        );
        (
            r.body["data"]["token"].as_str().expect("token").to_owned(),
            r.body["data"]["user"]["id"].as_i64().expect("id"),
        )
    }

    pub async fn customer(&self, email: &str) -> (String, i64) {
        self.register_as("Test Customer", email, "customer").await
    }

    /// The first admin, registered with the setup token.
    pub async fn admin(&self) -> (String, i64) {
        self.register_as("Test Admin", "admin@example.com", "admin")
            .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Resp {
        self.post(
            "/api/auth/login",
            None,
            json!({ "email": email, "password": password }),
        )
        .await
    }
}

/// Asserts an error answer in the shared shape and returns its message.
pub fn assert_error(r: &Resp, status: StatusCode) -> String {
    assert_eq!(r.status, status, "body: {}", r.body);
    assert_eq!(r.body["success"], false, "{}", r.body);
    assert!(r.body["errors"].is_array(), "{}", r.body);
    let msg = r.body["message"].as_str().expect("message").to_owned();
    assert!(!msg.is_empty());
    msg
}

/// `body` with `key` set to `value`.
pub fn with(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

/// `body` without `key`.
pub fn without(mut body: Value, key: &str) -> Value {
    body.as_object_mut().expect("object").remove(key);
    body
}
