//! The label index: given a tenant, stream matchers and a time range, which
//! streams exist and which chunks hold their entries.
//!
//! Built on tantivy. It holds label sets and chunk references only, never log
//! lines. It is partitioned by tenant and UTC day — one tantivy index per
//! partition under `<root>/<tenant>/<YYYY-MM-DD>/` — so retention can drop a
//! whole day at once. The head cuts chunks per UTC day, so a new chunk
//! overlaps one partition; a chunk whose time span crosses midnight (written
//! before that, or by an older version) is referenced from every day it
//! overlaps, and lookups de-duplicate.
//!
//! One document per (chunk, day):
//!
//! | field      | kind                    | content                                   |
//! |------------|-------------------------|-------------------------------------------|
//! | `stream`   | u64, indexed+fast+stored| [`StreamId`]                              |
//! | `label`    | string, indexed         | one term `name=value` per stream label    |
//! | `labels`   | stored                  | canonical label text `{a="b", c="d"}`     |
//! | `chunk`    | string, indexed         | the chunk's identity, for deletes         |
//! | `from`     | i64, indexed+fast       | first entry timestamp (ns)                |
//! | `through`  | i64, indexed+fast       | last entry timestamp (ns)                 |
//! | `checksum` | u64, fast               | CRC32C of the chunk object                |
//! | `entries`, `raw_bytes`, `size` | u64, fast | counts for stats and volume, no chunk read |
//!
//! Format version: every commit stores [`INDEX_FORMAT`] as tantivy's commit
//! payload in the partition's `meta.json` (so it travels with snapshots).
//! Opening a partition whose payload is another value fails with
//! [`IndexError::UnknownFormat`]; a partition never committed, or committed
//! before the payload was written (the same v1 layout), has none and is read
//! as v1. `tests/data/index_v1/` is a v1 partition read by a test.
//!
//! Matchers become term queries: `=` looks up one term; `!=`, `=~` and `!~`
//! enumerate the label's values in the term dictionary, test them with the
//! matcher, and query the matching (or, for matchers that accept the empty
//! string, exclude the non-matching) terms.
//!
//! Invariants: documents are only added through [`LabelIndex::add`]; a lookup
//! sees what the last [`LabelIndex::commit`] made durable.
//!
//! Writers are bounded: adds and removes are buffered per partition (chunk
//! references are tiny) and applied by [`LabelIndex::commit`], which opens a
//! partition's tantivy `IndexWriter` only then. At most [`MAX_OPEN_WRITERS`]
//! writers stay open (least recently used closed first), each with one
//! indexing and one merge thread, so a flush or a WAL replay touching
//! hundreds of days costs neither hundreds of threads nor hundreds of
//! writer memory budgets.
//!
//! The local directory is a working copy: with snapshots (`store::snapshot`)
//! the object store is the source of truth. A partition known to exist only
//! remotely is *remote-only* until it is installed
//! ([`LabelIndex::install_partition`]); until then lookups that need it fail
//! with [`IndexError::NotLocal`] instead of reading an empty index, and adds
//! refuse to create a fresh local partition that would later overwrite the
//! remote one.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::indexer::IndexWriterOptions;
use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, Occur, Query, RangeQuery, TermQuery, TermSetQuery,
};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TantivyDocument, Value,
};
use tantivy::{
    DocAddress, DocId, Index, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentOrdinal,
    SegmentReader, Term,
};

use crate::model::time::{civil_from_days, days_from_civil};
use crate::model::{Labels, LabelsError};
use crate::model::{MatchOp, Matcher, StreamId, TenantId, Timestamp};

/// Suffix of the temporary directory a partition is downloaded into.
const DOWNLOAD_SUFFIX: &str = ".download";

/// Bytes of memory each open partition writer may buffer before flushing a
/// segment (tantivy's minimum is 15 MB; chunk references are tiny).
const WRITER_MEMORY: usize = 15_000_000;

/// The layout above, recorded in each partition's `meta.json` payload.
pub const INDEX_FORMAT: &str = "lokal-index-v1";

/// Partition writers kept open at once (today, yesterday and a little
/// slack); the least recently used one is closed when another is needed.
pub const MAX_OPEN_WRITERS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index partition {partition}: {source}")]
    Tantivy {
        partition: String,
        source: tantivy::TantivyError,
    },
    #[error("index directory {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "index partition {partition} has format {found:?}, which this lokal does not know (it reads {INDEX_FORMAT:?}); was it written by a newer version?"
    )]
    UnknownFormat { partition: String, found: String },
    #[error("index partition {partition} is in the object store but not downloaded yet")]
    NotLocal { partition: String },
    #[error("index partition {partition}: stored labels {labels:?} are corrupt: {source}")]
    CorruptLabels {
        partition: String,
        labels: String,
        source: LabelsError,
    },
}

/// A reference to one chunk object of a stream, with the counts that stats
/// and volume queries need without reading the chunk.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkRef {
    pub stream: StreamId,
    pub from: Timestamp,
    pub through: Timestamp,
    pub checksum: u32,
    pub entries: u64,
    pub raw_bytes: u64,
    pub size: u64,
}

impl ChunkRef {
    /// The chunk's identity within its tenant (also the tail of its object key).
    pub fn id(&self) -> String {
        format!(
            "{}/{:016x}-{:016x}-{:08x}",
            self.stream,
            self.from.nanos() as u64,
            self.through.nanos() as u64,
            self.checksum
        )
    }

    pub fn overlaps(&self, start: Timestamp, end: Timestamp) -> bool {
        self.from <= end && self.through >= start
    }
}

/// A stream found in the index, with its chunks overlapping the asked range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexedStream {
    pub id: StreamId,
    pub labels: Labels,
    pub chunks: Vec<ChunkRef>,
}

#[derive(Clone, Copy)]
struct Fields {
    stream: Field,
    label: Field,
    labels: Field,
    chunk: Field,
    from: Field,
    through: Field,
    checksum: Field,
    entries: Field,
    raw_bytes: Field,
    size: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let fields = Fields {
        stream: b.add_u64_field("stream", INDEXED | FAST | STORED),
        label: b.add_text_field("label", STRING),
        labels: b.add_text_field("labels", STORED),
        chunk: b.add_text_field("chunk", STRING),
        from: b.add_i64_field("from", INDEXED | FAST),
        through: b.add_i64_field("through", INDEXED | FAST),
        checksum: b.add_u64_field("checksum", FAST),
        entries: b.add_u64_field("entries", FAST),
        raw_bytes: b.add_u64_field("raw_bytes", FAST),
        size: b.add_u64_field("size", FAST),
    };
    (b.build(), fields)
}

/// A UTC day, as days since 1970-01-01.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Day(pub i64);

impl Day {
    pub fn of(ts: Timestamp) -> Day {
        Day(ts.day())
    }

    pub fn start(self) -> Timestamp {
        Timestamp::from_secs(self.0 * 86_400)
    }

    /// The last nanosecond of the day.
    pub fn end(self) -> Timestamp {
        Timestamp::from_secs((self.0 + 1) * 86_400).saturating_sub_nanos(1)
    }

    /// `YYYY-MM-DD`.
    pub fn name(self) -> String {
        let (y, m, d) = civil_from_days(self.0);
        format!("{y:04}-{m:02}-{d:02}")
    }

    pub fn parse(name: &str) -> Option<Day> {
        let mut it = name.splitn(3, '-');
        let y: i64 = it.next()?.parse().ok()?;
        let m: u32 = it.next()?.parse().ok()?;
        let d: u32 = it.next()?.parse().ok()?;
        let day = Day(days_from_civil(y, m, d));
        (day.name() == name).then_some(day)
    }
}

/// A change waiting for the next commit of its partition.
enum PendingOp {
    /// Replace-or-add: deletes any document of the chunk id first, so
    /// re-adding a chunk (WAL replay after a crash) never duplicates it.
    Add {
        id: String,
        doc: TantivyDocument,
    },
    Delete {
        id: String,
    },
}

struct Partition {
    name: String,
    index: Index,
    reader: IndexReader,
    /// Open only while in the writer LRU ([`LabelIndex::write`]).
    writer: Mutex<Option<IndexWriter>>,
    /// Changes not yet applied to a writer, in order (the partition needs
    /// a commit while this is not empty).
    pending: Mutex<Vec<PendingOp>>,
    last_write: Mutex<Instant>,
}

impl Partition {
    fn err(&self, source: tantivy::TantivyError) -> IndexError {
        IndexError::Tantivy {
            partition: self.name.clone(),
            source,
        }
    }

    fn with_writer<T>(
        &self,
        f: impl FnOnce(&mut IndexWriter) -> tantivy::Result<T>,
    ) -> Result<T, IndexError> {
        let mut guard = self.writer.lock();
        let w = match guard.as_mut() {
            Some(w) => w,
            None => {
                let options = IndexWriterOptions::builder()
                    .num_worker_threads(1)
                    .num_merge_threads(1)
                    .memory_budget_per_thread(WRITER_MEMORY)
                    .build();
                guard.insert(
                    self.index
                        .writer_with_options(options)
                        .map_err(|e| self.err(e))?,
                )
            }
        };
        *self.last_write.lock() = Instant::now();
        let res = f(w).map_err(|e| self.err(e));
        if res.is_err()
            && let Some(w) = guard.take()
        {
            // Drop what the failed operation left uncommitted; the next
            // writer starts from the last commit.
            let _ = w.wait_merging_threads();
        }
        res
    }

    fn close_writer(&self) {
        if let Some(w) = self.writer.lock().take() {
            let _ = w.wait_merging_threads();
        }
    }

    fn has_writer(&self) -> bool {
        self.writer.lock().is_some()
    }
}

/// The files of a partition at one commit, read for a snapshot upload.
#[derive(Debug)]
pub struct PartitionFiles {
    /// The exact `meta.json` the files belong to (upload it last).
    pub meta: Vec<u8>,
    /// Every file name `meta` may reference (some candidates may not exist).
    pub live: HashSet<String>,
    /// Contents of the live files that exist and were not in the skip set.
    pub files: Vec<(String, Vec<u8>)>,
}

/// The name of a partition's metadata file (tantivy's).
pub const META_FILE: &str = "meta.json";

/// The label index of every tenant and day.
pub struct LabelIndex {
    root: PathBuf,
    schema: Schema,
    fields: Fields,
    partitions: RwLock<HashMap<(TenantId, Day), Arc<Partition>>>,
    /// Days that have a partition on disk, per tenant (opened or not).
    days: RwLock<BTreeMap<TenantId, BTreeSet<Day>>>,
    /// Days known to exist in the object store but not on disk.
    remote_only: RwLock<BTreeMap<TenantId, BTreeSet<Day>>>,
    /// Partitions whose writer may be open, most recently used first.
    writers: Mutex<VecDeque<Arc<Partition>>>,
}

impl LabelIndex {
    /// Opens the index under `root`, discovering existing partitions.
    pub fn open(root: &Path) -> Result<Self, IndexError> {
        let io = |source| IndexError::Io {
            path: root.display().to_string(),
            source,
        };
        std::fs::create_dir_all(root).map_err(io)?;
        let (schema, fields) = schema();
        let mut days: BTreeMap<TenantId, BTreeSet<Day>> = BTreeMap::new();
        for tenant_dir in std::fs::read_dir(root).map_err(io)? {
            let tenant_dir = tenant_dir.map_err(io)?;
            let Some(tenant) = tenant_dir
                .file_name()
                .to_str()
                .and_then(|t| TenantId::new(t).ok())
            else {
                continue;
            };
            if !tenant_dir.path().is_dir() {
                continue;
            }
            for day_dir in std::fs::read_dir(tenant_dir.path()).map_err(io)? {
                let day_dir = day_dir.map_err(io)?;
                let name = day_dir.file_name();
                let name = name.to_str().unwrap_or("");
                if name.starts_with('.') && name.ends_with(DOWNLOAD_SUFFIX) {
                    // A download cut short by a crash.
                    let _ = std::fs::remove_dir_all(day_dir.path());
                    continue;
                }
                if let Some(day) = Day::parse(name)
                    && day_dir.path().join(META_FILE).exists()
                {
                    days.entry(tenant.clone()).or_default().insert(day);
                }
            }
        }
        Ok(LabelIndex {
            root: root.to_path_buf(),
            schema,
            fields,
            partitions: RwLock::new(HashMap::new()),
            days: RwLock::new(days),
            remote_only: RwLock::new(BTreeMap::new()),
            writers: Mutex::new(VecDeque::new()),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn partition_dir(&self, tenant: &TenantId, day: Day) -> PathBuf {
        self.root.join(tenant.as_str()).join(day.name())
    }

    /// The partition for (tenant, day); created when `create` is set.
    fn partition(
        &self,
        tenant: &TenantId,
        day: Day,
        create: bool,
    ) -> Result<Option<Arc<Partition>>, IndexError> {
        if let Some(p) = self.partitions.read().get(&(tenant.clone(), day)) {
            return Ok(Some(p.clone()));
        }
        let exists = self
            .days
            .read()
            .get(tenant)
            .is_some_and(|d| d.contains(&day));
        if !exists && self.is_remote_only(tenant, day) {
            return Err(IndexError::NotLocal {
                partition: format!("{}/{}", tenant, day.name()),
            });
        }
        if !exists && !create {
            return Ok(None);
        }
        let mut parts = self.partitions.write();
        if let Some(p) = parts.get(&(tenant.clone(), day)) {
            return Ok(Some(p.clone()));
        }
        let dir = self.partition_dir(tenant, day);
        let name = format!("{}/{}", tenant, day.name());
        let terr = |source| IndexError::Tantivy {
            partition: name.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(|source| IndexError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let mmap = tantivy::directory::MmapDirectory::open(&dir).map_err(|e| terr(e.into()))?;
        let index = Index::open_or_create(mmap, self.schema.clone()).map_err(terr)?;
        if let Some(found) = index.load_metas().map_err(terr)?.payload
            && found != INDEX_FORMAT
        {
            return Err(IndexError::UnknownFormat {
                partition: name,
                found,
            });
        }
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(terr)?;
        let p = Arc::new(Partition {
            name: name.clone(),
            index,
            reader,
            writer: Mutex::new(None),
            pending: Mutex::new(Vec::new()),
            last_write: Mutex::new(Instant::now()),
        });
        parts.insert((tenant.clone(), day), p.clone());
        self.days
            .write()
            .entry(tenant.clone())
            .or_default()
            .insert(day);
        Ok(Some(p))
    }

    /// Adds a chunk reference to every day partition it overlaps. Visible to
    /// lookups after the next [`commit`](Self::commit).
    pub fn add(
        &self,
        tenant: &TenantId,
        labels: &Labels,
        chunk: &ChunkRef,
    ) -> Result<(), IndexError> {
        let f = self.fields;
        let canonical = labels.canonical();
        let id = chunk.id();
        for day in Day::of(chunk.from).0..=Day::of(chunk.through).0 {
            let Some(p) = self.partition(tenant, Day(day), true)? else {
                continue;
            };
            let mut doc = TantivyDocument::new();
            doc.add_u64(f.stream, chunk.stream.0);
            for l in labels {
                doc.add_text(f.label, format!("{}={}", l.name, l.value));
            }
            doc.add_text(f.labels, &canonical);
            doc.add_text(f.chunk, &id);
            doc.add_i64(f.from, chunk.from.nanos());
            doc.add_i64(f.through, chunk.through.nanos());
            doc.add_u64(f.checksum, u64::from(chunk.checksum));
            doc.add_u64(f.entries, chunk.entries);
            doc.add_u64(f.raw_bytes, chunk.raw_bytes);
            doc.add_u64(f.size, chunk.size);
            p.pending.lock().push(PendingOp::Add {
                id: id.clone(),
                doc,
            });
        }
        Ok(())
    }

    /// Removes a chunk reference from every day partition it overlaps.
    pub fn remove(&self, tenant: &TenantId, chunk: &ChunkRef) -> Result<(), IndexError> {
        let id = chunk.id();
        for day in Day::of(chunk.from).0..=Day::of(chunk.through).0 {
            let Some(p) = self.partition(tenant, Day(day), false)? else {
                continue;
            };
            p.pending.lock().push(PendingOp::Delete { id: id.clone() });
        }
        Ok(())
    }

    /// Makes every added or removed reference durable and visible; returns
    /// the partitions committed (for snapshot uploads).
    pub fn commit(&self) -> Result<Vec<(TenantId, Day)>, IndexError> {
        let parts: Vec<((TenantId, Day), Arc<Partition>)> = self
            .partitions
            .read()
            .iter()
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect();
        let mut committed = Vec::new();
        for (key, p) in parts {
            let ops = std::mem::take(&mut *p.pending.lock());
            if ops.is_empty() {
                continue;
            }
            let chunk = self.fields.chunk;
            let res = self
                .write(&p, |w| {
                    for op in &ops {
                        match op {
                            PendingOp::Add { id, doc } => {
                                w.delete_term(Term::from_field_text(chunk, id));
                                w.add_document(doc.clone())?;
                            }
                            PendingOp::Delete { id } => {
                                w.delete_term(Term::from_field_text(chunk, id));
                            }
                        }
                    }
                    let mut commit = w.prepare_commit()?;
                    commit.set_payload(INDEX_FORMAT);
                    commit.commit()
                })
                .and_then(|_| p.reader.reload().map_err(|e| p.err(e)));
            if let Err(e) = res {
                // Nothing of `ops` is durable: keep them, before any
                // added meanwhile, for the next commit.
                let mut pending = p.pending.lock();
                let later = std::mem::replace(&mut *pending, ops);
                pending.extend(later);
                return Err(e);
            }
            committed.push(key);
        }
        Ok(committed)
    }

    /// Merges every segment of a partition into one (the compactor runs this
    /// on days that no longer receive writes) and commits. Returns whether
    /// anything was merged.
    pub fn merge_partition(&self, tenant: &TenantId, day: Day) -> Result<bool, IndexError> {
        let Some(p) = self.partition(tenant, day, false)? else {
            return Ok(false);
        };
        let ids = p.index.searchable_segment_ids().map_err(|e| p.err(e))?;
        if ids.len() < 2 {
            return Ok(false);
        }
        self.write(&p, |w| {
            w.merge(&ids).wait()?;
            w.garbage_collect_files().wait()?;
            Ok(())
        })?;
        p.reader.reload().map_err(|e| p.err(e))?;
        Ok(true)
    }

    /// Number of segments of a partition (0 when absent).
    pub fn segment_count(&self, tenant: &TenantId, day: Day) -> Result<usize, IndexError> {
        let Some(p) = self.partition(tenant, day, false)? else {
            return Ok(0);
        };
        Ok(p.index
            .searchable_segment_ids()
            .map_err(|e| p.err(e))?
            .len())
    }

    /// Reads a partition's committed files for a snapshot: `meta.json` and
    /// the files it references, skipping the names in `skip` (already
    /// uploaded; segment files are immutable). Retries when a commit or a
    /// merge replaces `meta.json` meanwhile, so the files always belong to
    /// the returned `meta`. `None` when the partition does not exist.
    pub fn partition_files(
        &self,
        tenant: &TenantId,
        day: Day,
        skip: &HashSet<String>,
    ) -> Result<Option<PartitionFiles>, IndexError> {
        let Some(p) = self.partition(tenant, day, false)? else {
            return Ok(None);
        };
        let dir = self.partition_dir(tenant, day);
        let io = |path: &Path, source| IndexError::Io {
            path: path.display().to_string(),
            source,
        };
        let meta_path = dir.join(META_FILE);
        for _ in 0..100 {
            let before = std::fs::read(&meta_path).map_err(|e| io(&meta_path, e))?;
            let metas = p.index.load_metas().map_err(|e| p.err(e))?;
            let live: HashSet<String> = metas
                .list_segment_files()
                .into_iter()
                .filter_map(|f| f.to_str().map(str::to_string))
                .collect();
            let mut files = Vec::new();
            for name in &live {
                if skip.contains(name) {
                    continue;
                }
                let path = dir.join(name);
                match std::fs::read(&path) {
                    Ok(bytes) => files.push((name.clone(), bytes)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(&path, e)),
                }
            }
            let after = std::fs::read(&meta_path).map_err(|e| io(&meta_path, e))?;
            if before == after {
                files.sort_by(|a, b| a.0.cmp(&b.0));
                return Ok(Some(PartitionFiles {
                    meta: before,
                    live,
                    files,
                }));
            }
        }
        Err(IndexError::Io {
            path: meta_path.display().to_string(),
            source: std::io::Error::other("meta.json kept changing while it was read"),
        })
    }

    /// Records partitions that exist in the object store but not locally.
    pub fn mark_remote(&self, tenant: &TenantId, days: impl IntoIterator<Item = Day>) {
        let local = self.days.read().get(tenant).cloned().unwrap_or_default();
        let mut remote = self.remote_only.write();
        let set = remote.entry(tenant.clone()).or_default();
        set.extend(days.into_iter().filter(|d| !local.contains(d)));
    }

    pub fn is_remote_only(&self, tenant: &TenantId, day: Day) -> bool {
        self.remote_only
            .read()
            .get(tenant)
            .is_some_and(|d| d.contains(&day))
    }

    /// Remote-only days of `tenant` in `[from, through]`.
    pub fn remote_only_days(&self, tenant: &TenantId, from: Day, through: Day) -> Vec<Day> {
        if through < from {
            return Vec::new();
        }
        self.remote_only
            .read()
            .get(tenant)
            .map(|d| d.range(from..=through).copied().collect())
            .unwrap_or_default()
    }

    /// Days with a local partition, per tenant.
    pub fn local_partitions(&self) -> Vec<(TenantId, Day)> {
        self.days
            .read()
            .iter()
            .flat_map(|(t, days)| days.iter().map(move |d| (t.clone(), *d)))
            .collect()
    }

    /// Installs a downloaded partition: writes `files` into a temporary
    /// directory, `meta.json` last, and renames it into place. The
    /// partition stops being remote-only.
    pub fn install_partition(
        &self,
        tenant: &TenantId,
        day: Day,
        files: &[(String, Vec<u8>)],
        meta: &[u8],
    ) -> Result<(), IndexError> {
        let dir = self.partition_dir(tenant, day);
        let tmp = self
            .root
            .join(tenant.as_str())
            .join(format!(".{}{DOWNLOAD_SUFFIX}", day.name()));
        let io = |path: &Path, source| IndexError::Io {
            path: path.display().to_string(),
            source,
        };
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
        for (name, bytes) in files {
            if name.contains('/') || name.starts_with('.') {
                continue;
            }
            let path = tmp.join(name);
            std::fs::write(&path, bytes).map_err(|e| io(&path, e))?;
        }
        let meta_path = tmp.join(META_FILE);
        std::fs::write(&meta_path, meta).map_err(|e| io(&meta_path, e))?;
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| io(&dir, e))?;
        }
        std::fs::rename(&tmp, &dir).map_err(|e| io(&dir, e))?;
        self.days
            .write()
            .entry(tenant.clone())
            .or_default()
            .insert(day);
        if let Some(d) = self.remote_only.write().get_mut(tenant) {
            d.remove(&day);
        }
        Ok(())
    }

    /// Runs `f` on the partition's writer, opening it if needed; keeps at
    /// most [`MAX_OPEN_WRITERS`] open by closing the least recently used.
    /// Never called with another partition's writer lock held, so closing a
    /// victim (which waits for its lock) cannot deadlock.
    fn write<T>(
        &self,
        p: &Arc<Partition>,
        f: impl FnOnce(&mut IndexWriter) -> tantivy::Result<T>,
    ) -> Result<T, IndexError> {
        let victims: Vec<Arc<Partition>> = {
            let mut lru = self.writers.lock();
            lru.retain(|x| !Arc::ptr_eq(x, p));
            lru.push_front(p.clone());
            let keep = MAX_OPEN_WRITERS.min(lru.len());
            lru.drain(keep..).collect()
        };
        for v in victims {
            v.close_writer();
        }
        p.with_writer(f)
    }

    /// Writers open now (at most [`MAX_OPEN_WRITERS`] plus the ones being
    /// opened by concurrent commits).
    pub fn open_writers(&self) -> usize {
        let parts: Vec<Arc<Partition>> = self.partitions.read().values().cloned().collect();
        parts.iter().filter(|p| p.has_writer()).count()
    }

    /// Closes writers idle for longer than `idle` (they hold memory and file
    /// handles); lookups keep working.
    pub fn close_idle_writers(&self, idle: Duration) {
        let open: Vec<Arc<Partition>> = self.writers.lock().iter().cloned().collect();
        for p in open {
            if p.last_write.lock().elapsed() >= idle {
                self.writers.lock().retain(|x| !Arc::ptr_eq(x, &p));
                p.close_writer();
            }
        }
    }

    /// Tenants with at least one partition (local or remote-only).
    pub fn tenants(&self) -> Vec<TenantId> {
        let mut out: BTreeSet<TenantId> = self
            .days
            .read()
            .iter()
            .filter(|(_, d)| !d.is_empty())
            .map(|(t, _)| t.clone())
            .collect();
        out.extend(
            self.remote_only
                .read()
                .iter()
                .filter(|(_, d)| !d.is_empty())
                .map(|(t, _)| t.clone()),
        );
        out.into_iter().collect()
    }

    /// Days with a partition for `tenant` (local or remote-only), oldest
    /// first.
    pub fn days(&self, tenant: &TenantId) -> Vec<Day> {
        let mut out: BTreeSet<Day> = self.days.read().get(tenant).cloned().unwrap_or_default();
        out.extend(
            self.remote_only
                .read()
                .get(tenant)
                .into_iter()
                .flatten()
                .copied(),
        );
        out.into_iter().collect()
    }

    /// Deletes a whole (tenant, day) partition from disk.
    pub fn drop_partition(&self, tenant: &TenantId, day: Day) -> Result<(), IndexError> {
        if let Some(p) = self.partitions.write().remove(&(tenant.clone(), day)) {
            self.writers.lock().retain(|x| !Arc::ptr_eq(x, &p));
            p.pending.lock().clear();
            p.close_writer();
        }
        if let Some(d) = self.days.write().get_mut(tenant) {
            d.remove(&day);
        }
        if let Some(d) = self.remote_only.write().get_mut(tenant) {
            d.remove(&day);
        }
        let dir = self.partition_dir(tenant, day);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(IndexError::Io {
                path: dir.display().to_string(),
                source,
            }),
        }
    }

    /// Directory of a (tenant, day) partition, for snapshotting.
    pub fn partition_path(&self, tenant: &TenantId, day: Day) -> PathBuf {
        self.partition_dir(tenant, day)
    }

    /// Streams of `tenant` matching every matcher with at least one chunk
    /// overlapping `[start, end]` (inclusive), each with those chunks sorted
    /// by `from`. An empty matcher list matches every stream.
    pub fn streams(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<IndexedStream>, IndexError> {
        if end < start {
            return Ok(Vec::new());
        }
        let days: Vec<Day> = {
            let known = self.days.read();
            let mut days: Vec<Day> = known
                .get(tenant)
                .map(|d| d.range(Day::of(start)..=Day::of(end)).copied().collect())
                .unwrap_or_default();
            // Remote-only days make `partition` fail with NotLocal.
            days.extend(self.remote_only_days(tenant, Day::of(start), Day::of(end)));
            days
        };
        // Per stream: one document to read its labels from, and its chunks.
        type Found = (Option<(Arc<Partition>, DocAddress)>, BTreeSet<ChunkRef>);
        let mut by_stream: HashMap<StreamId, Found> = HashMap::new();
        for day in days {
            let Some(p) = self.partition(tenant, day, false)? else {
                continue;
            };
            let searcher = p.reader.searcher();
            let query = self
                .build_query(&searcher, matchers, start, end)
                .map_err(|e| p.err(e))?;
            let hits = searcher
                .search(&*query, &ChunkCollector)
                .map_err(|e| p.err(e))?;
            for (addr, chunk) in hits {
                let slot = by_stream
                    .entry(chunk.stream)
                    .or_insert_with(|| (None, BTreeSet::new()));
                if slot.0.is_none() {
                    slot.0 = Some((p.clone(), addr));
                }
                slot.1.insert(chunk);
            }
        }
        let mut out = Vec::with_capacity(by_stream.len());
        for (id, (first, chunks)) in by_stream {
            let Some((p, addr)) = first else { continue };
            let doc: TantivyDocument = p.reader.searcher().doc(addr).map_err(|e| p.err(e))?;
            let text = doc
                .get_first(self.fields.labels)
                .and_then(|v| v.as_str())
                .unwrap_or("");
            let labels = Labels::parse(text).map_err(|source| IndexError::CorruptLabels {
                partition: p.name.clone(),
                labels: text.to_string(),
                source,
            })?;
            let mut chunks: Vec<ChunkRef> = chunks.into_iter().collect();
            chunks.sort_by_key(|c| (c.from, c.through, c.checksum));
            out.push(IndexedStream { id, labels, chunks });
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    fn build_query(
        &self,
        searcher: &tantivy::Searcher,
        matchers: &[Matcher],
        start: Timestamp,
        end: Timestamp,
    ) -> tantivy::Result<Box<dyn Query>> {
        let f = self.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
            (
                Occur::Must,
                Box::new(RangeQuery::new(
                    Bound::Unbounded,
                    Bound::Included(Term::from_field_i64(f.from, end.nanos())),
                )),
            ),
            (
                Occur::Must,
                Box::new(RangeQuery::new(
                    Bound::Included(Term::from_field_i64(f.through, start.nanos())),
                    Bound::Unbounded,
                )),
            ),
        ];
        for m in matchers {
            let term = |v: &str| Term::from_field_text(f.label, &format!("{}={}", m.name, v));
            if m.op == MatchOp::Eq && !m.value.is_empty() {
                clauses.push((
                    Occur::Must,
                    Box::new(TermQuery::new(term(&m.value), IndexRecordOption::Basic)),
                ));
                continue;
            }
            let values = label_values(searcher, f.label, &m.name)?;
            let (matching, rejected): (Vec<&String>, Vec<&String>) =
                values.iter().partition(|v| m.matches(v));
            if m.matches_empty() {
                // Streams without the label match; exclude those whose value does not.
                if !rejected.is_empty() {
                    let terms: Vec<Term> = rejected.iter().map(|v| term(v)).collect();
                    clauses.push((Occur::MustNot, Box::new(TermSetQuery::new(terms))));
                }
            } else if matching.is_empty() {
                return Ok(Box::new(EmptyQuery));
            } else {
                let terms: Vec<Term> = matching.iter().map(|v| term(v)).collect();
                clauses.push((Occur::Must, Box::new(TermSetQuery::new(terms))));
            }
        }
        if clauses.iter().all(|(o, _)| *o == Occur::MustNot) {
            clauses.push((Occur::Must, Box::new(AllQuery)));
        }
        Ok(Box::new(BooleanQuery::new(clauses)))
    }
}

/// Every value of label `name` in the searcher's term dictionaries.
fn label_values(
    searcher: &tantivy::Searcher,
    field: Field,
    name: &str,
) -> tantivy::Result<BTreeSet<String>> {
    let prefix = format!("{name}=");
    // '=' + 1 is '>': the smallest string greater than every "name=..." term.
    let upper = format!("{name}>");
    let mut out = BTreeSet::new();
    for seg in searcher.segment_readers() {
        let inv = seg.inverted_index(field)?;
        let mut stream = inv
            .terms()
            .range()
            .ge(prefix.as_bytes())
            .lt(upper.as_bytes())
            .into_stream()?;
        while stream.advance() {
            if let Ok(s) = std::str::from_utf8(stream.key()) {
                out.insert(s[prefix.len()..].to_string());
            }
        }
    }
    Ok(out)
}

/// Collects (doc address, chunk reference) for every matching document from
/// fast fields, without touching the document store.
struct ChunkCollector;

struct ChunkSegmentCollector {
    segment: SegmentOrdinal,
    stream: tantivy::columnar::Column<u64>,
    from: tantivy::columnar::Column<i64>,
    through: tantivy::columnar::Column<i64>,
    checksum: tantivy::columnar::Column<u64>,
    entries: tantivy::columnar::Column<u64>,
    raw_bytes: tantivy::columnar::Column<u64>,
    size: tantivy::columnar::Column<u64>,
    out: Vec<(DocAddress, ChunkRef)>,
}

impl Collector for ChunkCollector {
    type Fruit = Vec<(DocAddress, ChunkRef)>;
    type Child = ChunkSegmentCollector;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<Self::Child> {
        let ff = reader.fast_fields();
        Ok(ChunkSegmentCollector {
            segment,
            stream: ff.u64("stream")?,
            from: ff.i64("from")?,
            through: ff.i64("through")?,
            checksum: ff.u64("checksum")?,
            entries: ff.u64("entries")?,
            raw_bytes: ff.u64("raw_bytes")?,
            size: ff.u64("size")?,
            out: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Self::Fruit>) -> tantivy::Result<Self::Fruit> {
        Ok(fruits.into_iter().flatten().collect())
    }
}

impl SegmentCollector for ChunkSegmentCollector {
    type Fruit = Vec<(DocAddress, ChunkRef)>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let chunk = ChunkRef {
            stream: StreamId(self.stream.first(doc).unwrap_or(0)),
            from: Timestamp::from_nanos(self.from.first(doc).unwrap_or(0)),
            through: Timestamp::from_nanos(self.through.first(doc).unwrap_or(0)),
            checksum: self.checksum.first(doc).unwrap_or(0) as u32,
            entries: self.entries.first(doc).unwrap_or(0),
            raw_bytes: self.raw_bytes.first(doc).unwrap_or(0),
            size: self.size.first(doc).unwrap_or(0),
        };
        self.out.push((DocAddress::new(self.segment, doc), chunk));
    }

    fn harvest(self) -> Self::Fruit {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(t: &str) -> TenantId {
        TenantId::new(t).unwrap()
    }

    fn chunk(labels: &Labels, from_s: i64, through_s: i64) -> ChunkRef {
        ChunkRef {
            stream: labels.stream_id(),
            from: Timestamp::from_secs(from_s),
            through: Timestamp::from_secs(through_s),
            checksum: (from_s as u32) ^ 0xabcd,
            entries: 10,
            raw_bytes: 1000,
            size: 300,
        }
    }

    fn m(name: &str, op: MatchOp, v: &str) -> Matcher {
        Matcher::new(name, op, v).unwrap()
    }

    const DAY: i64 = 86_400;

    #[test]
    fn day_names_round_trip() {
        for d in [-1000, -1, 0, 1, 20_758, 47_482] {
            assert_eq!(
                Day::parse(&Day(d).name()),
                Some(Day(d)),
                "{}",
                Day(d).name()
            );
        }
        assert_eq!(Day(20_758).name(), "2026-11-01");
        assert_eq!(Day::parse("2026-02-30"), None);
        assert_eq!(Day::parse("nope"), None);
    }

    #[test]
    fn matchers_time_ranges_and_tenants() {
        let dir = tempfile::tempdir().unwrap();
        let idx = LabelIndex::open(dir.path()).unwrap();
        let api = Labels::parse(r#"{app="api", env="prod"}"#).unwrap();
        let web = Labels::parse(r#"{app="web", env="staging"}"#).unwrap();
        let bare = Labels::parse(r#"{job="cron"}"#).unwrap();
        let (t, other) = (tenant("fake"), tenant("tenant-b"));
        let base = 20_758 * DAY;
        idx.add(&t, &api, &chunk(&api, base + 100, base + 200))
            .unwrap();
        idx.add(&t, &api, &chunk(&api, base + 300, base + 400))
            .unwrap();
        idx.add(&t, &web, &chunk(&web, base + 150, base + 250))
            .unwrap();
        idx.add(&t, &bare, &chunk(&bare, base + 100, base + 500))
            .unwrap();
        idx.add(&other, &api, &chunk(&api, base + 100, base + 200))
            .unwrap();
        idx.commit().unwrap();

        let all = |ms: &[Matcher], a: i64, b: i64| -> Vec<String> {
            idx.streams(
                &t,
                ms,
                Timestamp::from_secs(base + a),
                Timestamp::from_secs(base + b),
            )
            .unwrap()
            .into_iter()
            .map(|s| format!("{}:{}", s.labels, s.chunks.len()))
            .collect()
        };
        assert_eq!(
            all(&[m("app", MatchOp::Eq, "api")], 0, 1000),
            [r#"{app="api", env="prod"}:2"#]
        );
        assert_eq!(
            all(&[m("app", MatchOp::Eq, "api")], 250, 260),
            Vec::<String>::new()
        );
        assert_eq!(
            all(&[m("app", MatchOp::Re, "a.*")], 0, 1000),
            [r#"{app="api", env="prod"}:2"#]
        );
        assert_eq!(
            all(&[m("app", MatchOp::Re, "ap")], 0, 1000),
            Vec::<String>::new(),
            "anchored"
        );
        // != keeps streams without the label.
        assert_eq!(
            all(&[m("app", MatchOp::Neq, "api")], 0, 1000),
            [r#"{app="web", env="staging"}:1"#, r#"{job="cron"}:1"#]
        );
        assert_eq!(
            all(&[m("app", MatchOp::Nre, "api|web")], 0, 1000),
            [r#"{job="cron"}:1"#]
        );
        assert_eq!(
            all(&[m("job", MatchOp::Re, ".+")], 0, 1000),
            [r#"{job="cron"}:1"#]
        );
        assert_eq!(
            all(
                &[
                    m("app", MatchOp::Re, "api|web"),
                    m("env", MatchOp::Eq, "prod")
                ],
                0,
                1000
            )
            .len(),
            1
        );
        assert_eq!(all(&[], 0, 1000).len(), 3);
        assert_eq!(
            all(&[m("nope", MatchOp::Eq, "x")], 0, 1000),
            Vec::<String>::new()
        );
        // Tenants never see each other.
        let b = idx
            .streams(
                &other,
                &[],
                Timestamp::from_secs(base),
                Timestamp::from_secs(base + 1000),
            )
            .unwrap();
        assert_eq!(b.len(), 1);
        let none = idx
            .streams(&tenant("nobody"), &[], Timestamp::MIN, Timestamp::MAX)
            .unwrap();
        assert!(none.is_empty());
    }

    // ---- v1 fixture ---------------------------------------------------------

    const FIXTURE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/index_v1");

    /// The fixture's tenant, days and chunk references: two streams, one
    /// chunk crossing midnight (referenced from both days).
    fn fixture_chunks() -> Vec<(Labels, ChunkRef)> {
        let api = Labels::parse(r#"{app="api", env="prod"}"#).unwrap();
        let web = Labels::parse(r#"{app="web"}"#).unwrap();
        let d = 19_675 * DAY; // 2023-11-14
        let c = |l: &Labels, from: i64, through: i64, checksum: u32| ChunkRef {
            stream: l.stream_id(),
            from: Timestamp::from_secs(from),
            through: Timestamp::from_secs(through),
            checksum,
            entries: 12,
            raw_bytes: 3456,
            size: 789,
        };
        vec![
            (api.clone(), c(&api, d + 100, d + 200, 0xdead_beef)),
            (
                api.clone(),
                c(&api, d + DAY - 60, d + DAY + 60, 0x0bad_cafe),
            ),
            (
                web.clone(),
                c(&web, d + DAY + 500, d + DAY + 600, 0x1234_5678),
            ),
        ]
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            if e.path().is_dir() {
                copy_dir(&e.path(), &to.join(e.file_name()));
            } else {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }

    #[test]
    #[ignore = "writes tests/data/index_v1/; run once when creating the fixture"]
    fn write_v1_fixture() {
        let dir = Path::new(FIXTURE_DIR);
        let _ = std::fs::remove_dir_all(dir);
        let idx = LabelIndex::open(dir).unwrap();
        let t = tenant("tenant-a");
        for (l, c) in fixture_chunks() {
            idx.add(&t, &l, &c).unwrap();
        }
        idx.commit().unwrap();
        idx.close_idle_writers(Duration::ZERO);
        drop(idx);
        // tantivy's (empty) lock files are not part of the format.
        for day in ["2023-11-14", "2023-11-15"] {
            for lock in [".tantivy-writer.lock", ".tantivy-meta.lock"] {
                let _ = std::fs::remove_file(dir.join("tenant-a").join(day).join(lock));
            }
        }
    }

    #[test]
    fn reads_v1_fixture() {
        let tmp = tempfile::tempdir().unwrap();
        copy_dir(Path::new(FIXTURE_DIR), tmp.path());
        let idx = LabelIndex::open(tmp.path()).unwrap();
        let t = tenant("tenant-a");
        assert_eq!(idx.tenants(), vec![t.clone()]);
        assert_eq!(idx.days(&t), vec![Day(19_675), Day(19_676)]);
        let meta =
            std::fs::read_to_string(tmp.path().join("tenant-a/2023-11-14/meta.json")).unwrap();
        assert!(meta.contains(INDEX_FORMAT), "{meta}");
        let chunks = fixture_chunks();
        let found = idx
            .streams(&t, &[], Timestamp::MIN, Timestamp::MAX)
            .unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].labels, chunks[0].0);
        assert_eq!(found[0].id, chunks[0].0.stream_id());
        assert_eq!(found[0].chunks, vec![chunks[0].1, chunks[1].1]);
        assert_eq!(found[1].labels, chunks[2].0);
        assert_eq!(found[1].chunks, vec![chunks[2].1]);
        // Matchers and time ranges on the fixture.
        let web = idx
            .streams(
                &t,
                &[m("app", MatchOp::Re, "w.*")],
                Timestamp::from_secs(19_676 * DAY),
                Timestamp::MAX,
            )
            .unwrap();
        assert_eq!(web.len(), 1);
        assert_eq!(web[0].chunks, vec![chunks[2].1]);
        let day2_api = idx
            .streams(
                &t,
                &[m("env", MatchOp::Eq, "prod")],
                Timestamp::from_secs(19_676 * DAY),
                Timestamp::MAX,
            )
            .unwrap();
        assert_eq!(
            day2_api[0].chunks,
            vec![chunks[1].1],
            "the chunk across midnight"
        );
    }

    #[test]
    fn unknown_format_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        copy_dir(Path::new(FIXTURE_DIR), tmp.path());
        let meta_path = tmp.path().join("tenant-a/2023-11-14/meta.json");
        let mut meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
        meta["payload"] = serde_json::Value::String("lokal-index-v9".into());
        std::fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();
        let idx = LabelIndex::open(tmp.path()).unwrap();
        let err = idx
            .streams(&tenant("tenant-a"), &[], Timestamp::MIN, Timestamp::MAX)
            .unwrap_err();
        assert!(matches!(err, IndexError::UnknownFormat { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("lokal-index-v9") && msg.contains(INDEX_FORMAT),
            "{msg}"
        );
    }

    /// Regression (issue 2 audit): a replay touching a year of days opened a
    /// tantivy writer, with its threads and memory budget, per day.
    #[test]
    fn writers_stay_bounded_over_many_days() {
        let dir = tempfile::tempdir().unwrap();
        let t = tenant("fake");
        let s = Labels::parse(r#"{app="span"}"#).unwrap();
        let base = 20_000 * DAY;
        let chunks: Vec<ChunkRef> = (0..40)
            .map(|d| chunk(&s, base + d * DAY, base + d * DAY + 60))
            .collect();
        {
            let idx = LabelIndex::open(dir.path()).unwrap();
            for c in &chunks {
                idx.add(&t, &s, c).unwrap();
            }
            assert_eq!(idx.open_writers(), 0, "adds are buffered until commit");
            assert_eq!(idx.commit().unwrap().len(), 40);
            assert!(
                idx.open_writers() <= MAX_OPEN_WRITERS,
                "{}",
                idx.open_writers()
            );
            let found = idx
                .streams(&t, &[], Timestamp::MIN, Timestamp::MAX)
                .unwrap();
            assert_eq!(found[0].chunks, chunks);
            // Removes are buffered too, and a remove after an add in the
            // same commit wins.
            idx.add(&t, &s, &chunks[0]).unwrap();
            idx.remove(&t, &chunks[0]).unwrap();
            idx.remove(&t, &chunks[39]).unwrap();
            idx.commit().unwrap();
            assert!(idx.open_writers() <= MAX_OPEN_WRITERS);
            idx.close_idle_writers(Duration::ZERO);
            assert_eq!(idx.open_writers(), 0);
        }
        let idx = LabelIndex::open(dir.path()).unwrap();
        let found = idx
            .streams(&t, &[], Timestamp::MIN, Timestamp::MAX)
            .unwrap();
        assert_eq!(found[0].chunks, chunks[1..39].to_vec());
    }

    #[test]
    fn chunks_across_midnight_deletes_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let t = tenant("fake");
        let s = Labels::parse(r#"{app="api"}"#).unwrap();
        let base = 20_758 * DAY;
        let c = chunk(&s, base + DAY - 60, base + DAY + 60);
        {
            let idx = LabelIndex::open(dir.path()).unwrap();
            idx.add(&t, &s, &c).unwrap();
            idx.add(&t, &s, &c).unwrap(); // replayed twice: still one reference
            idx.commit().unwrap();
            assert_eq!(idx.days(&t), vec![Day(20_758), Day(20_759)]);
            let found = idx
                .streams(&t, &[], Timestamp::MIN, Timestamp::MAX)
                .unwrap();
            assert_eq!(
                found[0].chunks,
                vec![c],
                "one chunk, though indexed in two days"
            );
        }
        let idx = LabelIndex::open(dir.path()).unwrap();
        assert_eq!(
            idx.streams(&t, &[], Timestamp::MIN, Timestamp::MAX)
                .unwrap()[0]
                .chunks
                .len(),
            1
        );
        idx.remove(&t, &c).unwrap();
        idx.commit().unwrap();
        assert!(
            idx.streams(&t, &[], Timestamp::MIN, Timestamp::MAX)
                .unwrap()
                .is_empty()
        );
        idx.drop_partition(&t, Day(20_758)).unwrap();
        assert_eq!(idx.days(&t), vec![Day(20_759)]);
        assert!(!dir.path().join("fake/2026-11-01").exists());
    }
}
