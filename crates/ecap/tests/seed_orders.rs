//! `ecap seed --orders` on every database: a year of history whose tables
//! agree with each other (items, totals, history rows, per-customer numbers,
//! status columns), every status present, nothing outside the year, no
//! outbox rows; a second run continues each customer's numbers; the same
//! seed writes the same history (order counts and totals per status).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use ecap_core::{
    db::{Backend, Db},
    testing::TestDb,
};

const DAY_MS: i64 = 86_400_000;
/// The end of the seeded year: fixed, so the statuses (which depend on each
/// order's age) are the same on every run.
const END: i64 = 1_781_870_400_000; // 2026-06-19T12:00:00Z

struct Seeded {
    db: TestDb,
    pool: Db,
    config: ecap_core::config::Config,
    _data: tempfile::TempDir,
}

async fn seeded(backend: Backend, n: u64, seed: u64) -> Seeded {
    let db = TestDb::create(backend).await;
    let data = tempfile::tempdir().unwrap();
    let config = common::test_config(&db, data.path());
    let written = ecap::seed::orders_until(&config, n, seed, END, false)
        .await
        .unwrap();
    assert_eq!(written, n);
    let pool = Db::connect(&db.url, 2).await.unwrap();
    Seeded {
        db,
        pool,
        config,
        _data: data,
    }
}

/// `CAST(expr AS BIGINT)` in the backend's words (sums are NUMERIC otherwise).
fn bigint(backend: Backend, expr: &str) -> String {
    match backend {
        Backend::MySql => format!("CAST({expr} AS SIGNED)"),
        _ => format!("CAST({expr} AS BIGINT)"),
    }
}

async fn count(db: &Db, sql: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(db.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    n
}

/// `(status, orders, total cents)` by status.
async fn by_status(s: &Seeded) -> Vec<(String, i64, i64)> {
    let sql = format!(
        "SELECT status, COUNT(*), {} FROM orders GROUP BY status ORDER BY status",
        bigint(s.db.backend, "SUM(total_cents)")
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(s.pool.pool())
        .await
        .unwrap()
}

/// What must hold for every seeded history, whatever its size.
async fn check_consistent(s: &Seeded, orders: i64) {
    let db = &s.pool;
    assert_eq!(count(db, "SELECT COUNT(*) FROM orders").await, orders);
    let checks = [
        (
            "orders without items",
            "SELECT COUNT(*) FROM orders o WHERE NOT EXISTS \
             (SELECT 1 FROM order_items i WHERE i.order_id = o.id)",
        ),
        (
            "totals that are not the sum of their lines",
            "SELECT COUNT(*) FROM orders o WHERE o.total_cents <> \
             (SELECT SUM(i.subtotal_cents) FROM order_items i WHERE i.order_id = o.id)",
        ),
        (
            "lines whose subtotal is not price × quantity",
            "SELECT COUNT(*) FROM order_items WHERE subtotal_cents <> price_cents * quantity \
             OR quantity < 1",
        ),
        (
            "orders whose history rows are not event_seq",
            "SELECT COUNT(*) FROM orders o WHERE o.event_seq <> \
             (SELECT COUNT(*) FROM order_history h WHERE h.order_id = o.id)",
        ),
        (
            "histories not ending in the order's status",
            "SELECT COUNT(*) FROM orders o \
             JOIN (SELECT order_id, MAX(id) AS last FROM order_history GROUP BY order_id) m \
             ON m.order_id = o.id JOIN order_history h ON h.id = m.last \
             WHERE h.to_status <> o.status",
        ),
        (
            "history rows not following the row before (the first: placement)",
            "SELECT COUNT(*) FROM (SELECT from_status, to_status, created_at, \
             ROW_NUMBER() OVER (PARTITION BY order_id ORDER BY id) AS k, \
             LAG(to_status) OVER (PARTITION BY order_id ORDER BY id) AS before_to, \
             LAG(created_at) OVER (PARTITION BY order_id ORDER BY id) AS before_at \
             FROM order_history) t \
             WHERE (t.k = 1 AND (t.from_status IS NOT NULL OR t.to_status <> 'pending')) \
             OR (t.k > 1 AND (t.from_status IS NULL OR t.from_status <> t.before_to \
                  OR t.created_at < t.before_at))",
        ),
        (
            "customers whose numbers are not 1..k",
            "SELECT COUNT(*) FROM (SELECT user_id, COUNT(*) AS n, MIN(user_order_number) AS lo, \
             MAX(user_order_number) AS hi FROM orders GROUP BY user_id) t \
             WHERE t.lo <> 1 OR t.hi <> t.n",
        ),
        (
            "counters behind the numbers",
            "SELECT COUNT(*) FROM order_user_counters c WHERE c.last_number <> \
             (SELECT MAX(o.user_order_number) FROM orders o WHERE o.user_id = c.user_id)",
        ),
        (
            "customers without a counter",
            "SELECT COUNT(DISTINCT o.user_id) FROM orders o WHERE NOT EXISTS \
             (SELECT 1 FROM order_user_counters c WHERE c.user_id = o.user_id)",
        ),
        (
            "orders of unknown customers",
            "SELECT COUNT(*) FROM orders o WHERE NOT EXISTS \
             (SELECT 1 FROM users u WHERE u.id = o.user_id AND u.email = o.user_email)",
        ),
        (
            "status columns that do not match the status",
            "SELECT COUNT(*) FROM orders WHERE \
                (status = 'delivered' AND (delivered_at IS NULL OR shipped_at IS NULL \
                  OR tracking_number IS NULL OR courier_name IS NULL)) \
             OR (status = 'processing' AND processing_at IS NULL) \
             OR (status = 'cancelled' AND (cancelled_at IS NULL OR refund_status <> 'pending' \
                  OR refund_cents <> total_cents)) \
             OR (status = 'refund_processing' AND (refund_processing_at IS NULL \
                  OR refund_status <> 'processing')) \
             OR (status = 'refunded' AND (refunded_at IS NULL OR refund_status <> 'completed')) \
             OR (status = 'cancel_requested' AND (cancellation_requested_at IS NULL \
                  OR status_before_request IS NULL OR cancellation_reason IS NULL)) \
             OR (status = 'deleted' AND (deleted_at IS NULL OR status_before_deletion IS NULL)) \
             OR inventory_deducted <> 0 OR reservation_key IS NOT NULL",
        ),
        (
            "unknown payment methods",
            "SELECT COUNT(*) FROM orders WHERE payment_method NOT IN ('credit_card', \
             'debit_card', 'paypal', 'cash', 'cod', 'card', 'upi', 'netbanking', 'wallet')",
        ),
        ("outbox rows", "SELECT COUNT(*) FROM order_outbox"),
    ];
    for (what, sql) in checks {
        assert_eq!(count(db, sql).await, 0, "{what}");
    }
    let year = END - 366 * DAY_MS;
    for (what, sql) in [
        (
            "orders outside the year",
            format!("SELECT COUNT(*) FROM orders WHERE created_at < {year} OR updated_at > {END}"),
        ),
        (
            "history outside the year",
            format!(
                "SELECT COUNT(*) FROM order_history WHERE created_at < {year} OR created_at > {END}"
            ),
        ),
    ] {
        assert_eq!(count(db, &sql).await, 0, "{what}");
    }
}

async fn seeded_history_is_consistent(backend: Backend) {
    let s = seeded(backend, 2000, 7).await;
    check_consistent(&s, 2000).await;

    let statuses = by_status(&s).await;
    let names: Vec<&str> = statuses.iter().map(|(st, _, _)| st.as_str()).collect();
    assert_eq!(
        names,
        [
            "cancel_requested",
            "cancelled",
            "deleted",
            "delivered",
            "out_for_delivery",
            "pending",
            "processing",
            "refund_processing",
            "refunded",
            "shipped",
        ],
        "all ten statuses"
    );
    let share = |name: &str| {
        statuses
            .iter()
            .find(|(st, _, _)| st == name)
            .map_or(0.0, |(_, n, _)| *n as f64 / 2000.0)
    };
    assert!(share("delivered") > 0.8, "mostly delivered: {statuses:?}");
    assert!(
        (0.04..0.11).contains(&share("cancelled")),
        "about 7 % cancelled: {statuses:?}"
    );
    // About one customer in eight, some of them buying again and again.
    let customers = count(&s.pool, "SELECT COUNT(DISTINCT user_id) FROM orders").await;
    assert!((200..=250).contains(&customers), "{customers} customers");
    let most = count(
        &s.pool,
        "SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM orders GROUP BY user_id) t",
    )
    .await;
    assert!(most >= 20, "the busiest customer placed {most} orders");

    // A second run adds after what is there: same customers, numbers go on.
    let more = ecap::seed::orders_until(&s.config, 1000, 8, END, false)
        .await
        .unwrap();
    assert_eq!(more, 1000);
    check_consistent(&s, 3000).await;
    assert_eq!(
        count(
            &s.pool,
            "SELECT COUNT(*) FROM users WHERE email LIKE '%@seed.ecap.local'"
        )
        .await,
        250
    );
}

async fn the_same_seed_writes_the_same_history(backend: Backend) {
    let a = seeded(backend, 600, 11).await;
    let b = seeded(backend, 600, 11).await;
    let (a, b) = (by_status(&a).await, by_status(&b).await);
    assert!(a.len() >= 5, "{a:?}");
    assert_eq!(a, b, "same seed, same history");
}

ecap_core::on_every_backend!(
    seeded_history_is_consistent,
    the_same_seed_writes_the_same_history
);
