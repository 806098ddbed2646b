//! Hostile input (issue 14 #3): a table of requests an attacker or a broken
//! client sends to every route family — megabyte strings, NUL and control
//! characters, invalid UTF-8, JSON nested 10,000 deep, numbers like 1e309 and
//! -0, integer overflow, duplicate keys, wrong content types, SQL and LIKE
//! metacharacters, path traversal, huge `page`/`limit`, oversized headers.
//! Each must get a clear 4xx in the JSON error shape (or, for searches, a
//! correct answer that matches literally), change nothing, and leave the
//! server answering. Runs on every database (PostgreSQL refuses NUL in text,
//! MariaDB and SQLite do not: the answer must not depend on the database).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Resp, TestApp, spawn_app};
use ecap_core::db::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// One hostile request.
struct Case {
    what: &'static str,
    method: Method,
    path: String,
    /// Who sends it.
    who: Who,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    /// Extra header (name, value).
    header: Option<(&'static str, String)>,
    expect: Expect,
}

#[derive(Clone, Copy)]
enum Who {
    Anonymous,
    Customer,
    Admin,
}

#[derive(Clone, Copy, Debug)]
enum Expect {
    /// This exact 4xx, in the JSON error shape.
    Status(u16),
    /// Any 4xx in the JSON error shape (the family of the error is what matters).
    Refused,
    /// A 200 whose list holds nothing (a search that must match literally).
    EmptyList(&'static str),
    /// Whatever answers, not a file from outside the media store: a 4xx, or
    /// (when the client resolved the dot segments first) the app's page.
    NoSystemFile,
}

fn case(what: &'static str, method: Method, path: impl Into<String>, who: Who) -> Case {
    Case {
        what,
        method,
        path: path.into(),
        who,
        content_type: None,
        body: Vec::new(),
        header: None,
        expect: Expect::Refused,
    }
}

impl Case {
    fn json(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.content_type = Some("application/json");
        self.body = body.into();
        self
    }
    fn typed(mut self, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        self.content_type = Some(content_type);
        self.body = body.into();
        self
    }
    fn header(mut self, name: &'static str, value: String) -> Self {
        self.header = Some((name, value));
        self
    }
    fn expect(mut self, e: Expect) -> Self {
        self.expect = e;
        self
    }
}

fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// What the data set looks like; equal before and after means nothing changed.
async fn fingerprint(app: &TestApp, admin: &str) -> Value {
    let users = app.get("/api/users?limit=1000", Some(admin)).await;
    let products = app.get("/api/products?limit=1000", Some(admin)).await;
    let orders = app.get("/api/orders?limit=1000", Some(admin)).await;
    let categories = app.get("/api/categories", Some(admin)).await;
    let pick = |r: &Resp, key: &str| {
        let mut list = r.body["data"][key].clone();
        if let Some(items) = list.as_array_mut() {
            for item in items.iter_mut() {
                if let Some(o) = item.as_object_mut() {
                    // Fields a read may refresh by itself.
                    o.remove("lastLogin");
                    o.remove("last_login");
                }
            }
        }
        list
    };
    json!({
        "users": pick(&users, "users"),
        "products": pick(&products, "products"),
        "orders": pick(&orders, "orders"),
        "categories": categories.body["data"],
    })
}

async fn hostile_requests_are_refused_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _) = app.admin().await;
    let (customer, customer_id) = app.customer("hostile@example.com").await;
    let r = app
        .post(
            "/api/products",
            Some(&admin),
            json!({"name": "Plain Kettle", "description": "A kettle for the hostile tests",
                "price": 20.0, "inventory": 5, "category": "home"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let product = r.body["data"]["product"]["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            "/api/orders",
            Some(&customer),
            json!({"items": [{"productId": product, "quantity": 1}], "paymentMethod": "credit_card",
                "shippingAddress": {"street": "1 Main St", "city": "Pune", "state": "MH",
                    "zipCode": "411001", "country": "India"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let order = r.body["data"]["order"]["id"].as_i64().unwrap();

    let mb = "x".repeat(1024 * 1024 + 16);
    let order_body = |item: &str| {
        format!(
            r#"{{"items":[{item}],"paymentMethod":"credit_card","shippingAddress":{{"street":"1 Main St","city":"Pune","state":"MH","zipCode":"411001","country":"India"}}}}"#
        )
    };
    use Method as M;
    use Who::*;
    let cases = vec![
        // ---- accounts
        case("1 MB name", M::POST, "/api/auth/register", Anonymous)
            .json(format!(r#"{{"name":"{mb}","email":"big@example.com","password":"Secret1!"}}"#))
            .expect(Expect::Status(413)),
        case("NUL in a name", M::POST, "/api/auth/register", Anonymous)
            .json(r#"{"name":"Nul\u0000Name","email":"nul@example.com","password":"Secret1!"}"#)
            .expect(Expect::Status(400)),
        case("control character in an e-mail", M::POST, "/api/auth/register", Anonymous)
            .json(r#"{"name":"Ctl","email":"ctl\u0007@example.com","password":"Secret1!"}"#)
            .expect(Expect::Status(400)),
        case("invalid UTF-8", M::POST, "/api/auth/register", Anonymous)
            .json(b"{\"name\":\"\xff\xfe\",\"email\":\"utf@example.com\",\"password\":\"Secret1!\"}".to_vec())
            .expect(Expect::Status(400)),
        case("JSON nested 10,000 deep", M::POST, "/api/auth/register", Anonymous)
            .json(format!(r#"{{"name":{},"email":"deep@example.com","password":"Secret1!"}}"#, nested(10_000)))
            .expect(Expect::Status(400)),
        case("duplicate keys", M::POST, "/api/auth/login", Anonymous)
            .json(r#"{"email":"hostile@example.com","email":"admin@example.com","password":"Secret1!"}"#)
            .expect(Expect::Status(400)),
        case("a text/plain body", M::POST, "/api/auth/login", Anonymous)
            .typed("text/plain", r#"{"email":"hostile@example.com","password":"Secret1!"}"#)
            .expect(Expect::Status(415)),
        case("an XML body", M::POST, "/api/auth/register", Anonymous)
            .typed("application/xml", "<user><name>x</name></user>")
            .expect(Expect::Status(415)),
        case("1e309 as an e-mail", M::POST, "/api/auth/login", Anonymous)
            .json(r#"{"email":1e309,"password":"Secret1!"}"#)
            .expect(Expect::Status(400)),
        case("-0 as a password", M::POST, "/api/auth/register", Anonymous)
            .json(r#"{"name":"Zero","email":"zero@example.com","password":-0}"#)
            .expect(Expect::Status(400)),
        case("a 64 KB header", M::GET, "/api/auth/me", Customer)
            .header("x-filler", "a".repeat(64 * 1024))
            .expect(Expect::Status(431)),
        case("NUL in a profile name", M::PUT, "/api/users/profile", Customer)
            .json(r#"{"name":"Evil\u0000"}"#)
            .expect(Expect::Status(400)),
        case("1 MB profile name", M::PUT, "/api/users/profile", Customer)
            .json(format!(r#"{{"name":"{mb}"}}"#))
            .expect(Expect::Status(413)),
        case("control characters in an address", M::POST, "/api/users/addresses", Customer)
            .json(r#"{"street":"1\u001bMain","city":"Pune","state":"MH","zipCode":"411001","country":"India"}"#)
            .expect(Expect::Status(400)),
        case("user id past i64", M::GET, "/api/users/18446744073709551616", Admin)
            .expect(Expect::Status(400)),
        case("negative limit on users", M::GET, "/api/users?limit=-5", Admin)
            .expect(Expect::Status(400)),
        case("huge page on users", M::GET, "/api/users?page=99999999999999999999", Admin)
            .expect(Expect::Status(400)),
        case("SQL in the user search", M::GET, "/api/users?search=%27%20OR%20%271%27%3D%271", Admin)
            .expect(Expect::EmptyList("users")),
        case("LIKE wildcards in the user search", M::GET, "/api/users?search=%25_%25", Admin)
            .expect(Expect::EmptyList("users")),
        // ---- catalog
        case("limit past i64", M::GET, "/api/products?limit=99999999999999999999", Anonymous)
            .expect(Expect::Status(400)),
        case("negative page", M::GET, "/api/products?page=-1", Anonymous)
            .expect(Expect::Status(400)),
        case("1e309 as a page", M::GET, "/api/products?page=1e309", Anonymous)
            .expect(Expect::Status(400)),
        case("SQL in the product search", M::GET, "/api/products?search=%27%3B%20DROP%20TABLE%20products%3B--", Anonymous)
            .expect(Expect::EmptyList("products")),
        case("LIKE wildcards in the product search", M::GET, "/api/products?search=%25%25", Anonymous)
            .expect(Expect::EmptyList("products")),
        case("NUL in the product search", M::GET, "/api/products?search=ke%00ttle", Anonymous)
            .expect(Expect::Status(400)),
        case("traversal as a product id", M::GET, "/api/products/..%2F..%2Fetc%2Fpasswd", Anonymous)
            .expect(Expect::Refused),
        case("NUL in a product id", M::GET, "/api/products/0123456789abcdef0123%00567", Anonymous)
            .expect(Expect::Status(400)),
        case("traversal in a media key", M::GET, "/media/..%2F..%2F..%2Fetc%2Fpasswd", Anonymous)
            .expect(Expect::Refused),
        case("dot segments in a media key", M::GET, "/media/products/%2e%2e/%2e%2e/%2e%2e/etc/passwd", Anonymous)
            .expect(Expect::NoSystemFile),
        case("1e309 as a price", M::POST, "/api/products", Admin)
            .json(r#"{"name":"Inf","description":"infinite price","price":1e309,"inventory":1,"category":"home"}"#)
            .expect(Expect::Status(400)),
        case("-0 as a price", M::POST, "/api/products", Admin)
            .json(r#"{"name":"Zero","description":"negative zero price","price":-0,"inventory":1,"category":"home"}"#)
            .expect(Expect::Status(400)),
        case("stock past i64", M::POST, "/api/products", Admin)
            .json(r#"{"name":"Many","description":"too many units","price":1,"inventory":9223372036854775808,"category":"home"}"#)
            .expect(Expect::Status(400)),
        case("NUL in a product name", M::POST, "/api/products", Admin)
            .json(r#"{"name":"Nul\u0000Kettle","description":"nul in the name","price":1,"inventory":1,"category":"home"}"#)
            .expect(Expect::Status(400)),
        case("1 MB description", M::POST, "/api/products", Admin)
            .json(format!(r#"{{"name":"Long","description":"{mb}","price":1,"inventory":1,"category":"home"}}"#))
            .expect(Expect::Status(413)),
        case("stock change past i64", M::PATCH, format!("/api/products/{product}/inventory"), Admin)
            .json(r#"{"quantity":-9223372036854775809,"operation":"subtract"}"#)
            .expect(Expect::Status(400)),
        case("NUL in a category name", M::POST, "/api/categories", Admin)
            .json(r#"{"name":"gar\u0000den"}"#)
            .expect(Expect::Status(400)),
        case("1e309 as a rating", M::POST, format!("/api/products/{product}/reviews"), Customer)
            .json(r#"{"rating":1e309,"comment":"infinitely good"}"#)
            .expect(Expect::Status(400)),
        // ---- orders
        case("quantity past u64", M::POST, "/api/orders", Customer)
            .json(order_body(&format!(r#"{{"productId":"{product}","quantity":18446744073709551616}}"#)))
            .expect(Expect::Status(400)),
        case("traversal as a product id in an order", M::POST, "/api/orders", Customer)
            .json(order_body(r#"{"productId":"../../etc/passwd","quantity":1}"#))
            .expect(Expect::Status(400)),
        case("items nested 10,000 deep", M::POST, "/api/orders", Customer)
            .json(order_body(&nested(10_000)))
            .expect(Expect::Status(400)),
        case("duplicate items keys", M::POST, "/api/orders", Customer)
            .json(format!(r#"{{"items":[],"items":[{{"productId":"{product}","quantity":1}}],"paymentMethod":"credit_card","shippingAddress":{{"street":"1 Main St","city":"Pune","state":"MH","zipCode":"411001","country":"India"}}}}"#))
            .expect(Expect::Status(400)),
        case("NUL in a shipping address", M::POST, "/api/orders", Customer)
            .json(format!(r#"{{"items":[{{"productId":"{product}","quantity":1}}],"paymentMethod":"credit_card","shippingAddress":{{"street":"1\u0000Main","city":"Pune","state":"MH","zipCode":"411001","country":"India"}}}}"#))
            .expect(Expect::Status(400)),
        case("order id past i64", M::GET, "/api/orders/99999999999999999999999", Customer)
            .expect(Expect::Status(400)),
        case("negative order id", M::GET, "/api/orders/-1", Customer)
            .expect(Expect::Refused),
        case("NUL as a status", M::PUT, format!("/api/orders/{order}/status"), Admin)
            .json(r#"{"status":"shipped\u0000"}"#)
            .expect(Expect::Status(400)),
        case("SQL in the order search", M::GET, "/api/orders?search=%27%20OR%20%271%27%3D%271", Admin)
            .expect(Expect::EmptyList("orders")),
        case("LIKE wildcards in the order search", M::GET, "/api/orders?search=%25", Admin)
            .expect(Expect::EmptyList("orders")),
        case("huge limit on orders", M::GET, "/api/orders?limit=100000000000", Admin)
            .expect(Expect::Status(400)),
        case("a multipart body where JSON is expected", M::POST, format!("/api/orders/{order}/cancel-request"), Customer)
            .typed("multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"reason\"\r\n\r\nx\r\n--x--\r\n")
            .expect(Expect::Status(415)),
        // ---- analytics
        case("an impossible date", M::GET, "/api/analytics/revenue?period=custom&from=9999999-99-99&to=2026-01-01", Admin)
            .expect(Expect::Status(400)),
        case("traversal as a time zone", M::GET, "/api/analytics/revenue?tz=..%2F..%2Fetc%2Fpasswd", Admin)
            .expect(Expect::Status(400)),
        case("1e309 as a limit", M::GET, "/api/analytics/top-products?limit=1e309", Admin)
            .expect(Expect::Status(400)),
        case("1e309 as an amount", M::POST, "/api/analytics/track/order", Admin)
            .json(r#"{"orderId":"ext-1","totalAmount":1e309,"items":[]}"#)
            .expect(Expect::Status(400)),
    ];
    assert!(cases.len() >= 40, "the table holds {} cases", cases.len());

    let before = fingerprint(&app, &admin).await;
    let mut failures = Vec::new();
    for c in &cases {
        let mut req = app
            .client
            .request(c.method.clone(), format!("{}{}", app.base, c.path));
        match c.who {
            Who::Anonymous => {}
            Who::Customer => req = req.bearer_auth(&customer),
            Who::Admin => req = req.bearer_auth(&admin),
        }
        if let Some(t) = c.content_type {
            req = req.header("content-type", t).body(c.body.clone());
        }
        if let Some((name, value)) = &c.header {
            req = req.header(*name, value.as_str());
        }
        let r = Resp::of(req.send().await.expect("the server answers")).await;
        let error_shape = r.body["success"] == json!(false) && r.body["message"].is_string();
        let ok = match c.expect {
            Expect::Status(code) => r.status.as_u16() == code && error_shape,
            Expect::Refused => r.status.is_client_error() && error_shape,
            Expect::NoSystemFile => {
                !r.body.to_string().contains("root:")
                    && (r.status.is_client_error() || r.status == StatusCode::OK)
            }
            Expect::EmptyList(key) => {
                r.status == StatusCode::OK
                    && r.body["data"][key].as_array().is_some_and(Vec::is_empty)
            }
        };
        if !ok {
            let text = r.body.to_string();
            failures.push(format!(
                "{} ({} {}): expected {:?}, got {} {}",
                c.what,
                c.method,
                c.path.chars().take(80).collect::<String>(),
                c.expect,
                r.status,
                text.chars().take(200).collect::<String>()
            ));
        }
        let health = app.get("/health", None).await;
        assert_eq!(
            health.status,
            StatusCode::OK,
            "the server stopped answering after {}",
            c.what
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(
        fingerprint(&app, &admin).await,
        before,
        "a refused request changed data"
    );
    // The customer is still who they were (no request changed their account).
    let me = app.get("/api/auth/me", Some(&customer)).await;
    assert_eq!(me.body["data"]["user"]["id"], customer_id, "{}", me.body);
}

ecap_core::on_every_backend!(hostile_requests_are_refused_and_change_nothing);
