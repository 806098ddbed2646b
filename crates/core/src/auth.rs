//! JWTs (HS256, algorithm pinned), roles, and the extractors that make a handler's
//! permission visible in its signature.

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{FromRef, FromRequestParts},
    http::{header, request::Parts},
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

use crate::{
    config::Secret,
    error::{ApiError, ErrorCode},
    revocation::Revocations,
};

/// What a user may do. Only a verified token carries one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Merchant,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Merchant => "merchant",
            Self::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "customer" => Some(Self::Customer),
            "merchant" => Some(Self::Merchant),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// The contract's claims (`userId`, `email`, `role`, `iat`, `exp`) plus `jti`
/// (revoking one token) and `ver` (revoking every older token of a user).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    #[serde(rename = "userId")]
    pub user_id: i64,
    pub email: String,
    pub role: Role,
    pub iat: u64,
    pub exp: u64,
    pub jti: String,
    #[serde(default)]
    pub ver: i64,
}

/// Signing and verifying keys with the pinned algorithm.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetime: Duration,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    pub fn new(secret: &Secret, lifetime: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = 5;
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp", "iat"]);
        Self {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
            lifetime,
        }
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Signs a fresh token for a user at token generation `ver`.
    pub fn issue(
        &self,
        user_id: i64,
        email: &str,
        role: Role,
        ver: i64,
    ) -> Result<(String, Claims), ApiError> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            user_id,
            email: email.to_owned(),
            role,
            iat: now,
            exp: now + self.lifetime.as_secs(),
            jti: uuid::Uuid::new_v4().simple().to_string(),
            ver,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(ApiError::internal)?;
        Ok((token, claims))
    }

    /// The CSRF token of a cookie session: HMAC-SHA256 of its `jti` under the
    /// JWT secret (base64url), so only this server can mint one for a session.
    pub fn csrf_token(&self, claims: &Claims) -> Result<String, ApiError> {
        jsonwebtoken::crypto::sign(
            format!("csrf:{}", claims.jti).as_bytes(),
            &self.encoding,
            Algorithm::HS256,
        )
        .map_err(ApiError::internal)
    }

    /// Signature, algorithm, `exp` and `iat` checked; revocation is the caller's next step.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => {
                    ApiError::unauthorized(ErrorCode::TokenExpired, "Token expired")
                }
                _ => ApiError::unauthorized(ErrorCode::InvalidToken, "Invalid token"),
            })?;
        let now = jsonwebtoken::get_current_timestamp();
        if data.claims.iat > now + self.validation.leeway {
            return Err(ApiError::unauthorized(
                ErrorCode::InvalidToken,
                "Invalid token",
            ));
        }
        Ok(data.claims)
    }
}

/// What the auth extractors need from a service's state.
#[derive(Clone)]
pub struct AuthState {
    pub keys: Arc<JwtKeys>,
    pub revocations: Arc<dyn Revocations>,
}

impl AuthState {
    /// Verifies a token and refuses revoked ones.
    pub async fn authenticate(&self, token: &str) -> Result<Claims, ApiError> {
        let claims = self.keys.verify(token)?;
        match self.revocations.is_revoked(&claims).await {
            Ok(false) => Ok(claims),
            Ok(true) => Err(ApiError::unauthorized(
                ErrorCode::TokenRevoked,
                "Session expired or invalid",
            )),
            // Fail closed, but as what it is: a dependency down (503, retry), not a bug.
            Err(e) => {
                tracing::warn!(error = %e, "token revocations cannot be checked");
                Err(ApiError::internal(format!(
                    "{}the token revocation store",
                    crate::ports::UNAVAILABLE
                )))
            }
        }
    }
}

/// A caller with a valid, unrevoked token: a bearer header, or the browser's
/// session cookie (writes then need the CSRF token; see [`crate::session`]).
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub claims: Claims,
}

impl AuthUser {
    pub fn id(&self) -> i64 {
        self.claims.user_id
    }
    pub fn role(&self) -> Role {
        self.claims.role
    }
    pub fn is_admin(&self) -> bool {
        self.claims.role == Role::Admin
    }
}

pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?.trim();
    (!token.is_empty()).then_some(token)
}

impl<S> FromRequestParts<S> for AuthUser
where
    AuthState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = AuthState::from_ref(state);
        let claims = crate::session::parts_claims(&auth, parts).await?;
        Ok(AuthUser { claims })
    }
}

/// A caller whose verified role is `admin`.
/// `Option<AuthUser>`, for public routes that show more to some callers: a
/// missing, expired, revoked or forged token reads as anonymous, so a stale
/// token in a browser never breaks a public page (it grants nothing either).
impl<S> axum::extract::OptionalFromRequestParts<S> for AuthUser
where
    AuthState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        if !crate::session::has_credential(&parts.headers) {
            return Ok(None);
        }
        Ok(
            <Self as FromRequestParts<S>>::from_request_parts(parts, state)
                .await
                .ok(),
        )
    }
}

#[derive(Debug, Clone)]
pub struct AdminUser(pub AuthUser);

impl<S> FromRequestParts<S> for AdminUser
where
    AuthState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if !user.is_admin() {
            return Err(ApiError::forbidden(
                "Access denied. Insufficient permissions.",
            ));
        }
        Ok(AdminUser(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &str) -> JwtKeys {
        JwtKeys::new(&Secret::new(secret), Duration::from_secs(3600))
    }

    /// A revocation store that does not answer (Redis down in the split shape).
    struct Unreachable;

    #[async_trait::async_trait]
    impl crate::revocation::Revocations for Unreachable {
        async fn revoke_token(
            &self,
            _: &str,
            _: u64,
        ) -> Result<(), crate::revocation::RevocationError> {
            Err(crate::revocation::RevocationError("refused".into()))
        }
        async fn revoke_user(
            &self,
            _: i64,
            _: i64,
        ) -> Result<(), crate::revocation::RevocationError> {
            Err(crate::revocation::RevocationError("refused".into()))
        }
        async fn is_revoked(&self, _: &Claims) -> Result<bool, crate::revocation::RevocationError> {
            Err(crate::revocation::RevocationError(
                "connection refused".into(),
            ))
        }
    }

    #[tokio::test]
    async fn an_unreachable_revocation_store_refuses_with_503() {
        let k = Arc::new(keys("first-secret-of-sixteen"));
        let (token, _) = k.issue(7, "a@b.co", Role::Customer, 0).unwrap();
        let auth = AuthState {
            keys: k,
            revocations: Arc::new(Unreachable),
        };
        let err = auth.authenticate(&token).await.unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.code, ErrorCode::Unavailable);
        assert!(
            !err.message.contains("connection refused"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_token_verifies_with_its_own_key_only() {
        let k = keys("first-secret-of-sixteen");
        let (token, claims) = k.issue(7, "a@b.co", Role::Merchant, 3).unwrap();
        assert_eq!(k.verify(&token).unwrap(), claims);
        let err = keys("other-secret-of-sixteen").verify(&token).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidToken);
    }

    #[test]
    fn alg_none_is_refused() {
        use base64_like::encode;
        let k = keys("first-secret-of-sixteen");
        let header = encode(br#"{"alg":"none","typ":"JWT"}"#);
        let now = jsonwebtoken::get_current_timestamp();
        let body = encode(
            format!(
                r#"{{"userId":1,"email":"a@b.co","role":"admin","iat":{now},"exp":{},"jti":"x"}}"#,
                now + 60
            )
            .as_bytes(),
        );
        let err = k.verify(&format!("{header}.{body}.")).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidToken);
    }

    #[test]
    fn expired_tokens_say_so() {
        let k = keys("first-secret-of-sixteen");
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            user_id: 1,
            email: "a@b.co".into(),
            role: Role::Customer,
            iat: now - 7200,
            exp: now - 3600,
            jti: "j".into(),
            ver: 0,
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"first-secret-of-sixteen"),
        )
        .unwrap();
        assert_eq!(k.verify(&token).unwrap_err().code, ErrorCode::TokenExpired);
    }

    /// Unpadded URL-safe base64, enough to forge a test token.
    mod base64_like {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        pub fn encode(input: &[u8]) -> String {
            let mut out = String::new();
            for chunk in input.chunks(3) {
                let b = [
                    chunk[0],
                    *chunk.get(1).unwrap_or(&0),
                    *chunk.get(2).unwrap_or(&0),
                ];
                let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
                for i in 0..=chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                }
            }
            out
        }
    }
}
