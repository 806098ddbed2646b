//! Product images on local disk or S3.
//!
//! [`MediaStore`] puts, fetches and deletes image bytes through the
//! [`object_store`] crate, either in a local directory (served by the
//! catalog's `/media/{*key}` route, so URLs are `/media/<key>`) or in an S3
//! bucket (URLs are presigned GETs, valid for [`S3Settings::url_expiry`]).
//! Keys are built by [`image_key`] and checked by [`validate_key`], so a
//! request path can never reach outside the media directory. Uploaded bytes
//! are recognised by their magic numbers ([`sniff`]), not by the file name.

use std::{fmt, path::Path as FsPath, sync::Arc, time::Duration};

use bytes::Bytes;
use futures::StreamExt as _;
use object_store::{
    Attribute, Attributes, ObjectStore, ObjectStoreExt as _, PutOptions, PutPayload, RetryConfig,
    StaticCredentialProvider,
    aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, AwsCredential},
    local::LocalFileSystem,
    path::Path,
    signer::{Method, Signer as _},
};

use ecap_core::config::Secret;

/// Longest key accepted, in bytes (S3 allows 1024).
const MAX_KEY_LEN: usize = 512;

/// Longest lifetime SigV4 allows for a presigned URL.
const MAX_URL_EXPIRY: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Prefix listed by [`MediaStore::ping`]; nothing is ever stored under it.
const PING_PREFIX: &str = "ecap-ping";

/// Longest backend error message kept, in characters.
const MAX_MESSAGE_LEN: usize = 400;

/// The image formats the catalog accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageKind {
    /// JPEG (`image/jpeg`, `.jpg`).
    Jpeg,
    /// PNG (`image/png`, `.png`).
    Png,
    /// WebP (`image/webp`, `.webp`).
    WebP,
}

impl ImageKind {
    /// The MIME type, e.g. `image/png`.
    pub fn content_type(&self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::WebP => "image/webp",
        }
    }

    /// The file extension used in keys, without the dot: `jpg`, `png`, `webp`.
    pub fn extension(&self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::WebP => "webp",
        }
    }

    /// The kind a file extension (without the dot, any case) names, if any.
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext.to_ascii_lowercase().as_str() {
            "jpg" | "jpeg" => Some(Self::Jpeg),
            "png" => Some(Self::Png),
            "webp" => Some(Self::WebP),
            _ => None,
        }
    }
}

/// Recognises an image by its magic bytes; `None` for anything else.
///
/// JPEG starts `FF D8 FF`, PNG with its 8-byte signature `89 50 4E 47 0D 0A
/// 1A 0A`, WebP with `RIFF`, a 4-byte size, then `WEBP`.
pub fn sniff(bytes: &[u8]) -> Option<ImageKind> {
    const PNG: &[u8] = &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageKind::Jpeg)
    } else if bytes.starts_with(PNG) {
        Some(ImageKind::Png)
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some(ImageKind::WebP)
    } else {
        None
    }
}

/// The key of a product image: `products/<product_id>/<image_id>.<ext>`.
pub fn image_key(product_id: &str, image_id: &str, kind: ImageKind) -> String {
    format!("products/{product_id}/{image_id}.{}", kind.extension())
}

/// Checks that `key` is safe to use as an object key and a file path below
/// the media directory.
///
/// A key is at most 512 bytes of `[A-Za-z0-9/_.-]`, made of non-empty
/// `/`-separated segments, none of which starts with a dot (so no `.`, `..`
/// or hidden files), and contains no `..` anywhere.
pub fn validate_key(key: &str) -> Result<(), MediaError> {
    let charset_ok = key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'.' | b'-'));
    let segments_ok = key
        .split('/')
        .all(|segment| !segment.is_empty() && !segment.starts_with('.'));
    if key.is_empty()
        || key.len() > MAX_KEY_LEN
        || !charset_ok
        || !segments_ok
        || key.contains("..")
    {
        return Err(MediaError::InvalidKey);
    }
    Ok(())
}

/// How to reach the S3 bucket holding product images.
///
/// Unset credentials, region and endpoint fall back to the usual `AWS_*`
/// environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`, …) and then to
/// object_store's defaults (region `us-east-1`, the instance's role).
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// Bucket name.
    pub bucket: String,
    /// Region, e.g. `eu-west-1`.
    pub region: Option<String>,
    /// Custom endpoint (MinIO, Garage, R2…), e.g. `http://127.0.0.1:9000`.
    /// With one, requests are path-style (`<endpoint>/<bucket>/<key>`);
    /// without, virtual-hosted style on AWS.
    pub endpoint: Option<String>,
    /// Access key id; with [`secret_access_key`](Self::secret_access_key)
    /// replaces any credentials from the environment.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<Secret>,
    /// Allow a plain `http://` endpoint.
    pub allow_http: bool,
    /// Lifetime of presigned image URLs (at most 7 days).
    pub url_expiry: Duration,
}

/// Why a media operation failed. Messages never carry credentials.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The key is not a valid media key (see [`validate_key`]).
    #[error("invalid media key")]
    InvalidKey,
    /// The store could not be set up from its settings.
    #[error("media store configuration: {0}")]
    Config(String),
    /// The storage backend failed or refused the request.
    #[error("media backend: {0}")]
    Backend(String),
}

/// Where product images live. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct MediaStore {
    inner: Arc<Inner>,
}

enum Inner {
    Local {
        dir: std::path::PathBuf,
        store: LocalFileSystem,
    },
    S3 {
        bucket: String,
        store: AmazonS3,
        url_expiry: Duration,
        /// Credential strings to scrub from error messages.
        redact: Vec<String>,
    },
}

impl fmt::Debug for MediaStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.inner {
            Inner::Local { dir, .. } => f
                .debug_struct("MediaStore::Local")
                .field("dir", dir)
                .finish(),
            Inner::S3 {
                bucket, url_expiry, ..
            } => f
                .debug_struct("MediaStore::S3")
                .field("bucket", bucket)
                .field("url_expiry", url_expiry)
                .finish_non_exhaustive(),
        }
    }
}

impl MediaStore {
    /// A store in the directory `dir` (created if missing); URLs are `/media/<key>`.
    pub fn local(dir: &FsPath) -> Result<Self, MediaError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            MediaError::Config(format!(
                "cannot create media directory {}: {e}",
                dir.display()
            ))
        })?;
        let store = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| MediaError::Config(format!("media directory {}: {e}", dir.display())))?
            .with_automatic_cleanup(true);
        Ok(Self {
            inner: Arc::new(Inner::Local {
                dir: dir.to_path_buf(),
                store,
            }),
        })
    }

    /// A store in an S3 bucket; URLs are presigned GETs valid for
    /// [`S3Settings::url_expiry`]. Makes no request (see [`ping`](Self::ping)).
    pub fn s3(settings: &S3Settings) -> Result<Self, MediaError> {
        install_crypto_provider();

        if settings.url_expiry.is_zero() || settings.url_expiry > MAX_URL_EXPIRY {
            return Err(MediaError::Config(
                "url_expiry must be between 1 second and 7 days".to_owned(),
            ));
        }

        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&settings.bucket)
            .with_allow_http(settings.allow_http)
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(30),
                ..RetryConfig::default()
            });
        if let Some(region) = &settings.region {
            builder = builder.with_region(region);
        }
        if let Some(endpoint) = &settings.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        // A custom endpoint (MinIO and friends) is addressed path-style; AWS
        // virtual-hosted, unless a dotted bucket name would break its TLS name.
        let endpoint = builder.get_config_value(&AmazonS3ConfigKey::Endpoint);
        if !settings.allow_http
            && endpoint
                .as_deref()
                .is_some_and(|e| e.starts_with("http://"))
        {
            return Err(MediaError::Config(
                "the S3 endpoint is plain http:// but allow_http is off".to_owned(),
            ));
        }
        let custom_endpoint = endpoint.is_some();
        builder = builder
            .with_virtual_hosted_style_request(!custom_endpoint && !settings.bucket.contains('.'));

        let mut redact = Vec::new();
        match (&settings.access_key_id, &settings.secret_access_key) {
            (Some(key_id), Some(secret)) => {
                // Explicit credentials win over everything in the environment,
                // including a session token that would not match them.
                redact.extend([key_id.clone(), secret.expose().to_owned()]);
                builder = builder.with_credentials(Arc::new(StaticCredentialProvider::new(
                    AwsCredential {
                        key_id: key_id.clone(),
                        secret_key: secret.expose().to_owned(),
                        token: None,
                    },
                )));
            }
            (key_id, secret) => {
                if let Some(key_id) = key_id {
                    builder = builder.with_access_key_id(key_id);
                }
                if let Some(secret) = secret {
                    builder = builder.with_secret_access_key(secret.expose());
                }
                for key in [
                    AmazonS3ConfigKey::AccessKeyId,
                    AmazonS3ConfigKey::SecretAccessKey,
                    AmazonS3ConfigKey::Token,
                ] {
                    redact.extend(builder.get_config_value(&key));
                }
            }
        }
        redact.retain(|s| !s.is_empty());

        let store = builder
            .build()
            .map_err(|e| MediaError::Config(sanitize(&e.to_string(), &redact)))?;
        Ok(Self {
            inner: Arc::new(Inner::S3 {
                bucket: settings.bucket.clone(),
                store,
                url_expiry: settings.url_expiry,
                redact,
            }),
        })
    }

    /// Whether images live on local disk (served by the `/media` route).
    pub fn is_local(&self) -> bool {
        matches!(*self.inner, Inner::Local { .. })
    }

    /// Stores `bytes` under `key`, replacing any previous object. On S3 the
    /// object's `Content-Type` is set from `kind`; on disk it is derived
    /// from the key's extension when read.
    #[tracing::instrument(level = "debug", skip_all, fields(key = %key, size = bytes.len()))]
    pub async fn put(&self, key: &str, bytes: Bytes, kind: ImageKind) -> Result<(), MediaError> {
        let path = object_path(key)?;
        let payload = PutPayload::from_bytes(bytes);
        let result = match &*self.inner {
            Inner::Local { store, .. } => store.put(&path, payload).await,
            Inner::S3 { store, .. } => {
                let mut attributes = Attributes::new();
                attributes.insert(Attribute::ContentType, kind.content_type().into());
                let opts = PutOptions {
                    attributes,
                    ..PutOptions::default()
                };
                store.put_opts(&path, payload, opts).await
            }
        };
        result.map(drop).map_err(|e| self.backend("put", &e))
    }

    /// The bytes under `key` and their content type (from the key's
    /// extension, `application/octet-stream` if unknown); `None` if there is
    /// no such object.
    #[tracing::instrument(level = "debug", skip_all, fields(key = %key))]
    pub async fn get(&self, key: &str) -> Result<Option<(Bytes, String)>, MediaError> {
        let path = object_path(key)?;
        let result = match self.store().get(&path).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.backend("get", &e)),
        };
        let bytes = match result.bytes().await {
            Ok(bytes) => bytes,
            // Deleted between the open and the read.
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.backend("get", &e)),
        };
        Ok(Some((bytes, content_type_of(key).to_owned())))
    }

    /// Removes the object under `key`; a missing object is not an error.
    #[tracing::instrument(level = "debug", skip_all, fields(key = %key))]
    pub async fn delete(&self, key: &str) -> Result<(), MediaError> {
        let path = object_path(key)?;
        match self.store().delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.backend("delete", &e)),
        }
    }

    /// Where a browser can fetch the image: `/media/<key>` on disk, a
    /// presigned GET URL on S3. Does not check that the object exists.
    pub async fn url(&self, key: &str) -> Result<String, MediaError> {
        let path = object_path(key)?;
        match &*self.inner {
            Inner::Local { .. } => Ok(format!("/media/{key}")),
            Inner::S3 {
                store, url_expiry, ..
            } => store
                .signed_url(Method::GET, &path, *url_expiry)
                .await
                .map(String::from)
                .map_err(|e| self.backend("sign url", &e)),
        }
    }

    /// Cheap reachability check: the directory exists, or the bucket answers
    /// an authenticated list of an empty prefix.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn ping(&self) -> Result<(), MediaError> {
        match &*self.inner {
            Inner::Local { dir, .. } => match tokio::fs::metadata(dir).await {
                Ok(meta) if meta.is_dir() => Ok(()),
                Ok(_) => Err(MediaError::Backend(format!(
                    "{} is not a directory",
                    dir.display()
                ))),
                Err(e) => Err(MediaError::Backend(format!("{}: {e}", dir.display()))),
            },
            Inner::S3 { store, .. } => {
                // Only the first page is requested; the stream is then dropped.
                let mut listing = store.list(Some(&Path::from(PING_PREFIX)));
                match listing.next().await {
                    None | Some(Ok(_)) => Ok(()),
                    Some(Err(e)) => Err(self.backend("ping", &e)),
                }
            }
        }
    }

    fn store(&self) -> &dyn ObjectStore {
        match &*self.inner {
            Inner::Local { store, .. } => store,
            Inner::S3 { store, .. } => store,
        }
    }

    /// A [`MediaError::Backend`] for `e`, with response bodies and credentials removed.
    fn backend(&self, op: &str, e: &object_store::Error) -> MediaError {
        let redact: &[String] = match &*self.inner {
            Inner::Local { .. } => &[],
            Inner::S3 { redact, .. } => redact,
        };
        let what = match e {
            object_store::Error::PermissionDenied { .. } => "permission denied".to_owned(),
            object_store::Error::Unauthenticated { .. } => "unauthenticated".to_owned(),
            object_store::Error::NotFound { .. } => "not found".to_owned(),
            other => sanitize(&other.to_string(), redact),
        };
        let text = e.to_string();
        match s3_error_code(&text) {
            Some(code) => MediaError::Backend(format!("{op}: {what} ({})", sanitize(code, redact))),
            None => MediaError::Backend(format!("{op}: {what}")),
        }
    }
}

/// Installs rustls' aws-lc-rs provider as the process default unless one is
/// set: with both ring and aws-lc-rs compiled in, rustls cannot pick one by
/// itself and a TLS client built without an explicit provider would panic.
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another thread installing one is fine.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

/// The validated object path of `key`.
fn object_path(key: &str) -> Result<Path, MediaError> {
    validate_key(key)?;
    Path::parse(key).map_err(|_| MediaError::InvalidKey)
}

/// The content type a key's extension names.
fn content_type_of(key: &str) -> &'static str {
    key.rsplit_once('.')
        .and_then(|(_, ext)| ImageKind::from_extension(ext))
        .map_or("application/octet-stream", |kind| kind.content_type())
}

/// The `<Code>` of an S3 XML error body quoted in `text`, if any.
fn s3_error_code(text: &str) -> Option<&str> {
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    Some(&text[start..start + len])
}

/// `text` without any quoted XML response body, with every credential in
/// `redact` replaced, and cut to a sensible length.
fn sanitize(text: &str, redact: &[String]) -> String {
    let head = match text.find('<') {
        Some(i) => text[..i].trim_end_matches([' ', ':']),
        None => text,
    };
    let mut out = head.to_owned();
    for secret in redact {
        out = out.replace(secret.as_str(), "[redacted]");
    }
    if out.chars().count() > MAX_MESSAGE_LEN {
        out = out.chars().take(MAX_MESSAGE_LEN).collect::<String>() + "…";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for ok in ["products/p1/i1.png", "a", "a/b-c_d.e.jpg"] {
            assert!(validate_key(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a/..",
            "a//b",
            "a/",
            ".hidden",
            "a/.b",
            "a b",
            "a\\b",
            "a%2e",
            "é",
            "a..b",
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
        assert!(validate_key(&"a".repeat(MAX_KEY_LEN + 1)).is_err());
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type_of("products/p/i.jpg"), "image/jpeg");
        assert_eq!(content_type_of("products/p/i.JPEG"), "image/jpeg");
        assert_eq!(content_type_of("products/p/i.webp"), "image/webp");
        assert_eq!(content_type_of("products/p/i"), "application/octet-stream");
    }

    #[test]
    fn sanitize_drops_bodies_and_credentials() {
        let text = "Generic S3 error: PUT http://h/b/k - status 403: <?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><AWSAccessKeyId>AKID</AWSAccessKeyId></Error>";
        let clean = sanitize(text, &["AKID".to_owned()]);
        assert!(!clean.contains("AKID") && !clean.contains('<'), "{clean}");
        assert_eq!(s3_error_code(text), Some("SignatureDoesNotMatch"));
        assert_eq!(
            sanitize("key AKID failed", &["AKID".to_owned()]),
            "key [redacted] failed"
        );
    }
}
