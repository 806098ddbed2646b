//! The orders service: placement with server-side prices and idempotent
//! reservations, the lifecycle as a transition table, cancellations, refunds,
//! deletions, retention and detail requests, inventory sync, and the
//! transactional outbox with its relay. `router(state)` serves the contract's
//! `/api/orders` routes; [`OrdersPurchases`] and [`OrdersCustomers`] are the
//! in-process implementations of the ports the catalog and users ask.

pub mod bulk;
pub mod domain;
pub mod http;
pub mod migrations;
pub mod outbox;
pub mod snapshot;
pub mod store;

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use axum::{Router, extract::FromRef};
use ecap_core::{
    auth::AuthState,
    db::Db,
    ports::{
        AddressBook, CustomerOrders, CustomerStats, PortError, ProductDirectory, ProductReviews,
        PurchaseCheck,
    },
};
use utoipa_axum::{router::OpenApiRouter, routes};

pub use store::OrderStore;

/// Behaviour switches of the orders service, from the configuration.
#[derive(Debug, Clone)]
pub struct OrdersSettings {
    /// A placement older than this without its order is given up by the sweeper.
    pub reservation_grace: Duration,
    /// How long an Idempotency-Key answers with its first order.
    pub idempotency_ttl: Duration,
    /// How often expired deleted orders lose their personal data; `None`: never
    /// on a schedule (`POST /api/orders/cleanup/expired` still does it).
    pub cleanup_every: Option<Duration>,
}

impl Default for OrdersSettings {
    fn default() -> Self {
        Self {
            reservation_grace: Duration::from_secs(60),
            idempotency_ttl: Duration::from_secs(86_400),
            cleanup_every: Some(Duration::from_secs(3_600)),
        }
    }
}

#[derive(Clone)]
pub struct OrdersState {
    pub store: OrderStore,
    pub auth: AuthState,
    pub addresses: Arc<dyn AddressBook>,
    pub reviews: Arc<dyn ProductReviews>,
    /// Current images of ordered products, for the order lists.
    pub products: Arc<dyn ProductDirectory>,
    pub settings: Arc<OrdersSettings>,
}

impl FromRef<OrdersState> for AuthState {
    fn from_ref(s: &OrdersState) -> Self {
        s.auth.clone()
    }
}

/// Applies the service's migrations.
pub async fn migrate(db: &Db) -> Result<usize, ecap_core::db::DbError> {
    ecap_core::migrate::run(db, "orders", migrations::MIGRATIONS).await
}

pub fn openapi_router() -> OpenApiRouter<OrdersState> {
    OpenApiRouter::new()
        .routes(routes!(http::list_orders, http::create_order))
        .routes(routes!(http::sync_inventory))
        .routes(routes!(http::undo_sync_inventory))
        .routes(routes!(http::list_detail_requests))
        .routes(routes!(http::decide_detail_request))
        .routes(routes!(http::active_orders))
        .routes(routes!(http::deleted_orders))
        .routes(routes!(http::restoration_requests))
        .routes(routes!(http::cleanup_expired))
        .routes(routes!(http::bulk_delete))
        .routes(routes!(http::outbox_status))
        .routes(routes!(http::get_order, http::delete_order))
        .routes(routes!(http::update_status))
        .routes(routes!(
            http::create_detail_request,
            http::get_detail_request
        ))
        .routes(routes!(http::cancel_request))
        .routes(routes!(http::approve_cancel))
        .routes(routes!(http::reject_cancel))
        .routes(routes!(http::review_order))
        .routes(routes!(http::tracking))
        .routes(routes!(http::soft_delete))
        .routes(routes!(http::restore_request))
        .routes(routes!(http::approve_restoration))
        .routes(routes!(http::reject_restoration))
}

/// The service's routes, ready to merge into a process's router.
pub fn router(state: OrdersState) -> (Router, utoipa::openapi::OpenApi) {
    let (router, api) = openapi_router().split_for_parts();
    (router.with_state(state), api)
}

/// The `PurchaseCheck` port: delivered orders of the user that hold the product.
#[derive(Clone, Debug)]
pub struct OrdersPurchases(pub OrderStore);

#[async_trait]
impl PurchaseCheck for OrdersPurchases {
    async fn delivered_orders_with(
        &self,
        user_id: i64,
        product_id: &str,
    ) -> Result<Vec<String>, PortError> {
        self.0
            .delivered_orders_with(user_id, product_id)
            .await
            .map(|ids| ids.into_iter().map(|i| i.to_string()).collect())
            .map_err(|e| PortError(e.to_string()))
    }
}

/// The `CustomerOrders` port: the users service's order figures.
#[derive(Clone, Debug)]
pub struct OrdersCustomers(pub OrderStore);

#[async_trait]
impl CustomerOrders for OrdersCustomers {
    async fn stats(&self, user_ids: &[i64]) -> Result<HashMap<i64, CustomerStats>, PortError> {
        let rows = self
            .0
            .customer_stats(user_ids)
            .await
            .map_err(|e| PortError(e.to_string()))?;
        Ok(rows
            .into_iter()
            .map(|(u, [total, delivered, cancelled, spent])| {
                (
                    u,
                    CustomerStats {
                        total_orders: total,
                        completed_orders: delivered,
                        cancelled_orders: cancelled,
                        total_spent_cents: spent,
                    },
                )
            })
            .collect())
    }

    async fn customer_orders(
        &self,
        user_id: i64,
        page: u64,
        limit: u64,
    ) -> Result<(Vec<serde_json::Value>, i64), PortError> {
        // Every order of this customer, as an admin sees them.
        let q = store::OrderQuery {
            viewer: store::Actor { id: 0, admin: true },
            customer: Some(user_id),
            status: None,
            from: None,
            to: None,
            search: None,
            page,
            limit,
            hidden: false,
        };
        let (rows, total) = self
            .0
            .list(&q)
            .await
            .map_err(|e| PortError(e.to_string()))?;
        let ids: Vec<i64> = rows.iter().map(|o| o.id).collect();
        let items = self
            .0
            .items_of(&ids)
            .await
            .map_err(|e| PortError(e.to_string()))?;
        Ok((
            rows.iter().map(|o| http::details_item(o, &items)).collect(),
            total,
        ))
    }

    async fn forget_customer(&self, user_id: i64) -> Result<u64, PortError> {
        self.0
            .forget_customer(user_id)
            .await
            .map_err(|e| PortError(e.to_string()))
    }
}

/// Starts the outbox relay and the sweeper; they stop when the handles are aborted.
/// Each runs only while this replica holds its lease (`relay`, `sweeper`):
/// with several replicas one relays and one sweeps, and a replica that dies
/// hands both over once its leases expire.
pub fn spawn_background(
    store: OrderStore,
    bus: Arc<dyn ecap_core::events::EventBus>,
    settings: Arc<OrdersSettings>,
    relay_lease: ecap_core::lease::LeaseHandle,
    sweeper_lease: ecap_core::lease::LeaseHandle,
) -> Vec<tokio::task::JoinHandle<()>> {
    let relay = outbox::Relay::new(store.clone(), bus).with_lease(relay_lease);
    let cleanup_task = settings
        .cleanup_every
        .map(|every| tokio::spawn(cleanup(store.clone(), every)));
    let sweeper = tokio::spawn(async move {
        let every = (settings.reservation_grace / 4)
            .clamp(Duration::from_millis(200), Duration::from_secs(30));
        loop {
            sweeper_lease.wait().await;
            match store
                .sweep(settings.reservation_grace, settings.idempotency_ttl)
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(fixed = n, "order sweeper finished interrupted work"),
                Err(e) => tracing::warn!(error = %e, "order sweeper failed; retrying"),
            }
            tokio::time::sleep(every).await;
        }
    });
    let mut tasks = vec![tokio::spawn(relay.run()), sweeper];
    tasks.extend(cleanup_task);
    tasks
}

/// The scheduled retention clean-up (the original's 02:00 cron, issue 16 #6):
/// the first run at start, then every `every`. The erasure is one idempotent
/// UPDATE, so replicas running it at the same moment erase each order once
/// and agree on the count of what is left (nothing).
async fn cleanup(store: OrderStore, every: Duration) {
    loop {
        match store.purge_expired_hidden().await {
            Ok(n) => tracing::info!(
                erased = n,
                next_in_secs = every.as_secs(),
                "scheduled clean-up: personal data of expired deleted orders erased"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "scheduled clean-up failed; retrying at the next run")
            }
        }
        tokio::time::sleep(every).await;
    }
}
