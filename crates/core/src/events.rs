//! Order events: what the orders service's outbox publishes and analytics
//! consumes, and the bus that carries them.
//!
//! The relay delivers each event at least once, in outbox order (so the events
//! of one order arrive in `seq` order); consumers are idempotent by `event_id`
//! and by (`order_id`, `seq`). The all-in-one process uses [`InProcessBus`];
//! the split shape will put Redis Streams behind the same [`EventBus`] trait.

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::ports::PortError;

/// What happened to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderEventKind {
    Created,
    StatusChanged,
    Cancelled,
    Refunded,
    Deleted,
    Restored,
}

impl OrderEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::StatusChanged => "status_changed",
            Self::Cancelled => "cancelled",
            Self::Refunded => "refunded",
            Self::Deleted => "deleted",
            Self::Restored => "restored",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "created" => Self::Created,
            "status_changed" => Self::StatusChanged,
            "cancelled" => Self::Cancelled,
            "refunded" => Self::Refunded,
            "deleted" => Self::Deleted,
            "restored" => Self::Restored,
            _ => return None,
        })
    }
}

/// One order line as analytics needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventLine {
    pub product_id: String,
    pub category: String,
    pub quantity: i64,
    /// Integer cents.
    pub unit_price_cents: i64,
}

/// One change of one order, with everything a consumer needs to apply it
/// without reading the orders tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderEvent {
    /// Unique per event (UUID v7).
    pub event_id: String,
    pub order_id: i64,
    pub user_id: i64,
    /// 1 for `created`, then +1 per change of this order.
    pub seq: i64,
    pub kind: OrderEventKind,
    pub from_status: Option<String>,
    pub to_status: String,
    pub lines: Vec<EventLine>,
    /// Integer cents.
    pub total_cents: i64,
    pub payment_method: String,
    /// When the order was placed (epoch ms, UTC).
    pub placed_at: i64,
    /// When this change happened (epoch ms, UTC).
    pub at: i64,
}

/// Where the outbox relay hands events. `publish` returning `Ok` means every
/// consumer has the events; an error makes the relay try again later.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    async fn publish(&self, events: &[OrderEvent]) -> Result<(), PortError>;
}

/// The current state of every order, for consumers that rebuild or check
/// what they derived from the events (analytics `rebuild` / `verify`).
#[async_trait]
pub trait OrderSource: Send + Sync + 'static {
    /// Up to `limit` orders with id greater than `after`, by id, each as an
    /// event: `seq` is the number of the order's last event, `to_status` its
    /// current status, `at` its last change.
    async fn orders_after(&self, after: i64, limit: usize) -> Result<Vec<OrderEvent>, PortError>;

    /// How many orders there are (for progress reports).
    async fn order_count(&self) -> Result<u64, PortError>;
}

/// A consumer called by the in-process bus. It must be idempotent: the same
/// event can arrive again after a failure or a restart.
#[async_trait]
pub trait EventHandler: Send + Sync + 'static {
    async fn handle(&self, events: &[OrderEvent]) -> Result<(), PortError>;
}

/// The all-in-one bus: calls every registered handler (delivery counts only
/// when all succeed), then tells observers (live views; may miss events when
/// they lag, which is why they are not consumers).
pub struct InProcessBus {
    handlers: RwLock<Vec<Arc<dyn EventHandler>>>,
    observers: broadcast::Sender<Arc<OrderEvent>>,
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::new()
    }
}

impl InProcessBus {
    pub fn new() -> Self {
        Self {
            handlers: RwLock::new(Vec::new()),
            observers: broadcast::channel(4096).0,
        }
    }

    pub fn register(&self, handler: Arc<dyn EventHandler>) {
        if let Ok(mut h) = self.handlers.write() {
            h.push(handler);
        }
    }

    /// A live feed of delivered events (best effort).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<OrderEvent>> {
        self.observers.subscribe()
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, events: &[OrderEvent]) -> Result<(), PortError> {
        let handlers: Vec<Arc<dyn EventHandler>> = self
            .handlers
            .read()
            .map(|h| h.clone())
            .map_err(|_| PortError("event bus poisoned".into()))?;
        for handler in handlers {
            handler.handle(events).await?;
        }
        for event in events {
            // No receiver is fine.
            let _ = self.observers.send(Arc::new(event.clone()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Recorder(Mutex<Vec<i64>>, bool);

    #[async_trait]
    impl EventHandler for Recorder {
        async fn handle(&self, events: &[OrderEvent]) -> Result<(), PortError> {
            if self.1 {
                return Err(PortError("down".into()));
            }
            if let Ok(mut seen) = self.0.lock() {
                seen.extend(events.iter().map(|e| e.seq));
            }
            Ok(())
        }
    }

    fn event(seq: i64) -> OrderEvent {
        OrderEvent {
            event_id: format!("e{seq}"),
            order_id: 1,
            user_id: 2,
            seq,
            kind: OrderEventKind::Created,
            from_status: None,
            to_status: "pending".into(),
            lines: vec![],
            total_cents: 100,
            payment_method: "cod".into(),
            placed_at: 0,
            at: 0,
        }
    }

    #[tokio::test]
    async fn handlers_and_observers_see_events_in_order() {
        let bus = InProcessBus::new();
        let rec = Arc::new(Recorder(Mutex::new(vec![]), false));
        bus.register(rec.clone());
        let mut live = bus.subscribe();
        bus.publish(&[event(1), event(2)]).await.unwrap();
        assert_eq!(*rec.0.lock().unwrap(), vec![1, 2]);
        assert_eq!(live.recv().await.unwrap().seq, 1);
        assert_eq!(live.recv().await.unwrap().seq, 2);
    }

    #[tokio::test]
    async fn a_failing_handler_fails_the_delivery() {
        let bus = InProcessBus::new();
        bus.register(Arc::new(Recorder(Mutex::new(vec![]), true)));
        assert!(bus.publish(&[event(1)]).await.is_err());
        let json = serde_json::to_value(event(1)).unwrap();
        assert_eq!(json["kind"], "created");
        assert_eq!(json["totalCents"], 100);
    }
}
