//! The orders store with a real catalog on SQLite, PostgreSQL and MariaDB:
//! no oversell, gap-free order numbers, idempotent placement, stock released
//! exactly once, the sweeper, the outbox relay, inventory sync.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use ecap_catalog::{CatalogInventory, CatalogStore, ResponseCache, store::NewProduct};
use ecap_core::{
    db::{Backend, Db},
    events::{EventHandler, InProcessBus, OrderEvent, OrderEventKind},
    ports::{Inventory, InventoryError, PortError, ReserveLine, ReservedLine},
    testing::TestDb,
};
use ecap_orders::{
    OrderStore,
    domain::Status,
    outbox::Relay,
    store::{Actor, ImportedOrder, NewOrder, Shipment, StoreError},
};
use serde_json::json;

struct Env {
    db: Db,
    catalog: CatalogStore,
    orders: OrderStore,
    _t: TestDb,
}

async fn env(backend: Backend) -> Env {
    env_with(backend, false).await
}

/// `shared`: the all-in-one fast path (reservation inside the order's transaction).
async fn env_with(backend: Backend, shared: bool) -> Env {
    let t = TestDb::create(backend).await;
    let db = Db::connect(&t.url, 20).await.unwrap();
    ecap_catalog::migrate(&db).await.unwrap();
    assert_eq!(ecap_orders::migrate(&db).await.unwrap(), 1);
    assert_eq!(ecap_orders::migrate(&db).await.unwrap(), 0);
    let catalog = CatalogStore::new(db.clone());
    let inventory: Arc<dyn Inventory> = Arc::new(CatalogInventory {
        store: catalog.clone(),
        cache: ResponseCache::off(),
    });
    let orders = OrderStore::new(db.clone(), inventory).with_shared_inventory(shared);
    Env {
        db,
        catalog,
        orders,
        _t: t,
    }
}

async fn product(e: &Env, name: &str, price_cents: i64, stock: i64) -> String {
    e.catalog
        .create(NewProduct {
            name: name.into(),
            description: format!("{name} for the order tests"),
            price_cents,
            stock,
            category: "sports".into(),
            tags: vec![],
            attributes: json!({}),
            sku: None,
            owner_id: None,
            images: Vec::new(),
        })
        .await
        .unwrap()
        .id
}

fn order(user_id: i64, lines: &[(&str, i64)]) -> NewOrder {
    NewOrder {
        user_id,
        user_email: Some(format!("u{user_id}@example.com")),
        lines: lines
            .iter()
            .map(|(p, q)| ReserveLine {
                product_id: (*p).into(),
                quantity: *q,
            })
            .collect(),
        payment_method: "cod".into(),
        shipping_address: json!({"street": "1 Main"}),
        idempotency: None,
    }
}

async fn stock(e: &Env, id: &str) -> i64 {
    let p = e.catalog.product(id).await.unwrap().unwrap();
    assert_eq!(
        e.catalog.ledger_sum(id).await.unwrap(),
        p.stock,
        "stock is the sum of the ledger"
    );
    p.stock
}

async fn count(e: &Env, sql: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(e.db.pool())
        .await
        .unwrap();
    n
}

const ADMIN: Actor = Actor { id: 1, admin: true };

async fn sixty_four_customers_race_for_ten_units(backend: Backend) {
    sixty_four_customers_race_for_ten_units_with(backend, false).await
}

async fn sixty_four_customers_race_for_ten_units_in_one_transaction(backend: Backend) {
    sixty_four_customers_race_for_ten_units_with(backend, true).await
}

async fn sixty_four_customers_race_for_ten_units_with(backend: Backend, shared: bool) {
    let e = Arc::new(env_with(backend, shared).await);
    let p = product(&e, "Last Tent", 9_999, 10).await;
    let other = product(&e, "Spare Peg", 150, 1_000).await;
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let e = e.clone();
            let (p, other) = (p.clone(), other.clone());
            tokio::spawn(async move {
                e.orders
                    .place(&order(100 + i, &[(&p, 1), (&other, 2)]))
                    .await
            })
        })
        .collect();
    let mut placed = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(o) => placed.push(o),
            Err(StoreError::Inventory(InventoryError::Insufficient { .. })) => {}
            Err(other) => panic!("unexpected failure: {other:?}"),
        }
    }
    assert_eq!(placed.len(), 10, "exactly the stock is sold");
    assert_eq!(stock(&e, &p).await, 0);
    assert_eq!(stock(&e, &other).await, 1_000 - 20, "losers took nothing");
    for o in &placed {
        assert_eq!(o.order.total_cents, 9_999 + 300, "catalog prices");
        let key = o.order.reservation_key.clone().unwrap();
        assert_eq!(
            e.catalog.reservation_state(&key).await.unwrap().as_deref(),
            Some("held")
        );
    }
    assert_eq!(count(&e, "SELECT COUNT(*) FROM order_placements").await, 0);
    assert_eq!(count(&e, "SELECT COUNT(*) FROM orders").await, 10);
}

async fn one_customer_twenty_orders_numbered_without_gaps(backend: Backend) {
    one_customer_twenty_orders_numbered_without_gaps_with(backend, false).await
}

async fn one_customer_twenty_orders_numbered_without_gaps_in_one_transaction(backend: Backend) {
    one_customer_twenty_orders_numbered_without_gaps_with(backend, true).await
}

async fn one_customer_twenty_orders_numbered_without_gaps_with(backend: Backend, shared: bool) {
    let e = Arc::new(env_with(backend, shared).await);
    let p = product(&e, "Chalk", 500, 1_000).await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let e = e.clone();
            let p = p.clone();
            tokio::spawn(async move { e.orders.place(&order(7, &[(&p, 1)])).await })
        })
        .collect();
    let mut numbers = Vec::new();
    for t in tasks {
        numbers.push(t.await.unwrap().unwrap().order.user_order_number);
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=20).collect::<Vec<_>>());
    // Another customer starts at 1.
    let o = e.orders.place(&order(8, &[(&p, 1)])).await.unwrap();
    assert_eq!(o.order.user_order_number, 1);
}

async fn fifty_retries_with_one_key_place_one_order(backend: Backend) {
    fifty_retries_with_one_key_place_one_order_with(backend, false).await
}

async fn fifty_retries_with_one_key_place_one_order_in_one_transaction(backend: Backend) {
    fifty_retries_with_one_key_place_one_order_with(backend, true).await
}

async fn fifty_retries_with_one_key_place_one_order_with(backend: Backend, shared: bool) {
    let e = Arc::new(env_with(backend, shared).await);
    let p = product(&e, "Helmet", 4_500, 100).await;
    let with_key = |hash: &str| NewOrder {
        idempotency: Some(("retry-me".into(), hash.into())),
        ..order(9, &[(&p, 2)])
    };
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let e = e.clone();
            let o = with_key("h1");
            tokio::spawn(async move { e.orders.place(&o).await })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap().unwrap().order.id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every retry answers with the first order");
    assert_eq!(stock(&e, &p).await, 98, "stock taken once");
    assert_eq!(count(&e, "SELECT COUNT(*) FROM orders").await, 1);
    let again = e.orders.place(&with_key("h1")).await.unwrap();
    assert!(again.replayed);
    assert!(matches!(
        e.orders.place(&with_key("h2")).await,
        Err(StoreError::IdempotencyMismatch)
    ));
    // The same key of another customer is another order.
    let mut theirs = with_key("h1");
    theirs.user_id = 10;
    assert_ne!(e.orders.place(&theirs).await.unwrap().order.id, ids[0]);
}

async fn stock_comes_back_exactly_once(backend: Backend) {
    stock_comes_back_exactly_once_with(backend, false).await
}

async fn stock_comes_back_exactly_once_in_one_transaction(backend: Backend) {
    stock_comes_back_exactly_once_with(backend, true).await
}

async fn stock_comes_back_exactly_once_with(backend: Backend, shared: bool) {
    let e = Arc::new(env_with(backend, shared).await);
    let p = product(&e, "Kayak", 50_000, 5).await;
    for round in 0..3 {
        let placed = e.orders.place(&order(11, &[(&p, 2)])).await.unwrap();
        assert_eq!(stock(&e, &p).await, 3);
        let id = placed.order.id;
        if round == 2 {
            e.orders
                .request_cancellation(
                    id,
                    Actor {
                        id: 11,
                        admin: false,
                    },
                    "too big",
                    &[],
                )
                .await
                .unwrap();
        }
        // Cancel, approve and delete race; whichever wins, stock returns once.
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let e = e.clone();
                tokio::spawn(async move {
                    match i % 3 {
                        0 => e
                            .orders
                            .set_status(id, Status::Cancelled, ADMIN, &Shipment::default(), None)
                            .await
                            .map(|_| ()),
                        1 => e.orders.approve_cancellation(id, ADMIN).await.map(|_| ()),
                        _ => e.orders.delete(id, ADMIN, None).await.map(|_| ()),
                    }
                })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            if t.await.unwrap().is_ok() {
                ok += 1;
            }
        }
        assert!(ok >= 1);
        assert_eq!(stock(&e, &p).await, 5, "round {round}");
        let row = e.orders.order(id).await.unwrap();
        assert_eq!(row.inventory_deducted, 0);
        assert_eq!(row.inventory_pending, None);
    }
}

async fn the_sweeper_returns_what_crashes_left(backend: Backend) {
    let e = env(backend).await;
    let p = product(&e, "Rope", 2_000, 10).await;
    // A placement recorded, stock reserved, then the process died.
    sqlx::query(
        "INSERT INTO order_placements (reservation_key, user_id, created_at) VALUES ('p-crashed', 5, 0)",
    )
    .execute(e.db.pool())
    .await
    .unwrap();
    e.orders
        .inventory()
        .reserve(
            "p-crashed",
            &[ReserveLine {
                product_id: p.clone(),
                quantity: 4,
            }],
        )
        .await
        .unwrap();
    assert_eq!(stock(&e, &p).await, 6);
    // A live placement is left alone while young.
    let live = e.orders.place(&order(5, &[(&p, 1)])).await.unwrap();
    let fixed = e
        .orders
        .sweep(Duration::from_secs(60), Duration::from_secs(86_400))
        .await
        .unwrap();
    assert_eq!(fixed, 1);
    assert_eq!(stock(&e, &p).await, 9);
    assert_eq!(
        e.catalog
            .reservation_state("p-crashed")
            .await
            .unwrap()
            .as_deref(),
        Some("released")
    );
    assert_eq!(count(&e, "SELECT COUNT(*) FROM order_placements").await, 0);
    // A release decided in a committed change but never made.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE orders SET inventory_deducted = 0, inventory_pending = 'release' WHERE id = {}",
        live.order.id
    )))
    .execute(e.db.pool())
    .await
    .unwrap();
    e.orders
        .sweep(Duration::from_secs(60), Duration::from_secs(86_400))
        .await
        .unwrap();
    assert_eq!(stock(&e, &p).await, 10);
    let row = e.orders.order(live.order.id).await.unwrap();
    assert_eq!(row.inventory_pending, None);
    // A reserve arriving after the sweeper released its key is refused.
    assert!(
        e.orders
            .inventory()
            .reserve(
                "p-crashed",
                &[ReserveLine {
                    product_id: p.clone(),
                    quantity: 1
                }]
            )
            .await
            .is_err()
    );
}

struct Recorder {
    seen: Mutex<Vec<OrderEvent>>,
    fail: bool,
}

#[async_trait]
impl EventHandler for Recorder {
    async fn handle(&self, events: &[OrderEvent]) -> Result<(), PortError> {
        if self.fail {
            return Err(PortError("consumer down".into()));
        }
        self.seen.lock().unwrap().extend(events.iter().cloned());
        Ok(())
    }
}

async fn the_outbox_delivers_every_change_in_order(backend: Backend) {
    let e = env(backend).await;
    let a = product(&e, "Ball", 1_000, 50).await;
    let b = product(&e, "Net", 2_500, 50).await;
    let first = e
        .orders
        .place(&order(21, &[(&a, 2), (&b, 1)]))
        .await
        .unwrap();
    let second = e.orders.place(&order(22, &[(&a, 1)])).await.unwrap();
    let id = first.order.id;
    for s in [Status::Processing, Status::Shipped] {
        e.orders
            .set_status(id, s, ADMIN, &Shipment::default(), None)
            .await
            .unwrap();
    }
    e.orders
        .set_status(id, Status::Cancelled, ADMIN, &Shipment::default(), None)
        .await
        .unwrap();
    e.orders.delete(second.order.id, ADMIN, None).await.unwrap();
    // A refused change writes no event.
    assert!(
        e.orders
            .set_status(id, Status::Delivered, ADMIN, &Shipment::default(), None)
            .await
            .is_err()
    );

    let failing = Arc::new(InProcessBus::new());
    failing.register(Arc::new(Recorder {
        seen: Mutex::new(vec![]),
        fail: true,
    }));
    assert!(
        Relay::new(e.orders.clone(), failing)
            .deliver_once()
            .await
            .is_err()
    );
    assert_eq!(
        e.orders.undelivered(100).await.unwrap().len(),
        6,
        "nothing marked"
    );

    let bus = Arc::new(InProcessBus::new());
    let rec = Arc::new(Recorder {
        seen: Mutex::new(vec![]),
        fail: false,
    });
    bus.register(rec.clone());
    let relay = Relay::new(e.orders.clone(), bus);
    assert_eq!(relay.deliver_once().await.unwrap(), 6);
    assert_eq!(relay.deliver_once().await.unwrap(), 0);
    let seen = rec.seen.lock().unwrap().clone();
    let mine: Vec<&OrderEvent> = seen.iter().filter(|ev| ev.order_id == id).collect();
    assert_eq!(
        mine.iter().map(|ev| ev.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(
        mine.iter().map(|ev| ev.kind).collect::<Vec<_>>(),
        vec![
            OrderEventKind::Created,
            OrderEventKind::StatusChanged,
            OrderEventKind::StatusChanged,
            OrderEventKind::Cancelled
        ]
    );
    assert_eq!(mine[3].from_status.as_deref(), Some("shipped"));
    assert_eq!(mine[3].to_status, "cancelled");
    assert_eq!(mine[0].total_cents, 4_500);
    assert_eq!(mine[0].lines.len(), 2);
    assert!(mine[0].lines.iter().all(|l| l.category == "sports"));
    let theirs: Vec<&OrderEvent> = seen
        .iter()
        .filter(|ev| ev.order_id == second.order.id)
        .collect();
    assert_eq!(theirs[1].kind, OrderEventKind::Deleted);
    let (pending, delivered) = e.orders.outbox_counts().await.unwrap();
    assert_eq!((pending, delivered), (0, 6));
}

fn imported(user_id: i64, product: &str, quantity: i64, status: Status) -> ImportedOrder {
    ImportedOrder {
        user_id,
        user_email: None,
        lines: vec![ReservedLine {
            product_id: product.into(),
            name: "Imported".into(),
            category: "sports".into(),
            quantity,
            unit_price_cents: 1_000,
        }],
        payment_method: "card".into(),
        shipping_address: json!({"city": "Pune"}),
        placed_at: 1_700_000_000_000,
        status,
        status_at: Some(1_700_100_000_000),
    }
}

async fn sync_takes_once_and_undo_gives_back_what_it_took(backend: Backend) {
    let e = env(backend).await;
    let p = product(&e, "Skis", 30_000, 10).await;
    let scarce = product(&e, "Rare Skis", 90_000, 1).await;
    let placed = e.orders.place(&order(31, &[(&p, 1)])).await.unwrap();
    let ids = e
        .orders
        .import(&[
            imported(31, &p, 2, Status::Pending),
            imported(31, &p, 1, Status::Delivered),
            imported(32, &p, 3, Status::Cancelled),
            imported(32, &scarce, 2, Status::Processing),
        ])
        .await
        .unwrap();
    assert_eq!(ids.len(), 4);
    let numbers: Vec<i64> = futures::future::join_all(ids.iter().map(|i| e.orders.order(*i)))
        .await
        .into_iter()
        .map(|o| o.unwrap().user_order_number)
        .collect();
    assert_eq!(numbers, vec![2, 3, 1, 2], "numbers continue per customer");
    assert_eq!(stock(&e, &p).await, 9);

    let report = e.orders.sync_inventory().await.unwrap();
    assert_eq!(report.synced, 2, "pending and delivered; not cancelled");
    assert_eq!(report.skipped, vec![ids[3]]);
    assert_eq!(report.errors[0].1, scarce);
    assert_eq!(stock(&e, &p).await, 6);
    assert_eq!(stock(&e, &scarce).await, 1);
    let again = e.orders.sync_inventory().await.unwrap();
    assert_eq!(again.synced, 0);
    assert_eq!(stock(&e, &p).await, 6, "a second sync changes nothing");

    let (restored, errors) = e.orders.undo_sync().await.unwrap();
    assert_eq!((restored, errors.len()), (2, 0));
    assert_eq!(stock(&e, &p).await, 9, "exactly what sync took");
    let live = e.orders.order(placed.order.id).await.unwrap();
    assert_eq!(live.inventory_deducted, 1, "placed orders keep their stock");
    assert_eq!(e.orders.undo_sync().await.unwrap().0, 0);
    // Sync works again after an undo (a new reservation key).
    assert_eq!(e.orders.sync_inventory().await.unwrap().synced, 2);
    assert_eq!(stock(&e, &p).await, 6);
}

ecap_core::on_every_backend!(
    sixty_four_customers_race_for_ten_units,
    sixty_four_customers_race_for_ten_units_in_one_transaction,
    one_customer_twenty_orders_numbered_without_gaps_in_one_transaction,
    fifty_retries_with_one_key_place_one_order_in_one_transaction,
    stock_comes_back_exactly_once_in_one_transaction,
    one_customer_twenty_orders_numbered_without_gaps,
    fifty_retries_with_one_key_place_one_order,
    stock_comes_back_exactly_once,
    the_sweeper_returns_what_crashes_left,
    the_outbox_delivers_every_change_in_order,
    sync_takes_once_and_undo_gives_back_what_it_took,
);
