//! Streaming reads of a log query, stream by stream, for callers that fold
//! entries into something smaller than a result (pattern detection): every
//! entry that passes the pipeline is handed to the stream's visitor, and no
//! entry is kept.
//!
//! Owns: [`EntryVisitor`], [`VisitParams`] and [`Engine::visit_streams`].
//! Does not own: what visitors compute, result limits (a visitor stops its
//! stream by returning `false`; callers share a budget between visitors).
//!
//! Invariants: the query's range limits apply as for `execute`; a stream's
//! entries reach its visitor in the query's direction, block by block
//! (sources overlapping in time are not merged); lines are borrowed from the
//! decoded block, never copied.

use std::collections::HashMap;

use futures::StreamExt;

use super::scan::{self, InRange, Task};
use super::{Cancel, Engine, QueryError, build};
use crate::logql::log::{LabelsResult, LineFilter, ParserHints, StreamPipeline};
use crate::logql::syntax::{self, ast};
use crate::model::{Direction, Labels, TenantId, Timestamp};

/// Receives the entries of one stream that passed the pipeline.
pub trait EntryVisitor: Send + 'static {
    /// One entry; return `false` to stop reading this stream.
    fn visit(&mut self, ts: Timestamp, line: &[u8], labels: &LabelsResult) -> bool;
}

/// A log query to read through visitors.
#[derive(Clone, Debug)]
pub struct VisitParams {
    pub tenant: TenantId,
    pub query: String,
    /// Entries in `[start, end)`.
    pub start: Timestamp,
    pub end: Timestamp,
    pub direction: Direction,
}

impl Engine {
    /// Reads every entry of a log query, one visitor per matching stream
    /// (made by `make` from the stream's labels), and returns the visitors
    /// in the order of the store's streams. Streams are read concurrently;
    /// a stream's blocks are decoded and visited on blocking threads.
    pub async fn visit_streams<V, F>(&self, p: VisitParams, make: F) -> Result<Vec<V>, QueryError>
    where
        V: EntryVisitor,
        F: Fn(&Labels) -> V,
    {
        // Raised when this future ends or is dropped: stops the workers.
        let cancel = Cancel::new();
        let _guard = cancel.guard();
        let expr = syntax::parse(&p.query).map_err(|e| QueryError::Parse(e.to_string()))?;
        let ast::Expr::Log(log) = &expr else {
            return Err(QueryError::BadRequest(
                "only log queries are supported by this endpoint".into(),
            ));
        };
        let limits = self.overrides.get(p.tenant.as_str());
        let start = super::check_range(&limits, p.start, p.end)?;
        let pipeline = build::pipeline(&log.pipeline, ParserHints::none())?;
        let prefilter: Option<LineFilter> = pipeline
            .leading_line_filters()
            .into_iter()
            .cloned()
            .reduce(LineFilter::and);
        let streams = self
            .store
            .select(&p.tenant, log.matchers(), start, p.end)
            .await
            .map_err(QueryError::storage)?;
        let mut per_stream: HashMap<usize, Vec<Task>> = HashMap::new();
        for t in scan::tasks(&streams, p.direction) {
            per_stream.entry(t.stream).or_default().push(t);
        }
        let jobs: Vec<(V, StreamPipeline, Vec<Task>)> = streams
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (
                    make(&s.labels),
                    pipeline.for_stream(&s.labels),
                    per_stream.remove(&i).unwrap_or_default(),
                )
            })
            .collect();
        let (tenant, end, direction) = (&p.tenant, p.end, p.direction);
        let (prefilter, cancel) = (&prefilter, &cancel);
        let run = futures::stream::iter(jobs)
            .map(|(visitor, sp, tasks)| async move {
                self.visit_stream(
                    tenant,
                    visitor,
                    sp,
                    tasks,
                    prefilter,
                    (start, end),
                    direction,
                    cancel,
                )
                .await
            })
            .buffered(self.parallelism.max(1) * 2)
            .collect::<Vec<_>>();
        let timeout = limits.query_timeout.get();
        let results = if timeout.is_zero() {
            run.await
        } else {
            tokio::time::timeout(timeout, run)
                .await
                .map_err(|_| QueryError::Timeout)?
        };
        results.into_iter().collect()
    }

    #[allow(clippy::too_many_arguments)]
    async fn visit_stream<V: EntryVisitor>(
        &self,
        tenant: &TenantId,
        mut visitor: V,
        mut sp: StreamPipeline,
        tasks: Vec<Task>,
        prefilter: &Option<LineFilter>,
        (start, end): (Timestamp, Timestamp),
        direction: Direction,
        cancel: &Cancel,
    ) -> Result<V, QueryError> {
        let mut stats = crate::logql::result::QueryStats::default();
        for task in tasks {
            let mut blocks =
                scan::fetch(&self.store, tenant, &task, start, end, &mut stats).await?;
            let head = task.source.is_head();
            let (prefilter, cancel) = (prefilter.clone(), cancel.clone());
            let go_on;
            (visitor, sp, go_on) = tokio::task::spawn_blocking(move || {
                let _worker = cancel.worker();
                let mut stats = crate::logql::result::QueryStats::default();
                scan::order_blocks(&mut blocks, direction);
                for data in &blocks {
                    cancel.check_block()?;
                    let InRange { block, lo, hi } =
                        scan::decode(data, start, end, head, &mut stats)?;
                    let mut visit_one = |i: usize| -> bool {
                        let line = block.line(i);
                        if prefilter.as_ref().is_some_and(|f| !f.matches(line)) {
                            return true;
                        }
                        let ts = block.ts(i);
                        match sp.process_with(ts, line, block.metadata(i), |_, _| Some(())) {
                            Some((out, ())) => visitor.visit(ts, out.line, &out.labels),
                            None => true,
                        }
                    };
                    let more = match direction {
                        Direction::Backward => (lo..hi).rev().all(&mut visit_one),
                        Direction::Forward => (lo..hi).all(&mut visit_one),
                    };
                    if !more {
                        return Ok::<_, QueryError>((visitor, sp, false));
                    }
                }
                Ok((visitor, sp, true))
            })
            .await
            .map_err(|e| QueryError::Internal(format!("query task failed: {e}")))??;
            if !go_on {
                break;
            }
        }
        Ok(visitor)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::limits::{Limits, Overrides};
    use crate::model::{Entry, MetadataPair};

    /// Collects what it is given; stops after `stop_after` entries.
    struct Collect {
        stream: String,
        seen: Vec<(i64, String, Option<String>)>,
        stop_after: usize,
    }

    impl EntryVisitor for Collect {
        fn visit(&mut self, ts: Timestamp, line: &[u8], labels: &LabelsResult) -> bool {
            let level = labels
                .structured_metadata()
                .get("detected_level")
                .map(str::to_string);
            self.seen.push((
                ts.nanos(),
                String::from_utf8_lossy(line).into_owned(),
                level,
            ));
            self.seen.len() < self.stop_after
        }
    }

    async fn engine_with(streams: &[(&str, Vec<Entry>)], dir: &std::path::Path) -> Engine {
        let streams = streams
            .iter()
            .map(|(labels, entries)| (Labels::parse(labels).unwrap(), entries.clone()))
            .collect();
        let store = super::super::test_store(dir, (256, 1024, 4 << 10), streams).await;
        Engine::new(store, Arc::new(Overrides::new(Limits::default())))
    }

    fn entry(s: i64, line: &str, level: &str) -> Entry {
        Entry {
            ts: Timestamp::from_secs(s),
            line: Bytes::from(line.to_string()),
            metadata: vec![MetadataPair::new("detected_level", level.to_string())],
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn visits_each_stream_in_direction_through_the_pipeline() {
        let dir = tempfile::tempdir().unwrap();
        let a: Vec<Entry> = (0..50)
            .map(|i| entry(1000 + i, &format!("a line {i} ok"), "info"))
            .collect();
        let b: Vec<Entry> = (0..5)
            .map(|i| entry(1000 + i, &format!("b line {i} fail"), "error"))
            .collect();
        let engine = engine_with(&[(r#"{app="a"}"#, a), (r#"{app="b"}"#, b)], dir.path()).await;
        let params = |query: &str, direction| VisitParams {
            tenant: TenantId::new("t").unwrap(),
            query: query.to_string(),
            start: Timestamp::from_secs(1010),
            end: Timestamp::from_secs(2000),
            direction,
        };
        let make = |stop_after: usize| {
            move |l: &Labels| Collect {
                stream: l.canonical(),
                seen: Vec::new(),
                stop_after,
            }
        };
        let got = engine
            .visit_streams(
                params(r#"{app=~"a|b"}"#, Direction::Backward),
                make(usize::MAX),
            )
            .await
            .unwrap();
        let a = got.iter().find(|c| c.stream.contains("\"a\"")).unwrap();
        let ts: Vec<i64> = a.seen.iter().map(|s| s.0 / 1_000_000_000).collect();
        let want: Vec<i64> = (1010..1050).rev().collect();
        assert_eq!(ts, want, "backward, inside [start, end)");
        assert_eq!(
            a.seen[0].2.as_deref(),
            Some("info"),
            "metadata reaches the visitor"
        );
        assert!(
            got.iter()
                .filter(|c| c.stream.contains("\"b\""))
                .all(|c| c.seen.is_empty()),
            "b is before start"
        );

        let got = engine
            .visit_streams(params(r#"{app="a"} |= "ok""#, Direction::Forward), make(3))
            .await
            .unwrap();
        let ts: Vec<i64> = got[0].seen.iter().map(|s| s.0 / 1_000_000_000).collect();
        assert_eq!(ts, [1010, 1011, 1012], "forward, stopped by the visitor");

        let got = engine
            .visit_streams(
                params(r#"{app="a"} |= "fail""#, Direction::Forward),
                make(9),
            )
            .await
            .unwrap();
        assert!(got[0].seen.is_empty(), "line filters apply");

        let err = engine
            .visit_streams(
                params(r#"count_over_time({app="a"}[1m])"#, Direction::Forward),
                make(1),
            )
            .await
            .err();
        assert!(matches!(err, Some(QueryError::BadRequest(_))), "{err:?}");
    }
}
