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
    #[error("{}", describe(.0))]
    Sqlx(#[from] sqlx::Error),
}

/// What a failed statement means for the request that ran it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The server did not answer in time (gone, restarting, refusing,
    /// a statement or lock wait past its timeout, the pool exhausted): 503, try again.
    Unavailable,
    /// The disk under the database is full: 507 until space returns.
    StorageFull,
    /// Anything else: a bug or a rule the database enforced.
    Other,
}

/// Classifies an sqlx error by what it means for the request.
pub fn fault_of(e: &sqlx::Error) -> Fault {
    use sqlx::Error as E;
    match e {
        E::Io(io) if io.raw_os_error() == Some(ENOSPC) => Fault::StorageFull,
        E::Io(_)
        | E::Tls(_)
        | E::Protocol(_)
        | E::PoolTimedOut
        | E::PoolClosed
        | E::WorkerCrashed => Fault::Unavailable,
        E::Database(d) => {
            let code = d.code();
            let code = code.as_deref().unwrap_or_default();
            let message = d.message();
            // SQLite reports its (extended) result code; the primary code is the low byte.
            let sqlite = code.parse::<i32>().ok().map(|c| c & 0xff);
            if code == "53100"
                || sqlite == Some(13)
                || message.contains("disk is full")
                || message.contains("No space left")
            {
                Fault::StorageFull
            } else if code.starts_with("08")
                || matches!(
                    code,
                    "57014" | "55P03" | "57P01" | "57P02" | "57P03" | "53300" | "70100"
                )
                || matches!(sqlite, Some(5 | 6))
                || message.contains("Lock wait timeout exceeded")
                || message.contains("max_statement_time exceeded")
                || message.contains("maximum statement execution time exceeded")
            {
                Fault::Unavailable
            } else {
                Fault::Other
            }
        }
        _ => Fault::Other,
    }
}

const ENOSPC: i32 = 28;

/// The error's text, led by the marker `ApiError::internal` turns into a 503
/// or 507 when the database is unavailable or full. The client sees only
/// what follows the marker; the whole text goes to the log.
fn describe(e: &sqlx::Error) -> String {
    match fault_of(e) {
        Fault::Unavailable => format!(
            "database: {e}; {}the database (not answering in time)",
            crate::ports::UNAVAILABLE
        ),
        Fault::StorageFull => format!(
            "database: {e}; {}the database's disk is full",
            crate::error::STORAGE_FULL
        ),
        Fault::Other => format!("database: {e}"),
    }
}

impl DbError {
    /// What this error means for the request (see [`Fault`]).
    pub fn fault(&self) -> Fault {
        match self {
            Self::Sqlx(e) => fault_of(e),
            _ => Fault::Other,
        }
    }

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

/// How a pool waits: the limits that keep a slow or missing database from
/// holding requests (and their memory) for long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// Longest a request waits for a connection (every one busy, or the server
    /// not accepting new ones) before it is answered 503 (`DB_ACQUIRE_TIMEOUT_MS`).
    pub acquire_timeout: Duration,
    /// PostgreSQL and MySQL/MariaDB: longest one statement may run, lock waits
    /// included, before the server cancels it (`DB_STATEMENT_TIMEOUT_MS`;
    /// `None` keeps the server's own). SQLite waits for its lock at most
    /// `acquire_timeout` plus its busy timeout.
    pub statement_timeout: Option<Duration>,
}

impl PoolSettings {
    /// `max_connections` with the default timeouts.
    pub fn new(max_connections: u32) -> Self {
        Self {
            max_connections,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Some(Duration::from_secs(30)),
        }
    }
}

impl Db {
    /// Connects with the default timeouts (see [`PoolSettings::new`]).
    pub async fn connect(url: &Secret, max_connections: u32) -> DbResult<Self> {
        Self::connect_with(url, PoolSettings::new(max_connections)).await
    }

    /// Connects, creating the SQLite file (and its folder) when needed.
    pub async fn connect_with(url: &Secret, settings: PoolSettings) -> DbResult<Self> {
        sqlx::any::install_default_drivers();
        let mut url = url.expose().to_owned();
        let backend = Backend::from_url(&url)?;
        if backend == Backend::Sqlite {
            url = prepare_sqlite_url(&url)?;
        }
        let statement_ms = settings
            .statement_timeout
            .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1));
        let options = |max: u32| {
            let options = AnyPoolOptions::new()
                .max_connections(max.max(1))
                .acquire_timeout(settings.acquire_timeout)
                // No ping per checkout (one round trip saved on every
                // transaction); a connection the server dropped fails its
                // next statement and is discarded by the pool.
                .test_before_acquire(false)
                .before_acquire(|conn, _meta| Box::pin(settled(conn)));
            match backend {
                Backend::Sqlite => options.after_connect(|conn, _meta| {
                    Box::pin(async move {
                        // WAL lets readers run beside the writer; the busy timeout makes
                        // writers queue instead of failing with "database is locked".
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        Ok(())
                    })
                }),
                _ => options.after_connect(move |conn, _meta| {
                    Box::pin(async move {
                        if let Some(ms) = statement_ms {
                            statement_timeout(conn, backend, ms).await?;
                        }
                        Ok(())
                    })
                }),
            }
        };
        let pool = options(settings.max_connections).connect(&url).await?;
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

/// Whether a connection coming out of the pool is outside any transaction.
/// A transaction dropped without commit is rolled back on the connection's
/// next use, so one that still counts as open is asked a round trip first; if
/// it is open after that, its rollback failed (SQLite after a COMMIT refused
/// for a full disk: SQLite had already rolled back, and sqlx's ROLLBACK then
/// fails and leaves it counting one transaction for good). Such a connection
/// would refuse every `BEGIN` from then on: the pool closes it and opens
/// another. Costs nothing on the usual path.
async fn settled(conn: &mut AnyConnection) -> Result<bool, sqlx::Error> {
    use sqlx::Connection;
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    conn.ping().await?;
    if conn.is_in_transaction() {
        tracing::warn!("a database connection stuck in a failed transaction was replaced");
        return Ok(false);
    }
    Ok(true)
}

/// Bounds every statement of a new connection: PostgreSQL's
/// `statement_timeout` (lock waits included); on MariaDB `max_statement_time`,
/// on MySQL `max_execution_time` (reads only), and on both the InnoDB row-lock
/// wait (whole seconds, at least one).
async fn statement_timeout(
    conn: &mut AnyConnection,
    backend: Backend,
    ms: u64,
) -> Result<(), sqlx::Error> {
    match backend {
        Backend::Postgres => {
            conn.execute(sqlx::AssertSqlSafe(format!("SET statement_timeout = {ms}")))
                .await?;
        }
        Backend::MySql => {
            let (version,): (String,) = sqlx::query_as("SELECT CAST(VERSION() AS CHAR)")
                .fetch_one(&mut *conn)
                .await?;
            let set = if version.contains("MariaDB") {
                format!("SET SESSION max_statement_time = {}", ms as f64 / 1000.0)
            } else {
                format!("SET SESSION max_execution_time = {ms}")
            };
            conn.execute(sqlx::AssertSqlSafe(set)).await?;
            conn.execute(sqlx::AssertSqlSafe(format!(
                "SET SESSION innodb_lock_wait_timeout = {}",
                ms.div_ceil(1000).max(1)
            )))
            .await?;
        }
        Backend::Sqlite => {}
    }
    Ok(())
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
    fn faults_are_classified_by_what_they_mean_for_a_request() {
        let io = |code| sqlx::Error::Io(std::io::Error::from_raw_os_error(code));
        assert_eq!(fault_of(&sqlx::Error::PoolTimedOut), Fault::Unavailable);
        assert_eq!(fault_of(&io(104)), Fault::Unavailable); // ECONNRESET
        assert_eq!(fault_of(&io(ENOSPC)), Fault::StorageFull);
        assert_eq!(fault_of(&sqlx::Error::RowNotFound), Fault::Other);
        let gone = DbError::from(sqlx::Error::PoolTimedOut).to_string();
        assert!(gone.contains(crate::ports::UNAVAILABLE), "{gone}");
        let full = DbError::from(io(ENOSPC)).to_string();
        assert!(full.contains(crate::error::STORAGE_FULL), "{full}");
        let api = crate::error::ApiError::from(DbError::from(io(ENOSPC)));
        assert_eq!(api.status.as_u16(), 507);
        assert_eq!(api.retry_after_secs, Some(30));
        let api = crate::error::ApiError::from(DbError::from(sqlx::Error::PoolTimedOut));
        assert_eq!(api.status.as_u16(), 503);
        assert!(
            !api.message.contains("pool"),
            "no driver text reaches a client: {}",
            api.message
        );
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
