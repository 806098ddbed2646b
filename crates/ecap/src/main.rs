//! The `ecap` command: parse, configure, build state, serve.

use std::{io::IsTerminal, net::SocketAddr, path::PathBuf, process::ExitCode};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use ecap_core::config::{Config, Secret, Shape};

/// ecap — the E-Commerce Analytics Platform.
///
/// Settings come from built-in defaults, then `ecap.toml`, then the environment
/// (and a `.env` file), then these flags. README.md lists every setting.
#[derive(Parser)]
#[command(name = "ecap", version, about, long_about)]
struct Cli {
    /// Configuration file (default: ./ecap.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory for the SQLite database, the generated JWT secret and media.
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL for every service: sqlite://…, postgres://… or mysql://…
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the platform: every service in one process on port 8000 (default),
    /// or one service of the split shape with --only.
    Serve {
        /// Listen port (default 8000; with --only: users 8001, catalog 8002,
        /// orders 8003, analytics 8004, gateway 8000).
        #[arg(long, short)]
        port: Option<u16>,
        /// Address to bind (default 0.0.0.0).
        #[arg(long)]
        host: Option<std::net::IpAddr>,
        /// Run a single service, for the split shape behind a gateway (needs
        /// JWT_SECRET and INTERNAL_TOKEN; orders and analytics also REDIS_URL).
        #[arg(long, value_enum, env = "ECAP_ONLY")]
        only: Option<Only>,
        /// On an empty database, create demo accounts (see README) and a demo
        /// catalog first.
        #[arg(long)]
        demo: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Fill the database with demo data: the demo accounts (when there are no
    /// users), a generated catalog and, with --orders, a year of order
    /// history, the same for the same --seed.
    Seed {
        /// How many products to add (default 300; with --orders, none beyond
        /// the demo catalog an empty catalog gets).
        #[arg(long)]
        products: Option<u64>,
        /// Seed of the generator: the same seed gives the same data.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// How many orders to add, placed over the last 365 days by synthetic
        /// customers.
        #[arg(long, default_value_t = 0)]
        orders: u64,
    },
    /// Analytics aggregates: rebuild them from the orders, or check them.
    Analytics {
        #[command(subcommand)]
        command: AnalyticsCommand,
    },
    /// Print the OpenAPI document of the all-in-one API (what
    /// `/api/openapi.json` serves) without a running server or a database.
    Openapi,
    /// Manage user accounts.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Ask the local server whether it is ready: GET /ready on the port `serve`
    /// with the same settings listens on; exit 0 on 200, 1 otherwise (the
    /// container HEALTHCHECK; the image has no curl).
    Healthcheck {
        /// Port to ask (default: the one `serve` would listen on).
        #[arg(long, short)]
        port: Option<u16>,
        /// The service whose default port to ask, as for `serve --only`.
        #[arg(long, value_enum, env = "ECAP_ONLY")]
        only: Option<Only>,
        /// Path to GET.
        #[arg(long, default_value = "/ready")]
        path: String,
        /// Seconds to wait for the whole answer.
        #[arg(long, default_value_t = 3)]
        timeout: u64,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Only {
    /// The user service (accounts, sessions, profiles, addresses) on port 8001.
    Users,
    /// The catalog (products, categories, inventory, reviews, images) on port 8002.
    Catalog,
    /// The gateway on port 8000: routes /api/… to the services' replicas
    /// (USER_SERVICE_URL, PRODUCT_SERVICE_URL, ORDER_SERVICE_URL, ANALYTICS_SERVICE_URL).
    Gateway,
    /// The orders service (placement, lifecycle, outbox relay, sweeper) on port 8003.
    Orders,
    /// Analytics (event consumer, dashboard, live stream) on port 8004.
    Analytics,
}

#[derive(Subcommand)]
enum AnalyticsCommand {
    /// Recompute every aggregate from the orders tables (one transaction;
    /// a running server reloads within a second).
    Rebuild,
    /// Compare every aggregate with a recomputation from the orders; prints
    /// each difference and exits 1 when there is any.
    Verify,
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Create an admin account. The password is read from standard input
    /// (one line) or prompted for on a terminal; it is never a flag.
    CreateAdmin {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        phone: Option<String>,
    },
}

// mimalloc returns the password hasher's large buffers to the OS and allocates
// small objects faster than glibc under many threads (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match load_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ecap: {e:#}");
            return ExitCode::from(2);
        }
    };
    ecap_core::http::init_tracing(&config.log_level, config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ecap: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "ecap stopped");
            eprintln!("ecap: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(dir) = &cli.data_dir {
        config.ecap_data_dir = dir.clone();
    }
    if let Some(url) = &cli.database_url {
        config.database_url = Some(Secret::new(url.clone()));
    }
    if !matches!(cli.command, Command::Serve { .. }) {
        // Migrations, seeding, rebuilds and verification run long statements
        // on purpose; the statement limit protects requests, not batch work.
        config.db_statement_timeout_ms = 0;
    }
    if let Command::Serve { port, host, .. } = &cli.command {
        if port.is_some() {
            config.port = *port;
        }
        if let Some(h) = host {
            config.host = *h;
        }
    }
    if let Command::Healthcheck {
        port: Some(port), ..
    } = &cli.command
    {
        config.port = Some(*port);
    }
    config.validate()?;
    Ok(config)
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve { only, demo, .. } => {
            let shape = shape_of(only);
            if demo {
                ecap::seed::demo(&config, shape).await?;
            }
            serve(config, shape).await
        }
        Command::Migrate => {
            let users = ecap::users_database(&config).await?;
            let (orders, pools) = ecap::offline_orders(&config).await?;
            let analytics = ecap::analytics_database(
                &config,
                &[(config.orders_database(), orders.db().clone())],
            )
            .await?;
            users.close().await;
            analytics.close().await;
            for db in pools {
                db.close().await;
            }
            println!("migrations applied");
            Ok(())
        }
        Command::Seed {
            products,
            seed,
            orders,
        } => {
            let progress = std::io::stderr().is_terminal();
            let products = products.unwrap_or(if orders == 0 {
                ecap::seed::DEMO_PRODUCTS
            } else {
                0
            });
            if products > 0 || orders == 0 {
                ecap::seed::catalog(&config, products, seed, progress).await?;
            }
            if orders > 0 {
                ecap::seed::orders(&config, orders, seed, progress).await?;
                // Seeded history has no outbox events: aggregates come from the tables.
                ecap::analytics_command(&config, false, progress).await?;
            }
            Ok(())
        }
        Command::Analytics { command } => {
            let verify = matches!(command, AnalyticsCommand::Verify);
            let diffs =
                ecap::analytics_command(&config, verify, std::io::stderr().is_terminal()).await?;
            if verify {
                if diffs.is_empty() {
                    println!("analytics verified: every aggregate matches the orders");
                } else {
                    for d in &diffs {
                        println!("{d}");
                    }
                    bail!(
                        "{} differences between the aggregates and the orders",
                        diffs.len()
                    );
                }
            }
            Ok(())
        }
        Command::Openapi => {
            println!("{}", ecap::openapi_document().await?);
            Ok(())
        }
        Command::Users {
            command: UsersCommand::CreateAdmin { email, name, phone },
        } => create_admin(config, &email, &name, phone.as_deref()).await,
        Command::Healthcheck {
            only,
            path,
            timeout,
            ..
        } => healthcheck(&config, shape_of(only), &path, timeout).await,
    }
}

fn shape_of(only: Option<Only>) -> Shape {
    match only {
        None => Shape::AllInOne,
        Some(Only::Users) => Shape::Users,
        Some(Only::Catalog) => Shape::Catalog,
        Some(Only::Gateway) => Shape::Gateway,
        Some(Only::Orders) => Shape::Orders,
        Some(Only::Analytics) => Shape::Analytics,
    }
}

/// One `GET` over HTTP/1.0 to the local listener; Ok when it answers 200.
async fn healthcheck(
    config: &Config,
    shape: Shape,
    path: &str,
    timeout: u64,
) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A wildcard bind is asked on loopback; a specific address on itself.
    let ip = match config.host {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        other => other,
    };
    let addr = SocketAddr::new(ip, config.port_for(shape));
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        let request =
            format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: ecap-healthcheck\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        anyhow::Ok(answer)
    };
    let answer = tokio::time::timeout(std::time::Duration::from_secs(timeout.max(1)), ask)
        .await
        .map_err(|_| anyhow::anyhow!("{addr}{path}: no answer within {timeout} s"))??;
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .with_context(|| format!("{addr}{path}: not an HTTP answer"))?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    if status == 200 {
        println!("{addr}{path}: {status} {body}");
        Ok(())
    } else {
        bail!("{addr}{path}: {status} {body}")
    }
}

async fn serve(config: Config, shape: Shape) -> anyhow::Result<()> {
    let platform = ecap::assemble(&config, shape).await?;
    let addr = SocketAddr::new(config.host, config.port_for(shape));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(%addr, shape = ?shape, "ecap listening");
    ecap_core::http::serve(
        listener,
        platform.router.clone(),
        ecap_core::http::shutdown_signal(),
    )
    .await?;
    platform.close().await;
    tracing::info!("stopped cleanly");
    Ok(())
}

fn read_password() -> anyhow::Result<Secret> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Password (again): ")?;
        if first != again {
            bail!("the passwords differ");
        }
        Ok(Secret::new(first))
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Ok(Secret::new(line.trim_end_matches(['\r', '\n'])))
    }
}

async fn create_admin(
    config: Config,
    email: &str,
    name: &str,
    phone: Option<&str>,
) -> anyhow::Result<()> {
    use ecap_users::domain::{Email, check_name, check_password, check_phone};
    let email = Email::parse(email).map_err(anyhow::Error::msg)?;
    let name = check_name(name).map_err(anyhow::Error::msg)?;
    let phone = check_phone(phone.unwrap_or_default()).map_err(anyhow::Error::msg)?;
    let password = read_password()?;
    check_password(password.expose()).map_err(anyhow::Error::msg)?;
    let db = ecap::users_database(&config).await?;
    let store = ecap_users::UserStore::new(db.clone());
    let hasher = ecap_users::password::Hasher::new(1)?;
    let hash = hasher.hash(password.expose()).await?;
    let user = store
        .create(
            ecap_users::store::NewUser {
                email: email.as_str().to_owned(),
                password_hash: hash,
                name,
                phone,
                role: ecap_core::auth::Role::Admin,
            },
            false,
        )
        .await
        .map_err(|e| match e {
            ecap_users::store::StoreError::EmailTaken => {
                anyhow::anyhow!("a user with e-mail {} already exists", email.as_str())
            }
            other => anyhow::Error::new(other),
        })?;
    db.close().await;
    println!("admin created: id {} <{}>", user.id, user.email);
    Ok(())
}
