//! What the original's clients read and send, checked against ecap over HTTP:
//! form-encoded bodies where the original's services took them, and, per
//! route family, the answer's shape against `API_CONTRACT.md`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{PASSWORD, SETUP_TOKEN, TestApp, assert_error, spawn_app, spawn_app_with};
use ecap_core::db::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

// ---- form-encoded bodies -------------------------------------------------------

/// The original's user, product and order services parsed
/// `application/x-www-form-urlencoded` bodies with Express's `qs` (nested keys,
/// all values text) and validated them like JSON. So does ecap, through the one
/// body extractor every service uses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_bodies_are_read_like_json_on_every_service() {
    let app = spawn_app(Backend::Sqlite).await;
    let r = app
        .form(
            Method::POST,
            "/api/auth/register",
            None,
            &format!(
                "name=Form+Admin&email=form.admin%40example.com&password={}&role=admin&setupToken={SETUP_TOKEN}",
                urlencode(PASSWORD)
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["data"]["user"]["role"], "admin");
    let r = app
        .form(
            Method::POST,
            "/api/auth/login",
            None,
            &format!(
                "email=form.admin%40example.com&password={}",
                urlencode(PASSWORD)
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let admin = r.body["data"]["token"].as_str().unwrap().to_owned();

    // The catalog: numbers and booleans arrive as text, arrays as `tags[]`.
    let r = app
        .form(
            Method::POST,
            "/api/products",
            Some(&admin),
            "name=Form+Kettle&description=Boils+water&price=24.50&inventory=7&category=home\
             &tags%5B%5D=kitchen&tags[]=steel&attributes[litres]=1.7",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let product = &r.body["data"]["product"];
    assert_eq!(product["price"], 24.5);
    assert_eq!(product["inventory"], 7);
    assert_eq!(product["tags"], json!(["kitchen", "steel"]));
    assert_eq!(product["attributes"], json!({"litres": "1.7"}));
    let id = product["id"].as_str().unwrap().to_owned();
    let r = app
        .form(
            Method::PUT,
            &format!("/api/products/{id}"),
            Some(&admin),
            "isActive=false",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["product"]["isActive"], false);
    let r = app
        .form(
            Method::PUT,
            &format!("/api/products/{id}"),
            Some(&admin),
            "isActive=true",
        )
        .await;
    assert_eq!(r.body["data"]["product"]["isActive"], true, "{}", r.body);

    // The address book: a boolean field typed in the handler.
    let (customer, _) = app.customer("form.customer@example.com").await;
    let r = app
        .form(
            Method::POST,
            "/api/users/addresses",
            Some(&customer),
            "label=Home&street=1+MG+Road&city=Pune&state=MH&zipCode=411001&phone=9876543210\
             &isDefault=true",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["data"]["address"]["isDefault"], true);
    assert_eq!(r.body["data"]["address"]["country"], "India");

    // Orders: lines and the address as nested keys.
    let r = app
        .form(
            Method::POST,
            "/api/orders",
            Some(&customer),
            &format!(
                "items[0][productId]={id}&items[0][quantity]=2&paymentMethod=upi\
                 &shippingAddress[street]=1+MG+Road&shippingAddress[city]=Pune\
                 &shippingAddress[zipCode]=411001"
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let order = &r.body["data"]["order"];
    assert_eq!(order["totalAmount"], 49.0, "{order}");
    assert_eq!(order["shippingAddress"]["city"], "Pune");
    let order_id = order["id"].as_i64().unwrap();
    let r = app
        .form(
            Method::PUT,
            &format!("/api/orders/{order_id}/status"),
            Some(&admin),
            "status=processing",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// A form fails the rules its JSON twin fails, with the same status, shape and
/// field; only unreadable input has a code of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_errors_match_json_errors() {
    let app = spawn_app(Backend::Sqlite).await;
    let (admin, _) = app.admin().await;
    let pairs: [(&str, Option<&str>, &str, Value); 4] = [
        (
            "/api/auth/register",
            None,
            "name=A&email=not-an-email&password=short",
            json!({"name": "A", "email": "not-an-email", "password": "short"}),
        ),
        (
            "/api/products",
            Some(&admin),
            "name=Kettle&description=x&price=1.234&category=home",
            json!({"name": "Kettle", "description": "x", "price": "1.234", "category": "home"}),
        ),
        (
            "/api/orders",
            Some(&admin),
            "items[0][productId]=&items[0][quantity]=0&paymentMethod=barter",
            json!({"items": [{"productId": "", "quantity": "0"}], "paymentMethod": "barter"}),
        ),
        (
            "/api/users",
            Some(&admin),
            "name=Al&email=al%40example.com&password=Secret1!&role=king",
            json!({"name": "Al", "email": "al@example.com", "password": "Secret1!", "role": "king"}),
        ),
    ];
    for (path, token, form, json) in pairs {
        let f = app.form(Method::POST, path, token, form).await;
        let j = app.post(path, token, json).await;
        assert_error(&f, StatusCode::BAD_REQUEST);
        assert_eq!(f.status, j.status, "{path}");
        assert_eq!(f.body, j.body, "{path}: the form's answer is the JSON's");
    }
    // A typed field given text that is not its type names the field.
    let (customer, _) = app.customer("typed@example.com").await;
    let r = app
        .form(
            Method::POST,
            "/api/users/addresses",
            Some(&customer),
            "label=Home&street=s&city=c&state=s&zipCode=1&phone=1&isDefault=maybe",
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["errors"][0]["path"], "isDefault", "{}", r.body);
    // Unreadable forms: invalid UTF-8, an unclosed bracket.
    for body in ["name=%FF", "name[=x"] {
        let r = app
            .form(Method::POST, "/api/auth/register", None, body)
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST);
        assert_eq!(r.body["code"], "malformed_form", "{body}: {}", r.body);
    }
    // Other encodings stay refused.
    let r = Resp415::send(&app, "text/plain", "email=a@example.com").await;
    assert_eq!(r, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = Resp415::send(&app, "multipart/form-data; boundary=x", "--x--").await;
    assert_eq!(r, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // The API description says so for flat bodies; nested ones (an order's
    // lines) have no spelling in OpenAPI's form encoding, so the document
    // offers them as JSON (the server still reads `items[0][productId]=`).
    let spec = app.get("/api/openapi.json", None).await.body;
    let content = &spec["paths"]["/api/auth/register"]["post"]["requestBody"]["content"];
    assert!(
        content["application/x-www-form-urlencoded"].is_object(),
        "{content}"
    );
    let content = &spec["paths"]["/api/orders"]["post"]["requestBody"]["content"];
    assert!(content["application/json"].is_object(), "{content}");
    // Nothing was created by any of it.
    let users = app.get("/api/users", Some(&admin)).await;
    assert_eq!(
        users.body["data"]["pagination"]["total"], 2,
        "{}",
        users.body
    );
}

struct Resp415;

impl Resp415 {
    async fn send(app: &TestApp, content_type: &str, body: &str) -> StatusCode {
        app.client
            .post(format!("{}/api/auth/register", app.base))
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
            .status()
    }
}

/// Percent-encodes a form value.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---- shapes, route family by route family ---------------------------------------

/// Checks `value` against a template written from the contract: every key the
/// template names must be there with that type (ecap's additions may sit
/// beside them). Leaves: `"int"`, `"num"`, `"str"`, `"bool"`, `"iso"`
/// (ISO-8601 text), `"obj"`, `"arr"`, `"any"`; a trailing `?` allows `null`;
/// any other string must be matched exactly. `[t]`: a non-empty array whose
/// every element matches `t`.
fn shape(value: &Value, template: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(value, template, "$", &mut errors);
    errors
}

fn check(v: &Value, t: &Value, at: &str, errors: &mut Vec<String>) {
    match t {
        Value::Object(fields) => {
            let Some(obj) = v.as_object() else {
                errors.push(format!("{at}: expected an object, got {v}"));
                return;
            };
            for (k, sub) in fields {
                match obj.get(k) {
                    Some(inner) => check(inner, sub, &format!("{at}.{k}"), errors),
                    None => errors.push(format!("{at}.{k}: missing")),
                }
            }
        }
        Value::Array(items) => {
            let Some(arr) = v.as_array().filter(|a| !a.is_empty()) else {
                errors.push(format!("{at}: expected a non-empty array, got {v}"));
                return;
            };
            for (i, item) in arr.iter().enumerate() {
                check(item, &items[0], &format!("{at}[{i}]"), errors);
            }
        }
        Value::String(kind) => {
            let (kind, nullable) = match kind.strip_suffix('?') {
                Some(k) => (k, true),
                None => (kind.as_str(), false),
            };
            if v.is_null() && nullable {
                return;
            }
            let ok = match kind {
                "int" => v.is_i64() || v.is_u64(),
                "num" => v.is_number(),
                "str" => v.is_string(),
                "bool" => v.is_boolean(),
                "iso" => v
                    .as_str()
                    .is_some_and(|s| s.len() >= 20 && s.as_bytes()[10] == b'T' && s.ends_with('Z')),
                "obj" => v.is_object(),
                "arr" => v.is_array(),
                "any" => true,
                exact => v.as_str() == Some(exact),
            };
            if !ok {
                errors.push(format!("{at}: expected {kind}, got {v}"));
            }
        }
        other => {
            if v != other {
                errors.push(format!("{at}: expected {other}, got {v}"));
            }
        }
    }
}

/// Asserts the answer's status and its shape against the contract's template.
fn conforms(what: &str, r: &common::Resp, status: StatusCode, template: Value) -> Value {
    assert_eq!(r.status, status, "{what}: {}", r.body);
    let errors = shape(&r.body, &template);
    assert!(
        errors.is_empty(),
        "{what} differs from the contract:\n  {}\nbody: {}",
        errors.join("\n  "),
        r.body
    );
    r.body.clone()
}

fn success(data: Value) -> Value {
    json!({ "success": true, "data": data })
}

fn success_msg(message: &str, data: Value) -> Value {
    let mut v = json!({ "success": true, "message": message });
    if !data.is_null() {
        v["data"] = data;
    }
    v
}

fn pagination() -> Value {
    json!({ "page": "int", "limit": "int", "total": "int", "pages": "int" })
}

/// §5.1 and §5.2: auth, profile and the address book.
async fn auth_and_profile_shapes(backend: Backend) {
    let app = spawn_app(backend).await;
    let auth_user = json!({ "id": "int", "email": "str", "name": "str", "role": "str" });
    let r = app
        .post(
            "/api/auth/register",
            None,
            json!({ "name": "Shape Tester", "email": "shape@example.com", "password": PASSWORD }),
        )
        .await;
    conforms(
        "register",
        &r,
        StatusCode::CREATED,
        success_msg(
            "User registered successfully",
            json!({ "user": auth_user, "token": "str" }),
        ),
    );
    let r = app.login("shape@example.com", PASSWORD).await;
    let body = conforms(
        "login",
        &r,
        StatusCode::OK,
        success_msg(
            "Login successful",
            json!({ "user": auth_user, "token": "str" }),
        ),
    );
    let token = body["data"]["token"].as_str().unwrap().to_owned();
    let r = app.get("/api/auth/me", Some(&token)).await;
    conforms(
        "me",
        &r,
        StatusCode::OK,
        success(
            json!({ "user": { "id": "int", "email": "str", "name": "str", "role": "str",
            "phone": "str?", "created_at": "iso" } }),
        ),
    );
    let r = app.get("/api/users/profile", Some(&token)).await;
    conforms(
        "profile",
        &r,
        StatusCode::OK,
        success(
            json!({ "user": { "id": "int", "email": "str", "name": "str", "phone": "str?",
            "role": "str", "created_at": "iso" } }),
        ),
    );
    let r = app
        .put(
            "/api/users/profile",
            Some(&token),
            json!({ "name": "Shape Tested", "phone": "9876543210" }),
        )
        .await;
    conforms(
        "profile update",
        &r,
        StatusCode::OK,
        success_msg(
            "Profile updated successfully",
            json!({ "user": { "id": "int", "email": "str", "name": "str", "phone": "str",
                "role": "str" } }),
        ),
    );
    let address = json!({ "id": "int", "userId": "int", "label": "str", "street": "str",
        "city": "str", "state": "str", "zipCode": "str", "country": "str", "phone": "str",
        "isDefault": "bool", "createdAt": "iso", "updatedAt": "iso" });
    let fields = json!({ "label": "Home", "street": "1 MG Road", "city": "Pune", "state": "MH",
        "zipCode": "411001", "phone": "9876543210" });
    let r = app
        .post("/api/users/addresses", Some(&token), fields.clone())
        .await;
    let body = conforms(
        "address create",
        &r,
        StatusCode::CREATED,
        success_msg("Address added successfully", json!({ "address": address })),
    );
    let id = body["data"]["address"]["id"].as_i64().unwrap();
    let r = app.get("/api/users/addresses", Some(&token)).await;
    conforms(
        "addresses",
        &r,
        StatusCode::OK,
        success(json!({ "addresses": [address] })),
    );
    let path = format!("/api/users/addresses/{id}");
    for method in [Method::PUT, Method::PATCH] {
        let r = app
            .call(method.clone(), &path, Some(&token), Some(fields.clone()))
            .await;
        conforms(
            &format!("address {method}"),
            &r,
            StatusCode::OK,
            success_msg(
                "Address updated successfully",
                json!({ "address": address }),
            ),
        );
    }
    let r = app
        .call(Method::PUT, &format!("{path}/default"), Some(&token), None)
        .await;
    conforms(
        "default address",
        &r,
        StatusCode::OK,
        success_msg("Default address updated", Value::Null),
    );
    let r = app.delete(&path, Some(&token)).await;
    conforms(
        "address delete",
        &r,
        StatusCode::OK,
        success_msg("Address deleted successfully", Value::Null),
    );
    let r = app
        .post("/api/auth/refresh", None, json!({ "token": token }))
        .await;
    let body = conforms(
        "refresh",
        &r,
        StatusCode::OK,
        success(json!({ "token": "str" })),
    );
    let fresh = body["data"]["token"].as_str().unwrap().to_owned();
    let r = app.post("/api/auth/logout", Some(&fresh), json!({})).await;
    conforms(
        "logout",
        &r,
        StatusCode::OK,
        success_msg("Logout successful", Value::Null),
    );
    // Errors: the shared envelope, validation errors as express-validator items.
    let r = app.post("/api/auth/register", None, json!({})).await;
    conforms(
        "register error",
        &r,
        StatusCode::BAD_REQUEST,
        // `value` is not echoed (it would repeat passwords): docs/compatibility.md.
        json!({ "success": false, "message": "str", "errors": [{ "type": "field",
            "msg": "str", "path": "str", "location": "body" }] }),
    );
    let r = app.get("/api/nowhere", None).await;
    conforms(
        "unknown route",
        &r,
        StatusCode::NOT_FOUND,
        json!({ "success": false, "message": "Route not found" }),
    );
    let r = app.get("/health", None).await;
    conforms(
        "health",
        &r,
        StatusCode::OK,
        json!({ "status": "healthy", "service": "str", "timestamp": "iso", "uptime": "num" }),
    );
}

/// §5.3: user administration, with the details of a customer who has orders.
async fn user_administration_shapes(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.ecap_dangerous_operations = true).await;
    let (admin, admin_id) = app.admin().await;
    let shop = Shop {
        app: &app,
        admin: &admin,
    };
    let product = shop.product("Shape Lamp", 12.5, 50).await;
    let (customer, customer_id) = app.customer("details@example.com").await;
    let first = shop.order(&customer, &product, 2).await;
    shop.order(&customer, &product, 1).await;

    let row = json!({ "id": "int", "email": "str", "name": "str", "phone": "str?", "role": "str",
        "created_at": "iso", "updated_at": "iso" });
    let r = app.get("/api/users", Some(&admin)).await;
    conforms(
        "user list",
        &r,
        StatusCode::OK,
        success(
            json!({ "users": [{ "id": "int", "email": "str", "name": "str", "phone": "str?",
            "role": "str", "createdAt": "iso", "orderCount": "int", "totalSpent": "num" }],
            "pagination": pagination() }),
        ),
    );
    let r = app
        .post(
            "/api/users",
            Some(&admin),
            json!({ "name": "Made By Admin", "email": "made@example.com", "password": PASSWORD,
                "role": "merchant", "phone": "9876543210" }),
        )
        .await;
    let made = conforms(
        "user create",
        &r,
        StatusCode::CREATED,
        success_msg(
            "User created successfully",
            json!({ "user": { "id": "int", "email": "str", "name": "str", "phone": "str?",
                "role": "merchant", "createdAt": "iso" } }),
        ),
    )["data"]["user"]["id"]
        .as_i64()
        .unwrap();
    let r = app
        .get(&format!("/api/users/{customer_id}"), Some(&admin))
        .await;
    conforms("user", &r, StatusCode::OK, success(json!({ "user": row })));

    // Every order of the customer, items as the original's rows.
    let r = app
        .get(&format!("/api/users/{customer_id}/details"), Some(&admin))
        .await;
    let body = conforms(
        "user details",
        &r,
        StatusCode::OK,
        success(json!({
            "user": { "id": "int", "name": "str", "email": "str", "phone": "str?", "role": "str",
                "createdAt": "iso", "updatedAt": "iso" },
            "statistics": { "totalOrders": "int", "completedOrders": "int",
                "cancelledOrders": "int", "totalSpent": "num", "avgOrderValue": "num" },
            "orders": [{ "id": "int", "totalAmount": "num", "status": "str", "paymentMethod": "str",
                "shippingAddress": "any", "items": [{ "product_id": "str", "product_name": "str",
                "quantity": "int", "price": "str", "subtotal": "str" }],
                "createdAt": "iso", "updatedAt": "iso" }],
            "pagination": pagination(),
        })),
    );
    let orders = body["data"]["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 2);
    assert_eq!(orders[1]["id"], first, "newest first");
    assert_eq!(orders[1]["items"][0]["product_name"], "Shape Lamp");
    assert_eq!(orders[1]["items"][0]["price"], "12.50");
    assert_eq!(orders[1]["items"][0]["subtotal"], "25.00");
    assert_eq!(body["data"]["statistics"]["totalOrders"], 2);
    // A page at a time for customers with many orders; the statistics stay whole.
    let r = app
        .get(
            &format!("/api/users/{customer_id}/details?limit=1&page=2"),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["orders"][0]["id"], first);
    assert_eq!(
        r.body["data"]["pagination"],
        json!({ "page": 2, "limit": 1, "total": 2, "pages": 2 })
    );
    assert_eq!(r.body["data"]["statistics"]["totalOrders"], 2);
    for bad in ["limit=0", "limit=1001", "page=0", "limit=x"] {
        let r = app
            .get(
                &format!("/api/users/{customer_id}/details?{bad}"),
                Some(&admin),
            )
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST);
    }

    let user = |suffix: &str| format!("/api/users/{made}{suffix}");
    let delete_all = json!({ "deletedCount": "int", "deletedUsers": [{ "id": "int", "name": "str",
        "role": "str" }], "timestamp": "iso" });
    let updated = json!({ "user": row });
    run(
        &app,
        vec![
            step(
                "user PUT",
                (Method::PUT, user("")),
                &admin,
                Some(json!({ "name": "Renamed" })),
                ok_with("User updated successfully", updated.clone()),
            ),
            step(
                "user PATCH",
                (Method::PATCH, user("")),
                &admin,
                Some(json!({ "name": "Renamed" })),
                ok_with("User updated successfully", updated.clone()),
            ),
            step(
                "role",
                (Method::PATCH, user("/role")),
                &admin,
                Some(json!({ "role": "customer" })),
                ok_with("User role updated successfully", updated),
            ),
            step(
                "user delete",
                (Method::DELETE, user("")),
                &admin,
                None,
                ok_with(
                    "User \"Renamed\" and all associated data deleted successfully",
                    json!({ "deletedUser": { "id": "int", "name": "str" },
                        "deletedOrders": "int", "timestamp": "iso" }),
                ),
            ),
            step(
                "delete all",
                (Method::DELETE, "/api/users/all".into()),
                &admin,
                Some(json!({ "includeAdmins": false })),
                ok_with("Successfully deleted 1 user(s)", delete_all),
            ),
            step(
                "delete all, nobody left",
                (Method::DELETE, "/api/users/all".into()),
                &admin,
                Some(json!({ "includeAdmins": false })),
                ok_with("No users to delete", json!({ "deletedCount": 0 })),
            ),
        ],
    )
    .await;
    assert_eq!(
        app.get(&format!("/api/users/{admin_id}"), Some(&admin))
            .await
            .status,
        StatusCode::OK
    );
}

/// The platform and its admin, with helpers for the catalog and order families.
struct Shop<'a> {
    app: &'a TestApp,
    admin: &'a str,
}

impl Shop<'_> {
    async fn product(&self, name: &str, price: f64, stock: i64) -> String {
        let r = self
            .app
            .post(
                "/api/products",
                Some(self.admin),
                json!({ "name": name, "description": format!("{name} for the shape tests"),
                    "price": price, "inventory": stock, "category": "home" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["data"]["product"]["_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn order(&self, token: &str, product: &str, quantity: i64) -> i64 {
        let r = self
            .app
            .post(
                "/api/orders",
                Some(token),
                json!({ "items": [{ "productId": product, "quantity": quantity }],
                    "paymentMethod": "cod",
                    "shippingAddress": { "street": "1 MG Road", "city": "Pune", "zipCode": "411001" } }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["data"]["order"]["id"].as_i64().unwrap()
    }

    async fn status(&self, id: i64, status: &str) -> common::Resp {
        self.app
            .put(
                &format!("/api/orders/{id}/status"),
                Some(self.admin),
                json!({ "status": status }),
            )
            .await
    }

    async fn deliver(&self, id: i64) {
        for s in ["processing", "shipped", "out_for_delivery", "delivered"] {
            assert_eq!(self.status(id, s).await.status, StatusCode::OK);
        }
    }
}

fn product_template() -> Value {
    json!({ "_id": "str", "name": "str", "description": "str", "price": "num", "inventory": "int",
        "category": "str", "images": "arr", "rating": { "average": "num", "count": "int" },
        "isActive": "bool", "tags": "arr", "createdAt": "iso", "updatedAt": "iso", "__v": "int" })
}

fn review_template() -> Value {
    json!({ "_id": "str", "userId": "int", "userName": "str", "rating": "int", "comment": "str",
        "createdAt": "iso" })
}

/// §6 and §6.1: products (with their reviews), inventory, categories.
async fn catalog_shapes(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _) = app.admin().await;
    let shop = Shop {
        app: &app,
        admin: &admin,
    };
    let r = app
        .post(
            "/api/products",
            Some(&admin),
            json!({ "name": "Shape Kettle", "description": "Boils water", "price": 24.5,
                "inventory": 10, "category": "home", "tags": ["kitchen"] }),
        )
        .await;
    let body = conforms(
        "product create",
        &r,
        StatusCode::CREATED,
        success_msg(
            "Product created successfully",
            json!({ "product": product_template() }),
        ),
    );
    let id = body["data"]["product"]["_id"].as_str().unwrap().to_owned();
    // Two delivered orders: one reviewed through the orders route, one
    // through the product route (the caller's own order).
    let (customer, _) = app.customer("reviewer@example.com").await;
    let first = shop.order(&customer, &id, 1).await;
    let second = shop.order(&customer, &id, 1).await;
    shop.deliver(first).await;
    shop.deliver(second).await;
    let mut with_reviews = product_template();
    with_reviews["reviews"] = json!([review_template()]);
    let r = app
        .post(
            &format!("/api/orders/{first}/review"),
            Some(&customer),
            json!({ "productId": id, "rating": 5, "comment": "Fast", "userName": "Rev" }),
        )
        .await;
    conforms(
        "review through the order",
        &r,
        StatusCode::CREATED,
        success_msg(
            "Review submitted successfully",
            json!({ "product": with_reviews }),
        ),
    );
    let r = app
        .post(
            &format!("/api/products/{id}/reviews"),
            Some(&customer),
            json!({ "rating": 3, "comment": "Loud", "orderId": second }),
        )
        .await;
    conforms(
        "review on the product",
        &r,
        StatusCode::CREATED,
        success_msg(
            "Review added successfully",
            json!({ "product": with_reviews }),
        ),
    );
    let r = app.get(&format!("/api/products/{id}"), None).await;
    let body = conforms(
        "product",
        &r,
        StatusCode::OK,
        success(json!({ "product": with_reviews })),
    );
    assert_eq!(
        body["data"]["product"]["rating"],
        json!({"average": 4.0, "count": 2})
    );
    assert_eq!(
        body["data"]["product"]["reviews"].as_array().unwrap().len(),
        2
    );
    // The listing embeds reviews as the original's documents did (the newest
    // few; `rating.count` says how many there are).
    let r = app.get("/api/products?limit=5", None).await;
    let body = conforms(
        "product list",
        &r,
        StatusCode::OK,
        success(json!({ "products": [product_template()], "pagination": pagination() })),
    );
    let listed = &body["data"]["products"][0];
    assert_eq!(listed["_id"], id.as_str());
    let errors = shape(listed, &with_reviews);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(listed["reviews"][0]["comment"], "Loud", "newest first");
    let other = shop.product("Shape Mug", 4.0, 3).await;
    let r = app.get("/api/products?limit=5&sort=name", None).await;
    let mug = r.body["data"]["products"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["_id"] == other.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        mug["reviews"],
        json!([]),
        "an unreviewed product lists none"
    );

    let r = app
        .put(
            &format!("/api/products/{id}"),
            Some(&admin),
            json!({ "price": 25 }),
        )
        .await;
    conforms(
        "product update",
        &r,
        StatusCode::OK,
        success_msg(
            "Product updated successfully",
            json!({ "product": product_template() }),
        ),
    );
    let r = app
        .patch(
            &format!("/api/products/{id}/inventory"),
            Some(&admin),
            json!({ "change": -2 }),
        )
        .await;
    conforms(
        "inventory",
        &r,
        StatusCode::OK,
        success(json!({ "product": product_template(), "previousInventory": 8, "change": -2 })),
    );
    let r = app.get("/api/categories", None).await;
    let body = conforms(
        "categories",
        &r,
        StatusCode::OK,
        success(json!({ "categories": ["str"] })),
    );
    assert_eq!(
        body["data"]["categories"],
        json!([
            "electronics",
            "clothing",
            "books",
            "home",
            "sports",
            "toys",
            "other"
        ])
    );
    let r = app
        .delete(&format!("/api/products/{other}"), Some(&admin))
        .await;
    conforms(
        "product delete",
        &r,
        StatusCode::OK,
        success_msg("Product deleted successfully", Value::Null),
    );
    let r = app.get("/api/products/not-an-id", None).await;
    conforms(
        "bad product id",
        &r,
        StatusCode::BAD_REQUEST,
        json!({ "success": false, "message": "Invalid product ID", "errors": "arr" }),
    );
}

fn raw_order() -> Value {
    json!({ "id": "int", "user_id": "int", "user_order_number": "int", "total_amount": "str",
        "status": "str", "payment_method": "str", "shipping_address": "str?",
        "created_at": "iso", "updated_at": "iso", "processing_at": "iso?", "shipped_at": "iso?",
        "out_for_delivery_at": "iso?", "delivered_at": "iso?", "tracking_number": "str?",
        "courier_name": "str?", "estimated_delivery": "iso?", "cancellation_reason": "str?",
        "cancellation_images": "arr", "cancellation_requested_at": "iso?",
        "cancellation_approved_by": "int?", "cancellation_approved_at": "iso?",
        "cancellation_rejected": "bool", "cancellation_rejection_reason": "str?",
        "cancellation_rejected_by": "int?", "cancellation_rejected_at": "iso?",
        "cancelled_at": "iso?", "refund_status": "str?", "refund_amount": "str?",
        "refund_processing_at": "iso?", "refunded_at": "iso?", "inventory_deducted": "bool",
        "deleted_at": "iso?", "deleted_by": "int?", "deletion_reason": "str?",
        "shippingAddress": "obj?" })
}

fn list_item_template() -> Value {
    json!({ "id": "int", "userId": "int", "userOrderNumber": "int", "totalAmount": "num",
        "status": "str", "paymentMethod": "str", "shippingAddress": "obj?",
        "items": [{ "productId": "str", "product_id": "str", "name": "str", "quantity": "int",
            "price": "num" }],
        "createdAt": "iso", "updatedAt": "iso", "processingAt": "iso?", "shippedAt": "iso?",
        "outForDeliveryAt": "iso?", "deliveredAt": "iso?", "trackingNumber": "str?",
        "courierName": "str?", "estimatedDelivery": "iso?", "cancellationReason": "str?",
        "cancellationImages": "arr", "cancellationRequestedAt": "iso?", "cancelledAt": "iso?",
        "refundStatus": "str?", "refundAmount": "num?", "deletedAt": "iso?",
        "deletionReason": "str?", "canViewDetails": "bool", "canRequestDetails": "bool" })
}

/// One request and the contract's answer to it.
struct Step<'a> {
    what: &'a str,
    method: Method,
    path: String,
    token: &'a str,
    body: Option<Value>,
    status: StatusCode,
    template: Value,
}

fn step<'a>(
    what: &'a str,
    (method, path): (Method, String),
    token: &'a str,
    body: Option<Value>,
    (status, template): (StatusCode, Value),
) -> Step<'a> {
    Step {
        what,
        method,
        path,
        token,
        body,
        status,
        template,
    }
}

/// Sends the steps in turn, checking each answer; returns the bodies.
async fn run(app: &TestApp, steps: Vec<Step<'_>>) -> Vec<Value> {
    let mut out = Vec::new();
    for s in steps {
        let r = app.call(s.method, &s.path, Some(s.token), s.body).await;
        out.push(conforms(s.what, &r, s.status, s.template));
    }
    out
}

fn ok_with(message: &str, data: Value) -> (StatusCode, Value) {
    (StatusCode::OK, success_msg(message, data))
}

/// §7.1 and §7.2: the order routes, the detail requests, sync and the
/// soft-delete/restoration routes.
async fn order_shapes(backend: Backend) {
    use Method as M;
    let app = spawn_app(backend).await;
    let (admin, _) = app.admin().await;
    let shop = Shop {
        app: &app,
        admin: &admin,
    };
    let product = shop.product("Shape Rug", 80.25, 100).await;
    let (customer, _) = app.customer("orders.shape@example.com").await;
    let (a, c) = (admin.as_str(), customer.as_str());
    let raw_items = json!([{ "product_id": "str", "product_name": "str", "quantity": "int",
        "price": "str", "subtotal": "str" }]);
    let created = run(
        &app,
        vec![step(
            "order create",
            (M::POST, "/api/orders".into()),
            c,
            Some(json!({ "items": [{ "productId": product, "quantity": 2 }],
                "paymentMethod": "upi",
                "shippingAddress": { "street": "1 MG Road", "city": "Pune", "zipCode": "411001" } })),
            (
                StatusCode::CREATED,
                success_msg(
                    "Order created successfully",
                    json!({ "order": { "id": "int", "userId": "int", "userOrderNumber": "int",
                        "totalAmount": "num", "status": "pending", "paymentMethod": "upi",
                        "shippingAddress": "obj", "items": [{ "id": "int", "order_id": "int",
                        "product_id": "str", "product_name": "str", "quantity": "int",
                        "price": "str", "subtotal": "str", "created_at": "iso" }],
                        "createdAt": "iso", "updatedAt": "iso" } }),
                ),
            ),
        )],
    )
    .await;
    let id = created[0]["data"]["order"]["id"].as_i64().unwrap();
    let other = shop.order(c, &product, 1).await;
    let list = success(json!({ "orders": [list_item_template()], "pagination": pagination() }));
    let mut full = raw_order();
    full["items"] = raw_items;
    let raw = json!({ "order": raw_order() });
    let request_row = json!({ "id": "int", "order_id": "int", "user_id": "int", "reason": "str",
        "other_reason": "str?", "status": "str", "admin_id": "int?", "admin_note": "str?",
        "created_at": "iso", "updated_at": "iso" });
    let o = |suffix: &str| format!("/api/orders/{id}{suffix}");
    let bodies = run(
        &app,
        vec![
            step("order list (customer)", (M::GET, "/api/orders".into()), c, None, (StatusCode::OK, list.clone())),
            step("order list (admin)", (M::GET, "/api/orders".into()), a, None, (StatusCode::OK, list)),
            step("order", (M::GET, o("")), c, None, (StatusCode::OK, success(json!({ "order": full })))),
            step(
                "status",
                (M::PUT, o("/status")),
                a,
                Some(json!({ "status": "processing" })),
                ok_with("Order status updated to processing", raw.clone()),
            ),
            step(
                "tracking",
                (M::GET, o("/tracking")),
                c,
                None,
                (StatusCode::OK, success(json!({ "tracking": { "orderId": "int", "status": "str",
                    "trackingNumber": "str?", "courierName": "str?", "estimatedDelivery": "iso?",
                    "timeline": [{ "status": "str", "timestamp": "iso", "label": "str" }] } }))),
            ),
            step(
                "cancel request",
                (M::POST, o("/cancel-request")),
                c,
                Some(json!({ "reason": "Changed my mind" })),
                ok_with(
                    "Cancellation request submitted successfully. Our team will review it within 24-48 hours.",
                    raw.clone(),
                ),
            ),
            step(
                "approve cancel",
                (M::PUT, o("/approve-cancel")),
                a,
                Some(json!({})),
                ok_with(
                    "Cancellation approved successfully. Refund will be processed within 5-7 business days.",
                    raw.clone(),
                ),
            ),
            step(
                "second cancel request",
                (M::POST, format!("/api/orders/{other}/cancel-request")),
                c,
                Some(json!({ "reason": "Ordered by mistake" })),
                (StatusCode::OK, json!({ "success": true })),
            ),
            step(
                "reject cancel",
                (M::PUT, format!("/api/orders/{other}/reject-cancel")),
                a,
                Some(json!({ "rejectionReason": "Already packed" })),
                ok_with(
                    "Cancellation request rejected. Order will continue processing.",
                    raw.clone(),
                ),
            ),
            // Detail requests on the cancelled order.
            step(
                "detail request",
                (M::POST, o("/detail-request")),
                c,
                Some(json!({ "reason": "Tax / accounting" })),
                (
                    StatusCode::CREATED,
                    success_msg("Request submitted", json!({ "request": request_row })),
                ),
            ),
            step(
                "detail request (latest)",
                (M::GET, o("/detail-request")),
                c,
                None,
                (StatusCode::OK, success(json!({ "request": { "id": "int", "reason": "str",
                    "other_reason": "str?", "status": "pending", "admin_note": "str?",
                    "created_at": "iso", "updated_at": "iso" } }))),
            ),
        ],
    )
    .await;
    let request = bodies[bodies.len() - 2]["data"]["request"]["id"]
        .as_i64()
        .unwrap();
    let mut listed = request_row.clone();
    listed["order_status"] = json!("str");
    listed["cancelled_at"] = json!("iso?");
    listed["deleted_at"] = json!("iso?");
    let other_path = |suffix: &str| format!("/api/orders/{other}{suffix}");
    let bodies = run(
        &app,
        vec![
            step(
                "detail requests",
                (M::GET, "/api/orders/detail-requests/list?status=pending".into()),
                a,
                None,
                (StatusCode::OK, success(json!({ "requests": [listed] }))),
            ),
            step(
                "detail request decision",
                (M::PUT, format!("/api/orders/detail-requests/{request}/approve")),
                a,
                Some(json!({ "adminNote": "ok" })),
                ok_with("Request approved", json!({ "request": request_row })),
            ),
            step(
                "sync",
                (M::POST, "/api/orders/sync-inventory".into()),
                a,
                Some(json!({})),
                ok_with(
                    "Inventory sync completed",
                    json!({ "synced": "int", "skippedCount": "int", "skippedOrderIds": "arr",
                        "errors": "arr" }),
                ),
            ),
            step(
                "undo sync",
                (M::POST, "/api/orders/undo-sync-inventory".into()),
                a,
                Some(json!({})),
                ok_with(
                    "Undo sync completed. Inventory restored for previously synced orders. You can run sync-inventory again if needed.",
                    json!({ "restoredOrderCount": "int", "errors": "arr" }),
                ),
            ),
            // §7.2: the customer's own list, soft delete and restoration.
            step(
                "active",
                (M::GET, "/api/orders/active".into()),
                c,
                None,
                (StatusCode::OK, json!({ "success": true, "orders": [list_item_template()],
                    "pagination": pagination(),
                    "data": { "orders": "arr", "pagination": pagination() } })),
            ),
            step(
                "soft delete",
                (M::DELETE, other_path("/soft")),
                c,
                None,
                ok_with(
                    "Order deleted. You can request restoration within 30 days.",
                    json!({ "orderId": "any", "deletionExpiresAt": "iso" }),
                ),
            ),
            step(
                "deleted",
                (M::GET, "/api/orders/deleted".into()),
                c,
                None,
                (StatusCode::OK, success(json!({ "orders": [list_item_template()] }))),
            ),
            step(
                "restore request",
                (M::POST, other_path("/restore-request")),
                c,
                Some(json!({ "reason": "I need it for my records" })),
                ok_with(
                    "Restoration request submitted. An admin will review it shortly.",
                    json!({ "orderId": "any", "requestedAt": "iso" }),
                ),
            ),
            step(
                "restoration requests",
                (M::GET, "/api/orders/restoration-requests".into()),
                a,
                None,
                (StatusCode::OK, success(json!({ "requests": ["obj"] }))),
            ),
            step(
                "restoration approve",
                (M::POST, other_path("/restoration/approve")),
                a,
                Some(json!({})),
                ok_with("Order restored successfully", json!({ "order": "obj" })),
            ),
            step(
                "cleanup",
                (M::POST, "/api/orders/cleanup/expired".into()),
                a,
                Some(json!({})),
                (StatusCode::OK, json!({ "success": true, "message": "str",
                    "data": { "deletedCount": "int" } })),
            ),
            step(
                "admin delete",
                (M::DELETE, other_path("")),
                a,
                Some(json!({ "reason": "test" })),
                ok_with("Order deleted successfully", raw),
            ),
        ],
    )
    .await;
    assert_eq!(bodies[4]["orders"], bodies[4]["data"]["orders"], "active");
}

/// §9: the analytics routes keep the original's fields.
async fn analytics_shapes(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _) = app.admin().await;
    let shop = Shop {
        app: &app,
        admin: &admin,
    };
    let product = shop.product("Shape Stool", 30.0, 10).await;
    let (customer, _) = app.customer("analytics.shape@example.com").await;
    shop.order(&customer, &product, 1).await;
    let r = app
        .post(
            "/api/analytics/track/order",
            Some(&admin),
            json!({ "orderId": "ext-1", "amount": 10.5, "items": [{ "productId": "ext-p", "quantity": 2 }] }),
        )
        .await;
    conforms(
        "track",
        &r,
        StatusCode::OK,
        success_msg("Order analytics tracked", Value::Null),
    );
    // The outbox reaches analytics within moments.
    let mut body = Value::Null;
    for _ in 0..40 {
        body = app.get("/api/analytics/dashboard", Some(&admin)).await.body;
        if body["data"]["totalOrders"] == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let r = app.get("/api/analytics/dashboard", Some(&admin)).await;
    conforms(
        "dashboard",
        &r,
        StatusCode::OK,
        success(
            json!({ "totalOrders": "int", "totalRevenue": "num", "ordersToday": "int",
            "revenueToday": "num", "topProducts": [{ "productId": "str", "sales": "int" }],
            "lastUpdated": "iso" }),
        ),
    );
    assert_eq!(body["data"]["totalOrders"], 2, "{body}");
    let r = app
        .get("/api/analytics/revenue?period=30d", Some(&admin))
        .await;
    let body = conforms(
        "revenue",
        &r,
        StatusCode::OK,
        success(
            json!({ "period": "30d", "revenue": [{ "date": "str", "revenue": "num",
            "orders": "int" }] }),
        ),
    );
    assert_eq!(body["data"]["revenue"].as_array().unwrap().len(), 30);
    let r = app
        .post("/api/analytics/reset/daily", Some(&admin), json!({}))
        .await;
    conforms(
        "reset",
        &r,
        StatusCode::OK,
        success_msg("Daily counters reset", Value::Null),
    );
}

ecap_core::on_every_backend!(
    auth_and_profile_shapes,
    user_administration_shapes,
    catalog_shapes,
    order_shapes,
    analytics_shapes,
);
