//! Request extractors that answer in our error shape instead of the framework's.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Path, Query, Request},
    http::{StatusCode, header, request::Parts},
};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode, FieldError, Location};

/// A JSON body. Malformed JSON, a wrong type or a missing field becomes a 400 naming
/// the field; a body over the limit a 413; another content type a 415.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            });
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
        match is_json {
            Some(true) => {}
            // An empty body without a content type reads as `{}`.
            None if bytes.is_empty() => return parse(b"{}").map(ApiJson),
            _ => {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    ErrorCode::UnsupportedMediaType,
                    "Expected a JSON body with Content-Type: application/json",
                ));
            }
        }
        parse(&bytes).map(ApiJson)
    }
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            let mut e = ApiError::bad_request(format!("Malformed JSON: {inner}"));
            e.code = ErrorCode::MalformedJson;
            e
        } else {
            let path = if path == "." { String::new() } else { path };
            // serde's text carries a "at line 1 column 9" tail that helps nobody.
            let msg = inner.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
            let msg = if path.is_empty() {
                msg
            } else {
                format!("{path}: {msg}")
            };
            ApiError::validation(vec![FieldError::new(Location::Body, path, msg)])
        }
    })
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

/// An integer from JSON: a number without a fraction, or a numeric string.
pub fn json_int(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                .map(|f| f as i64)
        }),
        serde_json::Value::String(s) => s.trim().parse().ok(),
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
}
