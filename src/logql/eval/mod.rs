//! LogQL evaluation: log queries (streams) and metric queries (matrix,
//! vector, scalar), reading through the store facade.
//!
//! [`Engine::execute`] parses the query, applies Loki's query limits
//! (`max_query_length`, `max_entries_limit_per_query`, `query_timeout`,
//! `max_query_lookback`), and runs it: [`logs`] for log queries, [`metrics`]
//! for metric queries. Errors carry the HTTP status Loki answers with.
//! Blocking workers stop at their next block once the query's future is
//! dropped or times out ([`Cancel`]).

mod build;
mod cancel;
pub mod functions;
mod logs;
mod metrics;
#[cfg(test)]
mod model_tests;
mod scan;
mod visit;

pub use cancel::{Cancel, CancelGuard};
pub use visit::{EntryVisitor, VisitParams};

use std::sync::Arc;
use std::time::Instant;

use crate::limits::Overrides;
use crate::logql::result::QueryResponse;
use crate::logql::syntax::{self, ast};
use crate::model::{Direction, TenantId, Timestamp};
use crate::store::{Store, StoreError};

/// Why a query failed, with the status Loki answers.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// A parse or validation error (`parse error at line L, col C: ...`).
    #[error("{0}")]
    Parse(String),
    /// A bad parameter, limit, or pipeline error.
    #[error("{0}")]
    BadRequest(String),
    #[error(
        "request timed out, decrease the duration of the request or add more label matchers (prefer exact match over regex match) to reduce the amount of data processed"
    )]
    Timeout,
    /// The query's future was dropped (the client went away) or timed out
    /// while a worker still ran: Loki's `context canceled`, status 499.
    #[error("context canceled")]
    Cancelled,
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl QueryError {
    pub fn status(&self) -> u16 {
        match self {
            QueryError::Parse(_) | QueryError::BadRequest(_) => 400,
            QueryError::Timeout => 504,
            QueryError::Cancelled => 499,
            QueryError::Unavailable(_) => 503,
            QueryError::Internal(_) => 500,
        }
    }

    pub(crate) fn storage(e: StoreError) -> Self {
        if e.is_retryable() {
            QueryError::Unavailable(e.to_string())
        } else {
            QueryError::Internal(e.to_string())
        }
    }
}

/// One query as the API hands it over.
#[derive(Clone, Debug)]
pub struct QueryParams {
    pub tenant: TenantId,
    pub query: String,
    /// Log queries: entries in `[start, end)`. Metric queries: the first and
    /// last step. Instant queries: both are the evaluation time.
    pub start: Timestamp,
    pub end: Timestamp,
    /// Step in nanoseconds (range metric queries).
    pub step: i64,
    /// `interval` in nanoseconds (log queries; 0 = every entry).
    pub interval: i64,
    pub limit: usize,
    pub direction: Direction,
    pub instant: bool,
    /// `X-Loki-Response-Encoding-Flags: categorize-labels`.
    pub categorize: bool,
    /// A Logs Drilldown request (`X-Query-Tags: Source=grafana-lokiexplore-app`):
    /// the series limit gives partial results and a warning.
    pub drilldown: bool,
}

/// Compiles an AST line filter (shared with the delete API, whose queries
/// are a selector plus line filters).
pub fn compile_line_filter(
    f: &ast::LineFilter,
) -> Result<crate::logql::log::LineFilter, QueryError> {
    build::line_filter(f)
}

/// Builds the pipeline of a log query, as the engine runs it on stored
/// entries (the live tail runs it on appended ones).
pub fn log_pipeline(log: &ast::LogExpr) -> Result<crate::logql::log::Pipeline, QueryError> {
    build::pipeline(&log.pipeline, crate::logql::log::ParserHints::none())
}

/// `max_query_length`: a longer range is a 400 with Loki's message.
fn check_query_length(
    limits: &crate::limits::Limits,
    start: Timestamp,
    end: Timestamp,
) -> Result<(), QueryError> {
    let length = end.nanos_since(start);
    let max_len = limits.max_query_length.as_nanos_i64();
    if max_len > 0 && length > max_len {
        return Err(QueryError::BadRequest(format!(
            "the query time range exceeds the limit (query length: {}, limit: {})",
            // Go's time.Duration, as Loki prints the length (`802h0m0s`).
            crate::logql::syntax::golang::format_go_duration(length.max(0)),
            limits.max_query_length
        )));
    }
    Ok(())
}

/// `max_query_lookback`: the start is clamped silently.
fn clamp_lookback(limits: &crate::limits::Limits, start: Timestamp) -> Timestamp {
    let lookback = limits.max_query_lookback.as_nanos_i64();
    if lookback > 0 {
        let oldest = Timestamp::now().saturating_sub_nanos(lookback);
        if start < oldest {
            return oldest;
        }
    }
    start
}

/// Both range limits, in Loki's order (`ValidateQueryTimeRangeLimits`):
/// the start clamped by `max_query_lookback`, then `max_query_length`
/// checked on the clamped range. The possibly clamped start, or the length
/// error.
pub fn check_range(
    limits: &crate::limits::Limits,
    start: Timestamp,
    end: Timestamp,
) -> Result<Timestamp, QueryError> {
    let start = clamp_lookback(limits, start);
    check_query_length(limits, start, end)?;
    Ok(start)
}

/// The query engine.
pub struct Engine {
    store: Arc<Store>,
    overrides: Arc<Overrides>,
    /// Sources read concurrently (twice the cores: fetch overlaps decode).
    parallelism: usize,
}

impl Engine {
    pub fn new(store: Arc<Store>, overrides: Arc<Overrides>) -> Self {
        let parallelism = std::thread::available_parallelism().map_or(2, |n| n.get());
        Engine {
            store,
            overrides,
            parallelism,
        }
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Parses and runs a query. Dropping the future (or its timeout) stops
    /// the blocking workers it started at their next block.
    pub async fn execute(&self, p: QueryParams) -> Result<QueryResponse, QueryError> {
        self.execute_with(p, Cancel::new()).await
    }

    /// [`Engine::execute`] with the caller's cancellation flag, raised when
    /// this future ends or is dropped; the caller may also raise it.
    pub async fn execute_with(
        &self,
        mut p: QueryParams,
        cancel: Cancel,
    ) -> Result<QueryResponse, QueryError> {
        let _guard = cancel.guard();
        let started = Instant::now();
        let expr = syntax::parse(&p.query).map_err(|e| QueryError::Parse(e.to_string()))?;
        let limits = self.overrides.get(p.tenant.as_str());
        if p.instant && expr.is_log() {
            return Err(QueryError::BadRequest(
                "log queries are not supported as an instant query type, please change your query to a range query type"
                    .into(),
            ));
        }
        p.start = check_range(&limits, p.start, p.end)?;
        if expr.is_log() && p.limit > limits.max_entries_limit_per_query {
            return Err(QueryError::BadRequest(format!(
                "max entries limit per query exceeded, limit > max_entries_limit_per_query ({} > {})",
                p.limit, limits.max_entries_limit_per_query
            )));
        }
        let timeout = limits.query_timeout.get();
        let run = async {
            match &expr {
                ast::Expr::Log(log) => logs::run(self, &p, log, &cancel).await,
                ast::Expr::Sample(s) => metrics::run(self, &p, s, &cancel).await,
            }
        };
        let mut resp = if timeout.is_zero() {
            run.await?
        } else {
            tokio::time::timeout(timeout, run)
                .await
                .map_err(|_| QueryError::Timeout)??
        };
        resp.stats.exec_time_secs = started.elapsed().as_secs_f64();
        Ok(resp)
    }
}

/// A filesystem store in `dir` (Zstd, one flush worker) holding `streams`
/// of tenant `t`, every entry durable and every head chunk cut.
#[cfg(test)]
async fn test_store(
    dir: &std::path::Path,
    (block_size, chunk_target_size, wal_segment_size): (u64, u64, u64),
    streams: Vec<(crate::model::Labels, Vec<crate::model::Entry>)>,
) -> Arc<Store> {
    use std::time::Duration;

    use crate::config::ObjectBackend;
    use crate::store::StoreConfig;
    use crate::store::chunk::Codec;
    use crate::store::head::HeadConfig;
    use crate::store::object::ObjectStorage;

    let objects = ObjectStorage::open(&ObjectBackend::Filesystem {
        directory: dir.join("chunks"),
    })
    .unwrap();
    let cfg = StoreConfig {
        head: HeadConfig {
            codec: Codec::Zstd,
            block_size,
            chunk_target_size,
            chunk_idle_period: Duration::from_secs(1800),
            max_chunk_age: Duration::from_secs(7200),
        },
        wal_dir: dir.join("wal"),
        index_dir: dir.join("index"),
        wal_segment_size,
        flush_workers: 1,
        chunk_cache_bytes: 1 << 20,
        max_head_memory: 0,
    };
    let store = Store::open(cfg, objects).await.unwrap();
    let _bg = store.start(Duration::from_secs(3600));
    let tenant = TenantId::new("t").unwrap();
    for (labels, entries) in streams {
        let out = store.append(&tenant, &labels, entries).unwrap();
        if let Some(lsn) = out.lsn {
            store.wait_durable(lsn).await.unwrap();
        }
    }
    store.cut_due(true);
    store
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::config::units::ConfigDuration;
    use crate::limits::Limits;

    #[test]
    fn range_limits_clamp_lookback_before_checking_length() {
        let hour = 3_600_000_000_000i64;
        let limits = Limits {
            max_query_length: ConfigDuration(Duration::from_secs(2 * 3600)),
            max_query_lookback: ConfigDuration(Duration::from_secs(3600)),
            ..Limits::default()
        };
        let now = Timestamp::now();
        let start = check_range(&limits, now.saturating_sub_nanos(10 * hour), now).unwrap();
        assert!(
            start >= now.saturating_sub_nanos(hour),
            "10h back is clamped to 1h, then within the 2h length"
        );
        let no_lookback = Limits {
            max_query_lookback: ConfigDuration::ZERO,
            ..limits
        };
        let err = check_range(
            &no_lookback,
            Timestamp::from_secs(0),
            Timestamp::from_secs(3 * 3600 + 61),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the query time range exceeds the limit (query length: 3h1m1s, limit: 2h)",
            "length as Go's time.Duration, limit as Prometheus' model.Duration"
        );
    }
}
