//! Versioned, append-only migrations per service, applied on start.
//!
//! A migration is a list of DDL statements built with sea-query's schema builder,
//! so one definition serves all three backends. Applied versions are recorded in
//! `ecap_migrations (service, version)`; a lock keeps two replicas starting at once
//! from applying the same migration twice.

use sea_query::{Alias, ColumnDef, Expr, ExprTrait, Query, Table};
use sqlx::{AnyConnection, Connection, Executor};

use crate::{
    clock,
    db::{Backend, Db, DbError, DbResult},
};

/// One schema change. `statements` renders its DDL for a backend.
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub statements: fn(Backend) -> Vec<String>,
}

// ---- helpers every service's schema uses ---------------------------------------

/// `id BIGINT` primary key, generated (never reused on SQLite).
pub fn col_id() -> ColumnDef {
    ColumnDef::new(Alias::new("id"))
        .big_integer()
        .not_null()
        .auto_increment()
        .primary_key()
        .to_owned()
}

/// A required epoch-milliseconds column.
pub fn col_ms(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .big_integer()
        .not_null()
        .to_owned()
}

/// `CREATE INDEX name ON table (cols…)`; add `.unique()` for a unique one.
pub fn index(name: &str, table: &str, cols: &[&str]) -> sea_query::IndexCreateStatement {
    let mut idx = sea_query::Index::create();
    idx.name(name).table(Alias::new(table));
    for c in cols {
        idx.col(Alias::new(*c));
    }
    idx.to_owned()
}

/// Renders `CREATE TABLE`; on MySQL/MariaDB with InnoDB (foreign keys,
/// transactions) and full Unicode, whatever the server's defaults.
pub fn table_ddl(backend: Backend, mut stmt: sea_query::TableCreateStatement) -> String {
    if backend == Backend::MySql {
        stmt.engine("InnoDB")
            .character_set("utf8mb4")
            .collate("utf8mb4_unicode_ci");
    }
    backend.ddl(&stmt)
}

const LOCK_KEY: i64 = 0x0000_eca9_0001;

/// Applies the pending migrations of `service`; returns how many ran.
pub async fn run(db: &Db, service: &str, migrations: &[Migration]) -> DbResult<usize> {
    let mut versions: Vec<i64> = migrations.iter().map(|m| m.version).collect();
    versions.sort_unstable();
    if versions.windows(2).any(|w| w[0] == w[1]) {
        return Err(DbError::Config(format!(
            "{service}: duplicate migration version"
        )));
    }
    let mut conn = db.pool().acquire().await?;
    lock(db.backend(), &mut conn).await?;
    let result = apply(db, &mut conn, service, migrations).await;
    let unlocked = unlock(db.backend(), &mut conn).await;
    let ran = result?;
    unlocked?;
    Ok(ran)
}

async fn apply(
    db: &Db,
    conn: &mut AnyConnection,
    service: &str,
    migrations: &[Migration],
) -> DbResult<usize> {
    let table = Table::create()
        .table(Alias::new("ecap_migrations"))
        .if_not_exists()
        .col(
            ColumnDef::new(Alias::new("service"))
                .string_len(64)
                .not_null(),
        )
        .col(
            ColumnDef::new(Alias::new("version"))
                .big_integer()
                .not_null(),
        )
        .col(
            ColumnDef::new(Alias::new("name"))
                .string_len(255)
                .not_null(),
        )
        .col(
            ColumnDef::new(Alias::new("applied_at"))
                .big_integer()
                .not_null(),
        )
        .primary_key(
            sea_query::Index::create()
                .col(Alias::new("service"))
                .col(Alias::new("version")),
        )
        .to_owned();
    conn.execute(sqlx::AssertSqlSafe(db.backend().ddl(&table)))
        .await?;

    let applied = applied_versions(db, &mut *conn, service).await?;
    let mut ran = 0;
    let mut pending: Vec<&Migration> = migrations
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .collect();
    pending.sort_by_key(|m| m.version);
    for m in pending {
        // PostgreSQL and SQLite roll DDL back with the transaction; MySQL commits
        // each DDL statement on its own, which is why every statement is idempotent there.
        let mut tx = match db.backend() {
            Backend::Sqlite => Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?,
            _ => Connection::begin(&mut *conn).await?,
        };
        // Another process may have applied it while this one waited for the lock.
        if applied_versions(db, &mut tx, service)
            .await?
            .contains(&m.version)
        {
            tx.commit().await?;
            continue;
        }
        for sql in (m.statements)(db.backend()) {
            tx.execute(sqlx::AssertSqlSafe(sql)).await.map_err(|e| {
                DbError::Config(format!(
                    "{service} migration {} ({}): {e}",
                    m.version, m.name
                ))
            })?;
        }
        let record = Query::insert()
            .into_table(Alias::new("ecap_migrations"))
            .columns([
                Alias::new("service"),
                Alias::new("version"),
                Alias::new("name"),
                Alias::new("applied_at"),
            ])
            .values_panic([
                service.into(),
                m.version.into(),
                m.name.into(),
                clock::now_ms().into(),
            ])
            .to_owned();
        db.execute(&mut *tx, &record).await?;
        tx.commit().await?;
        tracing::info!(
            service,
            version = m.version,
            name = m.name,
            "migration applied"
        );
        ran += 1;
    }
    Ok(ran)
}

async fn applied_versions(
    db: &Db,
    conn: &mut AnyConnection,
    service: &str,
) -> DbResult<std::collections::HashSet<i64>> {
    let rows: Vec<(i64,)> = db
        .fetch_all(
            conn,
            &Query::select()
                .column(Alias::new("version"))
                .from(Alias::new("ecap_migrations"))
                .and_where(Expr::col(Alias::new("service")).eq(service))
                .to_owned(),
        )
        .await?;
    Ok(rows.into_iter().map(|(v,)| v).collect())
}

async fn lock(backend: Backend, conn: &mut AnyConnection) -> DbResult<()> {
    match backend {
        Backend::Postgres => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT pg_advisory_lock({LOCK_KEY})"
            )))
            .execute(conn)
            .await?;
        }
        Backend::MySql => {
            let (got,): (i64,) =
                sqlx::query_as("SELECT CAST(GET_LOCK('ecap_migrations', 60) AS SIGNED)")
                    .fetch_one(conn)
                    .await?;
            if got != 1 {
                return Err(DbError::Config(
                    "timed out waiting for the migration lock".into(),
                ));
            }
        }
        // One SQLite file has one process applying migrations: the write lock of
        // each migration's transaction is enough.
        Backend::Sqlite => {}
    }
    Ok(())
}

async fn unlock(backend: Backend, conn: &mut AnyConnection) -> DbResult<()> {
    match backend {
        Backend::Postgres => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT pg_advisory_unlock({LOCK_KEY})"
            )))
            .execute(conn)
            .await?;
        }
        Backend::MySql => {
            sqlx::query("SELECT RELEASE_LOCK('ecap_migrations')")
                .execute(conn)
                .await?;
        }
        Backend::Sqlite => {}
    }
    Ok(())
}
