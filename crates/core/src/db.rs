//! One query path over SQLite, PostgreSQL and MySQL/MariaDB.
//!
//! Statements are built once with sea-query and rendered for the backend the URL
//! names; rows come back through sqlx's `Any` driver, so stores hold one copy of
//! every query. Columns use types all three agree on (BIGINT, VARCHAR, TEXT):
//! times are epoch milliseconds (UTC), money integer cents. See docs/adr/0001.

use std::{path::PathBuf, str::FromStr, time::Duration};

use sea_query::{
    MysqlQueryBuilder, PostgresQueryBuilder, SchemaStatementBuilder, SqliteQueryBuilder,
};
use sea_query_sqlx::{SqlxBinder, SqlxValues};
use sqlx::{
    Any, AnyConnection, AnyPool, Executor, FromRow, Transaction,
    any::{AnyPoolOptions, AnyRow},
};

use crate::config::Secret;

/// Which database a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Self, DbError> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            "mysql" | "mariadb" => Ok(Self::MySql),
            other => Err(DbError::Config(format!(
                "unsupported database scheme {other:?}: use sqlite://, postgres:// or mysql://"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::MySql => "mysql",
        }
    }

    /// `CAST(<expr> AS BIGINT)` in this dialect (`SIGNED` on MySQL): sums come
    /// back as DECIMAL/NUMERIC otherwise, which the `Any` driver cannot decode.
    pub fn cast_bigint(self, inner: impl Into<sea_query::Expr>) -> sea_query::Expr {
        let sql = match self {
            Self::Postgres => "CAST($1 AS BIGINT)",
            Self::MySql => "CAST(? AS SIGNED)",
            Self::Sqlite => "CAST(? AS BIGINT)",
        };
        sea_query::Expr::cust_with_expr(sql, inner)
    }

    /// Renders a DDL statement for this backend.
    pub fn ddl(self, stmt: &impl SchemaStatementBuilder) -> String {
        match self {
            Self::Sqlite => stmt.to_string(SqliteQueryBuilder),
            Self::Postgres => stmt.to_string(PostgresQueryBuilder),
            Self::MySql => stmt.to_string(MysqlQueryBuilder),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("database configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
}

impl DbError {
    /// A deadlock or serialisation failure: the transaction may simply be run again.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Sqlx(e) => e.as_database_error().is_some_and(|d| {
                matches!(d.code().as_deref(), Some("40001" | "40P01"))
                    || d.message().contains("Deadlock found")
                    || d.message().contains("database is locked")
            }),
            _ => false,
        }
    }

    pub fn is_unique_violation(&self) -> bool {
        match self {
            Self::Sqlx(e) => e
                .as_database_error()
                .is_some_and(|d| d.is_unique_violation()),
            Self::Conflict(_) => true,
            _ => false,
        }
    }
}

pub type DbResult<T> = Result<T, DbError>;

/// An error after which the whole transaction may simply be run again.
pub trait Retryable {
    fn is_retryable(&self) -> bool;
}

impl Retryable for DbError {
    fn is_retryable(&self) -> bool {
        DbError::is_retryable(self)
    }
}

/// Runs a transaction again when the database chose it as a deadlock victim or
/// could not serialise it: a few attempts with growing pauses. The expression is
/// evaluated once per attempt and must give a `Result` whose error is [`Retryable`].
#[macro_export]
macro_rules! retrying {
    ($attempt:expr) => {{
        let mut tries = 0u32;
        loop {
            match $attempt {
                Err(ref e) if $crate::db::Retryable::is_retryable(e) && tries < 5 => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(5 << tries)).await;
                }
                other => break other,
            }
        }
    }};
}

/// `LIKE` pattern matching `text` anywhere (lower-cased), with its wildcards
/// escaped for `ESCAPE '\\'`.
pub fn contains_pattern(text: &str) -> String {
    let escaped = text
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// A pool plus the dialect its statements are rendered in.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    /// SQLite only: the one connection write transactions take turns on, in
    /// arrival order. SQLite has a single writer anyway; queueing writers here
    /// instead of in its busy handler (which polls and serves in no order)
    /// removes multi-second tails under write load.
    writer: Option<AnyPool>,
    backend: Backend,
}

impl Db {
    /// Connects, creating the SQLite file (and its folder) when needed.
    pub async fn connect(url: &Secret, max_connections: u32) -> DbResult<Self> {
        sqlx::any::install_default_drivers();
        let mut url = url.expose().to_owned();
        let backend = Backend::from_url(&url)?;
        if backend == Backend::Sqlite {
            url = prepare_sqlite_url(&url)?;
        }
        let options = |max: u32| {
            let options = AnyPoolOptions::new()
                .max_connections(max.max(1))
                .acquire_timeout(Duration::from_secs(10))
                // No ping per checkout (one round trip saved on every
                // transaction); a connection the server dropped fails its
                // next statement and is discarded by the pool.
                .test_before_acquire(false);
            if backend != Backend::Sqlite {
                return options;
            }
            options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL lets readers run beside the writer; the busy timeout makes
                    // writers queue instead of failing with "database is locked".
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    Ok(())
                })
            })
        };
        let pool = options(max_connections).connect(&url).await?;
        let writer = match backend {
            Backend::Sqlite => Some(options(1).connect(&url).await?),
            _ => None,
        };
        Ok(Self {
            pool,
            writer,
            backend,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Where a single write statement outside a transaction goes: on SQLite
    /// the writer connection (so it queues with the write transactions instead
    /// of racing them in SQLite's busy handler), elsewhere the pool.
    pub fn writer(&self) -> &AnyPool {
        self.writer.as_ref().unwrap_or(&self.pool)
    }

    /// Renders a query for this backend.
    pub fn build(&self, stmt: &impl SqlxBinder) -> (String, SqlxValues) {
        match self.backend {
            Backend::Sqlite => stmt.build_sqlx(SqliteQueryBuilder),
            Backend::Postgres => stmt.build_sqlx(PostgresQueryBuilder),
            Backend::MySql => stmt.build_sqlx(MysqlQueryBuilder),
        }
    }

    /// A write transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so a transaction that reads before it writes cannot
    /// fail half-way with a busy snapshot.
    pub async fn begin(&self) -> DbResult<Transaction<'static, Any>> {
        Ok(match &self.writer {
            Some(writer) => writer.begin_with("BEGIN IMMEDIATE").await?,
            None => self.pool.begin().await?,
        })
    }

    pub async fn ping(&self) -> DbResult<()> {
        self.pool.execute("SELECT 1").await?;
        Ok(())
    }

    pub async fn fetch_all<'e, T, E>(&self, exec: E, stmt: &impl SqlxBinder) -> DbResult<Vec<T>>
    where
        E: Executor<'e, Database = Any>,
        T: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
    {
        let (sql, values) = self.build(stmt);
        Ok(
            sqlx::query_as_with::<Any, T, _>(sqlx::AssertSqlSafe(sql), values)
                .fetch_all(exec)
                .await?,
        )
    }

    pub async fn fetch_optional<'e, T, E>(
        &self,
        exec: E,
        stmt: &impl SqlxBinder,
    ) -> DbResult<Option<T>>
    where
        E: Executor<'e, Database = Any>,
        T: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
    {
        let (sql, values) = self.build(stmt);
        Ok(
            sqlx::query_as_with::<Any, T, _>(sqlx::AssertSqlSafe(sql), values)
                .fetch_optional(exec)
                .await?,
        )
    }

    pub async fn fetch_one<'e, T, E>(&self, exec: E, stmt: &impl SqlxBinder) -> DbResult<T>
    where
        E: Executor<'e, Database = Any>,
        T: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
    {
        self.fetch_optional(exec, stmt)
            .await?
            .ok_or(DbError::NotFound)
    }

    /// Runs a statement; returns the rows it touched.
    pub async fn execute<'e, E>(&self, exec: E, stmt: &impl SqlxBinder) -> DbResult<u64>
    where
        E: Executor<'e, Database = Any>,
    {
        let (sql, values) = self.build(stmt);
        Ok(sqlx::query_with::<Any, _>(sqlx::AssertSqlSafe(sql), values)
            .execute(exec)
            .await?
            .rows_affected())
    }

    /// Inserts one row and returns its generated `id` (RETURNING where the
    /// backend has it, `LAST_INSERT_ID()` on MySQL, on the same connection).
    pub async fn insert_returning_id(
        &self,
        conn: &mut AnyConnection,
        mut stmt: sea_query::InsertStatement,
    ) -> DbResult<i64> {
        match self.backend {
            Backend::MySql => {
                self.execute(&mut *conn, &stmt).await?;
                let (id,): (i64,) = sqlx::query_as("SELECT CAST(LAST_INSERT_ID() AS SIGNED)")
                    .fetch_one(&mut *conn)
                    .await?;
                Ok(id)
            }
            _ => {
                stmt.returning_col(sea_query::Alias::new("id"));
                let (id,): (i64,) = self.fetch_one(&mut *conn, &stmt).await?;
                Ok(id)
            }
        }
    }

    pub async fn close(&self) {
        if let Some(writer) = &self.writer {
            writer.close().await;
        }
        self.pool.close().await;
    }
}

/// `sqlite://path` → the same with `mode=rwc`, creating the folder.
fn prepare_sqlite_url(url: &str) -> DbResult<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or_default();
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" {
        return Err(DbError::Config(
            "SQLite needs a file path (sqlite://./data/ecap.db); in-memory databases lose every write".into(),
        ));
    }
    let file = PathBuf::from_str(path).map_err(|e| DbError::Config(e.to_string()))?;
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| DbError::Config(format!("cannot create {}: {e}", dir.display())))?;
    }
    let query = if query.contains("mode=") {
        query.to_owned()
    } else if query.is_empty() {
        "mode=rwc".to_owned()
    } else {
        format!("{query}&mode=rwc")
    };
    Ok(format!("sqlite://{path}?{query}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_pick_the_backend() {
        assert_eq!(Backend::from_url("sqlite://x.db").unwrap(), Backend::Sqlite);
        assert_eq!(
            Backend::from_url("postgresql://h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(Backend::from_url("mysql://h/db").unwrap(), Backend::MySql);
        assert!(Backend::from_url("mongodb://h/db").is_err());
    }

    #[test]
    fn sqlite_urls_create_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/y.db");
        let url = prepare_sqlite_url(&format!("sqlite://{}", path.display())).unwrap();
        assert_eq!(url, format!("sqlite://{}?mode=rwc", path.display()));
        assert!(dir.path().join("nested").is_dir());
        assert!(prepare_sqlite_url("sqlite::memory:").is_err());
    }
}
