//! The address book (`/api/users/addresses`): the customer's story on every
//! backend, validation, and the "exactly one default" rule under concurrency.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use common::*;
use ecap_core::db::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const FIELDS: [&str; 12] = [
    "id",
    "userId",
    "label",
    "street",
    "city",
    "state",
    "zipCode",
    "country",
    "phone",
    "isDefault",
    "createdAt",
    "updatedAt",
];

/// The six required fields with the contract's messages.
const REQUIRED: [(&str, &str); 6] = [
    ("label", "Address label is required"),
    ("street", "Street address is required"),
    ("city", "City is required"),
    ("state", "State is required"),
    ("zipCode", "ZIP code is required"),
    ("phone", "Phone number is required"),
];

fn address(label: &str) -> Value {
    json!({
        "label": label,
        "street": format!("{label} Street 1"),
        "city": "Mumbai",
        "state": "Maharashtra",
        "zipCode": "400001",
        "phone": "+91 98765 43210",
    })
}

fn id_of(a: &Value) -> i64 {
    a["id"].as_i64().unwrap_or_else(|| panic!("id: {a}"))
}

/// The caller's address book; asserts exactly one default whenever it is not empty.
async fn book(app: &TestApp, token: &str) -> Vec<Value> {
    let r = app.get("/api/users/addresses", Some(token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let list = r.body["data"]["addresses"]
        .as_array()
        .unwrap_or_else(|| panic!("data.addresses: {}", r.body))
        .clone();
    let defaults = list.iter().filter(|a| a["isDefault"] == true).count();
    let expected = usize::from(!list.is_empty());
    assert_eq!(defaults, expected, "default addresses: {list:#?}");
    if let Some(first) = list.first() {
        assert_eq!(
            first["isDefault"], true,
            "the default comes first: {list:#?}"
        );
    }
    list
}

/// Ids in list order, and the default's id.
async fn order(app: &TestApp, token: &str) -> (Vec<i64>, Option<i64>) {
    let list = book(app, token).await;
    let default = list.iter().find(|a| a["isDefault"] == true).map(id_of);
    (list.iter().map(id_of).collect(), default)
}

async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    let r = app.post("/api/users/addresses", Some(token), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["success"], true);
    assert_eq!(r.body["message"], "Address added successfully");
    r.body["data"]["address"].clone()
}

fn assert_error_msg(r: &Resp, status: StatusCode, msg: &str) {
    assert_eq!(assert_error(r, status), msg, "{}", r.body);
}

/// `a` and `b` agree on every field but those in `except`.
fn same_except(a: &Value, b: &Value, except: &[&str]) {
    for k in FIELDS.iter().filter(|k| !except.contains(k)) {
        assert_eq!(a[*k], b[*k], "field {k}: {a} vs {b}");
    }
}

// ---- the story, on every backend ------------------------------------------------------

async fn address_book_story(backend: Backend) {
    let app = spawn_app(backend).await;
    let (tok, user_id) = app.customer("books@example.com").await;
    let (other, _) = app.customer("other@example.com").await;

    assert!(book(&app, &tok).await.is_empty());

    // First address: the default, country India, every field present.
    let home = create(&app, &tok, address("Home")).await;
    let mut keys: Vec<&str> = home
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let mut want = FIELDS.to_vec();
    want.sort_unstable();
    assert_eq!(keys, want, "{home}");
    assert_eq!(home["userId"], user_id);
    assert_eq!(home["label"], "Home");
    assert_eq!(home["street"], "Home Street 1");
    assert_eq!(home["city"], "Mumbai");
    assert_eq!(home["state"], "Maharashtra");
    assert_eq!(home["zipCode"], "400001");
    assert_eq!(home["phone"], "+91 98765 43210");
    assert_eq!(home["country"], "India");
    assert_eq!(home["isDefault"], true);
    assert!(
        home["createdAt"].is_string() && home["updatedAt"].is_string(),
        "{home}"
    );
    let home_id = id_of(&home);
    assert_eq!(order(&app, &tok).await, (vec![home_id], Some(home_id)));

    // Second: not the default.
    let work = create(&app, &tok, with(address("Work"), "country", json!("Nepal"))).await;
    assert_eq!(work["isDefault"], false);
    assert_eq!(work["country"], "Nepal");
    let work_id = id_of(&work);
    assert_eq!(
        order(&app, &tok).await,
        (vec![home_id, work_id], Some(home_id))
    );

    // Third, asked to be default: the only default.
    let gym = create(&app, &tok, with(address("Gym"), "isDefault", json!(true))).await;
    assert_eq!(gym["isDefault"], true);
    let gym_id = id_of(&gym);
    // Default first, then newest.
    assert_eq!(
        order(&app, &tok).await,
        (vec![gym_id, work_id, home_id], Some(gym_id))
    );

    // One address by id.
    let r = app
        .get(&format!("/api/users/addresses/{work_id}"), Some(&tok))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let listed = book(&app, &tok).await;
    let listed_work = listed
        .iter()
        .find(|a| id_of(a) == work_id)
        .expect("work listed");
    assert_eq!(&r.body["data"]["address"], listed_work);

    // PUT needs all six fields; the first failing rule is the message.
    let work_path = format!("/api/users/addresses/{work_id}");
    let full = address("Office");
    for (field, msg) in REQUIRED {
        let r = app
            .put(&work_path, Some(&tok), without(full.clone(), field))
            .await;
        assert_error_msg(&r, StatusCode::BAD_REQUEST, msg);
        assert_eq!(r.body["errors"][0]["path"], field, "{}", r.body);
    }
    let r = app
        .put(
            &work_path,
            Some(&tok),
            without(without(full.clone(), "city"), "street"),
        )
        .await;
    assert_error_msg(&r, StatusCode::BAD_REQUEST, "Street address is required");
    assert_eq!(
        r.body["errors"].as_array().map(Vec::len),
        Some(2),
        "{}",
        r.body
    );
    let r = app
        .put(
            &work_path,
            Some(&tok),
            with(full.clone(), "label", json!("")),
        )
        .await;
    assert_error_msg(&r, StatusCode::BAD_REQUEST, "Address label is required");
    // Nothing changed by the refused PUTs.
    let r = app.get(&work_path, Some(&tok)).await;
    assert_eq!(&r.body["data"]["address"], listed_work);

    let r = app.put(&work_path, Some(&tok), full.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["message"], "Address updated successfully");
    let office = r.body["data"]["address"].clone();
    assert_eq!(office["id"], work_id);
    assert_eq!(office["label"], "Office");
    assert_eq!(office["street"], "Office Street 1");
    assert_eq!(
        office["country"], "Nepal",
        "an absent country keeps the stored one"
    );
    assert_eq!(office["isDefault"], false);
    assert_eq!(office["createdAt"], work["createdAt"]);
    assert_eq!(
        order(&app, &tok).await,
        (vec![gym_id, work_id, home_id], Some(gym_id))
    );

    // PATCH changes only what it is given.
    let home_path = format!("/api/users/addresses/{home_id}");
    let before = app.get(&home_path, Some(&tok)).await.body["data"]["address"].clone();
    let r = app
        .patch(&home_path, Some(&tok), json!({ "city": "  Pune " }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["message"], "Address updated successfully");
    let after = r.body["data"]["address"].clone();
    assert_eq!(after["city"], "Pune");
    same_except(&before, &after, &["city", "updatedAt"]);
    assert_eq!(
        app.get(&home_path, Some(&tok)).await.body["data"]["address"],
        after
    );
    assert_error_msg(
        &app.patch(&home_path, Some(&tok), json!({ "zipCode": "  " }))
            .await,
        StatusCode::BAD_REQUEST,
        "ZIP code is required",
    );
    assert_eq!(order(&app, &tok).await.1, Some(gym_id));

    // PUT /{id}/default.
    let r = app
        .call(
            Method::PUT,
            &format!("{home_path}/default"),
            Some(&tok),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["message"], "Default address updated");
    assert_eq!(
        order(&app, &tok).await,
        (vec![home_id, gym_id, work_id], Some(home_id))
    );
    // Again: still exactly one.
    let r = app
        .call(
            Method::PUT,
            &format!("{home_path}/default"),
            Some(&tok),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(order(&app, &tok).await.1, Some(home_id));

    // PATCH isDefault: true moves the default; false hands it to another one.
    let r = app
        .patch(&work_path, Some(&tok), json!({ "isDefault": true }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["address"]["isDefault"], true);
    assert_eq!(r.body["data"]["address"]["label"], "Office");
    assert_eq!(order(&app, &tok).await.1, Some(work_id));
    let r = app
        .patch(&work_path, Some(&tok), json!({ "isDefault": false }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (_, default) = order(&app, &tok).await;
    assert_ne!(default, Some(work_id));
    let r = app
        .call(
            Method::PUT,
            &format!("/api/users/addresses/{gym_id}/default"),
            Some(&tok),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(order(&app, &tok).await.1, Some(gym_id));

    // Another customer sees none of it and changes none of it.
    let snapshot = book(&app, &tok).await;
    for id in [home_id, work_id, gym_id] {
        let path = format!("/api/users/addresses/{id}");
        let o = Some(other.as_str());
        assert_error_msg(
            &app.get(&path, o).await,
            StatusCode::NOT_FOUND,
            "Address not found",
        );
        assert_error_msg(
            &app.put(&path, o, address("Stolen")).await,
            StatusCode::NOT_FOUND,
            "Address not found",
        );
        assert_error_msg(
            &app.patch(&path, o, json!({ "label": "Stolen", "isDefault": true }))
                .await,
            StatusCode::NOT_FOUND,
            "Address not found",
        );
        assert_error_msg(
            &app.call(Method::PUT, &format!("{path}/default"), o, None)
                .await,
            StatusCode::NOT_FOUND,
            "Address not found",
        );
        assert_error_msg(
            &app.delete(&path, o).await,
            StatusCode::NOT_FOUND,
            "Address not found",
        );
    }
    assert!(book(&app, &other).await.is_empty());
    assert_eq!(
        book(&app, &tok).await,
        snapshot,
        "the other customer changed nothing"
    );

    // Deleting the default makes another one the default.
    let r = app
        .delete(&format!("/api/users/addresses/{gym_id}"), Some(&tok))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["message"], "Address deleted successfully");
    let (ids, default) = order(&app, &tok).await;
    assert_eq!(ids.len(), 2);
    assert!(
        default == Some(home_id) || default == Some(work_id),
        "{default:?}"
    );
    assert_error_msg(
        &app.get(&format!("/api/users/addresses/{gym_id}"), Some(&tok))
            .await,
        StatusCode::NOT_FOUND,
        "Address not found",
    );
    assert_error_msg(
        &app.delete(&format!("/api/users/addresses/{gym_id}"), Some(&tok))
            .await,
        StatusCode::NOT_FOUND,
        "Address not found",
    );

    // Deleting a non-default keeps the default.
    let default = default.expect("a default");
    let non_default = if default == home_id { work_id } else { home_id };
    let r = app
        .delete(&format!("/api/users/addresses/{non_default}"), Some(&tok))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(order(&app, &tok).await, (vec![default], Some(default)));

    // The only address stays the default even when asked not to be.
    let path = format!("/api/users/addresses/{default}");
    let r = app
        .patch(&path, Some(&tok), json!({ "isDefault": false }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(order(&app, &tok).await, (vec![default], Some(default)));

    // Deleting the last one leaves an empty book; the next one is the default again.
    let r = app.delete(&path, Some(&tok)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(book(&app, &tok).await.is_empty());
    let again = create(
        &app,
        &tok,
        with(address("Again"), "isDefault", json!(false)),
    )
    .await;
    assert_eq!(again["isDefault"], true, "the first address is the default");
    assert_eq!(order(&app, &tok).await.1, Some(id_of(&again)));
}

// ---- validation --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation() {
    let app = spawn_app(Backend::Sqlite).await;
    let (tok, _) = app.customer("valid@example.com").await;
    let t = Some(tok.as_str());
    let existing = create(&app, &tok, address("Home")).await;
    let path = format!("/api/users/addresses/{}", id_of(&existing));

    for (field, msg) in REQUIRED {
        for bad in [json!(""), json!("   "), json!("\t\n")] {
            let body = with(address("New"), field, bad.clone());
            let r = app.post("/api/users/addresses", t, body.clone()).await;
            assert_error_msg(&r, StatusCode::BAD_REQUEST, msg);
            let e = &r.body["errors"][0];
            assert_eq!(
                (&e["path"], &e["location"]),
                (&json!(field), &json!("body")),
                "{}",
                r.body
            );
            assert_error_msg(&app.put(&path, t, body).await, StatusCode::BAD_REQUEST, msg);
            let r = app.patch(&path, t, json!({ field: bad })).await;
            assert_error_msg(&r, StatusCode::BAD_REQUEST, msg);
        }
        let r = app
            .post("/api/users/addresses", t, without(address("New"), field))
            .await;
        assert_error_msg(&r, StatusCode::BAD_REQUEST, msg);
        let r = app
            .post(
                "/api/users/addresses",
                t,
                with(address("New"), field, Value::Null),
            )
            .await;
        assert_error_msg(&r, StatusCode::BAD_REQUEST, msg);
    }
    // Country is optional but not empty when given.
    let r = app
        .post(
            "/api/users/addresses",
            t,
            with(address("New"), "country", json!(" ")),
        )
        .await;
    assert_error_msg(&r, StatusCode::BAD_REQUEST, "Country is required");
    // All missing: the first rule's message, every field listed.
    let r = app.post("/api/users/addresses", t, json!({})).await;
    assert_error_msg(&r, StatusCode::BAD_REQUEST, "Address label is required");
    let paths: Vec<&str> = r.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["path"].as_str().expect("path"))
        .collect();
    assert_eq!(paths, REQUIRED.map(|(f, _)| f));
    // Too long.
    let r = app
        .post(
            "/api/users/addresses",
            t,
            with(address("New"), "zipCode", json!("1".repeat(21))),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["errors"][0]["path"], "zipCode", "{}", r.body);

    // Wrong types.
    for (field, value) in [
        ("isDefault", json!("yes")),
        ("label", json!(5)),
        ("zipCode", json!(400001)),
        ("street", json!(["a"])),
    ] {
        let body = with(address("New"), field, value.clone());
        let r = app.post("/api/users/addresses", t, body.clone()).await;
        assert_error(&r, StatusCode::BAD_REQUEST);
        assert_eq!(r.body["errors"][0]["path"], field, "{}", r.body);
        assert_error(&app.put(&path, t, body).await, StatusCode::BAD_REQUEST);
        let r = app.patch(&path, t, json!({ field: value })).await;
        assert_error(&r, StatusCode::BAD_REQUEST);
        assert_eq!(r.body["errors"][0]["path"], field, "{}", r.body);
    }
    // Malformed JSON.
    let r = app
        .client
        .post(format!("{}/api/users/addresses", app.base))
        .bearer_auth(&tok)
        .header("content-type", "application/json")
        .body("{\"label\": ")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Bad and unknown ids.
    for bad in ["abc", "0", "-1", "1.5", "99999999999999999999"] {
        let p = format!("/api/users/addresses/{bad}");
        assert_error(&app.get(&p, t).await, StatusCode::BAD_REQUEST);
        assert_error(&app.put(&p, t, address("X")).await, StatusCode::BAD_REQUEST);
        assert_error(
            &app.patch(&p, t, json!({ "city": "X" })).await,
            StatusCode::BAD_REQUEST,
        );
        assert_error(&app.delete(&p, t).await, StatusCode::BAD_REQUEST);
        assert_error(
            &app.call(Method::PUT, &format!("{p}/default"), t, None)
                .await,
            StatusCode::BAD_REQUEST,
        );
    }
    let p = "/api/users/addresses/999999";
    assert_error_msg(
        &app.get(p, t).await,
        StatusCode::NOT_FOUND,
        "Address not found",
    );
    assert_error_msg(
        &app.put(p, t, address("X")).await,
        StatusCode::NOT_FOUND,
        "Address not found",
    );
    assert_error_msg(
        &app.patch(p, t, json!({ "city": "X" })).await,
        StatusCode::NOT_FOUND,
        "Address not found",
    );
    assert_error_msg(
        &app.delete(p, t).await,
        StatusCode::NOT_FOUND,
        "Address not found",
    );
    assert_error_msg(
        &app.call(Method::PUT, &format!("{p}/default"), t, None)
            .await,
        StatusCode::NOT_FOUND,
        "Address not found",
    );

    // Not logged in, or with a bad token.
    for token in [None, Some("not-a-token")] {
        assert_error(
            &app.get("/api/users/addresses", token).await,
            StatusCode::UNAUTHORIZED,
        );
        assert_error(
            &app.post("/api/users/addresses", token, address("X")).await,
            StatusCode::UNAUTHORIZED,
        );
        assert_error(&app.get(&path, token).await, StatusCode::UNAUTHORIZED);
        assert_error(
            &app.put(&path, token, address("X")).await,
            StatusCode::UNAUTHORIZED,
        );
        assert_error(
            &app.patch(&path, token, json!({ "city": "X" })).await,
            StatusCode::UNAUTHORIZED,
        );
        assert_error(&app.delete(&path, token).await, StatusCode::UNAUTHORIZED);
        assert_error(
            &app.call(Method::PUT, &format!("{path}/default"), token, None)
                .await,
            StatusCode::UNAUTHORIZED,
        );
    }

    // Values are trimmed; nothing refused above was stored or changed.
    let list = book(&app, &tok).await;
    assert_eq!(list.len(), 1, "{list:#?}");
    same_except(&list[0], &existing, &["updatedAt"]);
    let r = app
        .post(
            "/api/users/addresses",
            t,
            with(address("x"), "label", json!("  Beach House  ")),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["data"]["address"]["label"], "Beach House");
}

// ---- concurrency --------------------------------------------------------------------

async fn concurrent_defaults(backend: Backend) {
    let app = spawn_app(backend).await;
    let (tok, _) = app.customer("race@example.com").await;

    // Ten creations at once, each asking for the default at random.
    let asks: Vec<bool> = (0..10).map(|_| rand::random::<bool>()).collect();
    let results = futures::future::join_all(asks.iter().enumerate().map(|(i, ask)| {
        app.post(
            "/api/users/addresses",
            Some(&tok),
            with(address(&format!("Place {i}")), "isDefault", json!(ask)),
        )
    }))
    .await;
    for r in &results {
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let list = book(&app, &tok).await;
    assert_eq!(list.len(), 10, "asked for defaults: {asks:?}");
    let ids: Vec<i64> = list.iter().map(id_of).collect();

    // Ten default changes at once, mixed with PATCHes: still exactly one.
    let calls = ids.iter().enumerate().map(|(i, id)| {
        let path = format!("/api/users/addresses/{id}");
        let app = &app;
        let tok = tok.as_str();
        async move {
            if i % 2 == 0 {
                app.call(Method::PUT, &format!("{path}/default"), Some(tok), None)
                    .await
            } else {
                app.patch(&path, Some(tok), json!({ "isDefault": i % 3 != 0 }))
                    .await
            }
        }
    });
    for r in futures::future::join_all(calls).await {
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    assert_eq!(book(&app, &tok).await.len(), 10);

    // Deleting half of them at once, the default among them: still exactly one.
    let (_, default) = order(&app, &tok).await;
    let default = default.expect("a default");
    let mut doomed: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|id| *id != default)
        .take(4)
        .collect();
    doomed.push(default);
    let deletes = doomed.iter().map(|id| {
        let path = format!("/api/users/addresses/{id}");
        let app = &app;
        let tok = tok.as_str();
        async move { app.delete(&path, Some(tok)).await }
    });
    for r in futures::future::join_all(deletes).await {
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let left = book(&app, &tok).await;
    assert_eq!(left.len(), 5);
}

ecap_core::on_every_backend!(address_book_story, concurrent_defaults);
