//! The orders store over a real catalog, on SQLite, PostgreSQL and MariaDB:
//! racing customers never oversell, per-customer numbers have no gaps, one
//! Idempotency-Key places one order, stock comes back exactly once whatever
//! races, the sweeper finishes what a crash left, the outbox delivers every
//! change in order, sync and undo-sync are exact inverses; and a property test
//! of the status machine (SQLite) with the stock each status holds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::{BTreeMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use ecap_catalog::{CatalogInventory, CatalogStore, ResponseCache, store::NewProduct};
use ecap_core::{
    clock,
    db::{Backend, Db},
    events::{EventBus, EventHandler, InProcessBus, OrderEvent, OrderEventKind},
    ports::{Inventory, InventoryError, PortError, ReserveLine, ReservedLine},
    testing::TestDb,
};
use ecap_orders::{
    OrderStore,
    domain::Status,
    outbox::Relay,
    store::{Actor, ImportedOrder, NewOrder, OrderRow, Shipment, StoreError},
};
use proptest::{
    prelude::*,
    test_runner::{Config, TestCaseError, TestRunner},
};
use serde_json::json;
use tokio::sync::Notify;

const ADMIN: Actor = Actor { id: 1, admin: true };

fn customer(id: i64) -> Actor {
    Actor { id, admin: false }
}

// ---- set-up -------------------------------------------------------------------

/// Holds the first reservation whose key starts with `prefix` (`p…`
/// placements, `o…` syncs), before or after the catalog took it, until the
/// test opens it.
struct Gate {
    prefix: char,
    after: bool,
    armed: AtomicBool,
    entered: Notify,
    open: Notify,
}

impl Gate {
    fn new(prefix: char, after: bool) -> Arc<Self> {
        Arc::new(Self {
            prefix,
            after,
            armed: AtomicBool::new(true),
            entered: Notify::new(),
            open: Notify::new(),
        })
    }

    async fn pause(&self) {
        self.entered.notify_one();
        self.open.notified().await;
    }

    async fn reached(&self) {
        tokio::time::timeout(Duration::from_secs(10), self.entered.notified())
            .await
            .expect("the gated reservation was reached");
    }
}

struct GatedInventory {
    inner: Arc<dyn Inventory>,
    gate: Arc<Gate>,
}

#[async_trait]
impl Inventory for GatedInventory {
    async fn reserve(
        &self,
        key: &str,
        lines: &[ReserveLine],
    ) -> Result<Vec<ReservedLine>, InventoryError> {
        let gated =
            key.starts_with(self.gate.prefix) && self.gate.armed.swap(false, Ordering::SeqCst);
        if gated && !self.gate.after {
            self.gate.pause().await;
        }
        let out = self.inner.reserve(key, lines).await;
        if gated && self.gate.after {
            self.gate.pause().await;
        }
        out
    }

    async fn release(&self, key: &str) -> Result<bool, InventoryError> {
        self.inner.release(key).await
    }
}

struct Env {
    db: Db,
    catalog: CatalogStore,
    /// The catalog's own port (never gated), for simulating crashed callers.
    inventory: Arc<dyn Inventory>,
    orders: OrderStore,
    _t: TestDb,
}

async fn env(backend: Backend) -> Env {
    env_with(backend, None).await
}

async fn env_with(backend: Backend, gate: Option<Arc<Gate>>) -> Env {
    let t = TestDb::create(backend).await;
    let db = Db::connect(&t.url, 10).await.unwrap();
    ecap_catalog::migrate(&db).await.unwrap();
    ecap_orders::migrate(&db).await.unwrap();
    let catalog = CatalogStore::new(db.clone());
    let inventory: Arc<dyn Inventory> = Arc::new(CatalogInventory {
        store: catalog.clone(),
        cache: ResponseCache::off(),
    });
    let port: Arc<dyn Inventory> = match gate {
        Some(gate) => Arc::new(GatedInventory {
            inner: inventory.clone(),
            gate,
        }),
        None => inventory.clone(),
    };
    let orders = OrderStore::new(db.clone(), port);
    Env {
        db,
        catalog,
        inventory,
        orders,
        _t: t,
    }
}

async fn product(e: &Env, name: &str, price_cents: i64, stock: i64) -> String {
    e.catalog
        .create(NewProduct {
            name: name.into(),
            description: format!("{name}, for the orders store tests"),
            price_cents,
            stock,
            category: "sports".into(),
            tags: vec!["test".into()],
            attributes: json!({}),
            sku: None,
            owner_id: None,
            images: Vec::new(),
        })
        .await
        .unwrap()
        .id
}

fn lines(items: &[(&str, i64)]) -> Vec<ReserveLine> {
    items
        .iter()
        .map(|(p, q)| ReserveLine {
            product_id: (*p).to_owned(),
            quantity: *q,
        })
        .collect()
}

fn new_order(user_id: i64, items: &[(&str, i64)]) -> NewOrder {
    NewOrder {
        user_id,
        user_email: Some(format!("buyer{user_id}@example.com")),
        lines: lines(items),
        payment_method: "card".into(),
        shipping_address: json!({"street": "1 Harbour Road", "city": "Porto"}),
        idempotency: None,
    }
}

fn imported(
    user_id: i64,
    product_id: &str,
    unit_price_cents: i64,
    quantity: i64,
    status: Status,
) -> ImportedOrder {
    let placed_at = clock::now_ms() - 3_600_000;
    ImportedOrder {
        user_id,
        user_email: Some(format!("old{user_id}@example.com")),
        lines: vec![ReservedLine {
            product_id: product_id.to_owned(),
            name: "Imported thing".into(),
            category: "sports".into(),
            quantity,
            unit_price_cents,
        }],
        payment_method: "cod".into(),
        shipping_address: json!("12 Old Street"),
        placed_at,
        status,
        status_at: Some(placed_at + 60_000),
    }
}

/// The product's stock, checked against its ledger.
async fn stock(e: &Env, product_id: &str) -> i64 {
    let p = e.catalog.product(product_id).await.unwrap().unwrap();
    assert_eq!(
        e.catalog.ledger_sum(product_id).await.unwrap(),
        p.stock,
        "the stock of {product_id} is the sum of its ledger"
    );
    p.stock
}

async fn scalar(e: &Env, sql: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(e.db.pool())
        .await
        .unwrap();
    n
}

async fn column(e: &Env, sql: &str) -> Vec<i64> {
    let rows: Vec<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(e.db.pool())
        .await
        .unwrap();
    rows.into_iter().map(|(n,)| n).collect()
}

async fn exec(e: &Env, sql: &str) {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(e.db.pool())
        .await
        .unwrap();
}

async fn state(e: &Env, key: &str) -> Option<String> {
    e.catalog.reservation_state(key).await.unwrap()
}

async fn is_held(e: &Env, key: Option<&str>) -> bool {
    match key {
        Some(k) => state(e, k).await.as_deref() == Some("held"),
        None => false,
    }
}

async fn releases_of(e: &Env, key: &str) -> i64 {
    scalar(
        e,
        &format!(
            "SELECT COUNT(*) FROM inventory_ledger WHERE order_id = '{key}' AND kind = 'release'"
        ),
    )
    .await
}

/// The books of one product against these orders: nothing half-done, an order
/// is marked deducted exactly when the catalog holds its reservation, every
/// reservation was released at most once, and stock is the start minus what
/// the holding orders hold. With `by_status`, holding is also what each
/// order's status says.
async fn check_books(e: &Env, product_id: &str, start: i64, ids: &[i64], by_status: bool) {
    let mut held_units = 0;
    for &id in ids {
        let o = e.orders.order(id).await.unwrap();
        assert_eq!(
            o.inventory_pending, None,
            "order {id} ({}): nothing left half-done",
            o.status
        );
        let held = is_held(e, o.reservation_key.as_deref()).await;
        assert_eq!(
            o.inventory_deducted,
            i64::from(held),
            "order {id} ({}): deducted flag vs catalog reservation {:?}",
            o.status,
            o.reservation_key
        );
        if by_status {
            assert_eq!(
                held,
                o.should_hold_stock(),
                "order {id} ({}, before deletion {:?}) holds stock iff its status says so",
                o.status,
                o.status_before_deletion
            );
        }
        if let Some(key) = o.reservation_key.as_deref() {
            assert!(releases_of(e, key).await <= 1, "{key} released twice");
        }
        if held {
            held_units += e
                .orders
                .items_of(&[id])
                .await
                .unwrap()
                .iter()
                .filter(|i| i.product_id == product_id)
                .map(|i| i.quantity)
                .sum::<i64>();
        }
    }
    assert_eq!(stock(e, product_id).await, start - held_units);
}

// ---- 1. no oversell -------------------------------------------------------------

async fn sixty_four_customers_race_for_ten_units(backend: Backend) {
    let e = env(backend).await;
    let pid = product(&e, "Summit Pack", 8_999, 10).await;
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let orders = e.orders.clone();
            let order = new_order(1_000 + i, &[(&pid, 1)]);
            tokio::spawn(async move { orders.place(&order).await })
        })
        .collect();
    let mut placed = Vec::new();
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(p) => {
                assert!(!p.replayed);
                placed.push(p);
            }
            Err(StoreError::Inventory(InventoryError::Insufficient {
                product_id,
                available,
                requested,
            })) => {
                assert_eq!(product_id, pid);
                assert_eq!((available, requested), (0, 1));
                refused += 1;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(placed.len(), 10, "exactly the stock is sold");
    assert_eq!(refused, 54);
    assert_eq!(stock(&e, &pid).await, 0);
    let users: HashSet<i64> = placed.iter().map(|p| p.order.user_id).collect();
    assert_eq!(users.len(), 10, "ten different customers");
    for p in &placed {
        let o = e.orders.order(p.order.id).await.unwrap();
        assert_eq!(o, p.order, "the returned order is the stored one");
        assert_eq!(o.status(), Status::Pending);
        assert_eq!(o.user_order_number, 1);
        assert_eq!(o.total_cents, 8_999);
        assert_eq!(o.inventory_deducted, 1);
        assert_eq!(o.reservation_source.as_deref(), Some("order"));
        let key = o.reservation_key.as_deref().unwrap();
        assert_eq!(state(&e, key).await.as_deref(), Some("held"));
        assert_eq!(p.items.len(), 1);
        let item = &p.items[0];
        assert_eq!(
            (item.quantity, item.price_cents, item.subtotal_cents),
            (1, 8_999, 8_999)
        );
        assert_eq!(item.product_name, "Summit Pack");
        assert_eq!(item.category, "sports");
    }
    assert_eq!(scalar(&e, "SELECT COUNT(*) FROM orders").await, 10);
    assert_eq!(
        scalar(&e, "SELECT COUNT(*) FROM order_placements").await,
        0,
        "no placement rows left behind, by winners or losers"
    );
    assert_eq!(
        scalar(&e, "SELECT COUNT(*) FROM inventory_reservations").await,
        10,
        "refused placements hold no reservation"
    );
    assert_eq!(e.orders.undelivered(1000).await.unwrap().len(), 10);
    let ids: Vec<i64> = placed.iter().map(|p| p.order.id).collect();
    check_books(&e, &pid, 10, &ids, true).await;
}

// ---- 2. order numbers ------------------------------------------------------------

async fn one_customer_twenty_orders_numbered_without_gaps(backend: Backend) {
    let e = env(backend).await;
    let pid = product(&e, "Camp Mug", 1_250, 100).await;
    // Twenty orders of customer 7 with five of customer 8 in between.
    let tasks: Vec<_> = (0..25)
        .map(|i| {
            let orders = e.orders.clone();
            let user = if i % 5 == 4 { 8 } else { 7 };
            let order = new_order(user, &[(&pid, 1 + i % 3)]);
            tokio::spawn(async move { orders.place(&order).await })
        })
        .collect();
    let mut numbers: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for t in tasks {
        let p = t.await.unwrap().unwrap();
        numbers
            .entry(p.order.user_id)
            .or_default()
            .push(p.order.user_order_number);
    }
    for list in numbers.values_mut() {
        list.sort_unstable();
    }
    assert_eq!(numbers[&7], (1..=20).collect::<Vec<_>>());
    assert_eq!(numbers[&8], (1..=5).collect::<Vec<_>>());
    assert_eq!(
        column(
            &e,
            "SELECT user_order_number FROM orders WHERE user_id = 7 ORDER BY user_order_number"
        )
        .await,
        (1..=20).collect::<Vec<_>>()
    );
    // 25 orders of 1, 2, 3, 1, 2, … units.
    let sold: i64 = (0..25).map(|i| 1 + i % 3).sum();
    assert_eq!(stock(&e, &pid).await, 100 - sold);
    // A refused order takes no number.
    let err = e
        .orders
        .place(&new_order(7, &[(&pid, 1_000)]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Inventory(InventoryError::Insufficient { .. })
        ),
        "{err:?}"
    );
    let next = e.orders.place(&new_order(7, &[(&pid, 1)])).await.unwrap();
    assert_eq!(next.order.user_order_number, 21);
}

// ---- 3. idempotency ---------------------------------------------------------------

async fn fifty_requests_with_one_idempotency_key_place_one_order(backend: Backend) {
    let e = env(backend).await;
    let pid = product(&e, "Rain Shell", 15_900, 10).await;
    let mut order = new_order(77, &[(&pid, 2)]);
    order.idempotency = Some(("checkout-7f3a".into(), "hash-a".into()));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let orders = e.orders.clone();
            let order = order.clone();
            tokio::spawn(async move { orders.place(&order).await })
        })
        .collect();
    let mut ids = HashSet::new();
    let mut first = 0;
    for t in tasks {
        let p = t.await.unwrap().expect("every retry gets the order");
        ids.insert(p.order.id);
        if !p.replayed {
            first += 1;
        }
        assert_eq!(p.items.len(), 1);
        assert_eq!(p.items[0].quantity, 2);
    }
    assert_eq!(ids.len(), 1, "every call answers with the same order");
    assert_eq!(first, 1, "exactly one call placed it");
    let id = *ids.iter().next().unwrap();
    assert_eq!(
        scalar(&e, "SELECT COUNT(*) FROM orders WHERE user_id = 77").await,
        1
    );
    assert_eq!(stock(&e, &pid).await, 8, "stock taken once");
    assert_eq!(
        column(
            &e,
            "SELECT order_id FROM order_placements WHERE user_id = 77"
        )
        .await,
        vec![id],
        "the key remembers its order"
    );

    // The same key with another body is refused, and changes nothing.
    let mut other = order.clone();
    other.idempotency = Some(("checkout-7f3a".into(), "hash-b".into()));
    other.lines = lines(&[(&pid, 5)]);
    let err = e.orders.place(&other).await.unwrap_err();
    assert!(matches!(err, StoreError::IdempotencyMismatch), "{err:?}");
    assert_eq!(stock(&e, &pid).await, 8);

    // A later retry still replays; another customer's same key is theirs.
    let again = e.orders.place(&order).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.order.id, id);
    let mut neighbour = order.clone();
    neighbour.user_id = 78;
    let theirs = e.orders.place(&neighbour).await.unwrap();
    assert!(!theirs.replayed);
    assert_ne!(theirs.order.id, id);
    assert_eq!(stock(&e, &pid).await, 6);
    check_books(&e, &pid, 10, &[id, theirs.order.id], true).await;
}

/// A key whose first request failed for lack of stock is free for the retry.
async fn a_refused_idempotent_request_can_be_retried(backend: Backend) {
    let e = env(backend).await;
    let pid = product(&e, "Bivvy Bag", 9_900, 1).await;
    let mut order = new_order(90, &[(&pid, 2)]);
    order.idempotency = Some(("retry-me".into(), "h".into()));
    let err = e.orders.place(&order).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Inventory(InventoryError::Insufficient { .. })
        ),
        "{err:?}"
    );
    assert_eq!(scalar(&e, "SELECT COUNT(*) FROM order_placements").await, 0);
    order.lines = lines(&[(&pid, 1)]);
    order.idempotency = Some(("retry-me".into(), "h2".into()));
    let p = e.orders.place(&order).await.unwrap();
    assert!(!p.replayed);
    assert_eq!(stock(&e, &pid).await, 0);
}

// ---- 4. stock comes back exactly once ----------------------------------------------

async fn place_three(e: &Env, pid: &str) -> Vec<i64> {
    let mut ids = Vec::new();
    for (user, qty) in [(11, 2), (12, 3), (13, 4)] {
        ids.push(
            e.orders
                .place(&new_order(user, &[(pid, qty)]))
                .await
                .unwrap()
                .order
                .id,
        );
    }
    ids
}

async fn cancel_and_delete_race_release_once(backend: Backend) {
    let e = env(backend).await;
    let pid = product(&e, "Trek Poles", 4_500, 30).await;
    let ids = place_three(&e, &pid).await;
    assert_eq!(stock(&e, &pid).await, 21);
    let mut tasks = Vec::new();
    for &id in &ids {
        for _ in 0..10 {
            let orders = e.orders.clone();
            tasks.push(tokio::spawn(async move {
                let r = orders
                    .set_status(
                        id,
                        Status::Cancelled,
                        ADMIN,
                        &Shipment::default(),
                        Some("customer called".into()),
                    )
                    .await;
                (id, "cancel", r)
            }));
            let orders = e.orders.clone();
            tasks.push(tokio::spawn(async move {
                (
                    id,
                    "delete",
                    orders.delete(id, ADMIN, Some("duplicate".into())).await,
                )
            }));
        }
    }
    let mut wins: BTreeMap<(i64, &str), usize> = BTreeMap::new();
    for t in tasks {
        let (id, what, r) = t.await.unwrap();
        match (what, r) {
            (_, Ok(_)) => *wins.entry((id, what)).or_default() += 1,
            ("cancel", Err(StoreError::Transition(_))) | ("delete", Err(StoreError::Rule(_))) => {}
            (what, Err(other)) => panic!("{what} of {id}: unexpected {other:?}"),
        }
    }
    for &id in &ids {
        let o = e.orders.order(id).await.unwrap();
        let cancels = wins.get(&(id, "cancel")).copied().unwrap_or(0);
        assert_eq!(wins.get(&(id, "delete")).copied(), Some(1), "order {id}");
        assert!(cancels <= 1, "order {id} cancelled {cancels} times");
        assert_eq!(o.status(), Status::Deleted);
        let before = if cancels == 1 { "cancelled" } else { "pending" };
        assert_eq!(o.status_before_deletion.as_deref(), Some(before));
        let key = o.reservation_key.as_deref().unwrap();
        assert_eq!(releases_of(&e, key).await, 1, "order {id} released once");
        assert_eq!(state(&e, key).await.as_deref(), Some("released"));
    }
    check_books(&e, &pid, 30, &ids, true).await;
    assert_eq!(stock(&e, &pid).await, 30, "all stock is back, once");
}

async fn approve_reject_delete_race_release_once(backend: Backend) {
    let e = env(backend).await;
    let pid = product(&e, "Gaiters", 3_000, 30).await;
    let ids = place_three(&e, &pid).await;
    // One of them is a return after delivery.
    for to in [
        Status::Processing,
        Status::Shipped,
        Status::OutForDelivery,
        Status::Delivered,
    ] {
        e.orders
            .set_status(ids[2], to, ADMIN, &Shipment::default(), None)
            .await
            .unwrap();
    }
    for (&id, user) in ids.iter().zip([11, 12, 13]) {
        e.orders
            .request_cancellation(id, customer(user), "changed my mind", &[])
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for &id in &ids {
        for i in 0..30 {
            let orders = e.orders.clone();
            tasks.push(tokio::spawn(async move {
                match i % 3 {
                    0 => orders.approve_cancellation(id, ADMIN).await,
                    1 => orders.reject_cancellation(id, ADMIN, "no").await,
                    _ => orders.delete(id, ADMIN, None).await,
                }
            }));
        }
    }
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) | Err(StoreError::Rule(_)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    check_books(&e, &pid, 30, &ids, true).await;
}

async fn undo_sync_cancel_delete_race_release_once(backend: Backend) {
    let e = env(backend).await;
    let pid = product(&e, "Stove", 6_000, 40).await;
    let ids = e
        .orders
        .import(&[
            imported(21, &pid, 6_000, 2, Status::Pending),
            imported(22, &pid, 6_000, 3, Status::Processing),
            imported(23, &pid, 6_000, 4, Status::Pending),
        ])
        .await
        .unwrap();
    assert_eq!(e.orders.sync_inventory().await.unwrap().synced, 3);
    assert_eq!(stock(&e, &pid).await, 31);
    let mut tasks = Vec::new();
    for &id in &ids {
        for i in 0..15 {
            let orders = e.orders.clone();
            tasks.push(tokio::spawn(async move {
                match i % 3 {
                    0 => orders.undo_sync().await.map(|(n, errors)| {
                        assert!(errors.is_empty(), "{errors:?}");
                        assert!(n <= 3);
                    }),
                    1 => orders
                        .set_status(id, Status::Cancelled, ADMIN, &Shipment::default(), None)
                        .await
                        .map(|_| ()),
                    _ => orders.delete(id, ADMIN, None).await.map(|_| ()),
                }
            }));
        }
    }
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) | Err(StoreError::Rule(_) | StoreError::Transition(_)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    check_books(&e, &pid, 40, &ids, false).await;
    assert_eq!(stock(&e, &pid).await, 40, "every path gave back, once");
    for &id in &ids {
        let key = e.orders.order(id).await.unwrap().reservation_key.unwrap();
        assert_eq!(releases_of(&e, &key).await, 1);
    }
}

// ---- 5. the sweeper ----------------------------------------------------------------------

async fn the_sweeper_finishes_what_crashes_left(backend: Backend) {
    let e = env(backend).await;
    let pid = product(&e, "Lantern", 2_000, 20).await;
    let long_ago = clock::now_ms() - 10 * 60_000;

    // A placement that crashed after reserving, one still in flight, and one
    // that crashed before it reserved anything.
    exec(
        &e,
        &format!(
            "INSERT INTO order_placements (reservation_key, user_id, created_at) VALUES \
             ('p-test-crashed', 31, {long_ago}), ('p-test-fresh', 32, {}), \
             ('p-test-early', 33, {long_ago})",
            clock::now_ms()
        ),
    )
    .await;
    e.inventory
        .reserve("p-test-crashed", &lines(&[(&pid, 3)]))
        .await
        .unwrap();
    e.inventory
        .reserve("p-test-fresh", &lines(&[(&pid, 2)]))
        .await
        .unwrap();

    // An order cancelled whose release never happened.
    let cancelled = e
        .orders
        .place(&new_order(34, &[(&pid, 1)]))
        .await
        .unwrap()
        .order;
    exec(
        &e,
        &format!(
            "UPDATE orders SET status = 'cancelled', inventory_pending = 'release', \
             inventory_deducted = 0 WHERE id = {}",
            cancelled.id
        ),
    )
    .await;

    // A sync that crashed after marking its intent, and one that crashed
    // after the catalog had reserved.
    let synced = e
        .orders
        .import(&[
            imported(35, &pid, 2_000, 4, Status::Processing),
            imported(36, &pid, 2_000, 5, Status::Delivered),
        ])
        .await
        .unwrap();
    for &id in &synced {
        exec(
            &e,
            &format!(
                "UPDATE orders SET inventory_pending = 'reserve', reservation_key = 'o{id}-s1', \
                 reservation_source = 'sync', sync_generation = 1, updated_at = {long_ago} \
                 WHERE id = {id}"
            ),
        )
        .await;
    }
    e.inventory
        .reserve(&format!("o{}-s1", synced[1]), &lines(&[(&pid, 5)]))
        .await
        .unwrap();
    // 20 − 3 − 2 − 1 − 5
    assert_eq!(stock(&e, &pid).await, 9);

    let fixed = e
        .orders
        .sweep(Duration::from_secs(60), Duration::from_secs(86_400))
        .await
        .unwrap();
    assert_eq!(fixed, 5, "two stale placements, a release, two reserves");
    // + 3 + 1 − 4 (the second reserve was already taken)
    assert_eq!(stock(&e, &pid).await, 9);
    assert_eq!(
        state(&e, "p-test-crashed").await.as_deref(),
        Some("released")
    );
    assert_eq!(state(&e, "p-test-fresh").await.as_deref(), Some("held"));
    // The early crash is marked released, so its late reserve cannot hold stock.
    assert_eq!(state(&e, "p-test-early").await.as_deref(), Some("released"));
    let late = e
        .inventory
        .reserve("p-test-early", &lines(&[(&pid, 1)]))
        .await;
    assert!(matches!(late, Err(InventoryError::Conflict(_))), "{late:?}");
    assert_eq!(
        column(&e, "SELECT user_id FROM order_placements ORDER BY user_id").await,
        vec![32],
        "only the placement still in its grace is left"
    );
    let o = e.orders.order(cancelled.id).await.unwrap();
    assert_eq!(o.inventory_pending, None);
    assert_eq!(
        state(&e, o.reservation_key.as_deref().unwrap())
            .await
            .as_deref(),
        Some("released")
    );
    for &id in &synced {
        let o = e.orders.order(id).await.unwrap();
        assert_eq!((o.inventory_pending, o.inventory_deducted), (None, 1));
        assert_eq!(
            state(&e, &format!("o{id}-s1")).await.as_deref(),
            Some("held")
        );
    }
    let mut ids = vec![cancelled.id];
    ids.extend(&synced);

    // Nothing left to do; then the fresh one's grace runs out too.
    assert_eq!(
        e.orders
            .sweep(Duration::from_secs(60), Duration::from_secs(86_400))
            .await
            .unwrap(),
        0
    );
    assert_eq!(stock(&e, &pid).await, 9);
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        e.orders
            .sweep(Duration::ZERO, Duration::from_secs(86_400))
            .await
            .unwrap(),
        1
    );
    assert_eq!(stock(&e, &pid).await, 11);
    assert_eq!(scalar(&e, "SELECT COUNT(*) FROM order_placements").await, 0);
    check_books(&e, &pid, 20, &ids, true).await;
}

/// Idempotency records outlive their TTL only while the sweeper is away.
async fn the_sweeper_forgets_old_idempotency_keys(backend: Backend) {
    let e = env(backend).await;
    let pid = product(&e, "Compass", 1_500, 5).await;
    let mut order = new_order(41, &[(&pid, 1)]);
    order.idempotency = Some(("old-key".into(), "h".into()));
    let first = e.orders.place(&order).await.unwrap();
    exec(
        &e,
        &format!(
            "UPDATE order_placements SET created_at = {}",
            clock::now_ms() - 2 * 86_400_000
        ),
    )
    .await;
    assert_eq!(
        e.orders
            .sweep(Duration::from_secs(60), Duration::from_secs(86_400))
            .await
            .unwrap(),
        0,
        "dropping expired keys is housekeeping, not a fix"
    );
    assert_eq!(scalar(&e, "SELECT COUNT(*) FROM order_placements").await, 0);
    let second = e.orders.place(&order).await.unwrap();
    assert!(!second.replayed);
    assert_ne!(second.order.id, first.order.id);
    assert_eq!(stock(&e, &pid).await, 3);
}

/// BUG: a lifecycle change keeps `inventory_pending = 'reserve'` and never
/// releases (nothing is deducted yet), so the sweeper later reserves stock
/// for an order that was cancelled in between: the stock never comes back.
async fn the_sweeper_reserves_nothing_for_an_order_cancelled_after_a_sync_crash(backend: Backend) {
    let e = env(backend).await;
    let pid = product(&e, "Sleeping Mat", 3_500, 10).await;
    let id = e
        .orders
        .import(&[imported(51, &pid, 3_500, 2, Status::Pending)])
        .await
        .unwrap()[0];
    // sync_one marked its intent, then the process died.
    exec(
        &e,
        &format!(
            "UPDATE orders SET inventory_pending = 'reserve', reservation_key = 'o{id}-s1', \
             reservation_source = 'sync', sync_generation = 1, updated_at = {} WHERE id = {id}",
            clock::now_ms() - 600_000
        ),
    )
    .await;
    e.orders
        .set_status(id, Status::Cancelled, ADMIN, &Shipment::default(), None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    e.orders
        .sweep(Duration::ZERO, Duration::from_secs(86_400))
        .await
        .unwrap();
    let o = e.orders.order(id).await.unwrap();
    assert_eq!(o.status(), Status::Cancelled);
    assert_ne!(
        state(&e, &format!("o{id}-s1")).await.as_deref(),
        Some("held"),
        "a cancelled order must not hold stock"
    );
    assert_eq!(stock(&e, &pid).await, 10);
    check_books(&e, &pid, 10, &[id], true).await;
}

/// BUG (same cause, no crash needed): an admin cancels while sync-inventory
/// is reserving for the order; the reserve then lands on a cancelled order.
async fn a_cancel_during_sync_leaks_no_stock(backend: Backend) {
    let gate = Gate::new('o', false);
    let e = env_with(backend, Some(gate.clone())).await;
    let pid = product(&e, "Dry Bag", 1_800, 10).await;
    let id = e
        .orders
        .import(&[imported(61, &pid, 1_800, 3, Status::Processing)])
        .await
        .unwrap()[0];
    let orders = e.orders.clone();
    let sync = tokio::spawn(async move { orders.sync_inventory().await });
    gate.reached().await;
    e.orders
        .set_status(id, Status::Cancelled, ADMIN, &Shipment::default(), None)
        .await
        .unwrap();
    gate.open.notify_one();
    sync.await.unwrap().unwrap();
    let o = e.orders.order(id).await.unwrap();
    assert_eq!(o.status(), Status::Cancelled);
    check_books(&e, &pid, 10, &[id], true).await;
    assert_eq!(
        stock(&e, &pid).await,
        10,
        "the cancelled order's stock is back"
    );
}

/// The sweeper gives up on a placement stuck past its grace (before or after
/// the catalog reserved): the stock comes back and the late placement fails
/// instead of writing an order that holds nothing.
async fn a_placement_the_sweeper_gave_up_on_never_becomes_an_order(backend: Backend) {
    for after in [false, true] {
        let gate = Gate::new('p', after);
        let e = env_with(backend, Some(gate.clone())).await;
        let pid = product(&e, "Stalled Stove", 1_000, 5).await;
        let orders = e.orders.clone();
        let order = new_order(91, &[(&pid, 2)]);
        let stalled = tokio::spawn(async move { orders.place(&order).await });
        gate.reached().await;
        exec(
            &e,
            &format!(
                "UPDATE order_placements SET created_at = {}",
                clock::now_ms() - 600_000
            ),
        )
        .await;
        let fixed = e
            .orders
            .sweep(Duration::from_secs(60), Duration::from_secs(86_400))
            .await
            .unwrap();
        assert_eq!(fixed, 1, "after = {after}");
        gate.open.notify_one();
        let err = stalled.await.unwrap().unwrap_err();
        assert!(
            matches!(err, StoreError::Inventory(InventoryError::Conflict(_))),
            "after = {after}: {err:?}"
        );
        assert_eq!(stock(&e, &pid).await, 5, "after = {after}");
        assert_eq!(scalar(&e, "SELECT COUNT(*) FROM orders").await, 0);
        assert_eq!(scalar(&e, "SELECT COUNT(*) FROM order_placements").await, 0);
        assert_eq!(
            scalar(
                &e,
                "SELECT COUNT(*) FROM inventory_reservations WHERE state = 'held'"
            )
            .await,
            0
        );
        // The customer simply tries again.
        let p = e.orders.place(&new_order(91, &[(&pid, 2)])).await.unwrap();
        assert_eq!(stock(&e, &pid).await, 3);
        check_books(&e, &pid, 5, &[p.order.id], true).await;
    }
}

/// With an Idempotency-Key, a duplicate waiting on a stalled first request
/// takes over when the sweeper gives up on it: one order in the end.
async fn a_duplicate_takes_over_a_stalled_idempotent_placement(backend: Backend) {
    let gate = Gate::new('p', false);
    let e = env_with(backend, Some(gate.clone())).await;
    let pid = product(&e, "Stalled Lamp", 1_000, 5).await;
    let mut order = new_order(92, &[(&pid, 2)]);
    order.idempotency = Some(("stalled".into(), "h".into()));
    let (orders, first) = (e.orders.clone(), order.clone());
    let stalled = tokio::spawn(async move { orders.place(&first).await });
    gate.reached().await;
    let (orders, second) = (e.orders.clone(), order.clone());
    let duplicate = tokio::spawn(async move { orders.place(&second).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    exec(
        &e,
        &format!(
            "UPDATE order_placements SET created_at = {}",
            clock::now_ms() - 600_000
        ),
    )
    .await;
    e.orders
        .sweep(Duration::from_secs(60), Duration::from_secs(86_400))
        .await
        .unwrap();
    let took_over = duplicate.await.unwrap().unwrap();
    assert!(!took_over.replayed);
    gate.open.notify_one();
    let err = stalled.await.unwrap().unwrap_err();
    assert!(
        matches!(err, StoreError::Inventory(InventoryError::Conflict(_))),
        "{err:?}"
    );
    let again = e.orders.place(&order).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.order.id, took_over.order.id);
    assert_eq!(
        scalar(&e, "SELECT COUNT(*) FROM orders WHERE user_id = 92").await,
        1
    );
    assert_eq!(stock(&e, &pid).await, 3);
    check_books(&e, &pid, 5, &[took_over.order.id], true).await;
}

/// Several lines are reserved all or none, and orders naming the same
/// products in opposite orders cannot deadlock each other.
async fn multi_line_orders_are_all_or_nothing(backend: Backend) {
    let e = env(backend).await;
    let tent = product(&e, "Two-person Tent", 10_000, 30).await;
    let tarp = product(&e, "Tarp", 2_500, 12).await;
    let err = e
        .orders
        .place(&new_order(1, &[(&tent, 2), (&tarp, 13)]))
        .await
        .unwrap_err();
    match err {
        StoreError::Inventory(InventoryError::Insufficient {
            product_id,
            available,
            requested,
        }) => assert_eq!((product_id, available, requested), (tarp.clone(), 12, 13)),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(stock(&e, &tent).await, 30, "the tent line was not taken");
    assert_eq!(
        scalar(&e, "SELECT COUNT(*) FROM inventory_reservations").await,
        0
    );

    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let orders = e.orders.clone();
            let order = if i % 2 == 0 {
                new_order(200 + i, &[(&tent, 1), (&tarp, 1)])
            } else {
                new_order(200 + i, &[(&tarp, 1), (&tent, 1)])
            };
            tokio::spawn(async move { orders.place(&order).await })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(p) => {
                assert_eq!(p.items.len(), 2);
                assert_eq!(p.order.total_cents, 12_500);
                ids.push(p.order.id);
            }
            Err(StoreError::Inventory(InventoryError::Insufficient { product_id, .. })) => {
                assert_eq!(product_id, tarp);
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ids.len(), 12, "the tarp is the limit");
    check_books(&e, &tent, 30, &ids, true).await;
    check_books(&e, &tarp, 12, &ids, true).await;
    assert_eq!(stock(&e, &tarp).await, 0);
    let created: Vec<OrderEvent> = e
        .orders
        .undelivered(1000)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, ev)| ev)
        .collect();
    assert_eq!(created.len(), 12);
    assert!(created.iter().all(|ev| ev.lines.len() == 2));
}

// ---- 6. the outbox -----------------------------------------------------------------------

/// Records what it is handed; fails while `down`.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<OrderEvent>>,
    attempts: Mutex<usize>,
    down: AtomicBool,
}

#[async_trait]
impl EventHandler for Recorder {
    async fn handle(&self, events: &[OrderEvent]) -> Result<(), PortError> {
        *self.attempts.lock().unwrap() += 1;
        if self.down.load(Ordering::SeqCst) {
            return Err(PortError("analytics is down".into()));
        }
        self.seen.lock().unwrap().extend(events.iter().cloned());
        Ok(())
    }
}

/// An event as the test compares it: kind, from, to.
type Step<'a> = (OrderEventKind, Option<&'a str>, &'a str);

async fn the_outbox_carries_every_change_in_order(backend: Backend) {
    use OrderEventKind::*;
    let e = env(backend).await;
    let pid = product(&e, "Trail Shoes", 1_250, 50).await;
    let none = Shipment::default();

    let a = e.orders.place(&new_order(71, &[(&pid, 2)])).await.unwrap();
    let a_id = a.order.id;
    for to in [Status::Processing, Status::Shipped] {
        let shipment = Shipment {
            tracking_number: Some("TRK-1".into()),
            courier_name: Some("Post".into()),
            estimated_delivery: None,
        };
        e.orders
            .set_status(a_id, to, ADMIN, &shipment, None)
            .await
            .unwrap();
    }
    // Refused and silent changes write no events.
    assert!(
        e.orders
            .set_status(a_id, Status::Pending, ADMIN, &none, None)
            .await
            .is_err()
    );
    e.orders.hide(a_id, customer(71)).await.unwrap();
    for to in [
        Status::Cancelled,
        Status::RefundProcessing,
        Status::Refunded,
    ] {
        e.orders
            .set_status(a_id, to, ADMIN, &none, None)
            .await
            .unwrap();
    }

    let b = e.orders.place(&new_order(72, &[(&pid, 1)])).await.unwrap();
    let b_id = b.order.id;
    e.orders
        .request_cancellation(b_id, customer(72), "too big", &[])
        .await
        .unwrap();
    e.orders
        .reject_cancellation(b_id, ADMIN, "already packed")
        .await
        .unwrap();
    e.orders.delete(b_id, ADMIN, None).await.unwrap();

    let expected: BTreeMap<i64, Vec<Step<'_>>> = BTreeMap::from([
        (
            a_id,
            vec![
                (Created, None, "pending"),
                (StatusChanged, Some("pending"), "processing"),
                (StatusChanged, Some("processing"), "shipped"),
                (Cancelled, Some("shipped"), "cancelled"),
                (StatusChanged, Some("cancelled"), "refund_processing"),
                (Refunded, Some("refund_processing"), "refunded"),
            ],
        ),
        (
            b_id,
            vec![
                (Created, None, "pending"),
                (StatusChanged, Some("pending"), "cancel_requested"),
                (StatusChanged, Some("cancel_requested"), "pending"),
                (Deleted, Some("pending"), "deleted"),
            ],
        ),
    ]);

    let rows = e.orders.undelivered(1000).await.unwrap();
    assert_eq!(rows.len(), 10);
    assert!(rows.windows(2).all(|w| w[0].0 < w[1].0), "oldest first");
    let event_ids: HashSet<&str> = rows.iter().map(|(_, ev)| ev.event_id.as_str()).collect();
    assert_eq!(event_ids.len(), rows.len(), "event ids are unique");
    for (order_id, want) in &expected {
        let placed = if *order_id == a_id { &a } else { &b };
        let events: Vec<&OrderEvent> = rows
            .iter()
            .map(|(_, ev)| ev)
            .filter(|ev| ev.order_id == *order_id)
            .collect();
        let got: Vec<Step<'_>> = events
            .iter()
            .map(|ev| (ev.kind, ev.from_status.as_deref(), ev.to_status.as_str()))
            .collect();
        assert_eq!(&got, want, "events of order {order_id}");
        let seqs: Vec<i64> = events.iter().map(|ev| ev.seq).collect();
        assert_eq!(seqs, (1..=want.len() as i64).collect::<Vec<_>>());
        let qty = placed.items[0].quantity;
        for ev in &events {
            assert_eq!(ev.user_id, placed.order.user_id);
            assert_eq!(ev.total_cents, 1_250 * qty);
            assert_eq!(ev.payment_method, "card");
            assert_eq!(ev.placed_at, placed.order.created_at);
            assert!(ev.at >= ev.placed_at);
            assert_eq!(ev.lines.len(), 1);
            let line = &ev.lines[0];
            assert_eq!(line.product_id, pid);
            assert_eq!(line.category, "sports");
            assert_eq!(line.quantity, qty);
            assert_eq!(line.unit_price_cents, 1_250);
        }
        let stored = e.orders.order(*order_id).await.unwrap();
        assert_eq!(stored.event_seq, want.len() as i64);
    }

    let bus = Arc::new(InProcessBus::new());
    let recorder = Arc::new(Recorder::default());
    bus.register(recorder.clone());
    let relay = Relay::new(e.orders.clone(), bus.clone() as Arc<dyn EventBus>);

    // A consumer that fails gets everything again next time.
    recorder.down.store(true, Ordering::SeqCst);
    assert!(relay.deliver_once().await.is_err());
    assert!(relay.deliver_once().await.is_err());
    assert_eq!(*recorder.attempts.lock().unwrap(), 2);
    assert_eq!(e.orders.undelivered(1000).await.unwrap().len(), 10);
    assert_eq!(e.orders.outbox_counts().await.unwrap(), (10, 0));

    recorder.down.store(false, Ordering::SeqCst);
    assert_eq!(relay.deliver_once().await.unwrap(), 10);
    let seen: Vec<OrderEvent> = recorder.seen.lock().unwrap().clone();
    let sent: Vec<OrderEvent> = rows.into_iter().map(|(_, ev)| ev).collect();
    assert_eq!(seen, sent, "the handler saw every event, in outbox order");
    assert!(e.orders.undelivered(1000).await.unwrap().is_empty());
    assert_eq!(e.orders.outbox_counts().await.unwrap(), (0, 10));
    assert_eq!(relay.deliver_once().await.unwrap(), 0);

    // The next change continues the order's sequence.
    e.orders
        .set_status(a_id, Status::Refunded, ADMIN, &none, None)
        .await
        .unwrap_err();
    let c = e.orders.place(&new_order(71, &[(&pid, 1)])).await.unwrap();
    e.orders
        .set_status(c.order.id, Status::Processing, ADMIN, &none, None)
        .await
        .unwrap();
    assert_eq!(relay.deliver_once().await.unwrap(), 2);
    let seen = recorder.seen.lock().unwrap();
    let tail: Vec<(i64, i64)> = seen[10..].iter().map(|ev| (ev.order_id, ev.seq)).collect();
    assert_eq!(tail, vec![(c.order.id, 1), (c.order.id, 2)]);
}

// ---- 7. sync and undo-sync ---------------------------------------------------------------

async fn sync_takes_once_and_undo_gives_back_exactly(backend: Backend) {
    let e = env(backend).await;
    let pid = product(&e, "Day Pack", 1_000, 50).await;
    let scarce = product(&e, "Rare Stove", 500, 1).await;
    let ids = e
        .orders
        .import(&[
            imported(81, &pid, 1_000, 2, Status::Pending),
            imported(81, &pid, 1_000, 3, Status::Processing),
            imported(82, &pid, 1_000, 4, Status::Delivered),
            imported(82, &pid, 1_000, 5, Status::Cancelled),
            imported(83, &pid, 1_000, 1, Status::Refunded),
            imported(83, &scarce, 500, 3, Status::Pending),
            // C9: the original's sync took stock for these again.
            imported(84, &pid, 1_000, 1, Status::CancelRequested),
            imported(84, &pid, 1_000, 1, Status::RefundProcessing),
            imported(84, &pid, 1_000, 1, Status::Deleted),
        ])
        .await
        .unwrap();
    let [
        pending,
        processing,
        delivered,
        cancelled,
        refunded,
        short,
        cancel_requested,
        refund_processing,
        deleted,
    ] = ids[..]
    else {
        panic!("nine ids: {ids:?}")
    };
    let holding = [pending, processing, delivered];
    assert_eq!(
        column(
            &e,
            "SELECT user_order_number FROM orders WHERE user_id = 81 ORDER BY id"
        )
        .await,
        vec![1, 2]
    );
    assert_eq!(stock(&e, &pid).await, 50, "imports take no stock");
    for &id in &ids {
        let o = e.orders.order(id).await.unwrap();
        assert_eq!((o.inventory_deducted, o.reservation_key), (0, None));
    }

    let report = e.orders.sync_inventory().await.unwrap();
    assert_eq!(report.synced, 3);
    assert_eq!(report.skipped, vec![short]);
    assert_eq!(report.errors.len(), 1);
    assert_eq!(report.errors[0].0, short);
    assert_eq!(report.errors[0].1, scarce);
    assert!(
        report.errors[0].2.contains("Insufficient"),
        "{:?}",
        report.errors
    );
    assert_eq!(stock(&e, &pid).await, 41);
    assert_eq!(stock(&e, &scarce).await, 1);
    let mut first_keys = Vec::new();
    for &id in &holding {
        let o = e.orders.order(id).await.unwrap();
        assert_eq!(o.inventory_deducted, 1);
        assert_eq!(o.reservation_source.as_deref(), Some("sync"));
        let key = o.reservation_key.unwrap();
        assert_eq!(state(&e, &key).await.as_deref(), Some("held"));
        first_keys.push(key);
    }
    for id in [
        cancelled,
        refunded,
        cancel_requested,
        refund_processing,
        deleted,
    ] {
        let o = e.orders.order(id).await.unwrap();
        assert_eq!((o.inventory_deducted, o.reservation_key), (0, None));
    }
    let o = e.orders.order(short).await.unwrap();
    assert_eq!((o.inventory_deducted, o.inventory_pending), (0, None));

    // Again: nothing new (the scarce one is tried again and reported again).
    let again = e.orders.sync_inventory().await.unwrap();
    assert_eq!(again.synced, 0);
    assert_eq!(again.skipped, vec![short]);
    assert_eq!(stock(&e, &pid).await, 41);

    // A placed order is not sync's to give back.
    let placed = e.orders.place(&new_order(84, &[(&pid, 6)])).await.unwrap();
    assert_eq!(stock(&e, &pid).await, 35);

    let (restored, errors) = e.orders.undo_sync().await.unwrap();
    assert_eq!((restored, errors.len()), (3, 0), "{errors:?}");
    assert_eq!(
        stock(&e, &pid).await,
        44,
        "back to the start, less the placed order"
    );
    for key in &first_keys {
        assert_eq!(state(&e, key).await.as_deref(), Some("released"));
        assert_eq!(releases_of(&e, key).await, 1);
    }
    assert_eq!(
        e.orders.undo_sync().await.unwrap().0,
        0,
        "nothing to undo twice"
    );
    assert_eq!(stock(&e, &pid).await, 44);
    let p = e.orders.order(placed.order.id).await.unwrap();
    assert_eq!(p.inventory_deducted, 1);

    // Sync works again, under new keys.
    let third = e.orders.sync_inventory().await.unwrap();
    assert_eq!(third.synced, 3);
    assert_eq!(stock(&e, &pid).await, 35);
    for (&id, old) in holding.iter().zip(&first_keys) {
        let o = e.orders.order(id).await.unwrap();
        let key = o.reservation_key.unwrap();
        assert_ne!(&key, old);
        assert_eq!(state(&e, &key).await.as_deref(), Some("held"));
    }

    // Cancelling a synced order gives its stock back once; undo skips it.
    e.orders
        .set_status(
            pending,
            Status::Cancelled,
            ADMIN,
            &Shipment::default(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(stock(&e, &pid).await, 37);
    assert_eq!(e.orders.undo_sync().await.unwrap().0, 2);
    assert_eq!(stock(&e, &pid).await, 44);
    let mut all = ids.clone();
    all.push(placed.order.id);
    check_books(&e, &pid, 50, &all, false).await;
}

ecap_core::on_every_backend!(
    sixty_four_customers_race_for_ten_units,
    one_customer_twenty_orders_numbered_without_gaps,
    fifty_requests_with_one_idempotency_key_place_one_order,
    a_refused_idempotent_request_can_be_retried,
    cancel_and_delete_race_release_once,
    approve_reject_delete_race_release_once,
    undo_sync_cancel_delete_race_release_once,
    the_sweeper_finishes_what_crashes_left,
    the_sweeper_forgets_old_idempotency_keys,
    the_sweeper_reserves_nothing_for_an_order_cancelled_after_a_sync_crash,
    a_cancel_during_sync_leaks_no_stock,
    a_placement_the_sweeper_gave_up_on_never_becomes_an_order,
    a_duplicate_takes_over_a_stalled_idempotent_placement,
    multi_line_orders_are_all_or_nothing,
    the_outbox_carries_every_change_in_order,
    sync_takes_once_and_undo_gives_back_exactly,
);

// ---- 8. the status machine, as a property (SQLite) ------------------------------------------

#[derive(Debug, Clone)]
enum Action {
    /// Any status the endpoint accepts, valid or not.
    SetStatus(Status),
    /// One of the statuses allowed next (so walks get deep); any when none is.
    Advance(usize),
    /// The first status allowed next: along the happy path towards delivery.
    Forward,
    RequestCancel,
    Approve,
    Reject,
    Delete,
    Hide,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        2 => prop::sample::select(Status::SETTABLE.to_vec()).prop_map(Action::SetStatus),
        3 => any::<usize>().prop_map(Action::Advance),
        4 => Just(Action::Forward),
        1 => Just(Action::RequestCancel),
        1 => Just(Action::Approve),
        1 => Just(Action::Reject),
        1 => Just(Action::Delete),
        1 => Just(Action::Hide),
    ]
}

const OWNER: i64 = 42;
const START: i64 = 20;
const QTY: i64 = 3;

async fn walk(e: &Env, actions: Vec<Action>) -> Result<(), TestCaseError> {
    let pid = product(e, "Property Tent", 19_900, START).await;
    let placed = e
        .orders
        .place(&new_order(OWNER, &[(&pid, QTY)]))
        .await
        .unwrap();
    let id = placed.order.id;
    let key = placed.order.reservation_key.clone().unwrap();
    let none = Shipment::default();
    for (step, act) in actions.into_iter().enumerate() {
        let before: OrderRow = e.orders.order(id).await.unwrap();
        let from = before.status();
        let act = match act {
            Action::Advance(i) => Action::SetStatus(match from.next() {
                [] => Status::SETTABLE[i % Status::SETTABLE.len()],
                next => next[i % next.len()],
            }),
            Action::Forward => Action::SetStatus(match from.next() {
                [] => Status::Processing,
                next => next[0],
            }),
            other => other,
        };
        let result = match &act {
            Action::SetStatus(to) => e.orders.set_status(id, *to, ADMIN, &none, None).await,
            Action::RequestCancel => {
                e.orders
                    .request_cancellation(id, customer(OWNER), "please", &[])
                    .await
            }
            Action::Approve => e.orders.approve_cancellation(id, ADMIN).await,
            Action::Reject => e.orders.reject_cancellation(id, ADMIN, "no").await,
            Action::Delete => e.orders.delete(id, ADMIN, None).await,
            Action::Hide => e.orders.hide(id, customer(OWNER)).await,
            Action::Advance(_) | Action::Forward => unreachable!(),
        };
        let after: OrderRow = e.orders.order(id).await.unwrap();
        let ctx = format!("step {step}: {act:?} from {from:?}");

        // What the rules allow, and where they lead.
        let expected: Option<Status> = match &act {
            Action::SetStatus(to) => from.can_become(*to).then_some(*to),
            Action::RequestCancel => from
                .cancellable_by_customer()
                .then_some(Status::CancelRequested),
            Action::Approve => (from == Status::CancelRequested).then_some(Status::Cancelled),
            Action::Reject => (from == Status::CancelRequested).then(|| {
                before
                    .status_before_request
                    .as_deref()
                    .and_then(Status::parse)
                    .unwrap()
            }),
            Action::Delete => (from != Status::Deleted).then_some(Status::Deleted),
            Action::Hide => before.hidden_at.is_none().then_some(from),
            Action::Advance(_) | Action::Forward => unreachable!(),
        };
        prop_assert!(Status::ALL.contains(&after.status()), "{}", ctx);
        prop_assert_eq!(
            Status::parse(&after.status),
            Some(after.status()),
            "{}",
            ctx
        );
        match (&result, expected) {
            (Ok(row), Some(to)) => {
                prop_assert_eq!(after.status(), to, "{}", ctx);
                prop_assert_eq!(row.id, id);
                prop_assert_eq!(row.status(), to, "{}", ctx);
                let events = if matches!(act, Action::Hide) { 0 } else { 1 };
                prop_assert_eq!(after.event_seq, before.event_seq + events, "{}", ctx);
            }
            (Err(err), None) => {
                let kind_ok = match &act {
                    Action::SetStatus(_) => matches!(err, StoreError::Transition(_)),
                    _ => matches!(err, StoreError::Rule(_)),
                };
                prop_assert!(kind_ok, "{}: {:?}", ctx, err);
                prop_assert_eq!(&before, &after, "{}: a refused action changes nothing", ctx);
            }
            (r, want) => {
                return Err(TestCaseError::fail(format!(
                    "{ctx}: expected {want:?}, got {r:?}"
                )));
            }
        }

        // The stock the order holds is what its status says.
        let should = after.should_hold_stock();
        let held = state(e, &key).await.as_deref() == Some("held");
        prop_assert_eq!(held, should, "{}: reservation held ({})", ctx, after.status);
        prop_assert_eq!(after.inventory_deducted, i64::from(should), "{}", ctx);
        prop_assert_eq!(after.inventory_pending.as_deref(), None, "{}", ctx);
        let p = e.catalog.product(&pid).await.unwrap().unwrap();
        prop_assert_eq!(p.stock, START - if should { QTY } else { 0 }, "{}", ctx);
        prop_assert_eq!(
            e.catalog.ledger_sum(&pid).await.unwrap(),
            p.stock,
            "{}",
            ctx
        );
        prop_assert!(releases_of(e, &key).await <= 1, "{}", ctx);
    }
    Ok(())
}

#[test]
fn the_status_machine_keeps_stock_and_state_consistent() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let e = rt.block_on(env(Backend::Sqlite));
    let mut runner = TestRunner::new(Config {
        cases: 48,
        max_shrink_iters: 256,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&prop::collection::vec(action(), 1..=16), |actions| {
        rt.block_on(walk(&e, actions))
    });
    rt.block_on(e.db.close());
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
