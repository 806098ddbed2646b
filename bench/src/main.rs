//! The benchmark baseline: a bare axum server that answers `GET /health` and
//! `GET /api/auth/me` with fixed bytes.
//!
//! `bench/run.py` first captures ecap's real response bodies into two files and
//! then starts this server with them, so both servers send the same bytes and
//! the measured difference is what ecap does per request (middleware, token
//! check, database, logging), not payload size.
//!
//! Usage: `ecap-bench [--port N] --health FILE --me FILE`
//! (the port may also come from `BENCH_PORT`; default 18080).

use std::{error::Error, net::SocketAddr, path::PathBuf};

use axum::{Router, body::Bytes, http::header, response::IntoResponse, routing::get};

// The same allocator as ecap, so the ratio measures ecap's work, not malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type AnyResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

struct Args {
    port: u16,
    health: PathBuf,
    me: PathBuf,
}

const USAGE: &str = "usage: ecap-bench [--port N] --health FILE --me FILE";

fn parse_args() -> AnyResult<Args> {
    let mut port: Option<u16> = None;
    let mut health = None;
    let mut me = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--port" => port = Some(value("--port")?.parse()?),
            "--health" => health = Some(PathBuf::from(value("--health")?)),
            "--me" => me = Some(PathBuf::from(value("--me")?)),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}").into()),
        }
    }
    let port = match port {
        Some(p) => p,
        None => match std::env::var("BENCH_PORT") {
            Ok(p) => p.parse()?,
            Err(_) => 18080,
        },
    };
    Ok(Args {
        port,
        health: health.ok_or(USAGE)?,
        me: me.ok_or(USAGE)?,
    })
}

fn fixed(body: Bytes) -> impl Fn() -> std::future::Ready<axum::response::Response> + Clone {
    move || {
        std::future::ready(
            ([(header::CONTENT_TYPE, "application/json")], body.clone()).into_response(),
        )
    }
}

#[tokio::main]
async fn main() -> AnyResult<()> {
    let args = parse_args()?;
    let health = Bytes::from(
        std::fs::read(&args.health).map_err(|e| format!("{}: {e}", args.health.display()))?,
    );
    let me =
        Bytes::from(std::fs::read(&args.me).map_err(|e| format!("{}: {e}", args.me.display()))?);

    let app = Router::new()
        .route("/health", get(fixed(health)))
        .route("/api/auth/me", get(fixed(me)));

    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("ecap-bench baseline listening on http://{addr}");
    axum::serve(listener, app).await?;
    Ok(())
}
