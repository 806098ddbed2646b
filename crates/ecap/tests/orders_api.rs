//! The order routes over HTTP: placement with catalog prices, the lifecycle,
//! cancellations and refunds, deletion and restoration, retention and detail
//! requests, reviews end to end, the authorization matrix and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestApp, assert_error, spawn_app};
use ecap_core::db::{Backend, Db};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Shop {
    app: TestApp,
    admin: String,
}

async fn shop(backend: Backend) -> Shop {
    let app = spawn_app(backend).await;
    let (admin, _) = app.admin().await;
    Shop { app, admin }
}

impl Shop {
    async fn product(&self, name: &str, price: f64, inventory: i64) -> String {
        let r = self
            .app
            .post(
                "/api/products",
                Some(&self.admin),
                json!({"name": name, "description": format!("{name} for order tests"),
                    "price": price, "inventory": inventory, "category": "sports"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["data"]["product"]["id"].as_str().unwrap().to_owned()
    }

    async fn stock(&self, id: &str) -> i64 {
        let r = self
            .app
            .get(&format!("/api/products/{id}"), Some(&self.admin))
            .await;
        r.body["data"]["product"]["inventory"].as_i64().unwrap()
    }

    async fn order(&self, token: &str, lines: &[(&str, i64)]) -> Value {
        let r = self.place(token, lines).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["data"]["order"].clone()
    }

    async fn place(&self, token: &str, lines: &[(&str, i64)]) -> common::Resp {
        let items: Vec<Value> = lines
            .iter()
            .map(|(p, q)| json!({"productId": p, "quantity": q, "price": 0.01, "name": "cheap"}))
            .collect();
        self.app
            .post(
                "/api/orders",
                Some(token),
                json!({"items": items, "paymentMethod": "upi",
                    "shippingAddress": {"street": "1 MG Road", "city": "Pune", "zipCode": "411001"}}),
            )
            .await
    }

    async fn status(&self, id: i64, body: Value) -> common::Resp {
        self.app
            .put(&format!("/api/orders/{id}/status"), Some(&self.admin), body)
            .await
    }

    async fn advance(&self, id: i64, steps: &[&str]) {
        for s in steps {
            let r = self.status(id, json!({"status": s})).await;
            assert_eq!(r.status, StatusCode::OK, "{s}: {}", r.body);
        }
    }

    async fn sql(&self, statement: &str) {
        let db = Db::connect(&self.app.db.url, 1).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(db.pool())
            .await
            .unwrap();
        db.close().await;
    }
}

fn id_of(order: &Value) -> i64 {
    order["id"].as_i64().unwrap()
}

async fn lifecycle_story(backend: Backend) {
    let s = shop(backend).await;
    let tent = s.product("Tent", 129.99, 10).await;
    let lamp = s.product("Lamp", 15.5, 10).await;
    let (jane, jane_id) = s.app.customer("jane@example.com").await;

    // Catalog prices and names, whatever the client sends.
    let first = s.order(&jane, &[(&tent, 2), (&lamp, 1), (&tent, 1)]).await;
    assert_eq!(first["totalAmount"], json!(405.47));
    assert_eq!(first["userOrderNumber"], 1);
    assert_eq!(first["userId"], jane_id);
    assert_eq!(first["status"], "pending");
    let items = first["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "lines of one product are merged");
    let tent_line = items
        .iter()
        .find(|i| i["product_id"] == tent.as_str())
        .unwrap();
    assert_eq!(tent_line["product_name"], "Tent");
    assert_eq!(tent_line["price"], "129.99");
    assert_eq!(tent_line["quantity"], 3);
    assert_eq!(s.stock(&tent).await, 7);
    let id = id_of(&first);

    // Shipping details on `shipped`; one step at a time.
    s.advance(id, &["processing"]).await;
    let r = s
        .status(
            id,
            json!({"status": "shipped", "trackingNumber": "BD123", "courierName": "Blue Dart",
            "estimatedDelivery": "2030-01-15"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let row = &r.body["data"]["order"];
    assert_eq!(row["tracking_number"], "BD123");
    assert_eq!(row["courier_name"], "Blue Dart");
    assert_eq!(row["estimated_delivery"], "2030-01-15T00:00:00.000Z");
    assert!(row["shipped_at"].is_string() && row["processing_at"].is_string());
    let msg = assert_error(
        &s.status(id, json!({"status": "delivered"})).await,
        StatusCode::CONFLICT,
    );
    assert!(
        msg.contains("Allowed next: out_for_delivery, cancelled"),
        "{msg}"
    );
    s.advance(id, &["out_for_delivery", "delivered"]).await;
    let msg = assert_error(
        &s.status(id, json!({"status": "pending"})).await,
        StatusCode::CONFLICT,
    );
    assert!(msg.contains("Allowed next: none"), "{msg}");

    // The timeline is the history.
    let t = s
        .app
        .get(&format!("/api/orders/{id}/tracking"), Some(&jane))
        .await;
    let labels: Vec<&str> = t.body["data"]["tracking"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            "Order Placed",
            "Processing",
            "Shipped",
            "Out for Delivery",
            "Delivered"
        ]
    );
    assert_eq!(t.body["data"]["tracking"]["courierName"], "Blue Dart");

    // Reviews end to end: through the order, then refused twice.
    let r = s
        .app
        .post(
            &format!("/api/orders/{id}/review"),
            Some(&jane),
            json!({"productId": tent, "rating": 4, "comment": "Dry all night"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["data"]["product"]["rating"]["count"], 1);
    let again = s
        .app
        .post(
            &format!("/api/orders/{id}/review"),
            Some(&jane),
            json!({"productId": tent, "rating": 5}),
        )
        .await;
    assert_error(&again, StatusCode::CONFLICT);
    let other = s.product("Stove", 40.0, 5).await;
    let r = s
        .app
        .post(
            &format!("/api/orders/{id}/review"),
            Some(&jane),
            json!({"productId": other, "rating": 5}),
        )
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::CONFLICT),
        "This product was not in this order"
    );
    // The catalog's own route accepts the other product of the delivered order.
    let r = s
        .app
        .post(
            &format!("/api/products/{lamp}/reviews"),
            Some(&jane),
            json!({"rating": 5}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // A return within 7 days, rejected: the order stays delivered (C6).
    let r = s
        .app
        .post(&format!("/api/orders/{id}/cancel-request"), Some(&jane),
            json!({"reason": "Damaged", "images": ["https://img.example/1.jpg"], "returnType": "return"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["order"]["status"], "cancel_requested");
    assert_eq!(
        r.body["data"]["order"]["cancellation_images"],
        json!(["https://img.example/1.jpg"])
    );
    let r = s
        .app
        .put(
            &format!("/api/orders/{id}/reject-cancel"),
            Some(&s.admin),
            json!({"rejectionReason": "Looks fine"}),
        )
        .await;
    assert_eq!(r.body["data"]["order"]["status"], "delivered", "{}", r.body);
    assert_eq!(
        r.body["data"]["order"]["cancellation_rejection_reason"],
        "Looks fine"
    );
    assert_eq!(s.stock(&tent).await, 7, "delivered goods stay sold");

    // A second order: cancellation approved, refund kept true through refunded.
    let second = s.order(&jane, &[(&lamp, 2)]).await;
    assert_eq!(second["userOrderNumber"], 2);
    let id2 = id_of(&second);
    assert_eq!(s.stock(&lamp).await, 7);
    let r = s
        .app
        .post(
            &format!("/api/orders/{id2}/cancel-request"),
            Some(&jane),
            json!({"reason": "Ordered by mistake"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = s
        .app
        .put(
            &format!("/api/orders/{id2}/approve-cancel"),
            Some(&s.admin),
            json!({}),
        )
        .await;
    let row = &r.body["data"]["order"];
    assert_eq!(row["status"], "cancelled");
    assert_eq!(row["refund_status"], "pending");
    assert_eq!(row["refund_amount"], "31.00");
    assert_eq!(row["inventory_deducted"], false);
    assert_eq!(s.stock(&lamp).await, 9, "stock back once");
    let r = s
        .app
        .put(
            &format!("/api/orders/{id2}/approve-cancel"),
            Some(&s.admin),
            json!({}),
        )
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::CONFLICT),
        "Order does not have a pending cancellation request"
    );
    assert_eq!(s.stock(&lamp).await, 9);
    let r = s.status(id2, json!({"status": "refund_processing"})).await;
    assert_eq!(r.body["data"]["order"]["refund_status"], "processing");
    let r = s.status(id2, json!({"status": "refunded"})).await;
    assert_eq!(r.body["data"]["order"]["refund_status"], "completed");
    assert_eq!(r.body["data"]["order"]["refund_amount"], "31.00");
    assert_error(
        &s.status(id2, json!({"status": "cancelled"})).await,
        StatusCode::CONFLICT,
    );

    // Admin delete releases what a live order holds; a second delete is refused.
    let third = s.order(&jane, &[(&tent, 1)]).await;
    assert_eq!(s.stock(&tent).await, 6);
    let id3 = id_of(&third);
    let r = s
        .app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/orders/{id3}"),
            Some(&s.admin),
            Some(json!({"reason": "fraud"})),
        )
        .await;
    assert_eq!(r.body["data"]["order"]["status"], "deleted", "{}", r.body);
    assert_eq!(r.body["data"]["order"]["deletion_reason"], "fraud");
    assert_eq!(s.stock(&tent).await, 7);
    let r = s
        .app
        .delete(&format!("/api/orders/{id3}"), Some(&s.admin))
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::CONFLICT),
        "Order is already deleted"
    );

    // The users service's figures come from the orders: only the delivered one counts as spent.
    let users = s.app.get("/api/users?limit=100", Some(&s.admin)).await;
    let me = users.body["data"]["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == jane_id)
        .unwrap()
        .clone();
    assert_eq!(me["orderCount"], 3, "{me}");
    assert_eq!(me["totalSpent"], json!(405.47), "{me}");

    // Every change reached the event bus.
    let mut delivered = 0;
    for _ in 0..50 {
        let r = s.app.get("/api/orders/outbox", Some(&s.admin)).await;
        if r.body["data"]["pending"] == 0 {
            delivered = r.body["data"]["delivered"].as_i64().unwrap();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(delivered >= 14, "{delivered}");
}

async fn idempotency_and_saved_addresses(backend: Backend) {
    let s = shop(backend).await;
    let p = s.product("Boots", 80.0, 10).await;
    let (jane, _) = s.app.customer("jane2@example.com").await;
    let (joe, _) = s.app.customer("joe2@example.com").await;
    let body = json!({"items": [{"productId": p, "quantity": 1}], "paymentMethod": "cod",
        "shippingAddress": "1 Main St"});
    let send = |b: Value| {
        s.app
            .client
            .post(format!("{}/api/orders", s.app.base))
            .bearer_auth(&jane)
            .header("Idempotency-Key", "boots-1")
            .json(&b)
            .send()
    };
    let first = send(body.clone()).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = send(body.clone()).await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["data"]["order"]["id"], first["data"]["order"]["id"]);
    let other = send(
        json!({"items": [{"productId": p, "quantity": 2}], "paymentMethod": "cod",
        "shippingAddress": "1 Main St"}),
    )
    .await
    .unwrap();
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(s.stock(&p).await, 9);

    // A saved address is copied into the order; another user's is refused.
    let a = s
        .app
        .post("/api/users/addresses", Some(&joe),
            json!({"label": "Home", "street": "9 Hill Rd", "city": "Goa", "state": "GA", "zipCode": "403001", "phone": "+91 90000 00000"}))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let aid = a.body["data"]["address"]["id"].as_i64().unwrap();
    let r = s
        .app
        .post("/api/orders", Some(&joe), json!({"items": [{"productId": p, "quantity": 1}], "paymentMethod": "card", "addressId": aid}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["data"]["order"]["shippingAddress"]["city"], "Goa");
    let r = s
        .app
        .post("/api/orders", Some(&jane), json!({"items": [{"productId": p, "quantity": 1}], "paymentMethod": "card", "addressId": aid}))
        .await;
    assert_eq!(assert_error(&r, StatusCode::NOT_FOUND), "Address not found");
    assert_eq!(s.stock(&p).await, 8);
}

ecap_core::on_every_backend!(
    lifecycle_story,
    idempotency_and_saved_addresses,
    who_may_do_what,
    retention_windows_and_detail_requests,
);

#[tokio::test]
async fn bad_input_is_refused_and_reserves_nothing() {
    let s = shop(Backend::Sqlite).await;
    let p = s.product("Rope", 12.0, 5).await;
    let archived = s.product("Old Rope", 9.0, 5).await;
    assert_eq!(
        s.app
            .delete(&format!("/api/products/{archived}"), Some(&s.admin))
            .await
            .status,
        StatusCode::OK
    );
    let (jane, _) = s.app.customer("bad@example.com").await;
    let base = json!({"items": [{"productId": p, "quantity": 1}], "paymentMethod": "cod", "shippingAddress": {"street": "x"}});
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            common::with(
                base.clone(),
                "items",
                json!([{"productId": p, "quantity": 0}]),
            ),
            StatusCode::BAD_REQUEST,
            "items[0].quantity",
        ),
        (
            common::with(
                base.clone(),
                "items",
                json!([{"productId": p, "quantity": -3}]),
            ),
            StatusCode::BAD_REQUEST,
            "items[0].quantity",
        ),
        (
            common::with(
                base.clone(),
                "items",
                json!([{"productId": p, "quantity": 1_000_000}]),
            ),
            StatusCode::BAD_REQUEST,
            "items[0].quantity",
        ),
        (
            common::with(
                base.clone(),
                "items",
                json!([{"productId": p, "quantity": 1.5}]),
            ),
            StatusCode::BAD_REQUEST,
            "items[0].quantity",
        ),
        (
            common::with(base.clone(), "items", json!([])),
            StatusCode::BAD_REQUEST,
            "items",
        ),
        (
            common::with(base.clone(), "items", json!([{"quantity": 1}])),
            StatusCode::BAD_REQUEST,
            "items[0].productId",
        ),
        (
            common::with(base.clone(), "paymentMethod", json!("bitcoin")),
            StatusCode::BAD_REQUEST,
            "paymentMethod",
        ),
        (
            common::without(base.clone(), "paymentMethod"),
            StatusCode::BAD_REQUEST,
            "paymentMethod",
        ),
        (
            common::without(base.clone(), "shippingAddress"),
            StatusCode::BAD_REQUEST,
            "shippingAddress",
        ),
        (
            common::with(base.clone(), "shippingAddress", json!({})),
            StatusCode::BAD_REQUEST,
            "shippingAddress",
        ),
        (
            common::with(base.clone(), "addressId", json!("x")),
            StatusCode::BAD_REQUEST,
            "addressId",
        ),
    ];
    for (body, status, path) in cases {
        let r = s.app.post("/api/orders", Some(&jane), body.clone()).await;
        assert_error(&r, status);
        assert!(
            r.body["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["path"] == path),
            "{body} → {}",
            r.body
        );
        assert_eq!(r.body["message"], "Validation failed");
    }
    // Unknown, archived and sold-out products name the product.
    let unknown = "aaaaaaaaaaaaaaaaaaaaaaaa";
    let r = s.place(&jane, &[(&p, 1), (unknown, 1)]).await;
    assert_eq!(assert_error(&r, StatusCode::NOT_FOUND), "Product not found");
    assert_eq!(r.body["productId"], unknown);
    let r = s.place(&jane, &[(&archived, 1)]).await;
    assert_error(&r, StatusCode::CONFLICT);
    assert_eq!(r.body["productId"], archived.as_str());
    let r = s.place(&jane, &[(&p, 6)]).await;
    assert_eq!(
        assert_error(&r, StatusCode::CONFLICT),
        "This item is sold out. Will be back soon."
    );
    assert_eq!(r.body["productId"], p.as_str());
    // Malformed JSON and other content types.
    let raw = s
        .app
        .client
        .post(format!("{}/api/orders", s.app.base))
        .bearer_auth(&jane)
        .header("content-type", "application/json")
        .body("{\"items\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    let form = s
        .app
        .client
        .post(format!("{}/api/orders", s.app.base))
        .bearer_auth(&jane)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("items=1")
        .send()
        .await
        .unwrap();
    // Read like JSON (the original took forms), and refused like it.
    assert_eq!(form.status(), StatusCode::BAD_REQUEST);
    // Nothing was reserved, nothing was written.
    assert_eq!(s.stock(&p).await, 5);
    let list = s.app.get("/api/orders", Some(&jane)).await;
    assert_eq!(list.body["data"]["pagination"]["total"], 0);
    // Query validation.
    for q in [
        "limit=0",
        "limit=10001",
        "page=0",
        "status=lost",
        "from=yesterday",
    ] {
        assert_error(
            &s.app.get(&format!("/api/orders?{q}"), Some(&jane)).await,
            StatusCode::BAD_REQUEST,
        );
    }
    // `from` after `to` matches nothing: an empty page, not an error.
    let r = s
        .app
        .get("/api/orders?from=2026-02-01&to=2026-01-01", Some(&jane))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["orders"], json!([]));
    assert_error(
        &s.app.get("/api/orders/abc", Some(&jane)).await,
        StatusCode::BAD_REQUEST,
    );
    let r = s.status(1, json!({"status": "teleported"})).await;
    assert_eq!(assert_error(&r, StatusCode::BAD_REQUEST), "Invalid status");
}

async fn who_may_do_what(backend: Backend) {
    let s = shop(backend).await;
    let p = s.product("Map", 5.0, 100).await;
    let (owner, _) = s.app.customer("owner@example.com").await;
    let (other, _) = s.app.customer("other@example.com").await;
    let (merchant, _) = s
        .app
        .register_as("Merchant", "m@example.com", "merchant")
        .await;
    let order = s.order(&owner, &[(&p, 1)]).await;
    let id = id_of(&order);
    let before = s
        .app
        .get(&format!("/api/orders/{id}"), Some(&s.admin))
        .await
        .body;

    // Anonymous: 401 everywhere.
    for (m, path) in [
        ("GET", "/api/orders".to_owned()),
        ("POST", "/api/orders".to_owned()),
        ("GET", format!("/api/orders/{id}")),
        ("GET", format!("/api/orders/{id}/tracking")),
        ("PUT", format!("/api/orders/{id}/status")),
        ("POST", format!("/api/orders/{id}/cancel-request")),
        ("DELETE", format!("/api/orders/{id}")),
        ("POST", "/api/orders/sync-inventory".to_owned()),
        ("GET", "/api/orders/outbox".to_owned()),
    ] {
        let r = s
            .app
            .call(m.parse().unwrap(), &path, None, Some(json!({})))
            .await;
        assert_error(&r, StatusCode::UNAUTHORIZED);
    }
    // Another customer (and a merchant, who is a customer here): 404 on the order.
    for token in [&other, &merchant] {
        for (m, path, body) in [
            ("GET", format!("/api/orders/{id}"), None),
            ("GET", format!("/api/orders/{id}/tracking"), None),
            (
                "POST",
                format!("/api/orders/{id}/cancel-request"),
                Some(json!({"reason": "mine now"})),
            ),
            (
                "POST",
                format!("/api/orders/{id}/detail-request"),
                Some(json!({"reason": "Tax / accounting"})),
            ),
            ("GET", format!("/api/orders/{id}/detail-request"), None),
            (
                "POST",
                format!("/api/orders/{id}/review"),
                Some(json!({"productId": p, "rating": 5})),
            ),
            ("DELETE", format!("/api/orders/{id}/soft"), None),
        ] {
            let r = s
                .app
                .call(m.parse().unwrap(), &path, Some(token), body)
                .await;
            assert_eq!(
                assert_error(&r, StatusCode::NOT_FOUND),
                "Order not found",
                "{m} {path}"
            );
        }
        assert_eq!(
            s.app.get("/api/orders", Some(token)).await.body["data"]["pagination"]["total"],
            0
        );
    }
    // Admin-only routes: 403 for the owner and the merchant.
    for token in [&owner, &merchant] {
        for (m, path, body) in [
            (
                "PUT",
                format!("/api/orders/{id}/status"),
                json!({"status": "processing"}),
            ),
            ("PUT", format!("/api/orders/{id}/approve-cancel"), json!({})),
            ("PUT", format!("/api/orders/{id}/reject-cancel"), json!({})),
            ("DELETE", format!("/api/orders/{id}"), json!({})),
            (
                "POST",
                "/api/orders/bulk-delete".to_owned(),
                json!({"ids": [id]}),
            ),
            ("POST", "/api/orders/sync-inventory".to_owned(), json!({})),
            (
                "POST",
                "/api/orders/undo-sync-inventory".to_owned(),
                json!({}),
            ),
            (
                "GET",
                "/api/orders/detail-requests/list".to_owned(),
                json!({}),
            ),
            (
                "PUT",
                "/api/orders/detail-requests/1/approve".to_owned(),
                json!({}),
            ),
            (
                "GET",
                "/api/orders/restoration-requests".to_owned(),
                json!({}),
            ),
            (
                "POST",
                format!("/api/orders/{id}/restoration/approve"),
                json!({}),
            ),
            (
                "POST",
                format!("/api/orders/{id}/restoration/reject"),
                json!({}),
            ),
            ("POST", "/api/orders/cleanup/expired".to_owned(), json!({})),
            ("GET", "/api/orders/outbox".to_owned(), json!({})),
        ] {
            let body = if m == "GET" { None } else { Some(body) };
            let r = s
                .app
                .call(m.parse().unwrap(), &path, Some(token), body)
                .await;
            assert_error(&r, StatusCode::FORBIDDEN);
        }
    }
    // Admins cannot file a customer's cancellation (S8): they cancel directly.
    let r = s
        .app
        .post(
            &format!("/api/orders/{id}/cancel-request"),
            Some(&s.admin),
            json!({"reason": "x"}),
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND);
    // Nothing of it changed the order or the stock.
    let after = s
        .app
        .get(&format!("/api/orders/{id}"), Some(&s.admin))
        .await
        .body;
    assert_eq!(before, after);
    assert_eq!(s.stock(&p).await, 99);
    // The owner and the admin see it.
    assert_eq!(
        s.app
            .get(&format!("/api/orders/{id}"), Some(&owner))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        s.app.get("/api/orders", Some(&s.admin)).await.body["data"]["pagination"]["total"],
        1
    );
}

async fn retention_windows_and_detail_requests(backend: Backend) {
    let s = shop(backend).await;
    let p = s.product("Compass", 20.0, 100).await;
    let (jane, _) = s.app.customer("ret@example.com").await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(id_of(&s.order(&jane, &[(&p, 1)]).await));
    }
    // Two cancelled long ago, one deleted recently, one live.
    for id in &ids[..2] {
        s.advance(*id, &["cancelled"]).await;
    }
    s.sql(&format!(
        "UPDATE orders SET cancelled_at = cancelled_at - {} WHERE id IN ({}, {})",
        31 * 86_400_000i64,
        ids[0],
        ids[1]
    ))
    .await;
    assert_eq!(
        s.app
            .delete(&format!("/api/orders/{}", ids[2]), Some(&s.admin))
            .await
            .status,
        StatusCode::OK
    );

    // Old cancellations are filtered in the query: full pages, true totals (C10).
    let page = s.app.get("/api/orders?limit=1", Some(&jane)).await;
    assert_eq!(page.body["data"]["pagination"]["total"], 2, "{}", page.body);
    assert_eq!(page.body["data"]["orders"].as_array().unwrap().len(), 1);
    let all = s.app.get("/api/orders", Some(&jane)).await;
    let listed: Vec<&Value> = all.body["data"]["orders"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    let deleted = listed.iter().find(|o| o["id"] == ids[2]).unwrap();
    assert_eq!(deleted["canViewDetails"], false);
    assert_eq!(deleted["canRequestDetails"], true);
    assert_eq!(deleted["items"], json!([]), "hidden details stay hidden");
    // The admin sees everything.
    assert_eq!(
        s.app.get("/api/orders", Some(&s.admin)).await.body["data"]["pagination"]["total"],
        4
    );

    let r = s
        .app
        .get(&format!("/api/orders/{}", ids[0]), Some(&jane))
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::FORBIDDEN),
        "Order details retention expired (30 days)."
    );
    assert_eq!(r.body["data"]["canRequestDetails"], false);
    let r = s
        .app
        .get(&format!("/api/orders/{}", ids[2]), Some(&jane))
        .await;
    assert_error(&r, StatusCode::FORBIDDEN);
    assert_eq!(r.body["data"]["canRequestDetails"], true);

    // Detail requests.
    let ask = |id: i64, body: Value| {
        let path = format!("/api/orders/{id}/detail-request");
        let jane = jane.clone();
        let app = &s.app;
        async move { app.post(&path, Some(&jane), body).await }
    };
    let r = ask(ids[2], json!({"reason": "Because"})).await;
    assert!(assert_error(&r, StatusCode::BAD_REQUEST).starts_with("Invalid reason. Allowed: "));
    let r = ask(ids[2], json!({"reason": "Other"})).await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST),
        "Please provide otherReason when reason is Other"
    );
    let r = ask(ids[3], json!({"reason": "Tax / accounting"})).await;
    assert_eq!(
        assert_error(&r, StatusCode::CONFLICT),
        "Detail requests are only available for cancelled or deleted orders"
    );
    let r = ask(ids[0], json!({"reason": "Tax / accounting"})).await;
    assert_eq!(
        assert_error(&r, StatusCode::CONFLICT),
        "Detail request window expired (30 days)"
    );
    let r = ask(
        ids[2],
        json!({"reason": "Other", "otherReason": "insurance claim"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let rid = r.body["data"]["request"]["id"].as_i64().unwrap();
    assert_eq!(r.body["data"]["request"]["other_reason"], "insurance claim");
    let r = ask(ids[2], json!({"reason": "Tax / accounting"})).await;
    assert_eq!(
        assert_error(&r, StatusCode::CONFLICT),
        "A request is already pending"
    );
    let listed = s.app.get("/api/orders", Some(&jane)).await;
    let o = listed.body["data"]["orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == ids[2])
        .unwrap()
        .clone();
    assert_eq!(
        o["canRequestDetails"], false,
        "a pending request blocks another (C11)"
    );

    let pending = s
        .app
        .get(
            "/api/orders/detail-requests/list?status=pending",
            Some(&s.admin),
        )
        .await;
    let reqs = pending.body["data"]["requests"].as_array().unwrap();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0]["order_status"], "deleted");
    assert_error(
        &s.app
            .get(
                "/api/orders/detail-requests/list?status=maybe",
                Some(&s.admin),
            )
            .await,
        StatusCode::BAD_REQUEST,
    );
    assert_error(
        &s.app
            .put(
                "/api/orders/detail-requests/1/ponder",
                Some(&s.admin),
                json!({}),
            )
            .await,
        StatusCode::BAD_REQUEST,
    );
    assert_error(
        &s.app
            .put(
                "/api/orders/detail-requests/999/approve",
                Some(&s.admin),
                json!({}),
            )
            .await,
        StatusCode::NOT_FOUND,
    );
    let r = s
        .app
        .put(
            &format!("/api/orders/detail-requests/{rid}/approve"),
            Some(&s.admin),
            json!({"adminNote": "ok"}),
        )
        .await;
    assert_eq!(r.body["message"], "Request approved");
    assert_eq!(r.body["data"]["request"]["admin_note"], "ok");
    let r = s
        .app
        .put(
            &format!("/api/orders/detail-requests/{rid}/reject"),
            Some(&s.admin),
            json!({}),
        )
        .await;
    assert_error(&r, StatusCode::CONFLICT);
    // Approved: the deleted order's details are readable again.
    let r = s
        .app
        .get(&format!("/api/orders/{}", ids[2]), Some(&jane))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["data"]["order"]["items"].as_array().unwrap().len(),
        1
    );
    let latest = s
        .app
        .get(
            &format!("/api/orders/{}/detail-request", ids[2]),
            Some(&jane),
        )
        .await;
    assert_eq!(latest.body["data"]["request"]["status"], "approved");
    let r = ask(ids[2], json!({"reason": "Tax / accounting"})).await;
    assert_eq!(
        assert_error(&r, StatusCode::CONFLICT),
        "Request already approved. You can view details now."
    );
}

#[tokio::test]
async fn customers_delete_and_restore_their_orders() {
    let s = shop(Backend::Sqlite).await;
    let p = s.product("Flask", 8.0, 100).await;
    let (jane, _) = s.app.customer("soft@example.com").await;
    let a = id_of(&s.order(&jane, &[(&p, 1)]).await);
    let b = id_of(&s.order(&jane, &[(&p, 1)]).await);
    for id in [a, b] {
        let r = s
            .app
            .delete(&format!("/api/orders/{id}/soft"), Some(&jane))
            .await;
        assert_eq!(
            r.body["message"], "Order deleted. You can request restoration within 30 days.",
            "{}",
            r.body
        );
        assert!(r.body["data"]["deletionExpiresAt"].is_string());
    }
    assert_error(
        &s.app
            .delete(&format!("/api/orders/{a}/soft"), Some(&jane))
            .await,
        StatusCode::CONFLICT,
    );
    assert_eq!(
        s.app.get("/api/orders", Some(&jane)).await.body["data"]["pagination"]["total"],
        0
    );
    assert_eq!(
        s.app.get("/api/orders/active", Some(&jane)).await.body["data"]["pagination"]["total"],
        0
    );
    let gone = s.app.get("/api/orders/deleted", Some(&jane)).await;
    assert_eq!(gone.body["data"]["orders"].as_array().unwrap().len(), 2);
    assert_eq!(s.stock(&p).await, 98, "hiding is not cancelling");

    let r = s
        .app
        .post(
            &format!("/api/orders/{a}/restore-request"),
            Some(&jane),
            json!({"reason": "oops"}),
        )
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST),
        "Please provide a reason (minimum 10 characters)"
    );
    for id in [a, b] {
        let r = s
            .app
            .post(
                &format!("/api/orders/{id}/restore-request"),
                Some(&jane),
                json!({"reason": "I deleted it by accident"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let r = s
        .app
        .post(
            &format!("/api/orders/{a}/restore-request"),
            Some(&jane),
            json!({"reason": "I deleted it by accident"}),
        )
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::CONFLICT),
        "Restoration already requested for this order"
    );
    let reqs = s
        .app
        .get("/api/orders/restoration-requests", Some(&s.admin))
        .await;
    assert_eq!(reqs.body["data"]["requests"].as_array().unwrap().len(), 2);
    let r = s
        .app
        .post(
            &format!("/api/orders/{a}/restoration/approve"),
            Some(&s.admin),
            json!({}),
        )
        .await;
    assert_eq!(r.body["message"], "Order restored successfully");
    let r = s
        .app
        .post(
            &format!("/api/orders/{b}/restoration/reject"),
            Some(&s.admin),
            json!({"rejectionReason": "policy"}),
        )
        .await;
    assert_eq!(r.body["message"], "Restoration request rejected");
    assert_error(
        &s.app
            .post(
                &format!("/api/orders/{b}/restoration/approve"),
                Some(&s.admin),
                json!({}),
            )
            .await,
        StatusCode::NOT_FOUND,
    );
    let list = s.app.get("/api/orders", Some(&jane)).await;
    assert_eq!(list.body["data"]["orders"][0]["id"], a);
    assert_eq!(list.body["data"]["pagination"]["total"], 1);
    // Past the window, the admin clean-up erases the address, keeps the order.
    s.sql(&format!(
        "UPDATE orders SET hidden_expires_at = 1 WHERE id = {b}"
    ))
    .await;
    let r = s
        .app
        .post("/api/orders/cleanup/expired", Some(&s.admin), json!({}))
        .await;
    assert_eq!(r.body["data"]["deletedCount"], 1, "{}", r.body);
    let row = s.app.get(&format!("/api/orders/{b}"), Some(&s.admin)).await;
    assert_eq!(row.body["data"]["order"]["shippingAddress"], Value::Null);
}

#[tokio::test]
async fn admin_lists_search_bulk_delete_and_sync() {
    let s = shop(Backend::Sqlite).await;
    let p = s.product("Sleeping Bag", 60.0, 100).await;
    let (jane, _) = s.app.customer("searchme@example.com").await;
    let (joe, _) = s.app.customer("joe@example.com").await;
    s.order(&jane, &[(&p, 1)]).await;
    let b = id_of(&s.order(&joe, &[(&p, 1)]).await);
    let c = id_of(&s.order(&joe, &[(&p, 1)]).await);
    s.advance(b, &["processing"]).await;
    let total = |q: &str| {
        let app = &s.app;
        let admin = s.admin.clone();
        let path = format!("/api/orders?{q}");
        async move {
            app.get(&path, Some(&admin)).await.body["data"]["pagination"]["total"]
                .as_i64()
                .unwrap()
        }
    };
    assert_eq!(total("search=searchme").await, 1);
    // An order id or a customer order number (ids 1–3; numbers 1, 1, 2).
    assert_eq!(total(&format!("search=%23{c}")).await, 1);
    assert_eq!(total("search=1").await, 2);
    assert_eq!(total("status=processing").await, 1);
    assert_eq!(total("from=2000-01-01&to=2100-01-01").await, 3);
    assert_eq!(total("to=2001-01-01").await, 0);
    assert_eq!(total("limit=2").await, 3);
    // Bulk delete: one result per id.
    let r = s
        .app
        .post(
            "/api/orders/bulk-delete",
            Some(&s.admin),
            json!({"ids": [b, c, 999], "reason": "test"}),
        )
        .await;
    assert_eq!(r.body["data"]["succeeded"], 2, "{}", r.body);
    assert_eq!(r.body["data"]["results"][2]["status"], 404);
    assert_eq!(s.stock(&p).await, 99);
    assert_error(
        &s.app
            .post(
                "/api/orders/bulk-delete",
                Some(&s.admin),
                json!({"ids": []}),
            )
            .await,
        StatusCode::BAD_REQUEST,
    );
    // Placed orders already hold their stock: sync and undo change nothing.
    let r = s
        .app
        .post("/api/orders/sync-inventory", Some(&s.admin), json!({}))
        .await;
    assert_eq!(r.body["data"]["synced"], 0, "{}", r.body);
    assert_eq!(r.body["message"], "Inventory sync completed");
    let r = s
        .app
        .post("/api/orders/undo-sync-inventory", Some(&s.admin), json!({}))
        .await;
    assert_eq!(r.body["data"]["restoredOrderCount"], 0);
    assert_eq!(s.stock(&p).await, 99);
}
