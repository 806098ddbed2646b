//! The OpenAPI document says what the server does (issue 14 #1): every
//! operation documents its error answers, and the bounds and values the
//! document publishes for query parameters are the ones the validators apply
//! (walked from the document itself, so a new parameter is checked too).
//! Also the regression tests of what the schemathesis runs found
//! (`scripts/fuzz.py`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestApp, spawn_app};
use ecap_core::db::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

async fn spec(app: &TestApp) -> Value {
    let r = app.get("/api/openapi.json", None).await;
    assert_eq!(r.status, StatusCode::OK);
    r.body
}

fn error_ref(response: &Value) -> &Value {
    &response["content"]["application/json"]["schema"]["$ref"]
}

#[tokio::test]
async fn every_operation_documents_its_error_answers() {
    let app = spawn_app(Backend::Sqlite).await;
    let spec = spec(&app).await;
    let mut checked = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            checked += 1;
            let responses = op["responses"].as_object().unwrap();
            let has = |s: &str| responses.contains_key(s);
            let what = format!("{method} {path}");
            let secured = op["security"]
                .as_array()
                .is_some_and(|s| !s.is_empty() && s.iter().all(|r| r != &json!({})));
            if secured {
                assert!(has("401") && has("403"), "{what}: 401/403 missing");
            }
            let path_params = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["in"] == "path"));
            if path_params {
                assert!(has("404"), "{what}: 404 missing");
                assert!(has("400"), "{what}: 400 missing");
            }
            if op.get("requestBody").is_some() {
                assert!(
                    has("400") && has("413") && has("415"),
                    "{what}: body errors missing"
                );
            }
            assert!(has("429") && has("503"), "{what}: 429/503 missing");
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        error_ref(response),
                        "#/components/schemas/Error",
                        "{what} {status}: not the error shape"
                    );
                }
            }
        }
    }
    assert!(checked >= 74, "only {checked} operations");
    // The Error schema is the type every error is serialised from.
    let error = &spec["components"]["schemas"]["Error"];
    for field in ["success", "message", "code", "errors"] {
        assert!(error["properties"].get(field).is_some(), "Error.{field}");
    }
    // And a real error matches it.
    let r = app.get("/api/auth/me", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["success"], false);
    assert!(r.body["code"].is_string() && r.body["errors"].is_array());
}

/// A query value as the document describes it, spelled for a URL.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// For every GET without path parameters: each documented integer bound is
/// accepted at the edge and refused one past it, and every documented enum
/// value is accepted (as an admin, so only the parameter can be refused).
/// Every 2xx JSON answer has the exact schema of its body (the service's
/// `responses.json`), closed to other keys, never the generic envelope; every
/// `$ref` in the document resolves. That the server keeps to these schemas is
/// what schemathesis' response checks prove in `scripts/fuzz.py`.
#[tokio::test]
async fn every_success_answer_has_an_exact_schema() {
    let app = spawn_app(Backend::Sqlite).await;
    let spec = spec(&app).await;
    let mut missing = Vec::new();
    let mut checked = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            for (status, response) in op["responses"].as_object().unwrap() {
                let Some(schema) = response["content"]
                    .get("application/json")
                    .map(|c| &c["schema"])
                else {
                    continue;
                };
                if !status.starts_with('2') {
                    continue;
                }
                checked += 1;
                let exact = schema["additionalProperties"] == json!(false)
                    && schema["properties"]["success"].is_object();
                if !exact {
                    missing.push(format!("{method} {path} {status}"));
                }
            }
        }
    }
    assert!(checked > 60, "only {checked} success answers found");
    assert!(missing.is_empty(), "no exact schema: {missing:#?}");
    // Every reference names a component that exists.
    let text = spec.to_string();
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    for (i, _) in text.match_indices("\"#/components/schemas/") {
        let rest = &text[i + 22..];
        let name = &rest[..rest.find('"').unwrap()];
        assert!(schemas.contains_key(name), "dangling $ref to {name}");
    }
}

#[tokio::test]
async fn documented_query_rules_are_the_validators_rules() {
    let app = spawn_app(Backend::Sqlite).await;
    let (admin, _) = app.admin().await;
    let spec = spec(&app).await;
    let schemas = &spec["components"]["schemas"];
    let mut probes = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        let Some(op) = item.get("get") else { continue };
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        if params.iter().any(|p| p["in"] == "path") || path.ends_with("/stream") {
            continue;
        }
        for p in params.iter().filter(|p| p["in"] == "query") {
            let name = p["name"].as_str().unwrap();
            let mut schema = p["schema"].clone();
            if let Some(r) = schema["$ref"].as_str() {
                schema = schemas[r.trim_start_matches("#/components/schemas/")].clone();
            }
            // A custom period needs from and to together: checked below.
            if matches!(name, "from" | "to") && path.starts_with("/api/analytics") {
                continue;
            }
            let mut cases: Vec<(String, bool)> = Vec::new();
            if schema["type"] == "integer" {
                if let Some(max) = schema["maximum"].as_i64() {
                    cases.push((max.to_string(), true));
                    if max < i64::MAX {
                        cases.push(((max as i128 + 1).to_string(), false));
                    }
                }
                if let Some(min) = schema["minimum"].as_i64() {
                    cases.push((min.to_string(), true));
                    cases.push(((min - 1).to_string(), false));
                }
            }
            if let Some(values) = schema["enum"].as_array() {
                // Long lists (time zones): the ends and a known name.
                let picked: Vec<&Value> = if values.len() > 20 {
                    vec![&values[0], &values[values.len() - 1]]
                } else {
                    values.iter().collect()
                };
                for v in picked {
                    cases.push((text(v), true));
                }
                cases.push(("not-a-listed-value".into(), false));
            }
            for (value, accepted) in cases {
                let encoded =
                    reqwest::Url::parse_with_params("http://x/", [(name, &value)]).unwrap();
                let url = format!("{path}?{}", encoded.query().unwrap_or_default());
                let r = app.get(&url, Some(&admin)).await;
                probes += 1;
                if accepted {
                    assert_ne!(
                        r.status,
                        StatusCode::BAD_REQUEST,
                        "{url}: documented as valid, refused: {}",
                        r.body
                    );
                } else {
                    assert_eq!(
                        r.status,
                        StatusCode::BAD_REQUEST,
                        "{url}: documented as invalid, accepted"
                    );
                }
            }
        }
    }
    assert!(probes > 60, "only {probes} probes");
}

/// Found by schemathesis: rules a schema cannot say became answers it can.
#[tokio::test]
async fn fuzzing_findings_stay_fixed() {
    let app = spawn_app(Backend::Sqlite).await;
    let (admin, _) = app.admin().await;
    let (customer, _) = app.customer("fuzz-customer@example.com").await;

    // minPrice above maxPrice: an empty page, not a 400.
    let r = app.get("/api/products?minPrice=50&maxPrice=10", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["products"], json!([]));

    // Orders: `from` after `to` is an empty page too.
    let r = app
        .get("/api/orders?from=2026-02-01&to=2026-01-01", Some(&customer))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["orders"], json!([]));

    // An addressId that is not the caller's: 404, like an unknown product.
    let r = app
        .post(
            "/api/orders",
            Some(&customer),
            json!({"items": [{"productId": "65f0c0ffee0000000000abcd", "quantity": 1}],
                   "paymentMethod": "cod", "addressId": 987654}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert_eq!(r.body["errors"][0]["path"], "addressId");

    // A form with a single `ids=` value is a list of one id.
    let r = app
        .form(
            Method::POST,
            "/api/orders/bulk-delete",
            Some(&admin),
            "ids=424242",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["failed"], 1, "{}", r.body);

    // Category names: 64 characters between blanks are fine, 65 are not,
    // whatever blanks surround them (the pattern in the document says so).
    let name = format!("  {}  ", "c".repeat(64));
    let r = app
        .post("/api/categories", Some(&admin), json!({ "name": name }))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .post(
            "/api/categories",
            Some(&admin),
            json!({ "name": "d".repeat(65) }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // External order tracking counts characters, not bytes.
    let r = app
        .post(
            "/api/analytics/track/order",
            Some(&admin),
            json!({"orderId": "é".repeat(60), "amount": 1.5, "paymentMethod": "ü".repeat(32)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // The time zones the document lists resolve; an empty one does not.
    let spec = spec(&app).await;
    let zones = spec["components"]["schemas"]["TimeZone"]["enum"]
        .as_array()
        .unwrap();
    assert!(zones.contains(&json!("Asia/Kolkata")) && zones.len() > 300);
    let r = app
        .get("/api/analytics/dashboard?tz=Asia%2FKolkata", Some(&admin))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app.get("/api/analytics/dashboard?tz=", Some(&admin)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // This session's runs (issue 14): a `page` past the published maximum is
    // a 400 naming it, not a 500 from an overflowing offset.
    let product = app
        .post(
            "/api/products",
            Some(&admin),
            json!({"name": "Fuzzed Lamp", "description": "Lit", "price": 9,
                   "inventory": 3, "category": "electronics"}),
        )
        .await;
    assert_eq!(product.status, StatusCode::CREATED, "{}", product.body);
    let pid = product.body["data"]["product"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let huge = "page=9223372036854775808";
    for path in [
        format!("/api/products/{pid}/reviews?{huge}"),
        format!("/api/products/{pid}/inventory/history?{huge}"),
        format!("/api/users/1/details?{huge}"),
        format!("/api/users?{huge}"),
        "/api/users?page=1000001".to_owned(),
    ] {
        let r = app.get(&path, Some(&admin)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.body);
        assert_eq!(r.body["errors"][0]["path"], "page", "{path}");
    }
    // An upload that is not multipart (or lacks its boundary): a JSON 400.
    let r = app
        .client
        .post(format!("{}/api/products/{pid}/images", app.base))
        .bearer_auth(&admin)
        .header("content-type", "multipart/form-data")
        .body("x")
        .send()
        .await
        .unwrap();
    let r = common::Resp::of(r).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["success"], false, "{}", r.body);
    // A category that names none: 404 naming it (categories are data).
    let r = app
        .post(
            "/api/products",
            Some(&admin),
            json!({"name": "Odd", "description": "Odd", "price": 1,
                   "inventory": 1, "category": "no-such-category"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert_eq!(r.body["errors"][0]["path"], "category");
    // Dates whose period or instant could not be written back as RFC 3339.
    let r = app
        .get(
            "/api/analytics/revenue?from=-000004-01-01&to=2026-01-01",
            Some(&admin),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.body["errors"][0]["path"], "from");
    let order = app
        .post(
            "/api/orders",
            Some(&customer),
            json!({"items": [{"productId": pid, "quantity": 1}], "paymentMethod": "cod",
                   "shippingAddress": {"street": "1 Main St", "city": "Town", "state": "ST",
                                        "zipCode": "12345"}}),
        )
        .await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);
    let oid = order.body["data"]["order"]["id"].as_i64().unwrap();
    for when in ["0000-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59"] {
        let r = app
            .put(
                &format!("/api/orders/{oid}/status"),
                Some(&admin),
                json!({"status": "processing", "estimatedDelivery": when}),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{when}: {}", r.body);
    }
    // ecap's own bulk-delete refuses a key it does not read (JSON and form).
    let r = app
        .post(
            "/api/orders/bulk-delete",
            Some(&admin),
            json!({"ids": [oid], "x-schemathesis-unknown-property": 42}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = app
        .form(
            Method::POST,
            "/api/orders/bulk-delete",
            Some(&admin),
            &format!("ids={oid}&reason=&x-schemathesis-unknown-property=42"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(
        app.get(&format!("/api/orders/{oid}"), Some(&customer))
            .await
            .status,
        StatusCode::OK,
        "nothing was deleted"
    );
    // So do the category routes (also ecap's own).
    let r = app
        .post(
            "/api/categories",
            Some(&admin),
            json!({"name": "Kites", "x-schemathesis-unknown-property": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    // A C1 control character in a form is refused as in JSON.
    let r = app
        .form(
            Method::POST,
            "/api/users/addresses",
            Some(&customer),
            "street=%C3%AC%C2%99%28&city=Pune&state=MH&zipCode=411001",
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    // A blank `userId` on the order lists is not given, as the document says.
    let r = app.get("/api/orders/active?userId=", Some(&admin)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let doc = self::spec(&app).await;
    let user_id = doc["paths"]["/api/orders/active"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "userId")
        .unwrap();
    assert!(user_id["schema"]["anyOf"].is_array(), "{user_id}");
    // Free-form JSON (a product's attributes) is described with the rule
    // the body check applies to its keys.
    let attributes = &doc["components"]["schemas"]["ProductBody"]["properties"]["attributes"];
    assert!(
        attributes["propertyNames"]["pattern"].is_string(),
        "{attributes}"
    );
    // `attributes` may be left out or null, as the document now says.
    for body in [
        json!({"name": "Plain", "description": "Plain", "price": 1, "category": "sports"}),
        json!({"name": "Null", "description": "Null", "price": 1, "category": "sports",
               "attributes": null}),
    ] {
        let r = app.post("/api/products", Some(&admin), body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body["data"]["product"]["attributes"], json!({}));
    }
    let attributes = &doc["components"]["schemas"]["ProductBody"];
    assert!(
        !attributes["required"]
            .as_array()
            .unwrap()
            .contains(&json!("attributes"))
    );
    // The long run of 2026-12-08: a whole number written with a fraction is
    // an integer in a form as in JSON; a user update's e-mail is a string,
    // not null; an external order id is any 64-bit integer (or `706.0`).
    let r = app
        .form(
            Method::POST,
            "/api/orders/bulk-delete",
            Some(&admin),
            "ids=706.0&ids=999999",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["failed"], 2, "{}", r.body);
    let r = app
        .put(
            "/api/users/1",
            Some(&admin),
            json!({"email": null, "name": "Renamed"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    for order_id in [json!(18_446_744_073_709_551_615_u64), json!(706.0)] {
        let r = app
            .post(
                "/api/analytics/track/order",
                Some(&admin),
                json!({"orderId": order_id, "amount": 1}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{order_id}: {}", r.body);
    }
    // A form body has no null (the text "null" would be a value).
    let form = &doc["components"]["schemas"]["ProfileBodyForm"];
    assert!(!form.to_string().contains("\"null\""), "{form}");
}
