//! The compactor's manifest: everything the compactor must remember across
//! restarts, in one object of the object store (`lokal-system/compactor-state`).
//!
//! Owns the persisted state and its byte format: delete requests, object
//! deletions waiting for their delay, tombstones (chunks the compactor took
//! out of the index, which WAL replay must not put back), and intents (index
//! swaps to finish after a crash). Does not own what to do with them (the
//! worker in the parent module) nor the index.
//!
//! Invariants:
//! - The manifest is written before the index change it describes, so a
//!   crash between the two is repaired at start-up by re-applying the
//!   intents (idempotent: adding a chunk reference replaces it, removing an
//!   absent one is a no-op) and never leaves an object scheduled for
//!   deletion that the index still references.
//! - Writers are serialized and each writes the whole state; readers take a
//!   consistent snapshot without waiting for a write's I/O.
//!
//! # Object format, version 1
//!
//! ```text
//! ┌───────────────────────────────────────────────────────────────┐
//! │ magic "LKCM" (4) │ version u8 = 1 │ reserved [0; 3]            │
//! │ body_len u64 LE │ crc32c u32 LE of the body                     │
//! │ body: JSON of `Manifest` (body_len bytes)                     │
//! └───────────────────────────────────────────────────────────────┘
//! ```
//!
//! `tests/data/compactor_manifest_v1.bin` is a v1 manifest read by a test.

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path as ObjectPath;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use super::super::index::ChunkRef;
use super::super::object::{ObjectError, ObjectStorage};
use super::deletes::DeleteRequest;
use crate::model::{StreamId, Timestamp};

pub const MANIFEST_MAGIC: [u8; 4] = *b"LKCM";
pub const MANIFEST_VERSION: u8 = 1;
const HEADER_LEN: usize = 4 + 1 + 3 + 8 + 4;

/// The manifest's object key.
pub fn manifest_path() -> ObjectPath {
    ObjectPath::from("lokal-system/compactor-state")
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("compactor manifest: bad magic {found:02x?}")]
    BadMagic { found: [u8; 4] },
    #[error(
        "compactor manifest: unsupported version {found} (this build reads version {supported})"
    )]
    UnsupportedVersion { found: u8, supported: u8 },
    #[error("compactor manifest: truncated ({len} bytes, header says {expected})")]
    Truncated { len: usize, expected: u64 },
    #[error("compactor manifest: checksum mismatch: got {got:#010x}, expected {expected:#010x}")]
    ChecksumMismatch { got: u32, expected: u32 },
    #[error("compactor manifest: {0}")]
    Json(String),
    #[error(
        "compactor state not loaded yet: the object store has been unreachable since start-up; retry later"
    )]
    NotLoaded,
    #[error(transparent)]
    Object(#[from] ObjectError),
}

/// A chunk reference as the manifest stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChunkRecord {
    pub stream: u64,
    pub from: i64,
    pub through: i64,
    pub checksum: u32,
    pub entries: u64,
    pub raw_bytes: u64,
    pub size: u64,
}

impl From<&ChunkRef> for ChunkRecord {
    fn from(c: &ChunkRef) -> Self {
        ChunkRecord {
            stream: c.stream.0,
            from: c.from.nanos(),
            through: c.through.nanos(),
            checksum: c.checksum,
            entries: c.entries,
            raw_bytes: c.raw_bytes,
            size: c.size,
        }
    }
}

impl From<&ChunkRecord> for ChunkRef {
    fn from(c: &ChunkRecord) -> Self {
        ChunkRef {
            stream: StreamId(c.stream),
            from: Timestamp::from_nanos(c.from),
            through: Timestamp::from_nanos(c.through),
            checksum: c.checksum,
            entries: c.entries,
            raw_bytes: c.raw_bytes,
            size: c.size,
        }
    }
}

/// A chunk object to delete once `due_ns` has passed (the delete delay lets
/// queries that looked the chunk up before it left the index finish).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingDeletion {
    pub tenant: String,
    pub chunk: ChunkRecord,
    pub due_ns: i64,
    /// Why: "retention", "delete", "rewrite", "merge".
    pub reason: String,
}

/// A chunk the compactor removed from the index.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tombstone {
    pub tenant: String,
    /// [`ChunkRef::id`].
    pub chunk_id: String,
}

/// An index swap: add `add`, remove `remove`, in one commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexIntent {
    pub tenant: String,
    /// The stream's canonical labels.
    pub labels: String,
    pub add: Vec<ChunkRecord>,
    pub remove: Vec<ChunkRecord>,
}

/// Everything the compactor persists.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Manifest {
    pub delete_requests: Vec<DeleteRequest>,
    pub pending_deletions: Vec<PendingDeletion>,
    pub tombstones: Vec<Tombstone>,
    pub intents: Vec<IndexIntent>,
}

impl Manifest {
    pub fn encode(&self) -> Result<Vec<u8>, ManifestError> {
        let body = serde_json::to_vec(self).map_err(|e| ManifestError::Json(e.to_string()))?;
        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        out.extend_from_slice(&MANIFEST_MAGIC);
        out.push(MANIFEST_VERSION);
        out.extend_from_slice(&[0; 3]);
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }

    pub fn decode(data: &[u8]) -> Result<Manifest, ManifestError> {
        if data.len() < HEADER_LEN {
            return Err(ManifestError::Truncated {
                len: data.len(),
                expected: HEADER_LEN as u64,
            });
        }
        let magic: [u8; 4] = [data[0], data[1], data[2], data[3]];
        if magic != MANIFEST_MAGIC {
            return Err(ManifestError::BadMagic { found: magic });
        }
        if data[4] != MANIFEST_VERSION {
            return Err(ManifestError::UnsupportedVersion {
                found: data[4],
                supported: MANIFEST_VERSION,
            });
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&data[8..16]);
        let len = u64::from_le_bytes(len);
        let mut crc = [0u8; 4];
        crc.copy_from_slice(&data[16..20]);
        let expected = u32::from_le_bytes(crc);
        let body = &data[HEADER_LEN..];
        if body.len() as u64 != len {
            return Err(ManifestError::Truncated {
                len: data.len(),
                expected: len + HEADER_LEN as u64,
            });
        }
        let got = crc32c::crc32c(body);
        if got != expected {
            return Err(ManifestError::ChecksumMismatch { got, expected });
        }
        serde_json::from_slice(body).map_err(|e| ManifestError::Json(e.to_string()))
    }

    /// Whether the compactor removed this chunk from the index.
    pub fn is_tombstoned(&self, tenant: &str, chunk_id: &str) -> bool {
        self.tombstones
            .iter()
            .any(|t| t.tenant == tenant && t.chunk_id == chunk_id)
    }
}

/// The manifest, loaded, with serialized read-modify-write updates.
///
/// It may start unloaded ([`ManifestStore::unloaded`]) when the object
/// store is unreachable at start-up: it then reads as empty and refuses
/// updates ([`ManifestError::NotLoaded`]) until [`ManifestStore::fetch`]
/// succeeds, so nothing written meanwhile can overwrite the bucket's copy.
pub struct ManifestStore {
    objects: ObjectStorage,
    current: RwLock<Arc<Manifest>>,
    loaded: std::sync::atomic::AtomicBool,
    /// Serializes writers across the object store put (an async mutex:
    /// waiting writers yield, readers never wait for it).
    writer: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for ManifestStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManifestStore").finish_non_exhaustive()
    }
}

impl ManifestStore {
    /// Loads the manifest (an absent one is empty).
    pub async fn load(objects: ObjectStorage) -> Result<Self, ManifestError> {
        let store = Self::unloaded(objects);
        store.fetch().await?;
        Ok(store)
    }

    /// A manifest not read yet: empty, refusing updates until
    /// [`ManifestStore::fetch`] succeeds.
    pub fn unloaded(objects: ObjectStorage) -> Self {
        ManifestStore {
            objects,
            current: RwLock::new(Arc::new(Manifest::default())),
            loaded: std::sync::atomic::AtomicBool::new(false),
            writer: tokio::sync::Mutex::new(()),
        }
    }

    /// Reads the manifest from the object store (an absent one is empty)
    /// unless it is loaded already.
    pub async fn fetch(&self) -> Result<(), ManifestError> {
        let _writing = self.writer.lock().await;
        if self.is_loaded() {
            return Ok(());
        }
        let manifest = match self.objects.get(&manifest_path()).await {
            Ok(bytes) => Manifest::decode(&bytes)?,
            Err(ObjectError::NotFound { .. }) => Manifest::default(),
            Err(e) => return Err(e.into()),
        };
        *self.current.write() = Arc::new(manifest);
        self.loaded
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Whether the manifest was read from the object store.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The current state.
    pub fn snapshot(&self) -> Arc<Manifest> {
        self.current.read().clone()
    }

    /// Applies `change` to a copy, persists it, then makes it current. When
    /// `change` returns an error nothing is written.
    pub async fn update<T, E>(
        &self,
        change: impl FnOnce(&mut Manifest) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<ManifestError>,
    {
        let _writing = self.writer.lock().await;
        if !self.is_loaded() {
            return Err(ManifestError::NotLoaded.into());
        }
        let mut next = (*self.snapshot()).clone();
        let out = change(&mut next)?;
        if next != *self.snapshot() {
            let bytes = next.encode()?;
            self.objects
                .put(&manifest_path(), Bytes::from(bytes))
                .await
                .map_err(ManifestError::from)?;
            *self.current.write() = Arc::new(next);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::compactor::deletes::DeleteShard;

    fn sample() -> Manifest {
        Manifest {
            delete_requests: vec![DeleteRequest {
                request_id: "0a1b2c3d".into(),
                tenant: "fake".into(),
                query: r#"{app="api"} |= "secret""#.into(),
                created_at_ms: 1_700_000_000_123,
                shards: vec![DeleteShard {
                    start_ms: 1_699_990_000_000,
                    end_ms: 1_700_000_000_000,
                    processed: false,
                }],
            }],
            pending_deletions: vec![PendingDeletion {
                tenant: "fake".into(),
                chunk: ChunkRecord {
                    stream: 7,
                    from: 1,
                    through: 2,
                    checksum: 3,
                    entries: 4,
                    raw_bytes: 5,
                    size: 6,
                },
                due_ns: 1_700_000_100_000_000_000,
                reason: "retention".into(),
            }],
            tombstones: vec![Tombstone {
                tenant: "fake".into(),
                chunk_id: "0000000000000007/0000000000000001-0000000000000002-00000003".into(),
            }],
            intents: vec![],
        }
    }

    #[test]
    fn round_trips_and_rejects_damage() {
        let m = sample();
        let bytes = m.encode().unwrap();
        assert_eq!(Manifest::decode(&bytes).unwrap(), m);
        let mut bad = bytes.clone();
        let last = bad.len() - 2;
        bad[last] ^= 1;
        assert!(matches!(
            Manifest::decode(&bad),
            Err(ManifestError::ChecksumMismatch { .. })
        ));
        let mut newer = bytes.clone();
        newer[4] = 2;
        assert!(matches!(
            Manifest::decode(&newer),
            Err(ManifestError::UnsupportedVersion { found: 2, .. })
        ));
        assert!(matches!(
            Manifest::decode(&bytes[..bytes.len() - 1]),
            Err(ManifestError::Truncated { .. })
        ));
        assert!(matches!(
            Manifest::decode(b"LKCX\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"),
            Err(ManifestError::BadMagic { .. })
        ));
    }

    #[test]
    fn v1_fixture_is_read() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/compactor_manifest_v1.bin"
        );
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(Manifest::decode(&bytes).unwrap(), sample());
    }

    #[tokio::test]
    async fn updates_persist_and_failed_changes_write_nothing() {
        let objects = ObjectStorage::in_memory();
        let store = ManifestStore::load(objects.clone()).await.unwrap();
        assert_eq!(*store.snapshot(), Manifest::default());
        store
            .update(|m| {
                *m = sample();
                Ok::<_, ManifestError>(())
            })
            .await
            .unwrap();
        let err: Result<(), ManifestError> = store
            .update(|m| {
                m.tombstones.clear();
                Err(ManifestError::Json("refused".into()))
            })
            .await;
        assert!(err.is_err());
        let reloaded = ManifestStore::load(objects).await.unwrap();
        assert_eq!(*reloaded.snapshot(), sample());
        assert!(reloaded.snapshot().is_tombstoned(
            "fake",
            "0000000000000007/0000000000000001-0000000000000002-00000003"
        ));
    }
}
