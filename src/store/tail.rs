//! The live tail feed: entries appended to the head, handed to the tail
//! subscribers of their tenant whose stream selector matches.
//!
//! Owns: the per-tenant subscriber lists, each subscriber's bounded queue,
//! the per-tenant limit on concurrent subscribers, and the accounting of
//! entries dropped because a subscriber's queue was full (reported to the
//! client as Loki's `dropped_entries`).
//!
//! Does not own: LogQL (a subscriber matches stream labels only; the query's
//! pipeline runs on the consumer's side, in `api::tail`), the WebSocket,
//! durability (a batch carries the WAL position of its record; the consumer
//! waits for it to be durable before showing it to a client), nor
//! ordering across streams (the consumer sorts by timestamp within its
//! `delay_for` window).
//!
//! Invariants:
//! - Publishing never blocks on a subscriber: it takes each matching
//!   subscriber's queue lock for a push and lets go; nothing waits for a
//!   reader, nothing does I/O under a lock. A full queue drops entries and
//!   counts them, so a slow client can never slow ingestion down.
//! - With no subscriber anywhere, [`TailFeed::is_active`] is one atomic load
//!   and the append path does nothing else.
//! - A published batch is shared, not copied: every subscriber gets the same
//!   `Arc` of the entries the head accepted, and a range into it.
//! - Labels are matched once per published batch per subscriber, never per
//!   entry.
//! - Dropping a [`TailSubscription`] unsubscribes it and frees its queue.
//! - Within one stream, batches reach a subscriber in WAL order: the store
//!   publishes while it holds the stream's append lock.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;

use super::wal::Lsn;
use crate::model::{Entry, Labels, Matcher, StreamId, TenantId, Timestamp};

/// Dropped entries remembered for one report to the client, as Loki's
/// `maxDroppedEntriesPerTailResponse`; beyond it, drops are only counted.
pub const MAX_DROPPED_REPORTED: usize = 1000;

/// Default bound of a subscriber's queue, in entries: Loki buffers 10
/// responses of up to 100 entries per tail; a little more slack here, since
/// our queue also absorbs the bursts a push of thousands of lines brings.
pub const DEFAULT_QUEUE_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TailError {
    /// Loki's `checkTailRequestLimit` message.
    #[error("max concurrent tail requests limit exceeded, count > limit ({count} > {limit})")]
    TooManyTails { count: usize, limit: usize },
}

/// What a subscriber asks for.
#[derive(Debug, Clone)]
pub struct TailRequest {
    pub tenant: TenantId,
    /// The stream selector; every matcher must match the stream's labels.
    pub matchers: Vec<Matcher>,
    /// Entries the queue holds before it drops (at least 1).
    pub queue_entries: usize,
    /// Concurrent subscriptions allowed for the tenant. As in Loki
    /// (`count >= limit` refuses), 0 refuses every subscription.
    pub max_per_tenant: usize,
}

/// Entries of one stream appended by one push, as a subscriber receives
/// them: a shared slice of what the head accepted.
#[derive(Debug, Clone)]
pub struct TailBatch {
    labels: Arc<Labels>,
    stream: StreamId,
    entries: Arc<Vec<Entry>>,
    range: Range<usize>,
    lsn: Lsn,
}

impl TailBatch {
    /// The stream's labels.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// Shared handle on the stream's labels.
    pub fn labels_arc(&self) -> &Arc<Labels> {
        &self.labels
    }

    pub fn stream_id(&self) -> StreamId {
        self.stream
    }

    /// The entries, in the order the head accepted them.
    pub fn entries(&self) -> &[Entry] {
        &self.entries[self.range.clone()]
    }

    /// The WAL record holding these entries: they are durable once the WAL
    /// is durable up to it.
    pub fn lsn(&self) -> Lsn {
        self.lsn
    }
}

/// One entry a subscriber lost because its queue was full.
#[derive(Debug, Clone, PartialEq)]
pub struct DroppedEntry {
    pub labels: Arc<Labels>,
    pub ts: Timestamp,
}

/// Everything queued for a subscriber since it last looked.
#[derive(Debug, Default)]
pub struct TailDelivery {
    pub batches: Vec<TailBatch>,
    /// Up to [`MAX_DROPPED_REPORTED`] of the entries dropped since the last
    /// delivery.
    pub dropped: Vec<DroppedEntry>,
    /// How many entries were dropped since the last delivery (may exceed
    /// `dropped.len()`).
    pub dropped_count: u64,
}

impl TailDelivery {
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty() && self.dropped_count == 0
    }

    /// Entries in the batches.
    pub fn entry_count(&self) -> usize {
        self.batches.iter().map(|b| b.range.len()).sum()
    }
}

#[derive(Debug, Default)]
struct Queue {
    batches: Vec<TailBatch>,
    entries: usize,
    dropped: Vec<DroppedEntry>,
    dropped_count: u64,
}

#[derive(Debug)]
struct Subscriber {
    id: u64,
    matchers: Vec<Matcher>,
    capacity: usize,
    queue: Mutex<Queue>,
    ready: Notify,
}

impl Subscriber {
    fn matches(&self, labels: &Labels) -> bool {
        self.matchers.iter().all(|m| m.matches_labels(labels))
    }

    /// Queues what fits of `entries[range]`, drops the rest; never waits.
    /// Returns the number of entries dropped.
    fn offer(
        &self,
        labels: &Arc<Labels>,
        stream: StreamId,
        entries: &Arc<Vec<Entry>>,
        lsn: Lsn,
    ) -> usize {
        let total = entries.len();
        let mut q = self.queue.lock();
        let room = self.capacity.saturating_sub(q.entries);
        let kept = room.min(total);
        if kept > 0 {
            q.entries += kept;
            q.batches.push(TailBatch {
                labels: Arc::clone(labels),
                stream,
                entries: Arc::clone(entries),
                range: 0..kept,
                lsn,
            });
        }
        let dropped = total - kept;
        if dropped > 0 {
            q.dropped_count += dropped as u64;
            let report = MAX_DROPPED_REPORTED
                .saturating_sub(q.dropped.len())
                .min(dropped);
            for e in &entries[kept..kept + report] {
                q.dropped.push(DroppedEntry {
                    labels: Arc::clone(labels),
                    ts: e.ts,
                });
            }
        }
        drop(q);
        self.ready.notify_one();
        dropped
    }

    fn take(&self) -> Option<TailDelivery> {
        let mut q = self.queue.lock();
        if q.batches.is_empty() && q.dropped_count == 0 {
            return None;
        }
        q.entries = 0;
        Some(TailDelivery {
            batches: std::mem::take(&mut q.batches),
            dropped: std::mem::take(&mut q.dropped),
            dropped_count: std::mem::replace(&mut q.dropped_count, 0),
        })
    }
}

/// The feed: per-tenant subscribers of live entries.
#[derive(Debug, Default)]
pub struct TailFeed {
    /// Subscribers across every tenant (the append path's fast check).
    active: AtomicUsize,
    tenants: RwLock<HashMap<TenantId, Vec<Arc<Subscriber>>>>,
    next_id: AtomicU64,
    /// Entries dropped because a queue was full, since start.
    dropped_total: AtomicU64,
    /// Entries handed to subscribers, since start.
    delivered_total: AtomicU64,
}

impl TailFeed {
    pub fn new() -> Arc<TailFeed> {
        Arc::new(TailFeed::default())
    }

    /// Whether anyone tails at all: the only cost of the feed on the append
    /// path when nobody does.
    #[inline]
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::SeqCst) > 0
    }

    /// Subscribers of every tenant.
    pub fn subscriber_count(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Subscribers of one tenant.
    pub fn tenant_subscriber_count(&self, tenant: &TenantId) -> usize {
        self.tenants.read().get(tenant).map_or(0, Vec::len)
    }

    /// Entries dropped since start because a subscriber's queue was full.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total.load(Ordering::Relaxed)
    }

    /// Entries queued for subscribers since start.
    pub fn delivered_total(&self) -> u64 {
        self.delivered_total.load(Ordering::Relaxed)
    }

    /// Registers a subscriber, refusing it when the tenant already has
    /// `max_per_tenant` of them.
    pub fn subscribe(self: &Arc<Self>, req: TailRequest) -> Result<TailSubscription, TailError> {
        let sub = Arc::new(Subscriber {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            matchers: req.matchers,
            capacity: req.queue_entries.max(1),
            queue: Mutex::new(Queue::default()),
            ready: Notify::new(),
        });
        {
            let mut tenants = self.tenants.write();
            let count = tenants.get(&req.tenant).map_or(0, Vec::len);
            if count >= req.max_per_tenant {
                return Err(TailError::TooManyTails {
                    count: count + 1,
                    limit: req.max_per_tenant,
                });
            }
            tenants
                .entry(req.tenant.clone())
                .or_default()
                .push(Arc::clone(&sub));
            // Under the lock, so a publisher that sees the count also finds
            // the subscriber.
            self.active.fetch_add(1, Ordering::SeqCst);
        }
        Ok(TailSubscription {
            feed: Arc::clone(self),
            tenant: req.tenant,
            sub,
        })
    }

    /// Hands a stream's freshly appended entries to every subscriber of the
    /// tenant whose selector matches the stream. Never blocks on a reader.
    pub fn publish(
        &self,
        tenant: &TenantId,
        labels: &Labels,
        stream: StreamId,
        entries: Vec<Entry>,
        lsn: Lsn,
    ) {
        if entries.is_empty() || !self.is_active() {
            return;
        }
        let tenants = self.tenants.read();
        let Some(list) = tenants.get(tenant) else {
            return;
        };
        let mut shared: Option<(Arc<Labels>, Arc<Vec<Entry>>)> = None;
        let mut entries = Some(entries);
        for sub in list {
            if !sub.matches(labels) {
                continue;
            }
            let (l, e) = shared.get_or_insert_with(|| {
                (
                    Arc::new(labels.clone()),
                    Arc::new(entries.take().unwrap_or_default()),
                )
            });
            let dropped = sub.offer(l, stream, e, lsn);
            self.dropped_total
                .fetch_add(dropped as u64, Ordering::Relaxed);
            self.delivered_total
                .fetch_add((e.len() - dropped) as u64, Ordering::Relaxed);
        }
    }

    fn unsubscribe(&self, tenant: &TenantId, id: u64) {
        let mut tenants = self.tenants.write();
        if let Some(list) = tenants.get_mut(tenant) {
            let before = list.len();
            list.retain(|s| s.id != id);
            if list.len() < before {
                self.active.fetch_sub(1, Ordering::SeqCst);
            }
            if list.is_empty() {
                tenants.remove(tenant);
            }
        }
    }
}

/// A live subscription; dropping it unsubscribes.
#[derive(Debug)]
pub struct TailSubscription {
    feed: Arc<TailFeed>,
    tenant: TenantId,
    sub: Arc<Subscriber>,
}

impl TailSubscription {
    /// Everything queued now, if anything.
    pub fn try_recv(&self) -> Option<TailDelivery> {
        self.sub.take()
    }

    /// Waits until something is queued (or entries were dropped), then
    /// takes all of it. Cancel-safe.
    pub async fn recv(&self) -> TailDelivery {
        loop {
            if let Some(d) = self.sub.take() {
                return d;
            }
            // `notify_one` leaves a permit when nobody waits, so an offer
            // between `take` and here is not missed.
            self.sub.ready.notified().await;
        }
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }
}

impl Drop for TailSubscription {
    fn drop(&mut self) {
        self.feed.unsubscribe(&self.tenant, self.sub.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MatchOp;

    fn tenant(t: &str) -> TenantId {
        TenantId::new(t).unwrap()
    }

    fn labels(s: &str) -> Labels {
        Labels::parse(s).unwrap()
    }

    fn entries(n: usize, from: i64) -> Vec<Entry> {
        (0..n)
            .map(|i| Entry::new(Timestamp::from_nanos(from + i as i64), format!("line {i}")))
            .collect()
    }

    fn request(t: &str, matchers: Vec<Matcher>, queue: usize) -> TailRequest {
        TailRequest {
            tenant: tenant(t),
            matchers,
            queue_entries: queue,
            max_per_tenant: 10,
        }
    }

    fn eq(name: &str, value: &str) -> Matcher {
        Matcher::new(name, MatchOp::Eq, value).unwrap()
    }

    fn publish(feed: &TailFeed, t: &str, l: &str, e: Vec<Entry>, lsn: u64) {
        let l = labels(l);
        feed.publish(&tenant(t), &l, l.stream_id(), e, Lsn(lsn));
    }

    #[test]
    fn only_matching_streams_of_the_tenant_arrive() {
        let feed = TailFeed::new();
        let sub = feed
            .subscribe(request("t1", vec![eq("app", "api")], 100))
            .unwrap();
        let re = feed
            .subscribe(request(
                "t1",
                vec![Matcher::new("app", MatchOp::Re, "a.*").unwrap()],
                100,
            ))
            .unwrap();
        publish(&feed, "t1", r#"{app="api", env="p"}"#, entries(3, 10), 1);
        publish(&feed, "t1", r#"{app="web"}"#, entries(2, 20), 2);
        publish(&feed, "t2", r#"{app="api"}"#, entries(4, 30), 3);
        publish(&feed, "t1", r#"{app="admin"}"#, entries(1, 40), 4);

        let d = sub.try_recv().unwrap();
        assert_eq!(d.batches.len(), 1, "web, admin and tenant t2 do not match");
        assert_eq!(d.batches[0].labels().get("app"), Some("api"));
        assert_eq!(d.batches[0].entries().len(), 3);
        assert_eq!(d.batches[0].lsn(), Lsn(1));
        assert_eq!(d.dropped_count, 0);
        assert!(sub.try_recv().is_none(), "taken once");

        let d = re.try_recv().unwrap();
        let apps: Vec<_> = d.batches.iter().map(|b| b.labels().get("app")).collect();
        assert_eq!(apps, [Some("api"), Some("admin")]);
        // Both subscribers share one copy of the entries.
        let d1 = {
            publish(&feed, "t1", r#"{app="api"}"#, entries(1, 50), 5);
            (sub.try_recv().unwrap(), re.try_recv().unwrap())
        };
        assert!(std::ptr::eq(
            d1.0.batches[0].entries().as_ptr(),
            d1.1.batches[0].entries().as_ptr()
        ));
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_blocking() {
        let feed = TailFeed::new();
        let sub = feed.subscribe(request("t", vec![], 5)).unwrap();
        publish(&feed, "t", r#"{a="1"}"#, entries(3, 0), 1);
        publish(&feed, "t", r#"{a="1"}"#, entries(4, 100), 2);
        publish(&feed, "t", r#"{a="1"}"#, entries(2, 200), 3);
        let d = sub.try_recv().unwrap();
        assert_eq!(d.entry_count(), 5);
        let kept: Vec<i64> = d
            .batches
            .iter()
            .flat_map(|b| b.entries().iter().map(|e| e.ts.nanos()))
            .collect();
        assert_eq!(kept, [0, 1, 2, 100, 101], "oldest queued entries kept");
        assert_eq!(d.dropped_count, 4);
        let dropped: Vec<i64> = d.dropped.iter().map(|e| e.ts.nanos()).collect();
        assert_eq!(dropped, [102, 103, 200, 201]);
        assert_eq!(feed.dropped_total(), 4);
        // Room again after the take.
        publish(&feed, "t", r#"{a="1"}"#, entries(5, 300), 4);
        let d = sub.try_recv().unwrap();
        assert_eq!((d.entry_count(), d.dropped_count), (5, 0));
    }

    #[test]
    fn dropped_reports_are_capped_but_counted() {
        let feed = TailFeed::new();
        let sub = feed.subscribe(request("t", vec![], 1)).unwrap();
        publish(&feed, "t", r#"{a="1"}"#, entries(1500, 0), 1);
        publish(&feed, "t", r#"{a="1"}"#, entries(10, 5000), 2);
        let d = sub.try_recv().unwrap();
        assert_eq!(d.entry_count(), 1);
        assert_eq!(d.dropped.len(), MAX_DROPPED_REPORTED);
        assert_eq!(d.dropped_count, 1509);
    }

    #[test]
    fn the_tenant_limit_refuses_the_next_subscriber_like_loki() {
        let feed = TailFeed::new();
        let mut req = request("t", vec![], 10);
        req.max_per_tenant = 2;
        let a = feed.subscribe(req.clone()).unwrap();
        let _b = feed.subscribe(req.clone()).unwrap();
        let err = feed.subscribe(req.clone()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "max concurrent tail requests limit exceeded, count > limit (3 > 2)"
        );
        // Another tenant is not affected.
        let _c = feed.subscribe(request("other", vec![], 10)).unwrap();
        let mut none = request("zero", vec![], 10);
        none.max_per_tenant = 0;
        assert_eq!(
            feed.subscribe(none).unwrap_err(),
            TailError::TooManyTails { count: 1, limit: 0 },
            "a zero limit refuses every tail, as Loki's check does"
        );
        assert_eq!(feed.tenant_subscriber_count(&tenant("zero")), 0);
        drop(a);
        assert!(feed.subscribe(req).is_ok(), "a slot freed by a drop");
    }

    #[test]
    fn dropping_a_subscription_unsubscribes() {
        let feed = TailFeed::new();
        assert!(!feed.is_active());
        let a = feed.subscribe(request("t", vec![], 10)).unwrap();
        let b = feed.subscribe(request("u", vec![], 10)).unwrap();
        assert!(feed.is_active());
        assert_eq!(feed.subscriber_count(), 2);
        drop(a);
        assert_eq!(feed.tenant_subscriber_count(&tenant("t")), 0);
        assert_eq!(feed.subscriber_count(), 1);
        drop(b);
        assert!(!feed.is_active());
        assert!(feed.tenants.read().is_empty(), "no empty tenant lists left");
        // Publishing with nobody listening is a no-op.
        publish(&feed, "t", r#"{a="1"}"#, entries(3, 0), 1);
        assert_eq!(feed.delivered_total(), 0);
    }

    #[tokio::test]
    async fn recv_wakes_on_publish() {
        let feed = TailFeed::new();
        let sub = feed.subscribe(request("t", vec![], 10)).unwrap();
        let f2 = Arc::clone(&feed);
        let h = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            publish(&f2, "t", r#"{a="1"}"#, entries(2, 0), 7);
        });
        let d = tokio::time::timeout(std::time::Duration::from_secs(5), sub.recv())
            .await
            .unwrap();
        assert_eq!(d.entry_count(), 2);
        assert_eq!(d.batches[0].lsn(), Lsn(7));
        h.await.unwrap();
    }
}
