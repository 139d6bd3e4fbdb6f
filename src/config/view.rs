//! The configuration in force, as YAML, for `GET /config` and
//! `-print-config-stderr`.
//!
//! [`ConfigView`] is a serialisable mirror of the validated [`Config`] under
//! Loki's section and key names (what an operator would write to get the
//! same behaviour), so `/config?mode=diffs` can compare it with the defaults
//! key by key. Secrets are [`Secret`]s, printed as Loki's `flagext.Secret`
//! prints them (`********`, or an empty string when unset) — the real value
//! never reaches the view's output.
//!
//! This module owns no parsing (see [`super::raw`]) and no HTTP.

use serde::Serialize;
use serde_yaml_ng::Value;

use super::units::{ByteSize, ConfigDuration};
use super::{ChunkEncoding, Config, ConfigError, ObjectBackend, Sources};
use crate::limits::Limits;

/// A secret configuration value. Serialises as Loki's `flagext.Secret`
/// (dskit `flagext/secret.go`, `MarshalYAML`): `""` when empty, else
/// `********`. Its `Debug` does not show it either.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub const MASK: &'static str = "********";

    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            Self::MASK
        })
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { Self::MASK })
    }
}

/// The validated configuration under Loki's YAML names.
#[derive(Debug, Serialize)]
pub struct ConfigView {
    pub auth_enabled: bool,
    pub server: ServerView,
    pub common: CommonView,
    pub storage_config: StorageConfigView,
    pub chunk_store_config: ChunkStoreConfigView,
    pub ingester: IngesterView,
    pub querier: QuerierView,
    pub compactor: CompactorView,
    pub pattern_ingester: PatternIngesterView,
    pub distributor: DistributorView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_config: Option<RuntimeConfigView>,
    pub limits_config: Limits,
}

#[derive(Debug, Serialize)]
pub struct ServerView {
    pub http_listen_address: String,
    pub http_listen_port: u16,
    pub log_level: String,
}

#[derive(Debug, Serialize)]
pub struct CommonView {
    pub path_prefix: String,
    pub storage: StorageView,
}

#[derive(Debug, Serialize)]
pub struct StorageView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filesystem: Option<FilesystemView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3View>,
}

#[derive(Debug, Serialize)]
pub struct FilesystemView {
    pub chunks_directory: String,
}

/// Loki's `s3` block: `access_key_id` is a plain string there,
/// `secret_access_key` and `session_token` are `flagext.Secret`s
/// (Loki `pkg/storage/chunk/client/aws/s3_storage_client.go`).
#[derive(Debug, Serialize)]
pub struct S3View {
    pub endpoint: String,
    pub bucketnames: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Secret,
    pub s3forcepathstyle: bool,
    pub insecure: bool,
}

#[derive(Debug, Serialize)]
pub struct StorageConfigView {
    pub tsdb_shipper: TsdbShipperView,
}

#[derive(Debug, Serialize)]
pub struct TsdbShipperView {
    pub active_index_directory: String,
}

#[derive(Debug, Serialize)]
pub struct ChunkStoreConfigView {
    pub chunk_cache_config: ChunkCacheView,
}

#[derive(Debug, Serialize)]
pub struct ChunkCacheView {
    pub embedded_cache: EmbeddedCacheView,
}

#[derive(Debug, Serialize)]
pub struct EmbeddedCacheView {
    pub enabled: bool,
    pub max_size_mb: u64,
}

#[derive(Debug, Serialize)]
pub struct IngesterView {
    pub chunk_target_size: ByteSize,
    pub chunk_block_size: ByteSize,
    pub chunk_idle_period: ConfigDuration,
    pub max_chunk_age: ConfigDuration,
    pub chunk_encoding: &'static str,
    pub flush_check_period: ConfigDuration,
    pub flush_on_shutdown: bool,
    pub max_head_memory: ByteSize,
    pub wal: WalView,
}

#[derive(Debug, Serialize)]
pub struct WalView {
    pub dir: String,
}

#[derive(Debug, Serialize)]
pub struct QuerierView {
    pub max_concurrent: usize,
    pub tail_max_duration: ConfigDuration,
}

#[derive(Debug, Serialize)]
pub struct CompactorView {
    pub compaction_interval: ConfigDuration,
    pub retention_enabled: bool,
    pub retention_delete_delay: ConfigDuration,
    pub delete_request_cancel_period: ConfigDuration,
    pub delete_max_interval: ConfigDuration,
    pub dry_run: bool,
}

#[derive(Debug, Serialize)]
pub struct DistributorView {
    pub max_recv_msg_size: ByteSize,
    pub max_decompressed_size: ByteSize,
}

#[derive(Debug, Serialize)]
pub struct PatternIngesterView {
    pub enabled: bool,
}

#[derive(Debug, Serialize)]
pub struct RuntimeConfigView {
    pub file: String,
    pub period: ConfigDuration,
}

fn path(p: &std::path::Path) -> String {
    p.display().to_string()
}

impl ConfigView {
    pub fn new(c: &Config) -> Self {
        let (filesystem, s3) = match &c.storage.backend {
            ObjectBackend::Filesystem { directory } => (
                Some(FilesystemView {
                    chunks_directory: path(directory),
                }),
                None,
            ),
            ObjectBackend::S3(s) => (
                None,
                Some(S3View {
                    endpoint: s.endpoint.clone(),
                    bucketnames: s.bucket.clone(),
                    region: s.region.clone(),
                    access_key_id: s.access_key_id.clone(),
                    secret_access_key: Secret::new(s.secret_access_key.clone()),
                    session_token: Secret::new(s.session_token.clone()),
                    s3forcepathstyle: s.force_path_style,
                    insecure: s.insecure,
                }),
            ),
        };
        ConfigView {
            auth_enabled: c.auth_enabled,
            server: ServerView {
                http_listen_address: c.server.http_listen.ip().to_string(),
                http_listen_port: c.server.http_listen.port(),
                log_level: c.server.log_level.clone(),
            },
            common: CommonView {
                path_prefix: path(&c.storage.path_prefix),
                storage: StorageView { filesystem, s3 },
            },
            storage_config: StorageConfigView {
                tsdb_shipper: TsdbShipperView {
                    active_index_directory: path(&c.storage.index_dir),
                },
            },
            chunk_store_config: ChunkStoreConfigView {
                chunk_cache_config: ChunkCacheView {
                    embedded_cache: EmbeddedCacheView {
                        enabled: c.storage.chunk_cache_bytes > 0,
                        max_size_mb: c.storage.chunk_cache_bytes >> 20,
                    },
                },
            },
            ingester: IngesterView {
                chunk_target_size: ByteSize(c.ingester.chunk_target_size),
                chunk_block_size: ByteSize(c.ingester.chunk_block_size),
                chunk_idle_period: ConfigDuration(c.ingester.chunk_idle_period),
                max_chunk_age: ConfigDuration(c.ingester.max_chunk_age),
                chunk_encoding: match c.ingester.chunk_encoding {
                    ChunkEncoding::Zstd => "zstd",
                    ChunkEncoding::Snappy => "snappy",
                },
                flush_check_period: ConfigDuration(c.ingester.flush_check_period),
                flush_on_shutdown: c.ingester.flush_on_shutdown,
                max_head_memory: ByteSize(c.ingester.max_head_memory),
                wal: WalView {
                    dir: path(&c.storage.wal_dir),
                },
            },
            querier: QuerierView {
                max_concurrent: c.querier.max_concurrent,
                tail_max_duration: ConfigDuration(c.querier.tail_max_duration),
            },
            compactor: CompactorView {
                compaction_interval: ConfigDuration(c.compactor.compaction_interval),
                retention_enabled: c.compactor.retention_enabled,
                retention_delete_delay: ConfigDuration(c.compactor.retention_delete_delay),
                delete_request_cancel_period: ConfigDuration(
                    c.compactor.delete_request_cancel_period,
                ),
                delete_max_interval: ConfigDuration(c.compactor.delete_max_interval),
                dry_run: c.compactor.dry_run,
            },
            pattern_ingester: PatternIngesterView {
                enabled: c.pattern_ingester_enabled,
            },
            distributor: DistributorView {
                max_recv_msg_size: ByteSize(c.distributor.max_recv_msg_size),
                max_decompressed_size: ByteSize(c.distributor.max_decompressed_size),
            },
            runtime_config: c.runtime_config.as_ref().map(|r| RuntimeConfigView {
                file: path(&r.file),
                period: ConfigDuration(r.period),
            }),
            limits_config: c.limits.clone(),
        }
    }
}

impl Config {
    /// The configuration in force as YAML, secrets redacted.
    pub fn to_yaml(&self) -> String {
        to_yaml(&self.to_value())
    }

    /// The configuration in force as a YAML tree, secrets redacted.
    pub fn to_value(&self) -> Value {
        // Serialising plain structs, strings, numbers and a `Limits` that
        // was itself deserialised cannot fail; an empty tree is the
        // fallback all the same.
        serde_yaml_ng::to_value(ConfigView::new(self)).unwrap_or(Value::Null)
    }

    /// What a configuration file with no keys at all produces: Loki's
    /// defaults (`auth_enabled: true`, paths under `./data`). This differs
    /// from the embedded default used when lokal starts without a file.
    pub fn defaults() -> Result<Config, ConfigError> {
        Config::load(Sources {
            yaml: Some(("<defaults>", "")),
            ..Default::default()
        })
        .map(|l| l.config)
    }
}

/// Serialises a YAML tree (Loki prints `/config` with yaml.v2's layout;
/// key order here is the view's, sections in Loki's spirit).
pub fn to_yaml(v: &Value) -> String {
    serde_yaml_ng::to_string(v).unwrap_or_default()
}

/// The keys of `current` whose values differ from `defaults`, recursively
/// through mappings, as Loki's `/config?mode=diffs` shows them
/// (`pkg/util/config.go`, `DiffConfig`): a differing sequence or scalar is
/// shown whole; equal keys and empty sections are left out.
pub fn diff(current: &Value, defaults: &Value) -> Value {
    diff_inner(current, defaults).unwrap_or_else(|| Value::Mapping(Default::default()))
}

fn diff_inner(current: &Value, defaults: &Value) -> Option<Value> {
    match (current, defaults) {
        (Value::Mapping(c), Value::Mapping(d)) => {
            let mut out = serde_yaml_ng::Mapping::new();
            for (k, cv) in c {
                let changed = match d.get(k) {
                    Some(dv) => diff_inner(cv, dv),
                    None => Some(cv.clone()),
                };
                if let Some(v) = changed {
                    out.insert(k.clone(), v);
                }
            }
            (!out.is_empty()).then_some(Value::Mapping(out))
        }
        (c, d) if c == d => None,
        (c, _) => Some(c.clone()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn load(yaml: &str) -> Config {
        Config::load(Sources {
            yaml: Some(("test.yaml", yaml)),
            ..Default::default()
        })
        .unwrap()
        .config
    }

    #[test]
    fn secrets_print_as_loki_flagext_secret() {
        let c = load(
            "common:\n  storage:\n    s3:\n      endpoint: 127.0.0.1:9000\n      bucketnames: logs\n      access_key_id: AKID\n      secret_access_key: sup3r-s3cret\n      session_token: t0ken-value\n",
        );
        let y = c.to_yaml();
        assert!(!y.contains("sup3r-s3cret"), "{y}");
        assert!(!y.contains("t0ken-value"), "{y}");
        assert!(y.contains("secret_access_key: '********'"), "{y}");
        assert!(y.contains("session_token: '********'"), "{y}");
        assert!(y.contains("access_key_id: AKID"), "{y}");
        assert!(y.contains("bucketnames: logs"), "{y}");
        // Unset secrets print empty, as Loki's.
        let c = load(
            "common:\n  storage:\n    s3:\n      endpoint: 127.0.0.1:9000\n      bucketnames: logs\n      access_key_id: AKID\n      secret_access_key: x\n",
        );
        assert!(c.to_yaml().contains("session_token: ''"), "{}", c.to_yaml());
        assert_eq!(format!("{:?}", Secret::new("x")), "********");
    }

    #[test]
    fn yaml_has_loki_sections_and_reads_back() {
        let c = load("auth_enabled: false\nlimits_config:\n  max_query_series: 42\n");
        let y = c.to_yaml();
        for key in [
            "auth_enabled: false",
            "server:",
            "http_listen_port: 3100",
            "ingester:",
            "chunk_encoding: zstd",
            "compactor:",
            "limits_config:",
            "max_query_series: 42",
        ] {
            assert!(y.contains(key), "{key} missing in\n{y}");
        }
        // The printed configuration starts lokal with the same settings.
        let again = load(&y);
        assert_eq!(again.limits, c.limits);
        assert_eq!(again.auth_enabled, c.auth_enabled);
        assert_eq!(
            again.ingester.chunk_target_size,
            c.ingester.chunk_target_size
        );
        assert_eq!(again.storage.wal_dir, c.storage.wal_dir);
    }

    #[test]
    fn defaults_are_an_empty_file() {
        let d = Config::defaults().unwrap();
        assert!(d.auth_enabled);
        assert_eq!(d.server.http_listen.port(), 3100);
        assert_eq!(d.limits, Limits::default());
    }

    #[test]
    fn diff_keeps_only_changed_keys() {
        let d = Config::defaults().unwrap();
        let c = load("limits_config:\n  max_query_series: 42\nserver:\n  log_level: warn\n");
        let out = to_yaml(&diff(&c.to_value(), &d.to_value()));
        assert_eq!(
            out, "server:\n  log_level: warn\nlimits_config:\n  max_query_series: 42\n",
            "{out}"
        );
        assert_eq!(to_yaml(&diff(&d.to_value(), &d.to_value())), "{}\n");
    }
}
