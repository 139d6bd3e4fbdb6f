//! Where chunk objects live: one `object_store` code path for the local disk
//! (LocalFileSystem), S3 and R2 (AmazonS3 with an endpoint).
//!
//! Cross-cutting behaviour lives here, not in callers: durability for the
//! local backend (LocalFileSystem renames a staged file into place but does
//! not fsync; the WAL is truncated once a chunk is stored, so the file and its
//! directory are fsynced after every put), retries with backoff for S3
//! (object_store's retry config), and not-found-tolerant deletes.
//!
//! Object keys (the layout is shared by every backend):
//! - `<tenant>/chunks/<stream id hex>/<from hex>-<through hex>-<crc hex>`:
//!   chunks;
//! - `<tenant>/index/<YYYY-MM-DD>/<tantivy file>`: index snapshots
//!   (`store::snapshot`);
//! - `lokal-system/compactor-state`: the compactor's manifest
//!   (`store::compactor::manifest`). No tenant key has a second component
//!   other than `chunks` or `index`, so these never collide.
//!
//! [`ObjectStorage::with_prefix`] scopes a storage under a key prefix (tests
//! give each case its own prefix in one bucket).

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};

use crate::config::{ObjectBackend, S3Config};

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("object store ({backend}): {source}")]
    Store {
        backend: &'static str,
        source: object_store::Error,
    },
    #[error("object {path} not found")]
    NotFound { path: String },
    #[error("object store ({backend}): syncing {path}: {source}")]
    Sync {
        backend: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("configuring object store: {0}")]
    Config(String),
}

/// The object store lokal writes chunks (and index snapshots) to.
#[derive(Clone)]
pub struct ObjectStorage {
    store: Arc<dyn ObjectStore>,
    /// The root directory of the local backend, for fsyncs.
    local_root: Option<PathBuf>,
    kind: &'static str,
    /// Tests: every put fails while set (an unreachable bucket).
    #[cfg(test)]
    pub(crate) fail_puts: Arc<std::sync::atomic::AtomicBool>,
}

/// Applies lokal's S3 settings over a builder (`from_env` in production,
/// so `AWS_*` variables fill what the config leaves unset: the region,
/// credentials). Only settings the config gives are applied.
fn s3_builder(
    b: object_store::aws::AmazonS3Builder,
    c: &S3Config,
) -> object_store::aws::AmazonS3Builder {
    use object_store::{BackoffConfig, ClientOptions, RetryConfig};
    let mut b = b
        .with_bucket_name(&c.bucket)
        .with_retry(RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(15),
                base: 2.0,
            },
            max_retries: 10,
            retry_timeout: Duration::from_secs(180),
        })
        .with_client_options(
            ClientOptions::new()
                .with_timeout(Duration::from_secs(60))
                .with_allow_http(true),
        );
    if !c.region.is_empty() {
        b = b.with_region(&c.region);
    }
    if !c.endpoint.is_empty() {
        b = b
            .with_endpoint(&c.endpoint)
            .with_virtual_hosted_style_request(!c.force_path_style);
        if c.endpoint.starts_with("http://") {
            b = b.with_allow_http(true);
        }
    }
    if !c.access_key_id.is_empty() {
        b = b
            .with_access_key_id(&c.access_key_id)
            .with_secret_access_key(&c.secret_access_key);
    }
    if !c.session_token.is_empty() {
        b = b.with_token(&c.session_token);
    }
    b
}

impl std::fmt::Debug for ObjectStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ObjectStorage({}: {})", self.kind, self.store)
    }
}

impl ObjectStorage {
    pub fn open(backend: &ObjectBackend) -> Result<Self, ObjectError> {
        match backend {
            ObjectBackend::Filesystem { directory } => {
                std::fs::create_dir_all(directory).map_err(|e| {
                    ObjectError::Config(format!("creating {}: {e}", directory.display()))
                })?;
                let root = directory.canonicalize().map_err(|e| {
                    ObjectError::Config(format!("resolving {}: {e}", directory.display()))
                })?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(&root)
                    .map_err(|source| ObjectError::Store {
                        backend: "filesystem",
                        source,
                    })?
                    .with_automatic_cleanup(true);
                Ok(ObjectStorage {
                    store: Arc::new(fs),
                    local_root: Some(root),
                    kind: "filesystem",
                    #[cfg(test)]
                    fail_puts: Default::default(),
                })
            }
            ObjectBackend::S3(s3) => Self::s3(s3),
        }
    }

    fn s3(c: &S3Config) -> Result<Self, ObjectError> {
        let b = s3_builder(object_store::aws::AmazonS3Builder::from_env(), c);
        let s3 = b.build().map_err(|source| ObjectError::Store {
            backend: "s3",
            source,
        })?;
        Ok(ObjectStorage {
            store: Arc::new(s3),
            local_root: None,
            kind: "s3",
            #[cfg(test)]
            fail_puts: Default::default(),
        })
    }

    /// An in-memory store (tests, benchmarks).
    pub fn in_memory() -> Self {
        ObjectStorage {
            store: Arc::new(object_store::memory::InMemory::new()),
            local_root: None,
            kind: "memory",
            #[cfg(test)]
            fail_puts: Default::default(),
        }
    }

    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Whether objects live on the local disk (no cache needed in front).
    pub fn is_local(&self) -> bool {
        self.local_root.is_some()
    }

    /// The same store with every key under `prefix`.
    pub fn with_prefix(&self, prefix: &str) -> ObjectStorage {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::prefix::PrefixStore::new(
            self.store.clone(),
            Path::from(prefix),
        ));
        ObjectStorage {
            store,
            local_root: self.local_root.as_ref().map(|r| {
                Path::from(prefix)
                    .parts()
                    .fold(r.clone(), |p, part| p.join(part.as_ref()))
            }),
            kind: self.kind,
            #[cfg(test)]
            fail_puts: self.fail_puts.clone(),
        }
    }

    fn err(&self, source: object_store::Error) -> ObjectError {
        match source {
            object_store::Error::NotFound { path, .. } => ObjectError::NotFound { path },
            source => ObjectError::Store {
                backend: self.kind,
                source,
            },
        }
    }

    /// Stores `bytes` at `path`, durably: when this returns, the object
    /// survives a crash or power loss.
    pub async fn put(&self, path: &Path, bytes: Bytes) -> Result<(), ObjectError> {
        #[cfg(test)]
        if self.fail_puts.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(ObjectError::Store {
                backend: self.kind,
                source: object_store::Error::Generic {
                    store: "test",
                    source: "the bucket is unreachable (test)".into(),
                },
            });
        }
        self.store
            .put(path, PutPayload::from_bytes(bytes))
            .await
            .map_err(|e| self.err(e))?;
        if let Some(root) = &self.local_root {
            let file = root.join(path.as_ref());
            let kind = self.kind;
            tokio::task::spawn_blocking(move || sync_file_and_dir(&file))
                .await
                .map_err(|e| ObjectError::Config(format!("sync task failed: {e}")))?
                .map_err(|(p, source)| ObjectError::Sync {
                    backend: kind,
                    path: p,
                    source,
                })?;
        }
        Ok(())
    }

    pub async fn get(&self, path: &Path) -> Result<Bytes, ObjectError> {
        let r = self.store.get(path).await.map_err(|e| self.err(e))?;
        r.bytes().await.map_err(|e| self.err(e))
    }

    pub async fn get_range(&self, path: &Path, range: Range<u64>) -> Result<Bytes, ObjectError> {
        self.store
            .get_range(path, range)
            .await
            .map_err(|e| self.err(e))
    }

    /// Deletes `path`; an object that is already gone is not an error.
    pub async fn delete(&self, path: &Path) -> Result<(), ObjectError> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }

    pub async fn exists(&self, path: &Path) -> Result<bool, ObjectError> {
        match self.store.head(path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Every object under `prefix`.
    pub async fn list(&self, prefix: &Path) -> Result<Vec<ObjectMeta>, ObjectError> {
        self.store
            .list(Some(prefix))
            .try_collect()
            .await
            .map_err(|e| self.err(e))
    }

    /// The names of the "directories" directly under `prefix` (the whole
    /// store when `None`): the next key component of every key below it.
    pub async fn list_dirs(&self, prefix: Option<&Path>) -> Result<Vec<String>, ObjectError> {
        let listing = self
            .store
            .list_with_delimiter(prefix)
            .await
            .map_err(|e| self.err(e))?;
        Ok(listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect())
    }
}

fn sync_file_and_dir(file: &std::path::Path) -> Result<(), (String, std::io::Error)> {
    let fail = |p: &std::path::Path| {
        let p = p.display().to_string();
        move |e| (p, e)
    };
    std::fs::File::open(file)
        .and_then(|f| f.sync_all())
        .map_err(fail(file))?;
    if let Some(dir) = file.parent() {
        std::fs::File::open(dir)
            .and_then(|f| f.sync_all())
            .map_err(fail(dir))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 5 audit): a region lokal was not given must not
    /// override the one the environment supplies (`from_env`).
    #[test]
    fn s3_region_comes_from_the_environment_unless_configured() {
        use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
        let from_env = || {
            // What `from_env` does with AWS_REGION / AWS_ACCESS_KEY_ID set.
            AmazonS3Builder::new()
                .with_config(AmazonS3ConfigKey::Region, "eu-west-3")
                .with_config(AmazonS3ConfigKey::AccessKeyId, "ENVKEY")
        };
        let mut c = S3Config {
            endpoint: String::new(),
            bucket: "logs".into(),
            region: String::new(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            session_token: String::new(),
            force_path_style: false,
            insecure: false,
        };
        let b = s3_builder(from_env(), &c);
        assert_eq!(
            b.get_config_value(&AmazonS3ConfigKey::Region).as_deref(),
            Some("eu-west-3")
        );
        assert_eq!(
            b.get_config_value(&AmazonS3ConfigKey::AccessKeyId)
                .as_deref(),
            Some("ENVKEY"),
            "env credentials are kept when the config has none"
        );
        c.region = "auto".into();
        c.access_key_id = "CFGKEY".into();
        c.secret_access_key = "secret".into();
        let b = s3_builder(from_env(), &c);
        assert_eq!(
            b.get_config_value(&AmazonS3ConfigKey::Region).as_deref(),
            Some("auto")
        );
        assert_eq!(
            b.get_config_value(&AmazonS3ConfigKey::AccessKeyId)
                .as_deref(),
            Some("CFGKEY")
        );
    }

    async fn exercise(s: &ObjectStorage) {
        let p = Path::from("fake/chunks/00ab/0001-0002-deadbeef");
        assert!(!s.exists(&p).await.unwrap());
        s.put(&p, Bytes::from_static(b"hello chunk")).await.unwrap();
        assert_eq!(&s.get(&p).await.unwrap()[..], b"hello chunk");
        assert_eq!(&s.get_range(&p, 6..11).await.unwrap()[..], b"chunk");
        assert_eq!(s.list(&Path::from("fake/chunks")).await.unwrap().len(), 1);
        assert!(s.list(&Path::from("other")).await.unwrap().is_empty());
        s.delete(&p).await.unwrap();
        s.delete(&p).await.unwrap();
        assert!(matches!(s.get(&p).await, Err(ObjectError::NotFound { .. })));
    }

    #[tokio::test]
    async fn local_and_memory_backends_behave_alike() {
        let dir = tempfile::tempdir().unwrap();
        let local = ObjectStorage::open(&ObjectBackend::Filesystem {
            directory: dir.path().join("chunks"),
        })
        .unwrap();
        exercise(&local).await;
        exercise(&ObjectStorage::in_memory()).await;
        exercise(&local.with_prefix("case-1/x")).await;
    }

    #[tokio::test]
    async fn prefixes_scope_keys_and_dirs_list_one_level() {
        let dir = tempfile::tempdir().unwrap();
        let root = ObjectStorage::open(&ObjectBackend::Filesystem {
            directory: dir.path().to_path_buf(),
        })
        .unwrap();
        let scoped = root.with_prefix("p1");
        for key in [
            "t1/index/2026-01-01/meta.json",
            "t1/chunks/a/b",
            "t2/index/x",
        ] {
            scoped
                .put(&Path::from(key), Bytes::from_static(b"x"))
                .await
                .unwrap();
        }
        assert!(dir.path().join("p1/t1/chunks/a/b").exists());
        assert_eq!(scoped.list_dirs(None).await.unwrap(), ["t1", "t2"]);
        assert_eq!(
            scoped
                .list_dirs(Some(&Path::from("t1/index")))
                .await
                .unwrap(),
            ["2026-01-01"]
        );
        assert_eq!(root.list_dirs(None).await.unwrap(), ["p1"]);
        assert!(
            root.with_prefix("p2")
                .list_dirs(None)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
