//! Product images: uploads checked by content and size, served from local
//! disk under `/media`, or from S3 through presigned URLs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ecap_core::{config::Secret, db::Backend};
use reqwest::{
    StatusCode, header,
    multipart::{Form, Part},
};
use serde_json::{Value, json};

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

/// `len` bytes that sniff as PNG; `seed` makes files differ.
fn png(len: usize, seed: u8) -> Vec<u8> {
    let mut b = PNG_SIGNATURE.to_vec();
    b.extend((0..len.saturating_sub(8)).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    b
}

fn file(bytes: Vec<u8>, name: &str, mime: &str) -> Part {
    Part::bytes(bytes)
        .file_name(name.to_owned())
        .mime_str(mime)
        .unwrap()
}

/// POSTs a multipart form to the product's images; (status, JSON body).
async fn upload(app: &TestApp, id: &str, token: Option<&str>, form: Form) -> (StatusCode, Value) {
    let mut req = app
        .client
        .post(format!("{}/api/products/{id}/images", app.base))
        .multipart(form);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn one(part: Part) -> Form {
    Form::new().part("image", part)
}

async fn new_product(app: &TestApp, token: &str) -> String {
    let r = app
        .post(
            "/api/products",
            Some(token),
            json!({"name": "Ceramic Vase", "description": "Hand thrown", "price": 45,
                   "inventory": 2, "category": "home"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["data"]["product"]["id"].as_str().unwrap().to_owned()
}

async fn product(app: &TestApp, id: &str) -> Value {
    let r = app.get(&format!("/api/products/{id}"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["data"]["product"].clone()
}

/// GET an absolute or `/media` URL: (status, content type, bytes).
async fn fetch_file(app: &TestApp, url: &str) -> (StatusCode, Option<String>, Vec<u8>) {
    let url = if url.starts_with('/') {
        format!("{}{url}", app.base)
    } else {
        url.to_owned()
    };
    let res = app.client.get(url).send().await.unwrap();
    let ct = res
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    (res.status(), ct, res.bytes().await.unwrap().to_vec())
}

/// What the original's admin page does on save: the whole product as read,
/// edited, sent back. Uploaded files' URLs in `images` are kept as the files
/// (not linked again, not refused); a new link beside them is added.
async fn whole_product_round_trip(app: &TestApp, id: &str, token: &str) {
    let before = product(app, id).await;
    let mut edited = before.clone();
    edited["price"] = json!(31.5);
    edited["images"]
        .as_array_mut()
        .unwrap()
        .push(json!("https://cdn.example.com/side.jpg"));
    let r = app
        .put(&format!("/api/products/{id}"), Some(token), edited)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let after = &r.body["data"]["product"];
    assert_eq!(after["price"], 31.5);
    let files = after["imageFiles"].as_array().unwrap();
    assert_eq!(
        files.len(),
        before["imageFiles"].as_array().unwrap().len() + 1
    );
    assert_eq!(
        files.iter().filter(|f| f["uploaded"] == true).count(),
        before["imageFiles"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["uploaded"] == true)
            .count(),
        "{after}"
    );
    let last = after["images"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last, "https://cdn.example.com/side.jpg", "{after}");
    // Sent back as first read: the link goes, the files stay.
    let r = app
        .put(&format!("/api/products/{id}"), Some(token), before.clone())
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["data"]["product"]["imageFiles"]
            .as_array()
            .unwrap()
            .len(),
        before["imageFiles"].as_array().unwrap().len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_images_are_checked_stored_served_and_deleted() {
    let app = spawn_app_with(Backend::Sqlite, |c| c.ecap_max_image_bytes = 2048).await;
    let (mia, _) = app
        .register_as("Mia Merchant", "mia@example.com", "merchant")
        .await;
    let (other, _) = app
        .register_as("Other Merchant", "other@example.com", "merchant")
        .await;
    let (cust, _) = app.customer("cust@example.com").await;
    let id = new_product(&app, &mia).await;

    // Upload: 201, the product lists the file under /media.
    let bytes = png(300, 1);
    let (status, body) = upload(
        &app,
        &id,
        Some(&mia),
        one(file(bytes.clone(), "vase.png", "image/png")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["message"], "Images uploaded successfully");
    assert_eq!(body["data"]["imageIds"].as_array().unwrap().len(), 1);
    let p = &body["data"]["product"];
    let url = p["images"][0].as_str().expect("images[0]").to_owned();
    assert!(url.starts_with(&format!("/media/products/{id}/")), "{url}");
    assert!(url.ends_with(".png"), "{url}");
    let image = &p["imageFiles"][0];
    assert_eq!(image["url"], url.as_str());
    assert_eq!(image["contentType"], "image/png");
    assert_eq!(image["size"], 300);
    assert_eq!(image["uploaded"], true);
    assert_eq!(image["id"], body["data"]["imageIds"][0]);
    let image_id = image["id"].as_str().unwrap().to_owned();
    assert_eq!(product(&app, &id).await["images"], json!([url]));
    whole_product_round_trip(&app, &id, &mia).await;

    // Served to anyone, byte for byte, with its type and a long cache life.
    let res = app
        .client
        .get(format!("{}{url}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "image/png");
    assert!(
        res.headers()[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let etag = res.headers()[header::ETAG].to_str().unwrap().to_owned();
    assert_eq!(res.bytes().await.unwrap().as_ref(), bytes.as_slice());
    let res = app
        .client
        .get(format!("{}{url}", app.base))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);

    // Text named .png: refused by content, nothing added.
    let (status, body) = upload(
        &app,
        &id,
        Some(&mia),
        one(file(b"hello, I am text".to_vec(), "fake.png", "image/png")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["success"], false);
    assert_eq!(body["errors"][0]["path"], "image", "{body}");
    // A good file beside a bad one: the whole upload is refused.
    let form = Form::new()
        .part("image", file(png(100, 2), "good.png", "image/png"))
        .part(
            "image",
            file(b"GIF89a....".to_vec(), "bad.png", "image/png"),
        );
    let (status, body) = upload(&app, &id, Some(&mia), form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Over the limit: 413, nothing added.
    let (status, body) = upload(
        &app,
        &id,
        Some(&mia),
        one(file(png(4096, 3), "big.png", "image/png")),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["success"], false);
    assert_eq!(body["code"], "payload_too_large");
    // No file at all.
    let (status, body) = upload(&app, &id, Some(&mia), Form::new().text("note", "hi")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Not the caller's product, or no caller.
    for (token, want) in [
        (Some(cust.as_str()), StatusCode::FORBIDDEN),
        (Some(other.as_str()), StatusCode::FORBIDDEN),
        (None, StatusCode::UNAUTHORIZED),
    ] {
        let (status, body) = upload(
            &app,
            &id,
            token,
            one(file(png(100, 4), "x.png", "image/png")),
        )
        .await;
        assert_eq!(status, want, "{body}");
    }
    let (status, body) = upload(
        &app,
        "0123456789abcdef01234567",
        Some(&mia),
        one(file(png(100, 5), "x.png", "image/png")),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(product(&app, &id).await["images"], json!([url]));
    let files: Vec<_> = walk(&app.config.ecap_data_dir.join("media"));
    assert_eq!(
        files.len(),
        1,
        "only the accepted file is on disk: {files:?}"
    );

    // Exactly the limit is fine; JPEG and WebP are recognised too.
    let jpeg = [&[0xFF, 0xD8, 0xFF, 0xE0][..], &[0u8; 60]].concat();
    let mut webp = b"RIFF\x20\0\0\0WEBPVP8 ".to_vec();
    webp.extend([0u8; 40]);
    let form = Form::new()
        .part("image", file(png(2048, 6), "edge.png", "image/png"))
        .part(
            "images",
            file(jpeg, "photo.bin", "application/octet-stream"),
        )
        .part("image", file(webp, "pic", "image/webp"));
    let (status, body) = upload(&app, &id, Some(&mia), form).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let files = body["data"]["product"]["imageFiles"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(files.len(), 4, "{body}");
    let types: Vec<&str> = files
        .iter()
        .map(|f| f["contentType"].as_str().unwrap())
        .collect();
    for t in ["image/png", "image/jpeg", "image/webp"] {
        assert!(types.contains(&t), "{types:?}");
    }
    for f in &files[1..] {
        let (status, ct, _) = fetch_file(&app, f["url"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ct.as_deref(), f["contentType"].as_str());
    }

    // Another merchant's own product path does not reach Mia's image.
    let theirs = new_product(&app, &other).await;
    let r = app
        .delete(
            &format!("/api/products/{theirs}/images/{image_id}"),
            Some(&other),
        )
        .await;
    assert_eq!(assert_error(&r, StatusCode::NOT_FOUND), "Image not found");
    assert_eq!(fetch_file(&app, &url).await.0, StatusCode::OK);

    // Delete: refused to others, then gone with its file.
    let del = format!("/api/products/{id}/images/{image_id}");
    assert_eq!(
        app.delete(&del, Some(&cust)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.delete(&del, Some(&other)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.delete(&del, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = app.delete(&del, Some(&mia)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["message"], "Image deleted successfully");
    let (status, _, _) = fetch_file(&app, &url).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let r = app.delete(&del, Some(&mia)).await;
    assert_eq!(assert_error(&r, StatusCode::NOT_FOUND), "Image not found");
    let left = product(&app, &id).await["imageFiles"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(left.len(), 3);
    assert!(!left.iter().any(|f| f["id"] == image_id.as_str()));
    for f in left {
        let r = app
            .delete(
                &format!("/api/products/{id}/images/{}", f["id"].as_str().unwrap()),
                Some(&mia),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let p = product(&app, &id).await;
    assert_eq!(p["images"], json!([]));
    assert_eq!(p["imageFiles"], json!([]));
    assert!(walk(&app.config.ecap_data_dir.join("media")).is_empty());

    // The media route serves only media keys.
    for bad in [
        "/media/products/nothing.png",
        "/media/.hidden",
        "/media/products/%2e%2e/%2e%2e/ecap.db",
        "/media/..%2f..%2fetc%2fpasswd",
    ] {
        let (status, _, _) = fetch_file(&app, bad).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
    }
}

/// Every file below `dir` (none if it does not exist).
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_images_are_served_through_presigned_urls() {
    let s3 = s3_test_server::S3Server::start().await;
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.s3_bucket = Some(s3.bucket.clone());
        c.s3_endpoint = Some(s3.endpoint.clone());
        c.aws_region = Some(s3.region.clone());
        c.aws_access_key_id = Some(s3.access_key.clone());
        c.aws_secret_access_key = Some(Secret::new(s3.secret_key.clone()));
    })
    .await;
    let (admin, _) = app.admin().await;
    let id = new_product(&app, &admin).await;

    let bytes = png(500, 9);
    let (status, body) = upload(
        &app,
        &id,
        Some(&admin),
        one(file(bytes.clone(), "vase.png", "image/png")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let url = body["data"]["product"]["images"][0]
        .as_str()
        .expect("images[0]")
        .to_owned();
    assert!(
        url.starts_with(&format!("{}/{}/products/{id}/", s3.endpoint, s3.bucket)),
        "{url}"
    );
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(url.contains("X-Amz-Signature="), "{url}");
    assert!(!url.contains(&s3.secret_key), "{url}");
    let image_id = body["data"]["product"]["imageFiles"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The product's public read carries a working URL too.
    let listed = product(&app, &id).await["images"][0]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(listed.contains("X-Amz-Signature="), "{listed}");
    whole_product_round_trip(&app, &id, &admin).await;

    let (status, ct, got) = fetch_file(&app, &url).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, bytes);
    assert_eq!(ct.as_deref(), Some("image/png"));
    let (status, _, got) = fetch_file(&app, &listed).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, bytes);
    // Without the signature the bucket refuses.
    let bare = url.split('?').next().unwrap();
    let (status, _, _) = fetch_file(&app, bare).await;
    assert!(status.is_client_error(), "{status}");
    // ecap does not proxy the bucket: /media is the local store's only.
    let key = bare
        .split(&format!("/{}/", s3.bucket))
        .nth(1)
        .unwrap()
        .to_owned();
    let proxied = app.get(&format!("/media/{key}"), None).await;
    assert_eq!(proxied.status, StatusCode::NOT_FOUND);
    // Nothing is written to local disk.
    assert!(
        !app.config
            .ecap_data_dir
            .join("media")
            .join("products")
            .exists()
    );

    // With the default limits an image larger than the JSON body limit (1 MiB)
    // still goes through.
    let big = png(1536 * 1024, 7);
    let (status, body) = upload(
        &app,
        &id,
        Some(&admin),
        one(file(big.clone(), "big.png", "image/png")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let big_url = body["data"]["product"]["images"][1]
        .as_str()
        .unwrap()
        .to_owned();
    let big_id = body["data"]["product"]["imageFiles"][1]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _, got) = fetch_file(&app, &big_url).await;
    assert_eq!(status, StatusCode::OK);
    assert!(got == big, "the large image round-trips");
    let r = app
        .delete(&format!("/api/products/{id}/images/{big_id}"), Some(&admin))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Refused uploads leave the bucket alone.
    let (status, _) = upload(
        &app,
        &id,
        Some(&admin),
        one(file(b"text".to_vec(), "t.png", "image/png")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        product(&app, &id).await["imageFiles"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let r = app
        .delete(
            &format!("/api/products/{id}/images/{image_id}"),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (status, _, _) = fetch_file(&app, &url).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(product(&app, &id).await["images"], json!([]));
}
