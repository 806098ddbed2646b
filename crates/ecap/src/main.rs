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
    /// Manage user accounts.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Only {
    /// The user service (accounts, sessions, profiles, addresses) on port 8001.
    Users,
    /// The catalog (products, categories, inventory, reviews, images) on port 8002.
    Catalog,
    /// The orders service (placement, lifecycle, outbox relay, sweeper) on port 8003.
    Orders,
    /// Analytics (event consumer, dashboard, live stream) on port 8004.
    Analytics,
    /// The gateway on port 8000: routes /api/… to the services' replicas
    /// (USER_SERVICE_URL, PRODUCT_SERVICE_URL, ORDER_SERVICE_URL, ANALYTICS_SERVICE_URL).
    Gateway,
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
    if let Command::Serve { port, host, .. } = &cli.command {
        if port.is_some() {
            config.port = *port;
        }
        if let Some(h) = host {
            config.host = *h;
        }
    }
    config.validate()?;
    Ok(config)
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve { only, demo, .. } => {
            let shape = match only {
                None => Shape::AllInOne,
                Some(Only::Users) => Shape::Users,
                Some(Only::Catalog) => Shape::Catalog,
                Some(Only::Orders) => Shape::Orders,
                Some(Only::Analytics) => Shape::Analytics,
                Some(Only::Gateway) => Shape::Gateway,
            };
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
        Command::Users {
            command: UsersCommand::CreateAdmin { email, name, phone },
        } => create_admin(config, &email, &name, phone.as_deref()).await,
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
