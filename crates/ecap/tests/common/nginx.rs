//! nginx (Debian's binary, running `deploy/nginx/nginx.conf` as committed) in
//! front of gateways, for the gateway and split-shape tests. Included by path
//! (`#[path = "common/nginx.rs"] mod nginx;`) by the tests that start it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

/// nginx with a rendered copy of the committed config, listening on a free port.
pub struct Nginx {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Nginx {
    pub fn start(gateways: &[SocketAddr]) -> Self {
        let bin = std::env::var("NGINX").unwrap_or_else(|_| "/usr/sbin/nginx".into());
        assert!(
            std::path::Path::new(&bin).exists(),
            "nginx not found at {bin} (apt-get install nginx, or set NGINX)"
        );
        let dir = tempfile::tempdir().unwrap();
        // Workers may run as another user when the test runs as root.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let conf = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/nginx/nginx.conf");
        std::fs::copy(conf, dir.path().join("nginx.conf")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::write(
            dir.path().join("listen.conf"),
            format!("listen 127.0.0.1:{port};\n"),
        )
        .unwrap();
        let servers: String = gateways
            .iter()
            .map(|g| format!("server {g} max_fails=2 fail_timeout=5s;\n"))
            .collect();
        std::fs::write(dir.path().join("gateways.conf"), servers).unwrap();
        let child = std::process::Command::new(bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .args(["-e", "stderr", "-g", "daemon off;"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut n = Self {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(n.child.try_wait().unwrap().is_none(), "nginx exited");
            assert!(Instant::now() < deadline, "nginx did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        n
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Nginx {
    /// SIGTERM lets the master stop its workers (SIGKILL would orphan them).
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
