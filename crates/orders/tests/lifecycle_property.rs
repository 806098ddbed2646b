//! Property test of the status machine: random sequences of admin and customer
//! actions never reach an undefined state, refused actions change nothing, and
//! the stock an order holds is always what its status says.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use ecap_catalog::{CatalogInventory, CatalogStore, ResponseCache, store::NewProduct};
use ecap_core::{
    db::{Backend, Db},
    ports::{Inventory, ReserveLine},
    testing::TestDb,
};
use ecap_orders::{
    OrderStore,
    domain::Status,
    store::{Actor, NewOrder, Shipment},
};
use proptest::prelude::*;
use serde_json::json;

#[derive(Debug, Clone)]
enum Action {
    SetStatus(Status),
    RequestCancel,
    Approve,
    Reject,
    Delete,
    Hide,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => prop::sample::select(Status::SETTABLE.to_vec()).prop_map(Action::SetStatus),
        1 => Just(Action::RequestCancel),
        1 => Just(Action::Approve),
        1 => Just(Action::Reject),
        1 => Just(Action::Delete),
        1 => Just(Action::Hide),
    ]
}

const QTY: i64 = 3;
const START: i64 = 20;
const ADMIN: Actor = Actor { id: 1, admin: true };
const OWNER: Actor = Actor {
    id: 42,
    admin: false,
};

async fn run(actions: Vec<Action>) {
    let t = TestDb::create(Backend::Sqlite).await;
    let db = Db::connect(&t.url, 4).await.unwrap();
    ecap_catalog::migrate(&db).await.unwrap();
    ecap_orders::migrate(&db).await.unwrap();
    let catalog = CatalogStore::new(db.clone());
    let inventory: Arc<dyn Inventory> = Arc::new(CatalogInventory {
        store: catalog.clone(),
        cache: ResponseCache::off(),
    });
    let orders = OrderStore::new(db.clone(), inventory);
    let p = catalog
        .create(NewProduct {
            name: "Tent".into(),
            description: "A tent".into(),
            price_cents: 10_000,
            stock: START,
            category: "sports".into(),
            tags: vec![],
            attributes: json!({}),
            sku: None,
            owner_id: None,
            images: Vec::new(),
        })
        .await
        .unwrap()
        .id;
    let placed = orders
        .place(&NewOrder {
            user_id: OWNER.id,
            user_email: None,
            lines: vec![ReserveLine {
                product_id: p.clone(),
                quantity: QTY,
            }],
            payment_method: "cod".into(),
            shipping_address: json!("1 Main"),
            idempotency: None,
        })
        .await
        .unwrap();
    let id = placed.order.id;
    let key = placed.order.reservation_key.clone().unwrap();
    for a in actions {
        let before = orders.order(id).await.unwrap();
        let result = match &a {
            Action::SetStatus(s) => orders
                .set_status(id, *s, ADMIN, &Shipment::default(), Some("why".into()))
                .await
                .map(|_| ()),
            Action::RequestCancel => orders
                .request_cancellation(id, OWNER, "changed my mind", &[])
                .await
                .map(|_| ()),
            Action::Approve => orders.approve_cancellation(id, ADMIN).await.map(|_| ()),
            Action::Reject => orders
                .reject_cancellation(id, ADMIN, "no")
                .await
                .map(|_| ()),
            Action::Delete => orders.delete(id, ADMIN, None).await.map(|_| ()),
            Action::Hide => orders.hide(id, OWNER).await.map(|_| ()),
        };
        let after = orders.order(id).await.unwrap();
        assert!(
            Status::parse(&after.status).is_some(),
            "{a:?} → {}",
            after.status
        );
        match result {
            Ok(()) => {
                if let Action::SetStatus(s) = a {
                    assert!(
                        before.status().can_become(s),
                        "{:?} → {s:?} allowed",
                        before.status()
                    );
                    assert_eq!(after.status(), s);
                }
            }
            Err(_) => assert_eq!(before, after, "a refused {a:?} changed the order"),
        }
        let held = catalog.reservation_state(&key).await.unwrap().as_deref() == Some("held");
        assert_eq!(
            held,
            after.should_hold_stock(),
            "after {a:?} in {}",
            after.status
        );
        assert_eq!(after.inventory_deducted == 1, held);
        assert_eq!(after.inventory_pending, None);
        let stock = catalog.product(&p).await.unwrap().unwrap().stock;
        assert_eq!(stock, START - if held { QTY } else { 0 });
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn the_status_machine_keeps_stock_and_status_consistent(actions in prop::collection::vec(action(), 1..16)) {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(run(actions));
    }
}
