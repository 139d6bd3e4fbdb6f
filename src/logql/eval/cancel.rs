//! Cancellation of a query's blocking work.
//!
//! Owns: [`Cancel`], the flag a query's blocking workers check before each
//! block, and [`CancelGuard`], which raises it when the query's future ends
//! or is dropped (the client went away, or `query_timeout` fired).
//!
//! Does not own: deciding when a query is cancelled (the API drops the
//! future, `Engine::execute` times it out), or what a worker returns once it
//! stopped ([`QueryError::Cancelled`]; nobody waits for it when the future is
//! gone).
//!
//! Invariants: workers check the flag once per block, never per line, so the
//! hot loop stays a plain loop; a worker stops at most one block after the
//! flag is raised. Every worker holds a [`WorkerGuard`] while it runs, so the
//! number of live workers is observable (tests wait for it to drop to zero).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::QueryError;

#[derive(Debug, Default)]
struct State {
    cancelled: AtomicBool,
    /// Blocks workers started on (checked and not cancelled).
    blocks: AtomicU64,
    /// Workers running now.
    workers: AtomicUsize,
}

/// A query's cancellation flag, shared by its blocking workers.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<State>);

impl Cancel {
    pub fn new() -> Self {
        Cancel::default()
    }

    /// Asks every worker of the query to stop at its next block.
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::Release);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Acquire)
    }

    /// Raises the flag when dropped: held by the query's future, so a future
    /// that is dropped (client gone) or ends (answer, error, timeout) stops
    /// the workers it left behind.
    pub fn guard(&self) -> CancelGuard {
        CancelGuard(self.clone())
    }

    /// Before each block: `Cancelled` once the flag is up, else counts the
    /// block.
    pub(crate) fn check_block(&self) -> Result<(), QueryError> {
        if self.is_cancelled() {
            return Err(QueryError::Cancelled);
        }
        self.0.blocks.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Blocks the query's workers started on so far.
    pub fn blocks_started(&self) -> u64 {
        self.0.blocks.load(Ordering::Relaxed)
    }

    /// Marks a running worker until the guard is dropped.
    pub(crate) fn worker(&self) -> WorkerGuard {
        self.0.workers.fetch_add(1, Ordering::AcqRel);
        WorkerGuard(self.clone())
    }

    /// Workers of the query still running.
    pub fn workers_running(&self) -> usize {
        self.0.workers.load(Ordering::Acquire)
    }
}

/// Cancels its query when dropped.
#[derive(Debug)]
pub struct CancelGuard(Cancel);

impl Drop for CancelGuard {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// A running worker; see [`Cancel::worker`].
#[derive(Debug)]
pub(crate) struct WorkerGuard(Cancel);

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        self.0.0.workers.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use bytes::Bytes;

    use super::*;
    use crate::config::units::ConfigDuration;
    use crate::limits::{Limits, Overrides};
    use crate::logql::eval::{Engine, EntryVisitor, QueryParams, VisitParams};
    use crate::logql::log::LabelsResult;
    use crate::model::{Direction, Entry, Labels, TenantId, Timestamp};

    #[test]
    fn guard_cancels_on_drop_and_workers_are_counted() {
        let c = Cancel::new();
        assert!(c.check_block().is_ok());
        let w = c.worker();
        assert_eq!(c.workers_running(), 1);
        {
            let _g = c.guard();
            assert!(!c.is_cancelled());
        }
        assert!(c.is_cancelled());
        assert_eq!(c.check_block(), Err(QueryError::Cancelled));
        assert_eq!(c.blocks_started(), 1, "a refused block is not counted");
        drop(w);
        assert_eq!(c.workers_running(), 0);
    }

    const STREAMS: usize = 4;
    const PER_STREAM: usize = 25_000;
    const BASE_S: i64 = 1_700_000_000;

    /// Four streams of JSON lines in 16 KiB blocks: a few hundred blocks
    /// whose every line a `| json` query must parse (slow enough, in a
    /// debug build, that a query takes far longer than the test's reaction
    /// time).
    async fn heavy_engine(dir: &std::path::Path, timeout: Duration) -> Engine {
        let streams = (0..STREAMS)
            .map(|s| {
                let entries: Vec<Entry> = (0..PER_STREAM)
                    .map(|i| Entry {
                        ts: Timestamp::from_nanos(BASE_S * 1_000_000_000 + i as i64 * 1_000_000),
                        line: Bytes::from(format!(
                            r#"{{"level":"info","status":{},"msg":"request {i} served","user":{{"id":"u{}"}}}}"#,
                            200 + i % 5,
                            i % 97
                        )),
                        metadata: Vec::new(),
                    })
                    .collect();
                let labels = Labels::parse(&format!(r#"{{app="heavy",n="{s}"}}"#)).unwrap();
                (labels, entries)
            })
            .collect();
        let store = super::super::test_store(dir, (16 << 10, 256 << 10, 64 << 20), streams).await;
        let limits = Limits {
            query_timeout: ConfigDuration(timeout),
            ..Limits::default()
        };
        Engine::new(store, Arc::new(Overrides::new(limits)))
    }

    fn params(query: &str) -> QueryParams {
        QueryParams {
            tenant: TenantId::new("t").unwrap(),
            query: query.to_string(),
            start: Timestamp::from_secs(BASE_S),
            end: Timestamp::from_secs(BASE_S + 3600),
            step: 60_000_000_000,
            interval: 0,
            limit: 100,
            direction: Direction::Backward,
            instant: false,
            categorize: false,
            drilldown: false,
        }
    }

    /// Matches nothing, so every block must be read.
    const LOGS: &str = r#"{app="heavy"} | json | status="999""#;
    const METRIC: &str = r#"sum(count_over_time({app="heavy"} | json | status="999" [1m]))"#;

    /// Waits until the query's workers are gone; the blocks they started.
    async fn drained(cancel: &Cancel) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(60);
        while cancel.workers_running() > 0 {
            assert!(Instant::now() < deadline, "workers never stopped");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        cancel.blocks_started()
    }

    /// Blocks that may start after the flag is raised: each running worker
    /// may have passed its check just before (one wave of workers at most).
    fn slack(engine: &Engine) -> u64 {
        (engine.parallelism.max(1) * 2) as u64
    }

    /// Blocks a query reads when it runs to the end.
    async fn full_run(engine: &Engine, query: &str) -> u64 {
        let cancel = Cancel::new();
        engine
            .execute_with(params(query), cancel.clone())
            .await
            .unwrap();
        assert!(cancel.is_cancelled(), "the guard fires on completion too");
        drained(&cancel).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_a_query_stops_its_workers() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(heavy_engine(dir.path(), Duration::ZERO).await);
        for query in [LOGS, METRIC] {
            let total = full_run(&engine, query).await;
            assert!(total >= 100, "{query}: only {total} blocks");
            let cancel = Cancel::new();
            let task = tokio::spawn({
                let (engine, cancel) = (engine.clone(), cancel.clone());
                async move { engine.execute_with(params(query), cancel).await }
            });
            // The client goes away once the workers are busy.
            while cancel.blocks_started() == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            task.abort();
            assert!(task.await.unwrap_err().is_cancelled());
            assert!(cancel.is_cancelled(), "dropping the future raised the flag");
            let at_drop = cancel.blocks_started();
            let read = drained(&cancel).await;
            assert!(
                read - at_drop <= slack(&engine),
                "{query}: workers started {} more blocks after the drop (read {read} of {total})",
                read - at_drop
            );
            assert!(read < total, "{query}: read {read} of {total}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_timed_out_query_stops_its_workers() {
        let dir = tempfile::tempdir().unwrap();
        let engine = heavy_engine(dir.path(), Duration::from_millis(20)).await;
        for query in [LOGS, METRIC] {
            let cancel = Cancel::new();
            let started = Instant::now();
            let res = engine.execute_with(params(query), cancel.clone()).await;
            assert_eq!(res.err(), Some(QueryError::Timeout), "{query}");
            let at_timeout = cancel.blocks_started();
            assert!(started.elapsed() < Duration::from_secs(10));
            let read = drained(&cancel).await;
            assert!(
                read - at_timeout <= slack(&engine),
                "{query}: workers started {} more blocks after the timeout (read {read})",
                read - at_timeout
            );
            // The same engine without a timeout reads every block.
            let untimed = Engine::new(
                engine.store().clone(),
                Arc::new(Overrides::new(Limits::default())),
            );
            let total = full_run(&untimed, query).await;
            assert!(read < total, "{query}: read {read} of {total}");
        }
    }

    /// Counts entries across every stream's visitor.
    struct Count(Arc<AtomicUsize>);

    impl EntryVisitor for Count {
        fn visit(&mut self, _: Timestamp, _: &[u8], _: &LabelsResult) -> bool {
            self.0.fetch_add(1, Ordering::Relaxed);
            true
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_a_visit_stops_its_workers() {
        let dir = tempfile::tempdir().unwrap();
        let engine = heavy_engine(dir.path(), Duration::ZERO).await;
        let seen = Arc::new(AtomicUsize::new(0));
        let visit = engine.visit_streams(
            VisitParams {
                tenant: TenantId::new("t").unwrap(),
                query: r#"{app="heavy"} | json"#.to_string(),
                start: Timestamp::from_secs(BASE_S),
                end: Timestamp::from_secs(BASE_S + 3600),
                direction: Direction::Forward,
            },
            |_| Count(seen.clone()),
        );
        let dropped = tokio::time::timeout(Duration::from_millis(30), visit).await;
        assert!(dropped.is_err(), "the visit outlived its deadline");
        // Workers stop at their next block: the count settles early.
        let mut last = seen.load(Ordering::Relaxed);
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = seen.load(Ordering::Relaxed);
            if now == last {
                break;
            }
            last = now;
        }
        assert!(
            last < STREAMS * PER_STREAM / 2,
            "visited {last} of {} entries after the drop",
            STREAMS * PER_STREAM
        );
    }
}
