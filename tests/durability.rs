//! Durability: every acknowledged push survives `kill -9`, exactly once.
//!
//! Each scenario pushes distinct lines, records which pushes were answered
//! 204, kills the server with SIGKILL at some point of a chunk's life, starts
//! it again on the same data directory, and reads everything back: every
//! acknowledged line must be there exactly once, and no line may appear
//! twice. Small chunk and block sizes make the server cut and flush chunks
//! constantly, so kills land mid-batch, mid-cut and mid-flush.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Lokal, client};

const BASE_NS: i64 = 1_700_000_000_000_000_000;

fn config() -> &'static str {
    // Tiny chunks and blocks: cuts and flushes happen during the pushes.
    "  max_entries_limit_per_query: 1000000\n  ingestion_rate_mb: 1000\n  ingestion_burst_size_mb: 1000\n  per_stream_rate_limit: 1GB\n  per_stream_rate_limit_burst: 1GB\ningester:\n  chunk_target_size: 4000\n  chunk_block_size: 1500\n  chunk_idle_period: 1s\n  flush_check_period: 100ms\n"
}

/// Pushes one JSON batch; returns whether it was acknowledged (204).
fn push(base: &str, stream: &str, lines: &[(i64, String)]) -> bool {
    let values: Vec<String> = lines
        .iter()
        .map(|(ts, l)| format!(r#"["{ts}",{}]"#, serde_json::to_string(l).unwrap()))
        .collect();
    let body = format!(
        r#"{{"streams":[{{"stream":{{"app":"{stream}"}},"values":[{}]}}]}}"#,
        values.join(",")
    );
    let resp = client()
        .post(format!("{base}/loki/api/v1/push"))
        .header("Content-Type", "application/json")
        .header("X-Scope-OrgID", "t")
        .timeout(Duration::from_secs(10))
        .body(body)
        .send();
    matches!(resp, Ok(r) if r.status().as_u16() == 204)
}

/// Every line of tenant `t` that `query` selects in `[start, end]` (at most
/// `limit`), oldest first.
fn query_range(l: &Lokal, query: &str, start: i64, end: i64, limit: usize) -> Vec<(i64, String)> {
    let resp = client()
        .get(l.url("/loki/api/v1/query_range"))
        .header("X-Scope-OrgID", "t")
        .query(&[
            ("query", query),
            ("start", &start.to_string()),
            ("end", &end.to_string()),
            ("limit", &limit.to_string()),
            ("direction", "forward"),
        ])
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let v: serde_json::Value = resp.json().unwrap();
    let mut out = Vec::new();
    for s in v["data"]["result"].as_array().unwrap() {
        for e in s["values"].as_array().unwrap() {
            let ts: i64 = e[0].as_str().unwrap().parse().unwrap();
            out.push((ts, e[1].as_str().unwrap().to_string()));
        }
    }
    out.sort();
    out
}

/// Every line of tenant `t`, with how many times each was returned.
fn read_all(l: &Lokal) -> HashMap<String, usize> {
    let (start, end) = (BASE_NS - 1, BASE_NS + 3_600_000_000_000);
    let mut out: HashMap<String, usize> = HashMap::new();
    for (_, line) in query_range(l, r#"{app=~".+"}"#, start, end, 1_000_000) {
        *out.entry(line).or_default() += 1;
    }
    out
}

/// Runs `writers` threads pushing batches to `streams` until stopped;
/// returns the acknowledged lines.
fn pushers(
    base: String,
    phase: &str,
    writers: usize,
    streams: &[&str],
    stop: Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<Vec<String>>> {
    let offset = if phase == "p1" { 0 } else { 1_800_000_000_000 };
    (0..writers)
        .map(|w| {
            let base = base.clone();
            let streams: Vec<String> = streams.iter().map(|s| s.to_string()).collect();
            let stop = stop.clone();
            let phase = phase.to_string();
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                let mut batch = 0i64;
                while !stop.load(Ordering::Relaxed) {
                    let stream = &streams[batch as usize % streams.len()];
                    // Out of order on purpose: writers interleave timestamps.
                    let lines: Vec<(i64, String)> = (0..20)
                        .map(|i| {
                            let ts = BASE_NS + offset + (batch * 20 + i) * 1_000_000 + w as i64;
                            (ts, format!("{phase} w{w} b{batch} i{i} {}", "x".repeat(40)))
                        })
                        .collect();
                    if push(&base, stream, &lines) {
                        acked.extend(lines.into_iter().map(|(_, l)| l));
                    }
                    batch += 1;
                }
                acked
            })
        })
        .collect()
}

fn check(l: &Lokal, acked: &[String]) {
    let found = read_all(l);
    let dup: Vec<(&String, &usize)> = found.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        dup.is_empty(),
        "{} lines returned more than once, e.g. {:?}",
        dup.len(),
        dup.first()
    );
    let missing: Vec<&String> = acked.iter().filter(|a| !found.contains_key(*a)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged lines lost, e.g. {:?}",
        missing.len(),
        acked.len(),
        missing.first()
    );
}

/// Pushes concurrently, kills -9 after `kill_after`, restarts, checks.
fn crash_scenario(writers: usize, streams: &[&str], kill_after: Duration, flush_first: bool) {
    let l = Lokal::start(config());
    let mut acked: Vec<String> = Vec::new();
    if flush_first {
        let stop = Arc::new(AtomicBool::new(false));
        let hs = pushers(l.base.clone(), "p1", writers, streams, stop.clone());
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        for h in hs {
            acked.extend(h.join().unwrap());
        }
        let r = client().post(l.url("/flush")).send().unwrap();
        assert_eq!(r.status().as_u16(), 204);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let hs = pushers(l.base.clone(), "p2", writers, streams, stop.clone());
    std::thread::sleep(kill_after);
    let mut l = l;
    l.kill9();
    stop.store(true, Ordering::Relaxed);
    for h in hs {
        acked.extend(h.join().unwrap());
    }
    assert!(
        !acked.is_empty(),
        "nothing was acknowledged before the kill"
    );
    let l = l.restart();
    check(&l, &acked);
    // A second crash right after replay loses nothing either.
    let l = l.restart();
    check(&l, &acked);
}

#[test]
fn kill9_mid_batch_single_writer() {
    crash_scenario(1, &["a"], Duration::from_millis(700), false);
}

#[test]
fn kill9_after_flush() {
    crash_scenario(2, &["a", "b"], Duration::from_millis(500), true);
}

#[test]
fn kill9_during_chunk_cuts_with_concurrent_writers_on_the_same_streams() {
    // Loki loses acknowledged entries here: it appends to its WAL after
    // releasing the stream lock, so replay can see two requests out of order.
    for kill_ms in [150u64, 400, 900] {
        crash_scenario(4, &["shared"], Duration::from_millis(kill_ms), false);
    }
}

/// Pushes 50 lines to `stream`, stops lokal with `stop` (a signal and the
/// wait for its exit): it exits cleanly with everything in chunks.
fn graceful_shutdown_case(stream: &str, stop: impl FnOnce(&mut Lokal) -> ExitStatus) {
    let mut l = Lokal::start(config());
    let lines: Vec<(i64, String)> = (0..50)
        .map(|i| (BASE_NS + i, format!("{stream} {i}")))
        .collect();
    assert!(push(&l.base, stream, &lines));
    let status = stop(&mut l);
    assert!(status.success(), "exit status {status}:\n{}", l.logs());
    assert!(l.logs().contains("shutdown complete"), "{}", l.logs());
    // The WAL holds nothing to replay: everything went into chunks.
    let l = l.restart();
    assert!(l.logs().contains("replayed_entries=0"), "{}", l.logs());
    let found = read_all(&l);
    assert_eq!(found.len(), 50);
}

#[test]
fn graceful_shutdown_flushes_heads_to_chunks() {
    graceful_shutdown_case("graceful", Lokal::terminate);
}

#[test]
fn graceful_shutdown_on_sigint_flushes_heads_to_chunks() {
    graceful_shutdown_case("interrupted", |l| {
        let pid = l.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(s) = l.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "lokal did not exit after SIGINT:\n{}",
                l.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    });
}

/// Threads of the server process (`Threads:` of /proc/<pid>/status).
fn threads(l: &Lokal) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{}/status", l.child.id())).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}

/// Every line of `{app=<app>}` in `[start, end]`, oldest first.
fn lines_of(l: &Lokal, app: &str, start: i64, end: i64) -> Vec<(i64, String)> {
    query_range(l, &format!(r#"{{app="{app}"}}"#), start, end, 1000)
}

/// Regression (issue 2 audit): one push spanning decades made a chunk that
/// overlapped thousands of day partitions; indexing it opened a tantivy
/// writer (threads, 15 MB budget) per day, flush failed forever and WAL
/// replay did the same after a restart. Chunks now hold one UTC day and
/// index writers are bounded.
#[test]
fn a_push_spanning_decades_flushes_and_restarts_with_bounded_threads() {
    const DAY_NS: i64 = 86_400_000_000_000;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let span = |app: &str| -> Vec<(i64, String)> {
        // Oldest first: the out-of-order window follows the newest entry.
        vec![
            (1_000_000_000_000_000_000, format!("{app} from 2001")),
            (now - 2 * 365 * DAY_NS, format!("{app} two years ago")),
            (now - 365 * DAY_NS, format!("{app} a year ago")),
            (now - 60_000_000_000, format!("{app} now")),
        ]
    };
    let l = Lokal::start("  max_query_length: 0\n");
    assert!(push(&l.base, "span", &span("span")));
    let r = client().post(l.url("/flush")).send().unwrap();
    assert_eq!(r.status().as_u16(), 204, "{}", l.logs());
    let after_flush = threads(&l);
    assert!(after_flush < 200, "{after_flush} threads after /flush");
    // A second span stays only in the WAL: the restart replays it.
    assert!(push(&l.base, "wal", &span("wal")));
    let l = l.restart();
    let after_restart = threads(&l);
    assert!(after_restart < 200, "{after_restart} threads after restart");
    let (start, end) = (1_000_000_000_000_000_000 - 1, now + 1);
    assert_eq!(lines_of(&l, "span", start, end), span("span"));
    assert_eq!(lines_of(&l, "wal", start, end), span("wal"));
    let r = client().post(l.url("/flush")).send().unwrap();
    assert_eq!(r.status().as_u16(), 204, "{}", l.logs());
    let l = l.restart();
    assert!(threads(&l) < 200, "{} threads", threads(&l));
    assert_eq!(lines_of(&l, "span", start, end), span("span"));
    assert_eq!(lines_of(&l, "wal", start, end), span("wal"));
    // One index partition per day with data, not one per day spanned.
    let days = std::fs::read_dir(l.data.join("index/t"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(days <= 5, "{days} index partitions");
}
