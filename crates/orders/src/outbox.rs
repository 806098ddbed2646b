//! The outbox relay: delivers undelivered event rows to the bus in outbox
//! order, at least once, and marks them delivered. It wakes when an order
//! change commits in this process and polls every 250 ms besides (changes
//! committed by another replica), so a restart (or a bus that
//! was down) resumes where delivery stopped.

use std::{sync::Arc, time::Duration};

use ecap_core::{events::EventBus, lease::LeaseHandle};

use crate::store::OrderStore;

const BATCH: u64 = 256;

/// How often the relay looks for undelivered rows when nothing woke it.
const POLL: Duration = Duration::from_millis(250);

pub struct Relay {
    store: OrderStore,
    bus: Arc<dyn EventBus>,
    lease: LeaseHandle,
}

impl Relay {
    pub fn new(store: OrderStore, bus: Arc<dyn EventBus>) -> Self {
        Self {
            store,
            bus,
            lease: LeaseHandle::always(),
        }
    }

    /// Relays only while `lease` is held (one relaying replica at a time).
    pub fn with_lease(mut self, lease: LeaseHandle) -> Self {
        self.lease = lease;
        self
    }

    /// Delivers one batch; returns how many events went out.
    pub async fn deliver_once(&self) -> Result<usize, String> {
        let rows = self
            .store
            .undelivered(BATCH)
            .await
            .map_err(|e| e.to_string())?;
        if rows.is_empty() {
            return Ok(0);
        }
        let (ids, events): (Vec<i64>, Vec<_>) = rows.into_iter().unzip();
        self.bus.publish(&events).await.map_err(|e| e.to_string())?;
        let now = ecap_core::clock::now_ms();
        if let Some(oldest) = events.iter().map(|e| e.at).min() {
            metrics::gauge!("outbox_relay_lag_seconds").set((now - oldest).max(0) as f64 / 1000.0);
        }
        metrics::counter!("outbox_relayed_total").increment(events.len() as u64);
        // A crash here re-delivers the batch: consumers are idempotent.
        self.store
            .mark_delivered(&ids)
            .await
            .map_err(|e| e.to_string())?;
        Ok(ids.len())
    }

    pub async fn run(self) {
        let wake = self.store.relay_signal();
        let mut backoff = Duration::from_millis(100);
        let mut failing = false;
        loop {
            if !self.lease.held() {
                // Another replica relays; check again shortly.
                let _ = tokio::time::timeout(Duration::from_millis(250), wake.notified()).await;
                continue;
            }
            match self.deliver_once().await {
                Ok(n) if n as u64 == BATCH => continue,
                Ok(_) => {
                    if failing {
                        tracing::info!("outbox delivery works again");
                        failing = false;
                    }
                    backoff = Duration::from_millis(100);
                    // Orders committed by another replica do not wake this one: poll.
                    let _ = tokio::time::timeout(POLL, wake.notified()).await;
                }
                Err(e) => {
                    metrics::counter!("outbox_delivery_failures_total").increment(1);
                    if !failing {
                        tracing::warn!(error = %e, "outbox delivery failed; events wait in the outbox, retrying");
                        failing = true;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}
