//! The split shape, live: the `ecap` binary as separate processes on
//! 127.0.0.1 — users (MariaDB), catalog, two orders replicas and two
//! analytics replicas (PostgreSQL, one fresh database each), Redis under a key prefix of the
//! test's own, and the event stream reached through a TCP proxy the test can
//! cut (the shared Redis itself is never restarted). Scenarios, in order:
//!
//! 1. the API story across services: register, address book, catalog, an
//!    order through one replica and its lifecycle through the other, a review
//!    (orders → catalog → orders' purchase check), the users' order figures,
//!    analytics from the stream, and the live SSE dashboard;
//! 2. 64 buyers racing through both orders replicas for 10 units: exactly 10
//!    sold, stock 0, the stock ledger agrees;
//! 3. one orders replica SIGKILLed under load: every acknowledged order is
//!    there, no reservation leaks (stock = start − what the orders hold), and
//!    the other replica takes the relay and sweeper leases over;
//! 4. analytics SIGKILLed and restarted, then the event stream cut and
//!    restored, while orders flow: everything arrives, both analytics
//!    replicas count every order, `ecap analytics verify` finds no difference;
//! 5. the catalog stopped: placing an order answers 503 JSON naming it,
//!    `/ready` of orders names it, both gateways answer 503 JSON for its
//!    prefix (and keep routing the others), and all recovers when it returns.
//!
//! nginx (`deploy/nginx/nginx.conf` as committed) → two gateways (`--only
//! gateway`) stand in front: the story's catalog read, its order and its live
//! SSE dashboard go through them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/nginx.rs"]
mod nginx;
use nginx::Nginx;

use std::{
    fs::File,
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use ecap_core::{db::Backend, testing::TestDb};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::{net::TcpListener, task::AbortHandle};

const BIN: &str = env!("CARGO_BIN_EXE_ecap");
const JWT: &str = "split-test-jwt-secret-0123456789";
const INTERNAL: &str = "split-test-internal-token-0123";
const SETUP: &str = "split-test-setup-token-0123";
const PASSWORD: &str = "Passw0rd!23";

#[path = "common/port.rs"]
mod port;
use port::free_port;

fn redis_url() -> String {
    std::env::var("ECAP_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// One service process.
struct Svc {
    name: &'static str,
    only: &'static str,
    port: u16,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl Svc {
    fn start(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut c = Command::new(BIN);
        c.args(["serve", "--only", self.only])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PORT", self.port.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        self.child = Some(c.spawn().unwrap());
    }

    /// SIGKILL: no clean-up, no lease release.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Svc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A TCP proxy in front of Redis for the event stream: stopping it is a
/// Redis outage for the services that use it, without touching Redis.
struct Proxy {
    port: u16,
    target: SocketAddr,
    accept: Option<AbortHandle>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    async fn start(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(l) => break l,
                Err(e) => {
                    assert!(Instant::now() < deadline, "proxy port: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        let (target, conns) = (self.target, self.conns.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let h = tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                conns.lock().unwrap().push(h.abort_handle());
            }
        });
        self.accept = Some(task.abort_handle());
    }

    fn stop(&mut self) {
        if let Some(a) = self.accept.take() {
            a.abort();
        }
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}

#[derive(Clone)]
struct Api(reqwest::Client);

impl Api {
    async fn call(
        &self,
        method: Method,
        url: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.0.request(method, url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        match req.send().await {
            Ok(res) => {
                let status = res.status();
                let text = res.text().await.unwrap_or_default();
                (status, serde_json::from_str(&text).unwrap_or(Value::Null))
            }
            // No answer (refused, reset): not acknowledged.
            Err(_) => (StatusCode::from_u16(599).unwrap(), Value::Null),
        }
    }
    async fn get(&self, url: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, url, Some(token), None).await
    }
    async fn post(&self, url: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, url, token, Some(body)).await
    }
    async fn put(&self, url: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, url, Some(token), Some(body)).await
    }
}

struct Topo {
    api: Api,
    users: Svc,
    catalog: Svc,
    orders: [Svc; 2],
    analytics: Svc,
    /// A second analytics replica: the consumer group splits the events
    /// between the two, and each mirror follows the other's applies.
    analytics_2: Svc,
    /// Two gateways in front of everything (`--only gateway`).
    gateways: [Svc; 2],
    /// nginx in front of the two gateways.
    nginx: Option<Nginx>,
    proxy: Proxy,
    prefix: String,
    db_env: Vec<(String, String)>,
    _dbs: Vec<TestDb>,
    _dir: tempfile::TempDir,
}

async fn wait_health(api: &Api, svc: &Svc) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = api.0.get(svc.url("/health")).send().await
            && r.status() == StatusCode::OK
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not start:\n{}",
            svc.name,
            svc.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `check` until it gives `Some`, or fails with `what`.
async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn topology() -> Topo {
    let dir = tempfile::tempdir().unwrap();
    let users_db = TestDb::create(Backend::MySql).await;
    let catalog_db = TestDb::create(Backend::Postgres).await;
    let orders_db = TestDb::create(Backend::Postgres).await;
    let analytics_db = TestDb::create(Backend::Postgres).await;
    let prefix = format!("ecap_split_{}:", uuid::Uuid::new_v4().simple());
    let target: SocketAddr = {
        let url = redis_url();
        let host = url
            .trim_start_matches("redis://")
            .trim_end_matches('/')
            .rsplit('@')
            .next()
            .unwrap()
            .to_owned();
        tokio::net::lookup_host(host).await.unwrap().next().unwrap()
    };
    let mut proxy = Proxy {
        port: free_port(),
        target,
        accept: None,
        conns: Arc::default(),
    };
    proxy.start().await;
    let ports: Vec<u16> = (0..8).map(|_| free_port()).collect();
    let url = |p: u16| format!("http://127.0.0.1:{p}");
    let db_env = vec![
        (
            "USERS_DATABASE_URL".into(),
            users_db.url.expose().to_owned(),
        ),
        (
            "CATALOG_DATABASE_URL".into(),
            catalog_db.url.expose().to_owned(),
        ),
        (
            "ORDERS_DATABASE_URL".into(),
            orders_db.url.expose().to_owned(),
        ),
        (
            "ANALYTICS_DATABASE_URL".into(),
            analytics_db.url.expose().to_owned(),
        ),
    ];
    let mut env: Vec<(String, String)> = [
        ("HOST", "127.0.0.1".to_owned()),
        ("LOG_LEVEL", "info".to_owned()),
        ("JWT_SECRET", JWT.to_owned()),
        ("INTERNAL_TOKEN", INTERNAL.to_owned()),
        ("ECAP_SETUP_TOKEN", SETUP.to_owned()),
        ("REDIS_URL", redis_url()),
        (
            "EVENTS_REDIS_URL",
            format!("redis://127.0.0.1:{}", proxy.port),
        ),
        ("REDIS_KEY_PREFIX", prefix.clone()),
        ("ECAP_DATA_DIR", dir.path().display().to_string()),
        ("USER_SERVICE_URL", url(ports[0])),
        ("PRODUCT_SERVICE_URL", url(ports[1])),
        (
            "ORDER_SERVICE_URL",
            format!("{},{}", url(ports[2]), url(ports[3])),
        ),
        (
            "ANALYTICS_SERVICE_URL",
            format!("{},{}", url(ports[4]), url(ports[7])),
        ),
        ("GATEWAY_HEALTH_INTERVAL_MS", "500".to_owned()),
        ("GATEWAY_EJECT_MS", "1000".to_owned()),
        ("ECAP_LEASE_SECS", "2".to_owned()),
        ("ECAP_RESERVATION_GRACE_SECS", "3".to_owned()),
        ("ECAP_HASH_CONCURRENCY", "2".to_owned()),
        ("AUTH_RATE_LIMIT_MAX_REQUESTS", "100000".to_owned()),
        ("RATE_LIMIT_MAX_REQUESTS", "1000000".to_owned()),
        ("ECAP_CACHE_TTL_SECS", "0".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    env.extend(db_env.iter().cloned());
    let svc = |name: &'static str, only: &'static str, port: u16| Svc {
        name,
        only,
        port,
        env: env.clone(),
        log: dir.path().join(format!("{name}.log")),
        child: None,
    };
    let api = Api(reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap());
    let mut t = Topo {
        api: api.clone(),
        users: svc("users", "users", ports[0]),
        catalog: svc("catalog", "catalog", ports[1]),
        orders: [
            svc("orders-1", "orders", ports[2]),
            svc("orders-2", "orders", ports[3]),
        ],
        analytics: svc("analytics", "analytics", ports[4]),
        analytics_2: svc("analytics-2", "analytics", ports[7]),
        gateways: [
            svc("gateway-1", "gateway", ports[5]),
            svc("gateway-2", "gateway", ports[6]),
        ],
        nginx: None,
        proxy,
        prefix,
        db_env,
        _dbs: vec![users_db, catalog_db, orders_db, analytics_db],
        _dir: dir,
    };
    t.users.start();
    t.catalog.start();
    // orders-1 first, so it holds the leases when orders-2 arrives.
    t.orders[0].start();
    wait_health(&api, &t.users).await;
    wait_health(&api, &t.catalog).await;
    wait_health(&api, &t.orders[0]).await;
    eventually(
        "orders-1 holds the relay lease",
        Duration::from_secs(10),
        || {
            let log = t.orders[0].log();
            async move { log.contains("lease=orders-outbox-relay").then_some(()) }
        },
    )
    .await;
    t.orders[1].start();
    t.analytics.start();
    t.analytics_2.start();
    wait_health(&api, &t.orders[1]).await;
    wait_health(&api, &t.analytics).await;
    wait_health(&api, &t.analytics_2).await;
    for g in &mut t.gateways {
        g.start();
    }
    for g in &t.gateways {
        wait_health(&api, g).await;
    }
    eventually("the gateways see every service", Duration::from_secs(20), || async {
        let mut all = true;
        for g in &t.gateways {
            all &= matches!(api.0.get(g.url("/ready")).send().await, Ok(r) if r.status() == StatusCode::OK);
        }
        all.then_some(())
    })
    .await;
    let gateways: Vec<SocketAddr> = t
        .gateways
        .iter()
        .map(|g| SocketAddr::from(([127, 0, 0, 1], g.port)))
        .collect();
    t.nginx = Some(Nginx::start(&gateways));
    t
}

impl Topo {
    async fn register(&self, email: &str, role: &str) -> (String, i64) {
        let mut body =
            json!({"name": "Split Tester", "email": email, "password": PASSWORD, "role": role});
        if role == "admin" {
            body["setupToken"] = json!(SETUP);
        }
        let (s, b) = self
            .api
            .post(&self.users.url("/api/auth/register"), None, body)
            .await;
        assert_eq!(s, StatusCode::CREATED, "register {email}: {b}");
        (
            b["data"]["token"].as_str().unwrap().to_owned(),
            b["data"]["user"]["id"].as_i64().unwrap(),
        )
    }

    async fn product(&self, admin: &str, name: &str, price: f64, stock: i64) -> String {
        let (s, b) = self
            .api
            .post(
                &self.catalog.url("/api/products"),
                Some(admin),
                json!({"name": name, "description": format!("{name} for the split test"),
                    "price": price, "inventory": stock, "category": "sports"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b["data"]["product"]["id"].as_str().unwrap().to_owned()
    }

    async fn stock(&self, admin: &str, id: &str) -> i64 {
        let (s, b) = self
            .api
            .get(&self.catalog.url(&format!("/api/products/{id}")), admin)
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b["data"]["product"]["inventory"].as_i64().unwrap()
    }

    async fn place(
        &self,
        replica: usize,
        token: &str,
        product: &str,
        qty: i64,
    ) -> (StatusCode, Value) {
        self.api
            .post(
                &self.orders[replica].url("/api/orders"),
                Some(token),
                json!({"items": [{"productId": product, "quantity": qty}], "paymentMethod": "upi",
                    "shippingAddress": {"street": "1 Split Road", "city": "Pune", "state": "MH",
                        "zipCode": "411001", "country": "India"}}),
            )
            .await
    }

    /// Every order (admin view): (id, status, units of `product`).
    async fn all_orders(&self, admin: &str, product: &str) -> Vec<(i64, String, i64)> {
        let mut out = Vec::new();
        for page in 1.. {
            let (s, b) = self
                .api
                .get(
                    &self.orders[1].url(&format!("/api/orders?limit=100&page={page}")),
                    admin,
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{b}");
            let orders = b["data"]["orders"].as_array().cloned().unwrap_or_default();
            if orders.is_empty() {
                break;
            }
            for o in orders {
                let units = o["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|i| i["product_id"] == product)
                    .map(|i| i["quantity"].as_i64().unwrap())
                    .sum();
                out.push((
                    o["id"].as_i64().unwrap(),
                    o["status"].as_str().unwrap().to_owned(),
                    units,
                ));
            }
        }
        out
    }

    async fn analytics_orders(&self, admin: &str) -> i64 {
        self.analytics_orders_on(&self.analytics, admin).await
    }

    async fn analytics_orders_on(&self, svc: &Svc, admin: &str) -> i64 {
        let (s, b) = self
            .api
            .get(&svc.url("/api/analytics/dashboard?period=30d"), admin)
            .await;
        if s != StatusCode::OK {
            return -1;
        }
        b["data"]["totalOrders"].as_i64().unwrap_or(-1)
    }

    async fn outbox_pending(&self, admin: &str) -> i64 {
        let (_, b) = self
            .api
            .get(&self.orders[1].url("/api/orders/outbox"), admin)
            .await;
        b["data"]["pending"].as_i64().unwrap_or(-1)
    }

    fn verify(&self) -> std::process::Output {
        let mut c = Command::new(BIN);
        c.args(["analytics", "verify"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("ECAP_DATA_DIR", self._dir.path());
        for (k, v) in &self.db_env {
            c.env(k, v);
        }
        c.output().unwrap()
    }
}

async fn next_event(res: &mut reqwest::Response) -> Value {
    let mut buf = String::new();
    loop {
        let chunk = res.chunk().await.unwrap().expect("stream open");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        if let Some(end) = buf.find("\n\n") {
            let block = buf[..end].to_owned();
            buf = buf[end + 2..].to_owned();
            if block.contains("event: dashboard") {
                let data: String = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: "))
                    .collect();
                return serde_json::from_str(&data).unwrap();
            }
        }
    }
}

async fn story(t: &Topo, admin: &str) {
    let api = &t.api;
    let (customer, customer_id) = t.register("story@example.com", "customer").await;
    let (s, b) = api
        .post(
            &t.users.url("/api/users/addresses"),
            Some(&customer),
            json!({"label": "Home", "street": "1 MG Road", "city": "Pune", "state": "MH",
                "zipCode": "411001", "country": "India", "phone": "+919999999999"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let address = b["data"]["address"]["id"].as_i64().unwrap();
    let tent = t.product(admin, "Split Tent", 129.99, 20).await;
    let front = |path: &str| t.nginx.as_ref().unwrap().url(path);
    let (s, b) = api
        .call(Method::GET, &front("/api/products?limit=10"), None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["data"]["pagination"]["total"], 1);

    // The live dashboard through nginx and a gateway: a first event, then one per change.
    let mut sse = api
        .0
        .get(front("/api/analytics/stream?period=today"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), StatusCode::OK);
    let first = next_event(&mut sse).await;
    assert_eq!(first["ordersToday"], 0);

    // Placed through nginx and a gateway with a saved address (orders →
    // users), stock reserved over HTTP (orders → catalog); 201 stays 201.
    let (s, b) = api
        .post(
            &front("/api/orders"),
            Some(&customer),
            json!({"items": [{"productId": tent, "quantity": 2}], "paymentMethod": "cod",
                "addressId": address}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let order = b["data"]["order"]["id"].as_i64().unwrap();
    assert_eq!(b["data"]["order"]["totalAmount"], 259.98, "{b}");
    assert_eq!(t.stock(admin, &tent).await, 18);
    let update = tokio::time::timeout(Duration::from_secs(20), next_event(&mut sse))
        .await
        .expect("the SSE dashboard moves within 10 s");
    assert_eq!(update["ordersToday"], 1, "{update}");
    drop(sse);

    // Too many units: the catalog's refusal crosses the wire as a 409 (the shop's state, not the request).
    let (s, b) = t.place(1, &customer, &tent, 1000).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(b["productId"], tent.as_str());

    // The lifecycle at replica 2.
    for status in ["processing", "shipped", "out_for_delivery", "delivered"] {
        let (s, b) = api
            .put(
                &t.orders[1].url(&format!("/api/orders/{order}/status")),
                admin,
                json!({"status": status}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{status}: {b}");
    }
    // A review through the orders service (orders → catalog) …
    let (s, b) = api
        .post(
            &t.orders[0].url(&format!("/api/orders/{order}/review")),
            Some(&customer),
            json!({"productId": tent, "rating": 5, "comment": "Dry through the monsoon"}),
        )
        .await;
    assert!(s.is_success(), "{s} {b}");
    // … and the catalog's own route asks orders whether it was bought (catalog → orders).
    let (s, b) = api
        .post(
            &t.catalog.url(&format!("/api/products/{tent}/reviews")),
            Some(&customer),
            json!({"rating": 4, "comment": "Second thoughts"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "one review per order: {b}");
    let (_, b) = api
        .call(
            Method::GET,
            &t.catalog.url(&format!("/api/products/{tent}/reviews")),
            None,
            None,
        )
        .await;
    assert_eq!(
        b["data"]["reviews"].as_array().map(Vec::len),
        Some(1),
        "{b}"
    );
    let (stranger, _) = t.register("stranger@example.com", "customer").await;
    let (s, b) = api
        .post(
            &t.catalog.url(&format!("/api/products/{tent}/reviews")),
            Some(&stranger),
            json!({"rating": 1, "comment": "Never bought it"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");

    // The users service shows the customer's orders (users → orders).
    let (s, b) = api
        .get(
            &t.users.url(&format!("/api/users/{customer_id}/details")),
            admin,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let text = b.to_string();
    assert!(text.contains("Split Tent"), "{b}");

    // Analytics applied the events from the stream.
    let (_, b) = eventually(
        "analytics sees the delivered order",
        Duration::from_secs(10),
        || async {
            let (s, b) = api
                .get(
                    &t.analytics.url("/api/analytics/dashboard?period=30d"),
                    admin,
                )
                .await;
            (s == StatusCode::OK && b["data"]["deliveredOrders"] == 1).then_some((s, b))
        },
    )
    .await;
    assert_eq!(b["data"]["totalOrders"], 1, "{b}");
    // Product names come from the catalog (analytics → catalog).
    assert_eq!(b["data"]["topProducts"][0]["name"], "Split Tent", "{b}");
    // /internal is not reachable through the gateway, and needs the credential.
    let (s, _) = api
        .call(
            Method::GET,
            &t.gateways[0].url("/internal/orders/count"),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = api
        .call(
            Method::GET,
            &t.orders[0].url("/internal/orders/count"),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

async fn race(t: &Topo, admin: &str) {
    let ball = t.product(admin, "Last Ten Balls", 9.5, 10).await;
    let mut buyers = Vec::new();
    let mut regs = tokio::task::JoinSet::new();
    // A few registrations at a time: password hashing is slow on a busy machine.
    let gate = Arc::new(tokio::sync::Semaphore::new(4));
    for i in 0..64 {
        let api = t.api.clone();
        let url = t.users.url("/api/auth/register");
        let gate = gate.clone();
        regs.spawn(async move {
            let _turn = gate.acquire().await.unwrap();
            let (s, b) = api
                .post(
                    &url,
                    None,
                    json!({"name": "Racer", "email": format!("racer{i}@example.com"), "password": PASSWORD}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{b}");
            b["data"]["token"].as_str().unwrap().to_owned()
        });
    }
    while let Some(tok) = regs.join_next().await {
        buyers.push(tok.unwrap());
    }
    let start = Arc::new(tokio::sync::Barrier::new(64));
    let mut set = tokio::task::JoinSet::new();
    for (i, tok) in buyers.into_iter().enumerate() {
        let (api, url, ball, start) = (
            t.api.clone(),
            t.orders[i % 2].url("/api/orders"),
            ball.clone(),
            start.clone(),
        );
        set.spawn(async move {
            start.wait().await;
            api.post(
                &url,
                Some(&tok),
                json!({"items": [{"productId": ball, "quantity": 1}], "paymentMethod": "upi",
                    "shippingAddress": "1 Race Street, Pune"}),
            )
            .await
        });
    }
    let (mut sold, mut refused) = (0, 0);
    while let Some(r) = set.join_next().await {
        let (s, b) = r.unwrap();
        match s {
            StatusCode::CREATED => sold += 1,
            StatusCode::CONFLICT => refused += 1,
            other => panic!("unexpected {other}: {b}"),
        }
    }
    assert_eq!((sold, refused), (10, 54));
    assert_eq!(t.stock(admin, &ball).await, 0);
    let units: i64 = t.all_orders(admin, &ball).await.iter().map(|o| o.2).sum();
    assert_eq!(units, 10, "the orders hold exactly the 10 units");
    let (s, b) = t
        .api
        .get(
            &t.catalog
                .url(&format!("/api/products/{ball}/inventory/history?limit=100")),
            admin,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let entries = b["data"]["entries"].as_array().unwrap();
    let net: i64 = entries.iter().map(|e| e["change"].as_i64().unwrap()).sum();
    assert_eq!(net, 0, "ledger: +10 at creation, −1 per sale: {b}");
    assert_eq!(b["data"]["inventory"], 0);
}

async fn replica_killed(t: &mut Topo, admin: &str) {
    let (buyer, _) = t.register("steady@example.com", "customer").await;
    const START: i64 = 100_000;
    let item = t.product(admin, "Steady Seller", 1.0, START).await;
    let acked = Arc::new(Mutex::new(Vec::<i64>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..8 {
        let (api, urls, tok, item, acked, stop) = (
            t.api.clone(),
            [
                t.orders[0].url("/api/orders"),
                t.orders[1].url("/api/orders"),
            ],
            buyer.clone(),
            item.clone(),
            acked.clone(),
            stop.clone(),
        );
        workers.spawn(async move {
            let mut n = w;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let (s, b) = api
                    .post(
                        &urls[n % 2],
                        Some(&tok),
                        json!({"items": [{"productId": item, "quantity": 1 + (n % 3) as i64}],
                            "paymentMethod": "upi", "shippingAddress": "2 Load Lane, Pune"}),
                    )
                    .await;
                if s == StatusCode::CREATED {
                    acked
                        .lock()
                        .unwrap()
                        .push(b["data"]["order"]["id"].as_i64().unwrap());
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before_kill = acked.lock().unwrap().len();
    t.orders[0].kill();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.store(true, Ordering::Relaxed);
    while workers.join_next().await.is_some() {}
    let acked = acked.lock().unwrap().clone();
    assert!(
        before_kill > 5 && acked.len() > before_kill,
        "orders flowed before and after the kill: {before_kill} then {}",
        acked.len()
    );

    // The survivor takes the relay and the sweeper over.
    let survivor = &t.orders[1];
    eventually(
        "orders-2 takes both leases",
        Duration::from_secs(15),
        || {
            let log = survivor.log();
            async move {
                (log.contains("lease taken: this replica runs the job lease=orders-outbox-relay")
                    && log.contains("lease taken: this replica runs the job lease=orders-sweeper"))
                .then_some(())
            }
        },
    )
    .await;
    // Every acknowledged order is there; no reservation without an order
    // survives the sweeper (grace 3 s).
    let (orders, stock) = eventually(
        "stock = start − units the orders hold",
        Duration::from_secs(20),
        || async {
            let orders = t.all_orders(admin, &item).await;
            let held: i64 = orders.iter().map(|o| o.2).sum();
            let stock = t.stock(admin, &item).await;
            (stock == START - held).then_some((orders, stock))
        },
    )
    .await;
    let present: std::collections::HashSet<i64> = orders.iter().map(|o| o.0).collect();
    for id in &acked {
        assert!(present.contains(id), "acknowledged order {id} is missing");
    }
    assert!(stock < START);
    // The relay (now orders-2) delivered everything to analytics.
    eventually("the outbox is drained", Duration::from_secs(20), || async {
        (t.outbox_pending(admin).await == 0).then_some(())
    })
    .await;
    t.orders[0].start();
    wait_health(&t.api, &t.orders[0]).await;
}

async fn analytics_and_stream_outage(t: &mut Topo, admin: &str) {
    let (buyer, _) = t.register("flow@example.com", "customer").await;
    let item = t.product(admin, "Flow Item", 2.5, 100_000).await;
    let stop = Arc::new(AtomicBool::new(false));
    let placed = Arc::new(Mutex::new(0usize));
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..4 {
        let (api, urls, tok, item, stop, placed) = (
            t.api.clone(),
            [
                t.orders[0].url("/api/orders"),
                t.orders[1].url("/api/orders"),
            ],
            buyer.clone(),
            item.clone(),
            stop.clone(),
            placed.clone(),
        );
        workers.spawn(async move {
            let mut n = w;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let (s, _) = api
                    .post(
                        &urls[n % 2],
                        Some(&tok),
                        json!({"items": [{"productId": item, "quantity": 1}],
                            "paymentMethod": "card", "shippingAddress": "3 Flow Street, Pune"}),
                    )
                    .await;
                if s == StatusCode::CREATED {
                    *placed.lock().unwrap() += 1;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    t.analytics.kill();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    t.analytics.start();
    wait_health(&t.api, &t.analytics).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    // The event stream goes away while orders keep being placed.
    t.proxy.stop();
    let during = *placed.lock().unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, ready) = t.api.get(&t.orders[1].url("/ready"), admin).await;
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert!(ready["missing"].to_string().contains("events"), "{ready}");
    assert!(
        t.outbox_pending(admin).await > 0,
        "events wait in the outbox while Redis is away"
    );
    assert!(*placed.lock().unwrap() > during, "orders keep flowing");
    t.proxy.start().await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    while workers.join_next().await.is_some() {}

    let total = t.all_orders(admin, &item).await.len() as i64;
    assert!(total > 0);
    eventually(
        "the outbox drains after the outage",
        Duration::from_secs(30),
        || async { (t.outbox_pending(admin).await == 0).then_some(()) },
    )
    .await;
    let all = {
        let (_, b) = t
            .api
            .get(&t.orders[1].url("/api/orders?limit=1"), admin)
            .await;
        b["data"]["pagination"]["total"].as_i64().unwrap()
    };
    eventually(
        "analytics counts every order",
        Duration::from_secs(30),
        || async { (t.analytics_orders(admin).await == all).then_some(()) },
    )
    .await;
    // The other replica applied only part of the events itself (the group
    // shares them), yet its figures are whole: it followed the first one's.
    eventually(
        "the second analytics replica counts every order too",
        Duration::from_secs(30),
        || async { (t.analytics_orders_on(&t.analytics_2, admin).await == all).then_some(()) },
    )
    .await;
    let out = t.verify();
    assert!(
        out.status.success(),
        "verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("analytics verified"));
}

async fn catalog_stopped(t: &mut Topo, admin: &str) {
    let (buyer, _) = t.register("patient@example.com", "customer").await;
    let item = t.product(admin, "Patient Item", 5.0, 10).await;
    t.catalog.stop();
    let (s, b) = t.place(0, &buyer, &item, 1).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{b}");
    assert_eq!(b["success"], false);
    assert_eq!(b["code"], "unavailable", "{b}");
    assert!(b["message"].as_str().unwrap().contains("catalog"), "{b}");
    let (s, ready) = t.api.get(&t.orders[0].url("/ready"), admin).await;
    assert_eq!(
        s,
        StatusCode::OK,
        "orders still serve what needs no catalog"
    );
    assert_eq!(ready["checks"]["catalog"], "down", "{ready}");
    assert!(ready["missing"].to_string().contains("catalog"), "{ready}");
    // Reads that need no catalog still work.
    let (s, _) = t.api.get(&t.orders[0].url("/api/orders"), &buyer).await;
    assert_eq!(s, StatusCode::OK);
    // The gateways answer 503 JSON for the catalog's prefix, and still route the rest.
    for g in &t.gateways {
        let (s, b) = eventually(
            "the gateway gives up on the catalog",
            Duration::from_secs(10),
            || async {
                let (s, b) = t
                    .api
                    .call(Method::GET, &g.url("/api/products"), None, None)
                    .await;
                (s == StatusCode::SERVICE_UNAVAILABLE).then_some((s, b))
            },
        )
        .await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(b["success"], false, "{b}");
        let (s, _) = t.api.get(&g.url("/api/orders"), &buyer).await;
        assert_eq!(s, StatusCode::OK, "other prefixes still routed");
    }
    let nginx = t.nginx.as_ref().unwrap().url("/api/products");
    let (s, b) = t.api.call(Method::GET, &nginx, None, None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "through nginx too: {b}");
    t.catalog.start();
    wait_health(&t.api, &t.catalog).await;
    for g in &t.gateways {
        eventually(
            "the gateway routes to the catalog again",
            Duration::from_secs(10),
            || async {
                let (s, _) = t
                    .api
                    .call(Method::GET, &g.url("/api/products"), None, None)
                    .await;
                (s == StatusCode::OK).then_some(())
            },
        )
        .await;
    }
    let (s, b) = t.place(0, &buyer, &item, 1).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (_, ready) = t.api.get(&t.orders[0].url("/ready"), admin).await;
    assert_eq!(ready["status"], "ready", "{ready}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_split_shape_live() {
    let started = Instant::now();
    let mut t = topology().await;
    let (admin, _) = t.register("admin@example.com", "admin").await;
    story(&t, &admin).await;
    race(&t, &admin).await;
    replica_killed(&mut t, &admin).await;
    analytics_and_stream_outage(&mut t, &admin).await;
    catalog_stopped(&mut t, &admin).await;
    // The stream lives under the test's prefix: remove it.
    if let Ok(client) = redis::Client::open(redis_url())
        && let Ok(mut c) = client.get_multiplexed_async_connection().await
    {
        let _: Result<(), _> = redis::cmd("DEL")
            .arg(format!("{}events:orders", t.prefix))
            .query_async(&mut c)
            .await;
    }
    for s in [
        &mut t.users,
        &mut t.catalog,
        &mut t.analytics,
        &mut t.analytics_2,
    ] {
        s.stop();
    }
    t.nginx = None;
    for s in &mut t.gateways {
        s.stop();
    }
    for s in &mut t.orders {
        s.stop();
    }
    t.proxy.stop();
    eprintln!(
        "split shape live test: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
