//! The YAML as written: Loki's section and key names, every field optional.
//!
//! Only the top level denies unknown keys (an unknown section is an error
//! naming it); inside a section, keys lokal does not use are collected by
//! `serde_ignored` and reported once at start-up.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_yaml_ng::Value;

use super::units::{ByteSize, ConfigDuration};
use super::{
    ChunkEncoding, CompactorConfig, Config, ConfigError, DEFAULT_LISTEN_IP,
    DEFAULT_MAX_HEAD_MEMORY, DEFAULT_MAX_RECV_MSG_SIZE, DistributorConfig, IngesterConfig,
    ObjectBackend, QuerierConfig, RuntimeConfig, S3Config, ServerConfig, StorageConfig,
};
use crate::limits::Limits;

macro_rules! ignored_sections {
    ($($name:ident),* $(,)?) => {
        /// Top-level YAML. Sections lokal does not use are accepted and reported.
        #[derive(Debug, Default, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct RawConfig {
            pub target: Option<Value>,
            pub auth_enabled: Option<bool>,
            pub server: RawServer,
            pub common: RawCommon,
            pub schema_config: RawSchemaConfig,
            pub storage_config: RawStorageConfig,
            pub ingester: RawIngester,
            pub limits_config: Limits,
            pub compactor: RawCompactor,
            pub querier: RawQuerier,
            pub runtime_config: RawRuntimeConfig,
            pub pattern_ingester: RawPatternIngester,
            pub chunk_store_config: RawChunkStoreConfig,
            pub distributor: RawDistributor,
            $(pub $name: Option<Value>,)*
        }

        impl RawConfig {
            /// Known Loki sections that are present but mean nothing to lokal.
            pub fn ignored_sections(&self) -> Vec<String> {
                let mut out = Vec::new();
                $(if self.$name.is_some() { out.push(stringify!($name).to_string()); })*
                out
            }
        }
    };
}

ignored_sections!(
    ballast_bytes,
    query_scheduler,
    frontend,
    query_range,
    ruler,
    ruler_storage,
    ingester_client,
    block_builder,
    block_scheduler,
    index_gateway,
    bloom_build,
    bloom_gateway,
    compactor_grpc_client,
    frontend_worker,
    table_manager,
    memberlist,
    kafka_config,
    dataobj,
    ui,
    operational_config,
    tracing,
    analytics,
    profiling,
    shutdown_delay,
    metrics_namespace,
    ingest_limits,
    ingest_limits_frontend,
    ingest_limits_frontend_client,
    partition_ring,
    distributor_client,
);

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawServer {
    pub http_listen_address: Option<String>,
    pub http_listen_port: Option<u16>,
    pub log_level: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawCommon {
    pub path_prefix: Option<String>,
    pub storage: RawObjectStorage,
}

/// `common.storage` and `storage_config` share these backends.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawObjectStorage {
    pub filesystem: Option<RawFilesystem>,
    pub s3: Option<RawS3>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawFilesystem {
    pub chunks_directory: Option<String>,
    /// `storage_config.filesystem.directory`
    pub directory: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct RawS3 {
    /// URL form `s3://key:secret@region/bucket` (or `s3://region/bucket`).
    pub s3: Option<String>,
    pub endpoint: Option<String>,
    pub bucketnames: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub s3forcepathstyle: Option<bool>,
    pub insecure: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawSchemaConfig {
    pub configs: Vec<RawPeriodConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawPeriodConfig {
    pub object_store: Option<String>,
    pub index: Option<RawPeriodIndex>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawPeriodIndex {
    pub period: Option<ConfigDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawStorageConfig {
    pub filesystem: Option<RawFilesystem>,
    pub aws: Option<RawS3>,
    pub tsdb_shipper: Option<RawTsdbShipper>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawTsdbShipper {
    pub active_index_directory: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawDistributor {
    pub max_recv_msg_size: Option<ByteSize>,
    pub max_decompressed_size: Option<ByteSize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawIngester {
    pub chunk_target_size: Option<ByteSize>,
    pub chunk_block_size: Option<ByteSize>,
    pub chunk_idle_period: Option<ConfigDuration>,
    pub max_chunk_age: Option<ConfigDuration>,
    pub chunk_encoding: Option<String>,
    pub flush_check_period: Option<ConfigDuration>,
    pub flush_on_shutdown: Option<bool>,
    /// lokal: bytes the head may hold in memory before pushes are refused
    /// with 503 (chunks waiting for a slow or failing object store count).
    pub max_head_memory: Option<ByteSize>,
    pub wal: RawWal,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawWal {
    pub dir: Option<String>,
    pub flush_on_shutdown: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawCompactor {
    pub compaction_interval: Option<ConfigDuration>,
    pub retention_enabled: Option<bool>,
    pub retention_delete_delay: Option<ConfigDuration>,
    pub delete_request_cancel_period: Option<ConfigDuration>,
    /// lokal: log what retention would do without deleting anything.
    pub dry_run: Option<bool>,
    /// Largest interval a delete request with line filters is split into.
    pub delete_max_interval: Option<ConfigDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawQuerier {
    pub max_concurrent: Option<usize>,
    pub tail_max_duration: Option<ConfigDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawRuntimeConfig {
    pub file: Option<String>,
    pub period: Option<ConfigDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawPatternIngester {
    pub enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawChunkStoreConfig {
    pub chunk_cache_config: Option<RawCacheConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawCacheConfig {
    pub embedded_cache: Option<RawEmbeddedCache>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawEmbeddedCache {
    pub enabled: Option<bool>,
    pub max_size_mb: Option<u64>,
}

fn invalid(msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(msg.into())
}

impl RawS3 {
    fn merged_over(self, base: Option<RawS3>) -> RawS3 {
        let b = base.unwrap_or_default();
        RawS3 {
            s3: self.s3.or(b.s3),
            endpoint: self.endpoint.or(b.endpoint),
            bucketnames: self.bucketnames.or(b.bucketnames),
            region: self.region.or(b.region),
            access_key_id: self.access_key_id.or(b.access_key_id),
            secret_access_key: self.secret_access_key.or(b.secret_access_key),
            session_token: self.session_token.or(b.session_token),
            s3forcepathstyle: self.s3forcepathstyle.or(b.s3forcepathstyle),
            insecure: self.insecure.or(b.insecure),
        }
    }

    fn validate(self) -> Result<S3Config, ConfigError> {
        let mut cfg = S3Config {
            endpoint: self.endpoint.unwrap_or_default(),
            bucket: self.bucketnames.unwrap_or_default(),
            region: self.region.unwrap_or_default(),
            access_key_id: self.access_key_id.unwrap_or_default(),
            secret_access_key: self.secret_access_key.unwrap_or_default(),
            session_token: self.session_token.unwrap_or_default(),
            force_path_style: self.s3forcepathstyle.unwrap_or(false),
            insecure: self.insecure.unwrap_or(false),
        };
        if let Some(url) = self.s3.filter(|s| !s.is_empty()) {
            // s3://key:secret@region/bucket, as Loki's `s3` URL option.
            let rest = url
                .strip_prefix("s3://")
                .ok_or_else(|| invalid(format!("s3 URL {url:?} must start with s3://")))?;
            let (auth, hostpath) = match rest.rsplit_once('@') {
                Some((a, h)) => (Some(a), h),
                None => (None, rest),
            };
            if let Some((k, s)) = auth.and_then(|a| a.split_once(':')) {
                cfg.access_key_id = percent_decode(k);
                cfg.secret_access_key = percent_decode(s);
            }
            let (host, bucket) = hostpath.split_once('/').unwrap_or((hostpath, ""));
            if cfg.bucket.is_empty() {
                cfg.bucket = bucket.trim_matches('/').to_string();
            }
            if host.contains('.') || host.contains(':') {
                if cfg.endpoint.is_empty() {
                    cfg.endpoint = host.to_string();
                }
            } else if cfg.region.is_empty() {
                cfg.region = host.to_string();
            }
        }
        if cfg.bucket.is_empty() {
            return Err(invalid("s3 storage needs bucketnames"));
        }
        if cfg.bucket.contains(',') {
            return Err(invalid(
                "lokal supports exactly one S3 bucket (bucketnames has several)",
            ));
        }
        if !cfg.endpoint.is_empty() && !cfg.endpoint.contains("://") {
            let scheme = if cfg.insecure { "http" } else { "https" };
            cfg.endpoint = format!("{scheme}://{}", cfg.endpoint);
        }
        // An unset region stays unset: `AWS_REGION` / `AWS_DEFAULT_REGION`
        // then apply, and object_store's default (us-east-1) after them.
        Ok(cfg)
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl RawConfig {
    pub fn validate(self) -> Result<Config, ConfigError> {
        let path_prefix = PathBuf::from(
            self.common
                .path_prefix
                .clone()
                .unwrap_or_else(|| "data".to_string()),
        );
        let under_prefix = |p: Option<String>, default: &str| -> PathBuf {
            match p {
                Some(p) => PathBuf::from(p),
                None => path_prefix.join(default),
            }
        };

        let ip: IpAddr = match self.server.http_listen_address.as_deref() {
            None | Some("") => DEFAULT_LISTEN_IP,
            Some(a) => a.parse().map_err(|_| {
                invalid(format!(
                    "server.http_listen_address {a:?} is not an IP address"
                ))
            })?,
        };
        let port = self.server.http_listen_port.unwrap_or(3100);
        let server = ServerConfig {
            http_listen: SocketAddr::new(ip, port),
            log_level: self.server.log_level.unwrap_or_else(|| "info".to_string()),
        };
        if !["debug", "info", "warn", "error"].contains(&server.log_level.as_str()) {
            return Err(invalid(format!(
                "server.log_level {:?} must be one of debug, info, warn, error",
                server.log_level
            )));
        }

        // Which object store: schema_config's object_store of the newest
        // period, else S3 when one is configured, else the filesystem.
        let wanted = self
            .schema_config
            .configs
            .last()
            .and_then(|p| p.object_store.clone());
        let s3_raw = match (self.storage_config.aws, self.common.storage.s3) {
            (Some(aws), common) => Some(aws.merged_over(common)),
            (None, common) => common,
        };
        let fs_dir = self
            .storage_config
            .filesystem
            .as_ref()
            .and_then(|f| f.directory.clone().or_else(|| f.chunks_directory.clone()))
            .or_else(|| {
                self.common
                    .storage
                    .filesystem
                    .as_ref()
                    .and_then(|f| f.chunks_directory.clone())
            });
        let backend = match wanted.as_deref() {
            Some("s3") | Some("aws") => ObjectBackend::S3(
                s3_raw
                    .ok_or_else(|| {
                        invalid("schema_config selects s3 but no s3 storage is configured")
                    })?
                    .validate()?,
            ),
            Some("filesystem") => ObjectBackend::Filesystem {
                directory: under_prefix(fs_dir, "chunks"),
            },
            Some(other) => {
                return Err(invalid(format!(
                    "object_store {other:?} is not supported by lokal (use filesystem or s3)"
                )));
            }
            None => match s3_raw {
                Some(s3) if fs_dir.is_none() => ObjectBackend::S3(s3.validate()?),
                _ => ObjectBackend::Filesystem {
                    directory: under_prefix(fs_dir, "chunks"),
                },
            },
        };
        for period in &self.schema_config.configs {
            if let Some(p) = period.index.as_ref().and_then(|i| i.period)
                && p.get() != Duration::from_secs(86_400)
            {
                return Err(invalid(format!(
                    "schema_config index period {p} is not supported: lokal partitions its index by 24h"
                )));
            }
        }
        let index_dir = under_prefix(
            self.storage_config
                .tsdb_shipper
                .and_then(|t| t.active_index_directory),
            "index",
        );
        // Absent: 256 MB (lokal caches by default); `enabled: false`: none.
        let chunk_cache_bytes = match self
            .chunk_store_config
            .chunk_cache_config
            .and_then(|c| c.embedded_cache)
        {
            Some(e) if !e.enabled.unwrap_or(true) => 0,
            e => e.and_then(|e| e.max_size_mb).unwrap_or(256),
        } * 1024
            * 1024;
        // The OS page cache already caches a local chunk directory.
        let chunk_cache_bytes = match backend {
            ObjectBackend::Filesystem { .. } => 0,
            ObjectBackend::S3(_) => chunk_cache_bytes,
        };
        let storage = StorageConfig {
            wal_dir: under_prefix(self.ingester.wal.dir.clone(), "wal"),
            index_dir,
            backend,
            chunk_cache_bytes,
            path_prefix: path_prefix.clone(),
        };

        let chunk_encoding = match self.ingester.chunk_encoding.as_deref() {
            None | Some("zstd") => ChunkEncoding::Zstd,
            Some("snappy") => ChunkEncoding::Snappy,
            Some(other) => {
                return Err(invalid(format!(
                    "ingester.chunk_encoding {other:?} is not supported by lokal (use zstd or snappy)"
                )));
            }
        };
        let ingester = IngesterConfig {
            chunk_target_size: self.ingester.chunk_target_size.map_or(1_572_864, |b| b.0),
            chunk_block_size: self.ingester.chunk_block_size.map_or(262_144, |b| b.0),
            chunk_idle_period: self
                .ingester
                .chunk_idle_period
                .map_or(Duration::from_secs(30 * 60), |d| d.0),
            max_chunk_age: self
                .ingester
                .max_chunk_age
                .map_or(Duration::from_secs(2 * 3600), |d| d.0),
            chunk_encoding,
            flush_check_period: self
                .ingester
                .flush_check_period
                .map_or(Duration::from_secs(30), |d| d.0),
            flush_on_shutdown: self
                .ingester
                .flush_on_shutdown
                .or(self.ingester.wal.flush_on_shutdown)
                .unwrap_or(true),
            max_head_memory: self
                .ingester
                .max_head_memory
                .map_or(DEFAULT_MAX_HEAD_MEMORY, |b| b.0),
        };
        if ingester.chunk_block_size == 0 || ingester.chunk_target_size == 0 {
            return Err(invalid("ingester chunk sizes must be positive"));
        }
        if ingester.max_chunk_age.is_zero() || ingester.flush_check_period.is_zero() {
            return Err(invalid(
                "ingester.max_chunk_age and flush_check_period must be positive",
            ));
        }

        let compactor = CompactorConfig {
            compaction_interval: self
                .compactor
                .compaction_interval
                .map_or(Duration::from_secs(600), |d| d.0),
            retention_enabled: self.compactor.retention_enabled.unwrap_or(false),
            retention_delete_delay: self
                .compactor
                .retention_delete_delay
                .map_or(Duration::from_secs(7200), |d| d.0),
            delete_request_cancel_period: self
                .compactor
                .delete_request_cancel_period
                .map_or(Duration::from_secs(86_400), |d| d.0),
            dry_run: self.compactor.dry_run.unwrap_or(false),
            delete_max_interval: self
                .compactor
                .delete_max_interval
                .map_or(Duration::from_secs(86_400), |d| d.0),
        };
        let limits = self.limits_config;
        validate_limits(&limits, compactor.retention_enabled, "limits_config")?;

        let runtime_config =
            self.runtime_config
                .file
                .filter(|f| !f.is_empty())
                .map(|f| RuntimeConfig {
                    file: PathBuf::from(f),
                    period: self
                        .runtime_config
                        .period
                        .map_or(Duration::from_secs(10), |d| d.0),
                });
        let querier = QuerierConfig {
            max_concurrent: self.querier.max_concurrent.unwrap_or(4).max(1),
            tail_max_duration: self
                .querier
                .tail_max_duration
                .map_or(Duration::from_secs(3600), |d| d.0),
        };

        let max_recv_msg_size = self
            .distributor
            .max_recv_msg_size
            .map_or(DEFAULT_MAX_RECV_MSG_SIZE, ByteSize::get);
        let distributor = DistributorConfig {
            max_recv_msg_size,
            // Loki: 0 means 50 x max_recv_msg_size.
            max_decompressed_size: match self.distributor.max_decompressed_size {
                None => max_recv_msg_size,
                Some(ByteSize(0)) => max_recv_msg_size.saturating_mul(50),
                Some(b) => b.get(),
            },
        };
        if distributor.max_recv_msg_size == 0 {
            return Err(invalid("distributor.max_recv_msg_size must be positive"));
        }

        Ok(Config {
            auth_enabled: self.auth_enabled.unwrap_or(true),
            server,
            storage,
            ingester,
            limits,
            runtime_config,
            compactor,
            querier,
            pattern_ingester_enabled: self.pattern_ingester.enabled.unwrap_or(true),
            distributor,
        })
    }
}

/// Checks one set of limits; `at` names where they come from in messages
/// (`limits_config`, or a tenant of the runtime overrides file, whose merged
/// limits get the same checks).
pub(crate) fn validate_limits(
    l: &Limits,
    retention_enabled: bool,
    at: &str,
) -> Result<(), ConfigError> {
    if l.ingestion_rate_mb < 0.0 || l.ingestion_burst_size_mb < 0.0 {
        return Err(invalid(format!(
            "{at} ingestion rate and burst must not be negative"
        )));
    }
    if l.max_entries_limit_per_query == 0 {
        return Err(invalid(format!(
            "{at}.max_entries_limit_per_query must be positive"
        )));
    }
    let day = Duration::from_secs(86_400);
    if retention_enabled && !l.retention_period.is_zero() && l.retention_period.get() < day {
        return Err(invalid(format!(
            "{at}.retention_period {} is below the 24h minimum",
            l.retention_period
        )));
    }
    for r in &l.retention_stream {
        if let Err(e) = crate::model::parse_selector(&r.selector) {
            return Err(invalid(format!(
                "{at}.retention_stream selector {:?}: {e}",
                r.selector
            )));
        }
        if r.period.get() < day {
            return Err(invalid(format!(
                "{at}.retention_stream {:?}: period {} is below the 24h minimum",
                r.selector, r.period
            )));
        }
    }
    Ok(())
}
