//! Index snapshots: the label index's partitions copied to the object store
//! after every commit, and downloaded by a node whose disk lacks them.
//!
//! Owns the remote copy of each (tenant, day) partition under
//! `<tenant>/index/<YYYY-MM-DD>/` and the protocol that keeps it consistent.
//! Does not own the index itself ([`LabelIndex`]), nor when commits happen
//! (the store facade and the compactor).
//!
//! The object store is the source of truth; the local index directory is a
//! working copy. A remote partition is always a consistent tantivy index:
//!
//! - Upload ([`IndexSnapshots::sync`]): read `meta.json` and the files it
//!   references in one consistent view ([`LabelIndex::partition_files`]),
//!   upload the files not uploaded before (segment files are immutable and
//!   uniquely named, so a name uploaded once never needs uploading again),
//!   then `meta.json`, then delete the remote files the new `meta.json` no
//!   longer references. A crash at any point leaves the previous
//!   `meta.json` with all its files, or the new one with all its files.
//! - Download ([`IndexSnapshots::ensure_local`]): fetch `meta.json` first,
//!   then every other file listed under the prefix (files newer than that
//!   `meta.json` are harmless extras), and install them into place with one
//!   rename; the partition stops being remote-only.
//! - Start-up ([`IndexSnapshots::discover`]): list the remote tenants and
//!   days; days not on disk become remote-only; local partitions whose
//!   `meta.json` differs from the last one uploaded (marker file
//!   [`UPLOADED_MARKER`] in the partition directory) are uploaded again —
//!   a crash between a local commit and its upload loses nothing.
//!
//! One writer per bucket: two nodes writing the same bucket would overwrite
//! each other's snapshots. Per partition, uploads are serialized by an async
//! mutex (a sync waits for the one before it instead of racing it); no
//! blocking lock is ever held across I/O.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use parking_lot::Mutex;

use super::index::{Day, IndexError, LabelIndex, META_FILE};
use super::object::{ObjectError, ObjectStorage};
use crate::model::TenantId;

/// File in a local partition directory holding the last `meta.json`
/// uploaded from it (tantivy ignores files it does not manage).
pub const UPLOADED_MARKER: &str = ".lokal-uploaded-meta";

/// Key component under which a tenant's index snapshots live.
pub const INDEX_DIR: &str = "index";

/// Concurrent object transfers per partition.
const TRANSFERS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Object(#[from] ObjectError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("index snapshot task failed: {0}")]
    Task(String),
}

/// Counters for /metrics.
#[derive(Debug, Default)]
pub struct SnapshotCounters {
    pub uploads: std::sync::atomic::AtomicU64,
    pub files_uploaded: std::sync::atomic::AtomicU64,
    pub bytes_uploaded: std::sync::atomic::AtomicU64,
    pub downloads: std::sync::atomic::AtomicU64,
    pub remote_files_deleted: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct RemoteState {
    /// File names known to be in the remote partition (`None` until listed).
    uploaded: Option<HashSet<String>>,
    /// The `meta.json` last uploaded or downloaded.
    meta: Option<Vec<u8>>,
}

type PartitionKey = (TenantId, Day);

/// Uploads and downloads index partitions.
pub struct IndexSnapshots {
    objects: ObjectStorage,
    index: Arc<LabelIndex>,
    remote: Mutex<HashMap<PartitionKey, Arc<tokio::sync::Mutex<RemoteState>>>>,
    pub counters: SnapshotCounters,
}

fn child(prefix: &ObjectPath, name: &str) -> ObjectPath {
    prefix.clone().join(name)
}

/// The object key prefix of a partition's snapshot.
pub fn partition_prefix(tenant: &TenantId, day: Day) -> ObjectPath {
    ObjectPath::from(format!("{tenant}/{INDEX_DIR}/{}", day.name()))
}

impl IndexSnapshots {
    pub fn new(objects: ObjectStorage, index: Arc<LabelIndex>) -> Self {
        IndexSnapshots {
            objects,
            index,
            remote: Mutex::new(HashMap::new()),
            counters: SnapshotCounters::default(),
        }
    }

    fn state(&self, tenant: &TenantId, day: Day) -> Arc<tokio::sync::Mutex<RemoteState>> {
        self.remote
            .lock()
            .entry((tenant.clone(), day))
            .or_default()
            .clone()
    }

    fn name(tenant: &TenantId, day: Day) -> String {
        format!("{tenant}/{}", day.name())
    }

    /// Lists the remote partitions, marks those missing locally as
    /// remote-only, and uploads local partitions changed since their last
    /// upload. Returns how many partitions were uploaded.
    pub async fn discover(&self) -> Result<usize, SnapshotError> {
        for tenant in self.objects.list_dirs(None).await? {
            let Ok(tenant) = TenantId::new(&tenant) else {
                continue;
            };
            let prefix = ObjectPath::from(format!("{tenant}/{INDEX_DIR}"));
            let days: Vec<Day> = self
                .objects
                .list_dirs(Some(&prefix))
                .await?
                .iter()
                .filter_map(|d| Day::parse(d))
                .collect();
            self.index.mark_remote(&tenant, days);
        }
        let index = self.index.clone();
        let stale = tokio::task::spawn_blocking(move || {
            index
                .local_partitions()
                .into_iter()
                .filter(|(t, d)| {
                    let dir = index.partition_path(t, *d);
                    let meta = std::fs::read(dir.join(META_FILE)).ok();
                    let marker = std::fs::read(dir.join(UPLOADED_MARKER)).ok();
                    meta.is_none() || meta != marker
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| SnapshotError::Task(e.to_string()))?;
        let n = stale.len();
        for (tenant, day) in stale {
            self.sync(&tenant, day).await?;
        }
        Ok(n)
    }

    /// Uploads every partition in `parts` that changed since its last upload.
    pub async fn sync_all(&self, parts: &[(TenantId, Day)]) -> Result<(), SnapshotError> {
        for (tenant, day) in parts {
            self.sync(tenant, *day).await?;
        }
        Ok(())
    }

    /// Uploads a partition's committed state (see the module docs).
    pub async fn sync(&self, tenant: &TenantId, day: Day) -> Result<(), SnapshotError> {
        let state = self.state(tenant, day);
        let mut st = state.lock().await;
        let prefix = partition_prefix(tenant, day);
        if st.uploaded.is_none() {
            st.uploaded = Some(self.list_remote(&prefix).await?);
        }
        let skip = st.uploaded.clone().unwrap_or_default();
        let (index, t) = (self.index.clone(), tenant.clone());
        let Some(files) =
            tokio::task::spawn_blocking(move || index.partition_files(&t, day, &skip))
                .await
                .map_err(|e| SnapshotError::Task(e.to_string()))??
        else {
            return Ok(());
        };
        if st.meta.as_deref() == Some(&files.meta[..]) {
            return Ok(());
        }
        let uploaded_bytes: u64 = files.files.iter().map(|(_, b)| b.len() as u64).sum();
        let n_files = files.files.len() as u64;
        futures::stream::iter(files.files.into_iter().map(|(name, bytes)| {
            let path = child(&prefix, name.as_str());
            async move { self.objects.put(&path, Bytes::from(bytes)).await }
        }))
        .buffer_unordered(TRANSFERS)
        .try_collect::<Vec<()>>()
        .await?;
        let uploaded = st.uploaded.get_or_insert_with(HashSet::new);
        uploaded.extend(files.live.iter().cloned());
        self.objects
            .put(&child(&prefix, META_FILE), Bytes::from(files.meta.clone()))
            .await?;
        // Garbage: remote files the new meta.json no longer references.
        let garbage: Vec<String> = uploaded
            .iter()
            .filter(|n| !files.live.contains(*n) && n.as_str() != META_FILE)
            .cloned()
            .collect();
        for name in &garbage {
            self.objects.delete(&child(&prefix, name.as_str())).await?;
            uploaded.remove(name);
        }
        let marker = self.index.partition_path(tenant, day).join(UPLOADED_MARKER);
        tokio::fs::write(&marker, &files.meta)
            .await
            .map_err(|source| IndexError::Io {
                path: marker.display().to_string(),
                source,
            })?;
        st.meta = Some(files.meta);
        use std::sync::atomic::Ordering::Relaxed;
        self.counters.uploads.fetch_add(1, Relaxed);
        self.counters.files_uploaded.fetch_add(n_files, Relaxed);
        self.counters
            .bytes_uploaded
            .fetch_add(uploaded_bytes, Relaxed);
        self.counters
            .remote_files_deleted
            .fetch_add(garbage.len() as u64, Relaxed);
        tracing::debug!(partition = %Self::name(tenant, day), files = n_files, "index snapshot uploaded");
        Ok(())
    }

    async fn list_remote(&self, prefix: &ObjectPath) -> Result<HashSet<String>, SnapshotError> {
        Ok(self
            .objects
            .list(prefix)
            .await?
            .into_iter()
            .filter_map(|m| m.location.filename().map(str::to_string))
            .collect())
    }

    /// Downloads the remote-only partitions among `days` of `tenant`.
    pub async fn ensure_local(&self, tenant: &TenantId, days: &[Day]) -> Result<(), SnapshotError> {
        for &day in days {
            if !self.index.is_remote_only(tenant, day) {
                continue;
            }
            let state = self.state(tenant, day);
            let mut st = state.lock().await;
            if !self.index.is_remote_only(tenant, day) {
                continue; // downloaded while we waited
            }
            let prefix = partition_prefix(tenant, day);
            let meta = match self.objects.get(&child(&prefix, META_FILE)).await {
                Ok(m) => m,
                Err(ObjectError::NotFound { .. }) => {
                    // Left over from a drop cut short: no partition at all.
                    tracing::warn!(partition = %Self::name(tenant, day), "remote index partition without meta.json; removing its leftovers");
                    let (index, t) = (self.index.clone(), tenant.clone());
                    tokio::task::spawn_blocking(move || index.drop_partition(&t, day))
                        .await
                        .map_err(|e| SnapshotError::Task(e.to_string()))??;
                    for name in self.list_remote(&prefix).await? {
                        self.objects.delete(&child(&prefix, name.as_str())).await?;
                    }
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let names: Vec<String> = self
                .list_remote(&prefix)
                .await?
                .into_iter()
                .filter(|n| n != META_FILE)
                .collect();
            let files: Vec<(String, Vec<u8>)> =
                futures::stream::iter(names.iter().cloned().map(|name| {
                    let path = child(&prefix, name.as_str());
                    async move {
                        match self.objects.get(&path).await {
                            Ok(b) => Ok(Some((name, b.to_vec()))),
                            // Garbage deleted by an upload since the listing.
                            Err(ObjectError::NotFound { .. }) => Ok(None),
                            Err(e) => Err(e),
                        }
                    }
                }))
                .buffer_unordered(TRANSFERS)
                .try_filter_map(|f| async move { Ok(f) })
                .try_collect()
                .await?;
            let (index, t, meta_bytes) = (self.index.clone(), tenant.clone(), meta.to_vec());
            let mb = meta_bytes.clone();
            tokio::task::spawn_blocking(move || -> Result<(), IndexError> {
                index.install_partition(&t, day, &files, &mb)?;
                let marker = index.partition_path(&t, day).join(UPLOADED_MARKER);
                std::fs::write(&marker, &mb).map_err(|source| IndexError::Io {
                    path: marker.display().to_string(),
                    source,
                })
            })
            .await
            .map_err(|e| SnapshotError::Task(e.to_string()))??;
            st.uploaded = Some(names.into_iter().collect());
            st.meta = Some(meta_bytes);
            self.counters
                .downloads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(partition = %Self::name(tenant, day), "index partition downloaded from the object store");
        }
        Ok(())
    }

    /// Deletes a partition locally and remotely (retention).
    pub async fn drop_partition(&self, tenant: &TenantId, day: Day) -> Result<(), SnapshotError> {
        let state = self.state(tenant, day);
        let mut st = state.lock().await;
        let (index, t) = (self.index.clone(), tenant.clone());
        tokio::task::spawn_blocking(move || index.drop_partition(&t, day))
            .await
            .map_err(|e| SnapshotError::Task(e.to_string()))??;
        let prefix = partition_prefix(tenant, day);
        // meta.json first: a half-deleted partition is then an orphan
        // directory rather than an index with missing files.
        self.objects.delete(&child(&prefix, META_FILE)).await?;
        for name in self.list_remote(&prefix).await? {
            self.objects.delete(&child(&prefix, name.as_str())).await?;
        }
        *st = RemoteState::default();
        drop(st);
        self.remote.lock().remove(&(tenant.clone(), day));
        Ok(())
    }
}
