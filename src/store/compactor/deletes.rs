//! Delete requests: Loki's `/loki/api/v1/delete` requests as the compactor
//! keeps and applies them (`pkg/compactor/deletion`).
//!
//! Owns the request records (persisted in the manifest), their sharding by
//! interval, their status text, cancellation, and what a parsed query looks
//! like to storage ([`DeleteQuery`]). Does not own the LogQL grammar: the
//! query text is parsed by a [`DeleteQueryParser`] the server passes in (the
//! API layer's parser today, `logql`'s once it exists), so `store` never
//! imports `logql`.
//!
//! Semantics (Loki's `DeleteRequest.IsDeleted` / `FilterFunction`): an entry
//! is deleted when its stream matches the selector, its timestamp lies in
//! `[start, end]` (milliseconds, both ends inclusive) and, when the query
//! has line filters, the filter keeps it. A chunk wholly inside the interval
//! of a request without line filters is deleted whole; any other chunk the
//! request touches is rewritten without the deleted entries.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::manifest::{ManifestError, ManifestStore};
use crate::model::{Labels, Matcher, TenantId, Timestamp};
use crate::store::chunk::DecodedBlock;

/// Decides, entry by entry, what a delete request's line filters select.
pub trait LineFilter: Send + Sync {
    /// Whether entry `i` of `block`, of the stream `labels`, is selected
    /// (and so deleted).
    fn selects(&self, labels: &Labels, block: &DecodedBlock, i: usize) -> bool;
}

/// A delete request's query, parsed: a stream selector and optional line
/// filters.
#[derive(Clone)]
pub struct DeleteQuery {
    pub matchers: Vec<Matcher>,
    pub filter: Option<Arc<dyn LineFilter>>,
}

impl std::fmt::Debug for DeleteQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeleteQuery")
            .field("matchers", &self.matchers)
            .field("has_filter", &self.filter.is_some())
            .finish()
    }
}

/// Parses a delete request's query text (Loki's `parseDeletionQuery`).
pub type DeleteQueryParser = Arc<dyn Fn(&str) -> Result<DeleteQuery, String> + Send + Sync>;

/// One interval of a request; requests with line filters are split into
/// several so progress shows as "N% Complete".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteShard {
    pub start_ms: i64,
    pub end_ms: i64,
    pub processed: bool,
}

/// A delete request as persisted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRequest {
    pub request_id: String,
    pub tenant: String,
    pub query: String,
    pub created_at_ms: i64,
    pub shards: Vec<DeleteShard>,
}

impl DeleteRequest {
    pub fn start_ms(&self) -> i64 {
        self.shards.iter().map(|s| s.start_ms).min().unwrap_or(0)
    }

    pub fn end_ms(&self) -> i64 {
        self.shards.iter().map(|s| s.end_ms).max().unwrap_or(0)
    }

    /// Loki's status: `received`, `processed` or `N% Complete`.
    pub fn status(&self) -> String {
        let done = self.shards.iter().filter(|s| s.processed).count();
        if done == 0 {
            "received".to_string()
        } else if done == self.shards.len() {
            "processed".to_string()
        } else {
            format!("{}% Complete", done * 100 / self.shards.len())
        }
    }

    /// Whether the cancel period has passed, so the compactor may apply it
    /// (Loki adds a minute against a race with a late cancel).
    pub fn is_ready(&self, now: Timestamp, cancel_period: Duration) -> bool {
        let wait_ms = i64::try_from(cancel_period.as_millis()).unwrap_or(i64::MAX);
        self.created_at_ms
            .saturating_add(wait_ms)
            .saturating_add(60_000)
            <= now.millis()
    }
}

/// Splits `[start, end]` as Loki's `util.ForInterval(interval, start, end,
/// false, …)`: boundaries aligned to `interval`, the first shard keeping the
/// original start, consecutive shards sharing their boundary millisecond.
pub fn shard_interval(start_ms: i64, end_ms: i64, interval: Duration) -> Vec<(i64, i64)> {
    let step = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
    if step <= 0 || step >= end_ms.saturating_sub(start_ms) {
        return vec![(start_ms, end_ms)];
    }
    let mut out = Vec::new();
    let mut s = start_ms - start_ms.rem_euclid(step);
    let mut first = true;
    while s < end_ms {
        let e = (s + step).min(end_ms);
        out.push((if first { start_ms } else { s }, e));
        first = false;
        s += step;
    }
    out
}

/// Why a cancellation was refused.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("could not find delete request with given id")]
    NotFound,
    #[error("deletion of request which is in process or already processed is not allowed")]
    AlreadyProcessed,
    #[error(
        "Unable to cancel partially completed delete request. To force, use the ?force query parameter"
    )]
    PartiallyProcessed,
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

impl ManifestStore {
    /// Records a new request with the given shards; returns its id.
    pub async fn add_delete_request(
        &self,
        tenant: &TenantId,
        query: &str,
        shards: &[(i64, i64)],
        now: Timestamp,
    ) -> Result<String, ManifestError> {
        self.update(|m| {
            let mut seq = m.delete_requests.len() as u64;
            let id = loop {
                let h = xxhash_rust::xxh3::xxh3_64(
                    format!("{tenant}\n{query}\n{}\n{seq}", now.nanos()).as_bytes(),
                );
                let id = format!("{:08x}", h as u32);
                if !m.delete_requests.iter().any(|r| r.request_id == id) {
                    break id;
                }
                seq += 1;
            };
            m.delete_requests.push(DeleteRequest {
                request_id: id.clone(),
                tenant: tenant.to_string(),
                query: query.to_string(),
                created_at_ms: now.millis(),
                shards: shards
                    .iter()
                    .map(|&(start_ms, end_ms)| DeleteShard {
                        start_ms,
                        end_ms,
                        processed: false,
                    })
                    .collect(),
            });
            Ok(id)
        })
        .await
    }

    /// A tenant's requests, oldest first.
    pub fn delete_requests(&self, tenant: &TenantId) -> Vec<DeleteRequest> {
        let mut v: Vec<DeleteRequest> = self
            .snapshot()
            .delete_requests
            .iter()
            .filter(|r| r.tenant == tenant.as_str())
            .cloned()
            .collect();
        v.sort_by_key(|r| r.created_at_ms);
        v
    }

    /// Cancels a request that is not processed yet (Loki's
    /// `CancelDeleteRequestHandler`): with `force`, the unprocessed shards
    /// of a partly processed one.
    ///
    /// Once `cancel_period` has passed since the request was made, a
    /// compactor run may already be applying it, so the cancel is refused
    /// as in process unless `force` is set; a forced cancel during a run
    /// makes that run abort before its index swap (the compactor re-checks
    /// its requests in the same manifest update that commits the run).
    pub async fn cancel_delete_request(
        &self,
        tenant: &TenantId,
        id: &str,
        force: bool,
        cancel_period: Duration,
        now: Timestamp,
    ) -> Result<(), CancelError> {
        self.update(|m| {
            let Some(pos) = m
                .delete_requests
                .iter()
                .position(|r| r.tenant == tenant.as_str() && r.request_id == id)
            else {
                return Err(CancelError::NotFound);
            };
            let r = &mut m.delete_requests[pos];
            let unprocessed = r.shards.iter().filter(|s| !s.processed).count();
            if unprocessed == 0 {
                return Err(CancelError::AlreadyProcessed);
            }
            let period_ms = i64::try_from(cancel_period.as_millis()).unwrap_or(i64::MAX);
            if !force && r.created_at_ms.saturating_add(period_ms) <= now.millis() {
                return Err(CancelError::AlreadyProcessed);
            }
            if unprocessed != r.shards.len() && !force {
                return Err(CancelError::PartiallyProcessed);
            }
            r.shards.retain(|s| s.processed);
            if r.shards.is_empty() {
                m.delete_requests.remove(pos);
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::object::ObjectStorage;

    #[test]
    fn shards_follow_loki_for_interval() {
        let h = 3_600_000;
        assert_eq!(
            shard_interval(0, 3 * h, Duration::from_secs(3600)),
            [(0, h), (h, 2 * h), (2 * h, 3 * h)]
        );
        // Unaligned start keeps the original start; the end is clipped.
        assert_eq!(
            shard_interval(h / 2, 2 * h + 5, Duration::from_secs(3600)),
            [(h / 2, h), (h, 2 * h), (2 * h, 2 * h + 5)]
        );
        assert_eq!(
            shard_interval(10, 20, Duration::from_secs(3600)),
            [(10, 20)],
            "interval longer than the range: one shard"
        );
        assert_eq!(shard_interval(10, 20, Duration::ZERO), [(10, 20)]);
    }

    #[test]
    fn status_text() {
        let shard = |processed| DeleteShard {
            start_ms: 0,
            end_ms: 1,
            processed,
        };
        let mut r = DeleteRequest {
            request_id: "x".into(),
            tenant: "t".into(),
            query: "{a=\"b\"}".into(),
            created_at_ms: 0,
            shards: vec![shard(false), shard(false), shard(false)],
        };
        assert_eq!(r.status(), "received");
        r.shards[0].processed = true;
        assert_eq!(r.status(), "33% Complete");
        r.shards.iter_mut().for_each(|s| s.processed = true);
        assert_eq!(r.status(), "processed");
        let day = Duration::from_secs(86_400);
        assert!(!r.is_ready(Timestamp::from_millis(86_400_000), day));
        assert!(r.is_ready(Timestamp::from_millis(86_460_000), day));
    }

    #[tokio::test]
    async fn add_list_cancel() {
        let store = ManifestStore::load(ObjectStorage::in_memory())
            .await
            .unwrap();
        let t = TenantId::new("t").unwrap();
        let other = TenantId::new("u").unwrap();
        let now = Timestamp::from_secs(1_700_000_000);
        let day = Duration::from_secs(86_400);
        let a = store
            .add_delete_request(&t, r#"{a="b"}"#, &[(0, 1000)], now)
            .await
            .unwrap();
        let b = store
            .add_delete_request(&t, r#"{a="b"}"#, &[(0, 10), (10, 20)], now)
            .await
            .unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 8);
        assert_eq!(store.delete_requests(&t).len(), 2);
        assert!(store.delete_requests(&other).is_empty());
        assert!(matches!(
            store
                .cancel_delete_request(&other, &a, false, day, now)
                .await,
            Err(CancelError::NotFound)
        ));
        store
            .cancel_delete_request(&t, &a, false, day, now)
            .await
            .unwrap();
        assert_eq!(store.delete_requests(&t).len(), 1);
        store
            .update(|m| {
                m.delete_requests[0].shards[0].processed = true;
                Ok::<_, ManifestError>(())
            })
            .await
            .unwrap();
        assert!(matches!(
            store.cancel_delete_request(&t, &b, false, day, now).await,
            Err(CancelError::PartiallyProcessed)
        ));
        store
            .cancel_delete_request(&t, &b, true, day, now)
            .await
            .unwrap();
        assert_eq!(store.delete_requests(&t)[0].status(), "processed");
        assert!(matches!(
            store.cancel_delete_request(&t, &b, true, day, now).await,
            Err(CancelError::AlreadyProcessed)
        ));
    }

    /// Regression (issue 5 audit): a cancel after the cancel period was
    /// accepted (204) although a compactor run could already be deleting
    /// the lines.
    #[tokio::test]
    async fn cancel_after_the_cancel_period_needs_force() {
        let store = ManifestStore::load(ObjectStorage::in_memory())
            .await
            .unwrap();
        let t = TenantId::new("t").unwrap();
        let created = Timestamp::from_secs(1_700_000_000);
        let period = Duration::from_secs(600);
        let id = store
            .add_delete_request(&t, r#"{a="b"}"#, &[(0, 1000)], created)
            .await
            .unwrap();
        let late = Timestamp::from_secs(1_700_000_600);
        let err = store
            .cancel_delete_request(&t, &id, false, period, late)
            .await
            .unwrap_err();
        assert!(matches!(err, CancelError::AlreadyProcessed), "{err:?}");
        assert_eq!(
            err.to_string(),
            "deletion of request which is in process or already processed is not allowed"
        );
        assert_eq!(store.delete_requests(&t).len(), 1, "still there");
        // One second earlier it could be cancelled; with force it still can.
        store
            .cancel_delete_request(&t, &id, true, period, late)
            .await
            .unwrap();
        assert!(store.delete_requests(&t).is_empty());
        let id = store
            .add_delete_request(&t, r#"{a="b"}"#, &[(0, 1000)], created)
            .await
            .unwrap();
        store
            .cancel_delete_request(&t, &id, false, period, Timestamp::from_secs(1_700_000_599))
            .await
            .unwrap();
    }
}
