//! Configuration: Loki's YAML keys and `-flag.name` overrides, parsed
//! strictly, then validated into typed values.
//!
//! Two stages: [`raw`] mirrors the YAML (Loki's key names, serde defaults);
//! [`Config::load`] applies flag overrides, reports every key lokal does not
//! use (once, at start-up), rejects unknown top-level sections, and produces
//! the validated [`Config`] the rest of the program reads. Environment
//! variables are passed in as a map so tests can set them.

pub mod raw;
pub mod units;
pub mod view;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::limits::Limits;
use raw::RawConfig;

/// The embedded default configuration used when no file is given: Loki's
/// `loki-local-config.yaml` spirit — single tenant, local disk under ./data.
pub const EMBEDDED_DEFAULT: &str = "\
auth_enabled: false
server:
  http_listen_port: 3100
common:
  path_prefix: ./data
";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("parsing config{}: {message}", in_file(.path))]
    Parse {
        path: Option<String>,
        message: String,
    },
    #[error("invalid flag {flag}: {message}")]
    Flag { flag: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

fn in_file(path: &Option<String>) -> String {
    path.as_ref()
        .map(|p| format!(" file {p}"))
        .unwrap_or_default()
}

/// Validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub auth_enabled: bool,
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub ingester: IngesterConfig,
    pub limits: Limits,
    pub runtime_config: Option<RuntimeConfig>,
    pub compactor: CompactorConfig,
    pub querier: QuerierConfig,
    pub pattern_ingester_enabled: bool,
    pub distributor: DistributorConfig,
}

/// How big a push body may be (Loki's `distributor` keys).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DistributorConfig {
    /// Bytes of a request body as received (`max_recv_msg_size`; Loki's
    /// default, 100 MiB).
    pub max_recv_msg_size: u64,
    /// Bytes a gzip, deflate or snappy body may decompress to
    /// (`max_decompressed_size`). Loki's default is 5000 MiB; lokal's is
    /// `max_recv_msg_size`, so a compressed body can never become larger
    /// than an uncompressed one may be.
    pub max_decompressed_size: u64,
}

/// Loki's `distributor.max_recv_msg_size` default.
pub const DEFAULT_MAX_RECV_MSG_SIZE: u64 = 100 << 20;

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub http_listen: SocketAddr,
    pub log_level: String,
}

#[derive(Clone, Debug)]
pub struct StorageConfig {
    /// Root of lokal's local state (`common.path_prefix`).
    pub path_prefix: PathBuf,
    pub wal_dir: PathBuf,
    /// Local working copies and caches of the label index.
    pub index_dir: PathBuf,
    pub backend: ObjectBackend,
    /// Chunk cache in bytes (`chunk_store_config.chunk_cache_config.
    /// embedded_cache.max_size_mb`); 0 for the local filesystem backend,
    /// which the OS page cache already caches.
    pub chunk_cache_bytes: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ObjectBackend {
    Filesystem { directory: PathBuf },
    S3(S3Config),
}

#[derive(Clone, PartialEq)]
pub struct S3Config {
    /// `http(s)://host:port`, empty for AWS' default endpoint.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub force_path_style: bool,
    pub insecure: bool,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("force_path_style", &self.force_path_style)
            .field("insecure", &self.insecure)
            .finish()
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ChunkEncoding {
    Zstd,
    Snappy,
}

#[derive(Clone, Debug)]
pub struct IngesterConfig {
    pub chunk_target_size: u64,
    pub chunk_block_size: u64,
    pub chunk_idle_period: Duration,
    pub max_chunk_age: Duration,
    pub chunk_encoding: ChunkEncoding,
    pub flush_check_period: Duration,
    pub flush_on_shutdown: bool,
    /// Bytes the head may hold before pushes are refused with 503
    /// (`ingester.max_head_memory`, a lokal key; 0 = no limit).
    pub max_head_memory: u64,
}

/// Default `ingester.max_head_memory`: 1 GiB.
pub const DEFAULT_MAX_HEAD_MEMORY: u64 = 1 << 30;

#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    pub file: PathBuf,
    pub period: Duration,
}

#[derive(Clone, Debug)]
pub struct CompactorConfig {
    pub compaction_interval: Duration,
    pub retention_enabled: bool,
    pub retention_delete_delay: Duration,
    pub delete_request_cancel_period: Duration,
    pub dry_run: bool,
    /// Delete requests with line filters are split into shards this long.
    pub delete_max_interval: Duration,
}

#[derive(Clone, Debug)]
pub struct QuerierConfig {
    pub max_concurrent: usize,
    pub tail_max_duration: Duration,
}

/// Command-line flags that map onto YAML paths (Loki's flag names).
const FLAG_PATHS: &[(&str, &str)] = &[
    ("auth.enabled", "auth_enabled"),
    ("server.http-listen-port", "server.http_listen_port"),
    ("server.http-listen-address", "server.http_listen_address"),
    ("server.grpc-listen-port", "server.grpc_listen_port"),
    ("log.level", "server.log_level"),
    ("common.path-prefix", "common.path_prefix"),
    ("ingester.chunk-target-size", "ingester.chunk_target_size"),
    ("ingester.chunks-idle-period", "ingester.chunk_idle_period"),
    ("ingester.max-chunk-age", "ingester.max_chunk_age"),
    ("ingester.chunk-encoding", "ingester.chunk_encoding"),
    ("ingester.flush-check-period", "ingester.flush_check_period"),
    ("ingester.wal-dir", "ingester.wal.dir"),
    (
        "distributor.max-recv-msg-size",
        "distributor.max_recv_msg_size",
    ),
    (
        "distributor.max-decompressed-size",
        "distributor.max_decompressed_size",
    ),
    (
        "distributor.ingestion-rate-limit-mb",
        "limits_config.ingestion_rate_mb",
    ),
    (
        "distributor.ingestion-burst-size-mb",
        "limits_config.ingestion_burst_size_mb",
    ),
    ("distributor.max-line-size", "limits_config.max_line_size"),
    (
        "ingester.max-global-streams-per-user",
        "limits_config.max_global_streams_per_user",
    ),
    (
        "validation.reject-old-samples",
        "limits_config.reject_old_samples",
    ),
    (
        "validation.reject-old-samples.max-age",
        "limits_config.reject_old_samples_max_age",
    ),
    (
        "validation.max-entries-limit",
        "limits_config.max_entries_limit_per_query",
    ),
    ("querier.max-query-series", "limits_config.max_query_series"),
    ("querier.query-timeout", "limits_config.query_timeout"),
    ("store.retention", "limits_config.retention_period"),
    ("compactor.retention-enabled", "compactor.retention_enabled"),
    (
        "compactor.retention-delete-delay",
        "compactor.retention_delete_delay",
    ),
    (
        "compactor.delete-request-cancel-period",
        "compactor.delete_request_cancel_period",
    ),
    (
        "compactor.compaction-interval",
        "compactor.compaction_interval",
    ),
    ("runtime-config.file", "runtime_config.file"),
    ("target", "target"),
];

/// Every flag name lokal accepts besides `config.file` / `config.expand-env`.
pub fn known_flags() -> impl Iterator<Item = &'static str> {
    FLAG_PATHS.iter().map(|(f, _)| *f)
}

/// What `load` was given: the YAML text (or none for the embedded default),
/// flag overrides, environment for `-config.expand-env`.
#[derive(Debug, Default)]
pub struct Sources<'a> {
    pub yaml: Option<(&'a str, &'a str)>,
    pub flags: Vec<(String, String)>,
    pub expand_env: bool,
    pub env: HashMap<String, String>,
}

/// The result of loading: the config and the keys lokal ignores.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub ignored: Vec<String>,
}

impl Config {
    /// Reads `path` (or the embedded default) and applies `flags`.
    pub fn load_file(
        path: Option<&Path>,
        flags: Vec<(String, String)>,
        expand_env: bool,
        env: HashMap<String, String>,
    ) -> Result<Loaded, ConfigError> {
        let text;
        let p;
        let yaml = match path {
            Some(path) => {
                p = path.display().to_string();
                text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: p.clone(),
                    source,
                })?;
                Some((p.as_str(), text.as_str()))
            }
            None => None,
        };
        Self::load(Sources {
            yaml,
            flags,
            expand_env,
            env,
        })
    }

    pub fn load(src: Sources<'_>) -> Result<Loaded, ConfigError> {
        let (path, text) = match src.yaml {
            Some((p, t)) => (Some(p.to_string()), t.to_string()),
            None => (None, EMBEDDED_DEFAULT.to_string()),
        };
        let text = if src.expand_env {
            expand_env(&text, &src.env)
        } else {
            text
        };
        let parse_err = |message: String| ConfigError::Parse {
            path: path.clone(),
            message,
        };
        let mut doc: serde_yaml_ng::Value = if text.trim().is_empty() {
            serde_yaml_ng::Value::Mapping(Default::default())
        } else {
            serde_yaml_ng::from_str(&text).map_err(|e| parse_err(e.to_string()))?
        };
        if doc.is_null() {
            doc = serde_yaml_ng::Value::Mapping(Default::default());
        }
        for (flag, value) in &src.flags {
            let Some((_, yaml_path)) = FLAG_PATHS.iter().find(|(f, _)| f == flag) else {
                return Err(ConfigError::Flag {
                    flag: flag.clone(),
                    message: "unknown flag".into(),
                });
            };
            let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(value)
                .unwrap_or_else(|_| serde_yaml_ng::Value::String(value.clone()));
            set_path(&mut doc, yaml_path, v).map_err(|message| ConfigError::Flag {
                flag: flag.clone(),
                message,
            })?;
        }
        let mut ignored = Vec::new();
        let raw: RawConfig = serde_ignored::deserialize(doc, |p| ignored.push(p.to_string()))
            .map_err(|e| parse_err(e.to_string()))?;
        ignored.extend(raw.ignored_sections());
        ignored.sort();
        ignored.dedup();
        let config = raw.validate()?;
        Ok(Loaded { config, ignored })
    }
}

/// Replaces `${VAR}` and `${VAR:-default}` as Loki's `-config.expand-env` does.
fn expand_env(text: &str, env: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        match env.get(name) {
            Some(v) => out.push_str(v),
            None => out.push_str(default.unwrap_or("")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn set_path(
    doc: &mut serde_yaml_ng::Value,
    path: &str,
    value: serde_yaml_ng::Value,
) -> Result<(), String> {
    use serde_yaml_ng::Value;
    let mut cur = doc;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let Value::Mapping(map) = cur else {
            return Err(format!("{path}: a parent key is not a mapping"));
        };
        let key = Value::String((*part).to_string());
        if i + 1 == parts.len() {
            map.insert(key, value);
            return Ok(());
        }
        cur = map
            .entry(key)
            .or_insert_with(|| Value::Mapping(Default::default()));
    }
    Ok(())
}

/// Default listen IP when the config sets none: loopback (the Docker image
/// passes 0.0.0.0 explicitly).
pub const DEFAULT_LISTEN_IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

#[cfg(test)]
mod tests;
