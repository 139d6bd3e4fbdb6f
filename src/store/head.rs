//! The head: every stream's not-yet-flushed entries, in memory.
//!
//! Owns per-stream state — the chunks being built (one per UTC day: an open
//! block and sealed, compressed blocks each), chunks cut and waiting to be
//! stored, the WAL positions they cover, and the facts Loki's ingester checks
//! on append (the last accepted entry for duplicate dropping, the newest
//! timestamp for the out-of-order window). Does not own the WAL, the object
//! store or the index; the store facade drives those.
//!
//! Chunks never span a UTC day boundary: each entry goes to the chunk being
//! built for its day, so a stored chunk is referenced from exactly one index
//! partition. A push whose entries span a year makes one small chunk per day
//! it touches, not one chunk referenced from 366 partitions. Entries arrive
//! interleaved across midnight (the out-of-order window is `max_chunk_age /
//! 2`), which is why a stream keeps one builder per day rather than cutting
//! whenever the day changes — that would cut a chunk per entry.
//!
//! Invariants, per stream:
//! - Entries enter the head in the order their WAL records were appended (the
//!   stream lock is held across the WAL append), so a chunk of day `d` cut at
//!   WAL position `p` from a builder whose first entry had LSN `f` holds
//!   exactly the stream's entries with LSN in `(f - 1, p]` and a timestamp in
//!   day `d` (equivalently in the chunk's `[from, through]`). The WAL's flush
//!   marker records that interval and the chunk reference; replay skips an
//!   entry when a marker's interval holds its LSN and the chunk's time span
//!   holds its timestamp, which makes replay exact even when one WAL record
//!   holds entries of several days.
//! - A builder's `first_lsn` is the oldest LSN only in memory for its day;
//!   pending chunks keep their own interval until the index has them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use super::chunk::{
    self, Chunk, ChunkError, ChunkHeader, Codec, DecodedBlock, HeadBlock, SealedBlock,
};
use super::index::{ChunkRef, Day};
use super::wal::Lsn;
use crate::model::{Entry, Labels, MetadataPair, StreamId, TenantId, Timestamp};

/// How the head cuts blocks and chunks.
#[derive(Clone, Debug)]
pub struct HeadConfig {
    pub codec: Codec,
    /// Uncompressed bytes per block (Loki's chunk_block_size, 256 KiB).
    pub block_size: u64,
    /// Compressed bytes at which a chunk is cut (Loki's chunk_target_size).
    pub chunk_target_size: u64,
    pub chunk_idle_period: Duration,
    pub max_chunk_age: Duration,
}

impl HeadConfig {
    /// Entries older than the stream's newest minus this are refused
    /// (Loki: `max_chunk_age / 2`).
    pub fn out_of_order_window(&self) -> i64 {
        i64::try_from(self.max_chunk_age.as_nanos() / 2).unwrap_or(i64::MAX)
    }
}

/// A chunk cut from a stream, encoded, waiting to be stored and indexed.
/// Queries read it until the index has it.
#[derive(Debug)]
pub struct PendingChunk {
    pub tenant: TenantId,
    pub labels: Labels,
    pub chunk_ref: ChunkRef,
    /// The encoded chunk object.
    pub data: Bytes,
    /// The parsed form of `data`, for queries.
    pub chunk: Chunk,
    /// WAL interval `(after, up_to]` of the stream's entries it holds.
    pub after: Lsn,
    pub up_to: Lsn,
}

/// What a query reads of one head stream: a consistent snapshot.
#[derive(Clone, Debug)]
pub struct HeadSnapshot {
    pub id: StreamId,
    pub labels: Labels,
    /// The open blocks (one per day being built), sorted.
    pub open: Vec<Arc<DecodedBlock>>,
    pub sealed: Vec<SealedBlock>,
    pub pending: Vec<Arc<PendingChunk>>,
}

/// Outcome of appending one batch to a stream.
#[derive(Debug, Default)]
pub struct HeadAppend {
    pub lsn: Option<Lsn>,
    pub accepted: usize,
    pub duplicates: usize,
    pub too_far_behind: Vec<(Timestamp, Timestamp)>,
    /// Bytes (`Entry::size`) of the entries refused as too far behind.
    pub too_far_behind_bytes: usize,
    /// Chunks cut because they reached the target size.
    pub cut: Vec<Arc<PendingChunk>>,
}

#[derive(Debug)]
struct LastEntry {
    ts: Timestamp,
    line: Bytes,
    metadata: Vec<MetadataPair>,
}

/// The chunk being built for one UTC day of a stream.
#[derive(Debug)]
struct ChunkBuilder {
    day: Day,
    open: HeadBlock,
    sealed: Vec<SealedBlock>,
    sealed_bytes: u64,
    /// LSN of the first entry in this builder.
    first_lsn: Lsn,
    last_lsn: Lsn,
    started: Instant,
    last_append: Instant,
}

impl ChunkBuilder {
    fn new(day: Day, lsn: Lsn, now: Instant) -> Self {
        ChunkBuilder {
            day,
            open: HeadBlock::new(),
            sealed: Vec::new(),
            sealed_bytes: 0,
            first_lsn: lsn,
            last_lsn: lsn,
            started: now,
            last_append: now,
        }
    }
}

#[derive(Debug)]
struct StreamState {
    /// Chunks being built, one per day, oldest day first; never empty ones.
    building: Vec<ChunkBuilder>,
    newest: Option<Timestamp>,
    last: Option<LastEntry>,
    pending: Vec<Arc<PendingChunk>>,
}

/// One stream's head.
#[derive(Debug)]
pub struct HeadStream {
    pub tenant: TenantId,
    pub labels: Labels,
    pub key: Arc<str>,
    pub id: StreamId,
    state: Mutex<StreamState>,
}

#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("sealing a block: {0}")]
    Chunk(#[from] ChunkError),
}

impl HeadStream {
    fn new(tenant: TenantId, labels: Labels) -> Self {
        let key: Arc<str> = Arc::from(labels.canonical());
        HeadStream {
            tenant,
            id: labels.stream_id(),
            key,
            labels,
            state: Mutex::new(StreamState {
                building: Vec::new(),
                newest: None,
                last: None,
                pending: Vec::new(),
            }),
        }
    }
}

/// One tenant's streams, by canonical label text.
type TenantStreams = Arc<RwLock<HashMap<Arc<str>, Arc<HeadStream>>>>;

/// Every tenant's head streams.
#[derive(Debug)]
pub struct Head {
    cfg: HeadConfig,
    tenants: RwLock<HashMap<TenantId, TenantStreams>>,
    /// Bytes held in memory (open blocks raw, sealed and pending compressed).
    memory: AtomicU64,
    streams: AtomicUsize,
    /// Streams created and removed since start (replay included).
    streams_created: AtomicU64,
    streams_removed: AtomicU64,
}

impl Head {
    pub fn new(cfg: HeadConfig) -> Self {
        Head {
            cfg,
            tenants: RwLock::new(HashMap::new()),
            memory: AtomicU64::new(0),
            streams: AtomicUsize::new(0),
            streams_created: AtomicU64::new(0),
            streams_removed: AtomicU64::new(0),
        }
    }

    pub fn config(&self) -> &HeadConfig {
        &self.cfg
    }

    pub fn memory_bytes(&self) -> u64 {
        self.memory.load(Ordering::Relaxed)
    }

    pub fn stream_count(&self) -> usize {
        self.streams.load(Ordering::Relaxed)
    }

    /// Streams created since start (WAL replay included).
    pub fn streams_created(&self) -> u64 {
        self.streams_created.load(Ordering::Relaxed)
    }

    /// Streams removed from memory since start (idle and flushed).
    pub fn streams_removed(&self) -> u64 {
        self.streams_removed.load(Ordering::Relaxed)
    }

    /// Streams in memory per tenant.
    pub fn stream_counts(&self) -> Vec<(TenantId, usize)> {
        let tenants: Vec<_> = self
            .tenants
            .read()
            .iter()
            .map(|(t, m)| (t.clone(), m.clone()))
            .collect();
        let mut out: Vec<_> = tenants
            .into_iter()
            .map(|(t, m)| {
                let n = m.read().len();
                (t, n)
            })
            .collect();
        out.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        out
    }

    fn tenant_map(&self, tenant: &TenantId) -> Option<TenantStreams> {
        self.tenants.read().get(tenant).cloned()
    }

    pub fn get(&self, tenant: &TenantId, key: &str) -> Option<Arc<HeadStream>> {
        self.tenant_map(tenant)?.read().get(key).cloned()
    }

    /// The stream for `labels`, created if needed.
    pub fn get_or_create(&self, tenant: &TenantId, labels: &Labels) -> Arc<HeadStream> {
        let key = labels.canonical();
        let map = match self.tenant_map(tenant) {
            Some(m) => m,
            None => self
                .tenants
                .write()
                .entry(tenant.clone())
                .or_default()
                .clone(),
        };
        if let Some(s) = map.read().get(key.as_str()) {
            return s.clone();
        }
        let mut w = map.write();
        w.entry(Arc::from(key.as_str()))
            .or_insert_with(|| {
                self.streams.fetch_add(1, Ordering::Relaxed);
                self.streams_created.fetch_add(1, Ordering::Relaxed);
                Arc::new(HeadStream::new(tenant.clone(), labels.clone()))
            })
            .clone()
    }

    /// Active streams of a tenant.
    pub fn tenant_streams(&self, tenant: &TenantId) -> Vec<Arc<HeadStream>> {
        self.tenant_map(tenant)
            .map(|m| m.read().values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn tenant_stream_count(&self, tenant: &TenantId) -> usize {
        self.tenant_map(tenant).map_or(0, |m| m.read().len())
    }

    pub fn all_streams(&self) -> Vec<Arc<HeadStream>> {
        let tenants: Vec<_> = self.tenants.read().values().cloned().collect();
        tenants
            .iter()
            .flat_map(|m| m.read().values().cloned().collect::<Vec<_>>())
            .collect()
    }

    pub fn tenants(&self) -> Vec<TenantId> {
        self.tenants.read().keys().cloned().collect()
    }

    /// Appends a validated batch: drops exact duplicates of the last accepted
    /// entry, refuses entries too far behind the newest, writes the rest to
    /// the WAL through `log` (called with the stream lock held, so WAL order
    /// is head order) and to the open block. May cut a chunk.
    pub fn append<E>(
        &self,
        stream: &HeadStream,
        entries: Vec<Entry>,
        log: impl FnOnce(&[Entry]) -> Result<Lsn, E>,
    ) -> Result<HeadAppend, AppendError<E>> {
        self.append_observed(stream, entries, log, |_, _| {})
    }

    /// [`Head::append`], then hands the accepted entries (moved, not copied)
    /// and their LSN to `observe` while the stream lock is still held, so
    /// observers see each stream's batches in WAL order. The live tail feed
    /// hooks in here; `observe` must not block.
    pub fn append_observed<E>(
        &self,
        stream: &HeadStream,
        entries: Vec<Entry>,
        log: impl FnOnce(&[Entry]) -> Result<Lsn, E>,
        observe: impl FnOnce(Vec<Entry>, Lsn),
    ) -> Result<HeadAppend, AppendError<E>> {
        let window = self.cfg.out_of_order_window();
        let mut st = stream.state.lock();
        let mut out = HeadAppend::default();
        let mut accepted = Vec::with_capacity(entries.len());
        for e in entries {
            if let Some(last) = &st.last
                && last.ts == e.ts
                && last.line == e.line
                && last.metadata == e.metadata
            {
                out.duplicates += 1;
                continue;
            }
            if let Some(newest) = st.newest {
                let oldest_ok = newest.saturating_sub_nanos(window);
                if e.ts < oldest_ok {
                    out.too_far_behind.push((e.ts, oldest_ok));
                    out.too_far_behind_bytes += e.size();
                    continue;
                }
            }
            st.newest = Some(st.newest.map_or(e.ts, |n| n.max(e.ts)));
            st.last = Some(LastEntry {
                ts: e.ts,
                line: e.line.clone(),
                metadata: e.metadata.clone(),
            });
            accepted.push(e);
        }
        if accepted.is_empty() {
            return Ok(out);
        }
        let lsn = log(&accepted).map_err(AppendError::Log)?;
        out.lsn = Some(lsn);
        out.accepted = accepted.len();
        out.cut = self
            .push_locked(stream, &mut st, &accepted, lsn)
            .map_err(AppendError::Head)?;
        observe(accepted, lsn);
        Ok(out)
    }

    /// Re-inserts entries from WAL replay exactly as they were accepted.
    pub fn restore(
        &self,
        stream: &HeadStream,
        entries: &[Entry],
        lsn: Lsn,
    ) -> Result<Vec<Arc<PendingChunk>>, HeadError> {
        let mut st = stream.state.lock();
        for e in entries {
            st.newest = Some(st.newest.map_or(e.ts, |n| n.max(e.ts)));
        }
        if let Some(e) = entries.last() {
            st.last = Some(LastEntry {
                ts: e.ts,
                line: e.line.clone(),
                metadata: e.metadata.clone(),
            });
        }
        self.push_locked(stream, &mut st, entries, lsn)
    }

    /// Appends entries to the builders of their days (created as needed)
    /// and cuts the builders that reached the target size.
    fn push_locked(
        &self,
        stream: &HeadStream,
        st: &mut StreamState,
        entries: &[Entry],
        lsn: Lsn,
    ) -> Result<Vec<Arc<PendingChunk>>, HeadError> {
        let now = Instant::now();
        // Raw bytes added and not yet counted in `self.memory` (one atomic
        // add per push, not per entry; counted before a seal subtracts).
        let mut added = 0u64;
        for e in entries {
            let day = Day::of(e.ts);
            let i = match st.building.binary_search_by_key(&day, |b| b.day) {
                Ok(i) => i,
                Err(i) => {
                    st.building.insert(i, ChunkBuilder::new(day, lsn, now));
                    i
                }
            };
            let b = &mut st.building[i];
            let before = b.open.raw_size();
            b.open.push(e.ts, &e.line, &e.metadata);
            added += b.open.raw_size().saturating_sub(before);
            b.last_lsn = lsn;
            b.last_append = now;
            if b.open.raw_size() >= self.cfg.block_size {
                self.memory
                    .fetch_add(std::mem::take(&mut added), Ordering::Relaxed);
                self.seal_open(b)?;
            }
        }
        self.memory.fetch_add(added, Ordering::Relaxed);
        // Only builders this push touched can have grown past the target.
        let target = self.cfg.chunk_target_size;
        self.cut_where(stream, st, |b| b.sealed_bytes >= target)
    }

    /// Cuts (in day order) every builder `due` selects.
    fn cut_where(
        &self,
        stream: &HeadStream,
        st: &mut StreamState,
        due: impl Fn(&ChunkBuilder) -> bool,
    ) -> Result<Vec<Arc<PendingChunk>>, HeadError> {
        let mut cut = Vec::new();
        let mut i = 0;
        while i < st.building.len() {
            if due(&st.building[i]) {
                let b = st.building.remove(i);
                cut.extend(self.cut_builder(stream, st, b)?);
            } else {
                i += 1;
            }
        }
        Ok(cut)
    }

    fn seal_open(&self, b: &mut ChunkBuilder) -> Result<(), HeadError> {
        if b.open.is_empty() {
            return Ok(());
        }
        let raw = b.open.raw_size();
        let block = b.open.seal(self.cfg.codec)?;
        let size = block.data.len() as u64;
        b.open.clear();
        self.memory.fetch_sub(
            raw.min(self.memory.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        self.memory.fetch_add(size, Ordering::Relaxed);
        b.sealed_bytes += size;
        b.sealed.push(block);
        Ok(())
    }

    /// Encodes a builder (already removed from `st.building`) into a
    /// pending chunk.
    fn cut_builder(
        &self,
        stream: &HeadStream,
        st: &mut StreamState,
        mut b: ChunkBuilder,
    ) -> Result<Option<Arc<PendingChunk>>, HeadError> {
        if let Err(e) = self.seal_open(&mut b) {
            // Keep the entries: they are still only in memory and the WAL.
            let i = st
                .building
                .binary_search_by_key(&b.day, |x| x.day)
                .unwrap_or_else(|i| i);
            st.building.insert(i, b);
            return Err(e);
        }
        if b.sealed.is_empty() {
            return Ok(None);
        }
        let blocks = b.sealed;
        let header = ChunkHeader::for_blocks(
            stream.tenant.clone(),
            stream.key.to_string(),
            self.cfg.codec,
            &blocks,
        );
        let data = chunk::encode_chunk(&header, &blocks);
        let chunk_ref = ChunkRef {
            stream: stream.id,
            from: header.min_ts,
            through: header.max_ts,
            checksum: crc32c::crc32c(&data),
            entries: header.entries,
            raw_bytes: header.raw_size,
            size: data.len() as u64,
        };
        let chunk = Chunk::parse(data.clone())?;
        let pending = Arc::new(PendingChunk {
            tenant: stream.tenant.clone(),
            labels: stream.labels.clone(),
            chunk_ref,
            data,
            chunk,
            after: Lsn(b.first_lsn.0.saturating_sub(1)),
            up_to: b.last_lsn,
        });
        // The sealed bytes are now held by the pending chunk instead.
        self.memory
            .fetch_add(pending.data.len() as u64, Ordering::Relaxed);
        self.memory.fetch_sub(
            b.sealed_bytes.min(self.memory.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        st.pending.push(pending.clone());
        Ok(Some(pending))
    }

    /// Cuts the stream's chunks that are idle or too old, or all of them
    /// when `force` is set.
    pub fn cut_if_due(
        &self,
        stream: &HeadStream,
        now: Instant,
        force: bool,
    ) -> Result<Vec<Arc<PendingChunk>>, HeadError> {
        let mut st = stream.state.lock();
        self.cut_where(stream, &mut st, |b| {
            force
                || now.saturating_duration_since(b.last_append) >= self.cfg.chunk_idle_period
                || now.saturating_duration_since(b.started) >= self.cfg.max_chunk_age
        })
    }

    /// Forgets a pending chunk once the index has it.
    pub fn remove_pending(&self, stream: &HeadStream, chunk: &Arc<PendingChunk>) {
        let mut st = stream.state.lock();
        let before = st.pending.len();
        st.pending.retain(|p| !Arc::ptr_eq(p, chunk));
        if st.pending.len() < before {
            let sz = chunk.data.len() as u64;
            self.memory.fetch_sub(
                sz.min(self.memory.load(Ordering::Relaxed)),
                Ordering::Relaxed,
            );
        }
    }

    /// Drops streams with nothing in memory (after their chunks are indexed),
    /// as Loki forgets idle streams.
    pub fn remove_empty(&self) -> usize {
        let mut removed = 0;
        let tenants: Vec<_> = self.tenants.read().values().cloned().collect();
        for map in tenants {
            map.write().retain(|_, s| {
                let st = s.state.lock();
                let keep = !(st.building.is_empty() && st.pending.is_empty());
                if !keep {
                    removed += 1;
                }
                keep
            });
        }
        self.streams.fetch_sub(
            removed.min(self.streams.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        self.streams_removed
            .fetch_add(removed as u64, Ordering::Relaxed);
        removed
    }

    /// The oldest WAL position still needed by some stream (entries only in
    /// memory, or in chunks not yet indexed).
    pub fn oldest_needed_lsn(&self) -> Option<Lsn> {
        self.all_streams()
            .iter()
            .filter_map(|s| {
                let st = s.state.lock();
                let pending = st.pending.iter().map(|p| Lsn(p.after.0 + 1));
                let building = st.building.iter().map(|b| b.first_lsn);
                pending.chain(building).min()
            })
            .min()
    }

    /// Days with a chunk being built for the stream (oldest first).
    pub fn building_days(&self, stream: &HeadStream) -> Vec<Day> {
        stream.state.lock().building.iter().map(|b| b.day).collect()
    }

    /// A consistent snapshot of the stream's in-memory data overlapping
    /// `[start, end)`.
    pub fn snapshot(&self, stream: &HeadStream, start: Timestamp, end: Timestamp) -> HeadSnapshot {
        let st = stream.state.lock();
        let overlaps = |min: Timestamp, max: Timestamp| min < end && max >= start;
        let mut open = Vec::new();
        let mut sealed = Vec::new();
        for b in &st.building {
            if let (Some(min), Some(max)) = (b.open.min_ts(), b.open.max_ts())
                && overlaps(min, max)
            {
                open.push(Arc::new(b.open.snapshot()));
            }
            sealed.extend(
                b.sealed
                    .iter()
                    .filter(|x| x.meta.entries > 0 && overlaps(x.meta.min_ts, x.meta.max_ts))
                    .cloned(),
            );
        }
        HeadSnapshot {
            id: stream.id,
            labels: stream.labels.clone(),
            open,
            sealed,
            pending: st
                .pending
                .iter()
                .filter(|p| overlaps(p.chunk_ref.from, p.chunk_ref.through))
                .cloned()
                .collect(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError<E> {
    #[error("writing the WAL: {0}")]
    Log(E),
    #[error(transparent)]
    Head(HeadError),
}
