use std::collections::HashMap;

use super::*;

fn load(yaml: &str) -> Result<Loaded, ConfigError> {
    Config::load(Sources {
        yaml: Some(("test.yaml", yaml)),
        ..Default::default()
    })
}

/// The loki-config.yml of lokal's target users (issue 2), also started by
/// tests/push_errors.rs.
const TARGET_USERS: &str = include_str!("../../tests/data/target-users-loki-config.yml");

#[test]
fn target_users_config_loads_unchanged() {
    let loaded = load(TARGET_USERS).unwrap();
    let c = loaded.config;
    assert!(!c.auth_enabled);
    assert_eq!(c.server.http_listen.to_string(), "127.0.0.1:3100");
    assert_eq!(
        c.storage.backend,
        ObjectBackend::Filesystem {
            directory: "/loki/chunks".into()
        }
    );
    assert_eq!(c.storage.wal_dir, PathBuf::from("/loki/wal"));
    assert_eq!(
        c.limits.retention_period.get(),
        Duration::from_secs(720 * 3600)
    );
    assert_eq!(c.limits.ingestion_burst_size_mb, 8.0);
    assert!(c.compactor.retention_enabled);
    assert_eq!(
        c.compactor.retention_delete_delay,
        Duration::from_secs(7200)
    );
    // rules_directory, replication_factor and ring mean nothing to lokal.
    assert!(
        loaded.ignored.iter().any(|k| k.contains("rules_directory")),
        "{:?}",
        loaded.ignored
    );
}

#[test]
fn embedded_default() {
    let loaded = Config::load(Sources::default()).unwrap();
    let c = loaded.config;
    assert!(!c.auth_enabled);
    assert_eq!(c.server.http_listen.to_string(), "127.0.0.1:3100");
    assert_eq!(
        c.storage.backend,
        ObjectBackend::Filesystem {
            directory: "./data/chunks".into()
        }
    );
    assert_eq!(c.ingester.chunk_target_size, 1_572_864);
    assert_eq!(c.ingester.max_chunk_age, Duration::from_secs(7200));
    assert!(loaded.ignored.is_empty());
}

#[test]
fn unknown_top_level_section_is_an_error_naming_it() {
    let err = load("auth_enabled: true\nbogus_section: {a: 1}\n").unwrap_err();
    assert!(err.to_string().contains("bogus_section"), "{err}");
}

#[test]
fn known_but_unused_sections_are_reported() {
    let loaded =
        load("memberlist: {join_members: [a]}\nquerier: {max_concurrent: 8, whatever: 1}\n")
            .unwrap();
    assert!(loaded.ignored.contains(&"memberlist".to_string()));
    assert!(
        loaded.ignored.iter().any(|k| k.ends_with("whatever")),
        "{:?}",
        loaded.ignored
    );
    assert_eq!(loaded.config.querier.max_concurrent, 8);
    assert!(
        loaded.config.auth_enabled,
        "Loki's default when a file omits it"
    );
}

#[test]
fn flags_override_yaml() {
    let loaded = Config::load(Sources {
        yaml: Some(("t.yaml", TARGET_USERS)),
        flags: vec![
            ("server.http-listen-port".into(), "0".into()),
            ("server.http-listen-address".into(), "0.0.0.0".into()),
            ("validation.reject-old-samples".into(), "false".into()),
        ],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(loaded.config.server.http_listen.to_string(), "0.0.0.0:0");
    assert!(!loaded.config.limits.reject_old_samples);
    let err = Config::load(Sources {
        flags: vec![("no.such-flag".into(), "1".into())],
        ..Default::default()
    });
    assert!(matches!(err, Err(ConfigError::Flag { .. })));
}

#[test]
fn expands_env_when_asked() {
    let env = HashMap::from([("PORT".to_string(), "3999".to_string())]);
    let loaded = Config::load(Sources {
        yaml: Some((
            "t.yaml",
            "server:\n  http_listen_port: ${PORT}\n  log_level: ${LVL:-warn}\n",
        )),
        expand_env: true,
        env,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(loaded.config.server.http_listen.port(), 3999);
    assert_eq!(loaded.config.server.log_level, "warn");
}

#[test]
fn s3_from_loki_keys() {
    let loaded = load(
        "common:\n  storage:\n    s3:\n      endpoint: 127.0.0.1:9000\n      bucketnames: logs\n      access_key_id: K\n      secret_access_key: S\n      s3forcepathstyle: true\n      insecure: true\n",
    )
    .unwrap();
    let ObjectBackend::S3(s3) = &loaded.config.storage.backend else {
        panic!("expected s3")
    };
    assert_eq!(s3.endpoint, "http://127.0.0.1:9000");
    assert_eq!(s3.bucket, "logs");
    assert_eq!(
        s3.region, "",
        "unset: AWS_REGION or object_store's default apply"
    );
    assert!(!loaded.config.to_yaml().contains("secret_access_key: S"));
    assert!(format!("{s3:?}").contains("<redacted>"));
}

fn s3_of(loaded: &Loaded) -> &S3Config {
    match &loaded.config.storage.backend {
        ObjectBackend::S3(s3) => s3,
        other => panic!("expected s3, got {other:?}"),
    }
}

/// Regression (issue 5 audit): `us-east-1` was filled in when no region was
/// configured, overriding the region the environment supplies.
#[test]
fn s3_region_is_left_unset_unless_configured() {
    // storage_config.aws, no region; credentials from the environment.
    let l = load("storage_config:\n  aws:\n    bucketnames: logs\n    endpoint: s3.example.com\n")
        .unwrap();
    let s3 = s3_of(&l);
    assert_eq!(s3.region, "");
    assert_eq!(s3.access_key_id, "", "left to AWS_ACCESS_KEY_ID");
    assert_eq!(s3.endpoint, "https://s3.example.com");
    // storage_config.aws with a region.
    let l =
        load("storage_config:\n  aws:\n    bucketnames: logs\n    region: eu-central-1\n").unwrap();
    assert_eq!(s3_of(&l).region, "eu-central-1");
    // common.storage.s3 with R2's region.
    let l = load("common:\n  storage:\n    s3:\n      bucketnames: logs\n      region: auto\n      endpoint: acc.r2.cloudflarestorage.com\n").unwrap();
    assert_eq!(s3_of(&l).region, "auto");
    // Credentials through -config.expand-env.
    let l = Config::load(Sources {
        yaml: Some((
            "test.yaml",
            "common:\n  storage:\n    s3:\n      bucketnames: logs\n      access_key_id: ${KEY}\n      secret_access_key: ${SECRET}\n",
        )),
        expand_env: true,
        env: HashMap::from([
            ("KEY".to_string(), "AKIA1".to_string()),
            ("SECRET".to_string(), "s3cr3t".to_string()),
        ]),
        ..Default::default()
    })
    .unwrap();
    let s3 = s3_of(&l);
    assert_eq!(
        (s3.access_key_id.as_str(), s3.region.as_str()),
        ("AKIA1", "")
    );
    assert_eq!(s3.secret_access_key, "s3cr3t");
    // The s3:// URL form: a host without dots is a region; with one, an
    // endpoint (and the region stays unset).
    let l = load("storage_config:\n  aws:\n    s3: s3://K:S@eu-west-1/logs\n").unwrap();
    let s3 = s3_of(&l);
    assert_eq!(
        (s3.region.as_str(), s3.bucket.as_str()),
        ("eu-west-1", "logs")
    );
    assert_eq!(s3.access_key_id, "K");
    let l = load("storage_config:\n  aws:\n    s3: s3://minio.local:9000/logs\n").unwrap();
    let s3 = s3_of(&l);
    assert_eq!(
        (s3.region.as_str(), s3.endpoint.as_str()),
        ("", "https://minio.local:9000")
    );
}

/// Regression (issue 5 audit): `embedded_cache.enabled: false` fell back to
/// the 256 MB default.
#[test]
fn disabled_embedded_cache_means_no_cache() {
    let base = "common: {storage: {s3: {bucketnames: b, endpoint: 'http://x:1'}}}\n";
    let c = load(&format!(
        "{base}chunk_store_config: {{chunk_cache_config: {{embedded_cache: {{enabled: false, max_size_mb: 10}}}}}}\n"
    ))
    .unwrap()
    .config;
    assert_eq!(c.storage.chunk_cache_bytes, 0);
    let c = load(&format!(
        "{base}chunk_store_config: {{chunk_cache_config: {{embedded_cache: {{enabled: true}}}}}}\n"
    ))
    .unwrap()
    .config;
    assert_eq!(c.storage.chunk_cache_bytes, 256 << 20);
    let c = load(base).unwrap().config;
    assert_eq!(
        c.storage.chunk_cache_bytes,
        256 << 20,
        "absent: the default"
    );
}

#[test]
fn invalid_values_are_reported() {
    assert!(load("limits_config: {retention_period: soon}\n").is_err());
    assert!(load("ingester: {chunk_encoding: lz4-256k}\n").is_err());
    assert!(load("server: {http_listen_address: not-an-ip}\n").is_err());
    let e = load("compactor: {retention_enabled: true}\nlimits_config: {retention_period: 1h}\n")
        .unwrap_err();
    assert!(e.to_string().contains("24h"), "{e}");
}

#[test]
fn head_memory_limit_cache_and_compactor_keys() {
    let c = load(
        "ingester: {max_head_memory: 64MB}\ncompactor: {delete_max_interval: 1h, delete_request_cancel_period: 10m}\n",
    )
    .unwrap()
    .config;
    assert_eq!(c.ingester.max_head_memory, 64_000_000);
    assert_eq!(c.compactor.delete_max_interval, Duration::from_secs(3600));
    assert_eq!(
        c.compactor.delete_request_cancel_period,
        Duration::from_secs(600)
    );
    assert_eq!(
        c.storage.chunk_cache_bytes, 0,
        "the page cache serves local chunks"
    );
    let d = load("").unwrap().config;
    assert_eq!(d.ingester.max_head_memory, DEFAULT_MAX_HEAD_MEMORY);
    let s3 = load(
        "common: {storage: {s3: {bucketnames: b, endpoint: 'http://x:1'}}}\nchunk_store_config: {chunk_cache_config: {embedded_cache: {max_size_mb: 10}}}\n",
    )
    .unwrap()
    .config;
    assert_eq!(s3.storage.chunk_cache_bytes, 10 << 20);
    let bad =
        load("limits_config: {retention_stream: [{selector: '{app=~\".*\"}', period: 48h}]}\n");
    assert!(
        matches!(&bad, Err(ConfigError::Invalid(m)) if m.contains("retention_stream selector")),
        "{bad:?}"
    );
}
