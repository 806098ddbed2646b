//! The split shape's event bus: Redis Streams.
//!
//! The orders service's outbox relay `XADD`s each event (field `e`, the
//! event as JSON) to one stream; `publish` returns `Ok` only once Redis has
//! every event, so while Redis is down the events wait in the outbox and flow
//! when it returns. Consumers (analytics) read through a consumer group:
//! each replica is a consumer, acknowledges (`XACK`) only what its handler
//! applied, first re-reads its own pending entries after an error, and claims
//! (`XAUTOCLAIM`) entries a dead consumer left pending for longer than
//! `claim_idle`. The stream is trimmed (`XTRIM MINID`) only below the oldest
//! entry some group still needs: its oldest pending entry, or past its last
//! delivered one. Delivery is at least once; consumers are idempotent by
//! (`order_id`, `seq`).

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use redis::{
    Value,
    aio::{ConnectionManager, ConnectionManagerConfig},
    streams::{
        StreamAutoClaimReply, StreamId, StreamInfoConsumersReply, StreamInfoGroupsReply,
        StreamPendingReply, StreamReadReply,
    },
};

use crate::{
    clock,
    events::{EventBus, EventHandler, OrderEvent},
    ports::PortError,
};

/// The stream key of order events under a deployment's key prefix.
pub fn orders_stream_key(prefix: &str) -> String {
    crate::config::redis_key(prefix, "events:orders")
}

/// A connection that is made on first use and re-made after failures, so a
/// process starts (and keeps serving) while Redis is down.
fn lazy_connection(url: &str, response_timeout: Duration) -> Result<ConnectionManager, PortError> {
    let client = redis::Client::open(url).map_err(|e| PortError(format!("REDIS_URL: {e}")))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_secs(1));
    ConnectionManager::new_lazy_with_config(client, config)
        .map_err(|e| PortError(format!("redis: {e}")))
}

fn redis_err(e: redis::RedisError) -> PortError {
    PortError::unavailable(format!("the event stream (Redis): {e}"))
}

/// The publishing side: what the orders service's relay hands events to.
#[derive(Clone)]
pub struct StreamBus {
    conn: ConnectionManager,
    key: String,
}

impl StreamBus {
    pub fn new(url: &str, prefix: &str) -> Result<Self, PortError> {
        Ok(Self {
            conn: lazy_connection(url, Duration::from_secs(2))?,
            key: orders_stream_key(prefix),
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether Redis answers (for `/ready`).
    pub async fn ping(&self) -> bool {
        let mut conn = self.conn.clone();
        matches!(
            tokio::time::timeout(
                Duration::from_secs(2),
                redis::cmd("PING").query_async::<String>(&mut conn)
            )
            .await,
            Ok(Ok(_))
        )
    }
}

#[async_trait]
impl EventBus for StreamBus {
    async fn publish(&self, events: &[OrderEvent]) -> Result<(), PortError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for event in events {
            let json = serde_json::to_string(event).map_err(|e| PortError(e.to_string()))?;
            pipe.cmd("XADD")
                .arg(&self.key)
                .arg("*")
                .arg("e")
                .arg(json)
                .ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await.map_err(redis_err)?;
        metrics::counter!("events_published_total").increment(events.len() as u64);
        Ok(())
    }
}

/// Settings of one consumer of the order stream.
#[derive(Clone, Debug)]
pub struct ConsumerSettings {
    pub group: String,
    /// This replica's name in the group (unique per process).
    pub consumer: String,
    /// Entries pending this long at another consumer are claimed.
    pub claim_idle: Duration,
    /// Entries read per call.
    pub batch: usize,
}

/// The reading side: a consumer in a group, calling `handler` with each batch.
pub struct StreamConsumer {
    conn: ConnectionManager,
    key: String,
    settings: ConsumerSettings,
    handler: Arc<dyn EventHandler>,
}

impl StreamConsumer {
    pub fn new(
        url: &str,
        prefix: &str,
        settings: ConsumerSettings,
        handler: Arc<dyn EventHandler>,
    ) -> Result<Self, PortError> {
        Ok(Self {
            // Above the 1 s block of XREADGROUP.
            conn: lazy_connection(url, Duration::from_secs(5))?,
            key: orders_stream_key(prefix),
            settings,
            handler,
        })
    }

    async fn ensure_group(&self) -> Result<(), PortError> {
        let mut conn = self.conn.clone();
        let made: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.key)
            .arg(&self.settings.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await;
        match made {
            Ok(()) => Ok(()),
            Err(e) if e.to_string().contains("BUSYGROUP") => Ok(()),
            Err(e) => Err(redis_err(e)),
        }
    }

    /// Reads entries: `">"` for new ones, `"0"` for our own pending ones.
    async fn read(&self, from: &str, block_ms: Option<u64>) -> Result<Vec<StreamId>, PortError> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.settings.group)
            .arg(&self.settings.consumer)
            .arg("COUNT")
            .arg(self.settings.batch);
        if let Some(ms) = block_ms {
            cmd.arg("BLOCK").arg(ms);
        }
        cmd.arg("STREAMS").arg(&self.key).arg(from);
        let reply: Option<StreamReadReply> = cmd.query_async(&mut conn).await.map_err(redis_err)?;
        Ok(reply
            .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
            .unwrap_or_default())
    }

    /// Takes over entries a dead (or stuck) consumer left pending.
    async fn claim(&self) -> Result<Vec<StreamId>, PortError> {
        let mut conn = self.conn.clone();
        let idle = u64::try_from(self.settings.claim_idle.as_millis()).unwrap_or(u64::MAX);
        let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(&self.key)
            .arg(&self.settings.group)
            .arg(&self.settings.consumer)
            .arg(idle)
            .arg("0-0")
            .arg("COUNT")
            .arg(self.settings.batch)
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        if !reply.claimed.is_empty() {
            tracing::info!(
                entries = reply.claimed.len(),
                "claimed events a stopped consumer left unacknowledged"
            );
            metrics::counter!("events_claimed_total").increment(reply.claimed.len() as u64);
        }
        Ok(reply.claimed)
    }

    /// Hands entries to the handler and acknowledges them; unreadable entries
    /// are logged and acknowledged (they can never be applied).
    async fn apply(&self, entries: Vec<StreamId>) -> Result<usize, PortError> {
        if entries.is_empty() {
            return Ok(0);
        }
        let mut events = Vec::with_capacity(entries.len());
        let mut ids = Vec::with_capacity(entries.len());
        for entry in entries {
            let parsed = entry
                .map
                .get("e")
                .and_then(|v| match v {
                    Value::BulkString(b) => Some(b.as_slice()),
                    _ => None,
                })
                .map(serde_json::from_slice::<OrderEvent>);
            match parsed {
                Some(Ok(event)) => events.push(event),
                other => {
                    tracing::error!(id = %entry.id, error = ?other.map(|r| r.err()), "unreadable event in the stream; skipped");
                    metrics::counter!("events_unreadable_total").increment(1);
                }
            }
            ids.push(entry.id);
        }
        if !events.is_empty() {
            self.handler.handle(&events).await?;
            let now = clock::now_ms();
            for e in &events {
                let lag = (now - e.at).max(0) as f64 / 1000.0;
                metrics::histogram!("events_lag_seconds").record(lag);
            }
            if let Some(last) = events.last() {
                metrics::gauge!("events_last_lag_seconds")
                    .set((now - last.at).max(0) as f64 / 1000.0);
            }
            metrics::counter!("events_applied_total").increment(events.len() as u64);
        }
        let mut conn = self.conn.clone();
        redis::cmd("XACK")
            .arg(&self.key)
            .arg(&self.settings.group)
            .arg(&ids)
            .query_async::<i64>(&mut conn)
            .await
            .map_err(redis_err)?;
        Ok(ids.len())
    }

    /// Trims the stream below what every group still needs, and forgets
    /// consumers that left nothing pending and have been idle for an hour.
    pub async fn trim(&self) -> Result<u64, PortError> {
        let mut conn = self.conn.clone();
        let groups: StreamInfoGroupsReply = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&self.key)
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        let mut floor: Option<(u64, u64)> = None;
        for g in &groups.groups {
            let needed = if g.pending > 0 {
                let pending: StreamPendingReply = redis::cmd("XPENDING")
                    .arg(&self.key)
                    .arg(&g.name)
                    .query_async(&mut conn)
                    .await
                    .map_err(redis_err)?;
                match pending {
                    StreamPendingReply::Data(d) => parse_id(&d.start_id),
                    _ => parse_id(&g.last_delivered_id),
                }
            } else {
                // Everything up to the last delivered entry is acknowledged.
                parse_id(&g.last_delivered_id)
            };
            let Some(needed) = needed else { return Ok(0) };
            floor = Some(floor.map_or(needed, |f| f.min(needed)));
        }
        let Some((ms, seq)) = floor else {
            return Ok(0);
        };
        if (ms, seq) == (0, 0) {
            return Ok(0);
        }
        let trimmed: u64 = redis::cmd("XTRIM")
            .arg(&self.key)
            .arg("MINID")
            .arg(format!("{ms}-{seq}"))
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        let consumers: StreamInfoConsumersReply = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(&self.key)
            .arg(&self.settings.group)
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        for c in consumers.consumers {
            if c.pending == 0 && c.idle > 3_600_000 && c.name != self.settings.consumer {
                let _: redis::RedisResult<i64> = redis::cmd("XGROUP")
                    .arg("DELCONSUMER")
                    .arg(&self.key)
                    .arg(&self.settings.group)
                    .arg(&c.name)
                    .query_async(&mut conn)
                    .await;
            }
        }
        Ok(trimmed)
    }

    /// One pass: own pending entries first, then claimed ones, then new ones
    /// (blocking up to `block_ms`). Returns how many entries were applied.
    pub async fn poll(&self, block_ms: u64, claim: bool) -> Result<usize, PortError> {
        self.ensure_group().await?;
        let mut done = 0;
        loop {
            let own = self.read("0", None).await?;
            if own.is_empty() {
                break;
            }
            done += self.apply(own).await?;
        }
        if claim {
            let claimed = self.claim().await?;
            done += self.apply(claimed).await?;
        }
        let new = self.read(">", Some(block_ms)).await?;
        done += self.apply(new).await?;
        Ok(done)
    }

    /// Consumes until the task is aborted: errors (Redis down, handler
    /// failing) are retried with backoff; nothing is acknowledged that was
    /// not applied.
    pub async fn run(self) {
        let mut backoff = Duration::from_millis(100);
        let mut last_claim = tokio::time::Instant::now();
        let mut last_trim = tokio::time::Instant::now();
        let mut down = false;
        loop {
            let claim = last_claim.elapsed() >= Duration::from_secs(1);
            if claim {
                last_claim = tokio::time::Instant::now();
            }
            match self.poll(1000, claim).await {
                Ok(_) => {
                    if down {
                        tracing::info!("event stream reachable again");
                        down = false;
                    }
                    backoff = Duration::from_millis(100);
                    if last_trim.elapsed() >= Duration::from_secs(10) {
                        last_trim = tokio::time::Instant::now();
                        match self.trim().await {
                            Ok(0) => {}
                            Ok(n) => tracing::debug!(entries = n, "event stream trimmed"),
                            Err(e) => tracing::warn!(error = %e, "event stream trim failed"),
                        }
                    }
                }
                Err(e) => {
                    if !down {
                        tracing::warn!(error = %e, "event consumer failed; retrying");
                        down = true;
                    }
                    metrics::counter!("events_consume_errors_total").increment(1);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// `ms-seq` stream id.
fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::events::OrderEventKind;

    fn redis_url() -> String {
        std::env::var("ECAP_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
    }

    fn event(order_id: i64, seq: i64) -> OrderEvent {
        OrderEvent {
            event_id: format!("e{order_id}-{seq}"),
            order_id,
            user_id: 7,
            seq,
            kind: OrderEventKind::Created,
            from_status: None,
            to_status: "pending".into(),
            lines: vec![],
            total_cents: 100,
            payment_method: "cod".into(),
            placed_at: 0,
            at: clock::now_ms(),
        }
    }

    struct Recorder(Mutex<Vec<i64>>, bool);

    #[async_trait]
    impl EventHandler for Recorder {
        async fn handle(&self, events: &[OrderEvent]) -> Result<(), PortError> {
            if self.1 {
                return Err(PortError("handler down".into()));
            }
            self.0
                .lock()
                .unwrap()
                .extend(events.iter().map(|e| e.order_id));
            Ok(())
        }
    }

    fn consumer(prefix: &str, name: &str, handler: Arc<Recorder>) -> StreamConsumer {
        StreamConsumer::new(
            &redis_url(),
            prefix,
            ConsumerSettings {
                group: "analytics".into(),
                consumer: name.into(),
                claim_idle: Duration::from_millis(200),
                batch: 100,
            },
            handler,
        )
        .unwrap()
    }

    /// Against the local Redis, under a key prefix of its own (deleted after).
    #[tokio::test]
    async fn unacknowledged_events_are_claimed_and_trimming_waits_for_every_group() {
        let prefix = format!("ecap_t_{}:", uuid::Uuid::new_v4().simple());
        let bus = StreamBus::new(&redis_url(), &prefix).unwrap();
        let mut conn = redis::Client::open(redis_url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .expect("Redis at ECAP_TEST_REDIS_URL (default 127.0.0.1:6379) must answer");
        let len = |mut c: redis::aio::MultiplexedConnection, key: String| async move {
            redis::cmd("XLEN")
                .arg(key)
                .query_async::<u64>(&mut c)
                .await
                .unwrap()
        };

        // A consumer whose handler fails acknowledges nothing.
        let dead = consumer(
            &prefix,
            "dead",
            Arc::new(Recorder(Mutex::new(vec![]), true)),
        );
        dead.ensure_group().await.unwrap();
        bus.publish(&[event(1, 1), event(2, 1), event(3, 1)])
            .await
            .unwrap();
        assert!(dead.poll(10, false).await.is_err());

        // Another consumer claims them once they have been idle long enough.
        let rec = Arc::new(Recorder(Mutex::new(vec![]), false));
        let live = consumer(&prefix, "live", rec.clone());
        assert_eq!(live.poll(10, true).await.unwrap(), 0, "not idle yet");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(live.poll(10, true).await.unwrap(), 3);
        bus.publish(&[event(4, 1), event(5, 1)]).await.unwrap();
        assert_eq!(live.poll(10, true).await.unwrap(), 2);
        assert_eq!(*rec.0.lock().unwrap(), vec![1, 2, 3, 4, 5]);
        assert_eq!(live.poll(10, true).await.unwrap(), 0, "all acknowledged");

        // Everything is acknowledged: trimmed down to the last delivered entry.
        assert_eq!(len(conn.clone(), bus.key().to_owned()).await, 5);
        live.trim().await.unwrap();
        assert_eq!(len(conn.clone(), bus.key().to_owned()).await, 1);

        // A second group that has read nothing holds the trim back.
        redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(bus.key())
            .arg("audit")
            .arg("0")
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
        bus.publish(&[event(6, 1)]).await.unwrap();
        assert_eq!(live.poll(10, true).await.unwrap(), 1);
        live.trim().await.unwrap();
        assert_eq!(len(conn.clone(), bus.key().to_owned()).await, 2);

        redis::cmd("DEL")
            .arg(bus.key())
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn publishing_while_redis_is_down_fails_so_the_outbox_keeps_the_events() {
        // Nothing listens on port 1: the relay must see an error, not a success.
        let bus = StreamBus::new("redis://127.0.0.1:1", "ecap_t_down:").unwrap();
        let e = bus.publish(&[event(1, 1)]).await.unwrap_err();
        assert!(e.is_unavailable(), "{e}");
        assert!(!bus.ping().await);
    }

    #[test]
    fn stream_ids_parse() {
        assert_eq!(parse_id("1700000000000-3"), Some((1_700_000_000_000, 3)));
        assert_eq!(parse_id("0-0"), Some((0, 0)));
        assert_eq!(parse_id("x"), None);
        assert_eq!(orders_stream_key("ecap:"), "ecap:events:orders");
    }
}
