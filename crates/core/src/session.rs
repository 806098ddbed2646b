//! The browser's session: the same JWT as the bearer token, carried in an
//! `HttpOnly`, `SameSite=Strict` cookie so no script can read it, with a CSRF
//! token bound to that session for writes.
//!
//! * A client asks for a cookie by sending `X-Auth-Session: cookie` on login,
//!   register or refresh; the answer then sets `ecap_session` (HttpOnly) and
//!   `ecap_csrf` (readable: the double-submit half) and carries `csrfToken`
//!   instead of `token`.
//! * Every authenticated route accepts `Authorization: Bearer …` (no CSRF, as
//!   before) or the cookie; a cookie-authenticated write (anything but GET,
//!   HEAD, OPTIONS) needs `X-CSRF-Token` equal to the HMAC of the session's
//!   `jti` under the JWT secret (so a token planted by another site is useless).
//! * [`request_claims`] is the one function that reads a request's
//!   credentials: the auth extractors and the gateway's edge check call it.

use axum::http::{HeaderMap, HeaderValue, Method, header, request::Parts};

use crate::{
    ApiError,
    auth::{AuthState, Claims, JwtKeys},
    error::ErrorCode,
};

pub const SESSION_COOKIE: &str = "ecap_session";
pub const CSRF_COOKIE: &str = "ecap_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// `X-Auth-Session: cookie` on login/register/refresh asks for the cookie.
pub const SESSION_MODE_HEADER: &str = "x-auth-session";

/// Where a request's token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    Bearer(&'a str),
    Cookie(&'a str),
}

impl<'a> Credential<'a> {
    pub fn token(self) -> &'a str {
        match self {
            Self::Bearer(t) | Self::Cookie(t) => t,
        }
    }
}

/// A cookie's value from the `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The request's credential: a bearer header wins over the cookie.
pub fn credential(headers: &HeaderMap) -> Option<Credential<'_>> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let token = value.strip_prefix("Bearer ").map(str::trim);
        return token.filter(|t| !t.is_empty()).map(Credential::Bearer);
    }
    cookie(headers, SESSION_COOKIE).map(Credential::Cookie)
}

/// Whether the request carries any credential (a stale one included).
pub fn has_credential(headers: &HeaderMap) -> bool {
    headers.contains_key(header::AUTHORIZATION) || cookie(headers, SESSION_COOKIE).is_some()
}

fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Refuses a cookie-authenticated write without the session's CSRF token.
pub fn check_csrf(
    keys: &JwtKeys,
    method: &Method,
    headers: &HeaderMap,
    claims: &Claims,
) -> Result<(), ApiError> {
    if !is_write(method) {
        return Ok(());
    }
    let given = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let expected = keys.csrf_token(claims)?;
    if given.is_empty() || !same(given.trim().as_bytes(), expected.as_bytes()) {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "CSRF token missing or invalid (send the ecap_csrf cookie's value as X-CSRF-Token)",
        ));
    }
    Ok(())
}

/// The verified, unrevoked claims of a request: from its bearer token, or
/// from the session cookie (then a write must carry the CSRF token).
pub async fn request_claims(
    auth: &AuthState,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Claims, ApiError> {
    let credential = credential(headers).ok_or_else(|| {
        ApiError::unauthorized(ErrorCode::Unauthenticated, "Authentication token required")
    })?;
    let claims = auth.authenticate(credential.token()).await?;
    if let Credential::Cookie(_) = credential {
        check_csrf(&auth.keys, method, headers, &claims)?;
    }
    Ok(claims)
}

/// [`request_claims`] for extractors.
pub async fn parts_claims(auth: &AuthState, parts: &Parts) -> Result<Claims, ApiError> {
    request_claims(auth, &parts.method, &parts.headers).await
}

/// Whether the client asked for a cookie session (`X-Auth-Session: cookie`).
pub fn wants_cookie(headers: &HeaderMap) -> bool {
    headers
        .get(SESSION_MODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("cookie"))
}

/// Whether the request reached us over TLS (directly or through a proxy that says so).
pub fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
        || headers
            .get("forwarded")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("proto=https"))
}

fn cookie_header(
    name: &str,
    value: &str,
    max_age: u64,
    http_only: bool,
    secure: bool,
) -> Result<HeaderValue, ApiError> {
    let mut text = format!("{name}={value}; Path=/; Max-Age={max_age}; SameSite=Strict");
    if http_only {
        text.push_str("; HttpOnly");
    }
    if secure {
        text.push_str("; Secure");
    }
    HeaderValue::from_str(&text).map_err(ApiError::internal)
}

/// The `Set-Cookie` values that start a session for `token`, and its CSRF token.
pub fn session_cookies(
    keys: &JwtKeys,
    token: &str,
    claims: &Claims,
    secure: bool,
) -> Result<([HeaderValue; 2], String), ApiError> {
    let max_age = claims
        .exp
        .saturating_sub(jsonwebtoken::get_current_timestamp());
    let csrf = keys.csrf_token(claims)?;
    Ok((
        [
            cookie_header(SESSION_COOKIE, token, max_age, true, secure)?,
            cookie_header(CSRF_COOKIE, &csrf, max_age, false, secure)?,
        ],
        csrf,
    ))
}

/// The `Set-Cookie` values that end a session in the browser.
pub fn clear_cookies(secure: bool) -> Result<[HeaderValue; 2], ApiError> {
    Ok([
        cookie_header(SESSION_COOKIE, "", 0, true, secure)?,
        cookie_header(CSRF_COOKIE, "", 0, false, secure)?,
    ])
}

/// Adds `Set-Cookie` headers to an answer.
pub fn set_cookies(res: &mut axum::response::Response, cookies: [HeaderValue; 2]) {
    for c in cookies {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; ecap_session=tok; ecap_csrf=c"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("tok"));
        assert_eq!(credential(&h), Some(Credential::Cookie("tok")));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer b"));
        assert_eq!(credential(&h), Some(Credential::Bearer("b")));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic x"));
        assert_eq!(credential(&h), None);
    }

    #[test]
    fn tls_is_read_from_proxy_headers() {
        let mut h = HeaderMap::new();
        assert!(!over_tls(&h));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(over_tls(&h));
    }
}
