//! What the original's clients read and send, checked against ecap over HTTP:
//! form-encoded bodies where the original's services took them, and, per
//! route family, the answer's shape against `API_CONTRACT.md`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{PASSWORD, SETUP_TOKEN, TestApp, assert_error, spawn_app};
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
    // The API description says so.
    let spec = app.get("/api/openapi.json", None).await.body;
    let content = &spec["paths"]["/api/orders"]["post"]["requestBody"]["content"];
    assert!(
        content["application/x-www-form-urlencoded"].is_object(),
        "{content}"
    );
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
