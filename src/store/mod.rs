//! Storage: the write-ahead log, chunks, the label index, the object store,
//! per-stream heads and the compactor, behind one facade — the only door into
//! storage for the layers above.
//!
//! Write path: [`Store::append`] appends a stream's batch to its head and the
//! WAL under the stream lock; the caller awaits [`Store::wait_durable`] before
//! acknowledging. Chunks are cut by size (at append), idleness or age (flush
//! loop); a flush worker stores each chunk object, logs a flush marker in the
//! WAL (the chunk reference plus the WAL interval it covers), adds the
//! reference to the index, and — after the index commit — forgets the chunk
//! from the head and lets the WAL drop segments nothing needs any more.
//!
//! Replay: flush markers tell which WAL entries are already in stored chunks
//! (skipped) and which chunk references the index must have (re-added
//! idempotently); every other entry goes back into the head. Nothing
//! acknowledged is lost and nothing is duplicated.
//!
//! Read path: [`Store::select`] snapshots the head first, then asks the
//! index, and drops index hits that the snapshot already holds as pending
//! chunks, so a chunk being flushed is read exactly once. Stored chunks are
//! read through the chunk cache ([`cache`]).
//!
//! The object store is the source of truth for everything but the WAL:
//! chunks, index snapshots ([`snapshot`]: uploaded after every index
//! commit, downloaded on demand by a node whose disk lacks a partition) and
//! the compactor's manifest. A fresh node with an empty disk pointed at the
//! same bucket serves every flushed entry.
//!
//! The compactor ([`compactor`]) removes, rewrites and merges stored chunks.
//! WAL replay must not resurrect what it removed: replay skips re-adding the
//! chunk references the manifest tombstones, and re-applies the manifest's
//! unfinished index swaps. A tombstone is kept while the WAL may still hold
//! the chunk's flush marker. Index swaps (add the new chunk, remove the old
//! ones) run under the exclusive side of the commit gate, so no flush's
//! commit can publish half a swap.
//!
//! Start-up needs no object store: the WAL is replayed into the head from
//! the local disk alone. What needs the bucket — loading the manifest,
//! discovering the index snapshots, re-indexing replayed flush markers —
//! is tried once in [`Store::open`] and, if the bucket is unreachable,
//! retried in the background by [`Store::start`]. Until it succeeds
//! ([`Store::is_remote_ready`]) pushes are accepted and served from the
//! head, flush workers hold their chunks, the compactor does not run and
//! the manifest refuses writes; nothing written locally can then overwrite
//! a newer copy in the bucket.
//!
//! Pushes are refused (retryably) once the head holds more than
//! `max_head_memory` bytes, which bounds memory while the object store is
//! slow or down; entries already acknowledged stay in the WAL and the head
//! until their chunk is stored.

pub mod cache;
pub mod chunk;
pub mod compactor;
pub mod head;
pub mod index;
pub mod object;
pub mod snapshot;
pub mod tail;
pub mod wal;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use object_store::path::Path as ObjectPath;
use tokio::sync::{Notify, mpsc};

use crate::model::{Entry, Labels, Matcher, StreamId, TenantId, Timestamp};
use cache::ChunkCache;
use chunk::{BlockMeta, Chunk, ChunkError, DecodedBlock, SealedBlock};
use compactor::CompactorCounters;
use compactor::manifest::{ChunkRecord, ManifestError, ManifestStore};
use head::{AppendError, Head, HeadConfig, HeadSnapshot, PendingChunk};
use index::{ChunkRef, Day, IndexError, IndexedStream, LabelIndex};
use object::{ObjectError, ObjectStorage};
use snapshot::{IndexSnapshots, SnapshotError};
use wal::{Lsn, Record, RecordRef, Wal, WalError, WalOptions};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Object(#[from] ObjectError),
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    #[error("{0}")]
    Head(#[from] head::HeadError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("replaying the WAL: {0}")]
    Replay(String),
    #[error("storage task failed: {0}")]
    Task(String),
    #[error(
        "the object store has been unreachable since start-up; the index and the compactor state are not loaded yet, retry later"
    )]
    RemoteNotReady,
    #[error(
        "ingester head memory limit exceeded: {bytes} bytes of log data wait in memory, the limit (ingester.max_head_memory) is {limit}; chunks are not being stored as fast as they arrive (is the object store reachable?), retry later"
    )]
    HeadFull { bytes: u64, limit: u64 },
}

impl StoreError {
    /// Whether retrying later can succeed (maps to 503 rather than 500).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Object(_)
                | StoreError::Snapshot(SnapshotError::Object(_))
                | StoreError::Manifest(ManifestError::Object(_) | ManifestError::NotLoaded)
                | StoreError::RemoteNotReady
                | StoreError::HeadFull { .. }
        )
    }
}

#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub head: HeadConfig,
    pub wal_dir: PathBuf,
    pub index_dir: PathBuf,
    pub wal_segment_size: u64,
    /// Concurrent chunk uploads.
    pub flush_workers: usize,
    /// Bytes of the chunk cache in front of the object store (0: none).
    pub chunk_cache_bytes: u64,
    /// Pushes are refused once the head holds more (0: no limit).
    pub max_head_memory: u64,
}

/// Counters exported on /metrics.
#[derive(Debug, Default)]
pub struct StoreCounters {
    pub chunks_flushed: AtomicU64,
    pub chunk_bytes_flushed: AtomicU64,
    pub chunk_entries_flushed: AtomicU64,
    pub flush_failures: AtomicU64,
    pub wal_replayed_entries: AtomicU64,
}

/// The storage facade.
pub struct Store {
    head: Head,
    wal: Wal,
    index: Arc<LabelIndex>,
    objects: ObjectStorage,
    pub(crate) snapshots: IndexSnapshots,
    pub(crate) manifest: ManifestStore,
    pub(crate) cache: ChunkCache,
    /// Chunks whose flush marker may still be in the WAL, with its LSN.
    wal_markers: parking_lot::Mutex<HashMap<(TenantId, String), Lsn>>,
    /// Shared by flushes around their index add and commit, exclusive for
    /// the compactor's swaps, so a commit never publishes half a swap.
    pub(crate) commit_gate: parking_lot::RwLock<()>,
    /// Group commit of the index: chunk references added by flushes
    /// (numbered in order of completed adds), the number covered by the
    /// last commit, and the leader lock. A flush adds its reference, then
    /// either finds a later commit already covers it or commits everything
    /// added so far itself — a burst of flushes shares a few commits.
    index_added: AtomicU64,
    index_committed: AtomicU64,
    index_commit_lock: tokio::sync::Mutex<()>,
    /// Partitions committed whose snapshot upload has not succeeded yet.
    unsynced: tokio::sync::Mutex<BTreeSet<(TenantId, Day)>>,
    flush_tx: mpsc::UnboundedSender<Arc<PendingChunk>>,
    flush_rx: parking_lot::Mutex<Option<mpsc::UnboundedReceiver<Arc<PendingChunk>>>>,
    /// Chunks handed to workers and not yet indexed.
    in_flight: AtomicU64,
    idle: Notify,
    pub counters: StoreCounters,
    /// The compactor's counters (here so /metrics finds them on the store).
    pub compactor_counters: CompactorCounters,
    /// Live tail subscribers, fed by [`Store::append`].
    tail: Arc<tail::TailFeed>,
    /// Whether the start-up work that needs the object store is done (see
    /// the module docs), and the replayed flush markers waiting for it.
    remote_ready: tokio::sync::watch::Sender<bool>,
    deferred_reindex: tokio::sync::Mutex<Option<Vec<Reindex>>>,
    cfg: StoreConfig,
}

/// Where one stream's entries for a query live.
#[derive(Clone, Debug)]
pub enum Source {
    /// The open head block (sorted copy).
    Open(Arc<DecodedBlock>),
    /// A sealed head block.
    Sealed(SealedBlock),
    /// A cut chunk not yet in the index.
    Pending(Arc<PendingChunk>),
    /// A stored chunk.
    Stored(ChunkRef),
}

impl Source {
    /// Time bounds of the source's entries (inclusive).
    pub fn bounds(&self) -> (Timestamp, Timestamp) {
        match self {
            Source::Open(b) => (b.ts(0), b.ts(b.len().saturating_sub(1))),
            Source::Sealed(b) => (b.meta.min_ts, b.meta.max_ts),
            Source::Pending(p) => (p.chunk_ref.from, p.chunk_ref.through),
            Source::Stored(c) => (c.from, c.through),
        }
    }

    pub fn is_head(&self) -> bool {
        !matches!(self, Source::Stored(_))
    }
}

/// A stream selected for a query, with every source overlapping the range.
#[derive(Clone, Debug)]
pub struct StreamData {
    pub id: StreamId,
    pub labels: Labels,
    pub sources: Vec<Source>,
}

/// One block to read: decoded already, or compressed with its metadata.
#[derive(Clone, Debug)]
pub enum BlockData {
    Decoded(Arc<DecodedBlock>),
    Compressed { meta: BlockMeta, data: Bytes },
}

impl BlockData {
    pub fn bounds(&self) -> (Timestamp, Timestamp) {
        match self {
            BlockData::Decoded(b) => (b.ts(0), b.ts(b.len().saturating_sub(1))),
            BlockData::Compressed { meta, .. } => (meta.min_ts, meta.max_ts),
        }
    }

    /// Decompresses (blocking work: call from a blocking thread).
    pub fn decode(&self) -> Result<Arc<DecodedBlock>, StoreError> {
        match self {
            BlockData::Decoded(b) => Ok(b.clone()),
            BlockData::Compressed { meta, data } => {
                Ok(Arc::new(chunk::decode_block_bytes(meta, data)?))
            }
        }
    }
}

/// The object key of a chunk.
pub fn chunk_path(tenant: &TenantId, c: &ChunkRef) -> ObjectPath {
    ObjectPath::from(format!("{}/chunks/{}", tenant, c.id()))
}

/// A chunk reference of a replayed flush marker, to re-add to the index.
type Reindex = (TenantId, Labels, ChunkRef, Lsn);

/// What one replayed flush marker says is already stored: the stream's
/// entries with an LSN in `(after, up_to]` and a timestamp in
/// `[from, through]`.
struct Covered {
    after: Lsn,
    up_to: Lsn,
    from: Timestamp,
    through: Timestamp,
}

/// What WAL replay found: chunk references to re-add and chunks re-cut.
struct ReplayOutcome {
    reindex: Vec<Reindex>,
    cut: Vec<Arc<PendingChunk>>,
}

impl Store {
    /// Opens storage: replays the WAL into the head, then (see
    /// [`Store::connect_remote`]) loads the compactor manifest, discovers
    /// the index snapshots in the object store and finishes any index swap
    /// the compactor was doing at a crash. An unreachable object store does
    /// not fail the open: that second part is retried by [`Store::start`].
    /// Call [`Store::start`] afterwards to run the background machinery.
    pub async fn open(cfg: StoreConfig, objects: ObjectStorage) -> Result<Arc<Store>, StoreError> {
        let manifest = ManifestStore::unloaded(objects.clone());
        let c = cfg.clone();
        let (index, wal, replay) = tokio::task::spawn_blocking(move || {
            let index = Arc::new(LabelIndex::open(&c.index_dir)?);
            let (wal, replay) = Wal::open(
                &c.wal_dir,
                WalOptions {
                    segment_size: c.wal_segment_size,
                },
            )?;
            Ok::<_, StoreError>((index, wal, replay))
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))??;
        let snapshots = IndexSnapshots::new(objects.clone(), index.clone());
        let (flush_tx, flush_rx) = mpsc::unbounded_channel();
        let store = Arc::new(Store {
            head: Head::new(cfg.head.clone()),
            wal,
            index,
            objects,
            snapshots,
            manifest,
            cache: ChunkCache::new(cfg.chunk_cache_bytes),
            wal_markers: parking_lot::Mutex::new(HashMap::new()),
            commit_gate: parking_lot::RwLock::new(()),
            index_added: AtomicU64::new(0),
            index_committed: AtomicU64::new(0),
            index_commit_lock: tokio::sync::Mutex::new(()),
            unsynced: tokio::sync::Mutex::new(BTreeSet::new()),
            flush_tx,
            flush_rx: parking_lot::Mutex::new(Some(flush_rx)),
            in_flight: AtomicU64::new(0),
            idle: Notify::new(),
            counters: StoreCounters::default(),
            compactor_counters: CompactorCounters::default(),
            tail: tail::TailFeed::new(),
            remote_ready: tokio::sync::watch::Sender::new(false),
            deferred_reindex: tokio::sync::Mutex::new(None),
            cfg,
        });
        let s2 = store.clone();
        let outcome = tokio::task::spawn_blocking(move || s2.replay(replay))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))??;
        *store.deferred_reindex.lock().await = Some(outcome.reindex);
        for p in outcome.cut {
            store.enqueue(p);
        }
        match store.connect_remote().await {
            Ok(()) => {}
            Err(e) if e.is_retryable() => tracing::warn!(
                error = %e,
                "object store unreachable at start-up: accepting pushes into the WAL and the head; chunks are stored once it is back"
            ),
            Err(e) => return Err(e),
        }
        Ok(store)
    }

    /// The start-up work that needs the object store: loads the manifest,
    /// discovers the index snapshots and re-indexes the flush markers
    /// replayed from the WAL. Idempotent; a failed attempt can be retried.
    pub async fn connect_remote(&self) -> Result<(), StoreError> {
        let mut deferred = self.deferred_reindex.lock().await;
        if self.is_remote_ready() {
            return Ok(());
        }
        self.manifest.fetch().await?;
        self.snapshots.discover().await?;
        self.reindex_after_replay(deferred.as_deref().unwrap_or_default())
            .await?;
        *deferred = None;
        self.remote_ready.send_replace(true);
        Ok(())
    }

    /// Whether [`Store::connect_remote`] has succeeded.
    pub fn is_remote_ready(&self) -> bool {
        *self.remote_ready.borrow()
    }

    /// Waits until [`Store::connect_remote`] has succeeded.
    async fn wait_remote_ready(&self) {
        let mut rx = self.remote_ready.subscribe();
        // The sender lives in `self`, so the wait ends only by readiness.
        let _ = rx.wait_for(|ready| *ready).await;
    }

    /// Re-adds the chunk references of replayed flush markers (except those
    /// the compactor removed since) and re-applies unfinished compactor
    /// swaps, in one commit.
    async fn reindex_after_replay(&self, reindex: &[Reindex]) -> Result<(), StoreError> {
        let manifest = self.manifest.snapshot();
        let mut adds: Vec<(TenantId, Labels, ChunkRef)> = Vec::new();
        {
            let mut markers = self.wal_markers.lock();
            for (tenant, labels, chunk_ref, lsn) in reindex {
                let id = chunk_ref.id();
                markers.insert((tenant.clone(), id.clone()), *lsn);
                if !manifest.is_tombstoned(tenant.as_str(), &id) {
                    adds.push((tenant.clone(), labels.clone(), *chunk_ref));
                }
            }
        }
        let mut removes: Vec<(TenantId, ChunkRef)> = Vec::new();
        for intent in &manifest.intents {
            let tenant =
                TenantId::new(&intent.tenant).map_err(|e| StoreError::Replay(e.to_string()))?;
            let labels =
                Labels::parse(&intent.labels).map_err(|e| StoreError::Replay(e.to_string()))?;
            for c in &intent.add {
                let c = ChunkRef::from(c);
                if !manifest.is_tombstoned(tenant.as_str(), &c.id()) {
                    adds.push((tenant.clone(), labels.clone(), c));
                }
            }
            removes.extend(
                intent
                    .remove
                    .iter()
                    .map(|c| (tenant.clone(), ChunkRef::from(c))),
            );
        }
        if adds.is_empty() && removes.is_empty() {
            return Ok(());
        }
        let mut days: HashMap<TenantId, HashSet<Day>> = HashMap::new();
        for (t, c) in adds
            .iter()
            .map(|(t, _, c)| (t, c))
            .chain(removes.iter().map(|(t, c)| (t, c)))
        {
            days.entry(t.clone()).or_default().extend(chunk_days(c));
        }
        for (t, d) in &days {
            let d: Vec<Day> = d.iter().copied().collect();
            self.snapshots.ensure_local(t, &d).await?;
        }
        let index = self.index.clone();
        let committed = tokio::task::spawn_blocking(move || {
            for (tenant, labels, chunk_ref) in &adds {
                index.add(tenant, labels, chunk_ref)?;
            }
            for (tenant, chunk_ref) in &removes {
                index.remove(tenant, chunk_ref)?;
            }
            index.commit()
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))??;
        self.snapshots.sync_all(&committed).await?;
        if !manifest.intents.is_empty() {
            self.manifest
                .update(|m| {
                    m.intents.clear();
                    Ok::<_, ManifestError>(())
                })
                .await?;
        }
        Ok(())
    }

    fn replay(&self, replay: wal::Replay) -> Result<ReplayOutcome, StoreError> {
        // Pass 1 over the records in memory: which entries are flushed. A
        // marker covers the stream's entries with an LSN in its interval and
        // a timestamp in its chunk's span (a chunk holds one day of a stream;
        // markers written before chunks were cut per day cover every entry
        // of their interval, all of which lie in the chunk's span too).
        type Key = (TenantId, String);
        let mut records = Vec::new();
        let mut flushed: HashMap<Key, Vec<Covered>> = HashMap::new();
        let mut reindex: Vec<Reindex> = Vec::new();
        for item in replay {
            let (lsn, record) = item?;
            match &record {
                Record::Flushed {
                    tenant,
                    labels,
                    up_to,
                    payload,
                } => {
                    let tenant =
                        TenantId::new(tenant).map_err(|e| StoreError::Replay(e.to_string()))?;
                    let (after, chunk_ref) = decode_marker(payload).map_err(StoreError::Replay)?;
                    let parsed =
                        Labels::parse(labels).map_err(|e| StoreError::Replay(e.to_string()))?;
                    flushed
                        .entry((tenant.clone(), labels.to_string()))
                        .or_default()
                        .push(Covered {
                            after,
                            up_to: *up_to,
                            from: chunk_ref.from,
                            through: chunk_ref.through,
                        });
                    reindex.push((tenant, parsed, chunk_ref, lsn));
                }
                Record::Entries { .. } => records.push((lsn, record)),
            }
        }
        // Pass 2: entries not covered by a marker go back into the head.
        let mut cut = Vec::new();
        for (lsn, record) in records {
            let Record::Entries {
                tenant,
                labels,
                mut entries,
            } = record
            else {
                continue;
            };
            let tenant_id =
                TenantId::new(&tenant).map_err(|e| StoreError::Replay(e.to_string()))?;
            let key = (tenant_id.clone(), labels.to_string());
            if let Some(covers) = flushed.get(&key) {
                let covers: Vec<&Covered> = covers
                    .iter()
                    .filter(|c| c.after < lsn && lsn <= c.up_to)
                    .collect();
                if !covers.is_empty() {
                    entries.retain(|e| !covers.iter().any(|c| c.from <= e.ts && e.ts <= c.through));
                }
            }
            if entries.is_empty() {
                continue;
            }
            let parsed = Labels::parse(&labels).map_err(|e| StoreError::Replay(e.to_string()))?;
            let stream = self.head.get_or_create(&tenant_id, &parsed);
            self.counters
                .wal_replayed_entries
                .fetch_add(entries.len() as u64, Ordering::Relaxed);
            cut.extend(self.head.restore(&stream, &entries, lsn)?);
        }
        Ok(ReplayOutcome { reindex, cut })
    }

    pub fn head(&self) -> &Head {
        &self.head
    }

    pub fn index(&self) -> &Arc<LabelIndex> {
        &self.index
    }

    pub fn objects(&self) -> &ObjectStorage {
        &self.objects
    }

    pub fn wal(&self) -> &Wal {
        &self.wal
    }

    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    /// The compactor's manifest (delete requests live there).
    pub fn manifest(&self) -> &ManifestStore {
        &self.manifest
    }

    pub fn snapshots(&self) -> &IndexSnapshots {
        &self.snapshots
    }

    pub fn chunk_cache(&self) -> &ChunkCache {
        &self.cache
    }

    /// Refuses new pushes while the head holds more than `max_head_memory`
    /// (call before appending any stream of a request, so a refused request
    /// is not half stored).
    pub fn admit(&self) -> Result<(), StoreError> {
        let (bytes, limit) = (self.head.memory_bytes(), self.cfg.max_head_memory);
        if limit > 0 && bytes > limit {
            return Err(StoreError::HeadFull { bytes, limit });
        }
        Ok(())
    }

    /// Whether the WAL may still hold the flush marker of a chunk (the
    /// compactor keeps tombstones of such chunks).
    pub fn marker_in_wal(&self, tenant: &TenantId, chunk_id: &str) -> bool {
        self.wal_markers
            .lock()
            .contains_key(&(tenant.clone(), chunk_id.to_string()))
    }

    fn enqueue(&self, p: Arc<PendingChunk>) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        if self.flush_tx.send(p).is_err() {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Appends a validated batch to a stream (blocking: head and WAL encode).
    ///
    /// Tail hook: when anyone tails ([`tail::TailFeed::is_active`], one
    /// atomic load), the accepted entries are published to the feed with
    /// their LSN, under the stream lock (so in WAL order per stream) and
    /// without copying. Subscribers wait for that LSN to be durable before
    /// showing the entries, so a tail never shows an entry that a crash
    /// could lose.
    pub fn append(
        &self,
        tenant: &TenantId,
        labels: &Labels,
        entries: Vec<Entry>,
    ) -> Result<head::HeadAppend, StoreError> {
        let stream = self.head.get_or_create(tenant, labels);
        let log = |accepted: &[Entry]| {
            self.wal.append(RecordRef::Entries {
                tenant: tenant.as_str(),
                labels: &stream.key,
                entries: accepted,
            })
        };
        let res = if self.tail.is_active() {
            self.head
                .append_observed(&stream, entries, log, |accepted, lsn| {
                    self.tail
                        .publish(tenant, &stream.labels, stream.id, accepted, lsn)
                })
        } else {
            self.head.append(&stream, entries, log)
        };
        match res {
            Ok(mut out) => {
                for p in std::mem::take(&mut out.cut) {
                    self.enqueue(p);
                }
                Ok(out)
            }
            Err(AppendError::Log(e)) => Err(StoreError::Wal(e)),
            Err(AppendError::Head(e)) => Err(StoreError::Head(e)),
        }
    }

    /// The live tail feed (subscribe here; [`Store::append`] publishes).
    pub fn tail_feed(&self) -> &Arc<tail::TailFeed> {
        &self.tail
    }

    /// Waits until the WAL holds everything up to `lsn` durably.
    pub async fn wait_durable(&self, lsn: Lsn) -> Result<(), StoreError> {
        Ok(self.wal.wait_durable(lsn).await?)
    }

    /// Starts the flush loop and workers on the current tokio runtime.
    pub fn start(
        self: &Arc<Self>,
        flush_check_period: Duration,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut handles = Vec::new();
        if !self.is_remote_ready() {
            let store = self.clone();
            handles.push(tokio::spawn(async move {
                let mut delay = Duration::from_secs(1);
                loop {
                    tokio::time::sleep(delay).await;
                    match store.connect_remote().await {
                        Ok(()) => {
                            tracing::info!("object store reachable: index and compactor state loaded, flushing resumes");
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, retry_in = ?delay, "object store still unreachable");
                            delay = (delay * 2).min(Duration::from_secs(10));
                        }
                    }
                }
            }));
        }
        let rx = self.flush_rx.lock().take();
        if let Some(rx) = rx {
            let rx = Arc::new(tokio::sync::Mutex::new(rx));
            for _ in 0..self.cfg.flush_workers.max(1) {
                let (store, rx) = (self.clone(), rx.clone());
                handles.push(tokio::spawn(async move {
                    // Readiness never goes back: wait once, not per chunk.
                    store.wait_remote_ready().await;
                    loop {
                        let next = rx.lock().await.recv().await;
                        let Some(p) = next else { break };
                        store.flush_chunk(p).await;
                    }
                }));
            }
        }
        let store = self.clone();
        handles.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(flush_check_period.min(Duration::from_secs(1)));
            loop {
                tick.tick().await;
                store.cut_due(false);
            }
        }));
        handles
    }

    /// Cuts every stream whose chunk is due (or every stream when forced).
    pub fn cut_due(&self, force: bool) {
        let now = Instant::now();
        for s in self.head.all_streams() {
            match self.head.cut_if_due(&s, now, force) {
                Ok(cut) => cut.into_iter().for_each(|p| self.enqueue(p)),
                Err(e) => tracing::error!(stream = %s.key, error = %e, "cutting a chunk failed"),
            }
        }
    }

    /// Stores, logs and indexes one cut chunk, retrying storage with backoff.
    async fn flush_chunk(self: &Arc<Self>, p: Arc<PendingChunk>) {
        let path = chunk_path(&p.tenant, &p.chunk_ref);
        let mut delay = Duration::from_millis(200);
        loop {
            match self.try_flush(&p, &path).await {
                Ok(()) => break,
                Err(e) => {
                    self.counters.flush_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(chunk = %path, error = %e, retry_in = ?delay, "flushing a chunk failed; it stays in memory and the WAL");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
        self.counters.chunks_flushed.fetch_add(1, Ordering::Relaxed);
        self.counters
            .chunk_bytes_flushed
            .fetch_add(p.data.len() as u64, Ordering::Relaxed);
        self.counters
            .chunk_entries_flushed
            .fetch_add(p.chunk_ref.entries, Ordering::Relaxed);
        if let Some(stream) = self.head.get(&p.tenant, &p.labels.canonical()) {
            self.head.remove_pending(&stream, &p);
        }
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
        self.truncate_wal();
    }

    async fn try_flush(
        self: &Arc<Self>,
        p: &Arc<PendingChunk>,
        path: &ObjectPath,
    ) -> Result<(), StoreError> {
        if !self.objects.exists(path).await? {
            self.objects.put(path, p.data.clone()).await?;
        }
        let labels = p.labels.canonical();
        let payload = encode_marker(p.after, &p.chunk_ref);
        let lsn = self.wal.append(RecordRef::Flushed {
            tenant: p.tenant.as_str(),
            labels: &labels,
            up_to: p.up_to,
            payload: &payload,
        })?;
        self.wal.wait_durable(lsn).await?;
        self.wal_markers
            .lock()
            .insert((p.tenant.clone(), p.chunk_ref.id()), lsn);
        let days: Vec<Day> = chunk_days(&p.chunk_ref).collect();
        self.snapshots.ensure_local(&p.tenant, &days).await?;
        let (store, p2) = (self.clone(), p.clone());
        tokio::task::spawn_blocking(move || {
            let _shared = store.commit_gate.read();
            store.index.add(&p2.tenant, &p2.labels, &p2.chunk_ref)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))??;
        let mine = self.index_added.fetch_add(1, Ordering::AcqRel) + 1;
        self.commit_index_through(mine).await
    }

    /// Makes index addition number `mine` durable and visible: returns at
    /// once if a commit that started after it was added has finished,
    /// otherwise commits everything added so far and uploads the snapshots.
    async fn commit_index_through(self: &Arc<Self>, mine: u64) -> Result<(), StoreError> {
        let _leader = self.index_commit_lock.lock().await;
        if self.index_committed.load(Ordering::Acquire) >= mine {
            return Ok(());
        }
        let through = self.index_added.load(Ordering::Acquire);
        let store = self.clone();
        let committed = tokio::task::spawn_blocking(move || {
            let _shared = store.commit_gate.read();
            store.index.commit()
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))??;
        let mut unsynced = self.unsynced.lock().await;
        unsynced.extend(committed);
        let parts: Vec<(TenantId, Day)> = unsynced.iter().cloned().collect();
        self.snapshots.sync_all(&parts).await?;
        unsynced.clear();
        self.index_committed.fetch_max(through, Ordering::AcqRel);
        Ok(())
    }

    /// Deletes WAL segments that nothing in memory needs any more.
    fn truncate_wal(&self) {
        let needed = self
            .head
            .oldest_needed_lsn()
            .unwrap_or_else(|| self.wal.next_lsn());
        if let Err(e) = self.wal.remove_segments_before(needed) {
            tracing::warn!(error = %e, "removing old WAL segments failed");
        }
        let first = self.wal.first_lsn();
        self.wal_markers.lock().retain(|_, lsn| *lsn >= first);
    }

    /// Cuts every stream and waits until all chunks are stored and indexed
    /// (`/flush`, shutdown). Gives up after `timeout`.
    pub async fn flush_all(&self, timeout: Duration) -> bool {
        self.cut_due(true);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let waiter = self.idle.notified();
            if self.in_flight.load(Ordering::Acquire) == 0 {
                self.head.remove_empty();
                return true;
            }
            if tokio::time::timeout_at(deadline, waiter).await.is_err() {
                return false;
            }
        }
    }

    /// Whether a stream exists in memory.
    pub fn has_stream(&self, tenant: &TenantId, labels: &Labels) -> bool {
        self.head.get(tenant, &labels.canonical()).is_some()
    }

    pub fn active_streams(&self, tenant: &TenantId) -> usize {
        self.head.tenant_stream_count(tenant)
    }

    /// Streams matching `matchers` with data in `[start, end)`, each with its
    /// sources (head first, then stored chunks).
    pub async fn select(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<StreamData>, StoreError> {
        // Head first: a chunk leaves the head only after the index has it.
        let mut out: HashMap<StreamId, StreamData> = HashMap::new();
        let mut pending_ids: HashSet<String> = HashSet::new();
        for s in self.head.tenant_streams(tenant) {
            if !matchers.iter().all(|m| m.matches_labels(&s.labels)) {
                continue;
            }
            let snap: HeadSnapshot = self.head.snapshot(&s, start, end);
            let mut sources = Vec::new();
            for p in snap.pending {
                pending_ids.insert(p.chunk_ref.id());
                sources.push(Source::Pending(p));
            }
            sources.extend(snap.sealed.into_iter().map(Source::Sealed));
            sources.extend(snap.open.into_iter().map(Source::Open));
            if !sources.is_empty() {
                out.insert(
                    snap.id,
                    StreamData {
                        id: snap.id,
                        labels: snap.labels,
                        sources,
                    },
                );
            }
        }
        let indexed = self.index_streams(tenant, matchers, start, end).await?;
        for s in indexed {
            let entry = out.entry(s.id).or_insert_with(|| StreamData {
                id: s.id,
                labels: s.labels.clone(),
                sources: Vec::new(),
            });
            for c in s.chunks {
                if c.from < end && !pending_ids.contains(&c.id()) {
                    entry.sources.push(Source::Stored(c));
                }
            }
        }
        let mut v: Vec<StreamData> = out
            .into_values()
            .filter(|s| !s.sources.is_empty())
            .collect();
        v.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(v)
    }

    async fn index_streams(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<IndexedStream>, StoreError> {
        let last = end.saturating_sub_nanos(1);
        let remote = self
            .index
            .remote_only_days(tenant, Day::of(start), Day::of(last));
        if !remote.is_empty() {
            self.snapshots.ensure_local(tenant, &remote).await?;
        }
        let (index, tenant, matchers) = (self.index.clone(), tenant.clone(), matchers.to_vec());
        tokio::task::spawn_blocking(move || index.streams(&tenant, &matchers, start, last))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
            .map_err(StoreError::from)
    }

    /// The label sets of streams matching `matchers` with entries in
    /// `[start, end)` (series, labels and label values APIs).
    pub async fn series(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<Labels>, StoreError> {
        let mut set: HashMap<StreamId, Labels> = HashMap::new();
        for s in self.head.tenant_streams(tenant) {
            if matchers.iter().all(|m| m.matches_labels(&s.labels)) {
                let snap = self.head.snapshot(&s, start, end);
                if !snap.open.is_empty() || !snap.sealed.is_empty() || !snap.pending.is_empty() {
                    set.insert(s.id, s.labels.clone());
                }
            }
        }
        for s in self.index_streams(tenant, matchers, start, end).await? {
            set.entry(s.id).or_insert(s.labels);
        }
        let mut v: Vec<Labels> = set.into_values().collect();
        v.sort();
        Ok(v)
    }

    /// The blocks of a source overlapping `[start, end)`.
    pub async fn blocks(
        &self,
        tenant: &TenantId,
        src: &Source,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<BlockData>, StoreError> {
        let keep = |min: Timestamp, max: Timestamp| min < end && max >= start;
        Ok(match src {
            Source::Open(b) => vec![BlockData::Decoded(b.clone())],
            Source::Sealed(b) => vec![BlockData::Compressed {
                meta: b.meta.clone(),
                data: b.data.clone(),
            }],
            Source::Pending(p) => chunk_blocks(&p.chunk, keep),
            Source::Stored(c) => {
                let chunk = self.load_chunk(tenant, c).await?;
                chunk_blocks(&chunk, keep)
            }
        })
    }

    /// The block index of a stored chunk, without fetching or decompressing
    /// its blocks: from the cached chunk when it is cached, otherwise with
    /// two ranged reads (the footer, then the index it points at).
    pub async fn chunk_block_metas(
        &self,
        tenant: &TenantId,
        c: &ChunkRef,
    ) -> Result<Vec<BlockMeta>, StoreError> {
        let path = chunk_path(tenant, c);
        if let Some(chunk) = self.cache.get(path.as_ref()) {
            return Ok(chunk.blocks().to_vec());
        }
        let footer_len = chunk::FOOTER_LEN as u64;
        if c.size < footer_len {
            // The index does not record the object size: read it whole.
            return Ok(self.load_chunk(tenant, c).await?.blocks().to_vec());
        }
        let footer = self
            .objects
            .get_range(&path, c.size - footer_len..c.size)
            .await?;
        let location = chunk::parse_footer(&footer)?;
        let index = self.objects.get_range(&path, location.byte_range()).await?;
        Ok(chunk::parse_index(&index)?.1)
    }

    /// A stored chunk, through the cache.
    pub async fn load_chunk(
        &self,
        tenant: &TenantId,
        c: &ChunkRef,
    ) -> Result<Arc<Chunk>, StoreError> {
        let path = chunk_path(tenant, c);
        if let Some(chunk) = self.cache.get(path.as_ref()) {
            return Ok(chunk);
        }
        let data = self.objects.get(&path).await?;
        let chunk = Arc::new(Chunk::parse(data)?);
        self.cache.insert(path.to_string(), chunk.clone());
        Ok(chunk)
    }

    /// Shuts down: flushes heads (when asked), then syncs the WAL.
    pub async fn shutdown(&self, flush: bool, timeout: Duration) {
        if flush && !self.flush_all(timeout).await {
            tracing::warn!("shutdown: not every chunk was stored in time; the WAL keeps them");
        }
        let last = Lsn(self.wal.next_lsn().0.saturating_sub(1));
        if last.0 > 0
            && let Err(e) = self.wal.wait_durable(last).await
        {
            tracing::error!(error = %e, "shutdown: syncing the WAL failed");
        }
    }
}

/// The index days a chunk is referenced from.
pub(crate) fn chunk_days(c: &ChunkRef) -> impl Iterator<Item = Day> + use<> {
    (Day::of(c.from).0..=Day::of(c.through).0).map(Day)
}

/// Manifest records of chunk references.
pub(crate) fn records(chunks: &[ChunkRef]) -> Vec<ChunkRecord> {
    chunks.iter().map(ChunkRecord::from).collect()
}

fn chunk_blocks(chunk: &Chunk, keep: impl Fn(Timestamp, Timestamp) -> bool) -> Vec<BlockData> {
    chunk
        .blocks()
        .iter()
        .enumerate()
        .filter(|(_, m)| m.entries > 0 && keep(m.min_ts, m.max_ts))
        .filter_map(|(i, m)| {
            chunk.block_data(i).ok().map(|data| BlockData::Compressed {
                meta: m.clone(),
                data,
            })
        })
        .collect()
}

/// Flush marker payload, version 1:
/// `version u8 = 1 | after lsn u64 | stream u64 | from i64 | through i64 |
/// checksum u32 | entries u64 | raw_bytes u64 | size u64` (little-endian).
fn encode_marker(after: Lsn, c: &ChunkRef) -> Vec<u8> {
    let mut v = Vec::with_capacity(61);
    v.push(1u8);
    v.extend_from_slice(&after.0.to_le_bytes());
    v.extend_from_slice(&c.stream.0.to_le_bytes());
    v.extend_from_slice(&c.from.nanos().to_le_bytes());
    v.extend_from_slice(&c.through.nanos().to_le_bytes());
    v.extend_from_slice(&c.checksum.to_le_bytes());
    v.extend_from_slice(&c.entries.to_le_bytes());
    v.extend_from_slice(&c.raw_bytes.to_le_bytes());
    v.extend_from_slice(&c.size.to_le_bytes());
    v
}

fn decode_marker(p: &[u8]) -> Result<(Lsn, ChunkRef), String> {
    if p.first() != Some(&1) || p.len() != 61 {
        return Err(format!(
            "flush marker: unsupported version or length ({} bytes)",
            p.len()
        ));
    }
    let u64_at = |i: usize| u64::from_le_bytes(p[i..i + 8].try_into().unwrap_or([0; 8]));
    Ok((
        Lsn(u64_at(1)),
        ChunkRef {
            stream: StreamId(u64_at(9)),
            from: Timestamp::from_nanos(u64_at(17) as i64),
            through: Timestamp::from_nanos(u64_at(25) as i64),
            checksum: u32::from_le_bytes(p[33..37].try_into().unwrap_or([0; 4])),
            entries: u64_at(37),
            raw_bytes: u64_at(45),
            size: u64_at(53),
        },
    ))
}
