//! A free TCP port for a server a test starts as a separate process.
//!
//! Taken below the kernel's ephemeral range (32768–60999 here): a port that
//! `bind(0)` handed out and gave back is soon handed to another test's
//! `bind(0)` or to an outgoing connection (every database and HTTP client
//! takes its local port from that range), and the test would then talk to a
//! stranger. Below the range only another test's pick can collide, and the
//! pick is random over ~12,000 ports and checked bindable.

pub fn free_port() -> u16 {
    use rand::Rng;
    let mut rng = rand::rng();
    for _ in 0..200 {
        let port: u16 = rng.random_range(20_000..32_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}
