//! Handlers of the users service: parse, authorise, call the store, shape the
//! contract's response.

use std::collections::HashMap;

use axum::{
    extract::State,
    http::{HeaderMap, Method, StatusCode},
    response::Response,
};
use ecap_core::{
    ApiError, ApiResult,
    auth::{AdminUser, AuthUser, Role},
    clock,
    error::{ErrorCode, created, ok, ok_message},
    extract::{ApiJson, ApiQuery, IdParam, PAGE_MAX},
    ports::CustomerStats,
    session,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::{
    UsersState,
    domain::{ADDRESS_FIELDS, Checks, Email, check_name, check_password, check_phone, check_text},
    password::{HashError, Verdict},
    store::{
        AddressFields, AddressRow, NewUser, StoreError, UserChanges, UserListQuery, UserRow,
        UserSort,
    },
};

pub(crate) const TAG_AUTH: &str = "auth";
pub(crate) const TAG_PROFILE: &str = "profile";
pub(crate) const TAG_ADMIN: &str = "users (admin)";

fn hash_error(e: HashError) -> ApiError {
    match e {
        HashError::Busy => {
            let mut err = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable,
                "Too many sign-ins at once; try again in a moment",
            );
            err.retry_after_secs = Some(1);
            err
        }
        other => ApiError::internal(other),
    }
}

fn store_error(e: StoreError, not_found: &str) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found(not_found),
        StoreError::EmailTaken => ApiError::conflict("Email already in use"),
        StoreError::BootstrapClosed => {
            ApiError::forbidden("Registering as admin is not allowed: an admin already exists")
        }
        StoreError::LastAdmin => ApiError::conflict("The last admin cannot lose the admin role"),
        StoreError::NotAdmin => ApiError::forbidden("Access denied. Insufficient permissions."),
        StoreError::CountChanged(n) => ApiError::conflict(format!(
            "The confirmation does not match: {n} account(s) would be deleted now; \
             nothing was deleted (send confirm: {n} after checking with dryRun)"
        )),
        StoreError::Db(e) => ApiError::internal(e),
    }
}

/// The user as every route shows it: the contract's snake_case and camelCase
/// timestamps both present, never the hash.
fn user_json(u: &UserRow) -> Value {
    serde_json::to_value(UserOut::of(u)).unwrap_or(Value::Null)
}

fn address_json(a: &AddressRow) -> Value {
    json!({
        "id": a.id,
        "userId": a.user_id,
        "label": a.label,
        "street": a.street,
        "city": a.city,
        "state": a.state,
        "zipCode": a.zip_code,
        "country": a.country,
        "phone": a.phone,
        "isDefault": a.is_default == 1,
        "createdAt": clock::iso(a.created_at),
        "updatedAt": clock::iso(a.updated_at),
    })
}

fn cents(c: i64) -> f64 {
    c as f64 / 100.0
}

fn issue_claims(state: &UsersState, u: &UserRow) -> ApiResult<(String, ecap_core::auth::Claims)> {
    state
        .auth
        .keys
        .issue(u.id, &u.email, u.role(), u.token_version)
}

/// The answer of login, register and refresh: the token in the body, or, when
/// the browser asked for a cookie session (`X-Auth-Session: cookie`), the
/// token in an HttpOnly cookie and only the CSRF token in the body.
fn session_answer(
    state: &UsersState,
    headers: &HeaderMap,
    user: &UserRow,
    mut data: Value,
    respond: impl FnOnce(Value) -> Response,
) -> ApiResult<Response> {
    let (token, claims) = issue_claims(state, user)?;
    if !session::wants_cookie(headers) {
        data["token"] = json!(token);
        return Ok(respond(data));
    }
    let (cookies, csrf) = session::session_cookies(
        &state.auth.keys,
        &token,
        &claims,
        session::over_tls(headers),
    )?;
    data["csrfToken"] = json!(csrf);
    data["expiresAt"] = json!(claims.exp);
    let mut res = respond(data);
    session::set_cookies(&mut res, cookies);
    Ok(res)
}

/// Revokes every token of `user_id` below `version` in the shared list.
async fn revoke_user(state: &UsersState, user_id: i64, version: i64) -> ApiResult<()> {
    state
        .auth
        .revocations
        .revoke_user(user_id, version)
        .await
        .map_err(ApiError::internal)
}

// ---- auth ---------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterBody {
    #[schema(example = "jane@example.com")]
    email: Option<String>,
    #[schema(example = "Secret1!")]
    password: Option<String>,
    #[schema(example = "Jane Doe")]
    name: Option<String>,
    /// `customer` (default) or `merchant`; `admin` only for the first admin,
    /// with `setupToken`.
    role: Option<String>,
    /// The first admin's proof of holding the machine: `ECAP_SETUP_TOKEN`, or
    /// the token the server printed in its log at start.
    setup_token: Option<String>,
}

/// Register a new account and get a token that works at once.
#[utoipa::path(post, path = "/api/auth/register", tag = TAG_AUTH, request_body = RegisterBody,
    responses((status = 201, description = "Registered: `data.user`, `data.token`"),
        (status = 400, description = "Validation failed"),
        (status = 403, description = "`role: admin` without the right `setupToken`, or an admin already exists"),
        (status = 409, description = "User with this email already exists")))]
pub async fn register(
    State(state): State<UsersState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RegisterBody>,
) -> ApiResult<Response> {
    let mut checks = Checks::default();
    let email = checks.check(
        "email",
        Email::parse(body.email.as_deref().unwrap_or_default()),
    );
    let password = body.password.unwrap_or_default();
    checks.check("password", check_password(&password));
    let name = checks.check("name", check_name(body.name.as_deref().unwrap_or_default()));
    let role = match body.role.as_deref().map(str::trim) {
        None | Some("") => Some(Role::Customer),
        Some(r) => checks.check("role", Role::parse(r).ok_or("Invalid role")),
    };
    checks.finish()?;
    let (Some(email), Some(name), Some(role)) = (email, name, role) else {
        return Err(ApiError::bad_request("Validation failed"));
    };
    if role == Role::Admin {
        check_setup_token(&state, body.setup_token.as_deref())?;
    }
    let user = create_account(&state, &email, &password, name, None, role, true).await?;
    if role == Role::Admin {
        tracing::warn!(
            user_id = user.id,
            "first admin registered through the API with the setup token"
        );
    }
    session_answer(
        &state,
        &headers,
        &user,
        json!({ "user": auth_user_json(&user) }),
        |data| created("User registered successfully", data),
    )
}

/// Registering as admin is the first admin's setup: it needs the setup token
/// (compared in constant time); the store then takes it only while no admin
/// exists, once.
fn check_setup_token(state: &UsersState, given: Option<&str>) -> ApiResult<()> {
    if !state.settings.admin_bootstrap {
        return Err(ApiError::forbidden(
            "Registering as admin is disabled: an admin creates admins (POST /api/users), \
             or an operator runs `ecap users create-admin`",
        ));
    }
    let Some(expected) = &state.settings.setup_token else {
        return Err(store_error(StoreError::BootstrapClosed, ""));
    };
    let matches = given.is_some_and(|g| {
        bool::from(subtle::ConstantTimeEq::ct_eq(
            g.trim().as_bytes(),
            expected.expose().as_bytes(),
        ))
    });
    if !matches {
        return Err(ApiError::forbidden(
            "Registering as admin needs the setup token (setupToken): ECAP_SETUP_TOKEN, or the \
             token the server printed in its log at start",
        ));
    }
    Ok(())
}

/// Hashes the password and stores a new account (`bootstrap`: an admin only
/// while none exists); a taken e-mail is 409.
async fn create_account(
    state: &UsersState,
    email: &Email,
    password: &str,
    name: String,
    phone: Option<String>,
    role: Role,
    bootstrap: bool,
) -> ApiResult<UserRow> {
    let password_hash = state.hasher.hash(password).await.map_err(hash_error)?;
    let new = NewUser {
        email: email.as_str().to_owned(),
        password_hash,
        name,
        phone,
        role,
    };
    state
        .store
        .create(new, bootstrap)
        .await
        .map_err(|e| match e {
            StoreError::EmailTaken => ApiError::conflict("User with this email already exists"),
            other => store_error(other, "User not found"),
        })
}

fn auth_user_json(u: &UserRow) -> Value {
    json!({ "id": u.id, "email": u.email, "name": u.name, "role": u.role })
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginBody {
    email: Option<String>,
    password: Option<String>,
}

/// Log in with e-mail and password.
#[utoipa::path(post, path = "/api/auth/login", tag = TAG_AUTH, request_body = LoginBody,
    responses((status = 200, description = "Logged in: `data.user`, `data.token`"),
        (status = 400, description = "Validation failed"),
        (status = 401, description = "Invalid credentials"),
        (status = 429, description = "Too many failed logins for this account, or too many attempts from this address")))]
pub async fn login(
    State(state): State<UsersState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<Response> {
    let mut checks = Checks::default();
    let email = checks.check(
        "email",
        Email::parse(body.email.as_deref().unwrap_or_default()),
    );
    let password = body.password.unwrap_or_default();
    if password.is_empty() {
        checks.fail("password", "Password is required");
    }
    checks.finish()?;
    let Some(email) = email else {
        return Err(ApiError::bad_request("Validation failed"));
    };
    let user = state
        .store
        .by_email(email.as_str())
        .await
        .map_err(|e| store_error(e, "User not found"))?;
    let now = clock::now_ms();
    if let Some(until) = user
        .as_ref()
        .and_then(|u| u.locked_until)
        .filter(|t| *t > now)
    {
        return Err(locked(until, now));
    }
    let verdict = state
        .hasher
        .verify(&password, user.as_ref().map(|u| u.password_hash.as_str()))
        .await
        .map_err(hash_error)?;
    let Some(user) = user else {
        return Err(invalid_credentials());
    };
    if verdict == Verdict::Mismatch {
        let lock = state
            .store
            .record_login_failure(
                user.id,
                state.settings.max_failures,
                state.settings.lockout_ms,
            )
            .await
            .map_err(|e| store_error(e, "User not found"))?;
        if lock.is_some() {
            tracing::warn!(
                user_id = user.id,
                "account locked after repeated failed logins"
            );
        }
        return Err(invalid_credentials());
    }
    if user.failed_logins > 0 || user.locked_until.is_some() {
        state
            .store
            .clear_login_failures(user.id)
            .await
            .map_err(|e| store_error(e, "User not found"))?;
    }
    if verdict == Verdict::MatchNeedsRehash {
        let hash = state.hasher.hash(&password).await.map_err(hash_error)?;
        state
            .store
            .set_password(user.id, &hash, false)
            .await
            .map_err(|e| store_error(e, "User not found"))?;
        tracing::info!(user_id = user.id, "password re-hashed with argon2id");
    }
    session_answer(
        &state,
        &headers,
        &user,
        json!({ "user": auth_user_json(&user) }),
        |data| ok(Some("Login successful"), Some(data)),
    )
}

fn invalid_credentials() -> ApiError {
    ApiError::unauthorized(ErrorCode::Unauthenticated, "Invalid credentials")
}

fn locked(until: i64, now: i64) -> ApiError {
    let secs = ((until - now) / 1000).max(1) as u64;
    let mut e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::AccountLocked,
        format!(
            "Too many failed login attempts. Try again in {} minute(s).",
            secs.div_ceil(60)
        ),
    );
    e.retry_after_secs = Some(secs);
    e
}

/// Log out: this token is refused from now on, by every service.
#[utoipa::path(post, path = "/api/auth/logout", tag = TAG_AUTH, security(("bearer" = [])),
    responses((status = 200, description = "Logout successful"), (status = 401, description = "Not logged in")))]
pub async fn logout(
    State(state): State<UsersState>,
    headers: HeaderMap,
    user: AuthUser,
) -> ApiResult<Response> {
    revoke_token(&state, &user.claims).await?;
    let mut res = ok_message("Logout successful");
    if session::cookie(&headers, session::SESSION_COOKIE).is_some()
        || session::wants_cookie(&headers)
    {
        session::set_cookies(
            &mut res,
            session::clear_cookies(session::over_tls(&headers))?,
        );
    }
    Ok(res)
}

/// Records a token as revoked; `false` when it already was (a second refresh of one token).
async fn revoke_token(state: &UsersState, claims: &ecap_core::auth::Claims) -> ApiResult<bool> {
    let inserted = state
        .store
        .revoke_token(&claims.jti, claims.user_id, claims.exp)
        .await
        .map_err(|e| store_error(e, "User not found"))?;
    state
        .auth
        .revocations
        .revoke_token(&claims.jti, claims.exp)
        .await
        .map_err(ApiError::internal)?;
    Ok(inserted)
}

/// The logged-in user.
#[utoipa::path(get, path = "/api/auth/me", tag = TAG_AUTH, security(("bearer" = [])),
    responses((status = 200, description = "`data.user`"), (status = 401, description = "Not logged in"),
        (status = 404, description = "User not found")))]
pub async fn me(State(state): State<UsersState>, user: AuthUser) -> ApiResult<Response> {
    let row = user_or_404(&state, user.id()).await?;
    Ok(ok(
        None,
        Some(UserData {
            user: UserOut::of(&row),
        }),
    ))
}

/// The user's public fields, serialisable without a `Value` tree (`/me` is the
/// hottest route).
struct UserOut<'a> {
    row: &'a UserRow,
    created: String,
    updated: String,
}

impl<'a> UserOut<'a> {
    fn of(row: &'a UserRow) -> Self {
        Self {
            row,
            created: clock::iso(row.created_at),
            updated: clock::iso(row.updated_at),
        }
    }
}

impl Serialize for UserOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let u = self.row;
        let mut st = s.serialize_struct("User", 9)?;
        st.serialize_field("id", &u.id)?;
        st.serialize_field("email", &u.email)?;
        st.serialize_field("name", &u.name)?;
        st.serialize_field("phone", &u.phone)?;
        st.serialize_field("role", &u.role)?;
        st.serialize_field("created_at", &self.created)?;
        st.serialize_field("updated_at", &self.updated)?;
        st.serialize_field("createdAt", &self.created)?;
        st.serialize_field("updatedAt", &self.updated)?;
        st.end()
    }
}

#[derive(Serialize)]
struct UserData<'a> {
    user: UserOut<'a>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshBody {
    token: Option<String>,
}

/// Exchange a live token for a fresh one; the old one is revoked.
#[utoipa::path(post, path = "/api/auth/refresh", tag = TAG_AUTH, request_body = RefreshBody,
    responses((status = 200, description = "`data.token`"), (status = 400, description = "Token is required"),
        (status = 401, description = "Invalid or expired token")))]
pub async fn refresh(
    State(state): State<UsersState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RefreshBody>,
) -> ApiResult<Response> {
    let token = body.token.unwrap_or_default();
    // A browser session refreshes its cookie (a write: the CSRF token is needed).
    let from_cookie = token
        .trim()
        .is_empty()
        .then(|| session::cookie(&headers, session::SESSION_COOKIE))
        .flatten();
    let token = from_cookie.map_or(token, str::to_owned);
    if token.trim().is_empty() {
        return Err(ApiError::field("token", "Token is required"));
    }
    let invalid = || ApiError::unauthorized(ErrorCode::InvalidToken, "Invalid or expired token");
    let claims = state
        .auth
        .authenticate(token.trim())
        .await
        .map_err(|_| invalid())?;
    if from_cookie.is_some() {
        session::check_csrf(&state.auth.keys, &Method::POST, &headers, &claims)?;
    }
    let user = state
        .store
        .by_id(claims.user_id)
        .await
        .map_err(|e| store_error(e, "User not found"))?
        .ok_or_else(invalid)?;
    // Only the first exchange of a token wins; a replay finds it revoked.
    if !revoke_token(&state, &claims).await? {
        return Err(invalid());
    }
    session_answer(&state, &headers, &user, json!({}), |data| {
        ok(None, Some(data))
    })
}

// ---- profile --------------------------------------------------------------------

/// The caller's profile.
#[utoipa::path(get, path = "/api/users/profile", tag = TAG_PROFILE, security(("bearer" = [])),
    responses((status = 200, description = "`data.user`"), (status = 401, description = "Not logged in")))]
pub async fn get_profile(State(state): State<UsersState>, user: AuthUser) -> ApiResult<Response> {
    me(State(state), user).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfileBody {
    name: Option<String>,
    /// Omitted keeps the stored phone; empty clears it.
    phone: Option<String>,
    email: Option<String>,
    current_password: Option<String>,
    new_password: Option<String>,
}

/// Update the caller's profile; a password change needs the current password,
/// revokes every other session and returns a fresh `token`.
#[utoipa::path(put, path = "/api/users/profile", tag = TAG_PROFILE, security(("bearer" = [])),
    request_body = ProfileBody,
    responses((status = 200, description = "`data.user` (and `data.token` after a password change)"),
        (status = 400, description = "Validation failed"),
        (status = 409, description = "E-mail in use by another account"),
        (status = 401, description = "Current password is incorrect")))]
pub async fn update_profile(
    State(state): State<UsersState>,
    user: AuthUser,
    ApiJson(body): ApiJson<ProfileBody>,
) -> ApiResult<Response> {
    let mut checks = Checks::default();
    let name = match body.name.as_deref().map(str::trim) {
        None | Some("") => {
            checks.fail("name", "Name is required");
            None
        }
        Some(n) => checks.check("name", check_name(n)),
    };
    let phone = match body.phone.as_deref() {
        None => None,
        Some(p) => checks.check("phone", check_phone(p)),
    };
    let email = match body.email.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(e) => checks.check("email", Email::parse(e)),
    };
    let new_password = body.new_password.filter(|p| !p.is_empty());
    let current_password = body.current_password.filter(|p| !p.is_empty());
    if let Some(p) = &new_password {
        checks.check("newPassword", check_password(p));
        if current_password.is_none() {
            checks.fail(
                "currentPassword",
                "Current password is required to set a new password",
            );
        }
    }
    checks.finish()?;

    let row = user_or_404(&state, user.id()).await?;
    let mut token = None;
    if let (Some(new), Some(current)) = (&new_password, &current_password) {
        let verdict = state
            .hasher
            .verify(current, Some(&row.password_hash))
            .await
            .map_err(hash_error)?;
        if verdict == Verdict::Mismatch {
            return Err(ApiError::unauthorized(
                ErrorCode::Unauthenticated,
                "Current password is incorrect",
            ));
        }
        let hash = state.hasher.hash(new).await.map_err(hash_error)?;
        let version = state
            .store
            .set_password(row.id, &hash, true)
            .await
            .map_err(|e| store_error(e, "User not found"))?;
        revoke_user(&state, row.id, version).await?;
        token = Some(
            state
                .auth
                .keys
                .issue(row.id, &row.email, row.role(), version)?
                .0,
        );
    }
    let updated = state
        .store
        .update(
            row.id,
            UserChanges {
                name,
                email: email.map(|e| e.as_str().to_owned()),
                phone,
            },
        )
        .await
        .map_err(|e| match e {
            StoreError::EmailTaken => {
                ApiError::conflict("Email address is already in use by another account")
                    .naming("email")
            }
            other => store_error(other, "User not found"),
        })?;
    let mut data = json!({ "user": user_json(&updated) });
    if let Some(t) = token {
        data["token"] = Value::String(t);
    }
    Ok(ok(Some("Profile updated successfully"), Some(data)))
}

// ---- address book -----------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddressBody {
    label: Option<String>,
    street: Option<String>,
    city: Option<String>,
    state: Option<String>,
    zip_code: Option<String>,
    phone: Option<String>,
    /// Defaults to `India`, as the original.
    country: Option<String>,
    is_default: Option<bool>,
}

impl AddressBody {
    /// `require_all`: POST and PUT need the six fields; PATCH takes any subset.
    fn fields(&self, require_all: bool) -> ApiResult<AddressFields> {
        let values = [
            &self.label,
            &self.street,
            &self.city,
            &self.state,
            &self.zip_code,
            &self.phone,
            &self.country,
        ];
        let mut out: [Option<String>; 7] = Default::default();
        let mut checks = Checks::default();
        for (i, ((path, missing, max), value)) in ADDRESS_FIELDS.iter().zip(values).enumerate() {
            let required = require_all && *path != "country";
            match value {
                None if !required => {}
                None => checks.fail(path, missing),
                Some(v) => match check_text(v, missing, *max) {
                    Ok(v) => out[i] = Some(v),
                    Err(msg) => checks.fail(path, &msg),
                },
            }
        }
        checks.finish()?;
        let [label, street, city, state, zip_code, phone, country] = out;
        Ok(AddressFields {
            label,
            street,
            city,
            state,
            zip_code,
            country,
            phone,
        })
    }
}

/// The caller's addresses, default first, then newest.
#[utoipa::path(get, path = "/api/users/addresses", tag = TAG_PROFILE, security(("bearer" = [])),
    responses((status = 200, description = "`data.addresses`")))]
pub async fn list_addresses(
    State(state): State<UsersState>,
    user: AuthUser,
) -> ApiResult<Response> {
    let rows = state
        .store
        .addresses(user.id())
        .await
        .map_err(|e| store_error(e, "Address not found"))?;
    let list: Vec<Value> = rows.iter().map(address_json).collect();
    Ok(ok(None, Some(json!({ "addresses": list }))))
}

/// One of the caller's addresses (the original returned the whole list here).
#[utoipa::path(get, path = "/api/users/addresses/{id}", tag = TAG_PROFILE, security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, description = "`data.address`"), (status = 404, description = "Address not found")))]
pub async fn get_address(
    State(state): State<UsersState>,
    user: AuthUser,
    IdParam(id): IdParam,
) -> ApiResult<Response> {
    let row = state
        .store
        .address(user.id(), id)
        .await
        .map_err(|e| store_error(e, "Address not found"))?;
    Ok(ok(None, Some(json!({ "address": address_json(&row) }))))
}

/// Add an address; the first one becomes the default.
#[utoipa::path(post, path = "/api/users/addresses", tag = TAG_PROFILE, security(("bearer" = [])),
    request_body = AddressBody,
    responses((status = 201, description = "`data.address`"), (status = 400, description = "Validation failed")))]
pub async fn create_address(
    State(state): State<UsersState>,
    user: AuthUser,
    ApiJson(body): ApiJson<AddressBody>,
) -> ApiResult<Response> {
    let fields = body.fields(true)?;
    let row = state
        .store
        .create_address(user.id(), fields, body.is_default.unwrap_or(false))
        .await
        .map_err(|e| store_error(e, "User not found"))?;
    Ok(created(
        "Address added successfully",
        json!({ "address": address_json(&row) }),
    ))
}

async fn write_address(
    state: UsersState,
    user: AuthUser,
    id: i64,
    body: AddressBody,
    require_all: bool,
) -> ApiResult<Response> {
    let fields = body.fields(require_all)?;
    let row = state
        .store
        .update_address(user.id(), id, fields, body.is_default)
        .await
        .map_err(|e| store_error(e, "Address not found"))?;
    Ok(ok(
        Some("Address updated successfully"),
        Some(json!({ "address": address_json(&row) })),
    ))
}

/// Replace an address (the six fields required).
#[utoipa::path(put, path = "/api/users/addresses/{id}", tag = TAG_PROFILE, security(("bearer" = [])),
    params(("id" = i64, Path)), request_body = AddressBody,
    responses((status = 200, description = "`data.address`"), (status = 404, description = "Address not found")))]
pub async fn put_address(
    State(state): State<UsersState>,
    user: AuthUser,
    IdParam(id): IdParam,
    ApiJson(body): ApiJson<AddressBody>,
) -> ApiResult<Response> {
    write_address(state, user, id, body, true).await
}

/// Change some fields of an address.
#[utoipa::path(patch, path = "/api/users/addresses/{id}", tag = TAG_PROFILE, security(("bearer" = [])),
    params(("id" = i64, Path)), request_body = AddressBody,
    responses((status = 200, description = "`data.address`"), (status = 404, description = "Address not found")))]
pub async fn patch_address(
    State(state): State<UsersState>,
    user: AuthUser,
    IdParam(id): IdParam,
    ApiJson(body): ApiJson<AddressBody>,
) -> ApiResult<Response> {
    write_address(state, user, id, body, false).await
}

/// Delete an address; if it was the default, the newest other one becomes default.
#[utoipa::path(delete, path = "/api/users/addresses/{id}", tag = TAG_PROFILE, security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, description = "Address deleted successfully"), (status = 404, description = "Address not found")))]
pub async fn delete_address(
    State(state): State<UsersState>,
    user: AuthUser,
    IdParam(id): IdParam,
) -> ApiResult<Response> {
    state
        .store
        .delete_address(user.id(), id)
        .await
        .map_err(|e| store_error(e, "Address not found"))?;
    Ok(ok_message("Address deleted successfully"))
}

/// Make an address the only default.
#[utoipa::path(put, path = "/api/users/addresses/{id}/default", tag = TAG_PROFILE, security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, description = "Default address updated"), (status = 404, description = "Address not found")))]
pub async fn set_default_address(
    State(state): State<UsersState>,
    user: AuthUser,
    IdParam(id): IdParam,
) -> ApiResult<Response> {
    state
        .store
        .set_default_address(user.id(), id)
        .await
        .map_err(|e| store_error(e, "Address not found"))?;
    Ok(ok_message("Default address updated"))
}

// ---- administration -----------------------------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// 1-based page (default 1).
    page: Option<u64>,
    /// Page size, 1–1000 (default 50; the original's admin pages ask 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
    /// Exact role filter.
    role: Option<String>,
    /// Case-insensitive match on name or e-mail.
    search: Option<String>,
    /// `createdAt`, `name`, `email` or `role`; `-` prefix for descending (default `-createdAt`).
    sort: Option<String>,
}

/// The largest page of `GET /api/users` (the original's admin pages ask 1000).
const USERS_LIMIT_MAX: u64 = 1000;
/// The keys `GET /api/users` sorts by (each also with `-` for descending).
const USER_SORT_KEYS: [&str; 5] = ["createdAt", "created_at", "name", "email", "role"];

/// All users, paginated, with search, role filter and sort (admin).
#[utoipa::path(get, path = "/api/users", tag = TAG_ADMIN, security(("bearer" = [])), params(ListParams),
    responses((status = 200, description = "`data.users`, `data.pagination`"), (status = 403, description = "Not an admin")))]
pub async fn list_users(
    State(state): State<UsersState>,
    _admin: AdminUser,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Response> {
    let mut checks = Checks::default();
    let page = params.page.unwrap_or(1);
    if !(1..=PAGE_MAX).contains(&page) {
        checks.fail("page", &format!("page must be between 1 and {PAGE_MAX}"));
    }
    let limit = params.limit.unwrap_or(50);
    if !(1..=USERS_LIMIT_MAX).contains(&limit) {
        checks.fail("limit", "limit must be between 1 and 1000");
    }
    let role = match params.role.as_deref().filter(|r| !r.is_empty()) {
        None => None,
        Some(r) => checks.check("role", Role::parse(r).ok_or("Invalid role")),
    };
    let sort_text = params.sort.unwrap_or_else(|| "-createdAt".into());
    let (descending, key) = match sort_text.strip_prefix('-') {
        Some(k) => (true, k),
        None => (false, sort_text.as_str()),
    };
    let sort = match key {
        "createdAt" | "created_at" => Some(UserSort::CreatedAt),
        "name" => Some(UserSort::Name),
        "email" => Some(UserSort::Email),
        "role" => Some(UserSort::Role),
        _ => {
            checks.fail(
                "sort",
                "sort must be one of createdAt, name, email, role (prefix - for descending)",
            );
            None
        }
    };
    let search = params.search.filter(|s| s.chars().count() <= 200);
    for e in &mut checks.0 {
        e.location = ecap_core::error::Location::Query;
    }
    checks.finish()?;
    let query = UserListQuery {
        page,
        limit,
        role,
        search,
        sort: sort.unwrap_or(UserSort::CreatedAt),
        descending,
    };
    let (rows, total) = state
        .store
        .list(&query)
        .await
        .map_err(|e| store_error(e, "User not found"))?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let stats = customer_stats(&state, &ids).await?;
    let users: Vec<Value> = rows
        .iter()
        .map(|r| {
            let s = stats.get(&r.id).copied().unwrap_or_default();
            let mut u = user_json(r);
            u["orderCount"] = json!(s.total_orders);
            u["totalSpent"] = json!(cents(s.total_spent_cents));
            u
        })
        .collect();
    let pages = (total as u64).div_ceil(limit);
    Ok(ok(
        None,
        Some(json!({
            "users": users,
            "pagination": { "page": page, "limit": limit, "total": total, "pages": pages },
        })),
    ))
}

async fn customer_stats(state: &UsersState, ids: &[i64]) -> ApiResult<HashMap<i64, CustomerStats>> {
    state.orders.stats(ids).await.map_err(ApiError::internal)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateUserBody {
    email: Option<String>,
    password: Option<String>,
    name: Option<String>,
    /// `customer`, `merchant` or `admin`.
    role: Option<String>,
    phone: Option<String>,
}

/// Create a user of any role (admin).
#[utoipa::path(post, path = "/api/users", tag = TAG_ADMIN, security(("bearer" = [])), request_body = CreateUserBody,
    responses((status = 201, description = "`data.user`"), (status = 400, description = "Validation failed"),
        (status = 409, description = "User with this email already exists")))]
pub async fn create_user(
    State(state): State<UsersState>,
    _admin: AdminUser,
    ApiJson(body): ApiJson<CreateUserBody>,
) -> ApiResult<Response> {
    let mut checks = Checks::default();
    let email = checks.check(
        "email",
        Email::parse(body.email.as_deref().unwrap_or_default()),
    );
    let password = body.password.unwrap_or_default();
    checks.check("password", check_password(&password));
    let name = checks.check("name", check_name(body.name.as_deref().unwrap_or_default()));
    let role = checks.check(
        "role",
        body.role
            .as_deref()
            .and_then(Role::parse)
            .ok_or("Invalid role"),
    );
    let phone = checks.check(
        "phone",
        check_phone(body.phone.as_deref().unwrap_or_default()),
    );
    checks.finish()?;
    let (Some(email), Some(name), Some(role), Some(phone)) = (email, name, role, phone) else {
        return Err(ApiError::bad_request("Validation failed"));
    };
    let user = create_account(&state, &email, &password, name, phone, role, false).await?;
    let message = if role == Role::Admin {
        "Admin created successfully"
    } else {
        "User created successfully"
    };
    Ok(created(message, json!({ "user": user_json(&user) })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteAllBody {
    /// Also delete other admins (never the caller).
    #[schema(value_type = Option<bool>)]
    include_admins: Option<Value>,
    /// Only count what would be deleted (also `?dryRun=true`).
    #[schema(value_type = Option<bool>)]
    dry_run: Option<Value>,
    /// The number of accounts a dry run reported; required with
    /// `includeAdmins`, checked when given. Another number deletes nothing (409).
    #[schema(value_type = Option<i64>)]
    confirm: Option<Value>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct DeleteAllParams {
    /// `true`: only count what would be deleted.
    dry_run: Option<String>,
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty() && s != "false" && s != "0",
        _ => true,
    }
}

/// Delete every user but the caller (admin; needs `ECAP_DANGEROUS_OPERATIONS=true`).
/// A dry run (`?dryRun=true` or `dryRun: true`) counts the accounts and deletes
/// nothing; with `includeAdmins`, the deletion needs `confirm` = that count.
#[utoipa::path(delete, path = "/api/users/all", tag = TAG_ADMIN, security(("bearer" = [])),
    params(DeleteAllParams), request_body = DeleteAllBody,
    responses((status = 200, description = "`data.deletedCount`, `data.deletedUsers`; dry run: `data.count`, `data.byRole`"),
        (status = 400, description = "`includeAdmins` without `confirm`, or a bad `confirm`"),
        (status = 403, description = "Not an admin, or dangerous operations are disabled"),
        (status = 409, description = "`confirm` differs from the number that would be deleted; nothing was deleted")))]
pub async fn delete_all_users(
    State(state): State<UsersState>,
    AdminUser(admin): AdminUser,
    ApiQuery(params): ApiQuery<DeleteAllParams>,
    ApiJson(body): ApiJson<DeleteAllBody>,
) -> ApiResult<Response> {
    if !state.settings.dangerous_operations {
        return Err(ApiError::forbidden(
            "Deleting all users is disabled; set ECAP_DANGEROUS_OPERATIONS=true to allow it",
        ));
    }
    let include_admins = body.include_admins.as_ref().is_some_and(truthy);
    let dry_run = body.dry_run.as_ref().is_some_and(truthy)
        || params.dry_run.is_some_and(|d| truthy(&Value::String(d)));
    let confirm = match body.confirm.as_ref().filter(|v| !v.is_null()) {
        None => None,
        Some(v) => match ecap_core::extract::json_int(v) {
            Some(n) if n >= 0 => Some(n),
            _ => {
                return Err(ApiError::field(
                    "confirm",
                    "confirm must be the number of accounts to delete",
                ));
            }
        },
    };
    if dry_run {
        let by_role = state
            .store
            .delete_all_preview(admin.id(), include_admins)
            .await
            .map_err(|e| store_error(e, "User not found"))?;
        let count: i64 = by_role.iter().map(|(_, n)| n).sum();
        let roles: serde_json::Map<String, Value> =
            by_role.into_iter().map(|(r, n)| (r, json!(n))).collect();
        return Ok(ok(
            Some(&format!(
                "Dry run: {count} user(s) would be deleted; nothing was deleted"
            )),
            Some(json!({
                "dryRun": true,
                "includeAdmins": include_admins,
                "count": count,
                "byRole": roles,
            })),
        ));
    }
    if include_admins && confirm.is_none() {
        return Err(ApiError::field(
            "confirm",
            "Deleting admins too needs confirm: the number of accounts a dry run \
             (dryRun: true) reports",
        ));
    }
    let rows = state
        .store
        .delete_all(admin.id(), include_admins, confirm)
        .await
        .map_err(|e| store_error(e, "User not found"))?;
    if rows.is_empty() {
        return Ok(ok(
            Some("No users to delete"),
            Some(json!({ "deletedCount": 0 })),
        ));
    }
    for r in &rows {
        revoke_user(&state, r.id, i64::MAX).await?;
        state
            .orders
            .forget_customer(r.id)
            .await
            .map_err(ApiError::internal)?;
    }
    tracing::warn!(
        admin_id = admin.id(),
        count = rows.len(),
        include_admins,
        "bulk user deletion"
    );
    let deleted: Vec<Value> = rows
        .iter()
        .map(|r| json!({ "id": r.id, "name": r.name, "role": r.role }))
        .collect();
    Ok(ok(
        Some(&format!("Successfully deleted {} user(s)", rows.len())),
        Some(json!({
            "deletedCount": rows.len(),
            "deletedUsers": deleted,
            "timestamp": clock::now_iso(),
        })),
    ))
}

async fn user_or_404(state: &UsersState, id: i64) -> ApiResult<UserRow> {
    state
        .store
        .by_id(id)
        .await
        .map_err(|e| store_error(e, "User not found"))?
        .ok_or_else(|| ApiError::not_found("User not found"))
}

/// A user (the user themself or an admin).
#[utoipa::path(get, path = "/api/users/{id}", tag = TAG_ADMIN, security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, description = "`data.user`"), (status = 403, description = "Access denied"),
        (status = 404, description = "User not found")))]
pub async fn get_user(
    State(state): State<UsersState>,
    user: AuthUser,
    IdParam(id): IdParam,
) -> ApiResult<Response> {
    if user.id() != id && !user.is_admin() {
        return Err(ApiError::forbidden("Access denied"));
    }
    let row = user_or_404(&state, id).await?;
    Ok(ok(None, Some(json!({ "user": user_json(&row) }))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DetailsParams {
    /// 1-based page of the user's orders (default 1).
    page: Option<u64>,
    /// Orders per page, 1–1000 (default 100).
    limit: Option<u64>,
}

/// Orders in one user details answer unless `limit` says otherwise: every
/// order of nearly every customer, without an unbounded answer for the few
/// with thousands.
const DETAILS_ORDERS_DEFAULT: u64 = 100;
const DETAILS_ORDERS_MAX: u64 = 1000;

/// A user with order statistics (over all their orders) and their orders,
/// newest first, a page at a time (admin).
#[utoipa::path(get, path = "/api/users/{id}/details", tag = TAG_ADMIN, security(("bearer" = [])),
    params(("id" = i64, Path), DetailsParams),
    responses((status = 200, description = "`data.user`, `data.statistics`, `data.orders` (items `{product_id, product_name, quantity, price, subtotal}`), `data.pagination`"),
        (status = 400, description = "Bad id, page or limit"),
        (status = 404, description = "User not found")))]
pub async fn user_details(
    State(state): State<UsersState>,
    _admin: AdminUser,
    IdParam(id): IdParam,
    ApiQuery(params): ApiQuery<DetailsParams>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let page = params.page.unwrap_or(1);
    if !(1..=PAGE_MAX).contains(&page) {
        errors.push(ecap_core::error::FieldError::new(
            ecap_core::error::Location::Query,
            "page",
            format!("page must be between 1 and {PAGE_MAX}"),
        ));
    }
    let limit = params.limit.unwrap_or(DETAILS_ORDERS_DEFAULT);
    if !(1..=DETAILS_ORDERS_MAX).contains(&limit) {
        errors.push(ecap_core::error::FieldError::new(
            ecap_core::error::Location::Query,
            "limit",
            format!("limit must be between 1 and {DETAILS_ORDERS_MAX}"),
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let row = user_or_404(&state, id).await?;
    let s = customer_stats(&state, &[id])
        .await?
        .remove(&id)
        .unwrap_or_default();
    let (orders, total) = state
        .orders
        .customer_orders(id, page, limit)
        .await
        .map_err(ApiError::internal)?;
    let avg = if s.total_orders > 0 {
        cents(s.total_spent_cents) / s.total_orders as f64
    } else {
        0.0
    };
    Ok(ok(
        None,
        Some(json!({
            "user": user_json(&row),
            "statistics": {
                "totalOrders": s.total_orders,
                "completedOrders": s.completed_orders,
                "cancelledOrders": s.cancelled_orders,
                "totalSpent": cents(s.total_spent_cents),
                "avgOrderValue": (avg * 100.0).round() / 100.0,
            },
            "orders": orders,
            "pagination": {
                "page": page,
                "limit": limit,
                "total": total,
                "pages": (total.max(0) as u64).div_ceil(limit),
            },
        })),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateUserBody {
    #[serde(default, deserialize_with = "not_null")]
    name: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    email: Option<String>,
    /// Empty clears it.
    phone: Option<String>,
}

/// A field that may be left out but not sent as null (the document says a
/// string; "No fields to update" would otherwise answer a schema-valid body).
fn not_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<String>::deserialize(d)? {
        Some(s) => Ok(Some(s)),
        None => Err(serde::de::Error::custom(
            "must be a string (leave the field out rather than send null)",
        )),
    }
}

/// Update a user's name, e-mail or phone (the user themself or an admin; not the role).
#[utoipa::path(method(put, patch), path = "/api/users/{id}", tag = TAG_ADMIN, security(("bearer" = [])),
    params(("id" = i64, Path)), request_body = UpdateUserBody,
    responses((status = 200, description = "`data.user`"), (status = 400, description = "No fields to update"),
        (status = 403, description = "Access denied"), (status = 409, description = "Email already in use")))]
pub async fn update_user(
    State(state): State<UsersState>,
    user: AuthUser,
    IdParam(id): IdParam,
    ApiJson(body): ApiJson<UpdateUserBody>,
) -> ApiResult<Response> {
    if user.id() != id && !user.is_admin() {
        return Err(ApiError::forbidden("Access denied"));
    }
    let mut checks = Checks::default();
    let name = body
        .name
        .as_deref()
        .and_then(|n| checks.check("name", check_name(n)));
    let email = body
        .email
        .as_deref()
        .and_then(|e| checks.check("email", Email::parse(e)));
    let phone = body
        .phone
        .as_deref()
        .and_then(|p| checks.check("phone", check_phone(p)));
    checks.finish()?;
    if body.name.is_none() && body.email.is_none() && body.phone.is_none() {
        return Err(ApiError::bad_request("No fields to update"));
    }
    user_or_404(&state, id).await?;
    let row = state
        .store
        .update(
            id,
            UserChanges {
                name,
                email: email.map(|e| e.as_str().to_owned()),
                phone,
            },
        )
        .await
        .map_err(|e| store_error(e, "User not found"))?;
    Ok(ok(
        Some("User updated successfully"),
        Some(json!({ "user": user_json(&row) })),
    ))
}

/// Delete a user and everything of theirs (admin; not yourself).
#[utoipa::path(delete, path = "/api/users/{id}", tag = TAG_ADMIN, security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, description = "`data.deletedUser`"), (status = 409, description = "You cannot delete your own account"),
        (status = 404, description = "User not found")))]
pub async fn delete_user(
    State(state): State<UsersState>,
    AdminUser(admin): AdminUser,
    IdParam(id): IdParam,
) -> ApiResult<Response> {
    if admin.id() == id {
        return Err(ApiError::conflict("You cannot delete your own account"));
    }
    let row = state
        .store
        .delete(id)
        .await
        .map_err(|e| store_error(e, "User not found"))?;
    revoke_user(&state, id, i64::MAX).await?;
    let deleted_orders = state
        .orders
        .forget_customer(id)
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(admin_id = admin.id(), user_id = id, "user deleted");
    Ok(ok(
        Some(&format!(
            "User \"{}\" and all associated data deleted successfully",
            row.name
        )),
        Some(json!({
            "deletedUser": { "id": row.id, "name": row.name },
            "deletedOrders": deleted_orders,
            "timestamp": clock::now_iso(),
        })),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RoleBody {
    /// `customer`, `merchant` or `admin`.
    role: Option<String>,
}

/// Change a user's role (admin); the user's existing tokens are revoked.
#[utoipa::path(patch, path = "/api/users/{id}/role", tag = TAG_ADMIN, security(("bearer" = [])),
    params(("id" = i64, Path)), request_body = RoleBody,
    responses((status = 200, description = "`data.user`"), (status = 400, description = "Invalid role"),
        (status = 404, description = "User not found"), (status = 409, description = "The last admin cannot lose the admin role")))]
pub async fn change_role(
    State(state): State<UsersState>,
    AdminUser(admin): AdminUser,
    IdParam(id): IdParam,
    ApiJson(body): ApiJson<RoleBody>,
) -> ApiResult<Response> {
    let role = body
        .role
        .as_deref()
        .and_then(Role::parse)
        .ok_or_else(|| ApiError::field("role", "Invalid role"))?;
    let before = user_or_404(&state, id).await?;
    let row = state
        .store
        .set_role(id, role)
        .await
        .map_err(|e| store_error(e, "User not found"))?;
    if row.token_version != before.token_version {
        revoke_user(&state, id, row.token_version).await?;
    }
    tracing::info!(
        admin_id = admin.id(),
        user_id = id,
        role = role.as_str(),
        "role changed"
    );
    Ok(ok(
        Some("User role updated successfully"),
        Some(json!({ "user": user_json(&row) })),
    ))
}

/// The exact bodies of this service's 2xx answers (see
/// [`ecap_core::openapi::add_response_schemas`]).
pub const RESPONSES: &str = include_str!("responses.json");

/// The rules the handlers above enforce, written into the OpenAPI document
/// from the same constants the validators use (`domain`).
pub fn refine_spec(api: &mut utoipa::openapi::OpenApi) {
    use crate::domain::{
        EMAIL_MAX, NAME_MAX, NAME_MIN, PASSWORD_MAX, PASSWORD_MIN, PHONE_MAX, PHONE_PATTERN,
        password_pattern,
    };
    use ecap_core::openapi::{
        TEXT_CHAR, integer_range, optional_copy, param_schema, property_schema, require,
        set_body_schema, string_enum, trimmed_text,
    };
    use utoipa::openapi::schema::{KnownFormat, SchemaFormat};

    let email = |api: &mut utoipa::openapi::OpenApi, schema: &str| {
        if let Some(o) = property_schema(api, schema, "email") {
            o.format = Some(SchemaFormat::KnownFormat(KnownFormat::Email));
            o.max_length = Some(EMAIL_MAX);
        }
    };
    let password = |api: &mut utoipa::openapi::OpenApi, schema: &str, field: &str| {
        if let Some(o) = property_schema(api, schema, field) {
            o.min_length = Some(PASSWORD_MIN);
            o.max_length = Some(PASSWORD_MAX);
            o.pattern = Some(format!("^{}", password_pattern(TEXT_CHAR)));
        }
    };
    let name = |api: &mut utoipa::openapi::OpenApi, schema: &str| {
        if let Some(o) = property_schema(api, schema, "name") {
            trimmed_text(o, NAME_MIN, NAME_MAX);
        }
    };
    let phone = |api: &mut utoipa::openapi::OpenApi, schema: &str| {
        if let Some(o) = property_schema(api, schema, "phone") {
            o.max_length = Some(PHONE_MAX);
            o.pattern = Some(PHONE_PATTERN.into());
        }
    };
    let roles = [Role::Customer, Role::Merchant, Role::Admin].map(Role::as_str);

    for schema in [
        "RegisterBody",
        "CreateUserBody",
        "UpdateUserBody",
        "ProfileBody",
        "LoginBody",
    ] {
        email(api, schema);
    }
    for schema in [
        "RegisterBody",
        "CreateUserBody",
        "UpdateUserBody",
        "ProfileBody",
    ] {
        name(api, schema);
    }
    for schema in ["CreateUserBody", "UpdateUserBody", "ProfileBody"] {
        phone(api, schema);
    }
    password(api, "RegisterBody", "password");
    password(api, "CreateUserBody", "password");
    require(api, "RegisterBody", &["email", "password", "name"]);
    if let Some(o) = property_schema(api, "RegisterBody", "role") {
        // Empty means the default, customer.
        string_enum(o, &["", roles[0], roles[1], roles[2]]);
    }
    require(api, "LoginBody", &["email", "password"]);
    if let Some(o) = property_schema(api, "LoginBody", "password") {
        o.min_length = Some(1);
    }
    require(
        api,
        "CreateUserBody",
        &["email", "password", "name", "role"],
    );
    if let Some(o) = property_schema(api, "CreateUserBody", "role") {
        string_enum(o, &roles);
    }
    require(api, "ProfileBody", &["name"]);
    if let Some(o) = property_schema(api, "ProfileBody", "newPassword") {
        // Empty means "no change"; otherwise the password rule.
        o.max_length = Some(PASSWORD_MAX);
        let t = TEXT_CHAR;
        o.pattern = Some(format!(
            "^$|^(?={t}{{{PASSWORD_MIN},}}$){}",
            password_pattern(t)
        ));
    }
    if let Some(o) = property_schema(api, "RefreshBody", "token") {
        o.min_length = Some(1);
    }
    require(api, "RefreshBody", &["token"]);
    for (path, _, max) in ADDRESS_FIELDS {
        if let Some(o) = property_schema(api, "AddressBody", path) {
            trimmed_text(o, 1, max);
        }
    }
    if optional_copy(api, "AddressBody", "AddressPatchBody") {
        set_body_schema(
            api,
            "patch",
            "/api/users/addresses/{id}",
            "AddressPatchBody",
        );
    }
    require(
        api,
        "AddressBody",
        &["label", "street", "city", "state", "zipCode", "phone"],
    );
    if let Some(o) = param_schema(api, "get", "/api/users", "limit") {
        integer_range(o, 1, USERS_LIMIT_MAX as i64);
    }
    if let Some(o) = param_schema(api, "get", "/api/users", "page") {
        integer_range(o, 1, PAGE_MAX as i64);
    }
    if let Some(o) = param_schema(api, "get", "/api/users", "role") {
        string_enum(o, &["", roles[0], roles[1], roles[2]]);
    }
    if let Some(o) = param_schema(api, "get", "/api/users", "sort") {
        let sorts: Vec<String> = USER_SORT_KEYS
            .iter()
            .flat_map(|k| [(*k).to_owned(), format!("-{k}")])
            .collect();
        let sorts: Vec<&str> = sorts.iter().map(String::as_str).collect();
        string_enum(o, &sorts);
    }
    if let Some(o) = param_schema(api, "get", "/api/users/{id}/details", "limit") {
        integer_range(o, 1, DETAILS_ORDERS_MAX as i64);
    }
    if let Some(o) = param_schema(api, "get", "/api/users/{id}/details", "page") {
        integer_range(o, 1, PAGE_MAX as i64);
    }
    if let Some(utoipa::openapi::RefOr::T(utoipa::openapi::schema::Schema::Object(body))) = api
        .components
        .as_mut()
        .and_then(|c| c.schemas.get_mut("UpdateUserBody"))
    {
        // "No fields to update" otherwise (a null counts as not sent).
        body.min_properties = Some(1);
        for prop in body.properties.values_mut() {
            if let utoipa::openapi::RefOr::T(utoipa::openapi::schema::Schema::Object(o)) = prop {
                o.schema_type = utoipa::openapi::schema::SchemaType::Type(
                    utoipa::openapi::schema::Type::String,
                );
            }
        }
        body.additional_properties = Some(Box::new(
            utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
        ));
    }
    if let Some(o) = property_schema(api, "RoleBody", "role") {
        string_enum(o, &roles);
    }
    require(api, "RoleBody", &["role"]);
}
