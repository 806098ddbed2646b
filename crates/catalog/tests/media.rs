#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Product image storage: magic-byte sniffing, the local directory store and
//! the S3 store against a real, signature-checking S3 server on 127.0.0.1.

use std::time::Duration;

use bytes::Bytes;
use ecap_catalog::media::{ImageKind, MediaError, MediaStore, S3Settings, image_key, sniff};
use ecap_core::config::Secret;
use s3_test_server::S3Server;

/// The first bytes of a real JPEG (JFIF APP0 segment).
const JPEG: &[u8] = &[
    0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01, 0x01, 0x00, 0x00, 0x01,
];

/// A complete 1×1 transparent PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

/// The first bytes of a real lossy WebP.
const WEBP: &[u8] = &[
    b'R', b'I', b'F', b'F', 0x24, 0x00, 0x00, 0x00, b'W', b'E', b'B', b'P', b'V', b'P', b'8', b' ',
    0x18, 0x00, 0x00, 0x00, 0x30, 0x01, 0x00, 0x9D, 0x01, 0x2A, 0x01, 0x00, 0x01, 0x00,
];

#[test]
fn sniff_recognises_images_by_content() {
    assert_eq!(sniff(JPEG), Some(ImageKind::Jpeg));
    assert_eq!(sniff(PNG), Some(ImageKind::Png));
    assert_eq!(sniff(WEBP), Some(ImageKind::WebP));

    // A text file renamed `.png` is still text.
    assert_eq!(sniff(b"just some notes, saved as photo.png\n"), None);
    assert_eq!(sniff(b""), None);
    // Near misses: a truncated PNG signature, a RIFF that is not WebP.
    assert_eq!(sniff(&PNG[..7]), None);
    assert_eq!(sniff(b"RIFF\x24\x00\x00\x00WAVEfmt "), None);
    assert_eq!(sniff(b"RIFF"), None);

    assert_eq!(ImageKind::Png.content_type(), "image/png");
    assert_eq!(ImageKind::Jpeg.extension(), "jpg");
    assert_eq!(
        image_key("p1", "i1", ImageKind::WebP),
        "products/p1/i1.webp"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn local_store_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("media");
    let store = MediaStore::local(&dir).unwrap();
    assert!(store.is_local());
    store.ping().await.unwrap();

    let key = image_key("p1", "i1", ImageKind::Png);
    store
        .put(&key, Bytes::from_static(PNG), ImageKind::Png)
        .await
        .unwrap();
    assert!(dir.join("products/p1/i1.png").is_file());

    let (bytes, content_type) = store.get(&key).await.unwrap().expect("stored image");
    assert_eq!(bytes.as_ref(), PNG);
    assert_eq!(content_type, "image/png");
    assert_eq!(store.url(&key).await.unwrap(), "/media/products/p1/i1.png");

    // A clone shares the store.
    let clone = store.clone();
    assert!(clone.get(&key).await.unwrap().is_some());

    store.delete(&key).await.unwrap();
    assert!(store.get(&key).await.unwrap().is_none());
    // Deleting what is gone is fine.
    store.delete(&key).await.unwrap();
    assert!(store.get("products/p1/never.jpg").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn local_store_rejects_keys_outside_its_directory() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("secret.txt"), "top secret").unwrap();
    let store = MediaStore::local(&tmp.path().join("media")).unwrap();

    for key in [
        "../x",
        "../secret.txt",
        "/etc/passwd",
        "products/../../secret.txt",
        "a//b",
        "",
    ] {
        assert!(
            matches!(store.get(key).await, Err(MediaError::InvalidKey)),
            "get {key:?}"
        );
        assert!(
            matches!(store.url(key).await, Err(MediaError::InvalidKey)),
            "url {key:?}"
        );
        assert!(
            matches!(
                store
                    .put(key, Bytes::from_static(PNG), ImageKind::Png)
                    .await,
                Err(MediaError::InvalidKey)
            ),
            "put {key:?}"
        );
        assert!(
            matches!(store.delete(key).await, Err(MediaError::InvalidKey)),
            "delete {key:?}"
        );
    }
    assert!(tmp.path().join("secret.txt").is_file());
}

fn settings(s3: &S3Server) -> S3Settings {
    S3Settings {
        bucket: s3.bucket.clone(),
        region: Some(s3.region.clone()),
        endpoint: Some(s3.endpoint.clone()),
        access_key_id: Some(s3.access_key.clone()),
        secret_access_key: Some(Secret::new(s3.secret_key.clone())),
        allow_http: true,
        url_expiry: Duration::from_secs(300),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_store_serves_presigned_urls_and_requires_signatures() {
    let s3 = S3Server::start().await;
    let store = MediaStore::s3(&settings(&s3)).unwrap();
    assert!(!store.is_local());
    store.ping().await.unwrap();

    let key = image_key("p1", "i1", ImageKind::Png);
    store
        .put(&key, Bytes::from_static(PNG), ImageKind::Png)
        .await
        .unwrap();

    let url = store.url(&key).await.unwrap();
    assert!(
        url.starts_with(&format!("{}/{}/", s3.endpoint, s3.bucket)),
        "{url}"
    );
    assert!(url.contains("X-Amz-Signature="), "{url}");

    let http = reqwest::Client::new();
    let response = http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(response.bytes().await.unwrap().as_ref(), PNG);

    // The same object without a signature is refused.
    let unsigned = http.get(s3.object_url(&key)).send().await.unwrap();
    assert_eq!(unsigned.status(), 403);

    let (bytes, content_type) = store.get(&key).await.unwrap().expect("stored image");
    assert_eq!(bytes.as_ref(), PNG);
    assert_eq!(content_type, "image/png");

    store.delete(&key).await.unwrap();
    assert_eq!(http.get(&url).send().await.unwrap().status(), 404);
    assert!(store.get(&key).await.unwrap().is_none());
    store.delete(&key).await.unwrap();

    assert!(matches!(
        store.url("../x").await,
        Err(MediaError::InvalidKey)
    ));
    assert!(matches!(
        store.get("/etc/passwd").await,
        Err(MediaError::InvalidKey)
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_store_with_a_wrong_secret_fails_without_leaking_it() {
    let s3 = S3Server::start().await;
    let wrong = "wrong-secret-0123456789abcdefghij";
    let store = MediaStore::s3(&S3Settings {
        secret_access_key: Some(Secret::new(wrong)),
        ..settings(&s3)
    })
    .unwrap();

    let key = image_key("p1", "i1", ImageKind::Jpeg);
    let err = store
        .put(&key, Bytes::from_static(JPEG), ImageKind::Jpeg)
        .await
        .unwrap_err();
    assert!(matches!(err, MediaError::Backend(_)), "{err:?}");
    assert!(store.ping().await.is_err());

    for text in [err.to_string(), format!("{err:?}"), format!("{store:?}")] {
        assert!(!text.contains(wrong), "{text}");
        assert!(!text.contains(&s3.access_key), "{text}");
    }
    // Nothing was stored.
    let right = MediaStore::s3(&settings(&s3)).unwrap();
    assert!(right.get(&key).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_settings_are_checked() {
    let s3 = S3Server::start().await;
    for url_expiry in [Duration::ZERO, Duration::from_secs(8 * 24 * 60 * 60)] {
        let result = MediaStore::s3(&S3Settings {
            url_expiry,
            ..settings(&s3)
        });
        assert!(
            matches!(result, Err(MediaError::Config(_))),
            "{url_expiry:?}"
        );
    }
    // A plain-HTTP endpoint is refused unless allowed.
    let result = MediaStore::s3(&S3Settings {
        allow_http: false,
        ..settings(&s3)
    });
    assert!(matches!(result, Err(MediaError::Config(_))));
    // Nothing listening: ping reports it (after a few quick retries).
    let store = MediaStore::s3(&S3Settings {
        endpoint: Some("http://127.0.0.1:1".to_owned()),
        ..settings(&s3)
    })
    .unwrap();
    assert!(matches!(store.ping().await, Err(MediaError::Backend(_))));
    // A bucket that does not exist fails the ping.
    let store = MediaStore::s3(&S3Settings {
        bucket: "no-such-bucket".to_owned(),
        ..settings(&s3)
    })
    .unwrap();
    assert!(matches!(store.ping().await, Err(MediaError::Backend(_))));
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_store_on_aws_presigns_virtual_hosted_https_urls() {
    // No request is made: building the HTTPS client and signing are local.
    let store = MediaStore::s3(&S3Settings {
        bucket: "ecap-images".to_owned(),
        region: Some("eu-west-1".to_owned()),
        endpoint: None,
        access_key_id: Some("AKIDEXAMPLE".to_owned()),
        secret_access_key: Some(Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")),
        allow_http: false,
        url_expiry: Duration::from_secs(3600),
    })
    .unwrap();
    let url = store.url("products/p1/i1.jpg").await.unwrap();
    assert!(
        url.starts_with("https://ecap-images.s3.eu-west-1.amazonaws.com/products/p1/i1.jpg?"),
        "{url}"
    );
    assert!(url.contains("X-Amz-Expires=3600"), "{url}");
    assert!(!url.contains("wJalrXUtnFEMI"), "{url}");
}
