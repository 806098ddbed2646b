//! A TCP proxy between ecap and a database server that a test can "restart":
//! `down()` drops every open connection and closes new ones as soon as they
//! are accepted (what a client sees while a server restarts), `up()` accepts
//! again. The shared database servers are never touched.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
};

pub struct Proxy {
    pub port: u16,
    down: Arc<AtomicBool>,
    /// Bumped by `down()`: every connection task watching it ends (both
    /// sockets dropped).
    epoch: watch::Sender<u64>,
    open: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on a random 127.0.0.1 port and forwards to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let open = Arc::new(AtomicUsize::new(0));
        let (epoch, _) = watch::channel(0u64);
        let task = {
            let (down, open, epoch) = (down.clone(), open.clone(), epoch.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        continue;
                    };
                    if down.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let upstream = upstream.clone();
                    let mut cut = epoch.subscribe();
                    let open = open.clone();
                    tokio::spawn(async move {
                        let Ok(server) = TcpStream::connect(&upstream).await else {
                            return;
                        };
                        open.fetch_add(1, Ordering::SeqCst);
                        let (mut client, mut server) = (client, server);
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = cut.changed() => {}
                        }
                        open.fetch_sub(1, Ordering::SeqCst);
                    });
                }
            })
        };
        Self {
            port,
            down,
            epoch,
            open,
            task,
        }
    }

    /// The server "goes away": open connections are cut, new ones closed at once.
    pub fn down(&self) {
        self.down.store(true, Ordering::SeqCst);
        self.epoch.send_modify(|e| *e += 1);
    }

    /// The server is back.
    pub fn up(&self) {
        self.down.store(false, Ordering::SeqCst);
    }

    /// Connections currently forwarded.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// `url` (a postgres:// or mysql:// URL) pointed at this proxy instead.
    pub fn route(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").unwrap();
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (user, _host) = authority
            .rsplit_once('@')
            .map_or((None, authority), |(u, h)| (Some(u), h));
        let user = user.map_or(String::new(), |u| format!("{u}@"));
        format!("{scheme}://{user}127.0.0.1:{}/{path}", self.port)
    }
}

/// `host:port` of a postgres:// or mysql:// URL (default ports filled in).
pub fn upstream_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let authority = rest.split('/').next().unwrap();
    let host = authority.rsplit('@').next().unwrap();
    if host.contains(':') {
        host.to_owned()
    } else if scheme.starts_with("postgres") {
        format!("{host}:5432")
    } else {
        format!("{host}:3306")
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.epoch.send_modify(|e| *e += 1);
    }
}
