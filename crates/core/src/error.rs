//! The one error shape every service answers with, and the success envelope.
//!
//! `{ success: false, message, code, errors: [{type, path, msg, location}] }` is a
//! superset of the contract's three validation variants: `errors` for variants A
//! and B, `message` (the first failing rule's text) for variant C.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use serde_json::Value;

/// Where a failing value came from.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Location {
    Body,
    Params,
    Query,
    Headers,
}

/// One failing rule, in express-validator's shape.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    /// Always `field`.
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "field")]
    pub kind: &'static str,
    pub path: String,
    pub msg: String,
    pub location: Location,
}

impl FieldError {
    pub fn new(location: Location, path: impl Into<String>, msg: impl Into<String>) -> Self {
        Self {
            kind: "field",
            path: path.into(),
            msg: msg.into(),
            location,
        }
    }
    pub fn body(path: impl Into<String>, msg: impl Into<String>) -> Self {
        Self::new(Location::Body, path, msg)
    }
}

/// Stable machine-readable codes, one per kind of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    ValidationFailed,
    MalformedJson,
    MalformedForm,
    UnsupportedMediaType,
    PayloadTooLarge,
    HeadersTooLarge,
    Unauthenticated,
    TokenExpired,
    InvalidToken,
    TokenRevoked,
    Forbidden,
    NotFound,
    RouteNotFound,
    MethodNotAllowed,
    Conflict,
    RateLimited,
    AccountLocked,
    Unavailable,
    InsufficientStorage,
    Internal,
}

/// Marks an error as "the disk under the database is full": a request that
/// hits it is answered 507 `insufficient_storage` (see [`ApiError::internal`]).
pub const STORAGE_FULL: &str = "storage full: ";

/// An error answer. Internal causes are logged once, at the edge, and never sent.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub errors: Vec<FieldError>,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            errors: Vec::new(),
            retry_after_secs: None,
        }
    }

    /// A 400 listing every failing rule; the message is the first rule's text.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let message = errors
            .first()
            .map_or_else(|| "Validation failed".to_owned(), |e| e.msg.clone());
        Self {
            errors,
            ..Self::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::ValidationFailed,
                message,
            )
        }
    }

    pub fn field(path: &str, msg: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::body(path, msg)])
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::ValidationFailed,
            message,
        )
    }
    pub fn unauthorized(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, ErrorCode::Conflict, message)
    }

    /// This error (a 404 or 409 about a body field: an unknown category, an
    /// e-mail in use) with `errors` naming the field, its message as the rule's.
    pub fn naming(mut self, path: &str) -> Self {
        self.errors = vec![FieldError::body(path, self.message.clone())];
        self
    }

    /// Logs the cause with the request's span and answers a generic 500, or
    /// 503 `unavailable` (with `Retry-After`) when the cause is marked as a
    /// dependency that did not answer, or 507 `insufficient_storage` when it
    /// is marked as a full disk.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let text = cause.to_string();
        // Another service did not answer (split shape): say so, 503, retry soon.
        if let Some(at) = text.find(crate::ports::UNAVAILABLE) {
            let what = &text[at + crate::ports::UNAVAILABLE.len()..];
            tracing::warn!(error = %text, "a dependency is unavailable");
            let mut e = Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable,
                format!("Service temporarily unavailable: {what}"),
            );
            e.retry_after_secs = Some(5);
            return e;
        }
        if let Some(at) = text.find(STORAGE_FULL) {
            let what = &text[at + STORAGE_FULL.len()..];
            tracing::error!(error = %text, "out of storage");
            let mut e = Self::new(
                StatusCode::INSUFFICIENT_STORAGE,
                ErrorCode::InsufficientStorage,
                format!("The change could not be saved: {what}; nothing was changed"),
            );
            e.retry_after_secs = Some(30);
            return e;
        }
        tracing::error!(error = %text, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "Internal server error",
        )
    }

    pub fn body(&self) -> Value {
        serde_json::to_value(ErrorBody {
            success: false,
            message: &self.message,
            code: self.code,
            errors: &self.errors,
        })
        .unwrap_or(Value::Null)
    }
}

/// Every error answer's body; the OpenAPI document's `Error` schema is derived
/// from this type, so the two cannot drift.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody<'a> {
    /// Always `false`.
    pub success: bool,
    /// What went wrong (the first failing rule's text for a validation error).
    #[schema(value_type = String)]
    pub message: &'a str,
    pub code: ErrorCode,
    /// Every failing rule (empty when the error is not about fields).
    #[schema(value_type = Vec<FieldError>)]
    pub errors: &'a [FieldError],
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, Json(self.body())).into_response();
        // A body refused as too large is left unread: the connection cannot
        // carry another request, so the client is told not to reuse it (it
        // would otherwise send its next request into a closing socket).
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Some(secs) = self.retry_after_secs
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        match e {
            crate::db::DbError::Conflict(what) => Self::conflict(what),
            other => Self::internal(other),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// `200 {success: true, message?, data?}`.
pub fn ok<T: Serialize>(message: Option<&str>, data: Option<T>) -> Response {
    envelope(StatusCode::OK, message, data)
}

/// `200 {success: true, message}`.
pub fn ok_message(message: &str) -> Response {
    envelope::<()>(StatusCode::OK, Some(message), None)
}

/// `201 {success: true, message, data}`.
pub fn created<T: Serialize>(message: &str, data: T) -> Response {
    envelope(StatusCode::CREATED, Some(message), Some(data))
}

#[derive(Serialize)]
struct Envelope<'a, T> {
    success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<T>,
}

/// Serialises straight to bytes: no intermediate `Value` tree.
pub fn envelope<T: Serialize>(
    status: StatusCode,
    message: Option<&str>,
    data: Option<T>,
) -> Response {
    let body = Envelope {
        success: true,
        message,
        data,
    };
    match serde_json::to_vec(&body) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_error_is_a_superset_of_the_three_variants() {
        let e = ApiError::validation(vec![
            FieldError::body("email", "Valid email is required"),
            FieldError::body("name", "Name must be at least 2 characters"),
        ]);
        let b = e.body();
        assert_eq!(b["success"], false);
        assert_eq!(b["message"], "Valid email is required");
        assert_eq!(b["errors"][1]["path"], "name");
        assert_eq!(b["errors"][0]["location"], "body");
        assert_eq!(b["errors"][0]["type"], "field");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }
}
