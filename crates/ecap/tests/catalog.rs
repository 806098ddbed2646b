//! The catalog (`/api/products`, `/api/categories`): product, listing,
//! inventory and category stories on every backend; authorisation, bad input,
//! the read cache and reviews on SQLite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;

use common::*;
use ecap_core::{
    config::{Secret, Shape},
    db::Backend,
};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

const DEFAULT_CATEGORIES: [&str; 7] = [
    "electronics",
    "clothing",
    "books",
    "home",
    "sports",
    "toys",
    "other",
];

/// A valid id that names no product.
const MISSING_ID: &str = "0123456789abcdef01234567";

async fn merchant(app: &TestApp, email: &str) -> (String, i64) {
    app.register_as("Test Merchant", email, "merchant").await
}

fn product(name: &str, category: &str, price: Value, inventory: i64) -> Value {
    json!({
        "name": name,
        "description": format!("The {name}, described"),
        "price": price,
        "inventory": inventory,
        "category": category,
    })
}

/// Creates a product and returns `data.product`.
async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    let r = app.post("/api/products", Some(token), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["success"], true);
    assert_eq!(r.body["message"], "Product created successfully");
    r.body["data"]["product"].clone()
}

fn id_of(p: &Value) -> String {
    p["id"]
        .as_str()
        .unwrap_or_else(|| panic!("id: {p}"))
        .to_owned()
}

fn path_of(id: &str) -> String {
    format!("/api/products/{id}")
}

/// `GET /api/products/{id}` → `data.product`, asserting 200.
async fn fetch(app: &TestApp, id: &str, token: Option<&str>) -> Value {
    let r = app.get(&path_of(id), token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["data"]["product"].clone()
}

/// A listing: products and pagination.
async fn list(app: &TestApp, query: &str, token: Option<&str>) -> (Vec<Value>, Value) {
    let r = app.get(&format!("/api/products{query}"), token).await;
    assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.body);
    assert_eq!(r.body["success"], true);
    (
        r.body["data"]["products"]
            .as_array()
            .unwrap_or_else(|| panic!("products: {}", r.body))
            .clone(),
        r.body["data"]["pagination"].clone(),
    )
}

/// Names of a listing, in order.
async fn names(app: &TestApp, query: &str, token: Option<&str>) -> Vec<String> {
    list(app, query, token)
        .await
        .0
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_owned())
        .collect()
}

/// The ledger of a product (newest first) and `data.inventory`.
async fn history(app: &TestApp, id: &str, token: &str) -> (Vec<Value>, i64) {
    let r = app
        .get(
            &format!("/api/products/{id}/inventory/history?limit=100"),
            Some(token),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let entries = r.body["data"]["entries"]
        .as_array()
        .expect("entries")
        .clone();
    assert_eq!(
        r.body["data"]["pagination"]["total"].as_u64(),
        Some(entries.len() as u64),
        "{}",
        r.body
    );
    (
        entries,
        r.body["data"]["inventory"].as_i64().expect("inventory"),
    )
}

fn ledger_sum(entries: &[Value]) -> i64 {
    entries.iter().map(|e| e["change"].as_i64().unwrap()).sum()
}

/// An error in the shared shape whose `errors` name `path` (at `location`).
fn assert_field_error(r: &Resp, status: StatusCode, location: &str, path: &str) -> String {
    let msg = assert_error(r, status);
    let errors = r.body["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e["path"] == path && e["location"] == location && e["type"] == "field"),
        "expected an error on {location} `{path}`: {}",
        r.body
    );
    msg
}

fn assert_msg(r: &Resp, status: StatusCode, msg: &str) {
    assert_eq!(assert_error(r, status), msg, "{}", r.body);
}

/// Products are created a few milliseconds apart so `createdAt` orders them.
async fn tick() {
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
}

// ---- on every backend -----------------------------------------------------------------

/// Create, read, update, archive and restore one product; what the body may
/// and may not set.
async fn product_crud_story(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _) = app.admin().await;
    let (mia, mia_id) = merchant(&app, "mia@example.com").await;
    let (other, _) = merchant(&app, "other@example.com").await;
    let (cust, _) = app.customer("cust@example.com").await;

    let attributes = json!({
        "sizes": [40, 41, 42],
        "colour": {"primary": "red", "accent": null},
        "vegan": true,
        "weightKg": 0.35,
        "note": "Ünïcode ✓"
    });
    let shoe = create(
        &app,
        &mia,
        json!({
            "name": "  Trail Running Shoe ",
            "description": "Lightweight waterproof shoe for mountain trails",
            "price": "19.99",
            "inventory": 5,
            "category": "sports",
            "tags": ["running", "outdoor"],
            "sku": "SHOE-001",
            "attributes": attributes,
            // Fields the server owns: ignored.
            "_id": "ffffffffffffffffffffffff",
            "id": "ffffffffffffffffffffffff",
            "ownerId": 999,
            "rating": {"average": 5, "count": 99},
            "reviews": [{"userId": 1, "rating": 5}],
            "createdAt": "2000-01-01T00:00:00.000Z",
            "__v": 42,
            "foo": "bar",
        }),
    )
    .await;
    let id = id_of(&shoe);
    assert_eq!(id.len(), 24, "{shoe}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    assert_ne!(id, "ffffffffffffffffffffffff");
    assert_eq!(shoe["_id"], shoe["id"]);
    assert_eq!(shoe["name"], "Trail Running Shoe");
    assert_eq!(
        shoe["description"],
        "Lightweight waterproof shoe for mountain trails"
    );
    assert_eq!(shoe["price"], json!(19.99));
    assert_eq!(shoe["inventory"], 5);
    assert_eq!(shoe["category"], "sports");
    assert_eq!(shoe["tags"], json!(["running", "outdoor"]));
    assert_eq!(shoe["sku"], "SHOE-001");
    assert_eq!(shoe["attributes"], attributes);
    assert_eq!(shoe["ownerId"], mia_id);
    assert_eq!(shoe["rating"], json!({"average": 0.0, "count": 0}));
    assert_eq!(shoe["images"], json!([]));
    assert_eq!(shoe["status"], "active");
    assert_eq!(shoe["isActive"], true);
    assert_eq!(shoe["__v"], 1);
    assert!(shoe.get("foo").is_none(), "{shoe}");
    assert_eq!(shoe["reviews"], json!([]), "{shoe}");
    let created_at = shoe["createdAt"].as_str().expect("createdAt");
    assert!(!created_at.starts_with("2000"), "{shoe}");
    assert!(created_at.ends_with('Z'), "{shoe}");

    // Public read: the same product, with its (empty) reviews.
    let got = fetch(&app, &id, None).await;
    assert_eq!(got["reviews"], json!([]));
    assert_eq!(got, shoe);
    assert!(got.get("foo").is_none());

    // A second SKU-001 is refused, on create and update; nothing is created.
    let r = app
        .post(
            "/api/products",
            Some(&admin),
            with(
                product("Copy", "sports", json!(1), 1),
                "sku",
                json!("SHOE-001"),
            ),
        )
        .await;
    assert_msg(
        &r,
        StatusCode::CONFLICT,
        "A product with this SKU already exists",
    );
    assert_eq!(list(&app, "", None).await.1["total"], 1);
    let tee = create(
        &app,
        &admin,
        with(
            product("Cotton Tee", "clothing", json!(9.5), 0),
            "sku",
            json!("TEE-1"),
        ),
    )
    .await;
    let tee_id = id_of(&tee);
    let r = app
        .put(&path_of(&tee_id), Some(&admin), json!({"sku": "SHOE-001"}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(fetch(&app, &tee_id, None).await["sku"], "TEE-1");

    // PUT changes only the given fields; stock set here is a ledger entry.
    let r = app
        .put(
            &path_of(&id),
            Some(&mia),
            json!({"price": 24.5, "inventory": 8, "tags": ["running", "trail"], "foo": 1,
                   "description": "Featherweight shoe for alpine ridges", "ownerId": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["message"], "Product updated successfully");
    let updated = r.body["data"]["product"].clone();
    assert_eq!(updated["price"], json!(24.5));
    assert_eq!(updated["inventory"], 8);
    assert_eq!(updated["tags"], json!(["running", "trail"]));
    assert_eq!(
        updated["description"],
        "Featherweight shoe for alpine ridges"
    );
    assert_eq!(updated["__v"], 2);
    for kept in [
        "name",
        "category",
        "sku",
        "attributes",
        "ownerId",
        "createdAt",
    ] {
        assert_eq!(updated[kept], shoe[kept], "{kept} kept");
    }
    assert!(updated.get("foo").is_none());
    assert_eq!(fetch(&app, &id, None).await, updated);
    let (entries, inventory) = history(&app, &id, &mia).await;
    assert_eq!(inventory, 8);
    assert_eq!(entries.len(), 2, "{entries:#?}");
    assert_eq!(entries[0]["kind"], "manual");
    assert_eq!(entries[0]["change"], 3);
    assert_eq!(entries[0]["stockAfter"], 8);
    assert_eq!(entries[0]["actorId"], mia_id);
    assert_eq!(entries[0]["reason"], "stock set by product update");
    assert_eq!(entries[1]["kind"], "initial");
    assert_eq!(entries[1]["change"], 5);
    assert_eq!(ledger_sum(&entries), 8);
    // The search index follows the new text.
    assert_eq!(
        names(&app, "?search=alpine", None).await,
        ["Trail Running Shoe"]
    );
    assert!(names(&app, "?search=mountain", None).await.is_empty());

    // A body naming no product field changes nothing.
    let r = app
        .put(&path_of(&id), Some(&mia), json!({"foo": 1, "rating": 5}))
        .await;
    assert_msg(&r, StatusCode::BAD_REQUEST, "No product fields to update");
    assert_eq!(fetch(&app, &id, None).await["__v"], 2);

    // DELETE archives: gone for the public, kept for the owner and admins.
    let r = app.delete(&path_of(&id), Some(&mia)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["message"], "Product deleted successfully");
    assert_eq!(names(&app, "", None).await, ["Cotton Tee"]);
    assert!(names(&app, "?search=alpine", None).await.is_empty());
    for token in [None, Some(cust.as_str()), Some(other.as_str())] {
        assert_msg(
            &app.get(&path_of(&id), token).await,
            StatusCode::NOT_FOUND,
            "Product not found",
        );
    }
    for token in [&mia, &admin] {
        let p = fetch(&app, &id, Some(token)).await;
        assert_eq!(p["status"], "archived");
        assert_eq!(p["isActive"], false);
        assert_eq!(p["price"], json!(24.5));
    }
    let (archived, pagination) = list(&app, "?status=archived", Some(&admin)).await;
    assert_eq!(archived.len(), 1);
    assert_eq!(archived[0]["id"], id.as_str());
    assert_eq!(pagination["total"], 1);
    assert_eq!(list(&app, "?status=all", Some(&admin)).await.1["total"], 2);
    assert_eq!(
        names(&app, "?mine=true&status=archived", Some(&mia)).await,
        ["Trail Running Shoe"]
    );
    assert!(
        names(&app, "?mine=true&status=archived", Some(&other))
            .await
            .is_empty()
    );
    for token in [None, Some(cust.as_str()), Some(mia.as_str())] {
        let r = app.get("/api/products?status=archived", token).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    }

    // `isActive: true` restores it (read as `status`).
    let r = app
        .put(&path_of(&id), Some(&mia), json!({"isActive": true}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["product"]["status"], "active");
    assert_eq!(fetch(&app, &id, None).await["isActive"], true);
    assert_eq!(list(&app, "", None).await.1["total"], 2);
    let r = app
        .put(&path_of(&id), Some(&admin), json!({"status": "archived"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(list(&app, "", None).await.1["total"], 1);

    // Unknown and malformed ids.
    assert_msg(
        &app.get(&path_of(MISSING_ID), None).await,
        StatusCode::NOT_FOUND,
        "Product not found",
    );
    assert_msg(
        &app.put(&path_of(MISSING_ID), Some(&admin), json!({"price": 1}))
            .await,
        StatusCode::NOT_FOUND,
        "Product not found",
    );
    assert_msg(
        &app.delete(&path_of(MISSING_ID), Some(&admin)).await,
        StatusCode::NOT_FOUND,
        "Product not found",
    );
}

/// Pagination, filters, every sort and full-text search.
async fn listing_story(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _) = app.admin().await;
    let (mia, _) = merchant(&app, "mia@example.com").await;

    let catalogue = [
        (
            "Trail Running Shoe",
            "Lightweight waterproof shoe for mountain trails",
            json!("19.99"),
            5,
            "sports",
            json!(["running", "outdoor"]),
        ),
        (
            "Cotton Tee",
            "Soft organic cotton shirt",
            json!(9.5),
            0,
            "clothing",
            json!(["summer"]),
        ),
        (
            "Espresso Machine",
            "Barista quality espresso at home",
            json!(249),
            2,
            "home",
            json!(["coffee", "kitchen"]),
        ),
        (
            "Graphic Novel",
            "Illustrated adventure story",
            json!("15.00"),
            7,
            "books",
            json!(["comics"]),
        ),
        (
            "Bluetooth Speaker",
            "Portable speaker with deep bass",
            json!(59.99),
            3,
            "electronics",
            json!(["audio", "waterproof"]),
        ),
    ];
    for (i, (name, description, price, inventory, category, tags)) in catalogue.iter().enumerate() {
        let token = if i % 2 == 0 { &mia } else { &admin };
        create(
            &app,
            token,
            json!({"name": name, "description": description, "price": price,
                   "inventory": inventory, "category": category, "tags": tags}),
        )
        .await;
        tick().await;
    }
    let newest_first = [
        "Bluetooth Speaker",
        "Graphic Novel",
        "Espresso Machine",
        "Cotton Tee",
        "Trail Running Shoe",
    ];
    let by_price = [
        "Cotton Tee",
        "Graphic Novel",
        "Trail Running Shoe",
        "Bluetooth Speaker",
        "Espresso Machine",
    ];
    let by_name = [
        "Bluetooth Speaker",
        "Cotton Tee",
        "Espresso Machine",
        "Graphic Novel",
        "Trail Running Shoe",
    ];
    let rev = |a: &[&str]| a.iter().rev().map(|s| (*s).to_owned()).collect::<Vec<_>>();

    // Default: newest first, page 1 of 10.
    let (all, pagination) = list(&app, "", None).await;
    assert_eq!(
        pagination,
        json!({"page": 1, "limit": 10, "total": 5, "pages": 1})
    );
    let listed: Vec<&str> = all.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(listed, newest_first);
    for p in &all {
        assert_eq!(p["_id"], p["id"]);
        assert!(p["inventory"].is_i64() && p["price"].is_number(), "{p}");
        assert_eq!(p["reviews"], json!([]), "{p}");
    }

    // Pages cover everything once.
    let mut seen = Vec::new();
    for page in 1..=3 {
        let (products, pagination) = list(&app, &format!("?limit=2&page={page}"), None).await;
        assert_eq!(
            pagination,
            json!({"page": page, "limit": 2, "total": 5, "pages": 3})
        );
        assert_eq!(products.len(), if page < 3 { 2 } else { 1 });
        seen.extend(products.iter().map(id_of));
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), 5);
    let (beyond, pagination) = list(&app, "?limit=2&page=4", None).await;
    assert!(beyond.is_empty());
    assert_eq!(pagination["total"], 5);

    // Sorts.
    assert_eq!(names(&app, "?sort=-createdAt", None).await, newest_first);
    assert_eq!(
        names(&app, "?sort=createdAt", None).await,
        rev(&newest_first)
    );
    assert_eq!(names(&app, "?sort=price", None).await, by_price);
    assert_eq!(names(&app, "?sort=-price", None).await, rev(&by_price));
    assert_eq!(names(&app, "?sort=name", None).await, by_name);
    assert_eq!(names(&app, "?sort=-name", None).await, rev(&by_name));
    for sort in ["rating", "-rating"] {
        let mut got = names(&app, &format!("?sort={sort}"), None).await;
        got.sort();
        assert_eq!(got, by_name, "sort={sort}");
    }
    assert_eq!(
        names(&app, "?sort=price&limit=2&page=2", None).await,
        by_price[2..4]
    );

    // Filters, alone and together.
    assert_eq!(
        names(&app, "?category=sports", None).await,
        ["Trail Running Shoe"]
    );
    assert_eq!(
        names(&app, "?category=Sports", None).await,
        ["Trail Running Shoe"]
    );
    assert!(names(&app, "?category=toys", None).await.is_empty());
    assert_eq!(
        names(&app, "?minPrice=15&maxPrice=59.99&sort=price", None).await,
        ["Graphic Novel", "Trail Running Shoe", "Bluetooth Speaker"]
    );
    assert_eq!(
        names(&app, "?minPrice=60", None).await,
        ["Espresso Machine"]
    );
    assert_eq!(names(&app, "?maxPrice=10", None).await, ["Cotton Tee"]);
    // A 0 bound is ignored, as in the original.
    assert_eq!(
        list(&app, "?minPrice=0&maxPrice=0", None).await.1["total"],
        5
    );
    let in_stock = names(&app, "?inStock=true&sort=name", None).await;
    assert_eq!(
        in_stock,
        [
            "Bluetooth Speaker",
            "Espresso Machine",
            "Graphic Novel",
            "Trail Running Shoe"
        ]
    );
    assert_eq!(list(&app, "?inStock=false", None).await.1["total"], 5);
    let (page, pagination) = list(&app, "?inStock=true&sort=price&limit=1&page=2", None).await;
    assert_eq!(page[0]["name"], "Trail Running Shoe");
    assert_eq!(pagination["total"], 4);
    assert_eq!(pagination["pages"], 4);

    // Full-text search over name, description and tags.
    let search = |q: &'static str| {
        let app = &app;
        async move {
            let mut got = names(app, &format!("?search={q}"), None).await;
            got.sort();
            got
        }
    };
    assert_eq!(
        search("waterproof").await,
        ["Bluetooth Speaker", "Trail Running Shoe"],
        "description of one, tag of the other"
    );
    assert_eq!(search("WATERPROOF").await, search("waterproof").await);
    assert_eq!(search("barista").await, ["Espresso Machine"]);
    assert_eq!(search("espresso").await, ["Espresso Machine"]);
    assert_eq!(search("comics").await, ["Graphic Novel"]);
    assert_eq!(search("kitchen").await, ["Espresso Machine"]);
    assert_eq!(search("Speaker").await, ["Bluetooth Speaker"]);
    assert_eq!(search("mountain%20trails").await, ["Trail Running Shoe"]);
    assert!(
        search("mountain%20bass").await.is_empty(),
        "all words must match"
    );
    assert!(search("zeppelin").await.is_empty());
    assert_eq!(
        names(&app, "?search=waterproof&category=electronics", None).await,
        ["Bluetooth Speaker"]
    );
    assert_eq!(
        names(&app, "?search=waterproof&maxPrice=20", None).await,
        ["Trail Running Shoe"]
    );
    let (found, pagination) = list(&app, "?search=waterproof&limit=1", None).await;
    assert_eq!(found.len(), 1);
    assert_eq!(pagination["total"], 2);
    assert_eq!(pagination["pages"], 2);
    // Punctuation is not query syntax.
    let r = app
        .get("/api/products?search=%22speaker%22%20OR%20*%20-%20(", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Common words in a query do not hide what the other words find. (InnoDB
    // leaves stopwords such as "for" and "with" out of its index, so a
    // required `+for*` term can never match on MySQL/MariaDB.)
    assert_eq!(
        search("speaker%20with%20deep%20bass").await,
        ["Bluetooth Speaker"]
    );
    assert_eq!(
        search("shoe%20for%20mountain").await,
        ["Trail Running Shoe"]
    );
}

/// PATCH inventory, refusals that change nothing, and the ledger.
async fn inventory_story(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, admin_id) = app.admin().await;
    let (mia, mia_id) = merchant(&app, "mia@example.com").await;
    let p = create(&app, &mia, product("Desk Lamp", "home", json!(30), 10)).await;
    let id = id_of(&p);
    let inv = format!("/api/products/{id}/inventory");

    let r = app
        .patch(
            &inv,
            Some(&mia),
            json!({"change": -3, "reason": "  damaged in storage "}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["success"], true);
    assert_eq!(r.body["data"]["previousInventory"], 10);
    assert_eq!(r.body["data"]["change"], -3);
    assert_eq!(r.body["data"]["product"]["inventory"], 7);
    assert_eq!(r.body["data"]["product"]["id"], id.as_str());

    let r = app.patch(&inv, Some(&admin), json!({"change": 5})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["previousInventory"], 7);
    assert_eq!(r.body["data"]["product"]["inventory"], 12);

    // More than there is: refused, nothing changes.
    let r = app.patch(&inv, Some(&mia), json!({"change": -13})).await;
    assert_msg(
        &r,
        StatusCode::CONFLICT,
        "Insufficient inventory for product. Available: 12, requested: 13",
    );
    assert_eq!(fetch(&app, &id, None).await["inventory"], 12);
    assert_eq!(history(&app, &id, &mia).await.0.len(), 3);

    // Not an integer: refused with the field named.
    for bad in [
        json!({"change": 1.5}),
        json!({"change": "abc"}),
        json!({"change": true}),
        json!({"change": null}),
        json!({"change": [1]}),
        json!({"reason": "no change"}),
        json!({"change": 10_000_000_000_i64}),
    ] {
        let r = app.patch(&inv, Some(&mia), bad.clone()).await;
        let msg = assert_field_error(&r, StatusCode::BAD_REQUEST, "body", "change");
        assert_eq!(
            msg, "Change must be an integer (negative to deduct, positive to restore)",
            "{bad}"
        );
    }
    let r = app
        .patch(
            &inv,
            Some(&mia),
            json!({"change": 1, "reason": "x".repeat(501)}),
        )
        .await;
    assert_field_error(&r, StatusCode::BAD_REQUEST, "body", "reason");
    assert_eq!(fetch(&app, &id, None).await["inventory"], 12);

    // An integer in a string is an integer (express-validator's isInt).
    let r = app.patch(&inv, Some(&mia), json!({"change": "-2"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["product"]["inventory"], 10);
    // Zero changes nothing and writes no entry.
    let r = app.patch(&inv, Some(&mia), json!({"change": 0})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["previousInventory"], 10);
    assert_eq!(r.body["data"]["product"]["inventory"], 10);
    // Emptying the shelf exactly is allowed; PUT sets stock as an entry too.
    let r = app.patch(&inv, Some(&admin), json!({"change": -10})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["product"]["inventory"], 0);
    let r = app.patch(&inv, Some(&admin), json!({"change": -1})).await;
    assert_msg(
        &r,
        StatusCode::CONFLICT,
        "Insufficient inventory for product. Available: 0, requested: 1",
    );
    let r = app
        .put(&path_of(&id), Some(&mia), json!({"inventory": 4}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // The ledger, newest first; its sum is the stock.
    let (entries, inventory) = history(&app, &id, &mia).await;
    assert_eq!(inventory, 4);
    let summary: Vec<(&str, i64, i64)> = entries
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap(),
                e["change"].as_i64().unwrap(),
                e["stockAfter"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("manual", 4, 4),
            ("manual", -10, 0),
            ("manual", -2, 10),
            ("manual", 5, 12),
            ("manual", -3, 7),
            ("initial", 10, 10),
        ],
        "{entries:#?}"
    );
    assert_eq!(ledger_sum(&entries), inventory);
    let ids: Vec<i64> = entries.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let damaged = &entries[4];
    assert_eq!(damaged["reason"], "damaged in storage");
    assert_eq!(damaged["actorId"], mia_id);
    assert!(damaged["createdAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(entries[3]["actorId"], admin_id);
    assert_eq!(entries[3]["reason"], Value::Null);
    assert_eq!(entries[5]["actorId"], mia_id);
    assert_eq!(entries[0]["reason"], "stock set by product update");

    // Paged.
    let r = app
        .get(
            &format!("/api/products/{id}/inventory/history?limit=2&page=3"),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["entries"], json!(entries[4..]));
    assert_eq!(
        r.body["data"]["pagination"],
        json!({"page": 3, "limit": 2, "total": 6, "pages": 3})
    );
    for q in ["limit=0", "limit=101", "page=0"] {
        let r = app
            .get(
                &format!("/api/products/{id}/inventory/history?{q}"),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", r.body);
    }

    // Missing products.
    let missing = format!("/api/products/{MISSING_ID}/inventory");
    assert_msg(
        &app.patch(&missing, Some(&admin), json!({"change": 1}))
            .await,
        StatusCode::NOT_FOUND,
        "Product not found",
    );
    assert_msg(
        &app.get(&format!("{missing}/history"), Some(&admin)).await,
        StatusCode::NOT_FOUND,
        "Product not found",
    );
}

/// Fifty simultaneous single-unit deductions of a stock of ten.
async fn concurrent_deductions(backend: Backend) {
    let app = spawn_app(backend).await;
    let (mia, _) = merchant(&app, "mia@example.com").await;
    let p = create(&app, &mia, product("Limited Print", "other", json!(80), 10)).await;
    let id = id_of(&p);
    let url = format!("{}/api/products/{id}/inventory", app.base);

    let calls = (0..50).map(|_| {
        let req = app
            .client
            .patch(&url)
            .bearer_auth(&mia)
            .json(&json!({"change": -1, "reason": "rush"}));
        async move {
            let res = req.send().await.expect("request");
            let status = res.status();
            let body: Value = res.json().await.expect("json body");
            (status, body)
        }
    });
    let answers = futures::future::join_all(calls).await;
    let ok: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .map(|(_, b)| b)
        .collect();
    let refused: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CONFLICT)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(ok.len(), 10, "{answers:#?}");
    assert_eq!(refused.len(), 40, "{answers:#?}");
    for body in &refused {
        assert_eq!(
            body["message"],
            "Insufficient inventory for product. Available: 0, requested: 1"
        );
    }
    // Every unit was handed out once: the previous stocks are 10, 9, …, 1.
    let mut previous: Vec<i64> = ok
        .iter()
        .map(|b| b["data"]["previousInventory"].as_i64().unwrap())
        .collect();
    previous.sort_unstable();
    assert_eq!(previous, (1..=10).collect::<Vec<_>>());

    assert_eq!(fetch(&app, &id, None).await["inventory"], 0);
    let (entries, inventory) = history(&app, &id, &mia).await;
    assert_eq!(inventory, 0);
    assert_eq!(entries.len(), 11, "{entries:#?}");
    assert_eq!(entries.iter().filter(|e| e["kind"] == "manual").count(), 10);
    assert!(
        entries
            .iter()
            .filter(|e| e["kind"] == "manual")
            .all(|e| e["change"] == -1 && e["reason"] == "rush")
    );
    assert_eq!(entries.last().unwrap()["kind"], "initial");
    assert_eq!(ledger_sum(&entries), 0);
    let mut after: Vec<i64> = entries
        .iter()
        .map(|e| e["stockAfter"].as_i64().unwrap())
        .collect();
    after.sort_unstable();
    assert_eq!(after, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
}

fn detail<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["data"]["details"]
        .as_array()
        .expect("details")
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {body}"))
}

async fn category_names(app: &TestApp) -> Vec<String> {
    let r = app.get("/api/categories", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    serde_json::from_value(r.body["data"]["categories"].clone()).expect("names")
}

/// Categories: the seven defaults with live figures, and admin management.
async fn categories_story(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _) = app.admin().await;
    let (mia, _) = merchant(&app, "mia@example.com").await;
    let (cust, _) = app.customer("cust@example.com").await;

    let r = app.get("/api/categories", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["success"], true);
    assert_eq!(r.body["data"]["categories"], json!(DEFAULT_CATEGORIES));
    let details = r.body["data"]["details"].as_array().unwrap();
    assert_eq!(details.len(), 7);
    for (d, name) in details.iter().zip(DEFAULT_CATEGORIES) {
        assert_eq!(d["name"], name);
        assert_eq!(d["productCount"], 0);
        assert_eq!(d["unitsInStock"], 0);
        assert_eq!(d["stockValue"], json!(0.0));
    }

    // Figures count active products only.
    create(&app, &mia, product("Yoga Mat", "sports", json!(10), 3)).await;
    create(
        &app,
        &admin,
        product("Jump Rope", "sports", json!("2.50"), 4),
    )
    .await;
    create(&app, &mia, product("Cookbook", "books", json!(7), 0)).await;
    let gone = create(&app, &mia, product("Old Bike", "sports", json!(100), 50)).await;
    let r = app.delete(&path_of(&id_of(&gone)), Some(&mia)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app.get("/api/categories", None).await;
    let sports = detail(&r.body, "sports");
    assert_eq!(sports["productCount"], 2);
    assert_eq!(sports["unitsInStock"], 7);
    assert_eq!(sports["stockValue"], json!(40.0));
    let books = detail(&r.body, "books");
    assert_eq!(books["productCount"], 1);
    assert_eq!(books["unitsInStock"], 0);
    assert_eq!(books["stockValue"], json!(0.0));
    assert_eq!(detail(&r.body, "toys")["productCount"], 0);

    // Admins add categories; names are lower-cased and unique.
    let r = app
        .post("/api/categories", Some(&admin), json!({"name": " Garden "}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["data"]["category"]["name"], "garden");
    let mut want: Vec<String> = DEFAULT_CATEGORIES.map(String::from).to_vec();
    want.push("garden".into());
    assert_eq!(category_names(&app).await, want);
    for dup in ["garden", "GARDEN", "books"] {
        let r = app
            .post("/api/categories", Some(&admin), json!({"name": dup}))
            .await;
        assert_msg(
            &r,
            StatusCode::CONFLICT,
            "A category with this name already exists",
        );
    }
    for bad in [
        json!({"name": ""}),
        json!({"name": "a/b"}),
        json!({}),
        json!({"name": "x".repeat(65)}),
    ] {
        let r = app.post("/api/categories", Some(&admin), bad.clone()).await;
        assert_field_error(&r, StatusCode::BAD_REQUEST, "body", "name");
    }
    assert_eq!(category_names(&app).await, want);

    // Only admins manage them.
    for (token, status) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some(cust.as_str()), StatusCode::FORBIDDEN),
        (Some(mia.as_str()), StatusCode::FORBIDDEN),
    ] {
        let r = app
            .post("/api/categories", token, json!({"name": "tools"}))
            .await;
        assert_eq!(r.status, status, "{}", r.body);
        let r = app
            .put("/api/categories/garden", token, json!({"name": "tools"}))
            .await;
        assert_eq!(r.status, status, "{}", r.body);
        let r = app.delete("/api/categories/toys", token).await;
        assert_eq!(r.status, status, "{}", r.body);
    }
    assert_eq!(category_names(&app).await, want);

    // Products use known categories only.
    let r = app
        .post(
            "/api/products",
            Some(&mia),
            product("Mystery Box", "unknown", json!(5), 1),
        )
        .await;
    assert_eq!(
        assert_field_error(&r, StatusCode::NOT_FOUND, "body", "category"),
        "Invalid category"
    );
    let rake = create(&app, &mia, product("Leaf Rake", "Garden", json!(12), 2)).await;
    assert_eq!(rake["category"], "garden");
    let rake_id = id_of(&rake);
    assert_eq!(names(&app, "?category=garden", None).await, ["Leaf Rake"]);
    // Read once so a stale cached copy would show.
    assert_eq!(fetch(&app, &rake_id, None).await["category"], "garden");

    // Rename: the products follow.
    let r = app
        .put(
            "/api/categories/garden",
            Some(&admin),
            json!({"name": "Outdoor"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["data"]["category"],
        json!({"name": "outdoor", "previousName": "garden"})
    );
    assert_eq!(fetch(&app, &rake_id, None).await["category"], "outdoor");
    assert_eq!(names(&app, "?category=outdoor", None).await, ["Leaf Rake"]);
    assert!(names(&app, "?category=garden", None).await.is_empty());
    let r = app.get("/api/categories", None).await;
    assert_eq!(detail(&r.body, "outdoor")["productCount"], 1);
    assert_eq!(detail(&r.body, "outdoor")["stockValue"], json!(24.0));
    want[7] = "outdoor".into();
    assert_eq!(category_names(&app).await, want);
    let r = app
        .put(
            "/api/categories/outdoor",
            Some(&admin),
            json!({"name": "books"}),
        )
        .await;
    assert_msg(
        &r,
        StatusCode::CONFLICT,
        "A category with this name already exists",
    );
    let r = app
        .put("/api/categories/nope", Some(&admin), json!({"name": "x"}))
        .await;
    assert_msg(&r, StatusCode::NOT_FOUND, "Category not found");
    assert_eq!(fetch(&app, &rake_id, None).await["category"], "outdoor");

    // Delete: refused while used (archived products count), else gone.
    let r = app.delete("/api/categories/outdoor", Some(&admin)).await;
    assert_msg(
        &r,
        StatusCode::CONFLICT,
        "Category is used by 1 product(s); move or delete them first",
    );
    let r = app.delete("/api/categories/sports", Some(&admin)).await;
    assert_msg(
        &r,
        StatusCode::CONFLICT,
        "Category is used by 3 product(s); move or delete them first",
    );
    assert_eq!(category_names(&app).await, want);
    let r = app.delete("/api/categories/toys", Some(&admin)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["message"], "Category deleted successfully");
    want.retain(|c| c != "toys");
    assert_eq!(category_names(&app).await, want);
    assert_msg(
        &app.delete("/api/categories/toys", Some(&admin)).await,
        StatusCode::NOT_FOUND,
        "Category not found",
    );
    let r = app
        .post(
            "/api/products",
            Some(&mia),
            product("Kite", "toys", json!(5), 1),
        )
        .await;
    assert_msg(&r, StatusCode::NOT_FOUND, "Invalid category");
    // Moving the product out frees the category.
    let r = app
        .put(&path_of(&rake_id), Some(&mia), json!({"category": "home"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app.delete("/api/categories/outdoor", Some(&admin)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(!category_names(&app).await.contains(&"outdoor".to_owned()));
}

ecap_core::on_every_backend!(
    product_crud_story,
    listing_story,
    inventory_story,
    concurrent_deductions,
    categories_story
);

// ---- SQLite only: rules that do not depend on the database ---------------------------

fn png_bytes() -> Vec<u8> {
    let mut b = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    b.extend_from_slice(b"\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0");
    b
}

async fn upload(app: &TestApp, id: &str, token: Option<&str>) -> StatusCode {
    let part = reqwest::multipart::Part::bytes(png_bytes())
        .file_name("pixel.png")
        .mime_str("image/png")
        .unwrap();
    let mut req = app
        .client
        .post(format!("{}/api/products/{id}/images", app.base))
        .multipart(reqwest::multipart::Form::new().part("image", part));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("request").status()
}

/// Who may do what: every write refused to the anonymous (401), customers and
/// other merchants (403); refused calls change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_matrix() {
    let app = spawn_app(Backend::Sqlite).await;
    let (admin, admin_id) = app.admin().await;
    let (owner, owner_id) = merchant(&app, "owner@example.com").await;
    let (other, _) = merchant(&app, "other@example.com").await;
    let (cust, _) = app.customer("cust@example.com").await;
    let refused: [(Option<&str>, StatusCode); 3] = [
        (None, StatusCode::UNAUTHORIZED),
        (Some(cust.as_str()), StatusCode::FORBIDDEN),
        (Some(other.as_str()), StatusCode::FORBIDDEN),
    ];

    // Create: merchants and admins; the creator owns it.
    for (token, status) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some(cust.as_str()), StatusCode::FORBIDDEN),
        (Some("not-a-token"), StatusCode::UNAUTHORIZED),
    ] {
        let r = app
            .post(
                "/api/products",
                token,
                product("Nope", "books", json!(1), 1),
            )
            .await;
        assert_eq!(r.status, status, "{}", r.body);
        assert_eq!(r.body["success"], false);
    }
    assert_eq!(list(&app, "", None).await.1["total"], 0);
    let p = create(&app, &owner, product("Owned Thing", "books", json!(10), 5)).await;
    assert_eq!(p["ownerId"], owner_id);
    let by_admin = create(&app, &admin, product("Admin Thing", "books", json!(3), 1)).await;
    assert_eq!(by_admin["ownerId"], admin_id);
    let id = id_of(&p);
    let path = path_of(&id);
    let before = fetch(&app, &id, None).await;

    for (token, status) in refused {
        let who = format!("{token:?}");
        let r = app.put(&path, token, json!({"price": 1})).await;
        assert_eq!(r.status, status, "PUT as {who}: {}", r.body);
        let r = app
            .patch(&format!("{path}/inventory"), token, json!({"change": -1}))
            .await;
        assert_eq!(r.status, status, "PATCH as {who}: {}", r.body);
        let r = app.get(&format!("{path}/inventory/history"), token).await;
        assert_eq!(r.status, status, "history as {who}: {}", r.body);
        assert_eq!(upload(&app, &id, token).await, status, "upload as {who}");
        let r = app
            .delete(
                &format!("{path}/images/0190a0b0-0000-7000-8000-000000000000"),
                token,
            )
            .await;
        assert_eq!(r.status, status, "image delete as {who}: {}", r.body);
        let r = app.delete(&path, token).await;
        assert_eq!(r.status, status, "DELETE as {who}: {}", r.body);
        assert!(r.body["message"].is_string());
    }
    // A merchant cannot touch an admin's product either.
    let r = app
        .put(
            &path_of(&id_of(&by_admin)),
            Some(&owner),
            json!({"price": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // Nothing changed.
    assert_eq!(fetch(&app, &id, None).await, before);
    assert_eq!(
        fetch(&app, &id_of(&by_admin), None).await["price"],
        json!(3.0)
    );
    assert_eq!(list(&app, "", None).await.1["total"], 2);

    // The owner and admins may.
    for token in [&owner, &admin] {
        let r = app.put(&path, Some(token), json!({"price": 11})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let r = app
            .patch(
                &format!("{path}/inventory"),
                Some(token),
                json!({"change": -1}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let r = app
            .get(&format!("{path}/inventory/history"), Some(token))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let r = app
            .delete(
                &format!("{path}/images/0190a0b0-0000-7000-8000-000000000000"),
                Some(token),
            )
            .await;
        assert_msg(&r, StatusCode::NOT_FOUND, "Image not found");
    }
    assert_eq!(fetch(&app, &id, None).await["inventory"], 3);

    // Listing one's own products.
    assert_eq!(
        names(&app, "?mine=true", Some(&owner)).await,
        ["Owned Thing"]
    );
    assert!(names(&app, "?mine=true", Some(&other)).await.is_empty());
    let r = app.get("/api/products?mine=true", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    // On public reads a bad token reads as anonymous: it works, and grants nothing.
    let r = app.get("/api/products", Some("not-a-token")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .get("/api/products?mine=true", Some("not-a-token"))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    let r = app
        .get("/api/products?status=archived", Some("not-a-token"))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);

    // Categories: admins only.
    for (token, status) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some(cust.as_str()), StatusCode::FORBIDDEN),
        (Some(owner.as_str()), StatusCode::FORBIDDEN),
    ] {
        let r = app
            .post("/api/categories", token, json!({"name": "garden"}))
            .await;
        assert_eq!(r.status, status, "{}", r.body);
        let r = app
            .put("/api/categories/other", token, json!({"name": "misc"}))
            .await;
        assert_eq!(r.status, status, "{}", r.body);
        let r = app.delete("/api/categories/other", token).await;
        assert_eq!(r.status, status, "{}", r.body);
    }
    assert_eq!(category_names(&app).await, DEFAULT_CATEGORIES);

    // Deleting: the owner archives theirs, an admin anyone's.
    let r = app.delete(&path, Some(&owner)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app.delete(&path_of(&id_of(&by_admin)), Some(&admin)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(list(&app, "", None).await.1["total"], 0);
    // An archived product is still the owner's to manage (and restore).
    let r = app
        .put(&path, Some(&owner), json!({"status": "active"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .put(&path, Some(&other), json!({"status": "archived"}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(names(&app, "", None).await, ["Owned Thing"]);
}

/// Every bad input: a 4xx in the shared shape naming the field; nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_changes_nothing() {
    let app = spawn_app(Backend::Sqlite).await;
    let (admin, _) = app.admin().await;
    let good = json!({
        "name": "Board Game",
        "description": "Strategy for four",
        "price": 20,
        "inventory": 3,
        "category": "toys",
        "tags": ["family"],
        "attributes": {"players": 4},
    });

    let cases: Vec<(Value, &str, &str)> = vec![
        (
            with(good.clone(), "price", json!(-1)),
            "price",
            "Price must be a positive number",
        ),
        (
            with(good.clone(), "price", json!("-0.5")),
            "price",
            "Price must be a positive number",
        ),
        (
            with(good.clone(), "price", json!(1.999)),
            "price",
            "Price can have at most 2 decimal places",
        ),
        (
            with(good.clone(), "price", json!("abc")),
            "price",
            "Price must be a positive number",
        ),
        (
            with(good.clone(), "price", json!(true)),
            "price",
            "Price must be a positive number",
        ),
        (
            with(good.clone(), "price", json!(1e12)),
            "price",
            "Price is too large",
        ),
        (
            without(good.clone(), "price"),
            "price",
            "Price must be a positive number",
        ),
        (
            with(good.clone(), "category", json!(7)),
            "category",
            "Invalid category",
        ),
        (
            without(good.clone(), "category"),
            "category",
            "Invalid category",
        ),
        (
            with(good.clone(), "attributes", json!([1, 2])),
            "attributes",
            "Attributes must be a JSON object",
        ),
        (
            with(good.clone(), "attributes", json!("red")),
            "attributes",
            "Attributes must be a JSON object",
        ),
        (
            with(good.clone(), "tags", json!("family")),
            "tags",
            "Tags must be a list of up to 20 words (max 50 characters each)",
        ),
        (
            with(good.clone(), "tags", json!([1, 2])),
            "tags",
            "Tags must be a list of up to 20 words (max 50 characters each)",
        ),
        (
            with(good.clone(), "tags", json!({"a": 1})),
            "tags",
            "Tags must be a list of up to 20 words (max 50 characters each)",
        ),
        (
            with(good.clone(), "name", json!("x".repeat(201))),
            "name",
            "Product name is required (max 200 characters)",
        ),
        (
            with(good.clone(), "name", json!("   ")),
            "name",
            "Product name is required (max 200 characters)",
        ),
        (
            without(good.clone(), "name"),
            "name",
            "Product name is required (max 200 characters)",
        ),
        (
            with(good.clone(), "description", json!("d".repeat(2001))),
            "description",
            "Description is required (max 2000 characters)",
        ),
        (
            without(good.clone(), "description"),
            "description",
            "Description is required (max 2000 characters)",
        ),
        (
            with(good.clone(), "inventory", json!(-1)),
            "inventory",
            "Inventory must be a non-negative integer",
        ),
        (
            with(good.clone(), "inventory", json!(1.5)),
            "inventory",
            "Inventory must be a non-negative integer",
        ),
        (
            with(good.clone(), "sku", json!("bad sku!")),
            "sku",
            "SKU must be 1–100 letters, digits, '.', '_' or '-'",
        ),
        (
            with(good.clone(), "images", json!(["ftp://example.com/a.png"])),
            "images",
            "Images must be a list of up to 10 http(s) URLs (upload files with POST /api/products/:id/images)",
        ),
    ];
    for (body, path, msg) in &cases {
        let r = app.post("/api/products", Some(&admin), body.clone()).await;
        let got = assert_field_error(&r, StatusCode::BAD_REQUEST, "body", path);
        assert_eq!(&got, msg, "{body}");
    }
    // A category that names none is a missing thing, not a malformed field:
    // 404 naming `category` (categories are data, not a schema enum).
    let r = app
        .post(
            "/api/products",
            Some(&admin),
            with(good.clone(), "category", json!("unknown")),
        )
        .await;
    assert_eq!(
        assert_field_error(&r, StatusCode::NOT_FOUND, "body", "category"),
        "Invalid category"
    );
    // Several failing rules: the contract's variant B.
    let r = app
        .post(
            "/api/products",
            Some(&admin),
            json!({"name": "", "price": -1, "category": "nope"}),
        )
        .await;
    assert_msg(&r, StatusCode::BAD_REQUEST, "Validation failed");
    let paths: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["name", "description", "price"]);
    assert_eq!(r.body["code"], "validation_failed");

    // Not JSON at all.
    let send_raw =
        |method: Method, path: String, content_type: &'static str, body: &'static str| {
            app.client
                .request(method, format!("{}{path}", app.base))
                .bearer_auth(&admin)
                .header(header::CONTENT_TYPE, content_type)
                .body(body)
                .send()
        };
    let res = send_raw(
        Method::POST,
        "/api/products".into(),
        "application/json",
        r#"{"name": "Board"#,
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["success"], false);
    assert_eq!(body["code"], "malformed_json");
    let res = send_raw(
        Method::POST,
        "/api/products".into(),
        "text/plain",
        r#"{"name": "x"}"#,
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let res = send_raw(
        Method::POST,
        "/api/products".into(),
        "application/json",
        "[1, 2]",
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(list(&app, "", None).await.1["total"], 0, "nothing created");

    // The longest name fits.
    let p = create(
        &app,
        &admin,
        with(good.clone(), "name", json!("n".repeat(200))),
    )
    .await;
    let id = id_of(&p);
    let path = path_of(&id);
    let before = fetch(&app, &id, None).await;

    // Updates validate the same way.
    let bad_updates: Vec<(Value, &str)> = vec![
        (json!({"price": -5}), "price"),
        (json!({"price": 0.001}), "price"),
        (json!({"attributes": [1]}), "attributes"),
        (json!({"attributes": "big"}), "attributes"),
        (json!({"tags": "one"}), "tags"),
        (json!({"name": "y".repeat(201)}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"inventory": -3}), "inventory"),
        (json!({"status": "deleted"}), "status"),
        (json!({"isActive": "no"}), "isActive"),
        (json!({"images": "https://example.com/a.png"}), "images"),
    ];
    for (body, field) in &bad_updates {
        let r = app.put(&path, Some(&admin), body.clone()).await;
        assert_field_error(&r, StatusCode::BAD_REQUEST, "body", field);
    }
    // A category that names none: 404 naming it, nothing changed.
    let r = app
        .put(
            &path,
            Some(&admin),
            json!({"price": 5, "category": "unknown"}),
        )
        .await;
    assert_field_error(&r, StatusCode::NOT_FOUND, "body", "category");
    let res = send_raw(Method::PUT, path.clone(), "application/json", "{price: 1}")
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = send_raw(
        Method::PATCH,
        format!("{path}/inventory"),
        "application/json",
        "{\"change\": ",
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(fetch(&app, &id, None).await, before, "nothing changed");
    assert_eq!(history(&app, &id, &admin).await.0.len(), 1);

    // Query parameters.
    for (query, param) in [
        ("limit=101", "limit"),
        ("limit=0", "limit"),
        ("limit=ten", "limit"),
        ("page=0", "page"),
        ("page=-1", "page"),
        ("sort=foo", "sort"),
        ("sort=price;drop", "sort"),
        ("minPrice=-1", "minPrice"),
        ("maxPrice=abc", "maxPrice"),
        ("inStock=maybe", "inStock"),
        ("status=deleted", "status"),
    ] {
        let r = app.get(&format!("/api/products?{query}"), None).await;
        assert_field_error(&r, StatusCode::BAD_REQUEST, "query", param);
    }
    let r = app
        .get(&format!("/api/products?search={}", "s".repeat(201)), None)
        .await;
    assert_field_error(&r, StatusCode::BAD_REQUEST, "query", "search");
    // A price range that matches nothing is an empty page (the original's
    // answer), not an error: the document cannot say "min ≤ max".
    assert!(
        list(&app, "?minPrice=50&maxPrice=10", None)
            .await
            .0
            .is_empty()
    );
    assert_eq!(list(&app, "?limit=100&page=1", None).await.0.len(), 1);
    assert_eq!(list(&app, "?limit=1", None).await.0.len(), 1);

    // Malformed ids in the path.
    for bad in [
        "xyz",
        "0123456789abcdef0123456",
        "0123456789abcdef012345678",
        "zzzzzzzzzzzzzzzzzzzzzzzz",
    ] {
        let p = path_of(bad);
        for r in [
            app.get(&p, None).await,
            app.put(&p, Some(&admin), json!({"price": 1})).await,
            app.delete(&p, Some(&admin)).await,
            app.patch(
                &format!("{p}/inventory"),
                Some(&admin),
                json!({"change": 1}),
            )
            .await,
            app.get(&format!("{p}/inventory/history"), Some(&admin))
                .await,
            app.get(&format!("{p}/reviews"), None).await,
        ] {
            assert_eq!(
                assert_field_error(&r, StatusCode::BAD_REQUEST, "params", "id"),
                "Invalid product ID",
                "{bad}"
            );
        }
    }
    // Upper-case hex names the same product.
    assert_eq!(
        fetch(&app, &id.to_uppercase(), None).await["id"],
        id.as_str()
    );
    assert_eq!(fetch(&app, &id, None).await, before, "nothing changed");
}

/// Reads carry an `ETag` and answer 304 to a matching `If-None-Match`; a write
/// is seen by the next read.
async fn cache_story(app: &TestApp) {
    let (admin, _) = app.admin().await;
    let p = create(app, &admin, product("Tea Kettle", "home", json!(35), 4)).await;
    let id = id_of(&p);
    let url = format!("{}{}", app.base, path_of(&id));
    let get = |etag: Option<String>| {
        let mut req = app.client.get(&url);
        if let Some(e) = etag {
            req = req.header(header::IF_NONE_MATCH, e);
        }
        req.send()
    };
    let etag_of = |res: &reqwest::Response| {
        res.headers()
            .get(header::ETAG)
            .expect("ETag")
            .to_str()
            .unwrap()
            .to_owned()
    };

    let res = get(None).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-cache");
    assert!(
        res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let etag = etag_of(&res);
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"]["product"]["name"], "Tea Kettle");
    let res = get(None).await.unwrap();
    assert_eq!(etag_of(&res), etag, "same body, same tag");

    for tag in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"x\", {etag}"),
        "*".into(),
    ] {
        let res = get(Some(tag.clone())).await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED, "{tag}");
        assert_eq!(etag_of(&res), etag);
        assert!(res.bytes().await.unwrap().is_empty());
    }
    let res = get(Some("\"something-else\"".into())).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // Write, then read: the new value and a new tag at once.
    let r = app
        .put(
            &path_of(&id),
            Some(&admin),
            json!({"name": "Tea Kettle Pro"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let res = get(Some(etag.clone())).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let etag2 = etag_of(&res);
    assert_ne!(etag2, etag);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"]["product"]["name"], "Tea Kettle Pro");
    let r = app
        .patch(
            &format!("{}/inventory", path_of(&id)),
            Some(&admin),
            json!({"change": -4}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(fetch(app, &id, None).await["inventory"], 0);
    assert_eq!(
        names(app, "?inStock=true", None).await,
        Vec::<String>::new()
    );

    // The listing too.
    let list_url = format!("{}/api/products?sort=name", app.base);
    let res = app.client.get(&list_url).send().await.unwrap();
    let list_tag = etag_of(&res);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"]["pagination"]["total"], 1);
    let res = app
        .client
        .get(&list_url)
        .header(header::IF_NONE_MATCH, &list_tag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    create(app, &admin, product("Milk Frother", "home", json!(15), 2)).await;
    let res = app
        .client
        .get(&list_url)
        .header(header::IF_NONE_MATCH, &list_tag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_ne!(etag_of(&res), list_tag);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"]["pagination"]["total"], 2);
    assert_eq!(names(app, "?inStock=true", None).await, ["Milk Frother"]);

    // Archiving removes the cached public copy.
    let r = app.delete(&path_of(&id), Some(&admin)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let res = get(Some(etag2)).await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(names(app, "?sort=name", None).await, ["Milk Frother"]);

    // Categories are cached and tagged the same way.
    let cat_url = format!("{}/api/categories", app.base);
    let res = app.client.get(&cat_url).send().await.unwrap();
    let cat_tag = etag_of(&res);
    let res = app
        .client
        .get(&cat_url)
        .header(header::IF_NONE_MATCH, &cat_tag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    let r = app
        .post("/api/categories", Some(&admin), json!({"name": "garden"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(category_names(app).await.contains(&"garden".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_cached_with_etags() {
    let app = spawn_app(Backend::Sqlite).await;
    cache_story(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_works_with_the_cache_off() {
    let app = spawn_app_with(Backend::Sqlite, |c| c.ecap_cache_ttl_secs = 0).await;
    cache_story(&app).await;
}

/// Two replicas on one database share the read cache through Redis: a write on
/// one is seen by the next read on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_cache_through_redis() {
    let redis =
        std::env::var("ECAP_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("ecap-test-{}:", uuid::Uuid::new_v4().simple());
    let a = spawn_app_with(Backend::Sqlite, |c| {
        c.redis_url = Some(Secret::new(redis));
        c.redis_key_prefix = prefix;
        c.ecap_cache_ttl_secs = 300;
    })
    .await;
    let platform = ecap::assemble(&a.config, Shape::AllInOne).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b_base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(ecap_core::http::serve(
        listener,
        platform.router,
        std::future::pending(),
    ));
    let b_get = |path: String| {
        let req = a.client.get(format!("{b_base}{path}"));
        async move {
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            let etag = res.headers()[header::ETAG].to_str().unwrap().to_owned();
            (res.json::<Value>().await.unwrap(), etag)
        }
    };

    let (admin, _) = a.admin().await;
    let p = create(&a, &admin, product("Wool Scarf", "clothing", json!(25), 6)).await;
    let id = id_of(&p);

    // Read through B (now cached), and again: same tag.
    let (body, tag) = b_get(path_of(&id)).await;
    assert_eq!(body["data"]["product"]["price"], json!(25.0));
    assert_eq!(b_get(path_of(&id)).await.1, tag);
    // And A serves the very same cached entry.
    let res = a.get(&path_of(&id), None).await;
    assert_eq!(res.headers[header::ETAG].to_str().unwrap(), tag);

    // Write through A, read through B.
    let r = a
        .put(&path_of(&id), Some(&admin), json!({"price": 27.5}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (body, tag2) = b_get(path_of(&id)).await;
    assert_eq!(body["data"]["product"]["price"], json!(27.5));
    assert_ne!(tag2, tag);
    let r = a
        .patch(
            &format!("{}/inventory", path_of(&id)),
            Some(&admin),
            json!({"change": -2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        b_get(path_of(&id)).await.0["data"]["product"]["inventory"],
        4
    );

    // The listing and categories likewise.
    let (list_b, _) = b_get("/api/products".into()).await;
    assert_eq!(list_b["data"]["pagination"]["total"], 1);
    let (cats, _) = b_get("/api/categories".into()).await;
    assert_eq!(detail(&cats, "clothing")["unitsInStock"], 4);
    create(&a, &admin, product("Silk Tie", "clothing", json!(40), 1)).await;
    let (list_b, _) = b_get("/api/products".into()).await;
    assert_eq!(list_b["data"]["pagination"]["total"], 2);
    let (cats, _) = b_get("/api/categories".into()).await;
    assert_eq!(detail(&cats, "clothing")["unitsInStock"], 5);
    let r = a.delete(&path_of(&id), Some(&admin)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let res = a
        .client
        .get(format!("{b_base}{}", path_of(&id)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let (list_b, _) = b_get("/api/products".into()).await;
    assert_eq!(list_b["data"]["pagination"]["total"], 1);
}

/// Reviews need a delivered order; no order service answers yet, so every
/// review is refused — after the request itself is checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_need_a_delivered_order() {
    let app = spawn_app(Backend::Sqlite).await;
    let (admin, _) = app.admin().await;
    let (cust, _) = app.customer("cust@example.com").await;
    let p = create(
        &app,
        &admin,
        product("Pocket Knife", "sports", json!(18), 3),
    )
    .await;
    let id = id_of(&p);
    let reviews = format!("/api/products/{id}/reviews");

    let r = app
        .post(&reviews, None, json!({"rating": 5, "comment": "Great"}))
        .await;
    assert_msg(
        &r,
        StatusCode::UNAUTHORIZED,
        "Authentication token required",
    );
    for token in [&cust, &admin] {
        let r = app
            .post(
                &reviews,
                Some(token),
                json!({"rating": 5, "comment": "Great"}),
            )
            .await;
        assert_msg(
            &r,
            StatusCode::FORBIDDEN,
            "You can only review products from your delivered orders",
        );
    }
    for rating in [
        json!(0),
        json!(6),
        json!("x"),
        json!(4.5),
        json!(null),
        json!(-1),
    ] {
        let r = app
            .post(&reviews, Some(&cust), json!({"rating": rating}))
            .await;
        assert_eq!(
            assert_field_error(&r, StatusCode::BAD_REQUEST, "body", "rating"),
            "Rating must be between 1 and 5",
            "{rating}"
        );
    }
    let r = app.post(&reviews, Some(&cust), json!({})).await;
    assert_field_error(&r, StatusCode::BAD_REQUEST, "body", "rating");
    let r = app
        .post(
            &reviews,
            Some(&cust),
            json!({"rating": 4, "comment": "c".repeat(2001)}),
        )
        .await;
    assert_field_error(&r, StatusCode::BAD_REQUEST, "body", "comment");
    let r = app
        .post(
            &format!("/api/products/{MISSING_ID}/reviews"),
            Some(&cust),
            json!({"rating": 4}),
        )
        .await;
    assert_msg(&r, StatusCode::NOT_FOUND, "Product not found");

    // Nothing was added.
    let r = app.get(&reviews, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["reviews"], json!([]));
    assert_eq!(
        r.body["data"]["rating"],
        json!({"average": 0.0, "count": 0})
    );
    assert_eq!(r.body["data"]["pagination"]["total"], 0);
    let got = fetch(&app, &id, None).await;
    assert_eq!(got["reviews"], json!([]));
    assert_eq!(got["rating"], json!({"average": 0.0, "count": 0}));
    assert_msg(
        &app.get(&format!("/api/products/{MISSING_ID}/reviews"), None)
            .await,
        StatusCode::NOT_FOUND,
        "Product not found",
    );
    // An archived product has no public reviews page.
    app.delete(&path_of(&id), Some(&admin)).await;
    assert_eq!(app.get(&reviews, None).await.status, StatusCode::NOT_FOUND);
}

/// `isActive: false` (or `status: "archived"`) at creation makes a draft:
/// stored, visible to its owner, neither listed nor readable by the public.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drafts_are_created_archived() {
    let app = spawn_app(Backend::Sqlite).await;
    let (mia, _) = merchant(&app, "mia-draft@example.com").await;
    let draft = create(
        &app,
        &mia,
        with(
            product("Draft Lamp", "home", json!(10), 3),
            "isActive",
            json!(false),
        ),
    )
    .await;
    assert_eq!(draft["status"], "archived");
    assert_eq!(draft["isActive"], false);
    let id = id_of(&draft);
    assert_eq!(
        app.get(&path_of(&id), None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(fetch(&app, &id, Some(&mia)).await["status"], "archived");
    assert!(names(&app, "", None).await.is_empty());
    let bad = app
        .post(
            "/api/products",
            Some(&mia),
            with(
                product("Bad", "home", json!(1), 1),
                "status",
                json!("hidden"),
            ),
        )
        .await;
    assert_field_error(&bad, StatusCode::BAD_REQUEST, "body", "status");
}
