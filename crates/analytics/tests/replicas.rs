//! Several analytics replicas on one database: each one's in-memory mirror
//! follows the applies the others commit (`analytics_changes`), so any
//! replica answers the same figures as one freshly loaded from the tables —
//! on SQLite, PostgreSQL and MariaDB.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ecap_analytics::{AnalyticsStore, model::Totals};
use ecap_core::{
    db::{Backend, Db},
    events::{EventLine, OrderEvent, OrderEventKind},
    testing::TestDb,
};

const HOUR: i64 = 3_600_000;
const T0: i64 = 1_780_000_000_000;

fn event(order_id: i64, user_id: i64, seq: i64, to: &str, at: i64) -> OrderEvent {
    OrderEvent {
        event_id: format!("e-{order_id}-{seq}"),
        order_id,
        user_id,
        seq,
        kind: if seq == 1 {
            OrderEventKind::Created
        } else {
            OrderEventKind::StatusChanged
        },
        from_status: (seq > 1).then(|| "pending".to_owned()),
        to_status: to.to_owned(),
        lines: vec![EventLine {
            product_id: format!("{:024x}", order_id % 3 + 1),
            category: "sports".to_owned(),
            quantity: 2,
            unit_price_cents: 1_250,
        }],
        total_cents: 2_500,
        payment_method: "card".to_owned(),
        placed_at: T0 + order_id * HOUR,
        at: at.max(T0 + order_id * HOUR),
    }
}

fn figures(s: &AnalyticsStore) -> (Totals, usize, usize) {
    let m = s.read();
    let dims: usize = m.dims.values().map(|k| k.len()).sum();
    (m.totals.total(), m.pairs.len(), dims)
}

async fn replicas_follow_each_others_applies(backend: Backend) {
    let t = TestDb::create(backend).await;
    let db = Db::connect(&t.url, 5).await.unwrap();
    ecap_analytics::migrate(&db).await.unwrap();
    let a = AnalyticsStore::open(db.clone()).await.unwrap();
    let b = AnalyticsStore::open(db.clone()).await.unwrap();

    // Orders split between the replicas, customers shared, and status
    // changes applied by the replica that did not see the order placed.
    for id in 1..=12 {
        let on = if id % 2 == 0 { &a } else { &b };
        on.apply(&[event(id, 100 + id % 4, 1, "pending", 0)])
            .await
            .unwrap();
    }
    b.apply(&[event(2, 102, 2, "cancelled", T0 + 40 * HOUR)])
        .await
        .unwrap();
    a.apply(&[event(3, 103, 2, "delivered", T0 + 41 * HOUR)])
        .await
        .unwrap();
    // A replayed event changes nothing anywhere.
    a.apply(&[event(5, 101, 1, "pending", 0)]).await.unwrap();

    // Before following, each mirror holds only its own applies.
    assert_ne!(figures(&a), figures(&b));

    let mut followed_a = 0;
    let mut followed_b = 0;
    for _ in 0..3 {
        followed_a += a.follow().await.unwrap();
        followed_b += b.follow().await.unwrap();
    }
    assert_eq!(followed_a, 7, "a applies b's six placements and one change");
    assert_eq!(followed_b, 7, "b applies a's six placements and one change");

    let fresh = AnalyticsStore::open(db.clone()).await.unwrap();
    let want = figures(&fresh);
    assert_eq!(want.0.orders, 12);
    assert_eq!(want.0.cancelled, 1);
    assert_eq!(figures(&a), want, "replica a equals the tables");
    assert_eq!(figures(&b), want, "replica b equals the tables");
    // Following again applies nothing twice.
    assert_eq!(a.follow().await.unwrap(), 0);
    assert_eq!(figures(&a), want);

    // A replica that fell behind what is kept reloads from the tables.
    let c = AnalyticsStore::open(db.clone()).await.unwrap();
    b.apply(&[event(13, 101, 1, "pending", 0)]).await.unwrap();
    sqlx::query("UPDATE analytics_meta SET value = 1000000 WHERE name = 'changes_pruned'")
        .execute(db.pool())
        .await
        .unwrap();
    c.follow().await.unwrap();
    assert_eq!(figures(&c).0.orders, 13, "reloaded after falling behind");

    // Pruning deletes only changes older than the window.
    assert_eq!(a.prune_changes().await.unwrap(), 0);
    db.close().await;
}

ecap_core::on_every_backend!(replicas_follow_each_others_applies);
