//! Wiring: opens storage (replaying the WAL), builds the ingest and query
//! services and the HTTP router, runs the background loops, and shuts down
//! gracefully — stop accepting requests, flush heads to chunks, sync the WAL.

mod listener;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::api::{self, AppState};
use crate::config::{ChunkEncoding, Config};
use crate::ingest::{Appended, Distributor, IngestSink, SinkError};
use crate::limits::Overrides;
use crate::model::{Entry, Labels, TenantId};
use crate::store::chunk::Codec;
use crate::store::compactor::clock::SystemClock;
use crate::store::compactor::retention::RetentionLimits;
use crate::store::compactor::{Compactor, CompactorSettings};
use crate::store::head::HeadConfig;
use crate::store::object::ObjectStorage;
use crate::store::{Store, StoreConfig, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("opening storage: {0}")]
    Storage(#[from] StoreError),
    #[error("opening the object store: {0}")]
    Object(#[from] crate::store::object::ObjectError),
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("serving HTTP: {0}")]
    Serve(std::io::Error),
    #[error("loading runtime config: {0}")]
    Runtime(#[from] crate::limits::OverridesError),
}

/// The store is where ingest writes.
struct StoreSink(Arc<Store>);

impl IngestSink for StoreSink {
    fn has_stream(&self, tenant: &TenantId, labels: &Labels) -> bool {
        self.0.has_stream(tenant, labels)
    }

    fn active_streams(&self, tenant: &TenantId) -> usize {
        self.0.active_streams(tenant)
    }

    fn admit(&self, _tenant: &TenantId) -> Result<(), SinkError> {
        self.0.admit().map_err(|e| SinkError {
            retryable: e.is_retryable(),
            message: e.to_string(),
        })
    }

    fn append(
        &self,
        tenant: &TenantId,
        labels: &Labels,
        entries: Vec<Entry>,
    ) -> Result<Appended, SinkError> {
        let out = self
            .0
            .append(tenant, labels, entries)
            .map_err(|e| SinkError {
                retryable: e.is_retryable(),
                message: e.to_string(),
            })?;
        Ok(Appended {
            lsn: out.lsn.map(|l| l.0),
            accepted: out.accepted,
            too_far_behind: out.too_far_behind,
            too_far_behind_bytes: out.too_far_behind_bytes,
        })
    }
}

pub fn store_config(config: &Config) -> StoreConfig {
    StoreConfig {
        head: HeadConfig {
            codec: match config.ingester.chunk_encoding {
                ChunkEncoding::Zstd => Codec::Zstd,
                ChunkEncoding::Snappy => Codec::Snappy,
            },
            block_size: config.ingester.chunk_block_size,
            chunk_target_size: config.ingester.chunk_target_size,
            chunk_idle_period: config.ingester.chunk_idle_period,
            max_chunk_age: config.ingester.max_chunk_age,
        },
        wal_dir: config.storage.wal_dir.clone(),
        index_dir: config.storage.index_dir.clone(),
        wal_segment_size: 64 << 20,
        flush_workers: 4,
        chunk_cache_bytes: config.storage.chunk_cache_bytes,
        max_head_memory: config.ingester.max_head_memory,
    }
}

pub fn compactor_settings(config: &Config) -> CompactorSettings {
    CompactorSettings {
        retention_enabled: config.compactor.retention_enabled,
        delete_delay: config.compactor.retention_delete_delay,
        delete_cancel_period: config.compactor.delete_request_cancel_period,
        dry_run: config.compactor.dry_run,
        max_merges: 1000,
    }
}

/// Runs lokal until SIGTERM or Ctrl-C.
pub async fn run(config: Config) -> Result<(), ServerError> {
    let config = Arc::new(config);
    let overrides = Arc::new(
        Overrides::new(config.limits.clone())
            .with_retention_enabled(config.compactor.retention_enabled),
    );
    if let Some(rt) = &config.runtime_config {
        overrides.load_runtime_file(&rt.file)?;
    }
    let objects = ObjectStorage::open(&config.storage.backend)?;
    let cfg = store_config(&config);
    let started = std::time::Instant::now();
    let store = Store::open(cfg, objects).await?;
    let opened_in = started.elapsed();
    tracing::info!(
        replayed_entries = store.counters.wal_replayed_entries.load(Ordering::Relaxed),
        streams = store.head().stream_count(),
        elapsed = ?opened_in,
        "storage open"
    );
    let mut background = store.start(config.ingester.flush_check_period);
    let compactor = Arc::new(Compactor::new(
        store.clone(),
        overrides.clone() as Arc<dyn RetentionLimits>,
        api::delete::delete_query_parser(),
        Arc::new(SystemClock),
        compactor_settings(&config),
    ));
    background.push(compactor.start(config.compactor.compaction_interval));
    let distributor = Arc::new(Distributor::new(
        Arc::new(StoreSink(store.clone())),
        overrides.clone(),
    ));
    let engine = Arc::new(crate::logql::eval::Engine::new(
        store.clone(),
        overrides.clone(),
    ));
    let metrics = Arc::new(api::metrics::Metrics::new(
        store.clone(),
        distributor.clone(),
        opened_in,
    ));
    let state = Arc::new(AppState {
        config: config.clone(),
        store: store.clone(),
        distributor,
        engine,
        overrides: overrides.clone(),
        metrics,
        ready: Default::default(),
        decode: api::push_decode::DecodeLimits {
            max_decompressed: config.distributor.max_decompressed_size,
            // Two bodies of the largest size may decompress at once.
            budget: api::push_decode::DecodeBudget::new(
                config.distributor.max_decompressed_size.saturating_mul(2),
            ),
        },
    });
    if let Some(rt) = config.runtime_config.clone() {
        let o = overrides.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(rt.period);
            loop {
                tick.tick().await;
                if let Err(e) = o.load_runtime_file(&rt.file) {
                    tracing::warn!(error = %e, "reloading runtime config failed; keeping the previous overrides");
                }
            }
        });
    }
    let addr = config.server.http_listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: addr.to_string(),
            source,
        })?;
    let local = listener.local_addr().map_err(ServerError::Serve)?;
    state.ready.store(true, Ordering::Release);
    tracing::info!(address = %local, "lokal listening on http://{local}");
    let app = api::router(state.clone());
    axum::serve(listener::MessageListener(listener), app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(ServerError::Serve)?;
    state.ready.store(false, Ordering::Release);
    tracing::info!("shutting down: flushing heads to chunks");
    store
        .shutdown(config.ingester.flush_on_shutdown, Duration::from_secs(60))
        .await;
    for h in background {
        h.abort();
    }
    tracing::info!("shutdown complete");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
