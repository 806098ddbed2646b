//! Request extractors that answer in our error shape instead of the framework's.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Path, Query, Request},
    http::{StatusCode, header, request::Parts},
};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode, FieldError, Location};

/// A request body: JSON, or a form (`application/x-www-form-urlencoded`), as
/// the original's services accepted both. Form keys nest the way Express's
/// `qs` parser read them (`items[0][productId]=…`, `tags[]=…`,
/// `shippingAddress[city]=…`); every value arrives as text and is read as the
/// number or boolean a field expects, so a form passes through the same
/// validation as the JSON it stands for. Malformed input, a wrong type or a
/// missing field becomes a 400 naming the field; a body over the limit a 413;
/// another content type a 415.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

/// How a body is encoded, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Json,
    Form,
    Other,
}

fn body_kind(content_type: Option<&str>) -> Option<BodyKind> {
    let mime = content_type?.split(';').next()?.trim().to_ascii_lowercase();
    Some(if mime == "application/json" || mime.ends_with("+json") {
        BodyKind::Json
    } else if mime == "application/x-www-form-urlencoded" {
        BodyKind::Form
    } else {
        BodyKind::Other
    })
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let kind = body_kind(
            req.headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
        );
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ErrorCode::PayloadTooLarge,
                    "Request body is too large",
                )
            } else {
                ApiError::bad_request(format!("Could not read the request body: {rejection}"))
            }
        })?;
        match kind {
            Some(BodyKind::Json) => parse(&bytes).map(ApiJson),
            // An empty body without a content type, or an empty form, reads as `{}`.
            None | Some(BodyKind::Form) if bytes.is_empty() => parse(b"{}").map(ApiJson),
            Some(BodyKind::Form) => parse_form(&bytes).map(ApiJson),
            None | Some(BodyKind::Other) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "Expected a JSON body (Content-Type: application/json) or a form \
                 (application/x-www-form-urlencoded)",
            )),
        }
    }
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    inspect_json(bytes)?;
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            let mut e = ApiError::bad_request(format!("Malformed JSON: {inner}"));
            e.code = ErrorCode::MalformedJson;
            e
        } else {
            // serde's text carries a "at line 1 column 9" tail that helps nobody.
            let msg = inner.to_string();
            field_error(&path, msg.split(" at line ").next().unwrap_or(&msg))
        }
    })
}

/// Refuses, before any field is read, what no handler should see: a key twice
/// in one object (which value counts would depend on the parser: the
/// original's took the last) and control characters in any string or key
/// (PostgreSQL refuses NUL in text, the other databases store it: the answer
/// must not depend on the database). Tab, newline and carriage return are
/// text. Syntax errors are left to the typed parse, which names them.
fn inspect_json(bytes: &[u8]) -> Result<(), ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde::de::DeserializeSeed::deserialize(Inspect, &mut de) {
        Err(e) if e.is_data() => {
            let msg = e.to_string();
            Err(ApiError::bad_request(
                msg.split(" at line ").next().unwrap_or(&msg).to_owned(),
            ))
        }
        _ => Ok(()),
    }
}

fn is_forbidden_char(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

fn check_text<E: serde::de::Error>(v: &str) -> Result<(), E> {
    match v.chars().find(|c| is_forbidden_char(*c)) {
        Some(c) => Err(E::custom(format!(
            "Text must not contain control characters (found U+{:04X})",
            u32::from(c)
        ))),
        None => Ok(()),
    }
}

struct Inspect;

impl<'de> serde::de::DeserializeSeed<'de> for Inspect {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Inspect {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        check_text(v)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Inspect)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen: Vec<String> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            check_text(&key)?;
            if seen.contains(&key) {
                return Err(serde::de::Error::custom(format!(
                    "The key `{key}` appears more than once in one object"
                )));
            }
            seen.push(key);
            map.next_value_seed(Inspect)?;
        }
        Ok(())
    }
}

/// A form value (or key) carrying a control character, raw or
/// percent-encoded: the same rule as JSON text ([`is_forbidden_char`], C1
/// controls such as U+0085 included), applied to the decoded form.
fn form_has_control_character(bytes: &[u8]) -> bool {
    form_urlencoded::parse(bytes)
        .any(|(key, value)| key.chars().chain(value.chars()).any(is_forbidden_char))
}

/// Nesting deeper than this is refused rather than read (Express's `qs` also stopped at 5).
const FORM_MAX_DEPTH: usize = 5;

fn parse_form<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if form_has_control_character(bytes) {
        return Err(ApiError::bad_request(
            "Text must not contain control characters",
        ));
    }
    let malformed = |e: serde_qs::Error| {
        let mut err = ApiError::bad_request(format!("Malformed form body: {e}"));
        err.code = ErrorCode::MalformedForm;
        err
    };
    let config = serde_qs::Config::new()
        .max_depth(FORM_MAX_DEPTH)
        .use_form_encoding(true);
    let de = serde_qs::Deserializer::with_config(config, bytes).map_err(malformed)?;
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        match err.into_inner() {
            serde_qs::Error::Custom(msg) => field_error(&path, &msg),
            other => malformed(other),
        }
    })
}

/// A value of the wrong type or a missing field, as a validation error at `path`.
fn field_error(path: &str, msg: &str) -> ApiError {
    let path = if path == "." { "" } else { path };
    let msg = if path.is_empty() {
        msg.to_owned()
    } else {
        format!("{path}: {msg}")
    };
    ApiError::validation(vec![FieldError::new(Location::Body, path, msg)])
}

/// Query parameters with our error shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| {
                let text = e.body_text();
                let msg = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                ApiError::validation(vec![FieldError::new(Location::Query, "", msg)])
            })
    }
}

/// The highest `page` a paged list accepts (its offset, `(page - 1) ×
/// limit`, stays far inside an `i64`); the documents publish it as the
/// parameter's maximum.
pub const PAGE_MAX: u64 = 1_000_000;

/// An integer from JSON: a number without a fraction, or a numeric string.
pub fn json_int(v: &serde_json::Value) -> Option<i64> {
    // A whole number written with a fraction (`706.0`) is an integer, as JSON
    // Schema counts it, in JSON and in a form's text alike.
    let whole = |f: f64| (f.fract() == 0.0 && f.abs() < 9e15).then_some(f as i64);
    match v {
        serde_json::Value::Number(n) => n.as_i64().or_else(|| n.as_f64().and_then(whole)),
        serde_json::Value::String(s) => {
            let s = s.trim();
            s.parse().ok().or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .and_then(whole)
            })
        }
        _ => None,
    }
}

/// A numeric `:id` path parameter; anything else is a 400 ("Invalid ID").
#[derive(Debug, Clone, Copy)]
pub struct IdParam(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for IdParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::bad_request("Invalid ID"))?;
        match raw.parse::<i64>() {
            Ok(id) if id > 0 => Ok(IdParam(id)),
            _ => Err(ApiError::validation(vec![FieldError::new(
                Location::Params,
                "id",
                "Invalid ID",
            )])),
        }
    }
}

#[cfg(test)]
mod form_char_tests {
    use super::form_has_control_character as bad;

    #[test]
    fn form_control_characters_follow_the_json_rule() {
        assert!(bad(b"street=%C2%99x"), "C1, encoded");
        assert!(bad("street=\u{85}".as_bytes()), "C1, raw");
        assert!(bad(b"a=%00") && bad(b"a=%1f") && bad(b"a=%7F") && bad(b"a=\x01"));
        assert!(bad(b"%01key=1"), "in a key");
        assert!(
            !bad(b"a=%09b%0A%0D&c=%E2%82%AC+d"),
            "tab, newline, CR, euro, space"
        );
        assert!(!bad(b"a=%zz&b=%"), "not an escape");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        email: String,
        age: Option<u8>,
    }

    #[test]
    fn wrong_type_names_the_field() {
        let err = parse::<Body>(br#"{"email": 5}"#).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.errors[0].path, "email");
        assert!(
            err.message.starts_with("email: invalid type"),
            "{}",
            err.message
        );
    }

    #[test]
    fn malformed_json_is_its_own_code() {
        let err = parse::<Body>(br#"{"email": "#).unwrap_err();
        assert_eq!(err.code, ErrorCode::MalformedJson);
    }

    #[test]
    fn missing_field_is_a_validation_error() {
        let err = parse::<Body>(br#"{}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::ValidationFailed);
        assert!(err.message.contains("missing field `email`"));
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Order {
        items: Vec<Line>,
        payment_method: String,
        gift: Option<bool>,
        note: Option<serde_json::Value>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Line {
        product_id: String,
        quantity: i64,
        price: Option<f64>,
    }

    #[test]
    fn a_form_nests_like_qs_and_reads_typed_fields() {
        let order: Order = parse_form(
            b"items%5B0%5D%5BproductId%5D=p1&items[0][quantity]=2&items[0][price]=9.5\
              &items[1][productId]=p+2&items[1][quantity]=1&paymentMethod=cod&gift=true&note=hi",
        )
        .unwrap();
        assert_eq!(order.items[0].quantity, 2);
        assert_eq!(order.items[0].price, Some(9.5));
        assert_eq!(order.items[1].product_id, "p 2");
        assert_eq!(order.gift, Some(true));
        // Untyped values stay text: handlers read numbers from strings as they do in JSON.
        assert_eq!(order.note, Some(serde_json::json!("hi")));
        let any: serde_json::Value = parse_form(b"tags[]=a&tags[]=b&address[city]=Pune").unwrap();
        assert_eq!(
            any,
            serde_json::json!({"tags": ["a", "b"], "address": {"city": "Pune"}})
        );
    }

    #[test]
    fn form_errors_name_the_field_like_json_errors() {
        let err =
            parse_form::<Order>(b"items[0][productId]=p1&items[0][quantity]=two&paymentMethod=cod")
                .unwrap_err();
        assert_eq!(err.code, ErrorCode::ValidationFailed);
        assert_eq!(err.errors[0].path, "items[0].quantity");
        let err = parse_form::<Body>(b"age=1").unwrap_err();
        assert!(
            err.message.contains("missing field `email`"),
            "{}",
            err.message
        );
        let err = parse_form::<Body>(b"email=a%FF").unwrap_err();
        assert_eq!(err.code, ErrorCode::MalformedForm);
        let err = parse_form::<Body>(b"email[=x").unwrap_err();
        assert_eq!(err.code, ErrorCode::MalformedForm);
    }

    #[test]
    fn content_types_pick_the_parser() {
        assert_eq!(
            body_kind(Some("application/json; charset=utf-8")),
            Some(BodyKind::Json)
        );
        assert_eq!(
            body_kind(Some("application/merge-patch+json")),
            Some(BodyKind::Json)
        );
        assert_eq!(
            body_kind(Some("Application/X-WWW-Form-Urlencoded;charset=UTF-8")),
            Some(BodyKind::Form)
        );
        assert_eq!(body_kind(Some("text/plain")), Some(BodyKind::Other));
        assert_eq!(body_kind(None), None);
    }
}
