//! Faults under mixed traffic (orders placed, statuses moved, products and
//! orders read) on the real databases, issue 14 item 4:
//!
//! - **A database restart** (PostgreSQL, MariaDB): the shared servers are never
//!   stopped. A TCP proxy of the test's own ([`common::proxy`]) sits between
//!   ecap and the server and "restarts" it: every open connection is cut and
//!   new ones are closed at once for a few seconds, then it accepts again.
//!   Requests fail fast with 503 `unavailable` (within `DB_ACQUIRE_TIMEOUT_MS`),
//!   `/ready` says 503, ecap recovers by itself, no acknowledged write is lost,
//!   stock equals the ledger and `ecap analytics verify` is clean.
//! - **A full disk** under the SQLite data directory (a small tmpfs mounted by
//!   the test; skipped with a message when `mount` is not allowed): writes get
//!   507 `insufficient_storage`, reads keep answering, `PRAGMA integrity_check`
//!   is ok and writes resume once space returns.
//! - **A slow database** (PostgreSQL, MariaDB): a transaction of the test holds
//!   a product's row lock; orders for it are cancelled by the server after
//!   `DB_STATEMENT_TIMEOUT_MS` and answered 503, no statement is left waiting
//!   on the server, the pool does not grow past its size and other routes keep
//!   answering.
//! - **The clock**: retention windows edge at the shop's local midnights
//!   (a zone with DST), and the scheduled clean-up erases exactly what ran out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/invariants.rs"]
mod invariants;
#[path = "common/load.rs"]
mod load;
#[path = "common/proxy.rs"]
mod proxy;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use common::TestApp;
use ecap_core::{config::Secret, db::Backend};
use load::{
    Ledger, Sample, Shop, every_acknowledged_order_is_there, first_order_after, load, summary,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

const STOCK: i64 = 1_000_000;

async fn shop(app: &TestApp, products: usize) -> Shop {
    let (admin, _) = app.admin().await;
    let mut ids = Vec::new();
    for i in 0..products {
        let r = app
            .post(
                "/api/products",
                Some(&admin),
                json!({"name": format!("Fault Item {i}"), "description": "survives faults",
                    "price": 10 + i, "inventory": STOCK, "category": "sports"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        ids.push(r.body["data"]["product"]["id"].as_str().unwrap().to_owned());
    }
    let mut customers = Vec::new();
    for i in 0..3 {
        customers.push(app.customer(&format!("fault{i}@example.com")).await.0);
    }
    Shop {
        admin,
        customers,
        products: ids,
    }
}

/// Waits for the outbox to drain and checks stock, ledger, reservations and
/// analytics against the orders.
async fn no_damage(app: &TestApp, shop: &Shop) {
    let db = ecap_core::db::Db::connect(&app.db.url, 2).await.unwrap();
    invariants::settle(&db, &db, &shop.products, STOCK, 20).await;
    db.close().await;
    let url = app.db.url.expose().to_owned();
    tokio::task::spawn_blocking(move || invariants::analytics_verify(&url))
        .await
        .unwrap();
}

// ---- a database restart ---------------------------------------------------

/// Acquire timeout of the restart test: the bound on how long a request may
/// wait for a server that is gone.
const ACQUIRE_MS: u64 = 1000;
const OUTAGE: Duration = Duration::from_secs(4);

async fn a_restart_fails_fast_and_recovers(backend: Backend) {
    let server = match backend {
        Backend::Postgres => std::env::var("ECAP_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| ecap_core::testing::POSTGRES_DEFAULT.into()),
        _ => std::env::var("ECAP_TEST_MYSQL_URL")
            .unwrap_or_else(|_| ecap_core::testing::MYSQL_DEFAULT.into()),
    };
    let proxy = proxy::Proxy::start(proxy::upstream_of(&server)).await;
    let app = common::spawn_app_with(backend, |c| {
        let direct = c.database_url.clone().unwrap();
        c.database_url = Some(Secret::new(proxy.route(direct.expose())));
        c.db_acquire_timeout_ms = ACQUIRE_MS;
        c.db_statement_timeout_ms = 5_000;
    })
    .await;
    let shop = shop(&app, 4).await;
    let stop = Arc::new(AtomicBool::new(false));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let tasks = load(&app.base, &shop, 8, stop.clone(), ledger.clone());

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let cut = Instant::now();
    proxy.down();
    // /ready says so while the server is away.
    let mut ready_down = None;
    while cut.elapsed() < OUTAGE - Duration::from_millis(500) {
        let r = app.get("/ready", None).await;
        if r.status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(r.body["status"], "unavailable", "{}", r.body);
            ready_down.get_or_insert(cut.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready_down = ready_down.expect("/ready answered 503 while the database was away");
    tokio::time::sleep(OUTAGE.saturating_sub(cut.elapsed())).await;
    let back = Instant::now();
    proxy.up();
    // Recovery: the first order placed after the server is back.
    let recovered = first_order_after(&ledger, back).await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let tail = Instant::now() - Duration::from_millis(1000);
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let r = app.get("/ready", None).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "/ready after recovery: {}",
        r.body
    );

    let ledger = std::mem::take(&mut *ledger.lock().unwrap());
    assert!(ledger.violations.is_empty(), "{:#?}", ledger.violations);
    let outage: Vec<&Sample> = ledger
        .samples
        .iter()
        .filter(|s| s.at >= cut && s.at < back)
        .collect();
    let unavailable: Vec<&&Sample> = outage.iter().filter(|s| s.status == 503).collect();
    assert!(
        !unavailable.is_empty(),
        "writes during the outage were answered 503: {}",
        summary(&ledger.samples)
    );
    let first_503 = unavailable
        .iter()
        .map(|s| s.at + s.took - cut)
        .min()
        .unwrap();
    let slowest = outage.iter().map(|s| s.took).max().unwrap();
    // Nothing hangs: a request waits for a connection at most the acquire
    // timeout, plus a statement already sent when the connection was cut.
    assert!(
        slowest <= Duration::from_millis(ACQUIRE_MS + 1500),
        "slowest request during the outage: {slowest:?}"
    );
    let tail_errors: Vec<&Sample> = ledger
        .samples
        .iter()
        .filter(|s| s.at >= tail && s.status >= 500)
        .collect();
    assert!(
        tail_errors.is_empty(),
        "errors long after recovery: {tail_errors:?}"
    );
    let placed = ledger.orders.len();
    eprintln!(
        "{}: first 503 {first_503:?} after the cut, slowest request during the outage \
         {slowest:?}, /ready 503 after {ready_down:?}, first order {recovered:?} after the \
         server returned; {placed} orders acknowledged; {}",
        backend.name(),
        summary(&ledger.samples)
    );
    every_acknowledged_order_is_there(&app.base, &shop.admin, &ledger).await;
    no_damage(&app, &shop).await;
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn retention_windows_hold_at_local_midnight() {
        super::retention_windows_hold_at_local_midnight(ecap_core::db::Backend::Postgres).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_restart_fails_fast_and_recovers() {
        super::a_restart_fails_fast_and_recovers(ecap_core::db::Backend::Postgres).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_slow_database_is_bounded_by_the_statement_timeout() {
        super::a_slow_database_is_bounded(ecap_core::db::Backend::Postgres).await;
    }
}

mod mysql {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn retention_windows_hold_at_local_midnight() {
        super::retention_windows_hold_at_local_midnight(ecap_core::db::Backend::MySql).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_restart_fails_fast_and_recovers() {
        super::a_restart_fails_fast_and_recovers(ecap_core::db::Backend::MySql).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_slow_database_is_bounded_by_the_statement_timeout() {
        super::a_slow_database_is_bounded(ecap_core::db::Backend::MySql).await;
    }
}

// ---- a slow database --------------------------------------------------------

const STATEMENT_MS: u64 = 1500;

async fn a_slow_database_is_bounded(backend: Backend) {
    let app = common::spawn_app_with(backend, |c| {
        c.db_acquire_timeout_ms = 1000;
        c.db_statement_timeout_ms = STATEMENT_MS;
        c.db_max_connections = 5;
    })
    .await;
    let shop = shop(&app, 2).await;
    let (locked, free) = (shop.products[0].clone(), shop.products[1].clone());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let place = {
        let (client, base, token) = (client.clone(), app.base.clone(), shop.customers[0].clone());
        move |product: String| {
            let (client, base, token) = (client.clone(), base.clone(), token.clone());
            async move {
                let at = Instant::now();
                let r = client
                    .post(format!("{base}/api/orders"))
                    .bearer_auth(&token)
                    .json(&json!({"items": [{"productId": product, "quantity": 1}],
                    "paymentMethod": "cod", "shippingAddress": "1 Slow Lane"}))
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.unwrap(), at.elapsed())
            }
        }
    };
    assert_eq!(place(locked.clone()).await.0, 201);
    let rss_before = rss_kib();

    // Another client holds the product's row lock in an open transaction.
    let holder = ecap_core::db::Db::connect(&app.db.url, 2).await.unwrap();
    let mut tx = holder.pool().begin().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT stock FROM products WHERE id = '{locked}' FOR UPDATE"
    )))
    .fetch_all(&mut *tx)
    .await
    .unwrap();

    // Three clients keep ordering the locked product, as many read and order
    // the other one.
    let stop = Arc::new(AtomicBool::new(false));
    let blocked: Vec<_> = (0..3)
        .map(|_| {
            let (stop, place, locked) = (stop.clone(), place.clone(), locked.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    seen.push(place(locked.clone()).await);
                }
                seen
            })
        })
        .collect();
    let others: Vec<_> = (0..3)
        .map(|n| {
            let (stop, place, free) = (stop.clone(), place.clone(), free.clone());
            let (client, base) = (client.clone(), app.base.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    if n == 0 {
                        seen.push(place(free.clone()).await);
                    } else {
                        let at = Instant::now();
                        let r = client
                            .get(format!("{base}/api/products?limit=5"))
                            .send()
                            .await
                            .unwrap();
                        seen.push((r.status().as_u16(), Value::Null, at.elapsed()));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                seen
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(STATEMENT_MS * 3)).await;
    // While the lock is still held, nothing of ours waits on the server: the
    // cancelled statements are gone (only the three in flight at most).
    let waiting = waiting_statements(&holder, &app).await;
    let pool = pool_in_use(&app).await;
    stop.store(true, Ordering::SeqCst);
    let mut blocked_seen = Vec::new();
    for t in blocked {
        blocked_seen.extend(t.await.unwrap());
    }
    let mut other_seen = Vec::new();
    for t in others {
        other_seen.extend(t.await.unwrap());
    }
    tx.rollback().await.unwrap();
    let released = Instant::now();
    let (status, body, _) = place(locked.clone()).await;
    assert_eq!(status, 201, "orders resume once the lock is gone: {body}");
    let resumed = released.elapsed();
    let rss_after = rss_kib();

    let slowest_blocked = blocked_seen.iter().map(|s| s.2).max().unwrap();
    for (status, body, _) in &blocked_seen {
        assert_eq!(*status, 503, "an order stuck behind the lock: {body}");
        assert_eq!(body["code"], "unavailable", "{body}");
    }
    assert!(
        slowest_blocked <= Duration::from_millis(STATEMENT_MS + 1500),
        "the statement timeout bounds the wait: {slowest_blocked:?}"
    );
    let other_ok = other_seen
        .iter()
        .filter(|s| s.0 == 200 || s.0 == 201)
        .count();
    let slowest_other = other_seen.iter().map(|s| s.2).max().unwrap();
    assert!(
        other_ok == other_seen.len(),
        "other routes keep answering: {:?}",
        other_seen.iter().filter(|s| s.0 >= 300).collect::<Vec<_>>()
    );
    assert!(
        waiting <= 3,
        "{waiting} statements still waiting on the server"
    );
    assert!(pool <= 5, "pool grew past its size: {pool}");
    let grown = rss_after.saturating_sub(rss_before);
    assert!(grown < 64 * 1024, "memory grew by {grown} KiB");
    eprintln!(
        "{}: {} orders behind the lock, all 503, slowest {slowest_blocked:?}; {} other \
         requests all answered, slowest {slowest_other:?}; {waiting} statements waiting on the \
         server while locked, pool in use {pool}/5; resumed {resumed:?} after the lock went; \
         RSS {rss_before} → {rss_after} KiB",
        backend.name(),
        blocked_seen.len(),
        other_seen.len()
    );
    holder.close().await;
}

/// This test process's resident memory (the app runs in it).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Statements of the app's database currently waiting on the server.
async fn waiting_statements(holder: &ecap_core::db::Db, app: &TestApp) -> i64 {
    let name = app.db.url.expose().rsplit('/').next().unwrap().to_owned();
    let sql = match app.db.backend {
        Backend::Postgres => format!(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM pg_stat_activity WHERE datname = '{name}' \
             AND wait_event_type = 'Lock'"
        ),
        _ => format!(
            "SELECT CAST(COUNT(*) AS SIGNED) FROM information_schema.PROCESSLIST \
             WHERE DB = '{name}' AND COMMAND = 'Query' AND ID <> CONNECTION_ID()"
        ),
    };
    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_one(holder.pool())
        .await
        .unwrap();
    n
}

/// Connections the app's pools have checked out, from `/metrics`.
async fn pool_in_use(app: &TestApp) -> i64 {
    let text = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("db_pool_connections") && l.contains("in_use"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as i64)
        .max()
        .unwrap_or(0)
}

// ---- a full disk --------------------------------------------------------------

/// A small tmpfs mounted for one test, unmounted when dropped.
struct Mount(std::path::PathBuf);

impl Mount {
    /// `None` (and a message) when this machine does not let the test mount.
    fn tmpfs(dir: &std::path::Path, size: &str) -> Option<Self> {
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Self(dir.to_path_buf())),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs for the disk-full test (needs root): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: no mount command for the disk-full test: {e}");
                None
            }
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Fills the file system holding `dir` with one file until the disk is full.
fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        if f.write_all(&chunk).and_then(|()| f.sync_all()).is_err() {
            break;
        }
    }
    // The last bytes a partial chunk could not take.
    let mut byte = [0u8; 1];
    while f.write_all(&byte).and_then(|()| f.sync_all()).is_ok() {
        byte[0] = byte[0].wrapping_add(1);
    }
    path
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn retention_windows_hold_at_local_midnight() {
        super::retention_windows_hold_at_local_midnight(ecap_core::db::Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_full_disk_is_507_and_corrupts_nothing() {
        super::a_full_disk_is_507_and_corrupts_nothing().await;
    }
}

async fn a_full_disk_is_507_and_corrupts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_mount) = Mount::tmpfs(dir.path(), "24m") else {
        return;
    };
    let file = dir.path().join("ecap.db");
    let url = format!("sqlite://{}", file.display());
    let mut app = common::spawn_app_with(Backend::Sqlite, |c| {
        c.database_url = Some(Secret::new(url.clone()));
        c.ecap_data_dir = dir.path().to_path_buf();
    })
    .await;
    // The checks below read the file on the tmpfs, not the test database's default.
    app.db.url = Secret::new(url.clone());
    let shop = shop(&app, 4).await;
    let stop = Arc::new(AtomicBool::new(false));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let tasks = load(&app.base, &shop, 6, stop.clone(), ledger.clone());
    tokio::time::sleep(Duration::from_millis(1000)).await;

    // The write-ahead log emptied, then not a byte left.
    let side = ecap_core::db::Db::connect(&app.db.url, 1).await.unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(side.pool())
        .await
        .unwrap();
    let full = Instant::now();
    let filler = fill(dir.path());
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let freed = Instant::now();
    std::fs::remove_file(&filler).unwrap();
    let resumed = first_order_after(&ledger, freed).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let ledger = std::mem::take(&mut *ledger.lock().unwrap());
    assert!(ledger.violations.is_empty(), "{:#?}", ledger.violations);
    let during: Vec<&Sample> = ledger
        .samples
        .iter()
        .filter(|s| s.at >= full + Duration::from_millis(200) && s.at + s.took < freed)
        .collect();
    let refused = during.iter().filter(|s| s.status == 507).count();
    let placed = during
        .iter()
        .filter(|s| s.kind == "place" && s.status == 201)
        .count();
    let reads = during.iter().filter(|s| s.kind == "read").count();
    let reads_ok = during
        .iter()
        .filter(|s| s.kind == "read" && s.status == 200)
        .count();
    let slowest = during.iter().map(|s| s.took).max().unwrap();
    assert!(
        refused > 0,
        "writes on a full disk: {}",
        summary(&ledger.samples)
    );
    assert!(
        reads > 0 && reads_ok == reads,
        "reads on a full disk: {}",
        summary(&ledger.samples)
    );
    assert!(
        slowest < Duration::from_secs(12),
        "slowest request on a full disk: {slowest:?}"
    );
    let (check,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(side.pool())
        .await
        .unwrap();
    assert_eq!(check, "ok");
    side.close().await;
    eprintln!(
        "sqlite: on the full disk {refused} writes answered 507, {placed} orders still placed, \
         {reads_ok}/{reads} reads answered, slowest {slowest:?}; orders resumed {resumed:?} \
         after the space came back; {} orders acknowledged; {}",
        ledger.orders.len(),
        summary(&ledger.samples)
    );
    every_acknowledged_order_is_there(&app.base, &shop.admin, &ledger).await;
    no_damage(&app, &shop).await;
}

// ---- the clock: retention windows in the shop's time zone ---------------------

const DAY_MS: i64 = 86_400_000;
/// A shop whose zone has DST (the window's edges are checked at its local midnights).
const ZONE: &str = "Europe/Berlin";

/// Retention is 30 × 24 h of elapsed time, as in the original (a DST change
/// inside the window neither lengthens nor shortens it; the unit tests in
/// `ecap_orders::domain` pin that across both of Berlin's changes). Here, on
/// every database, with the shop in [`ZONE`]: orders cancelled at the local
/// midnights on either side of the 30-day edge and a minute on either side of
/// it are shown to their customer or hidden accordingly, and the scheduled
/// clean-up (its first run at start) erases exactly the hidden orders whose
/// 30 days have run out.
async fn retention_windows_hold_at_local_midnight(backend: Backend) {
    let app = common::spawn_app_with(backend, |c| {
        c.ecap_timezone = ZONE.into();
        c.ecap_cleanup_interval_secs = 0;
    })
    .await;
    let (admin, _) = app.admin().await;
    let r = app
        .post(
            "/api/products",
            Some(&admin),
            json!({"name": "Clock Item", "description": "keeps time", "price": 10,
                "inventory": 100, "category": "sports"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let product = r.body["data"]["product"]["id"].as_str().unwrap().to_owned();
    let (customer, _) = app.customer("clock@example.com").await;
    let mut ids = Vec::new();
    for _ in 0..6 {
        let r = app
            .post(
                "/api/orders",
                Some(&customer),
                json!({"items": [{"productId": product, "quantity": 1}], "paymentMethod": "cod",
                    "shippingAddress": "1 Clock Lane"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        ids.push(r.body["data"]["order"]["id"].as_i64().unwrap());
    }
    for id in &ids[..4] {
        let r = app
            .put(
                &format!("/api/orders/{id}/status"),
                Some(&admin),
                json!({"status": "cancelled", "cancellationReason": "clock test"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    for id in &ids[4..] {
        let r = app
            .delete(&format!("/api/orders/{id}/soft"), Some(&customer))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }

    let now = ecap_core::clock::now_ms();
    let edge = now - 30 * DAY_MS;
    let tz = jiff::tz::TimeZone::get(ZONE).unwrap();
    let day = jiff::Timestamp::from_millisecond(edge)
        .unwrap()
        .to_zoned_datetime(tz);
    let midnight_before = day.start_of_day().unwrap().timestamp().as_millisecond();
    let midnight_after = day
        .tomorrow()
        .unwrap()
        .start_of_day()
        .unwrap()
        .timestamp()
        .as_millisecond();
    // (order, cancelled at, shown to its customer)
    let cancelled = [
        (ids[0], midnight_after, true),
        (ids[1], midnight_before, false),
        (ids[2], edge + 60_000, true),
        (ids[3], edge - 60_000, false),
    ];
    let db = ecap_core::db::Db::connect(&app.db.url, 2).await.unwrap();
    let set = |sql: String| {
        let db = db.clone();
        async move {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(db.pool())
                .await
                .unwrap();
        }
    };
    for (id, at, _) in cancelled {
        set(format!(
            "UPDATE orders SET cancelled_at = {at} WHERE id = {id}"
        ))
        .await;
    }
    // Hidden 30 days and a minute ago (expired), and 29 days and 23 hours ago.
    set(format!(
        "UPDATE orders SET hidden_at = {}, hidden_expires_at = {} WHERE id = {}",
        edge - 60_000,
        now - 60_000,
        ids[4]
    ))
    .await;
    set(format!(
        "UPDATE orders SET hidden_at = {}, hidden_expires_at = {} WHERE id = {}",
        edge + 3_600_000,
        now + 3_600_000,
        ids[5]
    ))
    .await;

    let listed = app.get("/api/orders?limit=100", Some(&customer)).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let listed: Vec<i64> = listed.body["data"]["orders"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["id"].as_i64())
        .collect();
    for (id, at, shown) in cancelled {
        let r = app.get(&format!("/api/orders/{id}"), Some(&customer)).await;
        let expected = if shown {
            StatusCode::OK
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(
            r.status,
            expected,
            "order {id} cancelled {} h before now ({}): {}",
            (now - at) as f64 / 3_600_000.0,
            jiff::Timestamp::from_millisecond(at).unwrap(),
            r.body
        );
        assert_eq!(
            listed.contains(&id),
            shown,
            "order {id} in the customer's list"
        );
    }

    // The scheduled clean-up: a second process on the same database runs it at start.
    let mut config = app.config.clone();
    config.ecap_cleanup_interval_secs = 3600;
    let (_platform, _addr, _stop) = common::serve(&config).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let state = |id: i64| {
        let db = db.clone();
        async move {
            let (status, address): (Option<String>, Option<String>) =
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT restoration_status, shipping_address FROM orders WHERE id = {id}"
                )))
                .fetch_one(db.pool())
                .await
                .unwrap();
            (status, address)
        }
    };
    loop {
        let (status, address) = state(ids[4]).await;
        if status.as_deref() == Some("expired") {
            assert!(
                address.as_deref().is_none_or(|a| a == "null"),
                "the address of an expired hidden order is erased: {address:?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the clean-up did not run");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, address) = state(ids[5]).await;
    assert_ne!(status.as_deref(), Some("expired"), "{address:?}");
    assert!(address.is_some_and(|a| a.contains("Clock Lane")));
    db.close().await;
    eprintln!(
        "{}: the 30-day edge {} in {ZONE}; local midnights {} (shown) and {} (hidden)",
        backend.name(),
        jiff::Timestamp::from_millisecond(edge).unwrap(),
        jiff::Timestamp::from_millisecond(midnight_after).unwrap(),
        jiff::Timestamp::from_millisecond(midnight_before).unwrap()
    );
}
