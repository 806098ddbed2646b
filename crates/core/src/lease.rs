//! Leases: background work that must run in one replica at a time (the
//! outbox relay, the reservation sweeper) takes a named lease in its service's
//! database — a row with an owner and an expiry. The holder renews it every
//! third of its lifetime; a replica that dies stops renewing, and another one
//! takes the row over once it has expired (within `ttl` plus one renewal tick).
//!
//! One conditional `UPDATE` (owner is me, or the lease has expired) or a first
//! `INSERT` decides, so it works alike on SQLite, PostgreSQL and MySQL/MariaDB.
//! A holder whose renewals fail stops working before its lease can expire
//! (it counts the lease as held only until `ttl` minus a margin after the
//! last successful renewal).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
    time::Duration,
};

use sea_query::{Alias, ColumnDef, Expr, ExprTrait, Query, Table};

use crate::{
    clock,
    db::{Backend, Db, DbResult},
    migrate::Migration,
};

const MIGRATIONS: &[Migration] = &[Migration {
    version: 2026120701,
    name: "background job leases",
    statements: v1,
}];

fn v1(backend: Backend) -> Vec<String> {
    let table = Table::create()
        .table(Alias::new("ecap_leases"))
        .col(
            ColumnDef::new(Alias::new("name"))
                .string_len(100)
                .not_null()
                .primary_key(),
        )
        .col(
            ColumnDef::new(Alias::new("owner"))
                .string_len(200)
                .not_null(),
        )
        .col(
            ColumnDef::new(Alias::new("expires_at"))
                .big_integer()
                .not_null(),
        )
        .to_owned();
    vec![backend.ddl(&table)]
}

/// Creates the lease table in `db` (idempotent).
pub async fn migrate(db: &Db) -> DbResult<usize> {
    crate::migrate::run(db, "leases", MIGRATIONS).await
}

/// A unique name for this process among the replicas (host, pid, random).
pub fn replica_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    let tail: u32 = rand::random();
    format!("{host}-{}-{tail:08x}", std::process::id())
}

/// One named lease, tried by one owner.
#[derive(Clone, Debug)]
pub struct Lease {
    db: Db,
    name: String,
    owner: String,
    ttl: Duration,
}

impl Lease {
    pub fn new(db: Db, name: impl Into<String>, owner: impl Into<String>, ttl: Duration) -> Self {
        Self {
            db,
            name: name.into(),
            owner: owner.into(),
            ttl,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Takes the lease when it is free or expired, renews it when it is ours;
    /// `true` when we hold it afterwards.
    pub async fn try_acquire(&self) -> DbResult<bool> {
        let now = clock::now_ms();
        let until = now.saturating_add(i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX));
        let (t, name, owner, expires) = (
            Alias::new("ecap_leases"),
            Alias::new("name"),
            Alias::new("owner"),
            Alias::new("expires_at"),
        );
        let updated = self
            .db
            .execute(
                self.db.pool(),
                &Query::update()
                    .table(t.clone())
                    .value(owner.clone(), self.owner.clone())
                    .value(expires.clone(), until)
                    .and_where(Expr::col(name.clone()).eq(self.name.clone()))
                    .and_where(
                        Expr::col(owner.clone())
                            .eq(self.owner.clone())
                            .or(Expr::col(expires.clone()).lt(now)),
                    )
                    .to_owned(),
            )
            .await?;
        if updated > 0 {
            return Ok(true);
        }
        // MySQL counts an UPDATE that changed nothing as 0 rows: ask whether it is ours.
        let holder: Option<(String,)> = self
            .db
            .fetch_optional(
                self.db.pool(),
                &Query::select()
                    .column(owner.clone())
                    .from(t.clone())
                    .and_where(Expr::col(name.clone()).eq(self.name.clone()))
                    .to_owned(),
            )
            .await?;
        match holder {
            Some((o,)) => Ok(o == self.owner),
            None => {
                let inserted = self
                    .db
                    .execute(
                        self.db.pool(),
                        &Query::insert()
                            .into_table(t)
                            .columns([name, owner, expires])
                            .values_panic([
                                self.name.clone().into(),
                                self.owner.clone().into(),
                                until.into(),
                            ])
                            .to_owned(),
                    )
                    .await;
                match inserted {
                    Ok(_) => Ok(true),
                    Err(e) if e.is_unique_violation() => Ok(false),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Gives the lease up (on a clean shutdown) so another replica need not wait.
    pub async fn release(&self) -> DbResult<()> {
        self.db
            .execute(
                self.db.pool(),
                &Query::update()
                    .table(Alias::new("ecap_leases"))
                    .value(Alias::new("expires_at"), 0)
                    .and_where(Expr::col(Alias::new("name")).eq(self.name.clone()))
                    .and_where(Expr::col(Alias::new("owner")).eq(self.owner.clone()))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    /// Who holds the lease and until when (epoch ms), if anyone ever took it.
    pub async fn holder(&self) -> DbResult<Option<(String, i64)>> {
        self.db
            .fetch_optional(
                self.db.pool(),
                &Query::select()
                    .columns([Alias::new("owner"), Alias::new("expires_at")])
                    .from(Alias::new("ecap_leases"))
                    .and_where(Expr::col(Alias::new("name")).eq(self.name.clone()))
                    .to_owned(),
            )
            .await
    }

    /// Keeps trying and renewing in the background; the returned handle says
    /// whether the lease is held right now.
    pub fn keep(self) -> (LeaseHandle, tokio::task::JoinHandle<()>) {
        let handle = LeaseHandle {
            valid_until: Arc::new(AtomicI64::new(0)),
            was_held: Arc::new(AtomicBool::new(false)),
            name: Arc::from(self.name.as_str()),
        };
        let h = handle.clone();
        let ttl_ms = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        let tick = (self.ttl / 3).max(Duration::from_millis(50));
        let task = tokio::spawn(async move {
            loop {
                let asked = clock::now_ms();
                match self.try_acquire().await {
                    Ok(true) => {
                        // Counted from before the call, minus a margin for clock steps.
                        h.valid_until
                            .store(asked + ttl_ms - ttl_ms / 5, Ordering::Release);
                        if !h.was_held.swap(true, Ordering::AcqRel) {
                            tracing::info!(lease = %self.name, owner = %self.owner, "lease taken: this replica runs the job");
                            metrics::gauge!("lease_held", "lease" => self.name.clone()).set(1.0);
                        }
                    }
                    Ok(false) => {
                        h.valid_until.store(0, Ordering::Release);
                        if h.was_held.swap(false, Ordering::AcqRel) {
                            tracing::warn!(lease = %self.name, "lease lost to another replica");
                            metrics::gauge!("lease_held", "lease" => self.name.clone()).set(0.0);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(lease = %self.name, error = %e, "lease renewal failed");
                    }
                }
                tokio::time::sleep(tick).await;
            }
        });
        (handle, task)
    }
}

/// Whether this replica holds a lease kept by [`Lease::keep`].
#[derive(Clone, Debug)]
pub struct LeaseHandle {
    valid_until: Arc<AtomicI64>,
    was_held: Arc<AtomicBool>,
    name: Arc<str>,
}

impl LeaseHandle {
    /// A handle that is always held (one process, nothing to share with).
    pub fn always() -> Self {
        Self {
            valid_until: Arc::new(AtomicI64::new(i64::MAX)),
            was_held: Arc::new(AtomicBool::new(true)),
            name: Arc::from("always"),
        }
    }

    pub fn held(&self) -> bool {
        clock::now_ms() < self.valid_until.load(Ordering::Acquire)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits until the lease is held (checks every 100 ms).
    pub async fn wait(&self) {
        while !self.held() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
