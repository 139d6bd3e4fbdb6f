//! Shared integration-test harness: starts the real `lokal` binary on an
//! ephemeral port with a temporary data directory, and talks HTTP to it.
#![allow(dead_code, clippy::unwrap_used)]

pub mod weed;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running lokal process.
pub struct Lokal {
    pub child: Child,
    pub base: String,
    pub data: PathBuf,
    pub config_path: PathBuf,
    _dir: Option<tempfile::TempDir>,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// A config for tests: multi-tenant like the conformance recording, old
/// samples accepted, everything else Loki's defaults.
pub fn test_config(data: &Path, extra: &str) -> String {
    format!(
        "auth_enabled: true\nserver:\n  http_listen_address: 127.0.0.1\n  http_listen_port: 0\n  log_level: info\ncommon:\n  path_prefix: {}\nlimits_config:\n  reject_old_samples: false\n{extra}",
        data.display()
    )
}

impl Lokal {
    /// Starts lokal with `test_config` plus `extra` YAML appended.
    pub fn start(extra: &str) -> Lokal {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut l = Self::start_in(&data, &test_config(&data, extra));
        l._dir = Some(dir);
        l
    }

    /// Starts lokal on an existing data directory with a full config text.
    pub fn start_in(data: &Path, config: &str) -> Lokal {
        std::fs::create_dir_all(data).unwrap();
        let config_path = data.join("lokal-test.yaml");
        std::fs::write(&config_path, config).unwrap();
        Self::spawn(data, &config_path, &[])
    }

    pub fn spawn(data: &Path, config_path: &Path, extra_args: &[&str]) -> Lokal {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lokal"));
        cmd.arg(format!("-config.file={}", config_path.display()))
            .args(extra_args)
            .env("LOKAL_LOG", "lokal=info,warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("starting lokal");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if !sent && let Some(i) = line.find("lokal listening on http://") {
                    let addr = line[i + "lokal listening on http://".len()..]
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_string();
                    let _ = tx.send(addr);
                    sent = true;
                }
                log2.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(a) => break a,
                Err(_) if Instant::now() > deadline => {
                    panic!("lokal did not start:\n{}", log.lock().unwrap().join("\n"))
                }
                Err(_) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!(
                            "lokal exited with {status}:\n{}",
                            log.lock().unwrap().join("\n")
                        );
                    }
                }
            }
        };
        Lokal {
            child,
            base: format!("http://{addr}"),
            data: data.to_path_buf(),
            config_path: config_path.to_path_buf(),
            _dir: None,
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn logs(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// `kill -9`: no shutdown, no flush.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s;
            }
            if Instant::now() > deadline {
                panic!("lokal did not exit after SIGTERM:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Restarts on the same data directory and config (after a kill).
    pub fn restart(mut self) -> Lokal {
        self.kill9();
        let dir = self._dir.take();
        let mut l = Self::spawn(&self.data, &self.config_path, &[]);
        l._dir = dir;
        l
    }
}

impl Drop for Lokal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking HTTP client with a tenant header.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// POSTs `body` to `/loki/api/v1/push` as JSON for `tenant` (none when
/// empty).
pub fn post_push(l: &Lokal, tenant: &str, body: &serde_json::Value) -> reqwest::blocking::Response {
    let mut req = client()
        .post(l.url("/loki/api/v1/push"))
        .header("Content-Type", "application/json");
    if !tenant.is_empty() {
        req = req.header("X-Scope-OrgID", tenant);
    }
    req.body(body.to_string()).send().unwrap()
}

/// [`post_push`], asserting Loki's 204.
pub fn push_json(l: &Lokal, tenant: &str, body: &serde_json::Value) {
    let r = post_push(l, tenant, body);
    assert_eq!(r.status().as_u16(), 204, "{}", r.text().unwrap());
}
