//! Analytics against the ground truth: random order histories (imported
//! history over a year and live orders through the API, then random status
//! changes, cancellations, refunds, deletions and restorations), their events
//! delivered duplicated and out of order, and every endpoint compared with SQL
//! over the orders tables — on SQLite, PostgreSQL and MariaDB. Also the
//! authorization matrix, bad input, the live stream and CSV export.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use common::{TestApp, assert_error, spawn_platform};
use ecap_core::{
    db::{Backend, Db},
    events::OrderEvent,
    ports::ReservedLine,
};
use ecap_orders::{domain::Status, snapshot::OrdersSnapshot, store::ImportedOrder};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// xorshift64*: reproducible from the seed printed at the start.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

fn seed() -> u64 {
    let s = std::env::var("ECAP_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("ECAP_TEST_SEED={s}");
    s
}

const TZ: &str = "Asia/Kolkata";
const DAY_MS: i64 = 86_400_000;

struct Product {
    id: String,
    name: String,
    category: String,
    cents: i64,
}

async fn products(app: &TestApp, admin: &str) -> Vec<Product> {
    let mut out = Vec::new();
    for (i, (cat, price)) in [
        ("electronics", 199.99),
        ("books", 12.5),
        ("books", 7.25),
        ("sports", 45.0),
        ("home", 3.1),
    ]
    .iter()
    .enumerate()
    {
        let name = format!("Analytics product {i}");
        let r = app
            .post(
                "/api/products",
                Some(admin),
                json!({"name": name, "description": "for analytics tests", "price": price,
                    "inventory": 100000, "category": cat}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let p = &r.body["data"]["product"];
        out.push(Product {
            id: p["id"].as_str().unwrap().to_owned(),
            name,
            category: p["category"].as_str().unwrap().to_owned(),
            cents: (price * 100.0_f64).round() as i64,
        });
    }
    out
}

/// Everything the test needs from one platform.
struct World {
    app: TestApp,
    platform: ecap::Platform,
    admin: String,
    db: Db,
    /// order id → owner's token
    owners: HashMap<i64, String>,
}

async fn build_history(backend: Backend, rng: &mut Rng) -> World {
    let (app, platform) = spawn_platform(backend, |c| c.ecap_timezone = TZ.into()).await;
    // The test delivers the events itself (duplicated, out of order).
    for t in &platform.background {
        t.abort();
    }
    let (admin, _) = app.admin().await;
    let products = products(&app, &admin).await;
    let mut customers = Vec::new();
    for i in 0..6 {
        customers.push(app.customer(&format!("an{i}@example.com")).await);
    }
    let orders = platform.orders.clone().unwrap();
    let now = ecap_core::clock::now_ms();
    // A year of imported history, in every status.
    let statuses = Status::ALL;
    let mut imported = Vec::new();
    let mut import_owner = Vec::new();
    for _ in 0..45 {
        let (token, user) = rng.pick(&customers).clone();
        let lines: Vec<ReservedLine> = (0..1 + rng.below(3))
            .map(|_| {
                let p = rng.pick(&products);
                ReservedLine {
                    product_id: p.id.clone(),
                    name: p.name.clone(),
                    category: p.category.clone(),
                    quantity: 1 + rng.below(4) as i64,
                    unit_price_cents: p.cents,
                }
            })
            .collect();
        // Some exactly on local midnight in Kolkata (18:30 UTC).
        let placed_at = if rng.below(6) == 0 {
            let d = now - now.rem_euclid(DAY_MS) - rng.below(300) as i64 * DAY_MS;
            d - 5 * 3_600_000 - 1_800_000
        } else {
            now - rng.below(400 * DAY_MS as u64) as i64
        };
        imported.push(ImportedOrder {
            user_id: user,
            user_email: None,
            lines,
            payment_method: rng
                .pick(&["upi", "card", "cod", "wallet", "netbanking"])
                .to_string(),
            shipping_address: json!({"street": "1 Test Road", "city": "Pune"}),
            placed_at,
            status: *rng.pick(&statuses),
            status_at: Some(placed_at + 3_600_000),
        });
        import_owner.push(token);
    }
    let ids = orders.import(&imported).await.unwrap();
    let mut owners: HashMap<i64, String> = ids.into_iter().zip(import_owner).collect();
    // Live orders through the API.
    for _ in 0..12 {
        let (token, _) = rng.pick(&customers).clone();
        let items: Vec<Value> = (0..1 + rng.below(3))
            .map(|_| json!({"productId": rng.pick(&products).id, "quantity": 1 + rng.below(3)}))
            .collect();
        let r = app
            .post(
                "/api/orders",
                Some(&token),
                json!({"items": items, "paymentMethod": rng.pick(&["upi", "card", "cod"]),
                    "shippingAddress": {"street": "2 Live Lane", "city": "Goa", "state": "GA",
                        "zipCode": "403001", "country": "India"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        owners.insert(r.body["data"]["order"]["id"].as_i64().unwrap(), token);
    }
    // Random operations; refused ones (409/400) are part of the story.
    let ids: Vec<i64> = owners.keys().copied().collect();
    for _ in 0..90 {
        let id = *rng.pick(&ids);
        let owner = owners[&id].clone();
        match rng.below(8) {
            0..=2 => {
                let to = rng.pick(&[
                    "processing",
                    "shipped",
                    "out_for_delivery",
                    "delivered",
                    "cancelled",
                    "refund_processing",
                    "refunded",
                ]);
                app.put(
                    &format!("/api/orders/{id}/status"),
                    Some(&admin),
                    json!({"status": to}),
                )
                .await;
            }
            3 => {
                app.post(
                    &format!("/api/orders/{id}/cancel-request"),
                    Some(&owner),
                    json!({"reason": "Changed my mind about this"}),
                )
                .await;
            }
            4 => {
                let verdict = if rng.below(2) == 0 {
                    "approve"
                } else {
                    "reject"
                };
                app.put(
                    &format!("/api/orders/{id}/{verdict}-cancel"),
                    Some(&admin),
                    json!({"reason": "checked by the test"}),
                )
                .await;
            }
            5 => {
                app.call(
                    reqwest::Method::DELETE,
                    &format!("/api/orders/{id}"),
                    Some(&admin),
                    Some(json!({"reason": "test deletion"})),
                )
                .await;
            }
            _ => {
                app.call(
                    reqwest::Method::DELETE,
                    &format!("/api/orders/{id}/soft"),
                    Some(&owner),
                    Some(json!({"reason": "tidy"})),
                )
                .await;
                app.post(
                    &format!("/api/orders/{id}/restore-request"),
                    Some(&owner),
                    json!({"reason": "I need this order back"}),
                )
                .await;
                app.post(
                    &format!("/api/orders/{id}/restoration/approve"),
                    Some(&admin),
                    json!({}),
                )
                .await;
            }
        }
    }
    let db = Db::connect(&app.db.url, 2).await.unwrap();
    World {
        app,
        platform,
        admin,
        db,
        owners,
    }
}

async fn outbox_events(db: &Db) -> Vec<OrderEvent> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT payload FROM order_outbox ORDER BY id")
        .fetch_all(db.pool())
        .await
        .unwrap();
    rows.iter()
        .map(|(p,)| serde_json::from_str(p).unwrap())
        .collect()
}

/// Every event once or more, shuffled, in random batches.
async fn deliver_shuffled(w: &World, rng: &mut Rng, events: &[OrderEvent]) {
    let mut list: Vec<OrderEvent> = Vec::new();
    for e in events {
        for _ in 0..1 + rng.below(3) {
            list.push(e.clone());
        }
    }
    for i in (1..list.len()).rev() {
        list.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let analytics = w.platform.analytics.clone().unwrap();
    let mut rest = &list[..];
    while !rest.is_empty() {
        let n = (1 + rng.below(9) as usize).min(rest.len());
        analytics.apply(&rest[..n]).await.unwrap();
        rest = &rest[n..];
    }
}

fn ms(iso: &Value) -> i64 {
    iso.as_str()
        .unwrap()
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond()
}

fn cents(v: &Value) -> i64 {
    (v.as_f64().unwrap() * 100.0).round() as i64
}

const COUNTED: &str = "o.status NOT IN ('cancelled', 'refunded', 'deleted')";

/// `WHERE` bounds as bind parameters (a statement per shape, not per value:
/// MariaDB's prepared-statement cache stays warm).
fn bounds(b: Backend) -> (&'static str, &'static str) {
    match b {
        Backend::Postgres => ("$1", "$2"),
        _ => ("?", "?"),
    }
}

fn big(b: Backend, e: &str) -> String {
    match b {
        Backend::MySql => format!("CAST(COALESCE({e}, 0) AS SIGNED)"),
        _ => format!("CAST(COALESCE({e}, 0) AS BIGINT)"),
    }
}

/// The whole-shop figures of `[a, b)` by SQL over the orders tables.
#[derive(Debug, PartialEq, Eq, Default, Clone, Copy)]
struct Truth {
    orders: i64,
    gross: i64,
    net: i64,
    counted: i64,
    cancelled: i64,
    refunded: i64,
    refund: i64,
    customers: i64,
    units: i64,
    new_customers: i64,
}

async fn truth(db: &Db, a: i64, b: i64) -> Truth {
    let k = db.backend();
    let (pa, pb) = bounds(k);
    let sql = format!(
        "SELECT {}, {}, {}, {}, {}, {}, {}, {} FROM orders o WHERE o.created_at >= {pa} AND o.created_at < {pb}",
        big(k, "COUNT(*)"),
        big(k, "SUM(o.total_cents)"),
        big(
            k,
            &format!("SUM(CASE WHEN {COUNTED} THEN o.total_cents ELSE 0 END)")
        ),
        big(k, &format!("SUM(CASE WHEN {COUNTED} THEN 1 ELSE 0 END)")),
        big(k, "SUM(CASE WHEN o.status = 'cancelled' THEN 1 ELSE 0 END)"),
        big(k, "SUM(CASE WHEN o.status = 'refunded' THEN 1 ELSE 0 END)"),
        big(
            k,
            "SUM(CASE WHEN o.status = 'refunded' THEN o.total_cents ELSE 0 END)"
        ),
        big(k, "COUNT(DISTINCT o.user_id)"),
    );
    let r: (i64, i64, i64, i64, i64, i64, i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(a)
        .bind(b)
        .fetch_one(db.pool())
        .await
        .unwrap();
    let sql = format!(
        "SELECT {} FROM order_items i JOIN orders o ON o.id = i.order_id \
         WHERE o.created_at >= {pa} AND o.created_at < {pb}",
        big(k, "SUM(i.quantity)")
    );
    let (units,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(a)
        .bind(b)
        .fetch_one(db.pool())
        .await
        .unwrap();
    let sql = format!(
        "SELECT {} FROM (SELECT user_id, MIN(created_at) AS f FROM orders GROUP BY user_id) x \
         WHERE x.f >= {pa} AND x.f < {pb}",
        big(k, "COUNT(*)")
    );
    let (new_customers,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(a)
        .bind(b)
        .fetch_one(db.pool())
        .await
        .unwrap();
    Truth {
        orders: r.0,
        gross: r.1,
        net: r.2,
        counted: r.3,
        cancelled: r.4,
        refunded: r.5,
        refund: r.6,
        customers: r.7,
        units,
        new_customers,
    }
}

/// Rows of a breakdown by SQL: key → (orders, units, units sold, gross, net).
async fn truth_rows(db: &Db, dim: &str, a: i64, b: i64) -> HashMap<String, [i64; 5]> {
    let k = db.backend();
    let (pa, pb) = bounds(k);
    let sql = match dim {
        "product" | "category" => {
            let col = if dim == "product" {
                "i.product_id"
            } else {
                "i.category"
            };
            format!(
                "SELECT {col}, {}, {}, {}, {}, {} FROM order_items i JOIN orders o ON o.id = i.order_id \
                 WHERE o.created_at >= {pa} AND o.created_at < {pb} GROUP BY {col}",
                big(k, "COUNT(DISTINCT o.id)"),
                big(k, "SUM(i.quantity)"),
                big(
                    k,
                    &format!("SUM(CASE WHEN {COUNTED} THEN i.quantity ELSE 0 END)")
                ),
                big(k, "SUM(i.subtotal_cents)"),
                big(
                    k,
                    &format!("SUM(CASE WHEN {COUNTED} THEN i.subtotal_cents ELSE 0 END)")
                ),
            )
        }
        _ => {
            let col = if dim == "status" {
                "o.status"
            } else {
                "o.payment_method"
            };
            format!(
                "SELECT {col}, {}, {}, {}, {}, {} FROM orders o \
                 WHERE o.created_at >= {pa} AND o.created_at < {pb} GROUP BY {col}",
                big(k, "COUNT(*)"),
                big(k, "0"),
                big(k, "0"),
                big(k, "SUM(o.total_cents)"),
                big(
                    k,
                    &format!("SUM(CASE WHEN {COUNTED} THEN o.total_cents ELSE 0 END)")
                ),
            )
        }
    };
    let rows: Vec<(String, i64, i64, i64, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(a)
        .bind(b)
        .fetch_all(db.pool())
        .await
        .unwrap();
    rows.into_iter()
        .map(|r| (r.0, [r.1, r.2, r.3, r.4, r.5]))
        .collect()
}

fn card(kpis: &Value, name: &str) -> (i64, i64) {
    let c = &kpis[name];
    let money = ["grossSales", "netRevenue", "refundAmount", "aov"].contains(&name);
    let f = |v: &Value| {
        if money {
            cents(v)
        } else {
            v.as_f64().unwrap() as i64
        }
    };
    (f(&c["value"]), f(&c["previous"]))
}

fn aov(t: &Truth) -> i64 {
    if t.counted == 0 {
        0
    } else {
        (t.net as f64 / t.counted as f64).round() as i64
    }
}

/// Every endpoint against SQL.
async fn check_endpoints(w: &World) {
    let app = &w.app;
    let admin = Some(w.admin.as_str());
    let db = &w.db;
    // Dashboard KPI cards for every period, with the previous period.
    let mut custom = String::from("from=2025-12-30&to=2026-02-02");
    for period in ["today", "7d", "30d", "90d", "12m", "custom"] {
        let q = if period == "custom" {
            std::mem::take(&mut custom)
        } else {
            format!("period={period}")
        };
        let r = app
            .get(&format!("/api/analytics/dashboard?{q}&tz={TZ}"), admin)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let d = &r.body["data"];
        let p = &d["period"];
        let cur = truth(db, ms(&p["start"]), ms(&p["end"])).await;
        let prev = truth(db, ms(&p["previousStart"]), ms(&p["previousEnd"])).await;
        let k = &d["kpis"];
        for (name, c, pv) in [
            ("orders", cur.orders, prev.orders),
            ("grossSales", cur.gross, prev.gross),
            ("netRevenue", cur.net, prev.net),
            ("countedOrders", cur.counted, prev.counted),
            ("units", cur.units, prev.units),
            ("customers", cur.customers, prev.customers),
            ("newCustomers", cur.new_customers, prev.new_customers),
            (
                "returningCustomers",
                cur.customers - cur.new_customers,
                prev.customers - prev.new_customers,
            ),
            ("cancellations", cur.cancelled, prev.cancelled),
            ("refunds", cur.refunded, prev.refunded),
            ("refundAmount", cur.refund, prev.refund),
            ("aov", aov(&cur), aov(&prev)),
        ] {
            assert_eq!(card(k, name), (c, pv), "{period} {name}: {}", k[name]);
        }
        // The contract's counters.
        let all = truth(db, 0, i64::MAX / 2).await;
        assert_eq!(d["totalOrders"].as_i64().unwrap(), all.orders);
        assert_eq!(cents(&d["totalRevenue"]), all.net);
        assert_eq!(d["itemsSold"].as_i64().unwrap(), all.units);
        assert_eq!(cents(&d["grossSales"]), all.gross);
        let today_r = app
            .get(
                &format!("/api/analytics/dashboard?period=today&tz={TZ}"),
                admin,
            )
            .await;
        let tp = &today_r.body["data"]["period"];
        let today = truth(db, ms(&tp["start"]), ms(&tp["end"])).await;
        assert_eq!(d["ordersToday"].as_i64().unwrap(), today.orders);
        assert_eq!(cents(&d["revenueToday"]), today.net);
        // Statuses (all time) and the top products by units sold.
        let statuses = truth_rows(db, "status", 0, i64::MAX / 2).await;
        for s in d["statusBreakdown"].as_array().unwrap() {
            let want = statuses
                .get(s["status"].as_str().unwrap())
                .copied()
                .unwrap_or_default();
            assert_eq!(s["count"].as_i64().unwrap(), want[0], "{s}");
            assert_eq!(cents(&s["revenue"]), want[3], "{s}");
        }
        assert_eq!(
            d["deliveredOrders"].as_i64().unwrap(),
            statuses.get("delivered").map_or(0, |s| s[0])
        );
        let products = truth_rows(db, "product", 0, i64::MAX / 2).await;
        let mut want: Vec<(String, i64, i64)> = products
            .iter()
            .filter(|(_, v)| v[2] > 0)
            .map(|(k, v)| (k.clone(), v[2], v[4]))
            .collect();
        want.sort_by(|a, b| (b.1, b.2, &a.0).cmp(&(a.1, a.2, &b.0)));
        want.truncate(10);
        let got: Vec<(String, i64, i64)> = d["topProducts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["productId"].as_str().unwrap().to_owned(),
                    p["sales"].as_i64().unwrap(),
                    cents(&p["revenue"]),
                )
            })
            .collect();
        assert_eq!(got, want);
    }
    // Series: every bucket against SQL.
    for (q, expect_len) in [
        ("period=90d&granularity=day", Some(90)),
        ("period=90d&granularity=week", None),
        ("period=12m&granularity=month", Some(12)),
        ("period=today&granularity=hour", None),
        ("period=7d", Some(7)),
        ("from=2025-12-01&to=2026-03-31&granularity=week", None),
    ] {
        let r = app
            .get(&format!("/api/analytics/revenue?{q}&tz={TZ}"), admin)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.body);
        let d = &r.body["data"];
        let points = d["revenue"].as_array().unwrap();
        if let Some(n) = expect_len {
            assert_eq!(points.len(), n, "{q}");
        }
        let end = ms(&d["range"]["end"]);
        assert_eq!(ms(&points[0]["start"]), ms(&d["range"]["start"]));
        for (i, pt) in points.iter().enumerate() {
            let a = ms(&pt["start"]);
            let b = points.get(i + 1).map_or(end, |n| ms(&n["start"]));
            let t = truth(db, a, b).await;
            assert_eq!(pt["orders"].as_i64().unwrap(), t.orders, "{q} {pt}");
            assert_eq!(cents(&pt["revenue"]), t.net, "{q} {pt}");
            assert_eq!(cents(&pt["grossSales"]), t.gross, "{q} {pt}");
            assert_eq!(pt["units"].as_i64().unwrap(), t.units, "{q} {pt}");
            assert_eq!(pt["customers"].as_i64().unwrap(), t.customers, "{q} {pt}");
            assert_eq!(
                pt["newCustomers"].as_i64().unwrap(),
                t.new_customers,
                "{q} {pt}"
            );
        }
    }
    // The 12-month daily series: complete, and the days with orders exact.
    let r = app
        .get(
            &format!("/api/analytics/revenue?period=12m&granularity=day&tz={TZ}"),
            admin,
        )
        .await;
    let d = &r.body["data"];
    let points = d["revenue"].as_array().unwrap();
    assert!(points.len() >= 334, "{}", points.len());
    let end = ms(&d["range"]["end"]);
    let whole = truth(db, ms(&d["range"]["start"]), end).await;
    let sum: i64 = points.iter().map(|p| p["orders"].as_i64().unwrap()).sum();
    assert_eq!(sum, whole.orders);
    for (i, pt) in points.iter().enumerate() {
        if pt["orders"].as_i64().unwrap() > 0 {
            let b = points.get(i + 1).map_or(end, |n| ms(&n["start"]));
            let t = truth(db, ms(&pt["start"]), b).await;
            assert_eq!(cents(&pt["revenue"]), t.net, "{pt}");
            assert_eq!(pt["orders"].as_i64().unwrap(), t.orders, "{pt}");
        }
    }
    // Breakdowns over two periods.
    for period in ["12m", "30d"] {
        for (route, field, dim) in [
            ("top-products", "products", "product"),
            ("categories", "categories", "category"),
            ("status-breakdown", "statuses", "status"),
            ("payment-methods", "paymentMethods", "payment"),
        ] {
            for sort in ["revenue", "units"] {
                let r = app
                    .get(
                        &format!(
                            "/api/analytics/{route}?period={period}&tz={TZ}&limit=1000&sort={sort}"
                        ),
                        admin,
                    )
                    .await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.body);
                let p = &r.body["data"]["period"];
                let want = truth_rows(db, dim, ms(&p["start"]), ms(&p["end"])).await;
                let rows = r.body["data"][field].as_array().unwrap();
                let mut seen = 0;
                for row in rows {
                    let key = row["key"].as_str().unwrap();
                    let w = want.get(key).copied().unwrap_or_default();
                    if w[0] > 0 {
                        seen += 1;
                    }
                    assert_eq!(row["orders"].as_i64().unwrap(), w[0], "{route} {row}");
                    assert_eq!(cents(&row["grossSales"]), w[3], "{route} {row}");
                    assert_eq!(cents(&row["revenue"]), w[4], "{route} {row}");
                    if dim == "product" || dim == "category" {
                        assert_eq!(row["units"].as_i64().unwrap(), w[1], "{route} {row}");
                        assert_eq!(row["unitsSold"].as_i64().unwrap(), w[2], "{route} {row}");
                    }
                }
                assert_eq!(
                    seen,
                    want.len(),
                    "{route} {period}: every key with orders listed"
                );
                // Sorted by the measure, descending.
                let measure = |r: &Value| {
                    if sort == "units" {
                        r["unitsSold"].as_i64().unwrap()
                    } else {
                        cents(&r["revenue"])
                    }
                };
                assert!(rows.windows(2).all(|w| measure(&w[0]) >= measure(&w[1])));
            }
        }
    }
}

async fn ground_truth(backend: Backend) {
    let mut rng = Rng(seed());
    let w = build_history(backend, &mut rng).await;
    let events = outbox_events(&w.db).await;
    assert!(events.len() > 57, "{} events", events.len());
    deliver_shuffled(&w, &mut rng, &events).await;
    check_endpoints(&w).await;
    let analytics = w.platform.analytics.clone().unwrap();
    let source = OrdersSnapshot(w.platform.orders.clone().unwrap());
    assert_eq!(
        analytics.verify(&source).await.unwrap(),
        Vec::<String>::new()
    );
    // Delivering everything again, backwards, changes nothing.
    let before = w
        .app
        .get(
            "/api/analytics/revenue?period=12m&granularity=month",
            Some(&w.admin),
        )
        .await
        .body;
    let mut again = events.clone();
    again.reverse();
    analytics.apply(&again).await.unwrap();
    let after = w
        .app
        .get(
            "/api/analytics/revenue?period=12m&granularity=month",
            Some(&w.admin),
        )
        .await
        .body;
    assert_eq!(before, after);
    // A rebuild from the orders gives the same answers.
    analytics.rebuild(&source, &|_, _| {}).await.unwrap();
    assert_eq!(
        analytics.verify(&source).await.unwrap(),
        Vec::<String>::new()
    );
    check_endpoints(&w).await;
    assert!(!w.owners.is_empty());
}

ecap_core::on_every_backend!(ground_truth);

/// The relay feeds analytics as orders change; admin only; bad input refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_updates_authorization_and_bad_input() {
    let (app, platform) = spawn_platform(Backend::Sqlite, |_| {}).await;
    let (admin, _) = app.admin().await;
    let (customer, _) = app.customer("live@example.com").await;
    let (merchant, _) = app.register_as("Mer", "mer@example.com", "merchant").await;
    let r = app
        .post(
            "/api/products",
            Some(&admin),
            json!({"name": "Live thing", "description": "sold live", "price": 10.0,
                "inventory": 50, "category": "books"}),
        )
        .await;
    let pid = r.body["data"]["product"]["id"].as_str().unwrap().to_owned();

    // The stream: a first event at once, another after an order.
    let mut res = app
        .client
        .get(format!("{}/api/analytics/stream?period=today", app.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let first = next_event(&mut res).await;
    assert_eq!(first["kpis"]["orders"]["value"], 0.0);
    let placed = std::time::Instant::now();
    let r = app
        .post(
            "/api/orders",
            Some(&customer),
            json!({"items": [{"productId": pid, "quantity": 3}], "paymentMethod": "upi",
                "shippingAddress": {"street": "1 Stream St", "city": "Pune", "state": "MH",
                    "zipCode": "411001", "country": "India"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let update = tokio::time::timeout(std::time::Duration::from_secs(5), next_event(&mut res))
        .await
        .expect("an update within 5 s");
    assert!(placed.elapsed() < std::time::Duration::from_secs(2));
    assert_eq!(update["kpis"]["orders"]["value"], 1.0);
    assert_eq!(update["ordersToday"], 1);
    assert_eq!(update["revenueToday"], 30.0);
    assert_eq!(update["topProducts"][0]["productId"], pid.as_str());
    assert_eq!(update["topProducts"][0]["sales"], 3);
    // Rows carry what the dashboard shows: the product's name and category.
    assert_eq!(update["topProducts"][0]["name"], "Live thing");
    assert_eq!(update["topProducts"][0]["category"], "books");
    assert!(update["topProducts"][0].get("image").is_some());

    // The contract's track/order: idempotent by order id, refused when bad.
    let body = json!({"orderId": "shop2-77", "amount": 12.5,
        "items": [{"productId": "ext-1", "quantity": 2}]});
    let r = app
        .post("/api/analytics/track/order", Some(&admin), body.clone())
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["message"], "Order analytics tracked");
    assert_eq!(r.body["data"]["tracked"], true);
    let r = app
        .post("/api/analytics/track/order", Some(&admin), body)
        .await;
    assert_eq!(r.body["data"]["tracked"], false);
    let d = app.get("/api/analytics/dashboard", Some(&admin)).await;
    assert_eq!(d.body["data"]["totalOrders"], 2);
    assert_eq!(d.body["data"]["totalRevenue"], 42.5);
    for bad in [
        json!({"amount": 1}),
        json!({"orderId": "x", "amount": "lots"}),
        json!({"orderId": "x", "amount": -1}),
        json!({"orderId": "x", "amount": 1.234}),
        json!({"orderId": "x", "amount": 1, "items": [{"productId": "p", "quantity": 0}]}),
        json!({"orderId": "x", "amount": 1, "items": "many"}),
        json!({"orderId": "x", "amount": 1, "status": "lost"}),
        json!({"orderId": "x", "amount": 1, "placedAt": "yesterday"}),
        json!([1, 2]),
    ] {
        let r = app
            .post("/api/analytics/track/order", Some(&admin), bad.clone())
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }
    let d2 = app.get("/api/analytics/dashboard", Some(&admin)).await;
    assert_eq!(
        d2.body["data"]["totalOrders"], 2,
        "bad input changed nothing"
    );
    // Tracked orders survive a rebuild from the orders, and verify agrees.
    let analytics = platform.analytics.clone().unwrap();
    let source = OrdersSnapshot(platform.orders.clone().unwrap());
    analytics.rebuild(&source, &|_, _| {}).await.unwrap();
    assert_eq!(
        analytics.verify(&source).await.unwrap(),
        Vec::<String>::new()
    );
    let d2 = app.get("/api/analytics/dashboard", Some(&admin)).await;
    assert_eq!(d2.body["data"]["totalOrders"], 2);
    assert_eq!(d2.body["data"]["totalRevenue"], 42.5);
    let r = app
        .post("/api/analytics/reset/daily", Some(&admin), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["message"], "Daily counters reset");
    assert_eq!(r.body["data"]["changed"], false);

    // Bad parameters: 400 naming the parameter.
    for (q, param) in [
        ("revenue?period=5d", "period"),
        ("revenue?from=2026-02-02&to=2026-02-01", "from"),
        (
            "revenue?from=2016-01-01&to=2025-12-31&granularity=hour",
            "granularity",
        ),
        ("revenue?from=2010-01-01&to=2025-12-31", "to"),
        ("revenue?granularity=minute", "granularity"),
        ("revenue?tz=Mars/Olympus", "tz"),
        ("revenue?tz=Asia/Kathmandu", "tz"),
        ("revenue?period=custom", "from"),
        ("revenue?from=02/01/2026&to=2026-02-03", "from"),
        ("dashboard?period=1y", "period"),
        ("top-products?limit=0", "limit"),
        ("top-products?limit=abc", "limit"),
        ("categories?sort=price", "sort"),
        ("export?report=customers", "report"),
        ("export?format=xlsx", "format"),
        ("stream?period=2w", "period"),
    ] {
        let r = app.get(&format!("/api/analytics/{q}"), Some(&admin)).await;
        let msg = assert_error(&r, StatusCode::BAD_REQUEST);
        assert_eq!(r.body["errors"][0]["path"], param, "{q}: {msg}");
    }
    let r = app
        .get(
            "/api/analytics/revenue?from=2016-01-01&to=2025-12-31&granularity=hour",
            Some(&admin),
        )
        .await;
    assert!(
        r.body["message"].as_str().unwrap().contains("at most 5000"),
        "{}",
        r.body
    );

    // Admin only, on every route.
    let routes = [
        ("GET", "dashboard"),
        ("GET", "revenue"),
        ("GET", "top-products"),
        ("GET", "categories"),
        ("GET", "status-breakdown"),
        ("GET", "payment-methods"),
        ("GET", "export?report=revenue"),
        ("GET", "stream"),
        ("POST", "track/order"),
        ("POST", "reset/daily"),
    ];
    for (method, route) in routes {
        for (token, status) in [
            (None, StatusCode::UNAUTHORIZED),
            (Some(customer.as_str()), StatusCode::FORBIDDEN),
            (Some(merchant.as_str()), StatusCode::FORBIDDEN),
        ] {
            let r = app
                .call(
                    method.parse().unwrap(),
                    &format!("/api/analytics/{route}"),
                    token,
                    (method == "POST").then(|| json!({"orderId": "z", "amount": 1})),
                )
                .await;
            assert_error(&r, status);
        }
    }
    let d3 = app.get("/api/analytics/dashboard", Some(&admin)).await;
    assert_eq!(
        d3.body["data"]["totalOrders"], 2,
        "refused calls changed nothing"
    );

    // CSV export.
    let res = app
        .client
        .get(format!(
            "{}/api/analytics/export?report=revenue&period=7d&format=csv",
            app.base
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let text = res.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 8, "{text}");
    assert!(lines[0].starts_with("date,start,orders,gross_sales,net_revenue"));
    assert!(
        lines[7].contains(",2,") && lines[7].contains("42.50"),
        "{text}"
    );
    let res = app
        .client
        .get(format!(
            "{}/api/analytics/export?report=top-products&period=today",
            app.base
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    assert!(text.starts_with(
        "rank,product_id,orders,units,units_sold,gross_sales,net_revenue,name,category,image\n"
    ));
    assert!(
        text.contains(&format!("1,{pid},1,3,3,30.00,30.00,")),
        "{text}"
    );
}

/// Reads the next `dashboard` event's data from an SSE response.
async fn next_event(res: &mut reqwest::Response) -> Value {
    let mut buf = String::new();
    loop {
        let chunk = res.chunk().await.unwrap().expect("stream open");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        if let Some(end) = buf.find("\n\n") {
            let block = &buf[..end];
            if block.contains("event: dashboard") {
                let data: String = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: "))
                    .collect();
                return serde_json::from_str(&data).unwrap();
            }
            buf = buf[end + 2..].to_owned();
        }
    }
}
