//! Per-tenant limits: Loki's `limits_config` keys and defaults, and the
//! per-tenant overrides of the runtime configuration file.
//!
//! Consumers do not read [`Limits`] directly everywhere: each declares the
//! narrow trait of limits it reads (ingest, queries, retention) and implements
//! it for [`Overrides`], so tests can supply a tiny fake instead of a config.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::config::units::{ByteSize, ConfigDuration};

/// Loki's `limits_config` (the subset lokal enforces), with Loki's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    pub ingestion_rate_mb: f64,
    pub ingestion_burst_size_mb: f64,
    pub per_stream_rate_limit: ByteSize,
    pub per_stream_rate_limit_burst: ByteSize,
    pub max_global_streams_per_user: usize,
    pub max_line_size: ByteSize,
    pub max_line_size_truncate: bool,
    pub max_label_names_per_series: usize,
    pub max_label_name_length: usize,
    pub max_label_value_length: usize,
    pub reject_old_samples: bool,
    pub reject_old_samples_max_age: ConfigDuration,
    pub creation_grace_period: ConfigDuration,
    pub unordered_writes: bool,
    pub increment_duplicate_timestamp: bool,
    pub allow_structured_metadata: bool,
    pub max_structured_metadata_size: ByteSize,
    pub max_structured_metadata_entries_count: usize,
    pub discover_service_name: Vec<String>,
    pub discover_log_levels: bool,
    pub log_level_fields: Vec<String>,
    pub max_entries_limit_per_query: usize,
    pub max_query_series: usize,
    /// lokal's own (Loki has no such limit): the most series a range
    /// aggregation may extract before it is aggregated, which bounds its
    /// memory. `0` means no limit.
    pub max_query_inner_series: usize,
    pub max_query_length: ConfigDuration,
    pub max_query_lookback: ConfigDuration,
    pub max_query_range: ConfigDuration,
    pub max_query_bytes_read: ByteSize,
    pub query_timeout: ConfigDuration,
    pub max_concurrent_tail_requests: usize,
    pub volume_enabled: bool,
    pub volume_max_series: usize,
    pub retention_period: ConfigDuration,
    pub retention_stream: Vec<StreamRetention>,
}

/// One `retention_stream` rule: streams matching `selector` keep their
/// entries for `period`. Among the rules a stream matches, the highest
/// `priority` wins; among equal priorities, the shortest period (Loki's
/// `TenantsRetention.RetentionPeriodFor`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamRetention {
    pub selector: String,
    #[serde(default)]
    pub priority: i64,
    pub period: ConfigDuration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            ingestion_rate_mb: 4.0,
            ingestion_burst_size_mb: 6.0,
            per_stream_rate_limit: ByteSize(3 << 20),
            per_stream_rate_limit_burst: ByteSize(15 << 20),
            max_global_streams_per_user: 5000,
            // Loki sets "256KB" through humanize, where KB is 1000 bytes.
            max_line_size: ByteSize(256_000),
            max_line_size_truncate: false,
            max_label_names_per_series: 15,
            max_label_name_length: 1024,
            max_label_value_length: 2048,
            reject_old_samples: true,
            reject_old_samples_max_age: ConfigDuration::secs(7 * 86_400),
            creation_grace_period: ConfigDuration::secs(600),
            unordered_writes: true,
            increment_duplicate_timestamp: false,
            allow_structured_metadata: true,
            max_structured_metadata_size: ByteSize(64_000),
            max_structured_metadata_entries_count: 128,
            discover_service_name: [
                "service",
                "app",
                "application",
                "app_name",
                "name",
                "app_kubernetes_io_name",
                "container",
                "container_name",
                "k8s_container_name",
                "component",
                "workload",
                "job",
                "k8s_job_name",
            ]
            .map(String::from)
            .to_vec(),
            discover_log_levels: true,
            // Loki's `DefaultLogLevelFields` (pkg/validation/limits.go).
            log_level_fields: [
                "level",
                "LEVEL",
                "Level",
                "log.level",
                "severity",
                "SEVERITY",
                "Severity",
                "SeverityText",
                "lvl",
                "LVL",
                "Lvl",
            ]
            .map(String::from)
            .to_vec(),
            max_entries_limit_per_query: 5000,
            max_query_series: 500,
            max_query_inner_series: 1_000_000,
            max_query_length: ConfigDuration::secs(721 * 3600),
            max_query_lookback: ConfigDuration::ZERO,
            max_query_range: ConfigDuration::ZERO,
            max_query_bytes_read: ByteSize(0),
            query_timeout: ConfigDuration::secs(60),
            max_concurrent_tail_requests: 10,
            volume_enabled: true,
            volume_max_series: 1000,
            retention_period: ConfigDuration::ZERO,
            retention_stream: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OverridesError {
    #[error("reading runtime config {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("parsing runtime config {path}: {message}")]
    Parse { path: String, message: String },
}

/// The effective limits of every tenant: the `limits_config` defaults plus
/// per-tenant overrides from the runtime configuration file.
#[derive(Debug)]
pub struct Overrides {
    defaults: Arc<Limits>,
    /// Whether retention runs: per-tenant retention periods are then held to
    /// the same 24h minimum as `limits_config`.
    retention_enabled: bool,
    tenants: RwLock<HashMap<String, Arc<Limits>>>,
}

/// The runtime configuration file: `overrides: {tenant: {limit: value}}`.
#[derive(Debug, Default, Deserialize)]
struct RuntimeFile {
    #[serde(default)]
    overrides: HashMap<String, serde_yaml_ng::Value>,
}

impl Overrides {
    pub fn new(defaults: Limits) -> Self {
        Overrides {
            defaults: Arc::new(defaults),
            retention_enabled: true,
            tenants: RwLock::new(HashMap::new()),
        }
    }

    /// Whether `compactor.retention_enabled` is set (true unless told): the
    /// override file is then validated as the main config is.
    pub fn with_retention_enabled(mut self, enabled: bool) -> Self {
        self.retention_enabled = enabled;
        self
    }

    pub fn defaults(&self) -> &Arc<Limits> {
        &self.defaults
    }

    /// The limits in force for `tenant`.
    pub fn get(&self, tenant: &str) -> Arc<Limits> {
        self.tenants
            .read()
            .get(tenant)
            .cloned()
            .unwrap_or_else(|| self.defaults.clone())
    }

    /// Replaces every tenant override with those of a runtime config document.
    /// Keys a tenant does not set keep the `limits_config` default. Each
    /// tenant's merged limits pass the checks `limits_config` passes (the
    /// 24h retention minimum, selectors, …); one failing tenant rejects the
    /// whole document and the previous overrides stay in force.
    pub fn apply_runtime_yaml(&self, yaml: &str, path: &str) -> Result<usize, OverridesError> {
        let parse_err = |message: String| OverridesError::Parse {
            path: path.to_string(),
            message,
        };
        let file: RuntimeFile = if yaml.trim().is_empty() {
            RuntimeFile::default()
        } else {
            serde_yaml_ng::from_str(yaml).map_err(|e| parse_err(e.to_string()))?
        };
        let base =
            serde_yaml_ng::to_value(&*self.defaults).map_err(|e| parse_err(e.to_string()))?;
        let mut tenants = HashMap::with_capacity(file.overrides.len());
        for (tenant, value) in file.overrides {
            let mut merged = base.clone();
            if let (Some(dst), serde_yaml_ng::Value::Mapping(src)) =
                (merged.as_mapping_mut(), value)
            {
                for (k, v) in src {
                    dst.insert(k, v);
                }
            }
            let limits: Limits = serde_yaml_ng::from_value(merged)
                .map_err(|e| parse_err(format!("tenant {tenant}: {e}")))?;
            crate::config::raw::validate_limits(
                &limits,
                self.retention_enabled,
                &format!("overrides.{tenant}"),
            )
            .map_err(|e| parse_err(e.to_string()))?;
            tenants.insert(tenant, Arc::new(limits));
        }
        let n = tenants.len();
        *self.tenants.write() = tenants;
        Ok(n)
    }

    /// Reads and applies the runtime configuration file.
    pub fn load_runtime_file(&self, path: &Path) -> Result<usize, OverridesError> {
        let p = path.display().to_string();
        let yaml = std::fs::read_to_string(path).map_err(|source| OverridesError::Read {
            path: p.clone(),
            source,
        })?;
        self.apply_runtime_yaml(&yaml, &p)
    }

    /// Tenants that have overrides.
    pub fn overridden_tenants(&self) -> Vec<String> {
        self.tenants.read().keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_overrides_merge_onto_defaults() {
        let o = Overrides::new(Limits {
            retention_period: ConfigDuration::secs(720 * 3600),
            ..Limits::default()
        });
        let n = o
            .apply_runtime_yaml(
                "overrides:\n  team-a:\n    retention_period: 168h\n    max_query_series: 42\n",
                "rt.yaml",
            )
            .unwrap();
        assert_eq!(n, 1);
        let a = o.get("team-a");
        assert_eq!(a.retention_period, ConfigDuration::secs(168 * 3600));
        assert_eq!(a.max_query_series, 42);
        assert_eq!(
            a.max_line_size,
            ByteSize(256_000),
            "unset keys keep the default"
        );
        assert_eq!(
            o.get("other").retention_period,
            ConfigDuration::secs(720 * 3600)
        );
        o.apply_runtime_yaml("", "rt.yaml").unwrap();
        assert_eq!(
            o.get("team-a").max_query_series,
            500,
            "reload replaces overrides"
        );
    }

    #[test]
    fn bad_retention_selector_is_an_error() {
        let o = Overrides::new(Limits::default());
        let err = o.apply_runtime_yaml(
            "overrides:\n  t:\n    retention_stream:\n      - selector: '{app=}'\n        period: 48h\n",
            "rt.yaml",
        );
        assert!(matches!(err, Err(OverridesError::Parse { .. })), "{err:?}");
        let ok = o.apply_runtime_yaml(
            "overrides:\n  t:\n    retention_stream:\n      - selector: '{app=\"x\"}'\n        priority: 2\n        period: 48h\n",
            "rt.yaml",
        );
        assert_eq!(ok.unwrap(), 1);
        assert_eq!(o.get("t").retention_stream[0].priority, 2);
    }

    /// Regression (issue 5 audit): `overrides: {t1: {retention_period: 1h}}`
    /// was accepted and expired t1's data older than an hour.
    #[test]
    fn override_retention_below_24h_is_refused_and_previous_kept() {
        let o = Overrides::new(Limits::default());
        o.apply_runtime_yaml("overrides:\n  t1:\n    retention_period: 48h\n", "rt.yaml")
            .unwrap();
        let err = o
            .apply_runtime_yaml("overrides:\n  t1:\n    retention_period: 1h\n", "rt.yaml")
            .unwrap_err();
        assert!(err.to_string().contains("24h minimum"), "{err}");
        assert!(err.to_string().contains("overrides.t1"), "{err}");
        assert_eq!(
            o.get("t1").retention_period,
            ConfigDuration::secs(48 * 3600),
            "the previous overrides stay in force"
        );
        let err = o.apply_runtime_yaml(
            "overrides:\n  t1:\n    retention_stream:\n      - selector: '{app=\"x\"}'\n        period: 2h\n",
            "rt.yaml",
        );
        assert!(err.is_err(), "retention_stream periods too: {err:?}");
        // 0 (keep forever) is allowed, and with retention off nothing expires,
        // so short periods are accepted as the main config accepts them.
        o.apply_runtime_yaml("overrides:\n  t1:\n    retention_period: 0s\n", "rt.yaml")
            .unwrap();
        let off = Overrides::new(Limits::default()).with_retention_enabled(false);
        off.apply_runtime_yaml("overrides:\n  t1:\n    retention_period: 1h\n", "rt.yaml")
            .unwrap();
    }

    #[test]
    fn bad_override_is_an_error() {
        let o = Overrides::new(Limits::default());
        let err = o.apply_runtime_yaml(
            "overrides:\n  t:\n    retention_period: forever\n",
            "rt.yaml",
        );
        assert!(matches!(err, Err(OverridesError::Parse { .. })));
    }
}
