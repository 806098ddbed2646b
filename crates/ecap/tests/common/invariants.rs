//! What must hold after any fault once the sweeper and the outbox relay have
//! run: no placement without an order, no held reservation without an order
//! holding it, every product's stock equal to its ledger and to what it
//! started with minus what orders hold, every outbox event delivered and in
//! sequence. Works on all three databases (ids are 24-hex, so inlined).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};

use ecap_core::db::{Backend, Db};

/// `Ok` when every invariant holds; else what does not.
pub async fn consistent(
    catalog: &Db,
    orders: &Db,
    products: &[String],
    initial_stock: i64,
) -> Result<(), String> {
    let err = |e: sqlx::Error| e.to_string();
    let int = int_of(catalog);
    let (open,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT CAST(COUNT(*) AS {}) FROM order_placements WHERE order_id IS NULL",
        int_of(orders)
    )))
    .fetch_one(orders.pool())
    .await
    .map_err(err)?;
    if open > 0 {
        return Err(format!("{open} placements without an order"));
    }
    let held: Vec<(String,)> =
        sqlx::query_as("SELECT order_id FROM inventory_reservations WHERE state = 'held'")
            .fetch_all(catalog.pool())
            .await
            .map_err(err)?;
    let holding: Vec<(String,)> = sqlx::query_as(
        "SELECT reservation_key FROM orders WHERE inventory_deducted = 1 AND reservation_key IS NOT NULL",
    )
    .fetch_all(orders.pool())
    .await
    .map_err(err)?;
    let holding: HashSet<String> = holding.into_iter().map(|(k,)| k).collect();
    let orphans = held.iter().filter(|(k,)| !holding.contains(k)).count();
    if orphans > 0 || held.len() != holding.len() {
        // What the orders database says about each orphaned key.
        let mut seen = Vec::new();
        for (k,) in held.iter().filter(|(k,)| !holding.contains(k)).take(5) {
            let order: Option<(i64, String, i64, Option<String>)> =
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT id, status, CAST(inventory_deducted AS {int}), inventory_pending \
                     FROM orders WHERE reservation_key = '{}'",
                    k.replace('\'', "")
                )))
                .fetch_optional(orders.pool())
                .await
                .map_err(err)?;
            let placement: Option<(Option<i64>,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT order_id FROM order_placements WHERE reservation_key = '{}'",
                k.replace('\'', "")
            )))
            .fetch_optional(orders.pool())
            .await
            .map_err(err)?;
            seen.push(format!("{k}: order {order:?}, placement {placement:?}"));
        }
        return Err(format!(
            "{orphans} held reservations without an order ({} held, {} orders holding): {seen:?}",
            held.len(),
            holding.len()
        ));
    }
    let sold: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(
        format!(
            "SELECT i.product_id, CAST(SUM(i.quantity) AS {}) FROM order_items i \
             JOIN orders o ON o.id = i.order_id WHERE o.inventory_deducted = 1 GROUP BY i.product_id",
            int_of(orders)
        ),
    ))
    .fetch_all(orders.pool())
    .await
    .map_err(err)?;
    let sold: HashMap<String, i64> = sold.into_iter().collect();
    for p in products {
        assert!(p.bytes().all(|b| b.is_ascii_hexdigit()));
        let (stock, ledger): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT CAST(stock AS {int}), (SELECT CAST(SUM(delta) AS {int}) FROM inventory_ledger \
             WHERE product_id = '{p}') FROM products WHERE id = '{p}'"
        )))
        .fetch_one(catalog.pool())
        .await
        .map_err(err)?;
        let sold = sold.get(p).copied().unwrap_or(0);
        if stock != initial_stock - sold || ledger != stock {
            return Err(format!(
                "{p}: stock {stock}, ledger {ledger}, held by orders {sold}"
            ));
        }
    }
    let (undelivered,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT CAST(COUNT(*) AS {}) FROM order_outbox WHERE delivered_at IS NULL",
        int_of(orders)
    )))
    .fetch_one(orders.pool())
    .await
    .map_err(err)?;
    if undelivered > 0 {
        return Err(format!("{undelivered} events undelivered"));
    }
    let (gaps,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT CAST(COUNT(*) AS {}) FROM orders o WHERE o.event_seq <> \
         (SELECT COUNT(*) FROM order_outbox e WHERE e.order_id = o.id)",
        int_of(orders)
    )))
    .fetch_one(orders.pool())
    .await
    .map_err(err)?;
    if gaps > 0 {
        return Err(format!(
            "{gaps} orders whose events do not match their sequence"
        ));
    }
    Ok(())
}

fn int_of(db: &Db) -> &'static str {
    match db.backend() {
        Backend::MySql => "SIGNED",
        _ => "BIGINT",
    }
}

/// Waits up to `secs` for [`consistent`] to hold; panics with what does not.
pub async fn settle(catalog: &Db, orders: &Db, products: &[String], initial_stock: i64, secs: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        match consistent(catalog, orders, products, initial_stock).await {
            Ok(()) => return,
            Err(why) if std::time::Instant::now() > deadline => panic!("after the fault: {why}"),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
}

/// `ecap analytics verify` on `database_url` (every service on it): panics
/// unless every aggregate matches the orders.
pub fn analytics_verify(database_url: &str) {
    analytics_verify_with(&[("DATABASE_URL", database_url)]);
}

/// `ecap analytics verify` with these database variables.
pub fn analytics_verify_with(urls: &[(&str, &str)]) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ecap"));
    cmd.env_clear();
    for (name, url) in urls {
        cmd.env(name, url);
    }
    let out = cmd
        .args(["analytics", "verify"])
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("JWT_SECRET", "verify-secret-of-sixteen-plus")
        .env("LOG_LEVEL", "warn")
        .current_dir(std::env::temp_dir())
        .output()
        .expect("ecap analytics verify runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("analytics verified"),
        "analytics verify: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
