//! Drain, as Loki's pattern ingester runs it (`pkg/pattern/drain/drain.go`):
//! a fixed-depth prefix tree that routes a tokenized line to candidate
//! clusters, and a similarity test that either merges the line into the
//! best cluster (differing tokens become `<_>`) or starts a new one.
//!
//! Owns: the tree (first level by token count, then one level per leading
//! token, at most `max_children` children per node, tokens with digits sent
//! to the `<_>` child), cluster matching (similarity ≥ `sim_th`, ties to the
//! cluster with more placeholders), the bounded cluster cache (least
//! recently used evicted past `max_clusters`), the eviction limiter (a
//! Drain that evicts more than `max_eviction_ratio` of what it adds stops
//! training), the token count bounds (4 to 80) and the 10-second sample
//! buckets of each cluster.
//!
//! Does not own: tokenizing (see `tokenize.rs`), step bucketing and merging
//! of query results (see the module root).
//!
//! Invariants: a cluster's tokens always have the length of the lines it
//! absorbed; tree nodes only refer to cluster ids, so an evicted cluster is
//! skipped wherever its id remains.

use std::collections::{BTreeMap, HashMap};

use super::tokenize::{self, LogFormat, PLACEHOLDER, TokenBuf};
use crate::model::Timestamp;

/// Sample resolution of a cluster: 10 s, in milliseconds.
pub const TIME_RESOLUTION_MS: i64 = 10_000;

/// Loki's `drain.DefaultConfig()`.
#[derive(Clone, Debug)]
pub struct DrainConfig {
    pub log_cluster_depth: usize,
    pub sim_th: f64,
    pub max_children: usize,
    pub max_clusters: usize,
    pub max_eviction_ratio: f64,
    pub max_allowed_line_length: usize,
    pub min_tokens: usize,
    pub max_tokens: usize,
    /// JSON fields whose text is clustered, in priority order.
    pub json_fields: Vec<String>,
}

impl Default for DrainConfig {
    fn default() -> Self {
        DrainConfig {
            log_cluster_depth: 30,
            sim_th: 0.3,
            max_children: 15,
            max_clusters: 300,
            max_eviction_ratio: 0.25,
            max_allowed_line_length: 3000,
            min_tokens: 4,
            max_tokens: 80,
            json_fields: tokenize::DEFAULT_JSON_FIELDS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

/// One cluster: its template tokens and line counts per 10 s bucket.
#[derive(Clone, Debug)]
pub struct Cluster {
    tokens: Vec<Box<[u8]>>,
    spaces_after: Vec<isize>,
    /// Lines per bucket start (ms), any arrival order.
    samples: BTreeMap<i64, i64>,
    size: u64,
    last_used: u64,
}

impl Cluster {
    /// Lines absorbed.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// `(bucket start in ms, lines)`, oldest first.
    pub fn samples(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.samples.iter().map(|(&t, &n)| (t, n))
    }

    fn add(&mut self, ts: Timestamp) {
        let ms = ts.nanos().div_euclid(1_000_000);
        let bucket = ms - ms.rem_euclid(TIME_RESOLUTION_MS);
        *self.samples.entry(bucket).or_insert(0) += 1;
        self.size += 1;
    }
}

#[derive(Debug, Default)]
struct Node {
    children: HashMap<Box<[u8]>, usize>,
    cluster_ids: Vec<usize>,
}

/// One Drain instance (Loki keeps one per stream and level).
#[derive(Debug)]
pub struct Drain {
    config: DrainConfig,
    max_node_depth: usize,
    format: LogFormat,
    nodes: Vec<Node>,
    /// First tree level: token count → node.
    by_count: HashMap<usize, usize>,
    /// Cluster `id` lives at `clusters[id - 1]`; `None` once evicted.
    clusters: Vec<Option<Cluster>>,
    live: usize,
    tick: u64,
    added: u64,
    evicted: u64,
    blocked: bool,
    buf: TokenBuf,
}

impl Drain {
    /// A Drain for lines of `format`. `log_cluster_depth` below 3 is raised
    /// to 3 (Loki panics).
    pub fn new(config: DrainConfig, format: LogFormat) -> Drain {
        let max_node_depth = config.log_cluster_depth.max(3) - 2;
        Drain {
            config,
            max_node_depth,
            format,
            nodes: vec![Node::default()],
            by_count: HashMap::new(),
            clusters: Vec::new(),
            live: 0,
            tick: 0,
            added: 0,
            evicted: 0,
            blocked: false,
            buf: TokenBuf::default(),
        }
    }

    pub fn format(&self) -> LogFormat {
        self.format
    }

    /// The live clusters, least recently used first.
    pub fn clusters(&self) -> Vec<&Cluster> {
        let mut v: Vec<&Cluster> = self.clusters.iter().flatten().collect();
        v.sort_by_key(|c| c.last_used);
        v
    }

    /// Whether the limiter has stopped this Drain.
    pub fn is_blocked(&self) -> bool {
        self.blocked
    }

    /// Loki's `limiter.Allow`: refuses once evictions exceed the ratio of
    /// additions. At query time the 10-minute block outlasts the query.
    fn allow(&mut self) -> bool {
        if self.blocked {
            return false;
        }
        if self.added == 0 {
            self.added = 1;
            return true;
        }
        if self.evicted as f64 / self.added as f64 > self.config.max_eviction_ratio {
            self.blocked = true;
            return false;
        }
        self.added += 1;
        true
    }

    /// Trains on one line; returns the id of the cluster it joined, `None`
    /// when the line was skipped (limiter, tokenizer, token count).
    pub fn train(&mut self, line: &[u8], ts: Timestamp) -> Option<usize> {
        if !self.allow() {
            return None;
        }
        let mut buf = std::mem::take(&mut self.buf);
        let max = self.config.max_allowed_line_length;
        let ok = match self.format {
            LogFormat::Json => {
                tokenize::tokenize_json(line, &self.config.json_fields, max, &mut buf)
            }
            LogFormat::Logfmt => tokenize::tokenize_logfmt(line, max, &mut buf),
            LogFormat::Unknown => tokenize::tokenize_punctuation(line, max, &mut buf),
        };
        let id = if ok {
            self.train_tokens(&buf, ts)
        } else {
            None
        };
        self.buf = buf;
        id
    }

    fn train_tokens(&mut self, tokens: &TokenBuf, ts: Timestamp) -> Option<usize> {
        let n = tokens.len();
        if n < self.config.min_tokens || n > self.config.max_tokens {
            return None;
        }
        match self.tree_search(tokens) {
            Some(id) => {
                let tick = self.next_tick();
                let c = self.clusters[id - 1].as_mut()?;
                for (i, t) in tokens.iter().enumerate() {
                    if &*c.tokens[i] != t {
                        c.tokens[i] = PLACEHOLDER.into();
                    }
                }
                c.add(ts);
                c.last_used = tick;
                Some(id)
            }
            None => {
                let tick = self.next_tick();
                let mut c = Cluster {
                    tokens: tokens.iter().map(Box::<[u8]>::from).collect(),
                    spaces_after: tokens.spaces_after.clone(),
                    samples: BTreeMap::new(),
                    size: 0,
                    last_used: tick,
                };
                c.add(ts);
                self.clusters.push(Some(c));
                let id = self.clusters.len();
                self.live += 1;
                self.evict_over_capacity();
                self.add_to_tree(id);
                Some(id)
            }
        }
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// `idToCluster.Get`: the cluster, touched.
    fn touch(&mut self, id: usize) -> bool {
        let tick = self.next_tick();
        match self.clusters.get_mut(id - 1).and_then(Option::as_mut) {
            Some(c) => {
                c.last_used = tick;
                true
            }
            None => false,
        }
    }

    fn evict_over_capacity(&mut self) {
        let max = if self.config.max_clusters == 0 {
            usize::MAX
        } else {
            self.config.max_clusters
        };
        while self.live > max {
            let oldest = self
                .clusters
                .iter()
                .enumerate()
                .filter_map(|(i, c)| c.as_ref().map(|c| (c.last_used, i)))
                .min();
            let Some((_, i)) = oldest else { return };
            self.clusters[i] = None;
            self.live -= 1;
            self.evicted += 1;
        }
    }

    fn tree_search(&mut self, tokens: &TokenBuf) -> Option<usize> {
        let n = tokens.len();
        let mut node = *self.by_count.get(&n)?;
        if n < 2 {
            let id = *self.nodes[node].cluster_ids.first()?;
            return self.touch(id).then_some(id);
        }
        for (depth, t) in (1..).zip(tokens.iter()) {
            if depth >= self.max_node_depth || depth == n {
                break;
            }
            let children = &self.nodes[node].children;
            node = match children.get(t).or_else(|| children.get(PLACEHOLDER)) {
                Some(&child) => child,
                None => return None,
            };
        }
        self.fast_match(node, tokens)
    }

    /// The best cluster of a leaf for `tokens`, if similar enough.
    fn fast_match(&mut self, node: usize, tokens: &TokenBuf) -> Option<usize> {
        let mut best: Option<usize> = None;
        let mut max_sim = -1.0f64;
        let mut max_params: i64 = -1;
        for k in 0..self.nodes[node].cluster_ids.len() {
            let id = self.nodes[node].cluster_ids[k];
            if !self.touch(id) {
                continue;
            }
            let Some(c) = self.clusters[id - 1].as_ref() else {
                continue;
            };
            let (sim, params) = seq_distance(&c.tokens, tokens);
            if sim > max_sim || (sim == max_sim && params > max_params) {
                max_sim = sim;
                max_params = params;
                best = Some(id);
            }
        }
        best.filter(|_| max_sim >= self.config.sim_th)
    }

    fn new_node(&mut self) -> usize {
        self.nodes.push(Node::default());
        self.nodes.len() - 1
    }

    fn child_or_new(&mut self, node: usize, key: &[u8]) -> usize {
        if let Some(&c) = self.nodes[node].children.get(key) {
            return c;
        }
        let c = self.new_node();
        self.nodes[node].children.insert(key.into(), c);
        c
    }

    fn add_to_tree(&mut self, id: usize) {
        let Some(tokens) = self.clusters[id - 1].as_ref().map(|c| c.tokens.clone()) else {
            return;
        };
        let n = tokens.len();
        let first = match self.by_count.get(&n) {
            Some(&f) => f,
            None => {
                let f = self.new_node();
                self.by_count.insert(n, f);
                f
            }
        };
        let mut node = first;
        if n == 0 {
            self.nodes[node].cluster_ids.push(id);
            return;
        }
        for (depth, t) in (1..).zip(tokens.iter()) {
            if depth >= self.max_node_depth || depth >= n {
                let ids = std::mem::take(&mut self.nodes[node].cluster_ids);
                let mut kept: Vec<usize> = ids.into_iter().filter(|&i| self.touch(i)).collect();
                kept.push(id);
                self.nodes[node].cluster_ids = kept;
                break;
            }
            let t: &[u8] = t;
            if self.nodes[node].children.contains_key(t) {
                node = self.nodes[node].children[t];
            } else if !has_numbers(t) {
                let len = self.nodes[node].children.len();
                let has_param = self.nodes[node].children.contains_key(PLACEHOLDER);
                let max = self.config.max_children;
                node = if has_param {
                    if len < max {
                        self.child_or_new(node, t)
                    } else {
                        self.child_or_new(node, PLACEHOLDER)
                    }
                } else if len + 1 < max {
                    self.child_or_new(node, t)
                } else {
                    self.child_or_new(node, PLACEHOLDER)
                };
            } else {
                node = self.child_or_new(node, PLACEHOLDER);
            }
        }
    }

    /// The pattern text of a cluster, placeholders collapsed; empty when
    /// it cannot be written (a logfmt key that is not encodable).
    pub fn pattern(&self, c: &Cluster) -> String {
        let mut out = Vec::new();
        let tokens = c.tokens.iter().map(|t| &**t);
        match self.format {
            LogFormat::Logfmt => tokenize::join_logfmt(tokens, &mut out),
            LogFormat::Json => {
                out.extend_from_slice(PLACEHOLDER);
                tokenize::join_punctuation(tokens, &c.spaces_after, &mut out);
                out.extend_from_slice(PLACEHOLDER);
            }
            LogFormat::Unknown => tokenize::join_punctuation(tokens, &c.spaces_after, &mut out),
        }
        let out = tokenize::dedup_placeholders(out);
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

/// Loki's `getSeqDistance` (without placeholder credit): the share of equal
/// tokens, and the cluster's placeholder count.
fn seq_distance(cluster: &[Box<[u8]>], tokens: &TokenBuf) -> (f64, i64) {
    let mut sim = 0usize;
    let mut params = 0i64;
    for (c, t) in cluster.iter().zip(tokens.iter()) {
        if &**c == PLACEHOLDER {
            params += 1;
        } else if &**c == t {
            sim += 1;
        }
    }
    (sim as f64 / cluster.len().max(1) as f64, params)
}

/// Go's `unicode.IsNumber` over the token's runes.
fn has_numbers(t: &[u8]) -> bool {
    if t.is_ascii() {
        return t.iter().any(u8::is_ascii_digit);
    }
    String::from_utf8_lossy(t).chars().any(char::is_numeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_secs(s)
    }

    fn patterns(d: &Drain) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = d
            .clusters()
            .into_iter()
            .map(|c| (d.pattern(c), c.size()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn lines_differing_in_variables_share_a_template() {
        let mut d = Drain::new(DrainConfig::default(), LogFormat::Unknown);
        for i in 0..20 {
            let line = format!(
                "user {} logged in from 10.0.0.{} after {}ms",
                i * 7,
                i,
                i + 3
            );
            assert!(d.train(line.as_bytes(), ts(i)).is_some(), "{line}");
        }
        assert_eq!(
            patterns(&d),
            [("user <_> logged in from <_> after <_>".to_string(), 20)]
        );
    }

    #[test]
    fn distinct_templates_stay_apart() {
        let mut d = Drain::new(DrainConfig::default(), LogFormat::Unknown);
        for i in 0..10 {
            d.train(format!("user {i} logged in successfully").as_bytes(), ts(i));
            d.train(
                format!("connection to database db-{i} failed with timeout").as_bytes(),
                ts(i),
            );
        }
        let p = patterns(&d);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p.iter().all(|(_, n)| *n == 10), "{p:?}");
        assert!(
            p.iter()
                .any(|(s, _)| s == "user <_> logged in successfully"),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|(s, _)| s == "connection to database <_> failed with timeout"),
            "{p:?}"
        );
    }

    #[test]
    fn too_few_or_too_many_tokens_are_skipped() {
        let mut d = Drain::new(DrainConfig::default(), LogFormat::Unknown);
        assert_eq!(d.train(b"just three words", ts(1)), None);
        let long = "w ".repeat(81);
        assert_eq!(d.train(long.trim_end().as_bytes(), ts(1)), None);
        let ok = "w ".repeat(80);
        assert!(d.train(ok.trim_end().as_bytes(), ts(1)).is_some());
    }

    #[test]
    fn overlong_lines_are_skipped() {
        let mut d = Drain::new(DrainConfig::default(), LogFormat::Unknown);
        let line = format!("a b c {}", "x".repeat(3000));
        assert_eq!(d.train(line.as_bytes(), ts(1)), None);
    }

    #[test]
    fn cluster_cache_evicts_and_the_limiter_stops_training() {
        let cfg = DrainConfig {
            max_clusters: 2,
            ..DrainConfig::default()
        };
        let mut d = Drain::new(cfg, LogFormat::Unknown);
        let words = [
            "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf",
        ];
        let mut trained = 0;
        for w in words {
            let line = format!("{w} {w} {w} {w} {w}");
            if d.train(line.as_bytes(), ts(1)).is_some() {
                trained += 1;
            }
        }
        assert!(d.clusters().len() <= 2);
        assert!(d.is_blocked(), "evicting past 25% of additions blocks");
        assert!(trained < words.len());
    }

    #[test]
    fn samples_bucket_by_ten_seconds_in_any_order() {
        let mut d = Drain::new(DrainConfig::default(), LogFormat::Unknown);
        for s in [25, 3, 21, 9, 0] {
            d.train(format!("request {s} served in time").as_bytes(), ts(s));
        }
        let c = d.clusters()[0];
        let got: Vec<(i64, i64)> = c.samples().collect();
        assert_eq!(got, [(0, 3), (20_000, 2)]);
    }

    proptest::proptest! {
        /// Without eviction every trained line is counted in exactly one
        /// cluster, and each cluster's pattern has its lines' token count.
        #[test]
        fn every_line_lands_in_one_cluster(lines in proptest::collection::vec(
            proptest::collection::vec("[a-c]{1,2}|[0-9]{1,3}", 4..8), 1..60)) {
            let mut d = Drain::new(DrainConfig::default(), LogFormat::Unknown);
            let mut trained = 0u64;
            for (i, words) in lines.iter().enumerate() {
                if d.train(words.join(" ").as_bytes(), ts(i as i64)).is_some() {
                    trained += 1;
                }
            }
            proptest::prop_assert_eq!(trained, lines.len() as u64);
            let total: u64 = d.clusters().iter().map(|c| c.size()).sum();
            proptest::prop_assert_eq!(total, trained);
            for c in d.clusters() {
                let samples: i64 = c.samples().map(|(_, n)| n).sum();
                proptest::prop_assert_eq!(samples as u64, c.size());
            }
        }
    }

    #[test]
    fn logfmt_and_json_formats() {
        let mut d = Drain::new(DrainConfig::default(), LogFormat::Logfmt);
        for i in 0..5 {
            d.train(
                format!("ts=2024-01-01T00:00:0{i}Z level=info msg=done id={i}").as_bytes(),
                ts(i),
            );
        }
        assert_eq!(
            patterns(&d),
            [("ts=<_> level=info msg=done id=<_>".to_string(), 5)]
        );
        let mut d = Drain::new(DrainConfig::default(), LogFormat::Json);
        for i in 0..5 {
            d.train(
                format!(r#"{{"level":"info","msg":"fetched {i} rows from cache"}}"#).as_bytes(),
                ts(i),
            );
        }
        assert_eq!(
            patterns(&d),
            [("<_>fetched <_> rows from cache<_>".to_string(), 5)]
        );
    }
}
