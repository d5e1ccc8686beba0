//! Redis for tests: the shared server at `REDIS_URL` (default `redis://127.0.0.1:6379`), or a
//! private `redis-server` started on a free port when nothing answers there; and
//! [`PrivateRedis`], a server of the test's own that fault tests may stop and restart (never
//! the shared one). Nothing is ever skipped: without Redis these helpers panic saying what to
//! install.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Whether a Redis server answers `PING` at `host:port`.
#[must_use]
pub fn answers(addr: &str) -> bool {
    let Ok(addrs) = std::net::ToSocketAddrs::to_socket_addrs(addr) else {
        return false;
    };
    for a in addrs {
        if let Ok(mut s) = TcpStream::connect_timeout(&a, Duration::from_millis(300)) {
            let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
            if s.write_all(b"PING\r\n").is_err() {
                continue;
            }
            let mut buf = [0u8; 7];
            if s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n" {
                return true;
            }
        }
    }
    false
}

fn host_port(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let rest = rest.rsplit('@').next().unwrap_or(rest);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

/// The URL of the Redis the tests share: `REDIS_URL` if it answers, else a private server
/// started once per test binary. Panics when neither is possible.
pub fn shared_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    static PRIVATE: OnceLock<std::sync::Mutex<Option<PrivateRedis>>> = OnceLock::new();
    URL.get_or_init(|| {
        let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        if answers(&host_port(&url)) {
            return url;
        }
        let private = PrivateRedis::start();
        let url = private.url();
        // Kept for the life of the test binary (the process exit kills it: see Drop).
        let _ = PRIVATE.set(std::sync::Mutex::new(Some(private)));
        url
    })
    .clone()
}

/// A unique key prefix for one test, so parallel tests never collide on the shared Redis.
#[must_use]
pub fn unique_prefix(test: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("authpi-test:{test}:{}:{n}:", std::process::id())
}

/// A `redis-server` of this test only, on a free loopback port, persisting every write to an
/// append-only file in a temporary directory (`appendfsync always`), so a killed and restarted
/// server keeps its data like a production one would. Dropping it kills the server and
/// removes the directory.
#[derive(Debug)]
pub struct PrivateRedis {
    port: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts a server on a free port and waits until it answers.
    pub fn start() -> PrivateRedis {
        let port = TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("no free port");
        let dir = std::env::temp_dir().join(format!("authpi-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let mut r = PrivateRedis {
            port,
            dir,
            child: None,
        };
        r.restart();
        r
    }

    /// `redis://127.0.0.1:PORT`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (a crash: no shutdown handshake).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, with the data it had.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "no Redis at REDIS_URL and `redis-server` could not be started ({e}): \
                     install Redis (Debian: apt-get install redis-server) or set REDIS_URL"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !answers(&format!("127.0.0.1:{}", self.port)) {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
