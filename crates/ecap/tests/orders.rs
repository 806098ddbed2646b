//! The orders service over real HTTP (`/api/orders`), against the whole
//! platform on a random port: placement with catalog prices, saved addresses
//! and idempotency; bad input that must reserve nothing; the authorization
//! matrix of every route; the lifecycle, cancellations, refunds and deletes
//! with their stock effects; retention, detail requests, soft delete and
//! restoration; reviews end to end; tracking, list filters, the users
//! service's figures and the outbox. The lifecycle and the stories behind
//! the original's defects run on every database; the rest on SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Resp, TestApp, assert_error, spawn_app_with, with, without};
use ecap_core::db::{Backend, Db};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const DAY_MS: i64 = 86_400_000;
/// A well-formed product id that names no product.
const MISSING_PRODUCT: &str = "0123456789abcdef01234567";

/// The platform, its first admin, and helpers for the order flows.
struct Shop {
    app: TestApp,
    admin: String,
    admin_id: i64,
}

impl Shop {
    async fn open(backend: Backend) -> Self {
        Self::open_with(backend, |_| {}).await
    }

    async fn open_with(
        backend: Backend,
        tweak: impl FnOnce(&mut ecap_core::config::Config),
    ) -> Self {
        let app = spawn_app_with(backend, tweak).await;
        let (admin, admin_id) = app.admin().await;
        Self {
            app,
            admin,
            admin_id,
        }
    }

    /// Creates an active product (as the admin) and returns its id.
    async fn product(&self, name: &str, price: f64, stock: i64) -> String {
        let r = self
            .app
            .post(
                "/api/products",
                Some(&self.admin),
                json!({"name": name, "description": format!("{name}, for the order tests"),
                    "price": price, "inventory": stock, "category": "home"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["data"]["product"]["id"].as_str().unwrap().to_owned()
    }

    /// The product as the admin reads it (archived ones included).
    async fn product_json(&self, id: &str) -> Value {
        let r = self
            .app
            .get(&format!("/api/products/{id}"), Some(&self.admin))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["data"]["product"].clone()
    }

    async fn stock(&self, id: &str) -> i64 {
        self.product_json(id).await["inventory"]
            .as_i64()
            .expect("inventory")
    }

    async fn restock(&self, id: &str, change: i64) {
        let r = self
            .app
            .patch(
                &format!("/api/products/{id}/inventory"),
                Some(&self.admin),
                json!({ "change": change }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }

    async fn place(&self, token: &str, body: Value) -> Resp {
        self.app.post("/api/orders", Some(token), body).await
    }

    /// Places an order and returns `data.order`, asserting 201.
    async fn order(&self, token: &str, lines: &[(&str, i64)]) -> Value {
        let r = self.place(token, order_body(lines)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body["message"], "Order created successfully");
        r.body["data"]["order"].clone()
    }

    /// Places an order and returns its id.
    async fn order_id(&self, token: &str, lines: &[(&str, i64)]) -> i64 {
        id_of(&self.order(token, lines).await)
    }

    /// A request with headers of our own, answered like [`TestApp::call`].
    async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let res = req.send().await.expect("request");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        Resp {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        }
    }

    async fn place_with_key(&self, token: &str, key: &str, body: &Value) -> Resp {
        self.send(
            self.app
                .client
                .post(format!("{}/api/orders", self.app.base))
                .bearer_auth(token)
                .header("Idempotency-Key", key)
                .json(body),
        )
        .await
    }

    async fn set_status(&self, id: i64, body: Value) -> Resp {
        self.app
            .put(&format!("/api/orders/{id}/status"), Some(&self.admin), body)
            .await
    }

    /// Moves an order through `steps`, asserting each is accepted.
    async fn advance(&self, id: i64, steps: &[&str]) {
        for step in steps {
            let r = self.set_status(id, json!({ "status": step })).await;
            assert_eq!(r.status, StatusCode::OK, "{step}: {}", r.body);
            assert_eq!(r.body["data"]["order"]["status"], *step);
        }
    }

    async fn deliver(&self, id: i64) {
        self.advance(
            id,
            &["processing", "shipped", "out_for_delivery", "delivered"],
        )
        .await;
    }

    /// The order as the admin sees it (`data.order`).
    async fn admin_view(&self, id: i64) -> Value {
        let r = self
            .app
            .get(&format!("/api/orders/{id}"), Some(&self.admin))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["data"]["order"].clone()
    }

    async fn cancel_request(&self, token: &str, id: i64, body: Value) -> Resp {
        self.app
            .post(
                &format!("/api/orders/{id}/cancel-request"),
                Some(token),
                body,
            )
            .await
    }

    async fn approve_cancel(&self, id: i64) -> Resp {
        self.app
            .put(
                &format!("/api/orders/{id}/approve-cancel"),
                Some(&self.admin),
                json!({}),
            )
            .await
    }

    async fn reject_cancel(&self, id: i64, body: Value) -> Resp {
        self.app
            .put(
                &format!("/api/orders/{id}/reject-cancel"),
                Some(&self.admin),
                body,
            )
            .await
    }

    async fn admin_delete(&self, id: i64, reason: Option<&str>) -> Resp {
        let body = reason.map(|r| json!({ "reason": r }));
        self.app
            .call(
                Method::DELETE,
                &format!("/api/orders/{id}"),
                Some(&self.admin),
                body,
            )
            .await
    }

    /// `GET /api/orders?{query}` as `token`, asserting 200; returns `data`.
    async fn list(&self, token: &str, query: &str) -> Value {
        let r = self
            .app
            .get(&format!("/api/orders?{query}"), Some(token))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.body);
        r.body["data"].clone()
    }

    /// Ids of a list, in order.
    async fn listed_ids(&self, token: &str, query: &str) -> Vec<i64> {
        ids_of(&self.list(token, query).await["orders"])
    }

    /// Runs SQL against the test database (ages timestamps and the like).
    async fn sql(&self, statement: &str) {
        let db = Db::connect(&self.app.db.url, 1).await.expect("connect");
        sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(db.pool())
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
        db.close().await;
    }

    /// `POST /api/orders/sync-inventory` (`undo`: its undo) as the admin, asserting 200.
    async fn sync(&self, undo: bool) -> Value {
        let path = if undo {
            "/api/orders/undo-sync-inventory"
        } else {
            "/api/orders/sync-inventory"
        };
        let r = self.app.post(path, Some(&self.admin), json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body
    }

    /// Makes an order look imported: by the orders' books it holds no stock.
    async fn forget_stock(&self, id: i64) {
        self.sql(&format!(
            "UPDATE orders SET inventory_deducted = 0, reservation_key = NULL, \
             reservation_source = NULL WHERE id = {id}"
        ))
        .await;
    }

    /// (pending, delivered) outbox events.
    async fn outbox(&self) -> (i64, i64) {
        let r = self.app.get("/api/orders/outbox", Some(&self.admin)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        (
            r.body["data"]["pending"].as_i64().unwrap(),
            r.body["data"]["delivered"].as_i64().unwrap(),
        )
    }

    /// Waits (at most ~1.5 s) until the relay delivered everything; returns how many.
    async fn drained_outbox(&self) -> i64 {
        let mut last = (0, 0);
        for _ in 0..30 {
            last = self.outbox().await;
            if last.0 == 0 {
                return last.1;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the outbox did not drain: {last:?}");
    }
}

fn order_body(lines: &[(&str, i64)]) -> Value {
    // Client prices and names are lies the server must ignore.
    let items: Vec<Value> = lines
        .iter()
        .map(|(p, q)| json!({"productId": p, "quantity": q, "price": 0.01, "name": "Tampered"}))
        .collect();
    json!({"items": items, "paymentMethod": "cod",
        "shippingAddress": {"street": "12 Marine Drive", "city": "Mumbai", "zipCode": "400001"}})
}

fn id_of(order: &Value) -> i64 {
    order["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("id: {order}"))
}

fn ids_of(orders: &Value) -> Vec<i64> {
    orders
        .as_array()
        .unwrap_or_else(|| panic!("orders: {orders}"))
        .iter()
        .map(id_of)
        .collect()
}

fn find(orders: &Value, id: i64) -> &Value {
    orders
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == id)
        .unwrap_or_else(|| panic!("order {id} not in {orders}"))
}

fn has_error_at(r: &Resp, path: &str) -> bool {
    r.body["errors"]
        .as_array()
        .is_some_and(|e| e.iter().any(|e| e["path"] == path))
}

fn item<'a>(order: &'a Value, product: &str) -> &'a Value {
    order["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["product_id"] == product)
        .unwrap_or_else(|| panic!("{product} not in {order}"))
}

// ---- one story on every database ---------------------------------------------------

async fn lifecycle_story(backend: Backend) {
    let s = Shop::open(backend).await;
    let kettle = s.product("Kettle", 24.99, 20).await;
    let mug = s.product("Mug", 7.5, 20).await;
    let (ann, ann_id) = s.app.customer("ann@example.com").await;

    // Placement: catalog prices and names, numbers per customer.
    let first = s.order(&ann, &[(&kettle, 2), (&mug, 3)]).await;
    assert_eq!(first["totalAmount"], json!(72.48), "{first}");
    assert_eq!(first["userOrderNumber"], 1);
    assert_eq!(first["userId"], ann_id);
    assert_eq!(first["status"], "pending");
    assert_eq!(first["paymentMethod"], "cod");
    assert_eq!(first["shippingAddress"]["city"], "Mumbai");
    let line = item(&first, &kettle);
    assert_eq!(line["product_name"], "Kettle");
    assert_eq!(line["price"], "24.99");
    assert_eq!(line["subtotal"], "49.98");
    assert_eq!(line["quantity"], 2);
    assert_eq!(item(&first, &mug)["product_name"], "Mug");
    assert_eq!((s.stock(&kettle).await, s.stock(&mug).await), (18, 17));
    let id = id_of(&first);

    // The happy path, one step at a time, each with its timestamp.
    s.advance(id, &["processing"]).await;
    let r = s
        .set_status(
            id,
            json!({"status": "shipped", "trackingNumber": "TRK-42", "courierName": "Delhivery",
                "estimatedDelivery": "2031-03-04"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["message"], "Order status updated to shipped");
    s.advance(id, &["out_for_delivery", "delivered"]).await;
    let row = s.admin_view(id).await;
    assert_eq!(row["tracking_number"], "TRK-42");
    assert_eq!(row["courier_name"], "Delhivery");
    assert_eq!(row["estimated_delivery"], "2031-03-04T00:00:00.000Z");
    assert_eq!(row["total_amount"], "72.48");
    let stamps: Vec<&str> = [
        "created_at",
        "processing_at",
        "shipped_at",
        "out_for_delivery_at",
        "delivered_at",
    ]
    .iter()
    .map(|k| {
        row[*k]
            .as_str()
            .unwrap_or_else(|| panic!("{k} missing: {row}"))
    })
    .collect();
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "{stamps:?}");
    assert_eq!(
        (s.stock(&kettle).await, s.stock(&mug).await),
        (18, 17),
        "delivered goods stay sold"
    );
    let msg = assert_error(
        &s.set_status(id, json!({"status": "pending"})).await,
        StatusCode::CONFLICT,
    );
    assert!(msg.contains("Allowed next: none"), "{msg}");

    // A direct cancel gives the stock back; the refund runs to completion.
    let second = s.order(&ann, &[(&kettle, 4)]).await;
    assert_eq!(second["userOrderNumber"], 2);
    assert_eq!(second["totalAmount"], json!(99.96));
    let id2 = id_of(&second);
    assert_eq!(s.stock(&kettle).await, 14);
    let msg = assert_error(
        &s.set_status(id2, json!({"status": "delivered"})).await,
        StatusCode::CONFLICT,
    );
    assert!(msg.contains("Allowed next: processing, cancelled"), "{msg}");
    s.advance(id2, &["processing"]).await;
    let r = s
        .set_status(
            id2,
            json!({"status": "cancelled", "cancellationReason": "Out of delivery area"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let row = &r.body["data"]["order"];
    assert_eq!(row["cancellation_reason"], "Out of delivery area");
    assert_eq!(row["refund_status"], "pending");
    assert_eq!(row["refund_amount"], "99.96");
    assert!(row["cancelled_at"].is_string());
    assert_eq!(s.stock(&kettle).await, 18);
    let r = s
        .set_status(id2, json!({"status": "refund_processing"}))
        .await;
    assert_eq!(
        r.body["data"]["order"]["refund_status"], "processing",
        "{}",
        r.body
    );
    assert!(r.body["data"]["order"]["refund_processing_at"].is_string());
    let r = s.set_status(id2, json!({"status": "refunded"})).await;
    let row = &r.body["data"]["order"];
    assert_eq!(row["refund_status"], "completed", "{}", r.body);
    assert_eq!(row["refund_amount"], "99.96");
    assert!(row["refunded_at"].is_string());
    let msg = assert_error(
        &s.set_status(id2, json!({"status": "cancelled"})).await,
        StatusCode::CONFLICT,
    );
    assert!(msg.contains("Allowed next: none"), "{msg}");
    assert_eq!(s.stock(&kettle).await, 18, "stock came back once");

    // A customer's cancellation, approved once.
    let third = s.order(&ann, &[(&mug, 2)]).await;
    assert_eq!(third["userOrderNumber"], 3);
    let id3 = id_of(&third);
    assert_eq!(s.stock(&mug).await, 15);
    let r = s
        .cancel_request(&ann, id3, json!({"reason": "Found it cheaper"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["order"]["status"], "cancel_requested");
    let r = s.approve_cancel(id3).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["order"]["status"], "cancelled");
    assert_eq!(r.body["data"]["order"]["refund_amount"], "15.00");
    assert_eq!(s.stock(&mug).await, 17);
    assert_error(&s.approve_cancel(id3).await, StatusCode::CONFLICT);
    assert_eq!(s.stock(&mug).await, 17);

    // The timeline is the history.
    let t = s
        .app
        .get(&format!("/api/orders/{id2}/tracking"), Some(&ann))
        .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    let statuses: Vec<&str> = t.body["data"]["tracking"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "pending",
            "processing",
            "cancelled",
            "refund_processing",
            "refunded"
        ]
    );

    // The customer's list, newest first.
    assert_eq!(s.listed_ids(&ann, "").await, [id3, id2, id]);

    // Every change reached the bus: 3 placements and 10 changes.
    assert!(s.drained_outbox().await >= 13);
}

// The stories behind the original's defects, on every database: C5 (status
// steps), C9 (sync/undo), C10 + C11 (retention, detail requests), C13 (the
// users service's figures), C20 (reviews), S8 (who may file a cancellation).
ecap_core::on_every_backend!(
    lifecycle_story,
    the_status_moves_one_allowed_step_at_a_time,
    inventory_sync_reserves_for_orders_without_stock_and_undo_gives_it_back,
    sync_and_undo_skip_deleted_cancel_requested_and_refund_processing,
    retention_hides_old_cancellations_and_detail_requests_reveal_them,
    user_administration_figures_come_from_the_orders,
    reviews_need_a_delivered_order_and_count_once_per_order,
    concurrent_reviews_count_once_per_user_product_and_order,
    scheduled_clean_up_erases_expired_deleted_orders,
    who_may_do_what,
);

// ---- placement -----------------------------------------------------------------------

#[tokio::test]
async fn placement_takes_prices_and_names_from_the_catalog() {
    let s = Shop::open(Backend::Sqlite).await;
    let tent = s.product("Tent", 129.99, 50).await;
    let lamp = s.product("Lamp", 15.5, 50).await;
    let (ann, ann_id) = s.app.customer("prices@example.com").await;
    let (bob, _) = s.app.customer("bob-prices@example.com").await;

    // Two lines of one product are one line; client price and name are ignored.
    let o = s.order(&ann, &[(&tent, 1), (&lamp, 1), (&tent, 2)]).await;
    assert_eq!(o["totalAmount"], json!(405.47), "{o}");
    assert_eq!(o["items"].as_array().unwrap().len(), 2, "{o}");
    let line = item(&o, &tent);
    assert_eq!(line["quantity"], 3);
    assert_eq!(line["price"], "129.99");
    assert_eq!(line["subtotal"], "389.97");
    assert_eq!(line["product_name"], "Tent");
    assert_eq!(line["order_id"], o["id"]);
    assert_eq!(s.stock(&tent).await, 47);
    let id = id_of(&o);

    // The same figures everywhere the order is shown.
    let row = s
        .app
        .get(&format!("/api/orders/{id}"), Some(&ann))
        .await
        .body["data"]["order"]
        .clone();
    assert_eq!(row["total_amount"], "405.47");
    assert_eq!(row["user_id"], ann_id);
    assert_eq!(row["items"].as_array().unwrap().len(), 2);
    let listed = s.list(&ann, "").await;
    let li = find(&listed["orders"], id);
    assert_eq!(li["totalAmount"], json!(405.47));
    let names: Vec<&str> = li["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Tent") && names.contains(&"Lamp"), "{li}");
    assert!(!names.contains(&"Tampered"));

    // Numbers count per customer; a refused placement takes no number.
    assert_eq!(s.order(&ann, &[(&lamp, 1)]).await["userOrderNumber"], 2);
    assert_eq!(s.order(&bob, &[(&lamp, 1)]).await["userOrderNumber"], 1);
    assert_eq!(s.order(&ann, &[(&lamp, 1)]).await["userOrderNumber"], 3);
    assert_error(
        &s.place(&ann, order_body(&[(&lamp, 1000)])).await,
        StatusCode::CONFLICT,
    );
    assert_eq!(s.order(&ann, &[(&lamp, 1)]).await["userOrderNumber"], 4);
    assert_eq!(s.order(&bob, &[(&lamp, 1)]).await["userOrderNumber"], 2);

    // A later price change does not touch placed orders, and prices new ones.
    let r = s
        .app
        .put(
            &format!("/api/products/{tent}"),
            Some(&s.admin),
            json!({"price": 100}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(s.admin_view(id).await["total_amount"], "405.47");
    assert_eq!(
        s.order(&bob, &[(&tent, 2)]).await["totalAmount"],
        json!(200.0)
    );

    // String quantities are integers too; an address may be plain text.
    let r = s
        .place(
            &ann,
            json!({"items": [{"productId": lamp, "quantity": "2"}], "paymentMethod": "upi",
                "shippingAddress": "7 Park Street, Kolkata"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["data"]["order"]["totalAmount"], json!(31.0));
    assert_eq!(
        r.body["data"]["order"]["shippingAddress"],
        "7 Park Street, Kolkata"
    );
}

#[tokio::test]
async fn a_saved_address_is_copied_and_only_its_owner_may_use_it() {
    let s = Shop::open(Backend::Sqlite).await;
    let p = s.product("Blanket", 30.0, 10).await;
    let (ann, _) = s.app.customer("addr-ann@example.com").await;
    let (bob, _) = s.app.customer("addr-bob@example.com").await;
    let a = s
        .app
        .post(
            "/api/users/addresses",
            Some(&bob),
            json!({"label": "Home", "street": "9 Hill Road", "city": "Panaji", "state": "Goa",
                "zipCode": "403001", "phone": "+91 98200 00000"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let aid = a.body["data"]["address"]["id"].as_i64().unwrap();

    let body = json!({"items": [{"productId": p, "quantity": 1}], "paymentMethod": "card",
        "addressId": aid});
    let r = s.place(&bob, body.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let address = &r.body["data"]["order"]["shippingAddress"];
    assert_eq!(address["street"], "9 Hill Road", "{address}");
    assert_eq!(address["city"], "Panaji");
    assert_eq!(address["state"], "Goa");
    assert_eq!(address["zipCode"], "403001");
    let bob_order = id_of(&r.body["data"]["order"]);
    assert_eq!(s.stock(&p).await, 9);

    // A copy: editing the address book later leaves the order as it was.
    let r = s
        .app
        .put(
            &format!("/api/users/addresses/{aid}"),
            Some(&bob),
            json!({"label": "Home", "street": "1 New Lane", "city": "Margao", "state": "Goa",
                "zipCode": "403601", "phone": "+91 98200 00000"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let row = s.admin_view(bob_order).await;
    assert_eq!(row["shippingAddress"]["street"], "9 Hill Road");

    // Someone else's address (or none): 404 on addressId, nothing reserved.
    for id in [json!(aid), json!(999_999)] {
        let r = s
            .place(&ann, with(body.clone(), "addressId", id.clone()))
            .await;
        assert_eq!(
            assert_error(&r, StatusCode::NOT_FOUND),
            "Address not found",
            "{id}"
        );
        assert!(has_error_at(&r, "addressId"), "{}", r.body);
    }
    let r = s.place(&ann, with(body, "addressId", json!("home"))).await;
    assert_error(&r, StatusCode::BAD_REQUEST);
    assert!(has_error_at(&r, "addressId"), "{}", r.body);
    assert_eq!(s.stock(&p).await, 9);
    assert_eq!(s.list(&ann, "").await["pagination"]["total"], 0);

    // Deleting it does not touch the order either.
    let r = s
        .app
        .delete(&format!("/api/users/addresses/{aid}"), Some(&bob))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        s.admin_view(bob_order).await["shippingAddress"]["city"],
        "Panaji"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotency_keys_make_retries_safe() {
    let s = Shop::open(Backend::Sqlite).await;
    let p = s.product("Lantern", 20.0, 10).await;
    let (ann, _) = s.app.customer("idem-ann@example.com").await;
    let (bob, _) = s.app.customer("idem-bob@example.com").await;
    let body = json!({"items": [{"productId": p, "quantity": 2}], "paymentMethod": "wallet",
        "shippingAddress": {"street": "4 Lake Road", "city": "Bhopal"}});

    let first = s.place_with_key(&ann, "lantern-1", &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let id = id_of(&first.body["data"]["order"]);
    assert_eq!(s.stock(&p).await, 8);

    // Same key, same body (keys in any order): the first order, marked replayed.
    let reordered: Value = serde_json::from_str(
        &format!(
            r#"{{"shippingAddress": {{"city": "Bhopal", "street": "4 Lake Road"}}, "paymentMethod": "wallet",
            "items": [{{"quantity": 2, "productId": "{p}"}}]}}"#
        ),
    )
    .unwrap();
    for b in [&body, &reordered] {
        let again = s.place_with_key(&ann, "lantern-1", b).await;
        assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
        assert_eq!(
            again.headers.get("idempotent-replayed").unwrap(),
            "true",
            "{:?}",
            again.headers
        );
        assert_eq!(id_of(&again.body["data"]["order"]), id);
        assert_eq!(again.body["data"]["order"]["userOrderNumber"], 1);
    }
    assert_eq!(s.stock(&p).await, 8, "reserved once");

    // Same key, another body: 422, nothing reserved.
    let other = with(
        body.clone(),
        "items",
        json!([{"productId": p, "quantity": 3}]),
    );
    let r = s.place_with_key(&ann, "lantern-1", &other).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(s.stock(&p).await, 8);

    // Keys belong to their user.
    let r = s.place_with_key(&bob, "lantern-1", &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(r.headers.get("idempotent-replayed").is_none());
    assert_ne!(id_of(&r.body["data"]["order"]), id);
    assert_eq!(s.stock(&p).await, 6);

    // A refused placement does not burn its key: the retry after a restock works.
    let big = with(
        body.clone(),
        "items",
        json!([{"productId": p, "quantity": 7}]),
    );
    let r = s.place_with_key(&ann, "lantern-2", &big).await;
    assert_eq!(
        assert_error(&r, StatusCode::CONFLICT),
        "This item is sold out. Will be back soon."
    );
    assert_eq!(s.stock(&p).await, 6);
    s.restock(&p, 10).await;
    let r = s.place_with_key(&ann, "lantern-2", &big).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(r.headers.get("idempotent-replayed").is_none());
    assert_eq!(s.stock(&p).await, 9);

    // Racing retries of one key: one order, one reservation.
    let small = with(
        body.clone(),
        "items",
        json!([{"productId": p, "quantity": 1}]),
    );
    let racers =
        futures::future::join_all((0..6).map(|_| s.place_with_key(&ann, "lantern-race", &small)))
            .await;
    let mut ids: Vec<i64> = racers
        .iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            id_of(&r.body["data"]["order"])
        })
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 1, "one order for one key: {ids:?}");
    assert_eq!(
        racers
            .iter()
            .filter(|r| r.headers.get("idempotent-replayed").is_none())
            .count(),
        1
    );
    assert_eq!(s.stock(&p).await, 8);

    // A key must be visible ASCII of at most 255 characters.
    for key in ["x".repeat(256), " ".to_owned()] {
        let r = s.place_with_key(&ann, &key, &small).await;
        assert_error(&r, StatusCode::BAD_REQUEST);
    }
    assert_eq!(s.stock(&p).await, 8);
    assert_eq!(s.list(&ann, "").await["pagination"]["total"], 3);
}

#[tokio::test]
async fn bad_orders_are_refused_and_reserve_nothing() {
    let s = Shop::open(Backend::Sqlite).await;
    let p = s.product("Rope", 12.0, 5).await;
    let q = s.product("Carabiner", 3.0, 5).await;
    let archived = s.product("Old Rope", 9.0, 5).await;
    let r = s
        .app
        .delete(&format!("/api/products/{archived}"), Some(&s.admin))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(s.product_json(&archived).await["status"], "archived");
    let (ann, _) = s.app.customer("bad@example.com").await;
    let base = order_body(&[(&p, 1)]);
    let line = |quantity: Value| json!([{"productId": p, "quantity": quantity}]);

    let cases: Vec<(Value, &str)> = vec![
        (
            with(base.clone(), "items", line(json!(0))),
            "items[0].quantity",
        ),
        (
            with(base.clone(), "items", line(json!(-2))),
            "items[0].quantity",
        ),
        (
            with(base.clone(), "items", line(json!(10_001))),
            "items[0].quantity",
        ),
        (
            with(base.clone(), "items", line(json!(1.5))),
            "items[0].quantity",
        ),
        (
            with(base.clone(), "items", line(json!("two"))),
            "items[0].quantity",
        ),
        (
            with(base.clone(), "items", line(Value::Null)),
            "items[0].quantity",
        ),
        (
            with(base.clone(), "items", json!([{"productId": p}])),
            "items[0].quantity",
        ),
        // Lines of one product add up past the limit.
        (
            with(
                base.clone(),
                "items",
                json!([{"productId": p, "quantity": 6000}, {"productId": p, "quantity": 6000}]),
            ),
            "items",
        ),
        (with(base.clone(), "items", json!([])), "items"),
        (with(base.clone(), "items", json!("rope")), "items"),
        (without(base.clone(), "items"), "items"),
        (
            with(
                base.clone(),
                "items",
                json!([{"productId": "", "quantity": 1}]),
            ),
            "items[0].productId",
        ),
        (
            with(
                base.clone(),
                "items",
                json!([{"productId": 5, "quantity": 1}]),
            ),
            "items[0].productId",
        ),
        (
            with(base.clone(), "paymentMethod", json!("bitcoin")),
            "paymentMethod",
        ),
        (
            with(base.clone(), "paymentMethod", json!(7)),
            "paymentMethod",
        ),
        (without(base.clone(), "paymentMethod"), "paymentMethod"),
        (without(base.clone(), "shippingAddress"), "shippingAddress"),
        (
            with(base.clone(), "shippingAddress", json!("   ")),
            "shippingAddress",
        ),
        (
            with(base.clone(), "shippingAddress", json!({})),
            "shippingAddress",
        ),
        (
            with(base.clone(), "shippingAddress", json!({"street": ""})),
            "shippingAddress",
        ),
        (
            with(
                base.clone(),
                "items",
                json!([{"productId": p, "quantity": 1, "price": -1}]),
            ),
            "items[0].price",
        ),
        (
            with(
                base.clone(),
                "items",
                Value::Array(
                    (0..101)
                        .map(|n| json!({"productId": format!("{n:024x}"), "quantity": 1}))
                        .collect(),
                ),
            ),
            "items",
        ),
    ];
    for (body, path) in &cases {
        let r = s.place(&ann, body.clone()).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST),
            "Validation failed",
            "{body}"
        );
        assert!(has_error_at(&r, path), "{body} → {}", r.body);
    }

    // Catalog refusals name the product; a refused line releases the others.
    let r = s
        .place(&ann, order_body(&[(&p, 1), (MISSING_PRODUCT, 1)]))
        .await;
    assert_eq!(assert_error(&r, StatusCode::NOT_FOUND), "Product not found");
    assert_eq!(r.body["productId"], MISSING_PRODUCT);
    let r = s.place(&ann, order_body(&[(&q, 1), (&archived, 1)])).await;
    let status = r.status;
    assert!(status.is_client_error(), "{status}: {}", r.body);
    assert_eq!(r.body["success"], false);
    assert_eq!(r.body["productId"], archived.as_str(), "{}", r.body);
    let r = s.place(&ann, order_body(&[(&q, 2), (&p, 6)])).await;
    assert_eq!(
        assert_error(&r, StatusCode::CONFLICT),
        "This item is sold out. Will be back soon."
    );
    assert_eq!(r.body["productId"], p.as_str());
    let r = s.place(&ann, order_body(&[("not-a-product-id", 1)])).await;
    assert!(r.status.is_client_error(), "{}: {}", r.status, r.body);
    assert_eq!(r.body["success"], false);

    // Bodies that are not JSON objects.
    let raw = |content_type: &'static str, text: &'static str| {
        s.app
            .client
            .post(format!("{}/api/orders", s.app.base))
            .bearer_auth(&ann)
            .header("content-type", content_type)
            .body(text)
    };
    let r = s.send(raw("application/json", "{\"items\": [")).await;
    assert_error(&r, StatusCode::BAD_REQUEST);
    let r = s.send(raw("application/json", "[1, 2]")).await;
    assert!(r.status.is_client_error(), "{}", r.status);
    // A form is read like JSON, and refused like it.
    let r = s
        .send(raw("application/x-www-form-urlencoded", "items=1"))
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST);
    assert!(has_error_at(&r, "items"), "{}", r.body);
    let r = s.send(raw("text/plain", "{}")).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.body);

    // Nothing was reserved and nothing was written.
    assert_eq!(s.stock(&p).await, 5);
    assert_eq!(s.stock(&q).await, 5);
    assert_eq!(s.stock(&archived).await, 5);
    assert_eq!(s.list(&ann, "").await["pagination"]["total"], 0);
    assert_eq!(s.list(&s.admin, "").await["pagination"]["total"], 0);
    // The first good order is still number 1.
    assert_eq!(s.order(&ann, &[(&p, 5)]).await["userOrderNumber"], 1);
    assert_eq!(s.stock(&p).await, 0);
    let r = s.place(&ann, order_body(&[(&p, 1)])).await;
    assert_eq!(
        assert_error(&r, StatusCode::CONFLICT),
        "This item is sold out. Will be back soon."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_orders_never_oversell() {
    let s = Shop::open(Backend::Sqlite).await;
    let p = s.product("Limited Print", 50.0, 5).await;
    let mut buyers = Vec::new();
    for n in 0..3 {
        buyers.push(s.app.customer(&format!("rush{n}@example.com")).await.0);
    }
    let attempts =
        futures::future::join_all((0..12).map(|n| s.place(&buyers[n % 3], order_body(&[(&p, 1)]))))
            .await;
    let placed: Vec<&Resp> = attempts
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .collect();
    for r in &attempts {
        assert!(
            r.status == StatusCode::CREATED || r.status == StatusCode::CONFLICT,
            "{}: {}",
            r.status,
            r.body
        );
    }
    assert_eq!(placed.len(), 5);
    assert_eq!(s.stock(&p).await, 0);
    // Each customer's numbers are 1..n without gaps or repeats.
    for token in &buyers {
        let mut numbers: Vec<i64> = s.list(token, "").await["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["userOrderNumber"].as_i64().unwrap())
            .collect();
        numbers.sort_unstable();
        let expected: Vec<i64> = (1..=numbers.len() as i64).collect();
        assert_eq!(numbers, expected);
    }
}

// ---- who may do what -------------------------------------------------------------------

/// Everything an admin can see of the state the refused calls must leave alone.
async fn snapshot(s: &Shop, orders: &[i64], product: &str) -> Value {
    let mut views = Vec::new();
    for id in orders {
        views.push(s.admin_view(*id).await);
    }
    let requests = s
        .app
        .get("/api/orders/detail-requests/list", Some(&s.admin))
        .await
        .body["data"]
        .clone();
    let restorations = s
        .app
        .get("/api/orders/restoration-requests", Some(&s.admin))
        .await
        .body["data"]
        .clone();
    let (pending, delivered) = s.outbox().await;
    json!({"orders": views, "stock": s.stock(product).await, "requests": requests,
        "restorations": restorations, "events": pending + delivered})
}

async fn who_may_do_what(backend: Backend) {
    let s = Shop::open(backend).await;
    let p = s.product("Atlas", 25.0, 100).await;
    let (owner, _) = s.app.customer("owner@example.com").await;
    let (other, _) = s.app.customer("other@example.com").await;
    let (merchant, _) = s
        .app
        .register_as("Mira Merchant", "merchant@example.com", "merchant")
        .await;

    // A: pending with a cancellation request; B: delivered; C: admin-deleted with
    // a pending detail request; D: hidden by its owner, restoration pending;
    // E: hidden long ago (the clean-up would erase its address).
    let a = s.order_id(&owner, &[(&p, 1)]).await;
    let b = s.order_id(&owner, &[(&p, 1)]).await;
    let c = s.order_id(&owner, &[(&p, 1)]).await;
    let d = s.order_id(&owner, &[(&p, 1)]).await;
    let e = s.order_id(&owner, &[(&p, 1)]).await;
    assert_eq!(
        s.cancel_request(&owner, a, json!({"reason": "Changed my mind"}))
            .await
            .status,
        StatusCode::OK
    );
    s.deliver(b).await;
    assert_eq!(
        s.admin_delete(c, Some("duplicate")).await.status,
        StatusCode::OK
    );
    let r = s
        .app
        .post(
            &format!("/api/orders/{c}/detail-request"),
            Some(&owner),
            json!({"reason": "Tax / accounting"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let request_id = r.body["data"]["request"]["id"].as_i64().unwrap();
    for id in [d, e] {
        let r = s
            .app
            .delete(&format!("/api/orders/{id}/soft"), Some(&owner))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let r = s
        .app
        .post(
            &format!("/api/orders/{d}/restore-request"),
            Some(&owner),
            json!({"reason": "Deleted the wrong order"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    s.sql(&format!(
        "UPDATE orders SET hidden_expires_at = 1 WHERE id = {e}"
    ))
    .await;
    let all = [a, b, c, d, e];
    let before = snapshot(&s, &all, &p).await;

    // Anonymous (or a forged token): 401 on every route.
    let routes: Vec<(Method, String)> = vec![
        (Method::GET, "/api/orders".into()),
        (Method::POST, "/api/orders".into()),
        (Method::GET, "/api/orders/active".into()),
        (Method::GET, "/api/orders/deleted".into()),
        (Method::GET, format!("/api/orders/{a}")),
        (Method::DELETE, format!("/api/orders/{a}")),
        (Method::GET, format!("/api/orders/{a}/tracking")),
        (Method::PUT, format!("/api/orders/{a}/status")),
        (Method::POST, format!("/api/orders/{a}/cancel-request")),
        (Method::PUT, format!("/api/orders/{a}/approve-cancel")),
        (Method::PUT, format!("/api/orders/{a}/reject-cancel")),
        (Method::POST, format!("/api/orders/{b}/review")),
        (Method::POST, format!("/api/orders/{c}/detail-request")),
        (Method::GET, format!("/api/orders/{c}/detail-request")),
        (Method::DELETE, format!("/api/orders/{a}/soft")),
        (Method::POST, format!("/api/orders/{d}/restore-request")),
        (Method::POST, format!("/api/orders/{d}/restoration/approve")),
        (Method::POST, format!("/api/orders/{d}/restoration/reject")),
        (Method::GET, "/api/orders/restoration-requests".into()),
        (Method::POST, "/api/orders/cleanup/expired".into()),
        (Method::POST, "/api/orders/bulk-delete".into()),
        (Method::POST, "/api/orders/sync-inventory".into()),
        (Method::POST, "/api/orders/undo-sync-inventory".into()),
        (Method::GET, "/api/orders/detail-requests/list".into()),
        (
            Method::PUT,
            format!("/api/orders/detail-requests/{request_id}/approve"),
        ),
        (Method::GET, "/api/orders/outbox".into()),
    ];
    for (method, path) in &routes {
        let body = (method != Method::GET).then(|| json!({}));
        for token in [None, Some("not.a.token")] {
            let r = s.app.call(method.clone(), path, token, body.clone()).await;
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path}: {}",
                r.body
            );
            assert_eq!(r.body["success"], false);
        }
    }

    // Another customer, and a merchant (a customer here): someone else's order is 404.
    let owned: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/api/orders/{a}"), None),
        (Method::GET, format!("/api/orders/{a}/tracking"), None),
        (
            Method::POST,
            format!("/api/orders/{b}/cancel-request"),
            Some(json!({"reason": "I want it cancelled"})),
        ),
        (
            Method::POST,
            format!("/api/orders/{c}/detail-request"),
            Some(json!({"reason": "Need invoice / billing proof"})),
        ),
        (Method::GET, format!("/api/orders/{c}/detail-request"), None),
        (
            Method::POST,
            format!("/api/orders/{b}/review"),
            Some(json!({"productId": p, "rating": 1})),
        ),
        (Method::DELETE, format!("/api/orders/{b}/soft"), None),
        (
            Method::POST,
            format!("/api/orders/{d}/restore-request"),
            Some(json!({"reason": "Please restore this order"})),
        ),
    ];
    for token in [&other, &merchant] {
        for (method, path, body) in &owned {
            let r = s
                .app
                .call(method.clone(), path, Some(token), body.clone())
                .await;
            assert_error(&r, StatusCode::NOT_FOUND);
        }
        // Their lists hold none of the owner's orders.
        assert_eq!(s.list(token, "").await["pagination"]["total"], 0);
        let r = s.app.get("/api/orders/deleted", Some(token)).await;
        assert_eq!(r.body["data"]["orders"], json!([]), "{}", r.body);
    }

    // Admin-only routes: 403 for customers (even on their own order) and merchants.
    let admin_only: Vec<(Method, String, Value)> = vec![
        (
            Method::PUT,
            format!("/api/orders/{a}/status"),
            json!({"status": "cancelled"}),
        ),
        (
            Method::PUT,
            format!("/api/orders/{a}/approve-cancel"),
            json!({}),
        ),
        (
            Method::PUT,
            format!("/api/orders/{a}/reject-cancel"),
            json!({"rejectionReason": "no"}),
        ),
        (
            Method::DELETE,
            format!("/api/orders/{b}"),
            json!({"reason": "x"}),
        ),
        (
            Method::POST,
            "/api/orders/bulk-delete".into(),
            json!({"ids": [a, b]}),
        ),
        (Method::POST, "/api/orders/sync-inventory".into(), json!({})),
        (
            Method::POST,
            "/api/orders/undo-sync-inventory".into(),
            json!({}),
        ),
        (
            Method::GET,
            "/api/orders/detail-requests/list".into(),
            json!({}),
        ),
        (
            Method::PUT,
            format!("/api/orders/detail-requests/{request_id}/approve"),
            json!({"adminNote": "sure"}),
        ),
        (
            Method::PUT,
            format!("/api/orders/detail-requests/{request_id}/reject"),
            json!({}),
        ),
        (
            Method::GET,
            "/api/orders/restoration-requests".into(),
            json!({}),
        ),
        (
            Method::POST,
            format!("/api/orders/{d}/restoration/approve"),
            json!({}),
        ),
        (
            Method::POST,
            format!("/api/orders/{d}/restoration/reject"),
            json!({"rejectionReason": "no"}),
        ),
        (
            Method::POST,
            "/api/orders/cleanup/expired".into(),
            json!({}),
        ),
        (Method::GET, "/api/orders/outbox".into(), json!({})),
    ];
    for token in [&owner, &other, &merchant] {
        for (method, path, body) in &admin_only {
            let body = (method != Method::GET).then(|| body.clone());
            let r = s.app.call(method.clone(), path, Some(token), body).await;
            assert_error(&r, StatusCode::FORBIDDEN);
        }
    }
    // Admins cannot file a customer's cancellation or review (they act directly).
    let r = s
        .cancel_request(&s.admin, b, json!({"reason": "admin says so"}))
        .await;
    assert_error(&r, StatusCode::NOT_FOUND);

    // None of it changed anything.
    let after = snapshot(&s, &all, &p).await;
    assert_eq!(before, after);

    // The owner and the admin do see the order; the admin sees all.
    let r = s.app.get(&format!("/api/orders/{a}"), Some(&owner)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = s
        .app
        .get(&format!("/api/orders/{a}/tracking"), Some(&s.admin))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(s.list(&s.admin, "").await["pagination"]["total"], 5);

    // A merchant places and manages their own orders like a customer.
    let m = s.order(&merchant, &[(&p, 2)]).await;
    assert_eq!(m["userOrderNumber"], 1);
    let mid = id_of(&m);
    assert_eq!(s.listed_ids(&merchant, "").await, [mid]);
    let r = s
        .cancel_request(&merchant, mid, json!({"reason": "Ordered twice"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_error(
        &s.app
            .put(
                &format!("/api/orders/{mid}/approve-cancel"),
                Some(&merchant),
                json!({}),
            )
            .await,
        StatusCode::FORBIDDEN,
    );
    assert_eq!(s.admin_view(mid).await["status"], "cancel_requested");
}

// ---- lifecycle ------------------------------------------------------------------------

async fn the_status_moves_one_allowed_step_at_a_time(backend: Backend) {
    let s = Shop::open(backend).await;
    let p = s.product("Clock", 10.0, 100).await;
    let (ann, _) = s.app.customer("steps@example.com").await;

    // Jumps refused with the allowed next statuses named.
    let pending = s.order_id(&ann, &[(&p, 1)]).await;
    let delivered = s.order_id(&ann, &[(&p, 1)]).await;
    s.deliver(delivered).await;
    let refunded = s.order_id(&ann, &[(&p, 1)]).await;
    s.advance(refunded, &["cancelled", "refund_processing", "refunded"])
        .await;
    let requested = s.order_id(&ann, &[(&p, 1)]).await;
    s.cancel_request(&ann, requested, json!({"reason": "wrong size"}))
        .await;
    let deleted = s.order_id(&ann, &[(&p, 1)]).await;
    assert_eq!(s.admin_delete(deleted, None).await.status, StatusCode::OK);
    let cases: Vec<(i64, &str, &str)> = vec![
        (pending, "delivered", "processing, cancelled"),
        (pending, "shipped", "processing, cancelled"),
        (pending, "refunded", "processing, cancelled"),
        (pending, "pending", "processing, cancelled"),
        (delivered, "pending", "none"),
        (delivered, "cancelled", "none"),
        (delivered, "processing", "none"),
        (refunded, "cancelled", "none"),
        (refunded, "pending", "none"),
        (requested, "processing", "none"),
        (requested, "cancelled", "none"),
        (deleted, "processing", "none"),
    ];
    for (id, to, allowed) in cases {
        let before = s.admin_view(id).await;
        let msg = assert_error(
            &s.set_status(id, json!({ "status": to })).await,
            StatusCode::CONFLICT,
        );
        assert!(
            msg.contains(&format!("Allowed next: {allowed}")),
            "{id} → {to}: {msg}"
        );
        assert_eq!(
            s.admin_view(id).await,
            before,
            "a refused step changes nothing"
        );
    }
    // Unknown or non-settable statuses, bad ids, bad dates.
    for bad in [
        json!({"status": "teleported"}),
        json!({"status": "cancel_requested"}),
        json!({"status": "deleted"}),
        json!({"status": 3}),
        json!({}),
    ] {
        let r = s.set_status(pending, bad.clone()).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST),
            "Invalid status",
            "{bad}"
        );
    }
    assert_error(
        &s.set_status(999_999, json!({"status": "processing"})).await,
        StatusCode::NOT_FOUND,
    );
    assert_error(
        &s.app
            .put(
                "/api/orders/abc/status",
                Some(&s.admin),
                json!({"status": "processing"}),
            )
            .await,
        StatusCode::BAD_REQUEST,
    );
    s.advance(pending, &["processing"]).await;
    let r = s
        .set_status(
            pending,
            json!({"status": "shipped", "estimatedDelivery": "next tuesday"}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST);
    assert_eq!(s.admin_view(pending).await["status"], "processing");

    // Shipping details come with `shipped` and show in every view.
    let r = s
        .set_status(
            pending,
            json!({"status": "shipped", "trackingNumber": " AWB-77 ", "courierName": "Blue Dart",
                "estimatedDelivery": "2031-05-06T10:30:00Z"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let listed = s.list(&ann, "status=shipped").await;
    let li = find(&listed["orders"], pending);
    assert_eq!(li["trackingNumber"], "AWB-77");
    assert_eq!(li["courierName"], "Blue Dart");
    assert_eq!(li["estimatedDelivery"], "2031-05-06T10:30:00.000Z");
    assert!(li["shippedAt"].is_string() && li["processingAt"].is_string());
    assert!(li["deliveredAt"].is_null());
    // Going on without them keeps them.
    s.advance(pending, &["out_for_delivery"]).await;
    let row = s.admin_view(pending).await;
    assert_eq!(row["tracking_number"], "AWB-77");
    assert!(row["out_for_delivery_at"].is_string());
}

#[tokio::test]
async fn a_direct_cancel_releases_stock_from_every_live_status() {
    let s = Shop::open(Backend::Sqlite).await;
    let p = s.product("Vase", 45.5, 40).await;
    let (ann, _) = s.app.customer("cancel@example.com").await;
    for path in [
        &[][..],
        &["processing"][..],
        &["processing", "shipped"][..],
        &["processing", "shipped", "out_for_delivery"][..],
    ] {
        let id = s.order_id(&ann, &[(&p, 3)]).await;
        s.advance(id, path).await;
        let held = s.stock(&p).await;
        assert_eq!(held, 37, "{path:?}");
        let r = s.set_status(id, json!({"status": "cancelled"})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let row = &r.body["data"]["order"];
        assert_eq!(row["refund_status"], "pending");
        assert_eq!(row["refund_amount"], "136.50");
        assert_eq!(row["inventory_deducted"], false);
        assert_eq!(s.stock(&p).await, 40, "{path:?}");
        // The refund runs on; stock is not given back twice.
        s.advance(id, &["refund_processing", "refunded"]).await;
        assert_eq!(s.stock(&p).await, 40);
        let li = find(&s.list(&ann, "").await["orders"], id).clone();
        assert_eq!(li["refundStatus"], "completed");
        assert_eq!(li["refundAmount"], json!(136.5));
    }
}

// ---- cancellation requests ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancellation_requests_and_returns() {
    let s = Shop::open(Backend::Sqlite).await;
    let p = s.product("Chair", 60.0, 100).await;
    let (ann, _) = s.app.customer("returns@example.com").await;

    // A reason is required; images are http(s) URLs, at most 10.
    let id = s.order_id(&ann, &[(&p, 2)]).await;
    for bad in [
        json!({}),
        json!({"reason": "   "}),
        json!({"reason": 12}),
        json!({"reason": "x".repeat(2001)}),
        json!({"reason": "Broken", "images": "ftp://img.example/a.jpg"}),
        json!({"reason": "Broken", "images": ["ftp://img.example/a.jpg"]}),
        json!({"reason": "Broken", "images": ["javascript:alert(1)"]}),
        json!({"reason": "Broken", "images": [1]}),
        json!({"reason": "Broken",
            "images": (0..11).map(|n| format!("https://img.example/{n}.jpg")).collect::<Vec<_>>()}),
    ] {
        let r = s.cancel_request(&ann, id, bad.clone()).await;
        assert_error(&r, StatusCode::BAD_REQUEST);
        assert_eq!(s.admin_view(id).await["status"], "pending", "{bad}");
    }
    let images: Vec<String> = (0..10)
        .map(|n| format!("https://img.example/{n}.jpg"))
        .collect();
    let r = s
        .cancel_request(
            &ann,
            id,
            json!({"reason": "Wrong colour", "images": images, "returnType": "refund"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let row = &r.body["data"]["order"];
    assert_eq!(row["status"], "cancel_requested");
    assert_eq!(row["cancellation_reason"], "Wrong colour");
    assert_eq!(row["cancellation_images"], json!(images));
    assert!(row["cancellation_requested_at"].is_string());
    let li = find(&s.list(&ann, "").await["orders"], id).clone();
    assert_eq!(li["cancellationImages"], json!(images));
    // A second request while one is open is refused.
    assert_error(
        &s.cancel_request(&ann, id, json!({"reason": "again"})).await,
        StatusCode::CONFLICT,
    );

    // Approved once, even when the admin clicks five times at once.
    assert_eq!(s.stock(&p).await, 98);
    let answers = futures::future::join_all((0..5).map(|_| s.approve_cancel(id))).await;
    let ok = answers
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    assert_eq!(
        ok,
        1,
        "{:?}",
        answers.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    for r in answers.iter().filter(|r| r.status != StatusCode::OK) {
        assert_eq!(
            assert_error(r, StatusCode::CONFLICT),
            "Order does not have a pending cancellation request"
        );
    }
    let row = s.admin_view(id).await;
    assert_eq!(row["status"], "cancelled");
    assert_eq!(row["refund_status"], "pending");
    assert_eq!(row["refund_amount"], "120.00");
    assert_eq!(row["cancellation_approved_by"], s.admin_id);
    assert_eq!(s.stock(&p).await, 100, "stock back exactly once");
    assert_error(&s.approve_cancel(id).await, StatusCode::CONFLICT);
    assert_error(&s.reject_cancel(id, json!({})).await, StatusCode::CONFLICT);
    assert_eq!(s.stock(&p).await, 100);

    // Processing: allowed; rejected → processing again, with the reason; asked again.
    let id = s.order_id(&ann, &[(&p, 1)]).await;
    s.advance(id, &["processing"]).await;
    assert_eq!(
        s.cancel_request(&ann, id, json!({"reason": "Too slow"}))
            .await
            .status,
        StatusCode::OK
    );
    let r = s.reject_cancel(id, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let row = &r.body["data"]["order"];
    assert_eq!(row["status"], "processing");
    assert_eq!(row["cancellation_rejected"], true);
    assert_eq!(
        row["cancellation_rejection_reason"],
        "Cancellation request denied"
    );
    assert_eq!(row["cancellation_rejected_by"], s.admin_id);
    assert_eq!(s.stock(&p).await, 99);
    assert_eq!(
        s.cancel_request(&ann, id, json!({"reason": "Still too slow"}))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        s.reject_cancel(id, json!({"rejectionReason": "Already packed"}))
            .await
            .status,
        StatusCode::OK
    );

    // Shipped and out for delivery: refused.
    s.advance(id, &["shipped"]).await;
    let r = s
        .cancel_request(&ann, id, json!({"reason": "Please stop it"}))
        .await;
    let msg = assert_error(&r, StatusCode::CONFLICT);
    assert!(
        msg.contains("Cannot cancel order with status: shipped"),
        "{msg}"
    );
    s.advance(id, &["out_for_delivery"]).await;
    assert_error(
        &s.cancel_request(&ann, id, json!({"reason": "Please stop it"}))
            .await,
        StatusCode::CONFLICT,
    );
    assert_eq!(s.admin_view(id).await["status"], "out_for_delivery");

    // Delivered: a return within 7 days; rejected → still delivered (C6).
    s.advance(id, &["delivered"]).await;
    let r = s
        .cancel_request(
            &ann,
            id,
            json!({"reason": "Scratched", "images": ["https://img.example/scratch.jpg"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = s
        .reject_cancel(id, json!({"rejectionReason": "Scratch is cosmetic"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["order"]["status"], "delivered");
    assert_eq!(
        r.body["data"]["order"]["cancellation_rejection_reason"],
        "Scratch is cosmetic"
    );
    assert_eq!(s.stock(&p).await, 99, "delivered goods stay sold");
    // Asked again and approved: the goods come back.
    assert_eq!(
        s.cancel_request(&ann, id, json!({"reason": "It wobbles"}))
            .await
            .status,
        StatusCode::OK
    );
    let r = s.approve_cancel(id).await;
    assert_eq!(r.body["data"]["order"]["status"], "cancelled", "{}", r.body);
    assert_eq!(s.stock(&p).await, 100);

    // Past the 7 days after delivery: refused.
    let id = s.order_id(&ann, &[(&p, 1)]).await;
    s.deliver(id).await;
    s.sql(&format!(
        "UPDATE orders SET delivered_at = delivered_at - {} WHERE id = {id}",
        8 * DAY_MS
    ))
    .await;
    let msg = assert_error(
        &s.cancel_request(&ann, id, json!({"reason": "Late regret"}))
            .await,
        StatusCode::CONFLICT,
    );
    assert!(msg.contains("7-day"), "{msg}");
    assert_eq!(s.admin_view(id).await["status"], "delivered");

    // An approval racing an admin delete: the stock comes back once.
    let id = s.order_id(&ann, &[(&p, 5)]).await;
    s.cancel_request(&ann, id, json!({"reason": "Duplicate order"}))
        .await;
    assert_eq!(s.stock(&p).await, 94, "one delivered unit stays sold");
    let (approved, deleted) = tokio::join!(s.approve_cancel(id), s.admin_delete(id, None));
    // Whichever runs first, the delete succeeds (a cancelled order may be
    // deleted); the approval only if it came first.
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert!(
        approved.status == StatusCode::OK || approved.status == StatusCode::CONFLICT,
        "{}",
        approved.body
    );
    assert_eq!(s.stock(&p).await, 99);
    assert_eq!(s.admin_view(id).await["status"], "deleted");

    // Approve/reject need a pending request; unknown orders are 404.
    let id = s.order_id(&ann, &[(&p, 1)]).await;
    assert_error(&s.approve_cancel(id).await, StatusCode::CONFLICT);
    assert_error(&s.reject_cancel(id, json!({})).await, StatusCode::CONFLICT);
    assert_error(&s.approve_cancel(999_999).await, StatusCode::NOT_FOUND);
    assert_error(
        &s.cancel_request(&ann, 999_999, json!({"reason": "x"}))
            .await,
        StatusCode::NOT_FOUND,
    );
    assert_eq!(s.admin_view(id).await["status"], "pending");
}

// ---- admin deletes ---------------------------------------------------------------------------

#[tokio::test]
async fn admin_delete_releases_live_stock_once_and_bulk_delete_reports_each_id() {
    let s = Shop::open(Backend::Sqlite).await;
    let p = s.product("Desk", 200.0, 50).await;
    let (ann, _) = s.app.customer("del@example.com").await;

    // A live order: deleted with its reason, stock back.
    let live = s.order_id(&ann, &[(&p, 2)]).await;
    s.advance(live, &["processing"]).await;
    assert_eq!(s.stock(&p).await, 48);
    let r = s.admin_delete(live, Some("  Fraudulent card  ")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["message"], "Order deleted successfully");
    let row = &r.body["data"]["order"];
    assert_eq!(row["status"], "deleted");
    assert_eq!(row["deletion_reason"], "Fraudulent card");
    assert_eq!(row["deleted_by"], s.admin_id);
    assert!(row["deleted_at"].is_string());
    assert_eq!(s.stock(&p).await, 50);
    // Twice: refused, stock unchanged.
    assert_eq!(
        assert_error(&s.admin_delete(live, None).await, StatusCode::CONFLICT),
        "Order is already deleted"
    );
    assert_eq!(s.stock(&p).await, 50);

    // Delivered goods stay sold; cancelled ones are not given back twice.
    let delivered = s.order_id(&ann, &[(&p, 3)]).await;
    s.deliver(delivered).await;
    let cancelled = s.order_id(&ann, &[(&p, 4)]).await;
    s.advance(cancelled, &["cancelled"]).await;
    assert_eq!(s.stock(&p).await, 47);
    for id in [delivered, cancelled] {
        let r = s.admin_delete(id, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(r.body["data"]["order"]["deletion_reason"].is_null());
    }
    assert_eq!(s.stock(&p).await, 47);

    // Bad ids and reasons.
    assert_error(&s.admin_delete(999_999, None).await, StatusCode::NOT_FOUND);
    assert_error(
        &s.app.delete("/api/orders/0", Some(&s.admin)).await,
        StatusCode::BAD_REQUEST,
    );
    let other = s.order_id(&ann, &[(&p, 1)]).await;
    assert_error(
        &s.admin_delete(other, Some(&"r".repeat(501))).await,
        StatusCode::BAD_REQUEST,
    );
    assert_eq!(s.admin_view(other).await["status"], "pending");

    // Bulk: one result per id, in order.
    let b1 = s.order_id(&ann, &[(&p, 1)]).await;
    assert_eq!(s.stock(&p).await, 45);
    let r = s
        .app
        .post(
            "/api/orders/bulk-delete",
            Some(&s.admin),
            json!({"ids": [other, b1, 999_999, live], "reason": "cleanup"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let data = &r.body["data"];
    assert_eq!(data["succeeded"], 2, "{data}");
    assert_eq!(data["failed"], 2);
    let results = data["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[0], json!({"id": other, "success": true}));
    assert_eq!(results[1]["success"], true);
    assert_eq!(results[2]["id"], 999_999);
    assert_eq!(results[2]["success"], false);
    assert_eq!(results[2]["status"], 404);
    assert_eq!(results[3]["status"], 409);
    assert_eq!(results[3]["message"], "Order is already deleted");
    assert_eq!(s.stock(&p).await, 47);
    assert_eq!(s.admin_view(b1).await["deletion_reason"], "cleanup");
    for bad in [
        json!({}),
        json!({"ids": []}),
        json!({"ids": "1,2"}),
        json!({"ids": ["x"]}),
        json!({"ids": [0]}),
        json!({"ids": (1..=501).collect::<Vec<i64>>()}),
    ] {
        let r = s
            .app
            .post("/api/orders/bulk-delete", Some(&s.admin), bad.clone())
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST);
    }
    assert_eq!(s.stock(&p).await, 47);
}

/// A delivered order whose return was asked for but not approved still has its
/// goods with the customer: deleting it must not put them back on the shelf.
#[tokio::test]
async fn deleting_a_delivered_order_with_an_open_return_keeps_its_stock() {
    let s = Shop::open(Backend::Sqlite).await;
    let p = s.product("Sofa", 900.0, 10).await;
    let (ann, _) = s.app.customer("return-del@example.com").await;
    let id = s.order_id(&ann, &[(&p, 2)]).await;
    s.deliver(id).await;
    let r = s
        .cancel_request(&ann, id, json!({"reason": "Does not fit the room"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(s.stock(&p).await, 8);
    let r = s.admin_delete(id, Some("test order")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        s.stock(&p).await,
        8,
        "the goods were delivered and never returned"
    );
}

async fn inventory_sync_reserves_for_orders_without_stock_and_undo_gives_it_back(backend: Backend) {
    let s = Shop::open(backend).await;
    let p = s.product("Lamp Shade", 14.0, 20).await;
    let (ann, _) = s.app.customer("sync@example.com").await;
    let held = s.order_id(&ann, &[(&p, 2)]).await;
    let imported = s.order_id(&ann, &[(&p, 3)]).await;
    assert_eq!(s.stock(&p).await, 15);
    // As if imported from an old system: an order that holds no stock.
    s.forget_stock(imported).await;
    let r = s.sync(false).await;
    assert_eq!(r["message"], "Inventory sync completed");
    assert_eq!(r["data"]["synced"], 1, "{}", r);
    assert_eq!(r["data"]["skippedCount"], 0);
    assert_eq!(s.stock(&p).await, 12);
    let r = s.sync(false).await;
    assert_eq!(r["data"]["synced"], 0, "twice changes nothing");
    assert_eq!(s.stock(&p).await, 12);
    assert_eq!(s.admin_view(imported).await["inventory_deducted"], true);

    // Undo gives back exactly what sync took (not the placed order's stock).
    let r = s.sync(true).await;
    assert_eq!(r["data"]["restoredOrderCount"], 1, "{}", r);
    assert_eq!(s.stock(&p).await, 15);
    assert_eq!(s.admin_view(imported).await["inventory_deducted"], false);
    assert_eq!(s.admin_view(held).await["inventory_deducted"], true);
    let r = s.sync(true).await;
    assert_eq!(r["data"]["restoredOrderCount"], 0);
    assert_eq!(s.stock(&p).await, 15);

    // Synced again (a new reservation), then cancelled: the sync's stock comes
    // back with the cancel, and undo has nothing left to give back.
    let r = s.sync(false).await;
    assert_eq!(r["data"]["synced"], 1, "{}", r);
    assert_eq!(s.stock(&p).await, 12);
    s.advance(imported, &["cancelled"]).await;
    assert_eq!(s.stock(&p).await, 15);
    let r = s.sync(true).await;
    assert_eq!(r["data"]["restoredOrderCount"], 0, "{}", r);
    assert_eq!(s.stock(&p).await, 15);
    let r = s.sync(false).await;
    assert_eq!(r["data"]["synced"], 0, "cancelled orders hold nothing");
    assert_eq!(s.stock(&p).await, 15);

    // An order that cannot be covered is skipped with its product named.
    let imported = s.order_id(&ann, &[(&p, 1)]).await;
    s.forget_stock(imported).await;
    s.sql(&format!(
        "UPDATE order_items SET quantity = 1000 WHERE order_id = {imported}"
    ))
    .await;
    let r = s.sync(false).await;
    assert_eq!(r["data"]["synced"], 0, "{}", r);
    assert_eq!(r["data"]["skippedOrderIds"], json!([imported]));
    assert_eq!(r["data"]["errors"][0]["productId"], p.as_str());
    // (The placement's own hold of 1 stays with the catalog: only the order forgot it.)
    assert_eq!(s.stock(&p).await, 14, "a skipped order takes nothing");
}

/// C9: sync gives stock only to orders on their way to the customer, and undo
/// takes back only from those: never from deleted, cancel-requested or
/// refund-processing orders (their stock went back, or a decision is pending).
async fn sync_and_undo_skip_deleted_cancel_requested_and_refund_processing(backend: Backend) {
    let s = Shop::open(backend).await;
    let p = s.product("Sync Skip", 9.0, 20).await;
    let (ann, _) = s.app.customer("c9@example.com").await;
    let requested = s.order_id(&ann, &[(&p, 1)]).await;
    let refunding = s.order_id(&ann, &[(&p, 1)]).await;
    let deleted = s.order_id(&ann, &[(&p, 1)]).await;
    let pending = s.order_id(&ann, &[(&p, 1)]).await;
    assert_eq!(s.stock(&p).await, 16);
    let r = s
        .cancel_request(&ann, requested, json!({"reason": "Changed my mind"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    s.advance(refunding, &["cancelled", "refund_processing"])
        .await;
    assert_eq!(s.admin_delete(deleted, None).await.status, StatusCode::OK);
    assert_eq!(s.stock(&p).await, 18, "cancel and delete gave stock back");
    // As if imported: none of them holds stock by the orders' books.
    for id in [requested, refunding, deleted, pending] {
        s.forget_stock(id).await;
    }
    let r = s.sync(false).await;
    assert_eq!(r["data"]["synced"], 1, "only the pending order: {}", r);
    assert_eq!(r["data"]["skippedCount"], 0, "{}", r);
    assert_eq!(s.stock(&p).await, 17);
    for id in [requested, refunding, deleted] {
        let row = s.admin_view(id).await;
        assert_eq!(row["inventory_deducted"], false, "{id}: {row}");
    }
    assert_eq!(s.admin_view(pending).await["inventory_deducted"], true);

    // The synced order awaits a cancellation decision: undo leaves it alone.
    let r = s
        .cancel_request(&ann, pending, json!({"reason": "Ordered by mistake"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = s.sync(true).await;
    assert_eq!(r["data"]["restoredOrderCount"], 0, "{}", r);
    assert_eq!(s.stock(&p).await, 17);
    assert_eq!(s.admin_view(pending).await["inventory_deducted"], true);
    // Rejected, it is pending again: undo gives back what sync took, once.
    let r = s
        .reject_cancel(pending, json!({"rejectionReason": "Already packed"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for expected in [1, 0] {
        let r = s.sync(true).await;
        assert_eq!(r["data"]["restoredOrderCount"], expected, "{}", r);
        assert_eq!(s.stock(&p).await, 18);
    }
}

// ---- retention and detail requests ----------------------------------------------------------

async fn retention_hides_old_cancellations_and_detail_requests_reveal_them(backend: Backend) {
    let s = Shop::open(backend).await;
    let p = s.product("Ledger", 10.0, 100).await;
    let (ann, _) = s.app.customer("retention@example.com").await;
    let old = s.order_id(&ann, &[(&p, 1)]).await;
    let recent = s.order_id(&ann, &[(&p, 1)]).await;
    let live = s.order_id(&ann, &[(&p, 1)]).await;
    let deleted = s.order_id(&ann, &[(&p, 1)]).await;
    let refunded = s.order_id(&ann, &[(&p, 1)]).await;
    s.advance(old, &["cancelled"]).await;
    s.advance(recent, &["cancelled"]).await;
    s.advance(refunded, &["cancelled", "refund_processing", "refunded"])
        .await;
    assert_eq!(
        s.admin_delete(deleted, Some("duplicate")).await.status,
        StatusCode::OK
    );

    // Within 30 days a cancelled order is shown in full.
    let page = s.list(&ann, "").await;
    assert_eq!(page["pagination"]["total"], 5);
    let o = find(&page["orders"], old);
    assert_eq!(o["canViewDetails"], true);
    assert_eq!(o["canRequestDetails"], true);
    assert_eq!(o["items"].as_array().unwrap().len(), 1);
    let r = s.app.get(&format!("/api/orders/{old}"), Some(&ann)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // 31 days on, it is gone from the list (total and pages too, C10)…
    s.sql(&format!(
        "UPDATE orders SET cancelled_at = cancelled_at - {} WHERE id = {old}",
        31 * DAY_MS
    ))
    .await;
    s.sql(&format!(
        "UPDATE orders SET cancelled_at = cancelled_at - {} WHERE id = {refunded}",
        31 * DAY_MS
    ))
    .await;
    let page = s.list(&ann, "").await;
    assert_eq!(page["pagination"]["total"], 4, "{page}");
    assert!(!ids_of(&page["orders"]).contains(&old));
    assert!(
        ids_of(&page["orders"]).contains(&refunded),
        "refunded orders stay (§8.7: anything but cancelled/deleted)"
    );
    let mut seen = Vec::new();
    for n in 1..=4 {
        let page = s.list(&ann, &format!("limit=1&page={n}")).await;
        assert_eq!(page["pagination"]["total"], 4);
        assert_eq!(page["pagination"]["pages"], 4);
        assert_eq!(
            page["orders"].as_array().unwrap().len(),
            1,
            "page {n} is full"
        );
        seen.extend(ids_of(&page["orders"]));
    }
    seen.sort_unstable();
    let mut expected = vec![recent, live, deleted, refunded];
    expected.sort_unstable();
    assert_eq!(seen, expected);
    let page = s.list(&ann, "limit=3&page=2").await;
    assert_eq!(page["orders"].as_array().unwrap().len(), 1);
    assert_eq!(page["pagination"]["pages"], 2);
    // …and its details are refused, with no more requests possible.
    let r = s.app.get(&format!("/api/orders/{old}"), Some(&ann)).await;
    assert_eq!(
        assert_error(&r, StatusCode::FORBIDDEN),
        "Order details retention expired (30 days)."
    );
    assert_eq!(r.body["data"]["canRequestDetails"], false);
    // The admin sees everything.
    assert_eq!(s.list(&s.admin, "").await["pagination"]["total"], 5);
    assert_eq!(s.admin_view(old).await["status"], "cancelled");

    // A deleted order is listed without details; a request may be filed.
    let page = s.list(&ann, "").await;
    let o = find(&page["orders"], deleted);
    assert_eq!(o["canViewDetails"], false);
    assert_eq!(o["canRequestDetails"], true);
    assert_eq!(o["items"], json!([]));
    assert_eq!(o["shippingAddress"], Value::Null);
    let r = s
        .app
        .get(&format!("/api/orders/{deleted}"), Some(&ann))
        .await;
    let msg = assert_error(&r, StatusCode::FORBIDDEN);
    assert!(
        msg.starts_with("Order details are hidden after deletion"),
        "{msg}"
    );
    assert_eq!(r.body["data"]["canRequestDetails"], true);

    // Detail requests: the six reasons, Other with its text.
    let ask = |id: i64, body: Value| {
        let path = format!("/api/orders/{id}/detail-request");
        let (app, token) = (&s.app, ann.clone());
        async move { app.post(&path, Some(&token), body).await }
    };
    let msg = assert_error(
        &ask(deleted, json!({"reason": "Curiosity"})).await,
        StatusCode::BAD_REQUEST,
    );
    for reason in [
        "Need invoice / billing proof",
        "Warranty / service claim",
        "Bank / payment dispute",
        "Return / replacement reference",
        "Tax / accounting",
        "Other",
    ] {
        assert!(msg.contains(reason), "{msg}");
    }
    assert_error(&ask(deleted, json!({})).await, StatusCode::BAD_REQUEST);
    for other in [json!(null), json!("   ")] {
        let r = ask(deleted, json!({"reason": "Other", "otherReason": other})).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST),
            "Please provide otherReason when reason is Other"
        );
    }
    let r = ask(live, json!({"reason": "Tax / accounting"})).await;
    assert_eq!(
        assert_error(&r, StatusCode::CONFLICT),
        "Detail requests are only available for cancelled or deleted orders"
    );
    let r = ask(old, json!({"reason": "Tax / accounting"})).await;
    assert_eq!(
        assert_error(&r, StatusCode::CONFLICT),
        "Detail request window expired (30 days)"
    );
    let r = ask(deleted, json!({"reason": " Bank / payment dispute "})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["message"], "Request submitted");
    let req = r.body["data"]["request"].clone();
    assert_eq!(req["reason"], "Bank / payment dispute");
    assert_eq!(req["status"], "pending");
    assert_eq!(req["other_reason"], Value::Null);
    let rid = req["id"].as_i64().unwrap();
    assert_eq!(
        assert_error(
            &ask(deleted, json!({"reason": "Tax / accounting"})).await,
            StatusCode::CONFLICT
        ),
        "A request is already pending"
    );
    let o = find(&s.list(&ann, "").await["orders"], deleted).clone();
    assert_eq!(
        o["canRequestDetails"], false,
        "a pending request blocks another"
    );
    let r = s
        .app
        .get(&format!("/api/orders/{deleted}/detail-request"), Some(&ann))
        .await;
    assert_eq!(r.body["data"]["request"]["id"], rid, "{}", r.body);
    let r = s
        .app
        .get(&format!("/api/orders/{live}/detail-request"), Some(&ann))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["data"]["request"], Value::Null);

    // The admin's queue, then approval: the details are readable again.
    let queue = s
        .app
        .get(
            "/api/orders/detail-requests/list?status=pending",
            Some(&s.admin),
        )
        .await;
    let reqs = queue.body["data"]["requests"].as_array().unwrap().clone();
    assert_eq!(reqs.len(), 1, "{}", queue.body);
    assert_eq!(reqs[0]["id"], rid);
    assert_eq!(reqs[0]["order_id"], deleted);
    assert_eq!(reqs[0]["order_status"], "deleted");
    assert!(reqs[0]["deleted_at"].is_string());
    let r = s
        .app
        .put(
            &format!("/api/orders/detail-requests/{rid}/approve"),
            Some(&s.admin),
            json!({"adminNote": "Statement attached"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["message"], "Request approved");
    assert_eq!(r.body["data"]["request"]["status"], "approved");
    assert_eq!(r.body["data"]["request"]["admin_id"], s.admin_id);
    for action in ["approve", "reject"] {
        let r = s
            .app
            .put(
                &format!("/api/orders/detail-requests/{rid}/{action}"),
                Some(&s.admin),
                json!({}),
            )
            .await;
        assert_error(&r, StatusCode::CONFLICT);
    }
    let r = s
        .app
        .get(&format!("/api/orders/{deleted}"), Some(&ann))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["data"]["order"]["items"].as_array().unwrap().len(),
        1
    );
    let o = find(&s.list(&ann, "").await["orders"], deleted).clone();
    assert_eq!(o["canViewDetails"], true);
    assert_eq!(o["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        assert_error(
            &ask(deleted, json!({"reason": "Tax / accounting"})).await,
            StatusCode::CONFLICT
        ),
        "Request already approved. You can view details now."
    );
    // An approval outlives the 30 days.
    s.sql(&format!(
        "UPDATE orders SET deleted_at = deleted_at - {} WHERE id = {deleted}",
        40 * DAY_MS
    ))
    .await;
    assert!(s.listed_ids(&ann, "").await.contains(&deleted));
    assert_eq!(
        s.app
            .get(&format!("/api/orders/{deleted}"), Some(&ann))
            .await
            .status,
        StatusCode::OK
    );

    // A refunded order counts from its cancellation (§8.7).
    let refunded_now = s.order_id(&ann, &[(&p, 1)]).await;
    s.advance(
        refunded_now,
        &["cancelled", "refund_processing", "refunded"],
    )
    .await;
    let r = ask(
        refunded_now,
        json!({"reason": "Need invoice / billing proof"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = ask(refunded, json!({"reason": "Need invoice / billing proof"})).await;
    assert_eq!(
        assert_error(&r, StatusCode::CONFLICT),
        "Detail request window expired (30 days)"
    );

    // A rejected request may be followed by a new one.
    let r = ask(
        recent,
        json!({"reason": "Other", "otherReason": "Insurance claim"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["data"]["request"]["other_reason"], "Insurance claim");
    let rid2 = r.body["data"]["request"]["id"].as_i64().unwrap();
    let r = s
        .app
        .put(
            &format!("/api/orders/detail-requests/{rid2}/reject"),
            Some(&s.admin),
            json!({"adminNote": "   "}),
        )
        .await;
    assert_eq!(r.body["message"], "Request rejected", "{}", r.body);
    assert_eq!(r.body["data"]["request"]["admin_note"], Value::Null);
    let r = ask(recent, json!({"reason": "Warranty / service claim"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let rejected = s
        .app
        .get(
            "/api/orders/detail-requests/list?status=rejected",
            Some(&s.admin),
        )
        .await;
    assert_eq!(ids_of(&rejected.body["data"]["requests"]), [rid2]);

    // Bad admin input.
    for (path, status) in [(
        "/api/orders/detail-requests/list?status=maybe",
        StatusCode::BAD_REQUEST,
    )] {
        assert_error(&s.app.get(path, Some(&s.admin)).await, status);
    }
    for (path, status) in [
        (
            format!("/api/orders/detail-requests/{rid2}/ponder"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/orders/detail-requests/x/approve".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/orders/detail-requests/999999/approve".to_owned(),
            StatusCode::NOT_FOUND,
        ),
    ] {
        assert_error(&s.app.put(&path, Some(&s.admin), json!({})).await, status);
    }
}

// ---- customer soft delete and restoration -----------------------------------------------------

#[tokio::test]
async fn customers_hide_orders_and_admins_restore_them() {
    let s = Shop::open(Backend::Sqlite).await;
    let p = s.product("Teapot", 18.0, 100).await;
    let (ann, _) = s.app.customer("hide@example.com").await;
    let (bob, _) = s.app.customer("hide-bob@example.com").await;
    let a = s.order_id(&ann, &[(&p, 1)]).await;
    let b = s.order_id(&ann, &[(&p, 1)]).await;
    let c = s.order_id(&ann, &[(&p, 1)]).await;

    for id in [a, b] {
        let r = s
            .app
            .delete(&format!("/api/orders/{id}/soft"), Some(&ann))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(
            r.body["message"],
            "Order deleted. You can request restoration within 30 days."
        );
        assert_eq!(r.body["data"]["orderId"], id);
        assert!(r.body["data"]["deletionExpiresAt"].is_string());
    }
    assert_eq!(
        assert_error(
            &s.app
                .delete(&format!("/api/orders/{a}/soft"), Some(&ann))
                .await,
            StatusCode::CONFLICT
        ),
        "Order is already deleted"
    );
    assert_error(
        &s.app
            .delete(&format!("/api/orders/{c}/soft"), Some(&bob))
            .await,
        StatusCode::NOT_FOUND,
    );
    assert_error(
        &s.app.delete("/api/orders/999999/soft", Some(&ann)).await,
        StatusCode::NOT_FOUND,
    );

    // Gone from the lists, listed as deleted; hiding is not cancelling.
    assert_eq!(s.listed_ids(&ann, "").await, [c]);
    assert_eq!(s.list(&ann, "").await["pagination"]["total"], 1);
    let active = s.app.get("/api/orders/active", Some(&ann)).await;
    assert_eq!(
        ids_of(&active.body["data"]["orders"]),
        [c],
        "{}",
        active.body
    );
    let gone = s.app.get("/api/orders/deleted", Some(&ann)).await;
    let mut hidden = ids_of(&gone.body["data"]["orders"]);
    hidden.sort_unstable();
    assert_eq!(hidden, [a, b]);
    assert!(gone.body["data"]["orders"][0]["deletionExpiresAt"].is_string());
    assert_eq!(s.stock(&p).await, 97);
    assert_eq!(s.admin_view(a).await["status"], "pending");
    assert_eq!(s.list(&s.admin, "").await["pagination"]["total"], 3);

    // Restoration requests: a reason of ten characters, only for hidden orders.
    let ask = |id: i64, token: &str, reason: &str| {
        let path = format!("/api/orders/{id}/restore-request");
        let (app, token, body) = (&s.app, token.to_owned(), json!({ "reason": reason }));
        async move { app.post(&path, Some(&token), body).await }
    };
    for short in ["", "too short", "   oops   "] {
        assert_eq!(
            assert_error(&ask(a, &ann, short).await, StatusCode::BAD_REQUEST),
            "Please provide a reason (minimum 10 characters)"
        );
    }
    assert_eq!(
        assert_error(
            &ask(c, &ann, "Not hidden at all").await,
            StatusCode::NOT_FOUND
        ),
        "Deleted order not found"
    );
    assert_error(
        &ask(a, &bob, "Not my order, but still").await,
        StatusCode::NOT_FOUND,
    );
    for id in [a, b] {
        let r = ask(id, &ann, "I deleted the wrong one").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["data"]["orderId"], id);
        assert!(r.body["data"]["requestedAt"].is_string());
    }
    assert_eq!(
        assert_error(
            &ask(a, &ann, "I deleted the wrong one").await,
            StatusCode::CONFLICT
        ),
        "Restoration already requested for this order"
    );

    // The admin's queue; approve one, reject the other.
    let r = s
        .app
        .get("/api/orders/restoration-requests", Some(&s.admin))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let reqs = &r.body["data"]["requests"];
    let mut queued = ids_of(reqs);
    queued.sort_unstable();
    assert_eq!(queued, [a, b]);
    assert_eq!(
        find(reqs, a)["restorationReason"],
        "I deleted the wrong one"
    );
    let r = s
        .app
        .post(
            &format!("/api/orders/{a}/restoration/approve"),
            Some(&s.admin),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["message"], "Order restored successfully");
    assert_eq!(r.body["data"]["order"]["id"], a);
    let r = s
        .app
        .post(
            &format!("/api/orders/{b}/restoration/reject"),
            Some(&s.admin),
            json!({"rejectionReason": "Past our policy"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["message"], "Restoration request rejected");
    for action in ["approve", "reject"] {
        for id in [a, b, c] {
            let r = s
                .app
                .post(
                    &format!("/api/orders/{id}/restoration/{action}"),
                    Some(&s.admin),
                    json!({}),
                )
                .await;
            assert_eq!(
                assert_error(&r, StatusCode::NOT_FOUND),
                "Restoration request not found"
            );
        }
    }
    let approved = s
        .app
        .get(
            "/api/orders/restoration-requests?status=approved",
            Some(&s.admin),
        )
        .await;
    assert_eq!(ids_of(&approved.body["data"]["requests"]), [a]);
    let rejected = s
        .app
        .get(
            "/api/orders/restoration-requests?status=rejected",
            Some(&s.admin),
        )
        .await;
    assert_eq!(ids_of(&rejected.body["data"]["requests"]), [b]);
    assert_error(
        &s.app
            .get(
                "/api/orders/restoration-requests?status=lost",
                Some(&s.admin),
            )
            .await,
        StatusCode::BAD_REQUEST,
    );
    let pending = s
        .app
        .get("/api/orders/restoration-requests", Some(&s.admin))
        .await;
    assert_eq!(pending.body["data"]["requests"], json!([]));

    // Back in the customer's list; the rejected one stays deleted.
    let mut listed = s.listed_ids(&ann, "").await;
    listed.sort_unstable();
    assert_eq!(listed, [a, c]);
    let gone = s.app.get("/api/orders/deleted", Some(&ann)).await;
    assert_eq!(ids_of(&gone.body["data"]["orders"]), [b]);
    let li = find(&s.list(&ann, "").await["orders"], a).clone();
    assert_eq!(li["restorationStatus"], "approved");

    // After 30 days: no restoration, no listing; the clean-up erases the address.
    s.sql(&format!(
        "UPDATE orders SET hidden_expires_at = hidden_expires_at - {} WHERE id = {b}",
        31 * DAY_MS
    ))
    .await;
    assert_eq!(
        assert_error(
            &ask(b, &ann, "Please, it was important").await,
            StatusCode::CONFLICT
        ),
        "This order has been permanently deleted and cannot be restored"
    );
    let gone = s.app.get("/api/orders/deleted", Some(&ann)).await;
    assert_eq!(gone.body["data"]["orders"], json!([]));
    let r = s
        .app
        .post("/api/orders/cleanup/expired", Some(&s.admin), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["deletedCount"], 1, "{}", r.body);
    let row = s.admin_view(b).await;
    assert_eq!(row["shippingAddress"], Value::Null);
    assert_eq!(row["total_amount"], "18.00", "the order stays as a record");
    let r = s
        .app
        .post("/api/orders/cleanup/expired", Some(&s.admin), json!({}))
        .await;
    assert_eq!(r.body["data"]["deletedCount"], 0);
    assert_eq!(s.admin_view(a).await["shippingAddress"]["city"], "Mumbai");
}

/// Issue 16 #6: nobody calls `POST /api/orders/cleanup/expired`, yet a deleted
/// order past its 30 days loses its address on the schedule
/// (`ECAP_CLEANUP_INTERVAL_SECS`), and one within them keeps it.
async fn scheduled_clean_up_erases_expired_deleted_orders(backend: Backend) {
    let s = Shop::open_with(backend, |c| c.ecap_cleanup_interval_secs = 1).await;
    let p = s.product("Sched Teapot", 18.0, 10).await;
    let (ann, _) = s.app.customer("sched-clean@example.com").await;
    let old = s.order_id(&ann, &[(&p, 1)]).await;
    let recent = s.order_id(&ann, &[(&p, 1)]).await;
    for id in [old, recent] {
        let r = s
            .app
            .delete(&format!("/api/orders/{id}/soft"), Some(&ann))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    s.sql(&format!(
        "UPDATE orders SET hidden_expires_at = hidden_expires_at - {} WHERE id = {old}",
        31 * DAY_MS
    ))
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while s.admin_view(old).await["shippingAddress"] != Value::Null {
        assert!(
            std::time::Instant::now() < deadline,
            "the scheduled clean-up did not run within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(s.admin_view(recent).await["shippingAddress"]["city"].is_string());
    // What the schedule did, the route finds done.
    let r = s
        .app
        .post("/api/orders/cleanup/expired", Some(&s.admin), json!({}))
        .await;
    assert_eq!(r.body["data"]["deletedCount"], 0, "{}", r.body);
}

// ---- reviews ------------------------------------------------------------------------------------

/// C20 under concurrency: two customers reviewing the same product at once
/// both count; one customer sending the same review many times at once, by
/// both routes, counts once per order; the rating is the mean of what counted.
async fn concurrent_reviews_count_once_per_user_product_and_order(backend: Backend) {
    let s = Shop::open(backend).await;
    let kettle = s.product("Race Kettle", 20.0, 50).await;
    let (ann, ann_id) = s.app.customer("race-ann@example.com").await;
    let (bob, _) = s.app.customer("race-bob@example.com").await;
    let ann_first = s.order_id(&ann, &[(&kettle, 1)]).await;
    let ann_second = s.order_id(&ann, &[(&kettle, 1)]).await;
    let bob_order = s.order_id(&bob, &[(&kettle, 1)]).await;
    for id in [ann_first, ann_second, bob_order] {
        s.deliver(id).await;
    }
    let send = |token: &str, path: String, body: Value| {
        let (base, client, token) = (s.app.base.clone(), s.app.client.clone(), token.to_owned());
        tokio::spawn(async move {
            let r = client
                .post(format!("{base}{path}"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            r.status()
        })
    };
    let mut ann_first_tries = Vec::new();
    let mut others = Vec::new();
    for i in 0..4 {
        // Ann's first order, six times at once: four by the order, two by the product.
        ann_first_tries.push(send(
            &ann,
            format!("/api/orders/{ann_first}/review"),
            json!({"productId": kettle, "rating": 5, "comment": format!("try {i}")}),
        ));
        if i < 2 {
            ann_first_tries.push(send(
                &ann,
                format!("/api/products/{kettle}/reviews"),
                json!({"rating": 5, "orderId": ann_first}),
            ));
        }
    }
    // At the same moment: Bob's review, and Ann's of her second order.
    others.push(send(
        &bob,
        format!("/api/orders/{bob_order}/review"),
        json!({"productId": kettle, "rating": 2}),
    ));
    others.push(send(
        &ann,
        format!("/api/orders/{ann_second}/review"),
        json!({"productId": kettle, "rating": 2}),
    ));
    let mut created = 0;
    for t in ann_first_tries {
        match t.await.unwrap() {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 1, "one review for Ann's first order");
    for t in others {
        assert_eq!(t.await.unwrap(), StatusCode::CREATED);
    }
    // Three reviews: (Ann, first order), (Ann, second order), (Bob).
    let rating = &s.product_json(&kettle).await["rating"];
    assert_eq!(rating["count"], 3, "{rating}");
    assert_eq!(rating["average"], json!(3.0), "{rating}");
    let listed = s
        .app
        .get(&format!("/api/products/{kettle}/reviews?limit=50"), None)
        .await;
    let reviews = listed.body["data"]["reviews"].as_array().unwrap().clone();
    assert_eq!(reviews.len(), 3, "{}", listed.body);
    let ann_orders: Vec<&Value> = reviews
        .iter()
        .filter(|r| r["userId"] == ann_id)
        .map(|r| &r["orderId"])
        .collect();
    assert_eq!(ann_orders.len(), 2, "{reviews:?}");
    assert_ne!(ann_orders[0], ann_orders[1], "one per order: {reviews:?}");
}

async fn reviews_need_a_delivered_order_and_count_once_per_order(backend: Backend) {
    let s = Shop::open(backend).await;
    let pan = s.product("Frying Pan", 35.0, 20).await;
    let lid = s.product("Pan Lid", 12.0, 20).await;
    let spoon = s.product("Spoon", 2.0, 20).await;
    let (ann, _) = s.app.customer("reviews@example.com").await;
    let (bob, _) = s.app.customer("reviews-bob@example.com").await;
    let id = s.order_id(&ann, &[(&pan, 1), (&lid, 1)]).await;
    let review = |order: i64, token: &str, body: Value| {
        let path = format!("/api/orders/{order}/review");
        let (app, token) = (&s.app, token.to_owned());
        async move { app.post(&path, Some(&token), body).await }
    };
    let catalog_review = |product: &str, body: Value| {
        let path = format!("/api/products/{product}/reviews");
        let (app, token) = (&s.app, ann.clone());
        async move { app.post(&path, Some(&token), body).await }
    };

    // Before delivery: refused on both routes.
    s.advance(id, &["processing", "shipped"]).await;
    assert_eq!(
        assert_error(
            &review(id, &ann, json!({"productId": pan, "rating": 5})).await,
            StatusCode::CONFLICT
        ),
        "You can only review products from delivered orders"
    );
    assert_error(
        &catalog_review(&pan, json!({"rating": 5})).await,
        StatusCode::FORBIDDEN,
    );
    s.advance(id, &["out_for_delivery", "delivered"]).await;

    // Bad input; someone else's order.
    for bad in [
        json!({"productId": pan, "rating": 0}),
        json!({"productId": pan, "rating": 6}),
        json!({"productId": pan, "rating": "great"}),
        json!({"productId": pan}),
        json!({"rating": 4}),
        json!({"productId": "", "rating": 4}),
    ] {
        let r = review(id, &ann, bad.clone()).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST),
            "Validation failed",
            "{bad}"
        );
    }
    assert_error(
        &review(id, &bob, json!({"productId": pan, "rating": 1})).await,
        StatusCode::NOT_FOUND,
    );
    assert_error(
        &review(999_999, &ann, json!({"productId": pan, "rating": 1})).await,
        StatusCode::NOT_FOUND,
    );

    // Through the order: 201 and the product's rating moves.
    let r = review(
        id,
        &ann,
        json!({"productId": pan, "rating": 4, "comment": "Heats evenly", "userName": "Ann"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["message"], "Review submitted successfully");
    assert_eq!(
        r.body["data"]["product"]["rating"],
        json!({"average": 4.0, "count": 1})
    );
    assert_eq!(
        s.product_json(&pan).await["rating"],
        json!({"average": 4.0, "count": 1})
    );
    let listed = s
        .app
        .get(&format!("/api/products/{pan}/reviews"), None)
        .await;
    assert_eq!(
        listed.body["data"]["reviews"][0]["comment"], "Heats evenly",
        "{}",
        listed.body
    );
    // Again for the same product and order, or a product not in it: 400.
    assert_eq!(
        assert_error(
            &review(id, &ann, json!({"productId": pan, "rating": 1})).await,
            StatusCode::CONFLICT
        ),
        "You have already reviewed this product"
    );
    assert_eq!(
        assert_error(
            &review(id, &ann, json!({"productId": spoon, "rating": 5})).await,
            StatusCode::CONFLICT
        ),
        "This product was not in this order"
    );
    assert_eq!(s.product_json(&pan).await["rating"]["count"], 1);

    // Through the catalog: the delivered purchase counts, once.
    let r = catalog_review(&lid, json!({"rating": 2, "comment": "Rattles"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        s.product_json(&lid).await["rating"],
        json!({"average": 2.0, "count": 1})
    );
    assert_error(
        &catalog_review(&lid, json!({"rating": 5})).await,
        StatusCode::CONFLICT,
    );
    assert_error(
        &catalog_review(&pan, json!({"rating": 5})).await,
        StatusCode::CONFLICT,
    );
    assert_error(
        &review(id, &ann, json!({"productId": lid, "rating": 5})).await,
        StatusCode::CONFLICT,
    );
    assert_error(
        &catalog_review(&spoon, json!({"rating": 5})).await,
        StatusCode::FORBIDDEN,
    );

    // A second delivered order of the same product may be reviewed too.
    let again = s.order_id(&ann, &[(&pan, 1)]).await;
    s.deliver(again).await;
    let r = review(again, &ann, json!({"productId": pan, "rating": 5})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        s.product_json(&pan).await["rating"],
        json!({"average": 4.5, "count": 2})
    );
}

// ---- tracking, lists and filters ----------------------------------------------------------------

#[tokio::test]
async fn tracking_timeline_and_list_filters() {
    let s = Shop::open(Backend::Sqlite).await;
    let p = s.product("Globe", 40.0, 100).await;
    let (ann, ann_id) = s.app.customer("ann.tracking@example.com").await;
    let (bob, bob_id) = s.app.customer("bob.tracking@example.com").await;
    let a1 = s.order_id(&ann, &[(&p, 1)]).await;
    let a2 = s.order_id(&ann, &[(&p, 1)]).await;
    let b1 = s.order_id(&bob, &[(&p, 1)]).await;
    let a3 = s.order_id(&ann, &[(&p, 1)]).await;

    // The timeline: every transition in order, with labels and notes.
    s.advance(a1, &["processing"]).await;
    s.set_status(
        a1,
        json!({"status": "shipped", "trackingNumber": "EE123", "courierName": "India Post",
            "estimatedDelivery": "2031-01-02"}),
    )
    .await;
    s.advance(a1, &["out_for_delivery", "delivered"]).await;
    s.cancel_request(&ann, a1, json!({"reason": "Dented"}))
        .await;
    s.reject_cancel(a1, json!({"rejectionReason": "Dent predates delivery"}))
        .await;
    let r = s
        .app
        .get(&format!("/api/orders/{a1}/tracking"), Some(&ann))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let t = &r.body["data"]["tracking"];
    assert_eq!(t["orderId"], a1);
    assert_eq!(t["status"], "delivered");
    assert_eq!(t["trackingNumber"], "EE123");
    assert_eq!(t["courierName"], "India Post");
    assert_eq!(t["estimatedDelivery"], "2031-01-02T00:00:00.000Z");
    let timeline = t["timeline"].as_array().unwrap();
    let steps: Vec<(&str, &str)> = timeline
        .iter()
        .map(|e| (e["status"].as_str().unwrap(), e["label"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            ("pending", "Order Placed"),
            ("processing", "Processing"),
            ("shipped", "Shipped"),
            ("out_for_delivery", "Out for Delivery"),
            ("delivered", "Delivered"),
            ("cancel_requested", "Cancellation Requested"),
            ("delivered", "Delivered"),
        ]
    );
    assert_eq!(timeline[5]["note"], "Dented");
    assert_eq!(timeline[6]["note"], "Dent predates delivery");
    let times: Vec<&str> = timeline
        .iter()
        .map(|e| e["timestamp"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let fresh = s
        .app
        .get(&format!("/api/orders/{a2}/tracking"), Some(&ann))
        .await;
    assert_eq!(
        fresh.body["data"]["tracking"]["timeline"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        fresh.body["data"]["tracking"]["trackingNumber"],
        Value::Null
    );
    assert_error(
        &s.app.get("/api/orders/999999/tracking", Some(&ann)).await,
        StatusCode::NOT_FOUND,
    );

    // Status filters.
    s.advance(a2, &["processing"]).await;
    s.advance(b1, &["processing"]).await;
    assert_eq!(s.listed_ids(&ann, "status=processing").await, [a2]);
    assert_eq!(s.listed_ids(&ann, "status=all").await, [a3, a2, a1]);
    assert_eq!(s.listed_ids(&s.admin, "status=processing").await, [b1, a2]);
    assert_eq!(
        s.listed_ids(&ann, "status=refunded").await,
        Vec::<i64>::new()
    );

    // Dates: a bare `to` date covers that whole day.
    let created = s.admin_view(a3).await["created_at"]
        .as_str()
        .unwrap()
        .to_owned();
    let today = &created[..10];
    assert_eq!(
        s.list(&ann, &format!("from={today}&to={today}")).await["pagination"]["total"],
        3
    );
    assert_eq!(
        s.list(&ann, "to=2001-01-01").await["pagination"]["total"],
        0
    );
    assert_eq!(
        s.list(&ann, "from=2999-01-01").await["pagination"]["total"],
        0
    );
    assert_eq!(
        s.list(&ann, "from=2000-01-01T00:00:00Z").await["pagination"]["total"],
        3
    );

    // Admin search: an order id, `#`number, part of an email; customers stay in their own.
    // A number matches an order id or a customer's order number (ids 1–4;
    // numbers: ann 1, 2, 3, bob 1).
    for query in [format!("search={b1}"), format!("search=%23{b1}")] {
        let found = s.list(&s.admin, &query).await["orders"].clone();
        assert_eq!(ids_of(&found), [a3, b1], "{query}");
        assert_eq!(find(&found, a3)["userOrderNumber"], b1);
    }
    assert_eq!(
        s.listed_ids(&s.admin, &format!("search={a3}")).await,
        [a3],
        "no order number 4 exists"
    );
    assert_eq!(s.listed_ids(&s.admin, "search=bob.tracking").await, [b1]);
    assert_eq!(s.listed_ids(&s.admin, "search=BOB.TRACKING").await, [b1]);
    assert_eq!(
        s.listed_ids(&s.admin, "search=tracking%40example")
            .await
            .len(),
        4
    );
    assert_eq!(
        s.listed_ids(&s.admin, "search=%23nobody").await,
        Vec::<i64>::new()
    );
    assert_eq!(
        s.listed_ids(&s.admin, "search=nobody").await,
        Vec::<i64>::new()
    );
    assert_eq!(
        s.listed_ids(&ann, "search=bob.tracking").await,
        Vec::<i64>::new()
    );
    assert_eq!(
        s.listed_ids(&s.admin, &format!("userId={bob_id}")).await,
        [b1]
    );
    assert_eq!(
        s.listed_ids(&s.admin, &format!("userId={ann_id}&status=processing"))
            .await,
        [a2]
    );
    // A customer cannot widen their list with userId.
    assert_eq!(
        s.listed_ids(&ann, &format!("userId={bob_id}")).await.len(),
        3
    );

    // Paging: defaults, full pages, and validation.
    let page = s.list(&s.admin, "").await;
    assert_eq!(
        page["pagination"],
        json!({"page": 1, "limit": 15, "total": 4, "pages": 1})
    );
    let page = s.list(&s.admin, "limit=3&page=2").await;
    assert_eq!(page["pagination"]["pages"], 2);
    assert_eq!(ids_of(&page["orders"]), [a1]);
    assert_eq!(
        s.list(&s.admin, "limit=3&page=3").await["orders"],
        json!([])
    );
    for q in [
        "limit=0",
        "limit=-1",
        "limit=10001",
        "limit=ten",
        "page=0",
        "page=-2",
        "page=abc",
        "status=lost",
        "from=yesterday",
        "to=2026-13-45",
        "userId=abc",
    ] {
        let r = s.app.get(&format!("/api/orders?{q}"), Some(&ann)).await;
        assert_error(&r, StatusCode::BAD_REQUEST);
    }
    let r = s.app.get("/api/orders?limit=0", Some(&ann)).await;
    assert!(has_error_at(&r, "limit"), "{}", r.body);
    // `from` after `to`: an empty page (issue 14: a range the document cannot refuse).
    let r = s
        .app
        .get("/api/orders?from=2026-02-01&to=2026-01-01", Some(&ann))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for path in ["/api/orders/abc", "/api/orders/0", "/api/orders/-1"] {
        assert_error(&s.app.get(path, Some(&ann)).await, StatusCode::BAD_REQUEST);
    }
    assert_error(
        &s.app.get("/api/orders/999999", Some(&ann)).await,
        StatusCode::NOT_FOUND,
    );

    // `active` is always the caller's own, also for admins.
    let admin_order = s.order_id(&s.admin, &[(&p, 1)]).await;
    let active = s.app.get("/api/orders/active", Some(&s.admin)).await;
    assert_eq!(ids_of(&active.body["data"]["orders"]), [admin_order]);
    assert_eq!(active.body["data"]["pagination"]["limit"], 10);
}

// ---- the users service's figures ------------------------------------------------------------------

async fn user_administration_figures_come_from_the_orders(backend: Backend) {
    let s = Shop::open(backend).await;
    let p = s.product("Rug", 80.25, 100).await;
    let (ann, ann_id) = s.app.customer("figures@example.com").await;
    let (_, idle_id) = s.app.customer("idle@example.com").await;
    let delivered = s.order_id(&ann, &[(&p, 2)]).await;
    s.deliver(delivered).await;
    let _pending = s.order_id(&ann, &[(&p, 1)]).await;
    let cancelled = s.order_id(&ann, &[(&p, 3)]).await;
    s.advance(cancelled, &["cancelled"]).await;
    let deleted = s.order_id(&ann, &[(&p, 1)]).await;
    assert_eq!(s.admin_delete(deleted, None).await.status, StatusCode::OK);

    let r = s.app.get("/api/users?limit=100", Some(&s.admin)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let users = r.body["data"]["users"].as_array().unwrap();
    let user = |id: i64| users.iter().find(|u| u["id"] == id).unwrap().clone();
    let me = user(ann_id);
    assert_eq!(me["orderCount"], 4, "{me}");
    // Spent: what is not cancelled, refunded or deleted (2 × 80.25 + 80.25).
    assert_eq!(me["totalSpent"], json!(240.75), "{me}");
    assert_eq!(user(idle_id)["orderCount"], 0);
    assert_eq!(user(idle_id)["totalSpent"], json!(0.0));

    let r = s
        .app
        .get(&format!("/api/users/{ann_id}/details"), Some(&s.admin))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let stats = &r.body["data"]["statistics"];
    assert_eq!(stats["totalOrders"], 4, "{stats}");
    assert_eq!(stats["completedOrders"], 1);
    assert_eq!(stats["cancelledOrders"], 1);
    assert_eq!(stats["totalSpent"], json!(240.75));
    let orders = &r.body["data"]["orders"];
    assert_eq!(orders.as_array().unwrap().len(), 4, "{orders}");
    assert_eq!(find(orders, delivered)["items"][0]["name"], "Rug");

    // Deleting the customer erases their personal data from the orders, which stay.
    let r = s
        .app
        .delete(&format!("/api/users/{ann_id}"), Some(&s.admin))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["deletedOrders"], 4, "{}", r.body);
    let row = s.admin_view(delivered).await;
    assert_eq!(row["shippingAddress"], Value::Null);
    assert_eq!(row["total_amount"], "160.50");
    assert_eq!(
        s.listed_ids(&s.admin, "search=figures").await,
        Vec::<i64>::new()
    );
    assert_eq!(s.list(&s.admin, "").await["pagination"]["total"], 4);
}

// ---- outbox -----------------------------------------------------------------------------------------

#[tokio::test]
async fn every_change_reaches_the_outbox() {
    let s = Shop::open(Backend::Sqlite).await;
    let p = s.product("Candle", 5.0, 100).await;
    let (ann, _) = s.app.customer("outbox@example.com").await;
    assert_eq!(s.outbox().await, (0, 0));
    let a = s.order_id(&ann, &[(&p, 1)]).await; // 1
    s.deliver(a).await; // 4
    let b = s.order_id(&ann, &[(&p, 1)]).await; // 1
    s.cancel_request(&ann, b, json!({"reason": "No longer needed"}))
        .await; // 1
    s.approve_cancel(b).await; // 1
    s.advance(b, &["refund_processing", "refunded"]).await; // 2
    let c = s.order_id(&ann, &[(&p, 1)]).await; // 1
    s.admin_delete(c, None).await; // 1
    let changes = 12;
    let delivered = s.drained_outbox().await;
    assert!(delivered >= changes, "{delivered} < {changes}");
    // Refused changes write no event.
    s.set_status(a, json!({"status": "pending"})).await;
    s.approve_cancel(a).await;
    assert_eq!(s.drained_outbox().await, delivered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_customer_requests_are_taken_once() {
    let s = Shop::open(Backend::Sqlite).await;
    let p = s.product("Hourglass", 15.0, 100).await;
    let (ann, _) = s.app.customer("races@example.com").await;
    let count = |answers: &[Resp], status: StatusCode| {
        answers.iter().filter(|r| r.status == status).count()
    };

    let cancelled = s.order_id(&ann, &[(&p, 1)]).await;
    s.advance(cancelled, &["cancelled"]).await;
    let path = format!("/api/orders/{cancelled}/detail-request");
    let answers = futures::future::join_all((0..5).map(|_| {
        s.app
            .post(&path, Some(&ann), json!({"reason": "Tax / accounting"}))
    }))
    .await;
    assert_eq!(count(&answers, StatusCode::CREATED), 1);
    assert_eq!(count(&answers, StatusCode::CONFLICT), 4);
    let queue = s
        .app
        .get("/api/orders/detail-requests/list", Some(&s.admin))
        .await;
    assert_eq!(queue.body["data"]["requests"].as_array().unwrap().len(), 1);

    let hidden = s.order_id(&ann, &[(&p, 1)]).await;
    let path = format!("/api/orders/{hidden}/soft");
    let answers = futures::future::join_all((0..5).map(|_| s.app.delete(&path, Some(&ann)))).await;
    assert_eq!(count(&answers, StatusCode::OK), 1);
    assert_eq!(count(&answers, StatusCode::CONFLICT), 4);
    let path = format!("/api/orders/{hidden}/restore-request");
    let answers = futures::future::join_all((0..5).map(|_| {
        s.app
            .post(&path, Some(&ann), json!({"reason": "Hid it by mistake"}))
    }))
    .await;
    assert_eq!(count(&answers, StatusCode::OK), 1);
    assert_eq!(count(&answers, StatusCode::CONFLICT), 4);
    let path = format!("/api/orders/{hidden}/restoration/approve");
    let answers =
        futures::future::join_all((0..3).map(|_| s.app.post(&path, Some(&s.admin), json!({}))))
            .await;
    assert_eq!(count(&answers, StatusCode::OK), 1);
    assert_eq!(count(&answers, StatusCode::NOT_FOUND), 2);
    assert!(s.listed_ids(&ann, "").await.contains(&hidden));
}

/// A search longer than 255 characters must not silently turn into "no
/// filter": the admin asked for specific orders and gets every order.
#[tokio::test]
async fn an_over_long_search_does_not_list_every_order() {
    let s = Shop::open(Backend::Sqlite).await;
    let p = s.product("Abacus", 9.0, 10).await;
    let (ann, _) = s.app.customer("long-search@example.com").await;
    let (bob, _) = s.app.customer("long-search-bob@example.com").await;
    s.order_id(&ann, &[(&p, 1)]).await;
    s.order_id(&bob, &[(&p, 1)]).await;
    let search = "x".repeat(256);
    let r = s
        .app
        .get(&format!("/api/orders?search={search}"), Some(&s.admin))
        .await;
    if r.status == StatusCode::OK {
        assert_eq!(
            r.body["data"]["pagination"]["total"], 0,
            "no order matches a 256-character search: {}",
            r.body["data"]["pagination"]
        );
    } else {
        assert_error(&r, StatusCode::BAD_REQUEST);
    }
}
