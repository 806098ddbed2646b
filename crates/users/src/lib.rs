//! The users service: accounts, sessions (JWT + revocation), profiles and the
//! address book. `router(state)` serves the contract's `/api/auth` and
//! `/api/users` routes.

pub mod bulk;
pub mod domain;
pub mod http;
pub mod migrations;
pub mod password;
pub mod store;

use std::sync::Arc;

use axum::{Router, extract::FromRef};
use ecap_core::{
    auth::AuthState,
    config::Secret,
    db::{Backend, Db},
    ports::CustomerOrders,
    revocation::Revocations,
};
use utoipa_axum::{router::OpenApiRouter, routes};

pub use store::UserStore;

/// Behaviour switches of the users service, from the configuration.
#[derive(Debug, Clone)]
pub struct UsersSettings {
    /// The first admin may register through the API (with the setup token).
    pub admin_bootstrap: bool,
    /// The token that registration must carry; `None` when an admin already
    /// existed at start (or bootstrap is off).
    pub setup_token: Option<Secret>,
    pub dangerous_operations: bool,
    pub max_failures: u32,
    pub lockout_ms: i64,
}

#[derive(Clone)]
pub struct UsersState {
    pub store: UserStore,
    pub auth: AuthState,
    pub hasher: password::Hasher,
    pub orders: Arc<dyn CustomerOrders>,
    pub settings: Arc<UsersSettings>,
}

impl FromRef<UsersState> for AuthState {
    fn from_ref(s: &UsersState) -> Self {
        s.auth.clone()
    }
}

/// Applies the service's migrations.
pub async fn migrate(db: &Db) -> Result<usize, ecap_core::db::DbError> {
    ecap_core::migrate::run(db, "users", migrations::MIGRATIONS).await
}

/// Reloads revoked tokens and user floors from the database into `revocations`,
/// so a restart forgets no logout.
pub async fn load_revocations(
    store: &UserStore,
    revocations: &dyn Revocations,
) -> Result<(usize, usize), anyhow::Error> {
    let (tokens, users) = store.load_revocations().await?;
    for (jti, exp) in &tokens {
        revocations
            .revoke_token(jti, u64::try_from(*exp).unwrap_or(0))
            .await?;
    }
    for (user_id, min_version) in &users {
        revocations.revoke_user(*user_id, *min_version).await?;
    }
    Ok((tokens.len(), users.len()))
}

/// The setup token the first admin's registration must carry, decided at
/// start: none while an admin exists (or with bootstrap off), the configured
/// one, or a fresh random one printed in the log for whoever holds the machine.
/// A generated token lives as long as this process; replicas each make their
/// own, which is why several replicas need `ECAP_SETUP_TOKEN`.
pub async fn first_admin_setup(
    store: &UserStore,
    bootstrap: bool,
    configured: Option<Secret>,
) -> Result<Option<Secret>, store::StoreError> {
    if !bootstrap || store.admin_exists().await? {
        return Ok(None);
    }
    if let Some(token) = configured.filter(|t| !t.is_empty()) {
        tracing::warn!(
            "no admin yet: register the first one with role \"admin\" and setupToken = \
             ECAP_SETUP_TOKEN (or run `ecap users create-admin`)"
        );
        return Ok(Some(token));
    }
    let bytes: [u8; 20] = rand::random();
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    // Printed on purpose (the one secret that is): only whoever reads this
    // machine's log can claim the empty shop.
    tracing::warn!(
        setup_token = %token,
        "no admin yet: register the first one with role \"admin\" and this setupToken, \
         valid until the first admin exists or this process stops (or run `ecap users create-admin`)"
    );
    if store.backend() != Backend::Sqlite {
        tracing::warn!(
            "this token is known to this process only: with several users replicas set \
             ECAP_SETUP_TOKEN to one value for all of them"
        );
    }
    Ok(Some(Secret::new(token)))
}

/// The routes with their OpenAPI description.
pub fn openapi_router() -> OpenApiRouter<UsersState> {
    OpenApiRouter::new()
        .routes(routes!(http::register))
        .routes(routes!(http::login))
        .routes(routes!(http::logout))
        .routes(routes!(http::me))
        .routes(routes!(http::refresh))
        .routes(routes!(http::get_profile, http::update_profile))
        .routes(routes!(http::list_addresses, http::create_address))
        .routes(routes!(
            http::get_address,
            http::put_address,
            http::patch_address,
            http::delete_address
        ))
        .routes(routes!(http::set_default_address))
        .routes(routes!(http::list_users, http::create_user))
        .routes(routes!(http::delete_all_users))
        .routes(routes!(
            http::get_user,
            http::update_user,
            http::delete_user
        ))
        .routes(routes!(http::user_details))
        .routes(routes!(http::change_role))
}

/// The service's routes, ready to merge into a process's router.
pub fn router(state: UsersState) -> (Router, utoipa::openapi::OpenApi) {
    let (router, api) = openapi_router().split_for_parts();
    (router.with_state(state), api)
}

/// The `AddressBook` port served by this process's users service.
#[derive(Clone, Debug)]
pub struct UsersAddressBook(pub UserStore);

#[async_trait::async_trait]
impl ecap_core::ports::AddressBook for UsersAddressBook {
    async fn address(
        &self,
        user_id: i64,
        address_id: i64,
    ) -> Result<Option<ecap_core::ports::ShippingAddress>, ecap_core::ports::PortError> {
        match self.0.address(user_id, address_id).await {
            Ok(a) => Ok(Some(ecap_core::ports::ShippingAddress {
                label: Some(a.label),
                street: a.street,
                city: a.city,
                state: a.state,
                zip_code: a.zip_code,
                country: a.country,
                phone: a.phone,
            })),
            Err(store::StoreError::NotFound) => Ok(None),
            Err(e) => Err(ecap_core::ports::PortError(e.to_string())),
        }
    }
}
