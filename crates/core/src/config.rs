//! Typed, layered configuration: built-in defaults → `ecap.toml` → environment → flags.
//!
//! Keys are the original system's environment variable names, lower-cased in
//! `ecap.toml` (`PORT` ↔ `port`). Secrets sit in [`Secret`], which never prints.

use std::{fmt, net::IpAddr, path::PathBuf, time::Duration};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};

/// A value that must never reach a log line or a response.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Log line format (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Every setting ecap reads. Field names are the environment variable names, lower-cased.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Listen port of the process (all-in-one: 8000; `--only users`: 8001 unless set).
    pub port: Option<u16>,
    /// Address to bind.
    pub host: IpAddr,
    /// Directory for the SQLite file, the generated JWT secret and media.
    pub ecap_data_dir: PathBuf,

    /// Database for every service unless a per-service URL is set.
    pub database_url: Option<Secret>,
    pub users_database_url: Option<Secret>,
    pub catalog_database_url: Option<Secret>,
    pub orders_database_url: Option<Secret>,
    pub analytics_database_url: Option<Secret>,
    /// The original user service's MySQL settings; used when no URL is set and `DB_HOST` is.
    pub db_host: Option<String>,
    pub db_port: Option<u16>,
    pub db_user: Option<String>,
    pub db_password: Option<Secret>,
    pub db_name: Option<String>,
    /// Connections per pool.
    pub db_max_connections: u32,
    /// Longest a request waits for a database connection (all busy, or the
    /// server gone) before it is answered 503.
    pub db_acquire_timeout_ms: u64,
    /// PostgreSQL/MySQL/MariaDB: longest one statement (lock waits included)
    /// runs before the server cancels it and the request gets 503; 0 = no limit.
    pub db_statement_timeout_ms: u64,

    pub jwt_secret: Option<Secret>,
    /// Token lifetime: `7d`, `12h`, `30m`, `45s` or plain seconds.
    pub jwt_expiry: String,

    /// Allowed browser origins, comma-separated; `*` allows any (without credentials).
    pub cors_origin: String,

    pub rate_limit_window_ms: u64,
    pub rate_limit_max_requests: u32,
    pub auth_rate_limit_window_ms: u64,
    pub auth_rate_limit_max_requests: u32,
    /// Peers whose `X-Forwarded-For` is believed (IPs or CIDRs, comma-separated).
    #[serde(deserialize_with = "comma_list")]
    pub trusted_proxies: Vec<IpNet>,

    pub redis_url: Option<Secret>,
    pub redis_host: Option<String>,
    pub redis_port: Option<u16>,
    pub redis_password: Option<Secret>,

    pub log_level: String,
    pub log_format: LogFormat,

    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,

    /// Allows `DELETE /api/users/all`.
    pub ecap_dangerous_operations: bool,
    /// The first admin may register through the API (`role: "admin"` with the
    /// setup token, while no admin exists). Off: only `ecap users create-admin`.
    pub ecap_admin_bootstrap: bool,
    /// The setup token the first admin's registration must carry. Unset: one is
    /// generated at start (while no admin exists) and printed in the log.
    pub ecap_setup_token: Option<Secret>,
    /// Failed logins in a row before an account is locked for `ecap_login_lockout_secs`.
    pub ecap_login_max_failures: u32,
    pub ecap_login_lockout_secs: u64,
    /// Password hashes computed at once; the rest queue (keeps a login flood off the runtime).
    pub ecap_hash_concurrency: usize,

    /// Product images go to this S3 bucket when set (else `<data dir>/media`).
    pub s3_bucket: Option<String>,
    /// S3-compatible endpoint (MinIO, s3s…); unset means AWS.
    pub s3_endpoint: Option<String>,
    pub aws_region: Option<String>,
    pub aws_access_key_id: Option<String>,
    pub aws_secret_access_key: Option<Secret>,
    /// Lifetime of presigned image URLs.
    pub s3_url_expiry_secs: u64,
    /// Largest accepted product image.
    pub ecap_max_image_bytes: usize,
    /// Product read cache lifetime; 0 turns the cache off.
    pub ecap_cache_ttl_secs: u64,
    /// Bodies kept by the in-process product cache.
    pub ecap_cache_max_entries: u64,
    /// Namespace of every key ecap writes to Redis (one per deployment).
    pub redis_key_prefix: String,
    /// A stock reservation whose order has not appeared after this long is
    /// given back by the sweeper (the placing process died in between).
    pub ecap_reservation_grace_secs: u64,
    /// How long an `Idempotency-Key` is remembered.
    pub ecap_idempotency_ttl_secs: u64,
    /// How often the orders service erases the personal data of deleted orders
    /// past their 30 days (the original's daily cron); 0 turns it off.
    pub ecap_cleanup_interval_secs: u64,
    /// IANA time zone analytics count days in when a request names none.
    pub ecap_timezone: String,

    /// Gateway (`serve --only gateway`): each service's replicas, comma-separated
    /// `http://host:port` (defaults `http://127.0.0.1:8001`…`8004`).
    /// The service credential of the split shape: every `/internal/...` call
    /// carries it in `X-Internal-Token` (required by `serve --only …`).
    pub internal_token: Option<Secret>,
    /// Where the split services reach each other (comma-separated lists for
    /// replicas; defaults `http://127.0.0.1:8001`…`8004`).
    pub user_service_url: Option<String>,
    pub product_service_url: Option<String>,
    pub order_service_url: Option<String>,
    pub analytics_service_url: Option<String>,
    /// Gateway → upstream TCP connect timeout.
    pub gateway_connect_timeout_ms: u64,
    /// Gateway → upstream: from the request sent to the response head.
    pub gateway_read_timeout_ms: u64,
    /// How often the gateway checks each replica's `/ready`.
    pub gateway_health_interval_ms: u64,
    /// How long a replica that refused a connection (or timed out three times
    /// in a row) is left out.
    pub gateway_eject_ms: u64,
    /// With Redis unreachable the shared rate limiter lets requests through
    /// (true) or refuses them with 503 (false, the default).
    pub rate_limit_fail_open: bool,
    /// Per-attempt timeout of a call between services.
    pub internal_timeout_ms: u64,
    /// How long a replica holds a background job's lease (outbox relay,
    /// sweeper) without renewing it; a dead replica's job is taken over after this.
    pub ecap_lease_secs: u64,
    /// Redis for the order event stream only, when it differs from `REDIS_URL`.
    pub events_redis_url: Option<Secret>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            port: None,
            host: IpAddr::from([0, 0, 0, 0]),
            ecap_data_dir: PathBuf::from("./data"),
            database_url: None,
            users_database_url: None,
            catalog_database_url: None,
            orders_database_url: None,
            analytics_database_url: None,
            db_host: None,
            db_port: None,
            db_user: None,
            db_password: None,
            db_name: None,
            db_max_connections: 10,
            db_acquire_timeout_ms: 5_000,
            db_statement_timeout_ms: 30_000,
            jwt_secret: None,
            jwt_expiry: "7d".into(),
            cors_origin: "http://localhost:3000".into(),
            rate_limit_window_ms: 60_000,
            rate_limit_max_requests: 1000,
            auth_rate_limit_window_ms: 60_000,
            auth_rate_limit_max_requests: 20,
            trusted_proxies: Vec::new(),
            redis_url: None,
            redis_host: None,
            redis_port: None,
            redis_password: None,
            log_level: "info".into(),
            log_format: LogFormat::Text,
            body_limit_bytes: 1024 * 1024,
            ecap_dangerous_operations: false,
            ecap_admin_bootstrap: true,
            ecap_setup_token: None,
            ecap_login_max_failures: 5,
            ecap_login_lockout_secs: 900,
            ecap_hash_concurrency: std::thread::available_parallelism()
                .map(|n| (n.get() / 2).max(1))
                .unwrap_or(1),
            s3_bucket: None,
            s3_endpoint: None,
            aws_region: None,
            aws_access_key_id: None,
            aws_secret_access_key: None,
            s3_url_expiry_secs: 3600,
            ecap_max_image_bytes: 5 * 1024 * 1024,
            ecap_cache_ttl_secs: 60,
            ecap_cache_max_entries: 10_000,
            redis_key_prefix: "ecap:".into(),
            ecap_reservation_grace_secs: 60,
            ecap_idempotency_ttl_secs: 86_400,
            ecap_cleanup_interval_secs: 3_600,
            ecap_timezone: "UTC".into(),
            internal_token: None,
            user_service_url: None,
            product_service_url: None,
            order_service_url: None,
            analytics_service_url: None,
            gateway_connect_timeout_ms: 2_000,
            gateway_read_timeout_ms: 30_000,
            gateway_health_interval_ms: 2_000,
            gateway_eject_ms: 10_000,
            rate_limit_fail_open: false,
            internal_timeout_ms: 5000,
            ecap_lease_secs: 5,
            events_redis_url: None,
        }
    }
}

/// Every key [`Config`] takes from the environment.
pub const ENV_KEYS: &[&str] = &[
    "PORT",
    "HOST",
    "ECAP_DATA_DIR",
    "DATABASE_URL",
    "USERS_DATABASE_URL",
    "CATALOG_DATABASE_URL",
    "ORDERS_DATABASE_URL",
    "ANALYTICS_DATABASE_URL",
    "DB_HOST",
    "DB_PORT",
    "DB_USER",
    "DB_PASSWORD",
    "DB_NAME",
    "DB_MAX_CONNECTIONS",
    "DB_ACQUIRE_TIMEOUT_MS",
    "DB_STATEMENT_TIMEOUT_MS",
    "JWT_SECRET",
    "JWT_EXPIRY",
    "CORS_ORIGIN",
    "RATE_LIMIT_WINDOW_MS",
    "RATE_LIMIT_MAX_REQUESTS",
    "AUTH_RATE_LIMIT_WINDOW_MS",
    "AUTH_RATE_LIMIT_MAX_REQUESTS",
    "TRUSTED_PROXIES",
    "REDIS_URL",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_PASSWORD",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "BODY_LIMIT_BYTES",
    "ECAP_DANGEROUS_OPERATIONS",
    "ECAP_ADMIN_BOOTSTRAP",
    "ECAP_SETUP_TOKEN",
    "ECAP_LOGIN_MAX_FAILURES",
    "ECAP_LOGIN_LOCKOUT_SECS",
    "ECAP_HASH_CONCURRENCY",
    "S3_BUCKET",
    "S3_ENDPOINT",
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "S3_URL_EXPIRY_SECS",
    "ECAP_MAX_IMAGE_BYTES",
    "ECAP_CACHE_TTL_SECS",
    "ECAP_CACHE_MAX_ENTRIES",
    "REDIS_KEY_PREFIX",
    "ECAP_RESERVATION_GRACE_SECS",
    "ECAP_IDEMPOTENCY_TTL_SECS",
    "ECAP_CLEANUP_INTERVAL_SECS",
    "ECAP_TIMEZONE",
    "INTERNAL_TOKEN",
    "USER_SERVICE_URL",
    "PRODUCT_SERVICE_URL",
    "ORDER_SERVICE_URL",
    "ANALYTICS_SERVICE_URL",
    "GATEWAY_CONNECT_TIMEOUT_MS",
    "GATEWAY_READ_TIMEOUT_MS",
    "GATEWAY_HEALTH_INTERVAL_MS",
    "GATEWAY_EJECT_MS",
    "RATE_LIMIT_FAIL_OPEN",
    "INTERNAL_TIMEOUT_MS",
    "ECAP_LEASE_SECS",
    "EVENTS_REDIS_URL",
];

fn comma_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    let items = match Raw::deserialize(d)? {
        Raw::One(s) => s.split(',').map(str::to_owned).collect(),
        Raw::Many(v) => v,
    };
    items
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| serde::de::Error::custom(format!("not an IP or CIDR: {s}")))
        })
        .collect()
}

/// Which process shape is being configured; decides defaults that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    AllInOne,
    Users,
    Catalog,
    /// The reverse proxy in front of the services.
    Gateway,
    Orders,
    Analytics,
}

impl Shape {
    /// The service's name in logs, `/health` and the contract.
    pub fn service_name(self) -> &'static str {
        match self {
            Shape::AllInOne => "ecap",
            Shape::Users => "user-service",
            Shape::Catalog => "product-service",
            Shape::Gateway => "api-gateway",
            Shape::Orders => "order-service",
            Shape::Analytics => "analytics-service",
        }
    }
}

impl Config {
    /// Defaults → `ecap.toml` (or the given file) → `.env` + environment.
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        // A missing .env is normal; a broken one is worth saying.
        if let Err(e) = dotenvy::dotenv()
            && !e.not_found()
        {
            return Err(ConfigError(format!(".env: {e}")));
        }
        let path = file.map_or_else(|| PathBuf::from("ecap.toml"), PathBuf::from);
        if file.is_some() && !path.exists() {
            return Err(ConfigError(format!(
                "config file {} not found",
                path.display()
            )));
        }
        Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(path))
            .merge(Env::raw().only(ENV_KEYS).lowercase(true))
            .extract()
            .map_err(|e| ConfigError(e.to_string()))
    }

    pub fn port_for(&self, shape: Shape) -> u16 {
        self.port.unwrap_or(match shape {
            Shape::AllInOne => 8000,
            Shape::Users => 8001,
            Shape::Catalog => 8002,
            Shape::Gateway => 8000,
            Shape::Orders => 8003,
            Shape::Analytics => 8004,
        })
    }

    /// The users service's database: its own URL, then `DATABASE_URL`, then the
    /// original's `DB_*` (MySQL), then SQLite under the data directory.
    pub fn users_database(&self) -> Secret {
        match &self.users_database_url {
            Some(url) => url.clone(),
            None => Secret::new(self.shared_database_url()),
        }
    }

    /// `DATABASE_URL`, then the original's `DB_*` (MySQL), then SQLite.
    fn shared_database_url(&self) -> String {
        if let Some(url) = &self.database_url {
            return url.expose().to_owned();
        }
        if let Some(host) = &self.db_host {
            let user = self.db_user.as_deref().unwrap_or("root");
            let auth = match &self.db_password {
                Some(p) if !p.is_empty() => format!("{user}:{}", p.expose()),
                _ => user.to_owned(),
            };
            return format!(
                "mysql://{auth}@{host}:{}/{}",
                self.db_port.unwrap_or(3306),
                self.db_name.as_deref().unwrap_or("users_db")
            );
        }
        format!("sqlite://{}", self.ecap_data_dir.join("ecap.db").display())
    }

    /// The catalog's database: its own URL, else the one every service shares
    /// (`DATABASE_URL`, the original's `DB_*`, SQLite under the data directory).
    pub fn catalog_database(&self) -> Secret {
        match &self.catalog_database_url {
            Some(url) => url.clone(),
            None => Secret::new(self.shared_database_url()),
        }
    }

    /// The orders service's database: its own URL, else the shared one.
    /// The analytics database: its own URL, else the orders database (so the
    /// all-in-one default keeps everything in one SQLite file).
    pub fn analytics_database(&self) -> Secret {
        match &self.analytics_database_url {
            Some(url) => url.clone(),
            None => self.orders_database(),
        }
    }

    pub fn orders_database(&self) -> Secret {
        match &self.orders_database_url {
            Some(url) => url.clone(),
            None => Secret::new(self.shared_database_url()),
        }
    }

    /// `REDIS_URL`, or one built from the original's `REDIS_HOST`/`REDIS_PORT`/`REDIS_PASSWORD`.
    pub fn redis(&self) -> Option<Secret> {
        if let Some(url) = &self.redis_url {
            return Some(url.clone());
        }
        let host = self.redis_host.as_ref()?;
        let auth = match &self.redis_password {
            Some(p) if !p.is_empty() => format!(":{}@", p.expose()),
            _ => String::new(),
        };
        Some(Secret::new(format!(
            "redis://{auth}{host}:{}",
            self.redis_port.unwrap_or(6379)
        )))
    }

    /// The base URLs of one service for the split shape's internal calls:
    /// the configured comma-separated list, else `default`.
    pub fn service_urls(list: Option<&str>, default: &str) -> Vec<String> {
        let urls: Vec<String> = list
            .unwrap_or_default()
            .split(',')
            .map(|u| u.trim().trim_end_matches('/').to_owned())
            .filter(|u| !u.is_empty())
            .collect();
        if urls.is_empty() {
            vec![default.to_owned()]
        } else {
            urls
        }
    }

    /// Where the order event stream lives: `EVENTS_REDIS_URL`, else [`Config::redis`].
    pub fn events_redis(&self) -> Option<Secret> {
        self.events_redis_url
            .clone()
            .filter(|u| !u.is_empty())
            .or_else(|| self.redis())
    }

    /// The database pools' size and timeouts.
    pub fn pool_settings(&self) -> crate::db::PoolSettings {
        crate::db::PoolSettings {
            max_connections: self.db_max_connections,
            acquire_timeout: Duration::from_millis(self.db_acquire_timeout_ms),
            statement_timeout: (self.db_statement_timeout_ms > 0)
                .then(|| Duration::from_millis(self.db_statement_timeout_ms)),
        }
    }

    pub fn jwt_lifetime(&self) -> Result<Duration, ConfigError> {
        parse_duration(&self.jwt_expiry)
            .ok_or_else(|| ConfigError(format!("JWT_EXPIRY: cannot read {:?}", self.jwt_expiry)))
    }

    /// Checks that need more than types.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.jwt_lifetime()?;
        if self.rate_limit_window_ms == 0 || self.auth_rate_limit_window_ms == 0 {
            return Err(ConfigError("rate limit windows must be above 0 ms".into()));
        }
        if self.rate_limit_max_requests == 0 || self.auth_rate_limit_max_requests == 0 {
            return Err(ConfigError("rate limit budgets must be above 0".into()));
        }
        if self.ecap_max_image_bytes < 1024 {
            return Err(ConfigError(
                "ECAP_MAX_IMAGE_BYTES must be at least 1024".into(),
            ));
        }
        if self.s3_url_expiry_secs == 0 || self.s3_url_expiry_secs > 7 * 86_400 {
            return Err(ConfigError(
                "S3_URL_EXPIRY_SECS must be between 1 and 604800 (7 days, the S3 maximum)".into(),
            ));
        }
        if self.s3_bucket.is_some()
            && self.ecap_cache_ttl_secs > 0
            && self.s3_url_expiry_secs < self.ecap_cache_ttl_secs.saturating_mul(2)
        {
            return Err(ConfigError(
                "S3_URL_EXPIRY_SECS must be at least twice ECAP_CACHE_TTL_SECS: cached product \
                 pages carry presigned image URLs"
                    .into(),
            ));
        }
        if self.gateway_connect_timeout_ms == 0
            || self.gateway_read_timeout_ms == 0
            || self.gateway_health_interval_ms == 0
        {
            return Err(ConfigError(
                "GATEWAY_CONNECT_TIMEOUT_MS, GATEWAY_READ_TIMEOUT_MS and \
                 GATEWAY_HEALTH_INTERVAL_MS must be above 0"
                    .into(),
            ));
        }
        if self.body_limit_bytes < 1024 {
            return Err(ConfigError("BODY_LIMIT_BYTES must be at least 1024".into()));
        }
        if let Some(token) = self.ecap_setup_token.as_ref().filter(|t| !t.is_empty()) {
            if !self.ecap_admin_bootstrap {
                return Err(ConfigError(
                    "ECAP_SETUP_TOKEN is set but ECAP_ADMIN_BOOTSTRAP=false closes admin \
                     registration: unset one of them"
                        .into(),
                ));
            }
            if token.expose().chars().count() < 16 {
                return Err(ConfigError(
                    "ECAP_SETUP_TOKEN must be at least 16 characters".into(),
                ));
            }
        }
        if let Some(t) = &self.internal_token
            && !t.is_empty()
            && t.expose().len() < 16
        {
            return Err(ConfigError(
                "INTERNAL_TOKEN must be at least 16 characters".into(),
            ));
        }
        if self.db_acquire_timeout_ms == 0 {
            return Err(ConfigError("DB_ACQUIRE_TIMEOUT_MS must be above 0".into()));
        }
        if self.internal_timeout_ms == 0 || self.ecap_lease_secs == 0 {
            return Err(ConfigError(
                "INTERNAL_TIMEOUT_MS and ECAP_LEASE_SECS must be above 0".into(),
            ));
        }
        for (name, list) in [
            ("USER_SERVICE_URL", &self.user_service_url),
            ("PRODUCT_SERVICE_URL", &self.product_service_url),
            ("ORDER_SERVICE_URL", &self.order_service_url),
            ("ANALYTICS_SERVICE_URL", &self.analytics_service_url),
        ] {
            for url in Self::service_urls(list.as_deref(), "http://127.0.0.1") {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(ConfigError(format!(
                        "{name}: {url:?} is not an http:// or https:// URL"
                    )));
                }
            }
        }
        if let Some(s) = &self.jwt_secret
            && s.expose().len() < 16
        {
            return Err(ConfigError(
                "JWT_SECRET must be at least 16 characters".into(),
            ));
        }
        Ok(())
    }
}

/// `7d`, `12h`, `30m`, `45s`, `500ms` or a plain number of seconds (jsonwebtoken/`ms` style).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let n: u64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => return Some(Duration::from_millis(n)),
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        "w" => n.checked_mul(604_800)?,
        _ => return None,
    };
    (secs > 0).then(|| Duration::from_secs(secs))
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// A key in this deployment's Redis namespace: `REDIS_KEY_PREFIX` (default
/// `ecap:`) followed by `rest`. Every key ecap writes to Redis goes through here.
pub fn redis_key(prefix: &str, rest: &str) -> String {
    let mut key = String::with_capacity(prefix.len() + rest.len());
    key.push_str(prefix);
    key.push_str(rest);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_jsonwebtoken() {
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("3600"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("0"), None);
        assert_eq!(parse_duration("7 days"), None);
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2-hunter2-hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        let cfg = Config {
            jwt_secret: Some(s),
            ..Config::default()
        };
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }

    #[test]
    fn database_passwords_do_not_print() {
        let cfg = Config {
            database_url: Some(Secret::new("postgres://u:hunter2@h/db")),
            ..Config::default()
        };
        assert!(!format!("{cfg:?}").contains("hunter2"));
        assert_eq!(cfg.users_database().expose(), "postgres://u:hunter2@h/db");
    }

    #[test]
    fn original_db_variables_build_a_mysql_url() {
        let cfg = Config {
            db_host: Some("mysql".into()),
            db_user: Some("root".into()),
            db_password: Some(Secret::new("pw")),
            db_name: Some("users_db".into()),
            ..Config::default()
        };
        assert_eq!(
            cfg.users_database().expose(),
            "mysql://root:pw@mysql:3306/users_db"
        );
    }

    #[test]
    fn trusted_proxies_parse_from_a_comma_list() {
        let fig = Figment::from(Serialized::defaults(Config::default()))
            .merge(("trusted_proxies", "10.0.0.0/8, 127.0.0.1"));
        let cfg: Config = fig.extract().unwrap();
        assert_eq!(cfg.trusted_proxies.len(), 2);
    }
}
