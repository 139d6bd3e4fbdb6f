//! Ingest benchmark: the reference workload pushed into a real lokal.
//!
//! Measures, for `LOKAL_BENCH_LINES` lines (default 10 million, ~250 bytes,
//! 70% pino JSON / 20% logfmt / 10% nginx, 100 streams), pushed as
//! protobuf + snappy in ~1 MB batches by 4 concurrent clients, with the WAL
//! fsynced before every acknowledgement:
//! - lines per server CPU-second (user + system time of the server process,
//!   including flushing every chunk to disk at the end);
//! - wall-clock throughput;
//! - peak resident memory of the server;
//! - raw bytes / bytes on disk (chunks + index).
//!
//! Run: `cargo bench --bench ingest` (`LOKAL_BENCH_LINES=1000000` for a quick run).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Instant;

use common::*;

fn main() {
    if !started_by_cargo_bench() {
        return;
    }
    let total = lines_from_env(10_000_000);
    let now = now_ms();
    let gen_start = Instant::now();
    // Generate the bodies up front (two threads) so the clients spend no CPU
    // while the server is measured.
    let half = total / 2;
    let h = std::thread::spawn(move || bodies(42, 0, half, total, now, 1 << 20));
    let mut all = bodies(42, half, total, total, now, 1 << 20);
    all.extend(h.join().unwrap());
    let raw: usize = all.iter().map(|(_, r)| r).sum();
    let wire: usize = all.iter().map(|(b, _)| b.len()).sum();
    println!(
        "workload: {total} lines, {:.2} GB raw, {} bodies, {:.2} GB on the wire (generated in {:.1?})",
        raw as f64 / 1e9,
        all.len(),
        wire as f64 / 1e9,
        gen_start.elapsed()
    );

    let server = Server::start("");
    let cpu0 = server.cpu_seconds();
    let wall = push_all(&server.base, all, 4);
    let cpu_push = server.cpu_seconds() - cpu0;
    let t = Instant::now();
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/flush", server.base))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 204, "flush failed");
    let flush = t.elapsed();
    let cpu_total = server.cpu_seconds() - cpu0;
    let chunks = server.disk_bytes("chunks");
    let index = server.disk_bytes("index");
    let wal = server.disk_bytes("wal");

    println!(
        "push (4 clients, fsync before every 204): {wall:.2?} wall, {:.0} lines/s",
        total as f64 / wall.as_secs_f64()
    );
    println!("flush of every head to chunks at the end: {flush:.2?}");
    println!(
        "server CPU: {cpu_push:.1} s during the push, {cpu_total:.1} s with the final flush -> {:.0} lines per server CPU-second",
        total as f64 / cpu_total
    );
    println!(
        "server peak RSS: {:.0} MiB",
        server.peak_rss() as f64 / (1 << 20) as f64
    );
    println!(
        "disk: chunks {:.1} MB, index {:.1} MB, WAL {:.1} MB; raw / (chunks + index) = {:.2}x",
        chunks as f64 / 1e6,
        index as f64 / 1e6,
        wal as f64 / 1e6,
        raw as f64 / (chunks + index) as f64
    );
}
