//! Log pattern detection for `/loki/api/v1/patterns`: Loki's Drain, run at
//! query time over the selected lines instead of in a pattern ingester.
//!
//! Owns: [`drain`] (the clustering), [`tokenize`] (line tokenizers and
//! pattern text), [`StreamPatterns`] (the Drains of one stream, one per
//! level, with the stream's format guessed from the first line it sees) and
//! [`PatternMerger`] (cluster samples cut to the query range, re-bucketed by
//! step with Loki's zero filling, and summed across streams per pattern and
//! level).
//!
//! Does not own: reading lines (the API feeds lines the query engine
//! selected), JSON encoding.
//!
//! Invariants: pure and synchronous, no I/O; memory is bounded by the
//! cluster cap of each Drain (300) and the number of streams fed.

pub mod drain;
pub mod tokenize;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

pub use drain::{Cluster, Drain, DrainConfig, TIME_RESOLUTION_MS};
pub use tokenize::LogFormat;

use crate::model::Timestamp;

/// Level of lines without `detected_level` structured metadata.
pub const UNKNOWN_LEVEL: &str = "unknown";

/// Loki's pattern sample chunks span at most one hour; samples are zero
/// filled between steps within a chunk, not across chunks.
const MAX_CHUNK_MS: i64 = 3_600_000;

/// The Drains of one stream, one per level.
#[derive(Debug)]
pub struct StreamPatterns {
    config: DrainConfig,
    format: Option<LogFormat>,
    drains: HashMap<String, Drain>,
}

impl StreamPatterns {
    pub fn new(config: DrainConfig) -> Self {
        StreamPatterns {
            config,
            format: None,
            drains: HashMap::new(),
        }
    }

    /// Trains the Drain of `level` on one line. Returns whether the line
    /// joined a cluster.
    pub fn train(&mut self, level: &str, line: &[u8], ts: Timestamp) -> bool {
        let format = *self
            .format
            .get_or_insert_with(|| tokenize::detect_format(line));
        let drain = match self.drains.get_mut(level) {
            Some(d) => d,
            None => self
                .drains
                .entry(level.to_string())
                .or_insert_with(|| Drain::new(self.config.clone(), format)),
        };
        drain.train(line, ts).is_some()
    }

    /// `(level, drain)` pairs.
    pub fn drains(&self) -> impl Iterator<Item = (&str, &Drain)> {
        self.drains.iter().map(|(l, d)| (l.as_str(), d))
    }
}

/// One pattern of a query answer: samples are `(ms, lines)`, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternSeries {
    pub pattern: String,
    pub level: String,
    pub samples: Vec<(i64, i64)>,
}

/// Sums cluster samples per (pattern, level) over a query range and step.
#[derive(Debug)]
pub struct PatternMerger {
    from_ms: i64,
    through_ms: i64,
    step_ms: i64,
    series: HashMap<(String, String), BTreeMap<i64, i64>>,
}

impl PatternMerger {
    /// `[start, end)` rounded outward to milliseconds; the step is at least
    /// the 10 s sample resolution.
    pub fn new(start: Timestamp, end: Timestamp, step: Duration) -> Self {
        let from_ms = start.nanos().div_euclid(1_000_000);
        let through_ms =
            end.nanos().div_euclid(1_000_000) + i64::from(end.nanos().rem_euclid(1_000_000) != 0);
        let step_ms = i64::try_from(step.as_millis())
            .unwrap_or(i64::MAX)
            .max(TIME_RESOLUTION_MS);
        PatternMerger {
            from_ms,
            through_ms,
            step_ms,
            series: HashMap::new(),
        }
    }

    /// Adds every cluster of a stream's Drains.
    pub fn add(&mut self, stream: &StreamPatterns) {
        for (level, drain) in stream.drains() {
            for cluster in drain.clusters() {
                let pattern = drain.pattern(cluster);
                if pattern.is_empty() {
                    continue;
                }
                let samples = self.for_range(cluster);
                if samples.is_empty() {
                    continue;
                }
                let acc = self.series.entry((pattern, level.to_string())).or_default();
                for (t, v) in samples {
                    *acc.entry(t).or_insert(0) += v;
                }
            }
        }
    }

    /// Loki's `Chunks.Iterator` + `Chunk.ForRange` for one cluster.
    fn for_range(&self, cluster: &Cluster) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        let mut chunk: Vec<(i64, i64)> = Vec::new();
        for (t, v) in cluster.samples() {
            if chunk
                .first()
                .is_some_and(|&(first, _)| t - first >= MAX_CHUNK_MS)
            {
                self.chunk_range(&chunk, &mut out);
                chunk.clear();
            }
            chunk.push((t, v));
        }
        self.chunk_range(&chunk, &mut out);
        out
    }

    fn chunk_range(&self, chunk: &[(i64, i64)], out: &mut Vec<(i64, i64)>) {
        let inside: Vec<(i64, i64)> = chunk
            .iter()
            .copied()
            .filter(|&(t, _)| t >= self.from_ms && t < self.through_ms)
            .collect();
        let Some(&(first, _)) = inside.first() else {
            return;
        };
        if self.step_ms == TIME_RESOLUTION_MS {
            out.extend(inside);
            return;
        }
        let step = self.step_ms;
        let trunc = |t: i64| t - t.rem_euclid(step);
        let mut current = trunc(first);
        let start = out.len();
        out.push((current, 0));
        for (t, v) in inside {
            if t >= current + step {
                let bucket = trunc(t);
                let mut i = current + step;
                while i <= bucket {
                    out.push((i, 0));
                    i += step;
                }
                current = bucket;
            }
            if let Some(last) = out[start..].last_mut() {
                last.1 += v;
            }
        }
    }

    /// The merged series, sorted by pattern then level.
    pub fn finish(self) -> Vec<PatternSeries> {
        let mut v: Vec<PatternSeries> = self
            .series
            .into_iter()
            .map(|((pattern, level), samples)| PatternSeries {
                pattern,
                level,
                samples: samples.into_iter().collect(),
            })
            .collect();
        v.sort_by(|a, b| {
            a.pattern
                .cmp(&b.pattern)
                .then_with(|| a.level.cmp(&b.level))
        });
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn train(sp: &mut StreamPatterns, level: &str, secs: i64, line: &str) {
        sp.train(level, line.as_bytes(), Timestamp::from_secs(secs));
    }

    #[test]
    fn merges_streams_and_buckets_by_step() {
        let mut a = StreamPatterns::new(DrainConfig::default());
        let mut b = StreamPatterns::new(DrainConfig::default());
        for s in [0, 5, 65, 130] {
            train(
                &mut a,
                "info",
                s,
                &format!("GET /items/{s} returned 200 OK"),
            );
        }
        train(&mut b, "info", 70, "GET /items/9 returned 200 OK");
        train(&mut b, "info", 71, "GET /items/8 returned 200 OK");
        train(&mut b, "error", 70, "GET /items/9 returned 500 failed");
        let mut m = PatternMerger::new(
            Timestamp::from_secs(0),
            Timestamp::from_secs(200),
            Duration::from_secs(60),
        );
        m.add(&a);
        m.add(&b);
        let got = m.finish();
        let info: Vec<&PatternSeries> = got.iter().filter(|s| s.level == "info").collect();
        assert_eq!(info.len(), 1, "{got:?}");
        assert_eq!(info[0].pattern, "GET <_> returned 200 OK");
        assert_eq!(
            info[0].samples,
            [(0, 2), (60_000, 3), (120_000, 1)],
            "summed across streams"
        );
        let total: i64 = got.iter().flat_map(|s| s.samples.iter().map(|x| x.1)).sum();
        assert_eq!(total, 7);
        assert!(got.iter().any(|s| s.level == "error"));
    }

    #[test]
    fn range_is_half_open_and_gaps_are_zero_filled() {
        let mut a = StreamPatterns::new(DrainConfig::default());
        for s in [0, 200, 600] {
            train(
                &mut a,
                UNKNOWN_LEVEL,
                s,
                &format!("job {s} finished after retries"),
            );
        }
        let mut m = PatternMerger::new(
            Timestamp::from_secs(0),
            Timestamp::from_secs(600),
            Duration::from_secs(120),
        );
        m.add(&a);
        let got = m.finish();
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].samples,
            [(0, 1), (120_000, 1)],
            "600 s is outside [0, 600)"
        );
        let mut m = PatternMerger::new(
            Timestamp::from_secs(0),
            Timestamp::from_secs(601),
            Duration::from_secs(120),
        );
        m.add(&a);
        assert_eq!(
            m.finish()[0].samples,
            [
                (0, 1),
                (120_000, 1),
                (240_000, 0),
                (360_000, 0),
                (480_000, 0),
                (600_000, 1)
            ]
        );
    }

    #[test]
    fn small_steps_use_the_sample_resolution() {
        let mut a = StreamPatterns::new(DrainConfig::default());
        for s in [1, 2, 15] {
            train(
                &mut a,
                UNKNOWN_LEVEL,
                s,
                &format!("tick {s} of the main loop"),
            );
        }
        let mut m = PatternMerger::new(
            Timestamp::from_secs(0),
            Timestamp::from_secs(60),
            Duration::from_secs(1),
        );
        m.add(&a);
        assert_eq!(m.finish()[0].samples, [(0, 2), (10_000, 1)]);
    }
}
