//! Test support: a real S3-compatible server on 127.0.0.1 for ecap's tests.
//!
//! [`S3Server::start`] serves [`s3s_fs`] (objects stored as plain files in a
//! fresh temporary directory) on a random port of the loopback interface,
//! behind SigV4 authentication with a per-server random access key and
//! secret, so an unsigned or wrongly signed request is refused. One bucket is
//! created up front. Each test starts its own server; the server stops and
//! its directory is removed when the [`S3Server`] is dropped.
//!
//! ```no_run
//! # async fn demo() {
//! let s3 = s3_test_server::S3Server::start().await;
//! println!("{} {} {}", s3.endpoint, s3.bucket, s3.region);
//! # }
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// How long in-flight connections may keep running once the server is dropped.
const GRACE: Duration = Duration::from_secs(2);

/// A running S3-compatible server; stops when dropped.
///
/// Requests must be signed (SigV4, header or presigned query) with
/// [`access_key`](Self::access_key) and [`secret_key`](Self::secret_key).
/// The server speaks path-style addressing: `{endpoint}/{bucket}/{key}`.
#[derive(Debug)]
pub struct S3Server {
    /// Base URL, `http://127.0.0.1:PORT` (no trailing slash).
    pub endpoint: String,
    /// Name of the bucket created at start-up.
    pub bucket: String,
    /// Access key id accepted by the server.
    pub access_key: String,
    /// Secret access key matching [`access_key`](Self::access_key).
    pub secret_key: String,
    /// Region to sign with (the server accepts any; this is the conventional one).
    pub region: String,
    /// Socket address the server listens on.
    pub addr: SocketAddr,
    /// Storage root; removed on drop (after `shutdown`, as fields drop in order).
    root: tempfile::TempDir,
    /// Dropping this tells the accept loop to stop.
    shutdown: Option<oneshot::Sender<()>>,
}

impl S3Server {
    /// Starts a server on `127.0.0.1:0` with a fresh storage directory, one
    /// bucket and random credentials, served by a task on the current Tokio
    /// runtime.
    ///
    /// # Panics
    ///
    /// Panics if the temporary directory, the bucket or the listener cannot
    /// be created: this is test support, and a test cannot go on without it.
    #[allow(clippy::expect_used)]
    pub async fn start() -> S3Server {
        let root = tempfile::Builder::new()
            .prefix("ecap-s3-test-")
            .tempdir()
            .expect("create S3 test server root directory");
        // s3s-fs keeps a bucket as a directory directly under its root.
        let bucket = format!("ecap-test-{}", short_id());
        std::fs::create_dir(root.path().join(&bucket)).expect("create S3 test bucket directory");

        let access_key = format!("AKTEST{}", short_id().to_uppercase());
        let secret_key = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );

        let fs = s3s_fs::FileSystem::new(root.path()).expect("open s3s-fs storage root");
        let service = {
            let mut builder = S3ServiceBuilder::new(fs);
            builder.set_auth(SimpleAuth::from_single(
                access_key.clone(),
                secret_key.clone(),
            ));
            builder.build()
        };

        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind S3 test server to 127.0.0.1:0");
        let addr = listener.local_addr().expect("S3 test server local address");
        let (shutdown_tx, mut shutdown_rx) = oneshot::channel::<()>();

        tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            let graceful = GracefulShutdown::new();
            loop {
                let socket = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((socket, _)) => socket,
                        Err(_) => continue,
                    },
                    // Fires when the sender is used or dropped.
                    _ = &mut shutdown_rx => break,
                };
                let conn = http.serve_connection(TokioIo::new(socket), service.clone());
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            drop(listener);
            let _ = tokio::time::timeout(GRACE, graceful.shutdown()).await;
        });

        S3Server {
            endpoint: format!("http://{addr}"),
            bucket,
            access_key,
            secret_key,
            region: "us-east-1".to_owned(),
            addr,
            root,
            shutdown: Some(shutdown_tx),
        }
    }

    /// Path-style URL of an object, unsigned: `{endpoint}/{bucket}/{key}`.
    pub fn object_url(&self, key: &str) -> String {
        format!(
            "{}/{}/{}",
            self.endpoint,
            self.bucket,
            key.trim_start_matches('/')
        )
    }

    /// Directory holding the server's data (the bucket is a subdirectory).
    pub fn root(&self) -> &std::path::Path {
        self.root.path()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Twelve lowercase hex characters, unique enough for names within a test run.
fn short_id() -> String {
    let mut id = uuid::Uuid::new_v4().simple().to_string();
    id.truncate(12);
    id
}
