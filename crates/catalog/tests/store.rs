//! The catalog store on SQLite, PostgreSQL and MariaDB: reservations that never
//! oversell and are idempotent by order id, the ledger, search, categories.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use ecap_catalog::{
    CatalogStore,
    domain::ProductStatus,
    store::{Adjustment, NewProduct, ProductChanges, ProductQuery, ProductSort, StatusFilter},
};
use ecap_core::{
    db::{Backend, Db},
    ports::{InventoryError, ReserveLine},
    testing::TestDb,
};
use serde_json::json;

async fn store(backend: Backend) -> (CatalogStore, TestDb) {
    let t = TestDb::create(backend).await;
    let db = Db::connect(&t.url, 20).await.unwrap();
    assert_eq!(ecap_catalog::migrate(&db).await.unwrap(), 1);
    // A second run (a second replica starting) applies nothing.
    assert_eq!(ecap_catalog::migrate(&db).await.unwrap(), 0);
    (CatalogStore::new(db), t)
}

fn product(name: &str, price_cents: i64, stock: i64) -> NewProduct {
    NewProduct {
        name: name.into(),
        description: format!("{name} for testing, sturdy and waterproof"),
        price_cents,
        stock,
        category: "sports".into(),
        tags: vec!["outdoor".into(), "hiking".into()],
        attributes: json!({"sizes": ["S", "M"], "weightKg": 1.5}),
        sku: None,
        owner_id: Some(7),
        images: Vec::new(),
    }
}

fn line(id: &str, quantity: i64) -> Vec<ReserveLine> {
    vec![ReserveLine {
        product_id: id.into(),
        quantity,
    }]
}

fn query() -> ProductQuery {
    ProductQuery {
        page: 1,
        limit: 100,
        category: None,
        search: None,
        min_price_cents: None,
        max_price_cents: None,
        in_stock: false,
        sort: ProductSort::CreatedAt,
        descending: true,
        status: StatusFilter::Active,
        owner_id: None,
    }
}

async fn fifty_buyers_for_ten_units(backend: Backend) {
    let (store, _t) = store(backend).await;
    let p = store
        .create(product("Trail Tent", 12_999, 10))
        .await
        .unwrap();
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            let id = p.id.clone();
            tokio::spawn(async move { store.reserve(&format!("o{i}"), &line(&id, 1)).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(lines) => {
                ok += 1;
                assert_eq!(lines[0].unit_price_cents, 12_999);
                assert_eq!(lines[0].name, "Trail Tent");
            }
            Err(InventoryError::Insufficient { available, .. }) => assert_eq!(available, 0),
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(ok, 10, "exactly the stock is sold");
    let after = store.product(&p.id).await.unwrap().unwrap();
    assert_eq!(after.stock, 0);
    assert_eq!(store.ledger_sum(&p.id).await.unwrap(), 0);
    let (entries, total) = store.ledger(&p.id, 1, 100).await.unwrap();
    assert_eq!(total, 11, "initial + ten reservations");
    assert!(entries.iter().all(|e| e.stock_after >= 0));
}

async fn one_reservation_per_order_id(backend: Backend) {
    let (store, _t) = store(backend).await;
    let p = store
        .create(product("Head Torch", 2_450, 500))
        .await
        .unwrap();
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let store = store.clone();
            let id = p.id.clone();
            tokio::spawn(async move { store.reserve("order-42", &line(&id, 3)).await })
        })
        .collect();
    for t in tasks {
        let lines = t.await.unwrap().expect("every retry gets the first answer");
        assert_eq!(lines[0].quantity, 3);
        assert_eq!(lines[0].unit_price_cents, 2_450);
    }
    assert_eq!(store.product(&p.id).await.unwrap().unwrap().stock, 497);
    assert_eq!(store.ledger_sum(&p.id).await.unwrap(), 497);
    // The same order id with other lines is a conflict, not a second reservation.
    let err = store
        .reserve("order-42", &line(&p.id, 4))
        .await
        .unwrap_err();
    assert!(matches!(err, InventoryError::Conflict(_)), "{err:?}");

    // Release gives back exactly once, however often it is called.
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.release("order-42").await })
        })
        .collect();
    let mut released = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            released += 1;
        }
    }
    assert_eq!(released, 1);
    assert_eq!(store.product(&p.id).await.unwrap().unwrap().stock, 500);
    assert_eq!(store.ledger_sum(&p.id).await.unwrap(), 500);
    // A released order id cannot quietly reserve again.
    let err = store
        .reserve("order-42", &line(&p.id, 3))
        .await
        .unwrap_err();
    assert!(matches!(err, InventoryError::Conflict(_)), "{err:?}");
    assert!(!store.release("never-reserved").await.unwrap());
}

async fn all_lines_or_none(backend: Backend) {
    let (store, _t) = store(backend).await;
    let a = store.create(product("Rope", 1_000, 5)).await.unwrap();
    let b = store.create(product("Carabiner", 300, 1)).await.unwrap();
    let c = store.create(product("Old Boots", 5_000, 9)).await.unwrap();
    let lines = vec![
        ReserveLine {
            product_id: a.id.clone(),
            quantity: 2,
        },
        ReserveLine {
            product_id: b.id.clone(),
            quantity: 2,
        },
    ];
    let err = store.reserve("o-1", &lines).await.unwrap_err();
    assert!(
        matches!(err, InventoryError::Insufficient { ref product_id, available: 1, requested: 2 } if product_id == &b.id),
        "{err:?}"
    );
    assert_eq!(store.product(&a.id).await.unwrap().unwrap().stock, 5);
    assert_eq!(store.reservation_state("o-1").await.unwrap(), None);
    // The failed order id is free to try again once stock allows.
    let ok = store.reserve("o-1", &lines[..1]).await.unwrap();
    assert_eq!(ok.len(), 1);

    // Archived products are not sold; unknown ones are named.
    store
        .update(
            &c.id,
            &ProductChanges {
                status: Some(ProductStatus::Archived),
                ..Default::default()
            },
            1,
        )
        .await
        .unwrap();
    let err = store.reserve("o-2", &line(&c.id, 1)).await.unwrap_err();
    assert_eq!(err, InventoryError::Unavailable(c.id.clone()));
    let ghost = "0123456789abcdef01234567";
    let err = store.reserve("o-3", &line(ghost, 1)).await.unwrap_err();
    assert_eq!(err, InventoryError::NotFound(ghost.into()));
    assert!(matches!(
        store.reserve("o-4", &line(&a.id, 0)).await.unwrap_err(),
        InventoryError::Invalid(_)
    ));
    assert!(matches!(
        store.reserve("bad id!", &line(&a.id, 1)).await.unwrap_err(),
        InventoryError::Invalid(_)
    ));
    // Duplicate lines are one line.
    let merged = store
        .reserve(
            "o-5",
            &[
                ReserveLine {
                    product_id: a.id.clone(),
                    quantity: 1,
                },
                ReserveLine {
                    product_id: a.id.to_uppercase(),
                    quantity: 1,
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(merged.len(), 1);
    assert_eq!(merged[0].quantity, 2);
    assert_eq!(store.product(&a.id).await.unwrap().unwrap().stock, 1);
}

async fn manual_adjustments_and_stock_sets(backend: Backend) {
    let (store, _t) = store(backend).await;
    let p = store
        .create(product("Kayak Paddle", 8_900, 4))
        .await
        .unwrap();
    let who = Adjustment {
        actor_id: 1,
        reason: Some("stocktake".into()),
    };
    let (after, before) = store.adjust(&p.id, -3, &who).await.unwrap();
    assert_eq!((after.stock, before), (1, 4));
    let err = store.adjust(&p.id, -2, &who).await.unwrap_err();
    assert!(
        err.to_string().contains("Available: 1, requested: 2"),
        "{err}"
    );
    let set = store
        .update(
            &p.id,
            &ProductChanges {
                stock: Some(20),
                price_cents: Some(7_500),
                ..Default::default()
            },
            1,
        )
        .await
        .unwrap();
    assert_eq!((set.stock, set.price_cents), (20, 7_500));
    assert_eq!(store.ledger_sum(&p.id).await.unwrap(), 20);
    let (entries, _) = store.ledger(&p.id, 1, 10).await.unwrap();
    let kinds: Vec<_> = entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["manual", "manual", "initial"]);
    assert_eq!(entries[1].reason.as_deref(), Some("stocktake"));
    assert_eq!(entries[0].delta, 19);
}

async fn search_filters_and_categories(backend: Backend) {
    let (store, _t) = store(backend).await;
    let mut boots = product("Alpine Leather Boots", 15_000, 3);
    boots.category = "clothing".into();
    boots.tags = vec!["mountaineering".into()];
    boots.sku = Some("BOOT-1".into());
    store.create(boots).await.unwrap();
    let mut lamp = product("Desk Lamp", 4_000, 0);
    lamp.category = "home".into();
    lamp.description = "Brass lamp with a linen shade".into();
    lamp.tags = vec!["lighting".into()];
    store.create(lamp).await.unwrap();
    store
        .create(product("Trekking Poles", 6_000, 8))
        .await
        .unwrap();

    let names = |rows: Vec<ecap_catalog::store::ProductRow>| {
        rows.into_iter().map(|r| r.name).collect::<Vec<_>>()
    };
    let q = |search: &str| ProductQuery {
        search: Some(search.into()),
        ..query()
    };
    assert_eq!(
        names(store.list(&q("leather")).await.unwrap().0),
        ["Alpine Leather Boots"]
    );
    assert_eq!(
        names(store.list(&q("linen")).await.unwrap().0),
        ["Desk Lamp"]
    );
    assert_eq!(
        names(store.list(&q("mountaineering")).await.unwrap().0),
        ["Alpine Leather Boots"]
    );
    assert_eq!(store.list(&q("waterproof")).await.unwrap().1, 2);
    assert_eq!(
        store
            .list(&q("\"'; DROP TABLE products; --"))
            .await
            .unwrap()
            .1,
        0
    );
    let (rows, total) = store
        .list(&ProductQuery {
            in_stock: true,
            sort: ProductSort::Price,
            descending: false,
            ..query()
        })
        .await
        .unwrap();
    assert_eq!(total, 2);
    assert_eq!(names(rows), ["Trekking Poles", "Alpine Leather Boots"]);
    let (_, total) = store
        .list(&ProductQuery {
            min_price_cents: Some(5_000),
            max_price_cents: Some(10_000),
            ..query()
        })
        .await
        .unwrap();
    assert_eq!(total, 1);

    // A second product with the same SKU is refused.
    let mut dup = product("Copy", 1, 1);
    dup.sku = Some("BOOT-1".into());
    assert!(matches!(
        store.create(dup).await.unwrap_err(),
        ecap_catalog::store::StoreError::SkuTaken
    ));

    let cats = store.categories().await.unwrap();
    assert_eq!(cats.len(), 7);
    let clothing = cats.iter().find(|c| c.name == "clothing").unwrap();
    assert_eq!(
        (
            clothing.product_count,
            clothing.units_in_stock,
            clothing.stock_value_cents
        ),
        (1, 3, 45_000)
    );
    store.rename_category("clothing", "apparel").await.unwrap();
    let (rows, _) = store
        .list(&ProductQuery {
            category: Some("apparel".into()),
            ..query()
        })
        .await
        .unwrap();
    assert_eq!(names(rows), ["Alpine Leather Boots"]);
    assert!(store.delete_category("apparel").await.is_err());
    store.create_category("garden").await.unwrap();
    assert!(store.create_category("garden").await.is_err());
    store.delete_category("garden").await.unwrap();
}

ecap_core::on_every_backend!(
    fifty_buyers_for_ten_units,
    one_reservation_per_order_id,
    all_lines_or_none,
    manual_adjustments_and_stock_sets,
    search_filters_and_categories,
);
