//! The compactor: retention, delete requests, chunk merging and index
//! compaction, for every tenant.
//!
//! Owns the worker that, every `compaction_interval`, reads a snapshot of
//! the index and the manifest, asks the pure [`plan::plan`] what to do, and
//! does it — or, in dry-run mode, logs it. Does not own the decisions
//! (`plan`), the persisted state's format (`manifest`), how limits are read
//! (`retention`) or how a delete query is parsed (`deletes`).
//!
//! Two phases, as Loki: a chunk past retention or deleted leaves the index at
//! once (queries stop returning it) and its object is deleted after
//! `retention_delete_delay`, so a query that looked it up just before can
//! still read it. The deletions waiting for their delay are in the manifest,
//! so a restart continues them.
//!
//! One run, in order (see the store facade's docs for the WAL interplay):
//! 1. build the replacement chunks (rewrites and merges) and store them;
//! 2. write the manifest: tombstones for removed chunks whose flush marker
//!    may still be in the WAL, the waiting object deletions, the intended
//!    index swaps, the delete shards now processed;
//! 3. swap in the index — every add and remove in one commit, under the
//!    exclusive commit gate — and upload the changed index snapshots;
//! 4. drop whole day partitions past retention, merge past days' segments;
//! 5. delete the objects whose delay has passed, and write the manifest
//!    again without them and without the finished swaps.
//!
//! A crash after 2 and before 3 is finished at start-up by re-applying the
//! intents; a crash after 3 leaves only work the next run repeats.

pub mod clock;
pub mod deletes;
pub mod manifest;
pub mod plan;
pub mod retention;
pub mod rewrite;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use clock::Clock;
use deletes::{DeleteQuery, DeleteQueryParser};
use manifest::{ChunkRecord, IndexIntent, ManifestError, PendingDeletion, Tombstone};
use plan::{Action, PlanInput, PlanSettings, ReadyDelete, TenantState, Waiting};
use retention::{RetentionLimits, RetentionPolicy};
use rewrite::{BuiltChunk, ChunkBuilder};

use super::index::{ChunkRef, Day};
use super::{Store, StoreError, chunk_days, chunk_path, records};
use crate::model::{Labels, TenantId, Timestamp};

/// Counters exported on /metrics.
#[derive(Debug, Default)]
pub struct CompactorCounters {
    /// Completed runs (dry runs included).
    pub runs: AtomicU64,
    pub failed_runs: AtomicU64,
    /// Chunk objects deleted from the object store, and their bytes.
    pub chunks_deleted: AtomicU64,
    pub bytes_deleted: AtomicU64,
    /// Chunks taken out of the index by retention.
    pub chunks_expired: AtomicU64,
    /// Chunks rewritten without deleted lines, and the lines deleted.
    pub chunks_rewritten: AtomicU64,
    pub lines_deleted: AtomicU64,
    /// Chunks merged away, and the merged chunks written.
    pub chunks_merged: AtomicU64,
    pub merged_chunks_written: AtomicU64,
    pub partitions_dropped: AtomicU64,
    pub index_merges: AtomicU64,
    pub delete_requests_processed: AtomicU64,
    /// The retention backlog found by the last run, in seconds (see
    /// [`plan::Plan::retention_lag`]; 0: on time). Set by failed and dry runs too.
    pub retention_lag_seconds: AtomicI64,
    /// Unix seconds of the last successful run.
    pub last_success_unix_seconds: AtomicI64,
}

#[derive(Debug, thiserror::Error)]
pub enum CompactorError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("compactor task failed: {0}")]
    Task(String),
    #[error(
        "delete request {0} was cancelled (forced) during the run; run abandoned before changing the index, retried at the next interval"
    )]
    DeleteCancelled(String),
}

impl From<ManifestError> for CompactorError {
    fn from(e: ManifestError) -> Self {
        CompactorError::Store(StoreError::Manifest(e))
    }
}

impl From<super::snapshot::SnapshotError> for CompactorError {
    fn from(e: super::snapshot::SnapshotError) -> Self {
        CompactorError::Store(StoreError::Snapshot(e))
    }
}

impl From<super::index::IndexError> for CompactorError {
    fn from(e: super::index::IndexError) -> Self {
        CompactorError::Store(StoreError::Index(e))
    }
}

#[derive(Clone, Debug)]
pub struct CompactorSettings {
    pub retention_enabled: bool,
    pub delete_delay: Duration,
    pub delete_cancel_period: Duration,
    pub dry_run: bool,
    /// Merges per run at most.
    pub max_merges: usize,
}

/// What one run did (or, dry, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunReport {
    pub dry_run: bool,
    pub expired: usize,
    pub deleted: usize,
    pub rewritten: usize,
    pub merged_away: usize,
    pub merged_written: usize,
    pub lines_deleted: u64,
    pub partitions_dropped: usize,
    pub index_merges: usize,
    pub objects_deleted: usize,
    pub requests_processed: usize,
    pub retention_lag: Duration,
}

/// The compactor worker.
pub struct Compactor {
    store: Arc<Store>,
    limits: Arc<dyn RetentionLimits>,
    parser: DeleteQueryParser,
    clock: Arc<dyn Clock>,
    settings: CompactorSettings,
    /// One run at a time (a manual run and the loop).
    running: tokio::sync::Mutex<()>,
}

/// A chunk leaving the index, with why.
struct Removal {
    tenant: TenantId,
    chunk: ChunkRef,
    due: Timestamp,
    reason: &'static str,
}

impl Compactor {
    pub fn new(
        store: Arc<Store>,
        limits: Arc<dyn RetentionLimits>,
        parser: DeleteQueryParser,
        clock: Arc<dyn Clock>,
        settings: CompactorSettings,
    ) -> Self {
        Compactor {
            store,
            limits,
            parser,
            clock,
            settings,
            running: tokio::sync::Mutex::new(()),
        }
    }

    pub fn settings(&self) -> &CompactorSettings {
        &self.settings
    }

    /// Runs every `interval` (the first run after one interval).
    pub fn start(self: Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval.max(Duration::from_secs(1)));
            tick.tick().await;
            loop {
                tick.tick().await;
                match self.run_once().await {
                    Ok(r) => tracing::info!(report = ?r, "compactor run finished"),
                    Err(e) => {
                        tracing::error!(error = %e, "compactor run failed; retrying at the next interval")
                    }
                }
            }
        })
    }

    /// One full run (see the module docs).
    pub async fn run_once(&self) -> Result<RunReport, CompactorError> {
        let _one = self.running.lock().await;
        let counters = &self.store.compactor_counters;
        let res = self.run_inner().await;
        counters.runs.fetch_add(1, Ordering::Relaxed);
        match &res {
            Ok(_) => {
                counters
                    .last_success_unix_seconds
                    .store(Timestamp::now().secs(), Ordering::Relaxed);
            }
            Err(_) => {
                counters.failed_runs.fetch_add(1, Ordering::Relaxed);
            }
        }
        res
    }

    /// The delete shards ready for processing, with their parsed queries.
    fn ready_deletes(&self, now: Timestamp) -> (Vec<ReadyDelete>, Vec<DeleteQuery>) {
        let mut ready = Vec::new();
        let mut queries = Vec::new();
        if !self.settings.retention_enabled {
            return (ready, queries);
        }
        let manifest = self.store.manifest.snapshot();
        for r in &manifest.delete_requests {
            if !r.is_ready(now, self.settings.delete_cancel_period) {
                continue;
            }
            let (Ok(tenant), query) = (TenantId::new(&r.tenant), (self.parser)(&r.query)) else {
                continue;
            };
            let query = match query {
                Ok(q) => q,
                Err(e) => {
                    tracing::error!(request_id = %r.request_id, error = %e, "delete request query no longer parses; skipping it");
                    continue;
                }
            };
            for (i, shard) in r.shards.iter().enumerate() {
                if shard.processed {
                    continue;
                }
                ready.push(ReadyDelete {
                    request_id: r.request_id.clone(),
                    shard: i,
                    tenant: tenant.clone(),
                    matchers: query.matchers.clone(),
                    has_filter: query.filter.is_some(),
                    start: Timestamp::from_millis(shard.start_ms),
                    end: Timestamp::from_millis(shard.end_ms),
                });
                queries.push(query.clone());
            }
        }
        (ready, queries)
    }

    async fn tenant_states(&self) -> Result<Vec<TenantState>, CompactorError> {
        let store = &self.store;
        let mut out = Vec::new();
        for tenant in store.index.tenants() {
            let policy = match RetentionPolicy::for_tenant(&*self.limits, tenant.as_str()) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(tenant = %tenant, error = %e, "bad retention_stream selector; retention skipped for the tenant");
                    RetentionPolicy::default()
                }
            };
            let days = store.index.days(&tenant);
            store.snapshots.ensure_local(&tenant, &days).await?;
            let (index, t) = (store.index.clone(), tenant.clone());
            let (streams, partitions) = tokio::task::spawn_blocking(move || {
                let streams = index.streams(&t, &[], Timestamp::MIN, Timestamp::MAX)?;
                let mut partitions = Vec::with_capacity(days.len());
                for d in days {
                    partitions.push((d, index.segment_count(&t, d)?));
                }
                Ok::<_, super::index::IndexError>((streams, partitions))
            })
            .await
            .map_err(|e| CompactorError::Task(e.to_string()))??;
            out.push(TenantState {
                tenant,
                policy,
                streams,
                partitions,
            });
        }
        Ok(out)
    }

    async fn run_inner(&self) -> Result<RunReport, CompactorError> {
        let now = self.clock.now();
        let store = &self.store;
        if !store.is_remote_ready() {
            return Err(StoreError::RemoteNotReady.into());
        }
        let (ready, queries) = self.ready_deletes(now);
        let tenants = self.tenant_states().await?;
        let manifest = store.manifest.snapshot();
        let waiting: Vec<Waiting> = manifest
            .pending_deletions
            .iter()
            .filter_map(|p| {
                Some(Waiting {
                    tenant: TenantId::new(&p.tenant).ok()?,
                    chunk: ChunkRef::from(&p.chunk),
                    due: Timestamp::from_nanos(p.due_ns),
                })
            })
            .collect();
        let head = store.head.config();
        let the_plan = plan::plan(&PlanInput {
            now,
            tenants: &tenants,
            deletes: &ready,
            waiting: &waiting,
            settings: PlanSettings {
                retention_enabled: self.settings.retention_enabled,
                delete_delay: self.settings.delete_delay,
                chunk_target_size: head.chunk_target_size,
                max_merges: self.settings.max_merges,
            },
        });
        // The backlog as found, before the plan is carried out: published
        // now so that a run failing below (and a dry run) still shows it.
        store
            .compactor_counters
            .retention_lag_seconds
            .store(the_plan.retention_lag.as_secs() as i64, Ordering::Relaxed);
        let mut report = RunReport {
            dry_run: self.settings.dry_run,
            retention_lag: the_plan.retention_lag,
            ..Default::default()
        };
        if self.settings.dry_run {
            for a in &the_plan.actions {
                tracing::info!(action = %describe(a, &ready), "compactor dry run: would do");
                count(&mut report, a);
            }
            return Ok(report);
        }

        // 1. Replacement chunks.
        let mut removals: Vec<Removal> = Vec::new();
        let mut intents: Vec<IndexIntent> = Vec::new();
        let mut swaps: Vec<(TenantId, Labels, Vec<ChunkRef>, Vec<ChunkRef>)> = Vec::new();
        let mut drops: Vec<(TenantId, Day)> = Vec::new();
        let mut index_merges: Vec<(TenantId, Day)> = Vec::new();
        let mut object_deletes: Vec<(TenantId, ChunkRef)> = Vec::new();
        let mut processed: Vec<usize> = Vec::new();
        for a in &the_plan.actions {
            match a {
                Action::Expire {
                    tenant,
                    labels,
                    chunk,
                    due,
                } => {
                    report.expired += 1;
                    removals.push(Removal {
                        tenant: tenant.clone(),
                        chunk: *chunk,
                        due: *due,
                        reason: "retention",
                    });
                    swaps.push((tenant.clone(), labels.clone(), vec![], vec![*chunk]));
                }
                Action::Delete {
                    tenant,
                    labels,
                    chunk,
                    due,
                    ..
                } => {
                    report.deleted += 1;
                    report.lines_deleted += chunk.entries;
                    removals.push(Removal {
                        tenant: tenant.clone(),
                        chunk: *chunk,
                        due: *due,
                        reason: "delete",
                    });
                    swaps.push((tenant.clone(), labels.clone(), vec![], vec![*chunk]));
                }
                Action::Rewrite {
                    tenant,
                    labels,
                    chunk,
                    due,
                    by,
                } => {
                    let requests: Vec<(&ReadyDelete, &DeleteQuery)> =
                        by.iter().map(|&i| (&ready[i], &queries[i])).collect();
                    let (built, dropped) = self.rewrite(tenant, labels, chunk, &requests).await?;
                    if dropped == 0 {
                        continue;
                    }
                    report.rewritten += 1;
                    report.lines_deleted += dropped;
                    removals.push(Removal {
                        tenant: tenant.clone(),
                        chunk: *chunk,
                        due: *due,
                        reason: "rewrite",
                    });
                    let added: Vec<ChunkRef> = built.iter().map(|b| b.chunk_ref).collect();
                    swaps.push((tenant.clone(), labels.clone(), added, vec![*chunk]));
                }
                Action::Merge {
                    tenant,
                    labels,
                    chunks,
                    due,
                } => {
                    let Some(built) = self.merge(tenant, labels, chunks).await? else {
                        continue;
                    };
                    report.merged_away += chunks.len();
                    report.merged_written += 1;
                    for c in chunks {
                        removals.push(Removal {
                            tenant: tenant.clone(),
                            chunk: *c,
                            due: *due,
                            reason: "merge",
                        });
                    }
                    swaps.push((
                        tenant.clone(),
                        labels.clone(),
                        vec![built.chunk_ref],
                        chunks.clone(),
                    ));
                }
                Action::DropPartition { tenant, day } => drops.push((tenant.clone(), *day)),
                Action::MergeIndex { tenant, day } => index_merges.push((tenant.clone(), *day)),
                Action::DeleteObject { tenant, chunk } => {
                    object_deletes.push((tenant.clone(), *chunk))
                }
                Action::MarkProcessed { by } => processed.push(*by),
            }
        }
        for (tenant, labels, add, remove) in &swaps {
            intents.push(IndexIntent {
                tenant: tenant.to_string(),
                labels: labels.canonical(),
                add: records(add),
                remove: records(remove),
            });
        }

        // 2. The manifest, before the index changes it describes. The delete
        // shards this run applies are re-checked in the same update: a
        // forced cancel since the plan abandons the run (its new chunks are
        // not in the index; they are removed below).
        let mut used_shards: Vec<usize> = processed.clone();
        for a in &the_plan.actions {
            match a {
                Action::Delete { by, .. } => used_shards.push(*by),
                Action::Rewrite { by, .. } => used_shards.extend(by.iter().copied()),
                _ => {}
            }
        }
        let done_shards: HashSet<(String, usize)> = processed
            .iter()
            .map(|&i| (ready[i].request_id.clone(), ready[i].shard))
            .collect();
        let mut finished_requests = 0usize;
        let written = store
            .manifest
            .update(|m| {
                for &i in &used_shards {
                    let rd = &ready[i];
                    let still_there = m.delete_requests.iter().any(|r| {
                        r.request_id == rd.request_id
                            && r.tenant == rd.tenant.as_str()
                            && r.shards.get(rd.shard).is_some_and(|s| {
                                !s.processed
                                    && s.start_ms == rd.start.millis()
                                    && s.end_ms == rd.end.millis()
                            })
                    });
                    if !still_there {
                        return Err(CompactorError::DeleteCancelled(rd.request_id.clone()));
                    }
                }
                let known: HashSet<(String, ChunkRecord)> = m
                    .pending_deletions
                    .iter()
                    .map(|p| (p.tenant.clone(), p.chunk))
                    .collect();
                for r in &removals {
                    let rec = ChunkRecord::from(&r.chunk);
                    if !known.contains(&(r.tenant.to_string(), rec)) {
                        m.pending_deletions.push(PendingDeletion {
                            tenant: r.tenant.to_string(),
                            chunk: rec,
                            due_ns: r.due.nanos(),
                            reason: r.reason.to_string(),
                        });
                    }
                    let id = r.chunk.id();
                    if store.marker_in_wal(&r.tenant, &id) {
                        m.tombstones.push(Tombstone {
                            tenant: r.tenant.to_string(),
                            chunk_id: id,
                        });
                    }
                }
                // Tombstones of chunks whose markers left the WAL are done.
                m.tombstones.retain(|t| {
                    TenantId::new(&t.tenant)
                        .map(|tenant| store.marker_in_wal(&tenant, &t.chunk_id))
                        .unwrap_or(false)
                });
                let mut seen = HashSet::new();
                m.tombstones.retain(|t| seen.insert(t.clone()));
                m.intents = intents.clone();
                for req in &mut m.delete_requests {
                    let was_done = req.shards.iter().all(|s| s.processed);
                    for (i, shard) in req.shards.iter_mut().enumerate() {
                        if done_shards.contains(&(req.request_id.clone(), i)) {
                            shard.processed = true;
                        }
                    }
                    if !was_done && req.shards.iter().all(|s| s.processed) {
                        finished_requests += 1;
                        tracing::info!(request_id = %req.request_id, tenant = %req.tenant, "delete request processed");
                    }
                }
                Ok::<_, CompactorError>(())
            })
            .await;
        if let Err(e) = written {
            if matches!(e, CompactorError::DeleteCancelled(_)) {
                for (tenant, _, add, _) in &swaps {
                    for c in add {
                        if let Err(err) = store.objects.delete(&chunk_path(tenant, c)).await {
                            tracing::warn!(error = %err, "removing an unused rewritten chunk failed");
                        }
                    }
                }
            }
            return Err(e);
        }
        report.requests_processed = finished_requests;

        // 3. The index swap, in one commit.
        if !swaps.is_empty() {
            let mut days: HashMap<TenantId, BTreeSet<Day>> = HashMap::new();
            for (t, _, add, remove) in &swaps {
                for c in add.iter().chain(remove) {
                    days.entry(t.clone()).or_default().extend(chunk_days(c));
                }
            }
            for (t, d) in &days {
                let d: Vec<Day> = d.iter().copied().collect();
                store.snapshots.ensure_local(t, &d).await?;
            }
            let s2 = store.clone();
            let committed = tokio::task::spawn_blocking(move || {
                let _exclusive = s2.commit_gate.write();
                for (tenant, labels, add, remove) in &swaps {
                    for c in add {
                        s2.index.add(tenant, labels, c)?;
                    }
                    for c in remove {
                        s2.index.remove(tenant, c)?;
                    }
                }
                s2.index.commit()
            })
            .await
            .map_err(|e| CompactorError::Task(e.to_string()))??;
            store.snapshots.sync_all(&committed).await?;
        }

        // 4. Whole partitions and index segments.
        for (tenant, day) in &drops {
            store.snapshots.drop_partition(tenant, *day).await?;
            report.partitions_dropped += 1;
            tracing::info!(tenant = %tenant, day = %day.name(), "index partition past retention dropped");
        }
        for (tenant, day) in &index_merges {
            let (index, t, d) = (store.index.clone(), tenant.clone(), *day);
            let merged = tokio::task::spawn_blocking(move || index.merge_partition(&t, d))
                .await
                .map_err(|e| CompactorError::Task(e.to_string()))??;
            if merged {
                store.snapshots.sync(tenant, *day).await?;
                report.index_merges += 1;
            }
        }

        // 5. Objects whose delay has passed.
        let mut deleted: HashSet<(String, ChunkRecord)> = HashSet::new();
        let mut bytes = 0u64;
        for (tenant, chunk) in &object_deletes {
            let path = chunk_path(tenant, chunk);
            store
                .objects
                .delete(&path)
                .await
                .map_err(StoreError::from)?;
            store.cache.remove(path.as_ref());
            deleted.insert((tenant.to_string(), ChunkRecord::from(chunk)));
            bytes += chunk.size;
        }
        report.objects_deleted = deleted.len();
        store
            .manifest
            .update(|m| {
                m.pending_deletions
                    .retain(|p| !deleted.contains(&(p.tenant.clone(), p.chunk)));
                m.intents.clear();
                Ok::<_, ManifestError>(())
            })
            .await?;

        // Writers of days nobody writes to any more hold threads and memory.
        let index = store.index.clone();
        tokio::task::spawn_blocking(move || index.close_idle_writers(Duration::from_secs(300)))
            .await
            .map_err(|e| CompactorError::Task(e.to_string()))?;

        let c = &store.compactor_counters;
        c.chunks_deleted
            .fetch_add(deleted.len() as u64, Ordering::Relaxed);
        c.bytes_deleted.fetch_add(bytes, Ordering::Relaxed);
        c.chunks_expired
            .fetch_add(report.expired as u64, Ordering::Relaxed);
        c.chunks_rewritten
            .fetch_add(report.rewritten as u64, Ordering::Relaxed);
        c.lines_deleted
            .fetch_add(report.lines_deleted, Ordering::Relaxed);
        c.chunks_merged
            .fetch_add(report.merged_away as u64, Ordering::Relaxed);
        c.merged_chunks_written
            .fetch_add(report.merged_written as u64, Ordering::Relaxed);
        c.partitions_dropped
            .fetch_add(report.partitions_dropped as u64, Ordering::Relaxed);
        c.index_merges
            .fetch_add(report.index_merges as u64, Ordering::Relaxed);
        c.delete_requests_processed
            .fetch_add(report.requests_processed as u64, Ordering::Relaxed);
        Ok(report)
    }

    fn builder(&self, tenant: &TenantId, labels: &Labels) -> ChunkBuilder {
        let head = self.store.head.config();
        ChunkBuilder::new(tenant.clone(), labels.clone(), head.codec, head.block_size)
    }

    async fn store_chunk(
        &self,
        tenant: &TenantId,
        built: &BuiltChunk,
    ) -> Result<(), CompactorError> {
        let path = chunk_path(tenant, &built.chunk_ref);
        self.store
            .objects
            .put(&path, built.data.clone())
            .await
            .map_err(StoreError::from)?;
        Ok(())
    }

    /// A chunk without the entries the requests select: the new chunk
    /// (`None` when nothing is left) and how many entries were dropped.
    async fn rewrite(
        &self,
        tenant: &TenantId,
        labels: &Labels,
        chunk: &ChunkRef,
        requests: &[(&ReadyDelete, &DeleteQuery)],
    ) -> Result<(Option<BuiltChunk>, u64), CompactorError> {
        let source = self.store.load_chunk(tenant, chunk).await?;
        type Rule = (Timestamp, Timestamp, Option<Arc<dyn deletes::LineFilter>>);
        let rules: Vec<Rule> = requests
            .iter()
            .map(|(r, q)| (r.start, r.end, q.filter.clone()))
            .collect();
        let builder = self.builder(tenant, labels);
        let l = labels.clone();
        let (built, dropped) = tokio::task::spawn_blocking(move || {
            let blocks = rewrite::decode_all([&*source])?;
            rewrite::rebuild(builder, &blocks, |b, i| {
                let ts = b.ts(i);
                !rules.iter().any(|(start, end, filter)| {
                    ts >= *start
                        && ts <= *end
                        && filter.as_ref().is_none_or(|f| f.selects(&l, b, i))
                })
            })
        })
        .await
        .map_err(|e| CompactorError::Task(e.to_string()))?
        .map_err(StoreError::from)?;
        if dropped > 0
            && let Some(b) = &built
        {
            self.store_chunk(tenant, b).await?;
        }
        Ok((built, dropped))
    }

    /// Several chunks of a stream as one.
    async fn merge(
        &self,
        tenant: &TenantId,
        labels: &Labels,
        chunks: &[ChunkRef],
    ) -> Result<Option<BuiltChunk>, CompactorError> {
        let mut sources = Vec::with_capacity(chunks.len());
        for c in chunks {
            sources.push(self.store.load_chunk(tenant, c).await?);
        }
        let builder = self.builder(tenant, labels);
        let (built, _) = tokio::task::spawn_blocking(move || {
            let blocks = rewrite::decode_all(sources.iter().map(|c| &**c))?;
            rewrite::rebuild(builder, &blocks, |_, _| true)
        })
        .await
        .map_err(|e| CompactorError::Task(e.to_string()))?
        .map_err(StoreError::from)?;
        if let Some(b) = &built {
            self.store_chunk(tenant, b).await?;
        }
        Ok(built)
    }
}

fn count(report: &mut RunReport, a: &Action) {
    match a {
        Action::Expire { .. } => report.expired += 1,
        Action::Delete { chunk, .. } => {
            report.deleted += 1;
            report.lines_deleted += chunk.entries;
        }
        Action::Rewrite { .. } => report.rewritten += 1,
        Action::Merge { chunks, .. } => {
            report.merged_away += chunks.len();
            report.merged_written += 1;
        }
        Action::DropPartition { .. } => report.partitions_dropped += 1,
        Action::MergeIndex { .. } => report.index_merges += 1,
        Action::DeleteObject { .. } => report.objects_deleted += 1,
        Action::MarkProcessed { .. } => {}
    }
}

/// One line for a dry-run log.
fn describe(a: &Action, ready: &[ReadyDelete]) -> String {
    match a {
        Action::Expire {
            tenant,
            labels,
            chunk,
            ..
        } => {
            format!(
                "expire chunk {} of {tenant} {labels} (past retention)",
                chunk.id()
            )
        }
        Action::Delete {
            tenant,
            labels,
            chunk,
            by,
            ..
        } => format!(
            "delete chunk {} of {tenant} {labels} (delete request {})",
            chunk.id(),
            ready[*by].request_id
        ),
        Action::Rewrite {
            tenant,
            labels,
            chunk,
            ..
        } => format!(
            "rewrite chunk {} of {tenant} {labels} without deleted lines",
            chunk.id()
        ),
        Action::Merge {
            tenant,
            labels,
            chunks,
            ..
        } => {
            format!("merge {} chunks of {tenant} {labels}", chunks.len())
        }
        Action::DropPartition { tenant, day } => {
            format!("drop index partition {tenant}/{}", day.name())
        }
        Action::MergeIndex { tenant, day } => {
            format!("merge index segments of {tenant}/{}", day.name())
        }
        Action::DeleteObject { tenant, chunk } => {
            format!("delete object {}", chunk_path(tenant, chunk))
        }
        Action::MarkProcessed { by } => format!(
            "mark delete request {} shard {} processed",
            ready[*by].request_id, ready[*by].shard
        ),
    }
}
