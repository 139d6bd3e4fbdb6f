//! The chunk cache: parsed chunk objects kept in memory, bounded in bytes,
//! evicting the least recently used.
//!
//! Owns nothing but the cache. It sits in front of remote object stores
//! (S3, R2), where every fetch costs a round trip and money; for the local
//! filesystem backend its capacity is 0 and it is a pass-through, since the
//! OS page cache already keeps hot chunk files in memory. Memory rather than
//! local disk, because lokal's target is a small VM whose disk is the WAL's:
//! a disk cache would compete with the WAL's fsyncs, and a few hundred MiB
//! of hot recent chunks covers the dashboards that re-query the same hours.
//!
//! Invariants: the bytes held never exceed the capacity (an object larger
//! than the capacity is not cached); chunks are immutable, so a cached chunk
//! is never stale; entries of deleted chunks are removed by the compactor.
//! The lock is held only for map operations, never across I/O.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::chunk::Chunk;

/// Counters for /metrics.
#[derive(Debug, Default)]
pub struct CacheCounters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub evictions: AtomicU64,
}

pub struct ChunkCache {
    capacity: u64,
    inner: Mutex<Inner>,
    pub counters: CacheCounters,
}

struct Inner {
    lru: lru::LruCache<String, Arc<Chunk>>,
    bytes: u64,
}

impl std::fmt::Debug for ChunkCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChunkCache({} of {} bytes)", self.bytes(), self.capacity)
    }
}

impl ChunkCache {
    pub fn new(capacity: u64) -> Self {
        ChunkCache {
            capacity,
            inner: Mutex::new(Inner {
                lru: lru::LruCache::unbounded(),
                bytes: 0,
            }),
            counters: CacheCounters::default(),
        }
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Bytes of chunk data held.
    pub fn bytes(&self) -> u64 {
        self.inner.lock().bytes
    }

    pub fn get(&self, key: &str) -> Option<Arc<Chunk>> {
        if self.capacity == 0 {
            return None;
        }
        let found = self.inner.lock().lru.get(key).cloned();
        let counter = match found {
            Some(_) => &self.counters.hits,
            None => &self.counters.misses,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Caches `chunk`, evicting the least recently used until it fits.
    pub fn insert(&self, key: String, chunk: Arc<Chunk>) {
        let size = chunk.data().len() as u64;
        if size > self.capacity {
            return;
        }
        let mut inner = self.inner.lock();
        if let Some(old) = inner.lru.put(key, chunk) {
            inner.bytes -= old.data().len() as u64;
        }
        inner.bytes += size;
        while inner.bytes > self.capacity {
            let Some((_, evicted)) = inner.lru.pop_lru() else {
                break;
            };
            inner.bytes -= evicted.data().len() as u64;
            self.counters.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn remove(&self, key: &str) {
        let mut inner = self.inner.lock();
        if let Some(old) = inner.lru.pop(key) {
            inner.bytes -= old.data().len() as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Entry, TenantId, Timestamp};
    use crate::store::chunk::{ChunkHeader, Codec, HeadBlock, encode_chunk};

    fn chunk(lines: usize) -> Arc<Chunk> {
        let mut b = HeadBlock::new();
        for i in 0..lines {
            b.push_entry(&Entry::new(
                Timestamp::from_secs(i as i64),
                format!("line {i} {}", "y".repeat(i * 7 % 40)),
            ));
        }
        let sealed = b.seal(Codec::Snappy).unwrap();
        let header = ChunkHeader::for_blocks(
            TenantId::new("t").unwrap(),
            "{a=\"b\"}",
            Codec::Snappy,
            std::slice::from_ref(&sealed),
        );
        Arc::new(Chunk::parse(encode_chunk(&header, &[sealed])).unwrap())
    }

    #[test]
    fn bounded_in_bytes_and_least_recently_used_goes_first() {
        let (a, b, c) = (chunk(50), chunk(60), chunk(70));
        let cap = a.data().len() + b.data().len() + 10;
        let cache = ChunkCache::new(cap as u64);
        cache.insert("a".into(), a.clone());
        cache.insert("b".into(), b.clone());
        assert!(cache.get("a").is_some(), "a is now the most recent");
        cache.insert("c".into(), c.clone());
        assert!(cache.bytes() <= cap as u64);
        assert!(cache.get("b").is_none(), "b was the least recently used");
        assert!(cache.get("c").is_some());
        cache.remove("c");
        assert!(cache.get("c").is_none());
        assert_eq!(
            cache.bytes(),
            cache.get("a").map_or(0, |a| a.data().len() as u64)
        );
        assert!(cache.counters.evictions.load(Ordering::Relaxed) >= 1);
    }

    #[test]
    fn zero_capacity_is_a_pass_through() {
        let cache = ChunkCache::new(0);
        cache.insert("a".into(), chunk(5));
        assert!(cache.get("a").is_none());
        assert_eq!(cache.bytes(), 0);
    }
}
