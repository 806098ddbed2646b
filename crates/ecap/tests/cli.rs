//! The `ecap` binary as a user runs it: commands, configuration layers,
//! start-up, graceful shutdown and logs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::Path,
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use ecap_core::{db::Backend, testing::TestDb};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_ecap");
const SECRET: &str = "cli-test-secret-0123456789abcdef";

#[path = "common/port.rs"]
mod port;
use port::free_port;

/// A command with a clean environment, run from `dir`.
fn ecap(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOST", "127.0.0.1")
        .env("LOG_LEVEL", "info")
        .current_dir(dir);
    c
}

struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(mut cmd: Command, port: u16) -> Self {
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ecap starts");
        let mut s = Server { child, port };
        s.wait_ready();
        s
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut err = String::new();
                if let Some(e) = self.child.stderr.as_mut() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("ecap exited early with {status}: {err}");
            }
            if http1::blocking_get(&self.url("/ready")).is_ok_and(|r| r == 200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("ecap did not become ready");
    }

    /// SIGTERM, then the exit status and everything the process logged.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let out = wait_with_timeout(&mut self.child, Duration::from_secs(15));
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process did not stop in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_end(&mut stdout);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_end(&mut stderr);
    }
    Output {
        status: child.try_wait().unwrap().unwrap(),
        stdout,
        stderr,
    }
}

/// A tiny blocking HTTP client, so these tests need no async runtime.
mod http1 {
    use super::*;

    pub fn blocking_get(url: &str) -> std::io::Result<u16> {
        request("GET", url, None, None).map(|(s, _, _)| s)
    }

    /// Returns (status, headers as lower-case text, body).
    pub fn request(
        method: &str,
        url: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> std::io::Result<(u16, String, String)> {
        let rest = url.strip_prefix("http://").unwrap_or(url);
        let (host, path) = rest
            .split_once('/')
            .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
        let mut stream = TcpStream::connect(host)?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        let payload = body.map(Value::to_string).unwrap_or_default();
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
        if let Some(t) = token {
            req.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        if body.is_some() {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                payload.len()
            ));
        }
        req.push_str("\r\n");
        req.push_str(&payload);
        stream.write_all(req.as_bytes())?;
        let mut raw = String::new();
        stream.read_to_string(&mut raw)?;
        parse(&raw)
    }

    pub fn parse(raw: &str) -> std::io::Result<(u16, String, String)> {
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("not HTTP: {raw:?}")))?;
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_owned()
        };
        Ok((status, head.to_ascii_lowercase(), body))
    }

    fn dechunk(mut s: &str) -> String {
        let mut out = String::new();
        while let Some((size, rest)) = s.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || rest.len() < n {
                break;
            }
            out.push_str(&rest[..n]);
            s = rest[n..].trim_start_matches("\r\n");
        }
        out
    }
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn register(server: &Server, email: &str) -> String {
    let (status, _, body) = http1::request(
        "POST",
        &server.url("/api/auth/register"),
        None,
        Some(&json!({ "name": "Cli User", "email": email, "password": "Secret1!" })),
    )
    .unwrap();
    assert_eq!(status, 201, "{body}");
    json_of(&body)["data"]["token"].as_str().unwrap().to_owned()
}

#[test]
fn help_reads_well() {
    let dir = tempfile::tempdir().unwrap();
    let out = ecap(dir.path()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for word in [
        "serve",
        "migrate",
        "users",
        "--data-dir",
        "--database-url",
        "--config",
    ] {
        assert!(text.contains(word), "--help lacks {word}:\n{text}");
    }
    let out = ecap(dir.path())
        .args(["users", "create-admin", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("standard input"), "{text}");
    assert!(!text.contains("--password"), "the password is never a flag");
}

#[test]
fn all_in_one_keeps_its_generated_secret_and_never_logs_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let start = || {
        let mut c = ecap(dir.path());
        c.args(["serve", "--data-dir", "data"])
            .env("PORT", port.to_string());
        Server::start(c, port)
    };
    let server = start();
    let token = register(&server, "cli@example.com");
    let secret = std::fs::read_to_string(dir.path().join("data/jwt_secret")).unwrap();
    assert_eq!(secret.trim().len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("data/jwt_secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the secret file is private");
    }
    assert!(dir.path().join("data/ecap.db").exists());
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
    assert!(log.contains("generated one"), "{log}");
    assert!(log.contains("stopped cleanly"), "{log}");

    // A restart keeps the secret: the token still works.
    let server = start();
    let (status, _, body) =
        http1::request("GET", &server.url("/api/auth/me"), Some(&token), None).unwrap();
    assert_eq!(status, 200, "{body}");
    let (_, log2) = server.stop();
    for text in [&log, &log2] {
        assert!(!text.contains(secret.trim()), "the JWT secret was logged");
        assert!(!text.contains("Secret1!"), "a password was logged");
        assert!(!text.contains(&token), "a token was logged");
    }
}

#[test]
fn shutdown_lets_in_flight_requests_finish() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut c = ecap(dir.path());
    c.args(["serve", "--data-dir", "data"])
        .env("PORT", port.to_string());
    let server = Server::start(c, port);
    let body = json!({ "name": "Late Comer", "email": "late@example.com", "password": "Secret1!" })
        .to_string();
    let (first, second) = body.split_at(10);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "POST /api/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{first}",
        body.len()
    )
    .unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pid = server.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // New connections are refused while the started request is still served.
    assert!(http1::blocking_get(&server.url("/health")).is_err());
    stream.write_all(second.as_bytes()).unwrap();
    let mut raw = String::new();
    let _ = stream.read_to_string(&mut raw);
    let (status, _, text) = http1::parse(&raw).unwrap();
    assert_eq!(status, 201, "{text}");
    let (exit, log) = server.stop();
    assert!(exit.success(), "{log}");
}

fn redis_url() -> String {
    std::env::var("ECAP_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// `serve --only <service>` with the secret and the shared Redis every split
/// process needs, under a key prefix of its own.
fn split_service(dir: &Path, only: &str, data: &str, prefix: &str, port: u16) -> Command {
    let mut c = ecap(dir);
    c.args(["serve", "--only", only, "--data-dir", data])
        .env("JWT_SECRET", SECRET)
        .env("INTERNAL_TOKEN", "cli-test-internal-token")
        .env("REDIS_URL", redis_url())
        .env("REDIS_KEY_PREFIX", prefix)
        .env("PORT", port.to_string());
    c
}

#[test]
fn the_split_users_service_needs_a_secret_and_a_revocation_source() {
    let dir = tempfile::tempdir().unwrap();
    let out = ecap(dir.path())
        .args(["serve", "--only", "users", "--data-dir", "d"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("JWT_SECRET"));
    // The service credential of /internal is required too.
    let out = ecap(dir.path())
        .args(["serve", "--data-dir", "d"])
        .env("ECAP_ONLY", "users")
        .env("JWT_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("INTERNAL_TOKEN"));

    // Without Redis a split service would never hear of logouts: it refuses to start.
    for only in ["users", "catalog"] {
        let out = ecap(dir.path())
            .args(["serve", "--only", only, "--data-dir", "d"])
            .env("JWT_SECRET", SECRET)
            .env("INTERNAL_TOKEN", "cli-test-internal-token")
            .output()
            .unwrap();
        assert!(!out.status.success(), "--only {only} started without Redis");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("REDIS_URL") && err.contains("revocation"),
            "{err}"
        );
    }

    let port = free_port();
    let prefix = format!("cli-{}:", uuid::Uuid::new_v4().simple());
    let server = Server::start(split_service(dir.path(), "users", "d", &prefix, port), port);
    let (status, head, body) = http1::request("GET", &server.url("/health"), None, None).unwrap();
    assert_eq!(status, 200);
    assert_eq!(json_of(&body)["service"], "user-service");
    let (status, _, body) = http1::request("GET", &server.url("/ready"), None, None).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body)["checks"]["revocations"], "up", "{body}");
    register(&server, "split@example.com");
    let (_, head2, _) = http1::request("GET", &server.url("/api/auth/me"), None, None).unwrap();
    assert!(
        !head.contains("\r\nx-ratelimit-limit:"),
        "probes are not limited"
    );
    assert!(
        head2.contains("\r\nx-ratelimit-limit:"),
        "a service reachable on its own port limits its callers: {head2}"
    );
    assert!(!dir.path().join("d/jwt_secret").exists());
    server.stop();
}

/// The container HEALTHCHECK: `ecap healthcheck` asks /ready on the port the
/// same settings make `serve` listen on (PORT, or --only's default), exit 0/1.
#[test]
fn healthcheck_asks_ready_on_the_serving_port() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut c = ecap(dir.path());
    c.args(["serve", "--data-dir", "d"])
        .env("PORT", port.to_string());
    let server = Server::start(c, port);

    // Same environment as the server: no flag needed.
    let out = ecap(dir.path())
        .arg("healthcheck")
        .env("PORT", port.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("/ready: 200") && said.contains("\"ready\""),
        "{said}"
    );

    // Another path, given as a flag.
    let out = ecap(dir.path())
        .args([
            "healthcheck",
            "--port",
            &port.to_string(),
            "--path",
            "health",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("/health: 200"));

    // A path that is not 200 fails, with the status said (under /api: the
    // dashboard answers every other unknown path with its page).
    let out = ecap(dir.path())
        .args([
            "healthcheck",
            "--port",
            &port.to_string(),
            "--path",
            "/api/nope",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("404"));
    server.stop();

    // Nothing listening: exit 1, saying where it asked.
    let out = ecap(dir.path())
        .args(["healthcheck", "--timeout", "2"])
        .env("PORT", port.to_string())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("127.0.0.1:{port}")),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // ECAP_ONLY is read like `serve --only`: an unknown service is a usage error.
    let out = ecap(dir.path())
        .arg("healthcheck")
        .env("ECAP_ONLY", "nonsense")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown service is a usage error"
    );
}

/// Issue 16 #2 and #4 across two split processes on one Redis: a logout at
/// the users service is refused by the catalog service at once; a caller on
/// the catalog's own port spends a budget; requests a trusted gateway forwards
/// are not counted twice, but login attempts are, whoever forwards them.
#[test]
fn split_services_share_revocations_and_limit_their_own_callers() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("cli-{}:", uuid::Uuid::new_v4().simple());
    let users_port = free_port();
    let mut users = split_service(dir.path(), "users", "u", &prefix, users_port);
    users
        .env("TRUSTED_PROXIES", "127.0.0.1/32")
        .env("RATE_LIMIT_MAX_REQUESTS", "3")
        .env("AUTH_RATE_LIMIT_MAX_REQUESTS", "3");
    let users = Server::start(users, users_port);
    let catalog_port = free_port();
    let mut catalog = split_service(dir.path(), "catalog", "c", &prefix, catalog_port);
    catalog.env("RATE_LIMIT_MAX_REQUESTS", "6");
    let catalog = Server::start(catalog, catalog_port);

    let token = register(&users, "shared@example.com");
    let product = json!({"name": "Lamp", "price": 10, "category": "Home", "stock": 1});
    let create = || {
        http1::request(
            "POST",
            &catalog.url("/api/products"),
            Some(&token),
            Some(&product),
        )
        .unwrap()
    };
    let (status, _, body) = create();
    assert_eq!(status, 403, "a customer's valid token, wrong role: {body}");
    let (status, _, body) =
        http1::request("POST", &users.url("/api/auth/logout"), Some(&token), None).unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = create();
    assert_eq!(status, 401, "the catalog heard of the logout: {body}");

    // The catalog's direct callers: 2 spent above, 4 left, then 429.
    let mut codes = Vec::new();
    for _ in 0..6 {
        let (status, _, _) =
            http1::request("GET", &catalog.url("/api/products"), None, None).unwrap();
        codes.push(status);
    }
    assert_eq!(codes, [200, 200, 200, 200, 429, 429]);

    // The users service trusts 127.0.0.1 as its gateway: its general budget of
    // 3 is not spent by what the gateway forwards…
    let fresh = {
        let (status, _, body) = http1::request(
            "POST",
            &users.url("/api/auth/login"),
            None,
            Some(&json!({"email": "shared@example.com", "password": "Secret1!"})),
        )
        .unwrap();
        assert_eq!(status, 200, "{body}");
        json_of(&body)["data"]["token"].as_str().unwrap().to_owned()
    };
    for _ in 0..8 {
        let (status, _, body) =
            http1::request("GET", &users.url("/api/auth/me"), Some(&fresh), None).unwrap();
        assert_eq!(status, 200, "{body}");
    }
    // …but login attempts spend the login budget (register + login above + 1 = 3).
    let attempt = || {
        http1::request(
            "POST",
            &users.url("/api/auth/login"),
            None,
            Some(&json!({"email": "shared@example.com", "password": "Wrong1!x"})),
        )
        .unwrap()
        .0
    };
    assert_eq!(attempt(), 401);
    assert_eq!(attempt(), 429);
    catalog.stop();
    users.stop();
}

#[test]
fn migrate_then_create_admin_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let out = ecap(dir.path())
        .args(["--data-dir", "data", "migrate"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("migrations applied"));

    let create = |email: &str, password: &str| {
        let mut child = ecap(dir.path())
            .args([
                "--data-dir",
                "data",
                "users",
                "create-admin",
                "--email",
                email,
                "--name",
                "The Boss",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        wait_with_timeout(&mut child, Duration::from_secs(30))
    };
    let weak = create("boss@example.com", "weak");
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("Password must"));
    let ok = create("Boss@Example.com", "Boss1!pass");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("<boss@example.com>"));
    let again = create("boss@example.com", "Boss1!pass");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let port = free_port();
    let mut c = ecap(dir.path());
    c.args(["serve", "--data-dir", "data"])
        .env("PORT", port.to_string())
        .env("JWT_SECRET", SECRET);
    let server = Server::start(c, port);
    let (status, _, body) = http1::request(
        "POST",
        &server.url("/api/auth/login"),
        None,
        Some(&json!({ "email": "boss@example.com", "password": "Boss1!pass" })),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body)["data"]["user"]["role"], "admin");
    // With an admin present, registration can no longer claim the role.
    let (status, _, _) = http1::request(
        "POST",
        &server.url("/api/auth/register"),
        None,
        Some(&json!({ "name": "Eve", "email": "eve@example.com", "password": "Secret1!", "role": "admin" })),
    )
    .unwrap();
    assert_eq!(status, 403);
    server.stop();
}

/// `ecap serve` on `dir/data` with JSON logs.
fn serve_with_json_logs(dir: &Path) -> Server {
    let port = free_port();
    let mut c = ecap(dir);
    c.args(["serve", "--data-dir", "data"])
        .env("PORT", port.to_string())
        .env("LOG_FORMAT", "json")
        .env("JWT_SECRET", SECRET);
    Server::start(c, port)
}

/// A fresh shop prints a setup token in its log (never an admin for whoever
/// comes first, S4); the token makes one admin, once; once an admin exists,
/// later starts print none.
#[test]
fn a_fresh_shop_logs_a_setup_token_for_the_first_admin() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve_with_json_logs(dir.path());
    let stderr = server.child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let token = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("a setup token in the log");
        if let Ok(v) = serde_json::from_str::<Value>(&line)
            && let Some(t) = v["setup_token"].as_str()
        {
            assert_eq!(v["level"], "WARN", "{line}");
            break t.to_owned();
        }
    };
    assert!(token.len() >= 32, "{token}");
    let register = |email: &str, token: Option<&str>| {
        let mut body = json!({ "name": "First Admin", "email": email, "password": "Secret1!", "role": "admin" });
        if let Some(t) = token {
            body["setupToken"] = json!(t);
        }
        let (status, _, body) =
            http1::request("POST", &server.url("/api/auth/register"), None, Some(&body)).unwrap();
        (status, json_of(&body))
    };
    let (status, body) = register("eve@example.com", None);
    assert_eq!(status, 403, "{body}");
    let (status, body) = register(
        "eve@example.com",
        Some("0123456789abcdef0123456789abcdef01234567"),
    );
    assert_eq!(status, 403, "{body}");
    let (status, body) = register("owner@example.com", Some(&token));
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["user"]["role"], "admin");
    let (status, body) = register("second@example.com", Some(&token));
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("an admin already exists")
    );
    server.stop();

    let server = serve_with_json_logs(dir.path());
    let (status, _, _) = http1::request(
        "POST",
        &server.url("/api/auth/register"),
        None,
        Some(
            &json!({ "name": "Eve", "email": "eve@example.com", "password": "Secret1!",
            "role": "admin", "setupToken": token }),
        ),
    )
    .unwrap();
    assert_eq!(status, 403);
    let (_, log) = server.stop();
    assert!(!log.contains("setup_token"), "{log}");
    assert!(!log.contains(&token), "{log}");
}

#[test]
fn configuration_layers_file_then_env_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (free_port(), free_port(), free_port());
    std::fs::write(
        dir.path().join("ecap.toml"),
        format!("port = {a}\njwt_secret = \"{SECRET}\"\necap_data_dir = \"from-file\"\n"),
    )
    .unwrap();
    let server = Server::start(
        {
            let mut cmd = ecap(dir.path());
            cmd.arg("serve");
            cmd
        },
        a,
    );
    server.stop();
    assert!(dir.path().join("from-file/ecap.db").exists());
    assert!(
        !dir.path().join("from-file/jwt_secret").exists(),
        "the file's secret was used"
    );
    std::fs::write(dir.path().join(".env"), format!("PORT={b}\n")).unwrap();
    let server = Server::start(
        {
            let mut cmd = ecap(dir.path());
            cmd.arg("serve");
            cmd
        },
        b,
    );
    server.stop();
    let server = Server::start(
        {
            let mut cmd = ecap(dir.path());
            cmd.args(["serve", "--port", &c.to_string()]);
            cmd
        },
        c,
    );
    server.stop();
    // A broken value fails fast with the setting's name.
    let out = ecap(dir.path())
        .arg("serve")
        .env("RATE_LIMIT_MAX_REQUESTS", "lots")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .to_lowercase()
            .contains("rate_limit_max_requests")
    );
}

#[test]
fn json_logs_carry_the_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with_json_logs(dir.path());
    http1::request("GET", &server.url("/api/nothing"), None, None).unwrap();
    let (_, log) = server.stop();
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(!lines.is_empty(), "{log}");
    let finished = lines
        .iter()
        .find(|l| l["message"] == "request finished" && l["span"]["path"] == "/api/nothing")
        .unwrap_or_else(|| panic!("{log}"));
    assert_eq!(finished["status"], 404);
    assert!(
        finished["span"]["request_id"]
            .as_str()
            .is_some_and(|id| id.len() >= 32)
    );
}

/// The binary on the server databases: PostgreSQL by URL, MariaDB by the
/// original's DB_* variables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_on_postgres_and_on_mariadb_from_the_original_variables() {
    let pg = TestDb::create(Backend::Postgres).await;
    let my = TestDb::create(Backend::MySql).await;
    let my_name = my.url.expose().rsplit('/').next().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let (p1, p2) = (free_port(), free_port());
    let pg_url = pg.url.expose().to_owned();
    let root = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut c = ecap(&root);
        c.args(["serve", "--data-dir", "d1"])
            .env("DATABASE_URL", &pg_url)
            .env("JWT_SECRET", SECRET)
            .env("PORT", p1.to_string());
        let server = Server::start(c, p1);
        register(&server, "pg@example.com");
        assert!(server.stop().0.success());

        let mut c = ecap(&root);
        c.args(["serve", "--data-dir", "d2"])
            .env("DB_HOST", "127.0.0.1")
            .env("DB_PORT", "3306")
            .env("DB_USER", "root")
            .env("DB_NAME", &my_name)
            .env("JWT_SECRET", SECRET)
            .env("PORT", p2.to_string());
        let server = Server::start(c, p2);
        register(&server, "maria@example.com");
        assert!(server.stop().0.success());
        assert!(
            !root.join("d2/ecap.db").exists(),
            "MariaDB, not SQLite, was used"
        );
    })
    .await
    .unwrap();
}

#[test]
fn the_readme_curl_examples_work_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let block = readme
        .split("<!-- curl-examples:start -->")
        .nth(1)
        .and_then(|s| s.split("<!-- curl-examples:end -->").next())
        .expect("README has the curl examples block");
    let script: String = block
        .lines()
        .filter(|l| !l.starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut c = ecap(dir.path());
    c.args(["serve", "--demo"]).env("PORT", port.to_string());
    let server = Server::start(c, port);
    let script = script.replace("http://localhost:8000", &format!("http://127.0.0.1:{port}"));
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(r#""message":"User registered successfully""#),
        "{text}"
    );
    assert!(text.contains(r#""email":"jane@example.com""#), "{text}");
    assert!(
        text.contains(r#""message":"Address added successfully""#),
        "{text}"
    );
    assert!(text.contains(r#""message":"Logout successful""#), "{text}");
    // The catalog part: the demo catalog answers the search, the ledger has the entry.
    assert!(
        text.contains(r#""pagination":{"page":1,"limit":2,"#),
        "{text}"
    );
    assert!(
        text.contains(r#""categories":["electronics","clothing""#),
        "{text}"
    );
    assert!(
        text.contains(r#""message":"Inventory updated successfully""#),
        "{text}"
    );
    assert!(text.contains(r#""reason":"damaged in transit""#), "{text}");
    // The orders part: placed, one step on, the timeline, a refused jump.
    assert!(
        text.contains(r#""message":"Order status updated to processing""#),
        "{text}"
    );
    assert!(text.contains(r#""label":"Processing""#), "{text}");
    assert!(text.contains("Allowed next: shipped, cancelled"), "{text}");
    // The analytics part: the dashboard counts the order just placed (and the
    // demo history), the series has 7 days, the CSV its header.
    assert!(text.contains(r#""totalOrders":"#), "{text}");
    assert!(
        text.contains(r#""kpis":{"aov":{"changePercent":"#),
        "{text}"
    );
    assert!(
        text.contains(r#""period":"7d","granularity":"day","timezone":"Asia/Kolkata""#),
        "{text}"
    );
    assert!(
        text.contains("rank,product_id,orders,units,units_sold,gross_sales,net_revenue"),
        "{text}"
    );

    // The README's demo accounts exist after --demo.
    for (email, password, role) in [
        ("admin@demo.ecap.local", "Admin123!", "admin"),
        ("customer@demo.ecap.local", "Customer123!", "customer"),
    ] {
        assert!(readme.contains(email) && readme.contains(password));
        let (status, _, body) = http1::request(
            "POST",
            &server.url("/api/auth/login"),
            None,
            Some(&json!({ "email": email, "password": password })),
        )
        .unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(json_of(&body)["data"]["user"]["role"], role);
    }
    server.stop();
}

/// `ecap seed` writes the same catalog for the same seed, adds after what is
/// there on a second run, and `serve --only catalog` serves it.
#[test]
fn seed_is_deterministic_and_the_catalog_serves_alone() {
    let dir = tempfile::tempdir().unwrap();
    // One shared cache namespace per data directory, as two shops would have.
    let run = uuid::Uuid::new_v4().simple().to_string();
    let prefix = |data: &str| format!("cli-{run}-{data}:");
    let names = |data: &str| -> (Vec<String>, i64) {
        let port = free_port();
        let c = split_service(dir.path(), "catalog", data, &prefix(data), port);
        let server = Server::start(c, port);
        let (status, _, body) = http1::request(
            "GET",
            &server.url("/api/products?limit=100&sort=name"),
            None,
            None,
        )
        .unwrap();
        assert_eq!(status, 200, "{body}");
        let body = json_of(&body);
        let (stopped, _) = server.stop();
        assert!(stopped.success());
        let names = body["data"]["products"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect();
        (names, body["data"]["pagination"]["total"].as_i64().unwrap())
    };
    for data in ["a", "b"] {
        let out = ecap(dir.path())
            .args([
                "seed",
                "--products",
                "40",
                "--seed",
                "3",
                "--data-dir",
                data,
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("seeded 40 products (seed 3)"), "{text}");
    }
    let (a, total_a) = names("a");
    let (b, _) = names("b");
    assert_eq!(total_a, 40);
    assert_eq!(a, b, "same seed, same catalog");
    // Seeding while the catalog's shared cache holds the list: served at once.
    let out = ecap(dir.path())
        .args(["seed", "--products", "5", "--seed", "3", "--data-dir", "a"])
        .env("REDIS_URL", redis_url())
        .env("REDIS_KEY_PREFIX", prefix("a"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(names("a").1, 45, "a second run adds new products");
}

/// `ecap seed --orders` then `ecap analytics verify` agrees; a tampered
/// aggregate is reported (exit 1) until `ecap analytics rebuild`.
#[test]
fn analytics_verify_finds_differences_and_rebuild_repairs_them() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = ecap(dir.path()).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = run(&["seed", "--products", "20", "--orders", "400", "--seed", "3"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = run(&["analytics", "verify"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("every aggregate matches"), "{out}");
    let url = format!(
        "sqlite://{}",
        dir.path().join("data").join("ecap.db").display()
    );
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let db = ecap_core::db::Db::connect(&ecap_core::config::Secret::new(url), 1)
            .await
            .unwrap();
        let n = sqlx::query("UPDATE analytics_cells SET units = units + 1 WHERE dim = 4")
            .execute(db.pool())
            .await
            .unwrap()
            .rows_affected();
        assert!(n > 0);
        db.close().await;
    });
    let (code, out, _) = run(&["analytics", "verify"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("cell (4, "), "{out}");
    let (code, _, err) = run(&["analytics", "rebuild"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("analytics rebuilt from 400 orders"), "{err}");
    let (code, out, err) = run(&["analytics", "verify"]);
    assert_eq!(code, Some(0), "{out}{err}");
}
