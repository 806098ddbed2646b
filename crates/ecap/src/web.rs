//! The browser app (`frontend/`), embedded in the binary at build time and
//! served at `/`: every path the API does not own answers with the app's
//! `index.html` (client-side routes), hashed assets are cached forever, and
//! precompressed gzip/brotli variants are picked by `Accept-Encoding`.
//!
//! Paths under `/api`, `/media`, `/internal` and the probes are never answered
//! here: an unknown one stays the API's JSON 404.

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::any,
};

/// One file of the built app, with its precompressed variants.
pub struct Asset {
    pub path: &'static str,
    pub body: &'static [u8],
    pub gzip: Option<&'static [u8]>,
    pub br: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The app's pages: scripts and styles from this origin only, no inline
/// script, API calls to this origin only, images also from HTTPS (product
/// images may live on a CDN or S3).
pub const APP_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob: https:; font-src 'self'; connect-src 'self'; \
    manifest-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'self'; \
    form-action 'self'; frame-ancestors 'none'";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const NO_CACHE: &str = "no-cache";

/// Path prefixes the app never answers (the API's and the probes').
const RESERVED: [&str; 6] = ["api", "media", "internal", "health", "ready", "metrics"];

/// Whether the binary carries a built app.
pub fn is_built() -> bool {
    asset("index.html").is_some()
}

fn asset(path: &str) -> Option<&'static Asset> {
    find(ASSETS, path)
}

fn find(assets: &'static [Asset], path: &str) -> Option<&'static Asset> {
    assets.iter().find(|a| a.path == path)
}

/// The app at `/` and every path the API does not own (merge it into the
/// API's router, or use it as a fallback service).
pub fn router() -> Router {
    router_with(ASSETS)
}

/// [`router`] over another set of files (tests).
pub fn router_with(assets: &'static [Asset]) -> Router {
    Router::new()
        .route("/", any(serve))
        .route("/{*path}", any(serve))
        .with_state(assets)
}

fn reserved(path: &str) -> bool {
    let first = path.split('/').next().unwrap_or_default();
    RESERVED.contains(&first)
}

async fn serve(
    State(assets): State<&'static [Asset]>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path().trim_start_matches('/');
    if reserved(path) || !matches!(method, Method::GET | Method::HEAD) {
        return ecap_core::http::route_not_found().await.into_response();
    }
    if let Some(a) = find(assets, path).filter(|a| a.path != "index.html") {
        let cache = if path.starts_with("assets/") {
            IMMUTABLE
        } else {
            NO_CACHE
        };
        return file(a, &headers, cache, false);
    }
    // A missing file (a name with an extension, or anything under assets/)
    // is a plain 404, not the app: a stale chunk must fail loudly.
    let last = path.rsplit('/').next().unwrap_or_default();
    if path.starts_with("assets/") || (last.contains('.') && !last.ends_with(".html")) {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Not found",
        )
            .into_response();
    }
    match find(assets, "index.html") {
        Some(index) => file(index, &headers, NO_CACHE, true),
        None => not_built(),
    }
}

/// Picks the smallest variant the client accepts.
fn encoding(headers: &HeaderMap, a: &Asset) -> (&'static [u8], Option<&'static str>) {
    let accepts = |name: &str| {
        headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|item| {
                let mut parts = item.split(';');
                let token = parts.next().unwrap_or_default().trim();
                let refused = parts.any(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.trim().parse::<f32>().ok())
                        .is_some_and(|q| q <= 0.0)
                });
                token.eq_ignore_ascii_case(name) && !refused
            })
    };
    match (a.br, a.gzip) {
        (Some(br), _) if accepts("br") => (br, Some("br")),
        (_, Some(gz)) if accepts("gzip") => (gz, Some("gzip")),
        _ => (a.body, None),
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn file(a: &Asset, headers: &HeaderMap, cache: &'static str, page: bool) -> Response {
    let (body, enc) = encoding(headers, a);
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(a.path)),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Some(enc) = enc {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(enc));
    }
    if page {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(APP_CSP),
        );
    }
    res
}

/// What `/` says when the binary was built without the app.
fn not_built() -> Response {
    let mut res = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, NO_CACHE),
        ],
        NOT_BUILT_PAGE,
    )
        .into_response();
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; \
             form-action 'none'; frame-ancestors 'none'",
        ),
    );
    res
}

const NOT_BUILT_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>ecap — the dashboard is not built</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1f2937}code,pre{background:#f3f4f6;border-radius:4px;padding:.1rem .3rem}pre{padding:.75rem}</style>
</head><body>
<h1>ecap is running; the dashboard is not built</h1>
<p>This binary was compiled without the browser app. The API works: see <a href="/api/docs">/api/docs</a> and <a href="/api">/api</a>.</p>
<p>To get the dashboard, build the app (Node 20 and npm) and then the binary:</p>
<pre>cd frontend &amp;&amp; npm ci &amp;&amp; npm run build &amp;&amp; cd ..
cargo run --release -p ecap -- serve</pre>
<p>or simply <code>make run</code>, which does both.</p>
</body></html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_are_reserved() {
        for p in [
            "api",
            "api/nope",
            "media/x.png",
            "health",
            "ready",
            "metrics",
            "internal/x",
        ] {
            assert!(reserved(p), "{p}");
        }
        for p in ["", "products", "orders/5", "apis", "healthy"] {
            assert!(!reserved(p), "{p}");
        }
    }

    #[test]
    fn encodings_follow_accept_encoding() {
        let a = Asset {
            path: "assets/a.js",
            body: b"plain",
            gzip: Some(b"gz"),
            br: Some(b"br"),
        };
        let mut h = HeaderMap::new();
        assert_eq!(encoding(&h, &a).1, None);
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, br"),
        );
        assert_eq!(encoding(&h, &a).1, Some("br"));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, br;q=0"),
        );
        assert_eq!(encoding(&h, &a).1, Some("gzip"));
    }
}
