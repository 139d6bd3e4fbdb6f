//! Shared by the benchmarks: the reference workload and a lokal server.
//!
//! The workload is deterministic (seeded): realistic lines of about 250
//! bytes (varied pids, trace ids and times, so compression is not flattered) — 70% pino-style JSON, 20% logfmt, 10% nginx access lines — over 100
//! streams, pushed as protobuf + snappy in ~1 MB batches. A few lines carry
//! the rare word `needle` for the substring-search benchmark.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message;

use lokal::proto;

/// xorshift64*: a small deterministic generator, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len() as u64) as usize]
    }
}

pub const STREAMS: usize = 100;
/// One line in this many carries `needle`.
pub const NEEDLE_EVERY: u64 = 1_000_000;

pub fn stream_labels(i: usize) -> String {
    let apps = ["api", "worker", "gateway", "billing", "web"];
    let envs = ["prod", "staging", "dev", "qa"];
    format!(
        r#"{{app="{}", env="{}", instance="i-{i:03}", job="bench/{}"}}"#,
        apps[i % apps.len()],
        envs[(i / apps.len()) % envs.len()],
        apps[i % apps.len()]
    )
}

/// Line `n` of stream `s` at time `ts_ms`.
pub fn line(rng: &mut Rng, n: u64, ts_ms: i64) -> String {
    let levels = ["info", "info", "info", "debug", "warn", "error"];
    let msgs = [
        "request completed",
        "user logged in",
        "cache miss, fetching from upstream",
        "payment authorised",
        "retrying connection to database",
        "job finished",
        "slow query detected",
    ];
    let paths = [
        "/api/v1/tasks/42",
        "/healthz",
        "/api/v1/users/me",
        "/static/app.js",
        "/api/v1/orders?page=3",
    ];
    let needle = if n % NEEDLE_EVERY == NEEDLE_EVERY / 2 {
        " needle"
    } else {
        ""
    };
    match rng.below(10) {
        0..=6 => format!(
            r#"{{"level":{},"time":{ts_ms},"pid":{},"hostname":"api-7f9c5d-{:05x}","reqId":"req-{:08x}","traceId":"{:016x}{:016x}","userId":"u-{:04}","msg":"{}{needle}","req":{{"method":"GET","url":"{}"}},"res":{{"statusCode":{}}},"responseTime":{}}}"#,
            [30, 30, 30, 20, 40, 50][rng.below(6) as usize],
            1000 + rng.below(30_000),
            rng.below(1 << 20),
            rng.next() as u32,
            rng.next(),
            rng.next(),
            rng.below(5000),
            rng.pick(&msgs),
            rng.pick(&paths),
            [200, 200, 200, 201, 404, 500][rng.below(6) as usize],
            rng.below(900)
        ),
        7 | 8 => format!(
            r#"ts={ts_ms} level={} caller=scheduler/loop.go:{} msg="{}{needle}" job_id=J-{:04} queue={} duration={}ms size={}KB attempt={} trace_id={:016x} span_id={:08x}"#,
            rng.pick(&levels),
            rng.below(400),
            rng.pick(&msgs),
            rng.below(10_000),
            rng.pick(&["default", "low", "high", "batch"]),
            rng.below(5000),
            rng.below(900),
            rng.below(5),
            rng.next(),
            rng.next() as u32
        ),
        _ => format!(
            r#"10.{}.{}.{} - - [22/Nov/2026:{:02}:{:02}:{:02} +0000] "GET {} HTTP/1.1" {} {} "https://shop.example.com/" "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36" rt={}.{:03}{needle}"#,
            rng.below(256),
            rng.below(256),
            rng.below(256),
            (ts_ms / 3_600_000) % 24,
            (ts_ms / 60_000) % 60,
            (ts_ms / 1000) % 60,
            rng.pick(&paths),
            [200, 200, 304, 404, 500][rng.below(5) as usize],
            rng.below(100_000),
            rng.below(3),
            rng.below(1000)
        ),
    }
}

/// Builds push bodies of about `batch_bytes` raw bytes each, for lines
/// `[from, to)` of the workload (line `n` belongs to stream `n % STREAMS`),
/// timestamps spread over the last hour before `now_ms`. Returns the snappy
/// protobuf bodies and the raw bytes they hold.
pub fn bodies(
    seed: u64,
    from: u64,
    to: u64,
    total: u64,
    now_ms: i64,
    batch_bytes: usize,
) -> Vec<(Bytes, usize)> {
    let mut rng = Rng::new(seed ^ from.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let span_ms = 3_600_000i64;
    let mut out = Vec::new();
    let mut streams: Vec<Vec<proto::EntryAdapter>> = (0..STREAMS).map(|_| Vec::new()).collect();
    let mut raw = 0usize;
    let flush = |streams: &mut Vec<Vec<proto::EntryAdapter>>,
                 raw: &mut usize,
                 out: &mut Vec<(Bytes, usize)>| {
        let req = proto::PushRequest {
            streams: streams
                .iter_mut()
                .enumerate()
                .filter(|(_, e)| !e.is_empty())
                .map(|(i, e)| proto::StreamAdapter {
                    labels: Bytes::from(stream_labels(i)),
                    entries: std::mem::take(e),
                    hash: 0,
                })
                .collect(),
            format: String::new(),
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .unwrap();
        out.push((Bytes::from(body), *raw));
        *raw = 0;
    };
    for n in from..to {
        let ts_ms = now_ms - span_ms + (n as i64 * span_ms) / total as i64;
        let l = line(&mut rng, n, ts_ms);
        raw += l.len();
        let ns = ts_ms * 1_000_000 + (n % 1_000_000) as i64;
        streams[(n % STREAMS as u64) as usize].push(proto::EntryAdapter {
            timestamp: Some(prost_types::Timestamp {
                seconds: ns / 1_000_000_000,
                nanos: (ns % 1_000_000_000) as i32,
            }),
            line: Bytes::from(l),
            structured_metadata: vec![],
            parsed: vec![],
        });
        if raw >= batch_bytes {
            flush(&mut streams, &mut raw, &mut out);
        }
    }
    if raw > 0 {
        flush(&mut streams, &mut raw, &mut out);
    }
    out
}

/// A running lokal (release build) on a fresh data directory.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub data: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    pub fn start(extra_yaml: &str) -> Server {
        let dir =
            tempfile::tempdir_in(std::env::var("LOKAL_BENCH_DIR").unwrap_or_else(|_| ".".into()))
                .unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let cfg = dir.path().join("bench.yaml");
        std::fs::write(
            &cfg,
            format!(
                "auth_enabled: false\nserver:\n  http_listen_port: 0\ncommon:\n  path_prefix: {}\nlimits_config:\n  ingestion_rate_mb: 100000\n  ingestion_burst_size_mb: 100000\n  per_stream_rate_limit: 100GB\n  per_stream_rate_limit_burst: 100GB\n  max_entries_limit_per_query: 100000\n  query_timeout: 10m\n{extra_yaml}",
                data.display()
            ),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_lokal"))
            .arg(format!("-config.file={}", cfg.display()))
            .env("LOKAL_LOG", "lokal=warn,lokal::server=info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && let Some(i) = l.find("listening on http://") {
                    let _ = tx.send(
                        l[i + 20..]
                            .split_whitespace()
                            .next()
                            .unwrap_or("")
                            .to_string(),
                    );
                    sent = true;
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("lokal did not start");
        Server {
            child,
            base: format!("http://{addr}"),
            data,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User + system CPU seconds the server has used (from /proc).
    pub fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
        let f: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        // Fields 14 and 15 (utime, stime) are at 11 and 12 after the name.
        (ticks(11) + ticks(12)) / 100.0
    }

    /// Peak resident set size in bytes (VmHWM).
    pub fn peak_rss(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    }

    pub fn disk_bytes(&self, sub: &str) -> u64 {
        dir_size(&self.data.join(sub))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn dir_size(p: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.filter_map(Result::ok)
        .map(|e| {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                dir_size(&e.path())
            } else {
                m.len()
            }
        })
        .sum()
}

/// Pushes every body with `clients` concurrent HTTP clients.
pub fn push_all(base: &str, bodies: Vec<(Bytes, usize)>, clients: usize) -> Duration {
    let t0 = Instant::now();
    let queue = std::sync::Arc::new(std::sync::Mutex::new(bodies));
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let q = queue.clone();
            let url = format!("{base}/loki/api/v1/push");
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(600))
                    .build()
                    .unwrap();
                loop {
                    let next = q.lock().unwrap().pop();
                    let Some((body, _)) = next else { break };
                    loop {
                        let r = client
                            .post(&url)
                            .header("Content-Type", "application/x-protobuf")
                            .body(body.clone())
                            .send()
                            .unwrap();
                        match r.status().as_u16() {
                            204 => break,
                            429 | 503 => std::thread::sleep(Duration::from_millis(50)),
                            s => panic!("push failed: {s} {}", r.text().unwrap_or_default()),
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    t0.elapsed()
}

/// Median of `runs` timings of `f`.
pub fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut v: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    v.sort();
    v[v.len() / 2]
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub fn lines_from_env(default: u64) -> u64 {
    std::env::var("LOKAL_BENCH_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Whether this binary was started by `cargo bench` (which passes
/// `--bench`). `cargo test --all-targets` and nextest also build and start
/// benchmark targets, as tests; a benchmark then does nothing (and lists no
/// tests) instead of loading millions of lines.
pub fn started_by_cargo_bench() -> bool {
    std::env::args().any(|a| a == "--bench")
}
