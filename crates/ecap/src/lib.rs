//! Assembles ecap's processes from the service crates: the all-in-one platform
//! and the split-shape services. `main.rs` parses the command line and calls in.

pub mod internal;
pub mod remote;
pub mod seed;
pub mod web;

use std::{path::Path, sync::Arc, time::Instant};

use anyhow::{Context, bail};
use axum::{Json, Router, middleware, routing::get};
use ecap_analytics::{AnalyticsConsumer, AnalyticsSettings, AnalyticsState, AnalyticsStore};
use ecap_catalog::{
    CatalogInventory, CatalogSettings, CatalogState, CatalogStore, MediaStore, ResponseCache,
    http::{CatalogDirectory, CatalogReviews},
    media::S3Settings,
};
use ecap_core::{
    auth::{AuthState, JwtKeys, Role},
    config::{Config, Secret, Shape},
    db::Db,
    events::{EventBus, InProcessBus, OrderSource},
    http::{Dependency, HttpOptions, HttpService, Probe, foundation, probe_routes},
    lease::{Lease, LeaseHandle},
    ports::{
        AddressBook, CustomerOrders, Inventory, NoAddresses, NoOrders, NoProductDirectory,
        NoPurchases, ProductDirectory, ProductReviews, PurchaseCheck,
    },
    revocation::{MemoryRevocations, RedisRevocations, Revocations},
    streams::{ConsumerSettings, StreamBus, StreamConsumer},
};
use ecap_gateway::{
    FailPolicy, FailPolicyLimiter, Gateway, GatewaySettings, GcraLimiter, Limits, RateLimiter,
    RedisGcraLimiter, Service,
};
use ecap_orders::{
    OrderStore, OrdersCustomers, OrdersPurchases, OrdersSettings, OrdersState,
    snapshot::OrdersSnapshot,
};
use ecap_users::{UserStore, UsersAddressBook, UsersSettings, UsersState};
use serde_json::json;
use utoipa::openapi::{
    OpenApi,
    security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_swagger_ui::SwaggerUi;

/// A process ready to serve, with what tests and the CLI need to reach inside.
pub struct Platform {
    pub router: HttpService,
    /// Every database pool the process holds (closed on shutdown).
    pub databases: Vec<Db>,
    /// The catalog's reservation port, when the process runs the catalog.
    pub inventory: Option<Arc<dyn Inventory>>,
    /// The orders store, when the process runs the orders service.
    pub orders: Option<OrderStore>,
    /// The analytics aggregates, when the process runs analytics.
    pub analytics: Option<AnalyticsStore>,
    /// Where the outbox relay delivers order events in this process.
    pub bus: Arc<InProcessBus>,
    /// The relay and the sweeper; stopped by [`Platform::close`].
    pub background: Vec<tokio::task::JoinHandle<()>>,
    /// Leases of background jobs this process may hold; given up on close.
    pub leases: Vec<Lease>,
    pub openapi: OpenApi,
}

impl Platform {
    pub async fn close(&self) {
        for task in &self.background {
            task.abort();
        }
        for lease in &self.leases {
            if let Err(e) = lease.release().await {
                tracing::warn!(lease = lease.name(), error = %e, "could not give the lease up");
            }
        }
        for db in &self.databases {
            db.close().await;
        }
    }
}

/// The JWT secret: configured, or (all-in-one only) generated once and kept in
/// the data directory so tokens survive restarts.
pub fn jwt_secret(config: &Config, shape: Shape) -> anyhow::Result<Secret> {
    if let Some(s) = config.jwt_secret.as_ref().filter(|s| !s.is_empty()) {
        return Ok(s.clone());
    }
    if shape != Shape::AllInOne {
        bail!(
            "JWT_SECRET must be set when services run apart (every service verifies tokens with it)"
        );
    }
    let path = config.ecap_data_dir.join("jwt_secret");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let text = text.trim();
        if text.len() >= 32 {
            return Ok(Secret::new(text));
        }
        bail!(
            "{} is shorter than 32 characters; delete it to have a new one generated",
            path.display()
        );
    }
    std::fs::create_dir_all(&config.ecap_data_dir)
        .with_context(|| format!("creating {}", config.ecap_data_dir.display()))?;
    let bytes: [u8; 32] = rand::random();
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&path, &secret)?;
    tracing::warn!(
        path = %path.display(),
        "no JWT_SECRET configured: generated one and stored it (set JWT_SECRET in production)"
    );
    Ok(Secret::new(secret))
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::{io::Write, os::unix::fs::OpenOptionsExt};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("writing {}", path.display()))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }
}

/// Connects to the catalog database and applies its migrations; reuses `shared`
/// when it points at the same database (all-in-one on one SQLite file).
pub async fn catalog_database(
    config: &Config,
    shared: Option<&(Secret, Db)>,
) -> anyhow::Result<Db> {
    service_database(
        config,
        config.catalog_database(),
        shared.map_or(&[][..], std::slice::from_ref),
        "catalog",
        ecap_catalog::migrations::MIGRATIONS,
    )
    .await
}

/// A service's database: the pool already open on the same URL, else a new
/// one; then the service's migrations.
async fn service_database(
    config: &Config,
    url: Secret,
    opened: &[(Secret, Db)],
    service: &'static str,
    migrations: &[ecap_core::migrate::Migration],
) -> anyhow::Result<Db> {
    let db = match opened.iter().find(|(u, _)| u == &url) {
        Some((_, db)) => db.clone(),
        None => Db::connect_with(&url, config.pool_settings())
            .await
            .with_context(|| format!("connecting to the {service} database"))?,
    };
    let ran = ecap_core::migrate::run(&db, service, migrations)
        .await
        .with_context(|| format!("migrating the {service} database"))?;
    tracing::info!(
        backend = db.backend().name(),
        migrations_applied = ran,
        "{service} database ready"
    );
    Ok(db)
}

/// Connects to the orders database (reusing an open pool on the same URL)
/// and applies its migrations.
pub async fn orders_database(config: &Config, opened: &[(Secret, Db)]) -> anyhow::Result<Db> {
    service_database(
        config,
        config.orders_database(),
        opened,
        "orders",
        ecap_orders::migrations::MIGRATIONS,
    )
    .await
}

/// Connects to the analytics database (reusing an open pool on the same URL)
/// and applies its migrations.
pub async fn analytics_database(config: &Config, opened: &[(Secret, Db)]) -> anyhow::Result<Db> {
    service_database(
        config,
        config.analytics_database(),
        opened,
        "analytics",
        ecap_analytics::migrations::MIGRATIONS,
    )
    .await
}

/// Opens the analytics store; on a database where the aggregates were never
/// built (new, or orders from before analytics existed) builds them from the
/// orders first.
pub async fn analytics_store(db: Db, orders: &dyn OrderSource) -> anyhow::Result<AnalyticsStore> {
    let store = AnalyticsStore::open(db)
        .await
        .context("loading the analytics aggregates")?;
    if !store.is_built().await? {
        let started = Instant::now();
        let n = store
            .rebuild(orders, &|_, _| {})
            .await
            .context("building the analytics aggregates from the orders")?;
        tracing::info!(
            orders = n,
            took_ms = started.elapsed().as_millis() as u64,
            "analytics aggregates built from the orders"
        );
    }
    Ok(store)
}

/// Where product images live: S3 when `S3_BUCKET` is set, else `<data dir>/media`.
pub fn media_store(config: &Config) -> anyhow::Result<MediaStore> {
    match &config.s3_bucket {
        Some(bucket) if !bucket.is_empty() => Ok(MediaStore::s3(&S3Settings {
            bucket: bucket.clone(),
            region: config.aws_region.clone(),
            endpoint: config.s3_endpoint.clone(),
            access_key_id: config.aws_access_key_id.clone(),
            secret_access_key: config.aws_secret_access_key.clone(),
            allow_http: config
                .s3_endpoint
                .as_deref()
                .is_some_and(|e| e.starts_with("http://")),
            url_expiry: std::time::Duration::from_secs(config.s3_url_expiry_secs),
        })
        .context("configuring S3 for product images")?),
        _ => Ok(MediaStore::local(&config.ecap_data_dir.join("media"))
            .context("preparing the media directory")?),
    }
}

/// The product read cache: off (TTL 0), Redis when configured, else in-process.
pub async fn response_cache(config: &Config) -> anyhow::Result<ResponseCache> {
    if config.ecap_cache_ttl_secs == 0 {
        return Ok(ResponseCache::off());
    }
    let ttl = std::time::Duration::from_secs(config.ecap_cache_ttl_secs);
    Ok(match config.redis() {
        Some(url) => ResponseCache::redis(&url, &config.redis_key_prefix, ttl)
            .await
            .context("connecting to Redis for the product cache")?,
        None => ResponseCache::local(ttl, config.ecap_cache_max_entries),
    })
}

/// Connects to the users database and applies its migrations.
pub async fn users_database(config: &Config) -> anyhow::Result<Db> {
    let url = config.users_database();
    let db = Db::connect_with(&url, config.pool_settings())
        .await
        .context("connecting to the users database")?;
    let ran = ecap_users::migrate(&db)
        .await
        .context("migrating the users database")?;
    tracing::info!(
        backend = db.backend().name(),
        migrations_applied = ran,
        "users database ready"
    );
    Ok(db)
}

/// Where logouts, role changes and deleted users are recorded. All-in-one keeps
/// them in the process (the users service reloads them from its database);
/// a service of the split shape must see the users service's revocations, so
/// it needs Redis and refuses to start without it (issue 16 #2).
async fn revocations(config: &Config, shape: Shape) -> anyhow::Result<Arc<dyn Revocations>> {
    Ok(match config.redis() {
        Some(url) => Arc::new(
            RedisRevocations::connect(&url, &config.redis_key_prefix)
                .await
                .context("connecting to Redis for token revocations")?,
        ),
        None if shape == Shape::AllInOne => Arc::new(MemoryRevocations::new()),
        None => anyhow::bail!(
            "a service started with --only needs a revocation source shared with the users \
             service: set REDIS_URL (or REDIS_HOST), or logouts, role changes and deleted \
             users would not reach this process"
        ),
    })
}

/// Demo accounts `serve --demo` creates on an empty database (for local trials only).
pub const DEMO_ACCOUNTS: [(&str, &str, &str, Role); 3] = [
    (
        "Demo Admin",
        "admin@demo.ecap.local",
        "Admin123!",
        Role::Admin,
    ),
    (
        "Demo Merchant",
        "merchant@demo.ecap.local",
        "Merchant123!",
        Role::Merchant,
    ),
    (
        "Demo Customer",
        "customer@demo.ecap.local",
        "Customer123!",
        Role::Customer,
    ),
];

/// Creates the demo accounts when the users table is empty; returns how many.
pub async fn seed_demo(db: &Db) -> anyhow::Result<usize> {
    let store = UserStore::new(db.clone());
    let (_, total) = store
        .list(&ecap_users::store::UserListQuery {
            page: 1,
            limit: 1,
            role: None,
            search: None,
            sort: ecap_users::store::UserSort::CreatedAt,
            descending: true,
        })
        .await?;
    if total > 0 {
        return Ok(0);
    }
    let hasher = ecap_users::password::Hasher::new(1)?;
    for (name, email, password, role) in DEMO_ACCOUNTS {
        store
            .create(
                ecap_users::store::NewUser {
                    email: email.into(),
                    password_hash: hasher.hash(password).await?,
                    name: name.into(),
                    phone: None,
                    role,
                },
                false,
            )
            .await?;
        tracing::warn!(
            email,
            role = role.as_str(),
            "demo account created (password in README)"
        );
    }
    Ok(DEMO_ACCOUNTS.len())
}

/// The service credential, required when services run apart.
fn internal_token(config: &Config) -> anyhow::Result<Secret> {
    match config.internal_token.as_ref().filter(|t| !t.is_empty()) {
        Some(t) => Ok(t.clone()),
        None => bail!(
            "INTERNAL_TOKEN must be set when services run apart (at least 16 characters, the \
             same for every service: it authenticates their /internal calls)"
        ),
    }
}

/// `REDIS_URL`, required by the split orders and analytics services (the event bus).
fn events_redis(config: &Config, service: &str) -> anyhow::Result<Secret> {
    match config.events_redis() {
        Some(url) => Ok(url),
        None => bail!(
            "REDIS_URL must be set for --only {service}: order events travel on Redis Streams \
             between the orders and analytics services"
        ),
    }
}

/// The other services of the split shape.
#[derive(Clone, Copy)]
enum Peer {
    Users,
    Catalog,
    Orders,
}

/// Clients of the other services (split shape), and what the process
/// depends on (for the start-up line and `/ready`).
struct Remotes {
    token: Secret,
    timeout: std::time::Duration,
}

/// What a process depends on besides its databases.
#[derive(Default)]
struct Needs {
    /// For the start-up line.
    text: Vec<String>,
    /// For `/ready`.
    checks: Vec<(&'static str, Arc<dyn Dependency>)>,
}

impl Remotes {
    /// A client of `peer`'s replicas, recorded as a dependency.
    fn reach(
        &self,
        c: &Config,
        peer: Peer,
        needs: &mut Needs,
    ) -> anyhow::Result<Arc<remote::ServiceClient>> {
        let (name, key, list, default) = match peer {
            Peer::Users => (
                "users service",
                "users",
                c.user_service_url.as_deref(),
                "http://127.0.0.1:8001",
            ),
            Peer::Catalog => (
                "catalog service",
                "catalog",
                c.product_service_url.as_deref(),
                "http://127.0.0.1:8002",
            ),
            Peer::Orders => (
                "orders service",
                "orders",
                c.order_service_url.as_deref(),
                "http://127.0.0.1:8003",
            ),
        };
        let urls = Config::service_urls(list, default);
        let client =
            remote::ServiceClient::new(name, urls.clone(), self.token.clone(), self.timeout)?;
        if !needs.checks.iter().any(|(name, _)| *name == key) {
            needs.text.push(format!("{key} {}", urls.join(",")));
            needs.checks.push(service_dependency(&client, key));
        }
        Ok(client)
    }
}

fn service_dependency(
    client: &Arc<remote::ServiceClient>,
    key: &'static str,
) -> (&'static str, Arc<dyn Dependency>) {
    (key, Arc::new(PeerCheck(client.clone())))
}

/// Another service answers `/health` (not required: the process serves
/// what does not need it, and answers 503 JSON for what does).
struct PeerCheck(Arc<remote::ServiceClient>);

#[async_trait::async_trait]
impl Dependency for PeerCheck {
    async fn is_up(&self) -> bool {
        self.0.healthy().await
    }
    fn required(&self) -> bool {
        false
    }
}

/// Redis answers for the event stream (not required: events wait in the
/// outbox, or in the stream, until it returns).
struct StreamCheck(StreamBus);

#[async_trait::async_trait]
impl Dependency for StreamCheck {
    async fn is_up(&self) -> bool {
        self.0.ping().await
    }
    fn required(&self) -> bool {
        false
    }
}

fn redis_dependency(bus: &StreamBus) -> (&'static str, Arc<dyn Dependency>) {
    ("events", Arc::new(StreamCheck(bus.clone())))
}

/// The leases of the orders service's background jobs: kept in its database
/// (several replicas), or always held (one SQLite file, one process).
fn order_leases(
    config: &Config,
    db: &Db,
    shape: Shape,
) -> (
    Vec<Lease>,
    [LeaseHandle; 2],
    Vec<tokio::task::JoinHandle<()>>,
) {
    if shape == Shape::AllInOne && db.backend() == ecap_core::db::Backend::Sqlite {
        return (
            Vec::new(),
            [LeaseHandle::always(), LeaseHandle::always()],
            Vec::new(),
        );
    }
    let owner = ecap_core::lease::replica_id();
    let ttl = std::time::Duration::from_secs(config.ecap_lease_secs);
    let relay = Lease::new(db.clone(), "orders-outbox-relay", owner.clone(), ttl);
    let sweeper = Lease::new(db.clone(), "orders-sweeper", owner, ttl);
    let (h1, t1) = relay.clone().keep();
    let (h2, t2) = sweeper.clone().keep();
    (vec![relay, sweeper], [h1, h2], vec![t1, t2])
}

/// Builds a process: `Shape::AllInOne` (every service, rate limits, docs) or one service.
pub async fn assemble(config: &Config, shape: Shape) -> anyhow::Result<Platform> {
    if shape == Shape::Gateway {
        return assemble_gateway(config).await;
    }
    let started = Instant::now();
    config.validate()?;
    let secret = jwt_secret(config, shape)?;
    let split = shape != Shape::AllInOne;
    let remotes = if split {
        Some(Remotes {
            token: internal_token(config)?,
            timeout: std::time::Duration::from_millis(config.internal_timeout_ms),
        })
    } else {
        None
    };
    let events_url = match shape {
        Shape::Orders => Some(events_redis(config, "orders")?),
        Shape::Analytics => Some(events_redis(config, "analytics")?),
        _ => None,
    };
    let keys = Arc::new(JwtKeys::new(&secret, config.jwt_lifetime()?));
    let revocations = revocations(config, shape).await?;
    let mut dependencies: Vec<(&'static str, Arc<dyn ecap_core::http::Dependency>)> = Vec::new();
    if config.redis().is_some() {
        dependencies.push((
            "revocations",
            Arc::new(ecap_core::revocation::RevocationCheck(revocations.clone())),
        ));
    }
    let auth = AuthState { keys, revocations };
    let mut router = Router::new();
    let mut internal = Router::new();
    let mut openapi: Option<OpenApi> = None;
    let mut databases: Vec<(&'static str, Db)> = Vec::new();
    let mut needs = Needs::default();
    let mut merge_api = |api: OpenApi| match &mut openapi {
        Some(o) => o.merge(api),
        None => openapi = Some(api),
    };
    let mut serves: Vec<&str> = Vec::new();

    // Pools by URL: services on the same database share one (all-in-one on
    // one SQLite file holds a single pool).
    let mut opened: Vec<(Secret, Db)> = Vec::new();
    let users_db = if matches!(shape, Shape::AllInOne | Shape::Users) {
        let db = users_database(config).await?;
        opened.push((config.users_database(), db.clone()));
        Some(db)
    } else {
        None
    };
    let catalog = if matches!(shape, Shape::AllInOne | Shape::Catalog) {
        let db = catalog_database(config, opened.first()).await?;
        if !opened.iter().any(|(u, _)| u == &config.catalog_database()) {
            opened.push((config.catalog_database(), db.clone()));
        }
        let store = CatalogStore::new(db.clone());
        let cache = response_cache(config).await?;
        Some((db, store, cache))
    } else {
        None
    };
    // Orders: in the all-in-one process they reach the catalog in-process;
    // alone, over HTTP.
    let orders = match (&catalog, shape, &remotes) {
        (Some((_, store, cache)), Shape::AllInOne, _) => {
            let db = orders_database(config, &opened).await?;
            if !opened.iter().any(|(u, _)| u == &config.orders_database()) {
                opened.push((config.orders_database(), db.clone()));
            }
            let inventory: Arc<dyn Inventory> = Arc::new(CatalogInventory {
                store: store.clone(),
                cache: cache.clone(),
            });
            // One database for catalog and orders: stock and order commit together.
            let shared = config.orders_database() == config.catalog_database();
            Some((
                db.clone(),
                OrderStore::new(db, inventory).with_shared_inventory(shared),
            ))
        }
        (_, Shape::Orders, Some(r)) => {
            let db = orders_database(config, &opened).await?;
            opened.push((config.orders_database(), db.clone()));
            let client = r.reach(config, Peer::Catalog, &mut needs)?;
            let inventory: Arc<dyn Inventory> = Arc::new(remote::HttpInventory(client));
            Some((db.clone(), OrderStore::new(db, inventory)))
        }
        _ => None,
    };

    if let Some(db) = &users_db {
        let store = UserStore::new(db.clone());
        let (tokens, floors) =
            ecap_users::load_revocations(&store, auth.revocations.as_ref()).await?;
        tracing::info!(tokens, users = floors, "token revocations loaded");
        let customer_orders: Arc<dyn CustomerOrders> = match (&orders, &remotes) {
            (Some((_, o)), _) => Arc::new(OrdersCustomers(o.clone())),
            (None, Some(r)) => Arc::new(remote::HttpCustomerOrders(r.reach(
                config,
                Peer::Orders,
                &mut needs,
            )?)),
            (None, None) => Arc::new(NoOrders),
        };
        let setup_token = ecap_users::first_admin_setup(
            &store,
            config.ecap_admin_bootstrap,
            config.ecap_setup_token.clone(),
        )
        .await
        .context("checking for a first admin")?;
        let state = UsersState {
            store: store.clone(),
            auth: auth.clone(),
            hasher: ecap_users::password::Hasher::new(config.ecap_hash_concurrency)?,
            orders: customer_orders,
            settings: Arc::new(UsersSettings {
                admin_bootstrap: config.ecap_admin_bootstrap,
                setup_token,
                dangerous_operations: config.ecap_dangerous_operations,
                max_failures: config.ecap_login_max_failures,
                lockout_ms: i64::try_from(config.ecap_login_lockout_secs.saturating_mul(1000))
                    .unwrap_or(i64::MAX),
            }),
        };
        let (r, api) = ecap_users::router(state);
        router = router.merge(r);
        merge_api(api);
        databases.push(("users", db.clone()));
        serves.push("/api/auth, /api/users");
        if split {
            internal = internal.merge(internal::users_routes(Arc::new(UsersAddressBook(store))));
        }
    }

    let mut inventory: Option<Arc<dyn Inventory>> = None;
    let mut upload_limit = 0;
    let mut catalog_state = None;
    if let Some((db, store, cache)) = &catalog {
        let settings = CatalogSettings {
            max_image_bytes: config.ecap_max_image_bytes,
        };
        upload_limit = settings.upload_limit_bytes();
        let media = media_store(config)?;
        if let Err(e) = media.ping().await {
            // Reads still work (URLs are signed locally); uploads will fail until it answers.
            tracing::warn!(error = %e, "the image store does not answer");
        }
        let purchases: Arc<dyn PurchaseCheck> = match (&orders, &remotes) {
            (Some((_, o)), _) => Arc::new(OrdersPurchases(o.clone())),
            (None, Some(r)) => Arc::new(remote::HttpPurchases(r.reach(
                config,
                Peer::Orders,
                &mut needs,
            )?)),
            (None, None) => Arc::new(NoPurchases),
        };
        let state = CatalogState {
            store: store.clone(),
            auth: auth.clone(),
            cache: cache.clone(),
            media,
            purchases,
            settings: Arc::new(settings),
        };
        let (r, api) = ecap_catalog::router(state.clone());
        router = router.merge(r);
        merge_api(api);
        let port: Arc<dyn Inventory> = Arc::new(CatalogInventory {
            store: store.clone(),
            cache: cache.clone(),
        });
        if split {
            internal = internal.merge(internal::catalog_routes(
                port.clone(),
                Arc::new(CatalogReviews(state.clone())),
                Arc::new(CatalogDirectory(state.clone())),
            ));
        }
        inventory = Some(port);
        databases.push(("catalog", db.clone()));
        serves.push("/api/products, /api/categories, /api/inventory, /media");
        catalog_state = Some(state);
    }

    let mut background = Vec::new();
    let mut leases = Vec::new();
    let bus = Arc::new(InProcessBus::new());
    let mut order_store = None;
    let mut analytics = None;
    let mut opened_pools = opened;
    if let Some((db, store)) = &orders {
        let (addresses, reviews): (Arc<dyn AddressBook>, Arc<dyn ProductReviews>) =
            match (&remotes, &catalog_state) {
                (Some(r), _) => {
                    let users = r.reach(config, Peer::Users, &mut needs)?;
                    (
                        Arc::new(remote::HttpAddressBook(users)),
                        Arc::new(remote::HttpReviews(r.reach(
                            config,
                            Peer::Catalog,
                            &mut needs,
                        )?)),
                    )
                }
                (None, Some(state)) => (
                    match &users_db {
                        Some(db) => Arc::new(UsersAddressBook(UserStore::new(db.clone()))),
                        None => Arc::new(NoAddresses),
                    },
                    Arc::new(CatalogReviews(state.clone())),
                ),
                (None, None) => bail!("the orders service needs the catalog"),
            };
        let settings = Arc::new(OrdersSettings {
            reservation_grace: std::time::Duration::from_secs(config.ecap_reservation_grace_secs),
            idempotency_ttl: std::time::Duration::from_secs(config.ecap_idempotency_ttl_secs),
            cleanup_every: (config.ecap_cleanup_interval_secs > 0)
                .then(|| std::time::Duration::from_secs(config.ecap_cleanup_interval_secs)),
        });
        let state = OrdersState {
            store: store.clone(),
            auth: auth.clone(),
            addresses,
            reviews,
            // In the split shape the lines list without images until an HTTP
            // directory adapter exists (names and prices are the order's own).
            products: match &catalog_state {
                Some(state) => Arc::new(CatalogDirectory(state.clone())),
                None => Arc::new(NoProductDirectory),
            },
            settings: settings.clone(),
        };
        let (r, api) = ecap_orders::router(state);
        router = router.merge(r);
        merge_api(api);
        databases.push(("orders", db.clone()));
        serves.push("/api/orders");
        ecap_core::lease::migrate(db)
            .await
            .context("migrating the lease table of the orders database")?;
        let (held, [relay_lease, sweeper_lease], keepers) = order_leases(config, db, shape);
        leases = held;
        background.extend(keepers);
        let event_bus: Arc<dyn EventBus> = match &events_url {
            Some(url) => {
                let stream = StreamBus::new(url.expose(), &config.redis_key_prefix)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                needs
                    .text
                    .push(format!("redis (events on {})", stream.key()));
                needs.checks.push(redis_dependency(&stream));
                Arc::new(stream)
            }
            None => bus.clone(),
        };
        if split {
            internal = internal.merge(internal::orders_routes(
                Arc::new(OrdersPurchases(store.clone())),
                Arc::new(OrdersCustomers(store.clone())),
                Arc::new(OrdersSnapshot(store.clone())),
            ));
        }
        if shape == Shape::AllInOne {
            // Analytics consumes the outbox: registered before the relay starts.
            let products: Arc<dyn ProductDirectory> = match &catalog_state {
                Some(state) => Arc::new(CatalogDirectory(state.clone())),
                None => Arc::new(NoProductDirectory),
            };
            let (r, api, astore) = analytics_service(
                config,
                &auth,
                &opened_pools,
                &OrdersSnapshot(store.clone()),
                products,
            )
            .await?;
            router = router.merge(r);
            merge_api(api);
            bus.register(Arc::new(AnalyticsConsumer(astore.clone())));
            let adb = astore.db().clone();
            if !opened_pools
                .iter()
                .any(|(u, _)| u == &config.analytics_database())
            {
                opened_pools.push((config.analytics_database(), adb.clone()));
            }
            databases.push(("analytics", adb));
            serves.push("/api/analytics");
            background.push(ecap_analytics::spawn_refresher(astore.clone()));
            analytics = Some(astore);
        }
        background.extend(ecap_orders::spawn_background(
            store.clone(),
            event_bus,
            settings,
            relay_lease,
            sweeper_lease,
        ));
        order_store = Some(store.clone());
    }
    if let (Shape::Analytics, Some(r), Some(url)) = (shape, &remotes, &events_url) {
        let client = r.reach(config, Peer::Orders, &mut needs)?;
        let source = remote::HttpOrderSource(client);
        // Product names for the figures come from the catalog.
        let catalog = r.reach(config, Peer::Catalog, &mut needs)?;
        let (r, api, astore) = analytics_service(
            config,
            &auth,
            &opened_pools,
            &source,
            Arc::new(remote::HttpProductDirectory(catalog)),
        )
        .await?;
        router = router.merge(r);
        merge_api(api);
        let adb = astore.db().clone();
        opened_pools.push((config.analytics_database(), adb.clone()));
        databases.push(("analytics", adb));
        serves.push("/api/analytics");
        let consumer = StreamConsumer::new(
            url.expose(),
            &config.redis_key_prefix,
            ConsumerSettings {
                group: "analytics".into(),
                consumer: ecap_core::lease::replica_id(),
                claim_idle: std::time::Duration::from_secs(10),
                batch: 256,
            },
            Arc::new(AnalyticsConsumer(astore.clone())),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let stream = StreamBus::new(url.expose(), &config.redis_key_prefix)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        needs.text.push(format!(
            "redis (events on {}, group analytics)",
            stream.key()
        ));
        needs.checks.push(redis_dependency(&stream));
        background.push(tokio::spawn(consumer.run()));
        background.push(ecap_analytics::spawn_refresher(astore.clone()));
        analytics = Some(astore);
    }
    let pools: Vec<Db> = opened_pools.into_iter().map(|(_, db)| db).collect();

    let mut openapi = openapi.unwrap_or_default();
    describe(&mut openapi);
    let service = shape.service_name();
    if split {
        needs.text.sort();
        let deps = if needs.text.is_empty() {
            "its database".to_owned()
        } else {
            format!("its database, {}", needs.text.join(", "))
        };
        tracing::info!(
            "{service}: serves {}{}; depends on {deps}",
            serves.join(", "),
            if shape == Shape::Analytics {
                ""
            } else {
                " and /internal"
            }
        );
        if let Some(r) = &remotes {
            router = router.merge(internal::protect(internal, r.token.clone()));
        }
    }
    dependencies.extend(needs.checks);
    let probe = Probe {
        service,
        started,
        databases,
        dependencies,
    };
    router = router.merge(probe_routes(probe)).merge(
        SwaggerUi::new("/api/docs")
            .external_url_unchecked("/api/openapi.json", ecap_core::openapi::to_json(&openapi)),
    );
    if shape == Shape::AllInOne {
        // The JSON index lives at /api; / and every client route is the app.
        router = router.route("/api", get(index)).merge(web::router());
    }
    // Every process limits (issue 16 #4): the login/register budget always; the
    // general budget too, except for requests a trusted proxy (the gateway,
    // `TRUSTED_PROXIES`) forwards in the split shape, which it already counted.
    let limits = Arc::new(Limits {
        general: GcraLimiter::new(
            config.rate_limit_max_requests,
            std::time::Duration::from_millis(config.rate_limit_window_ms),
        )?,
        auth: GcraLimiter::new(
            config.auth_rate_limit_max_requests,
            std::time::Duration::from_millis(config.auth_rate_limit_window_ms),
        )?,
        trusted_proxies: config.trusted_proxies.clone(),
        trusted_proxies_limit: shape == Shape::AllInOne,
    });
    let router = with_shared_layers(router, config, upload_limit, limits);
    Ok(Platform {
        router,
        databases: pools,
        inventory,
        orders: order_store,
        analytics,
        bus,
        background,
        leases,
        openapi,
    })
}

/// The edge's rate limiter for one budget: in Redis (shared by every gateway
/// replica, with the configured fail policy) when `REDIS_URL` is set, else in
/// this process.
pub fn edge_limiter(
    config: &Config,
    budget: &str,
    max: u32,
    window_ms: u64,
) -> anyhow::Result<Arc<dyn RateLimiter>> {
    let window = std::time::Duration::from_millis(window_ms);
    Ok(match config.redis() {
        Some(url) => {
            let prefix = ecap_core::config::redis_key(
                &config.redis_key_prefix,
                &format!("ratelimit:{budget}:"),
            );
            let redis = RedisGcraLimiter::new(url.expose(), prefix, max, window)
                .context("configuring the Redis rate limiter")?;
            let policy = if config.rate_limit_fail_open {
                FailPolicy::Open
            } else {
                FailPolicy::Closed
            };
            FailPolicyLimiter::new(redis, policy)
        }
        None => GcraLimiter::new(max, window)?,
    })
}

/// A process's routes in the shared layers, with its rate limits as the edge
/// policy (every shape and the gateway alike).
fn with_shared_layers(
    router: Router,
    config: &Config,
    upload_limit: usize,
    limits: Arc<Limits>,
) -> HttpService {
    foundation(
        router,
        &HttpOptions {
            cors_origin: config.cors_origin.clone(),
            body_limit_bytes: config.body_limit_bytes,
            upload_limit_bytes: upload_limit,
        },
        Some(middleware::from_fn_with_state(
            limits,
            ecap_gateway::rate_limit,
        )),
    )
}

/// `serve --only gateway`: the reverse proxy in front of the services, with
/// the edge rate limits, body limit and token check.
pub async fn assemble_gateway(config: &Config) -> anyhow::Result<Platform> {
    config.validate()?;
    let secret = jwt_secret(config, Shape::Gateway)?;
    let keys = Arc::new(JwtKeys::new(&secret, config.jwt_lifetime()?));
    // The edge checks signatures only; revocation is each service's business.
    let auth = AuthState {
        keys,
        revocations: Arc::new(MemoryRevocations::new()),
    };
    let list = |service: Service, value: &Option<String>| {
        GatewaySettings::parse_list(service, value.as_deref()).map_err(anyhow::Error::msg)
    };
    let upload_limit = CatalogSettings {
        max_image_bytes: config.ecap_max_image_bytes,
    }
    .upload_limit_bytes();
    let settings = GatewaySettings {
        upstreams: [
            list(Service::Users, &config.user_service_url)?,
            list(Service::Catalog, &config.product_service_url)?,
            list(Service::Orders, &config.order_service_url)?,
            list(Service::Analytics, &config.analytics_service_url)?,
        ],
        connect_timeout: std::time::Duration::from_millis(config.gateway_connect_timeout_ms),
        read_timeout: std::time::Duration::from_millis(config.gateway_read_timeout_ms),
        health_interval: std::time::Duration::from_millis(config.gateway_health_interval_ms),
        eject_for: std::time::Duration::from_millis(config.gateway_eject_ms),
        body_limit: config.body_limit_bytes,
        upload_limit,
        trusted_proxies: config.trusted_proxies.clone(),
    };
    for (service, replicas) in Service::ALL.iter().zip(&settings.upstreams) {
        tracing::info!(
            service = service.name(),
            replicas = replicas.join(","),
            "gateway upstream ({})",
            service.env()
        );
    }
    let limits = Arc::new(Limits {
        general: edge_limiter(
            config,
            "general",
            config.rate_limit_max_requests,
            config.rate_limit_window_ms,
        )?,
        auth: edge_limiter(
            config,
            "auth",
            config.auth_rate_limit_max_requests,
            config.auth_rate_limit_window_ms,
        )?,
        trusted_proxies: config.trusted_proxies.clone(),
        // The gateway is the edge: it counts everyone, nginx's clients by the
        // address nginx forwards.
        trusted_proxies_limit: true,
    });
    match config.redis() {
        Some(_) => tracing::info!(
            fail_open = config.rate_limit_fail_open,
            "rate limits shared through Redis (RATE_LIMIT_FAIL_OPEN decides when it is down)"
        ),
        None => tracing::info!("rate limits kept in this process (no REDIS_URL)"),
    }
    // The browser app answers every path no service owns (as all-in-one).
    let (gateway, checks) = Gateway::new(settings, auth, Some(web::router()));
    let router = with_shared_layers(
        ecap_gateway::proxy::router(gateway),
        config,
        upload_limit,
        limits,
    );
    Ok(Platform {
        router,
        databases: Vec::new(),
        inventory: None,
        orders: None,
        analytics: None,
        bus: Arc::new(InProcessBus::new()),
        background: vec![checks],
        leases: Vec::new(),
        openapi: OpenApi::default(),
    })
}

/// The analytics service on its database: tables (built from `source` when
/// new), routes and API description.
async fn analytics_service(
    config: &Config,
    auth: &AuthState,
    opened: &[(Secret, Db)],
    source: &dyn OrderSource,
    products: Arc<dyn ProductDirectory>,
) -> anyhow::Result<(Router, OpenApi, AnalyticsStore)> {
    // A bad zone stops start-up before the analytics tables are touched.
    jiff::tz::TimeZone::get(&config.ecap_timezone).with_context(|| {
        format!(
            "ECAP_TIMEZONE={:?} is not a known IANA time zone",
            config.ecap_timezone
        )
    })?;
    let adb = analytics_database(config, opened).await?;
    let astore = analytics_store(adb, source).await?;
    let (r, api) = ecap_analytics::router(AnalyticsState {
        store: astore.clone(),
        auth: auth.clone(),
        settings: Arc::new(AnalyticsSettings {
            timezone: config.ecap_timezone.clone(),
        }),
        products,
    });
    Ok((r, api, astore))
}

async fn index() -> Json<serde_json::Value> {
    Json(json!({
        "success": true,
        "name": "ecap",
        "version": env!("CARGO_PKG_VERSION"),
        "docs": "/api/docs",
        "app": "/",
        "openapi": "/api/openapi.json",
        "health": "/health",
    }))
}

/// Title, version and the bearer scheme the handlers refer to.
fn describe(api: &mut OpenApi) {
    api.info.title = "ecap API".into();
    api.info.contact = None;
    api.info.license = Some(utoipa::openapi::License::new("MIT OR Apache-2.0"));
    api.info.version = env!("CARGO_PKG_VERSION").into();
    api.info.description = Some(
        "E-Commerce Analytics Platform. Wire-compatible with the original Node.js API; \
         every error is `{success:false, message, code, errors}`."
            .into(),
    );
    // One handler on two methods (PUT and PATCH /api/users/{id}) would give two
    // operations one id; generators (openapi-typescript) refuse that.
    let mut seen = std::collections::HashSet::new();
    for item in api.paths.paths.values_mut() {
        let operations = [
            ("get", &mut item.get),
            ("post", &mut item.post),
            ("put", &mut item.put),
            ("patch", &mut item.patch),
            ("delete", &mut item.delete),
        ];
        for (method, op) in operations {
            if let Some(op) = op.as_mut()
                && let Some(id) = op.operation_id.as_mut()
                && !seen.insert(id.clone())
            {
                id.push('_');
                id.push_str(method);
                seen.insert(id.clone());
            }
        }
    }
    ecap_users::http::refine_spec(api);
    ecap_catalog::http::refine_spec(api);
    ecap_orders::http::refine_spec(api);
    ecap_analytics::http::refine_spec(api);
    ecap_core::openapi::close_request_bodies(api);
    // Every flat JSON body may come as a form instead (the shared body extractor).
    ecap_core::openapi::add_form_bodies(api);
    ecap_core::openapi::add_error_responses(api);
    // The exact bodies of the 2xx answers, one file per service.
    for (service, source) in [
        ("users", ecap_users::http::RESPONSES),
        ("catalog", ecap_catalog::http::RESPONSES),
        ("orders", ecap_orders::http::RESPONSES),
        ("analytics", ecap_analytics::http::RESPONSES),
    ] {
        let problems = ecap_core::openapi::add_response_schemas(api, source);
        for problem in &problems {
            tracing::error!(service, problem, "crates/{service}/src/responses.json");
        }
        debug_assert!(
            problems.is_empty(),
            "{service}/src/responses.json: {problems:?}"
        );
    }
    ecap_core::openapi::add_success_envelope(api);
    ecap_core::openapi::constrain_path_ids(api);
    ecap_core::openapi::forbid_control_characters(api);
    add_links(api);
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        ),
    );
    // The browser's alternative to the bearer header (writes also need
    // X-CSRF-Token; see crates/core/src/session.rs).
    components.add_security_scheme(
        "cookie",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            ecap_core::session::SESSION_COOKIE,
            "HttpOnly session cookie set by login/register/refresh when the request carries \
             `X-Auth-Session: cookie`; cookie-authenticated writes need `X-CSRF-Token` (the \
             `ecap_csrf` cookie's value)",
        ))),
    );
}

/// Where a created resource goes next: `create → read → update → delete`
/// through the document's links (what schemathesis' stateful phase follows).
fn add_links(api: &mut OpenApi) {
    use ecap_core::openapi::link;
    let product = [
        "get_product",
        "update_product",
        "delete_product",
        "adjust_inventory",
        "inventory_history",
        "list_reviews",
        "add_review",
        "upload_images",
    ];
    link(
        api,
        "create_product",
        "201",
        "/data/product/id",
        "id",
        &product,
    );
    let category = ["rename_category", "delete_category"];
    link(
        api,
        "create_category",
        "201",
        "/data/category/name",
        "name",
        &category,
    );
    let address = [
        "get_address",
        "put_address",
        "patch_address",
        "delete_address",
        "set_default_address",
    ];
    link(
        api,
        "create_address",
        "201",
        "/data/address/id",
        "id",
        &address,
    );
    let order = [
        "get_order",
        "tracking",
        "update_status",
        "cancel_request",
        "approve_cancel",
        "reject_cancel",
        "delete_order",
        "soft_delete",
        "review_order",
        "create_detail_request",
        "get_detail_request",
        "restore_request",
    ];
    link(api, "create_order", "201", "/data/order/id", "id", &order);
    let user = [
        "get_user",
        "user_details",
        "update_user",
        "update_user_patch",
        "delete_user",
    ];
    link(api, "create_user", "201", "/data/user/id", "id", &user);
}

/// The all-in-one API's OpenAPI document as pretty JSON, assembled on a
/// throw-away SQLite database with default settings (the configured databases
/// are never touched).
pub async fn openapi_document() -> anyhow::Result<String> {
    let dir = std::env::temp_dir().join(format!("ecap-openapi-{}", uuid_like()));
    let config = Config {
        ecap_data_dir: dir.clone(),
        jwt_secret: Some(Secret::new(uuid_like() + &uuid_like())),
        ecap_cache_ttl_secs: 0,
        ecap_admin_bootstrap: false,
        ..Config::default()
    };
    let result = assemble(&config, Shape::AllInOne).await;
    let text = match &result {
        Ok(platform) => {
            platform.close().await;
            serde_json::to_string_pretty(&ecap_core::openapi::to_json(&platform.openapi))
                .context("serialising the document")
        }
        Err(_) => Ok(String::new()),
    };
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    text
}

fn uuid_like() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The orders store on the configured databases, for offline commands
/// (`ecap analytics …`, `ecap seed --orders`): no cache, no background tasks.
pub async fn offline_orders(config: &Config) -> anyhow::Result<(OrderStore, Vec<Db>)> {
    let catalog = catalog_database(config, None).await?;
    let orders = orders_database(config, &[(config.catalog_database(), catalog.clone())]).await?;
    let inventory: Arc<dyn Inventory> = Arc::new(CatalogInventory {
        store: CatalogStore::new(catalog.clone()),
        cache: ResponseCache::off(),
    });
    let shared = config.orders_database() == config.catalog_database();
    Ok((
        OrderStore::new(orders.clone(), inventory).with_shared_inventory(shared),
        vec![catalog, orders],
    ))
}

/// `ecap analytics rebuild` (`verify` false) or `verify`: returns the
/// differences found (always none after a rebuild).
pub async fn analytics_command(
    config: &Config,
    verify: bool,
    progress: bool,
) -> anyhow::Result<Vec<String>> {
    let (orders, mut pools) = offline_orders(config).await?;
    let opened: Vec<(Secret, Db)> = vec![(config.orders_database(), orders.db().clone())];
    let adb = analytics_database(config, &opened).await?;
    pools.push(adb.clone());
    let store = AnalyticsStore::open_offline(adb);
    let source = OrdersSnapshot(orders);
    let result = if verify {
        store.verify(&source).await.context("verifying")?
    } else {
        let bar = progress.then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:40}] {pos}/{len} orders ({per_sec}, {eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message("rebuilding analytics");
            bar
        });
        let started = Instant::now();
        let n = store
            .rebuild(&source, &|done, total| {
                if let Some(b) = &bar {
                    b.set_length(total);
                    b.set_position(done);
                }
            })
            .await
            .context("rebuilding the analytics aggregates")?;
        if let Some(b) = &bar {
            b.finish_and_clear();
        }
        eprintln!(
            "analytics rebuilt from {n} orders in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Vec::new()
    };
    for db in pools {
        db.close().await;
    }
    Ok(result)
}
