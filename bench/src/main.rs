//! The benchmark baseline: a bare axum server that answers `GET /health`,
//! `GET /api/auth/me` and any number of other requests with fixed bytes.
//!
//! `bench/run.py` first captures ecap's real response bodies into files and
//! then starts this server with them, so both servers send the same bytes and
//! the measured difference is what ecap does per request (middleware, token
//! check, database, cache, logging), not payload size.
//!
//! Usage: `ecap-bench [--port N] [--health FILE] [--me FILE] [--serve PATH FILE]...`
//! (the port may also come from `BENCH_PORT`; default 18080). `--serve` maps a
//! path *with its query string*, exactly as the client sends it (for example
//! `/api/products?page=1&limit=20`), to a file; it may be repeated.

use std::{collections::HashMap, error::Error, net::SocketAddr, path::PathBuf, sync::Arc};

use axum::{
    Router,
    body::Bytes,
    http::{StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::get,
};

// The same allocator as ecap, so the ratio measures ecap's work, not malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type AnyResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

struct Args {
    port: u16,
    health: Option<PathBuf>,
    me: Option<PathBuf>,
    /// (path with query, file)
    serve: Vec<(String, PathBuf)>,
}

const USAGE: &str =
    "usage: ecap-bench [--port N] [--health FILE] [--me FILE] [--serve PATH?QUERY FILE]...";

fn parse_args() -> AnyResult<Args> {
    let mut port: Option<u16> = None;
    let mut health = None;
    let mut me = None;
    let mut serve = Vec::new();
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
            "--serve" => {
                let path = value("--serve")?;
                let file = PathBuf::from(value("--serve")?);
                if !path.starts_with('/') {
                    return Err(format!("--serve {path:?}: the path must start with '/'").into());
                }
                serve.push((path, file));
            }
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
    if health.is_none() && me.is_none() && serve.is_empty() {
        return Err(format!("nothing to serve\n{USAGE}").into());
    }
    Ok(Args {
        port,
        health,
        me,
        serve,
    })
}

fn read(path: &PathBuf) -> AnyResult<Bytes> {
    Ok(Bytes::from(
        std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?,
    ))
}

fn json(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn fixed(body: Bytes) -> impl Fn() -> std::future::Ready<Response> + Clone {
    move || std::future::ready(json(body.clone()))
}

#[tokio::main]
async fn main() -> AnyResult<()> {
    let args = parse_args()?;

    let mut app = Router::new();
    if let Some(file) = &args.health {
        app = app.route("/health", get(fixed(read(file)?)));
    }
    if let Some(file) = &args.me {
        app = app.route("/api/auth/me", get(fixed(read(file)?)));
    }
    if !args.serve.is_empty() {
        // Exact path-and-query lookups: one path (/api/products) answers
        // different bytes for different query strings.
        let mut bodies = HashMap::with_capacity(args.serve.len());
        for (path, file) in &args.serve {
            bodies.insert(path.clone(), read(file)?);
        }
        let bodies = Arc::new(bodies);
        app = app.fallback(move |uri: Uri| {
            let found = uri
                .path_and_query()
                .and_then(|pq| bodies.get(pq.as_str()))
                .cloned();
            std::future::ready(match found {
                Some(body) => json(body),
                None => StatusCode::NOT_FOUND.into_response(),
            })
        });
    }

    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("ecap-bench baseline listening on http://{addr}");
    axum::serve(listener, app).await?;
    Ok(())
}
