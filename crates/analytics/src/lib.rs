//! Analytics: an idempotent consumer of the orders' outbox events that keeps
//! exact, time-bucketed aggregates in its own tables (and a mirror of them in
//! memory that reads answer from), the dashboard, revenue and breakdown
//! routes, a live Server-Sent-Events stream, CSV export, and rebuild/verify
//! against the orders.

pub mod http;
pub mod memory;
pub mod migrations;
pub mod model;
pub mod query;
pub mod store;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use axum::{Router, extract::FromRef};
use ecap_core::{
    auth::AuthState,
    db::Db,
    events::{EventHandler, OrderEvent},
    ports::{PortError, ProductDirectory},
};
use utoipa_axum::{router::OpenApiRouter, routes};

pub use store::AnalyticsStore;

/// Behaviour switches of the analytics service, from the configuration.
#[derive(Debug, Clone)]
pub struct AnalyticsSettings {
    /// IANA time zone days are counted in when a request names none.
    pub timezone: String,
}

impl Default for AnalyticsSettings {
    fn default() -> Self {
        Self {
            timezone: "UTC".into(),
        }
    }
}

#[derive(Clone)]
pub struct AnalyticsState {
    pub store: AnalyticsStore,
    pub auth: AuthState,
    pub settings: Arc<AnalyticsSettings>,
    /// Names, categories and images of the products figures are kept for.
    pub products: Arc<dyn ProductDirectory>,
}

impl FromRef<AnalyticsState> for AuthState {
    fn from_ref(s: &AnalyticsState) -> Self {
        s.auth.clone()
    }
}

/// Applies the service's migrations.
pub async fn migrate(db: &Db) -> Result<usize, ecap_core::db::DbError> {
    ecap_core::migrate::run(db, "analytics", migrations::MIGRATIONS).await
}

pub fn openapi_router() -> OpenApiRouter<AnalyticsState> {
    OpenApiRouter::new()
        .routes(routes!(http::dashboard))
        .routes(routes!(http::revenue))
        .routes(routes!(http::top_products))
        .routes(routes!(http::categories))
        .routes(routes!(http::status_breakdown))
        .routes(routes!(http::payment_methods))
        .routes(routes!(http::export))
        .routes(routes!(http::stream))
        .routes(routes!(http::track_order))
        .routes(routes!(http::reset_daily))
}

/// The service's routes, ready to merge into a process's router.
pub fn router(state: AnalyticsState) -> (Router, utoipa::openapi::OpenApi) {
    let (router, api) = openapi_router().split_for_parts();
    (router.with_state(state), api)
}

/// The consumer the event bus calls: applies each delivered batch.
#[derive(Clone, Debug)]
pub struct AnalyticsConsumer(pub AnalyticsStore);

#[async_trait]
impl EventHandler for AnalyticsConsumer {
    async fn handle(&self, events: &[OrderEvent]) -> Result<(), PortError> {
        self.0
            .apply(events)
            .await
            .map(|_| ())
            .map_err(|e| PortError(format!("analytics: {e}")))
    }
}

/// Keeps the mirror exact while other processes write the tables: follows
/// the applies of other replicas (`analytics_changes`) four times a second,
/// reloads when another process (`ecap analytics rebuild`) replaced the tables
/// (checked once a second), and prunes old changes once a minute.
pub fn spawn_refresher(store: AnalyticsStore) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut n: u64 = 0;
        loop {
            tick.tick().await;
            n = n.wrapping_add(1);
            if n.is_multiple_of(4) {
                match store.refresh().await {
                    Ok(true) => {
                        tracing::info!("analytics tables were rebuilt: mirror reloaded");
                        continue;
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "analytics refresh failed"),
                }
            }
            if let Err(e) = store.follow().await {
                tracing::warn!(error = %e, "following other replicas' analytics changes failed");
            }
            if n.is_multiple_of(240)
                && let Err(e) = store.prune_changes().await
            {
                tracing::warn!(error = %e, "pruning analytics changes failed");
            }
        }
    })
}
