//! The [`Wal`] handle and its writer thread: group commit, rotation,
//! durability notification, fail-stop.
//!
//! Appenders encode on their own thread into a reusable thread-local buffer,
//! then, under one short lock, take the next LSN, finish the frame's CRC and
//! copy the frame into the pending batch. The writer thread swaps the batch
//! out, writes it, fdatasyncs, and publishes the new durable LSN; everything
//! appended while it was busy goes into the next batch and shares the next
//! fsync. No lock is held across I/O.
//!
//! Invariants:
//! - LSNs are assigned under the pending lock in the order frames enter the
//!   batch, so the file is in LSN order and a thread's appends are FIFO.
//! - The durable LSN only grows, and only after the fsync covering it.
//! - After a write or fsync error the WAL never writes again (fail-stop).

use std::cell::RefCell;
use std::fs::File;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use super::record::{self, RecordRef};
use super::segment::{self, Replay, io_error};
use super::{Lsn, WalError, WalOptions, WalStats};

/// A batch buffer that grew beyond this is dropped after use rather than kept.
const MAX_RETAINED_BUFFER: usize = 16 << 20;

thread_local! {
    /// Per-thread encoding buffer, reused across appends.
    static ENCODE_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// What appenders hand to the writer thread.
struct PendingBatch {
    frames: Vec<u8>,
    next_lsn: Lsn,
    rotations_requested: u64,
    shutdown: bool,
    failure: Option<Arc<str>>,
}

/// What the writer thread tells waiters.
#[derive(Clone, Debug, Default)]
struct DurableState {
    durable: Lsn,
    rotations_done: u64,
    failure: Option<Arc<str>>,
    stopped: bool,
}

impl DurableState {
    /// Whether waiting for `lsn` is over, one way or the other.
    fn settles(&self, lsn: Lsn) -> bool {
        self.durable >= lsn || self.failure.is_some() || self.stopped
    }

    fn outcome(&self, lsn: Lsn) -> Result<(), WalError> {
        if self.durable >= lsn {
            Ok(())
        } else if let Some(reason) = &self.failure {
            Err(WalError::Failed {
                reason: reason.clone(),
            })
        } else {
            Err(WalError::Closed)
        }
    }
}

#[derive(Default)]
struct Counters {
    records_appended: AtomicU64,
    bytes_written: AtomicU64,
    fsyncs: AtomicU64,
    segments_created: AtomicU64,
    segments_removed: AtomicU64,
}

struct Shared {
    dir: PathBuf,
    segment_size: u64,
    pending: Mutex<PendingBatch>,
    /// Signalled when the pending batch gains work for the writer.
    work_ready: Condvar,
    durable: Mutex<DurableState>,
    /// Signalled whenever `durable` changes (blocking waiters).
    durable_changed: Condvar,
    /// Mirrors `durable` for async waiters.
    durable_watch: watch::Sender<DurableState>,
    /// First LSN of every live segment, ascending; the last is the active one.
    segments: Mutex<Vec<Lsn>>,
    counters: Counters,
    #[cfg(test)]
    fail_next_write: std::sync::atomic::AtomicBool,
}

impl Shared {
    fn publish(&self, update: impl Fn(&mut DurableState)) {
        {
            let mut state = self.durable.lock();
            update(&mut state);
        }
        self.durable_changed.notify_all();
        self.durable_watch.send_modify(update);
    }

    /// Fail-stop: refuse appends, wake every waiter with the error.
    fn fail(&self, error: &WalError) {
        let reason: Arc<str> = Arc::from(error.to_string());
        tracing::error!(%error, "wal write failed; refusing further writes");
        {
            let mut pending = self.pending.lock();
            pending.failure = Some(reason.clone());
            pending.frames = Vec::new();
        }
        self.publish(|state| {
            state.failure = Some(reason.clone());
            state.stopped = true;
        });
    }

    fn wait_blocking(&self, done: impl Fn(&DurableState) -> bool) -> DurableState {
        let mut state = self.durable.lock();
        while !done(&state) {
            self.durable_changed.wait(&mut state);
        }
        state.clone()
    }
}

/// The segment being appended to.
struct ActiveSegment {
    file: File,
    path: PathBuf,
    len: u64,
    has_records: bool,
}

impl ActiveSegment {
    fn write_durably(&mut self, frames: &[u8]) -> Result<(), WalError> {
        self.file
            .write_all(frames)
            .map_err(|e| io_error("write", &self.path, e))?;
        self.file
            .sync_data()
            .map_err(|e| io_error("fdatasync", &self.path, e))?;
        self.len += frames.len() as u64;
        self.has_records = true;
        Ok(())
    }
}

/// The write-ahead log. Share it between threads (`&Wal` or `Arc<Wal>`);
/// every method takes `&self` except [`Wal::shutdown`].
pub struct Wal {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

impl Wal {
    /// Opens (creating if needed) the WAL in `dir`: recovers the last
    /// segment (truncating a torn tail), starts the writer thread, and
    /// returns the records to replay.
    pub fn open(dir: &Path, options: WalOptions) -> Result<(Wal, Replay), WalError> {
        options.validate()?;
        std::fs::create_dir_all(dir).map_err(|e| io_error("create directory", dir, e))?;
        let mut segments = segment::list_segments(dir)?;
        let counters = Counters::default();

        let (mut active, mut first_lsns, next_lsn, replay) = match segments.pop() {
            None => {
                let (file, path) = segment::create_segment(dir, Lsn(1))?;
                counters.segments_created.fetch_add(1, Ordering::Relaxed);
                let active = ActiveSegment {
                    file,
                    path,
                    len: segment::SEGMENT_HEADER_LEN as u64,
                    has_records: false,
                };
                (
                    active,
                    vec![Lsn(1)],
                    Lsn(1),
                    Replay::new(Vec::new(), None, 0),
                )
            }
            Some(last) => {
                let recovered = segment::recover_last_segment(last)?;
                let first = recovered.segment.first;
                // LSN 0 is never assigned, even if a file is named so.
                let next_lsn = match recovered.last_lsn {
                    Some(lsn) => Lsn(lsn.0.saturating_add(1)).max(first),
                    None => first,
                }
                .max(Lsn(1));
                let active = ActiveSegment {
                    file: recovered.file,
                    path: recovered.segment.path.clone(),
                    len: recovered.data.len() as u64,
                    has_records: recovered.last_lsn.is_some(),
                };
                let mut first_lsns: Vec<Lsn> = segments.iter().map(|s| s.first).collect();
                first_lsns.push(first);
                let replay = Replay::new(
                    segments,
                    Some((recovered.segment, recovered.data)),
                    recovered.dropped_bytes,
                );
                (active, first_lsns, next_lsn, replay)
            }
        };
        if active.has_records && active.len >= options.segment_size {
            let (file, path) = segment::create_segment(dir, next_lsn)?;
            counters.segments_created.fetch_add(1, Ordering::Relaxed);
            active = ActiveSegment {
                file,
                path,
                len: segment::SEGMENT_HEADER_LEN as u64,
                has_records: false,
            };
            first_lsns.push(next_lsn);
        }

        let durable = DurableState {
            durable: Lsn(next_lsn.0 - 1),
            ..DurableState::default()
        };
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            segment_size: options.segment_size,
            pending: Mutex::new(PendingBatch {
                frames: Vec::new(),
                next_lsn,
                rotations_requested: 0,
                shutdown: false,
                failure: None,
            }),
            work_ready: Condvar::new(),
            durable: Mutex::new(durable.clone()),
            durable_changed: Condvar::new(),
            durable_watch: watch::Sender::new(durable),
            segments: Mutex::new(first_lsns),
            counters,
            #[cfg(test)]
            fail_next_write: std::sync::atomic::AtomicBool::new(false),
        });
        let thread_shared = shared.clone();
        let writer = std::thread::Builder::new()
            .name("lokal-wal-writer".to_string())
            .spawn(move || run_writer(thread_shared, active, next_lsn))
            .map_err(|e| io_error("spawn writer thread for", dir, e))?;
        Ok((
            Wal {
                shared,
                writer: Some(writer),
            },
            replay,
        ))
    }

    /// Appends a record to the pending batch and returns its LSN. Encodes on
    /// the calling thread; never does I/O. The record is durable once
    /// [`Wal::wait_durable`] for its LSN returns `Ok`.
    pub fn append(&self, record: RecordRef<'_>) -> Result<Lsn, WalError> {
        ENCODE_BUFFER.with_borrow_mut(|frame| {
            let partial_crc = record::encode_unsequenced(&record, frame)?;
            let lsn = {
                let mut pending = self.shared.pending.lock();
                if let Some(reason) = &pending.failure {
                    return Err(WalError::Failed {
                        reason: reason.clone(),
                    });
                }
                if pending.shutdown {
                    return Err(WalError::Closed);
                }
                let lsn = pending.next_lsn;
                pending.next_lsn = Lsn(lsn.0 + 1);
                record::seal_frame(frame, partial_crc, lsn);
                pending.frames.extend_from_slice(frame);
                lsn
            };
            self.shared.work_ready.notify_one();
            self.shared
                .counters
                .records_appended
                .fetch_add(1, Ordering::Relaxed);
            if frame.capacity() > MAX_RETAINED_BUFFER {
                *frame = Vec::new();
            }
            Ok(lsn)
        })
    }

    /// Resolves once every record up to `lsn` is fsynced, or with the error
    /// that stopped the WAL first. Cancel-safe: dropping the future loses
    /// nothing. Does not borrow the `Wal`.
    pub fn wait_durable(
        &self,
        lsn: Lsn,
    ) -> impl Future<Output = Result<(), WalError>> + Send + 'static {
        let mut receiver = self.shared.durable_watch.subscribe();
        async move {
            match receiver.wait_for(|state| state.settles(lsn)).await {
                Ok(state) => state.outcome(lsn),
                Err(_closed) => Err(WalError::Closed),
            }
        }
    }

    /// [`Wal::wait_durable`] for threads outside an async runtime.
    pub fn wait_durable_blocking(&self, lsn: Lsn) -> Result<(), WalError> {
        self.shared
            .wait_blocking(|state| state.settles(lsn))
            .outcome(lsn)
    }

    /// The highest LSN known durable.
    pub fn durable_lsn(&self) -> Lsn {
        self.shared.durable.lock().durable
    }

    /// The first LSN the oldest live segment may hold: every record below
    /// it is gone from the WAL.
    pub fn first_lsn(&self) -> Lsn {
        let first = self.shared.segments.lock().first().copied();
        first.unwrap_or_else(|| self.next_lsn())
    }

    /// The LSN the next append will get.
    pub fn next_lsn(&self) -> Lsn {
        self.shared.pending.lock().next_lsn
    }

    /// Makes the writer finish the active segment (after writing what is
    /// pending) and start a new one; blocks until it has. A no-op when the
    /// active segment holds no record.
    pub fn rotate(&self) -> Result<(), WalError> {
        let target = {
            let mut pending = self.shared.pending.lock();
            if let Some(reason) = &pending.failure {
                return Err(WalError::Failed {
                    reason: reason.clone(),
                });
            }
            if pending.shutdown {
                return Err(WalError::Closed);
            }
            pending.rotations_requested += 1;
            pending.rotations_requested
        };
        self.shared.work_ready.notify_one();
        let state = self
            .shared
            .wait_blocking(|state| state.rotations_done >= target || state.stopped);
        if state.rotations_done >= target {
            Ok(())
        } else {
            Err(state
                .outcome(Lsn(u64::MAX))
                .err()
                .unwrap_or(WalError::Closed))
        }
    }

    /// Deletes every closed segment whose records all have an LSN below
    /// `lsn` (never the active segment), then fsyncs the directory. Returns
    /// how many were deleted. Blocking file I/O on the calling thread.
    pub fn remove_segments_before(&self, lsn: Lsn) -> Result<usize, WalError> {
        let doomed: Vec<Lsn> = {
            let mut segments = self.shared.segments.lock();
            // Segment i holds LSNs below segment i+1's first.
            let count = segments
                .windows(2)
                .take_while(|pair| pair[1] <= lsn)
                .count();
            segments.drain(..count).collect()
        };
        if doomed.is_empty() {
            return Ok(0);
        }
        let dir = &self.shared.dir;
        for (i, first) in doomed.iter().enumerate() {
            let path = dir.join(segment::segment_file_name(*first));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    // Keep the ones not deleted, so a later call retries.
                    let mut segments = self.shared.segments.lock();
                    segments.splice(0..0, doomed[i..].iter().copied());
                    return Err(io_error("remove", &path, e));
                }
            }
        }
        segment::sync_dir(dir)?;
        self.shared
            .counters
            .segments_removed
            .fetch_add(doomed.len() as u64, Ordering::Relaxed);
        Ok(doomed.len())
    }

    pub fn stats(&self) -> WalStats {
        let c = &self.shared.counters;
        WalStats {
            records_appended: c.records_appended.load(Ordering::Relaxed),
            bytes_written: c.bytes_written.load(Ordering::Relaxed),
            fsyncs: c.fsyncs.load(Ordering::Relaxed),
            segments_created: c.segments_created.load(Ordering::Relaxed),
            segments_removed: c.segments_removed.load(Ordering::Relaxed),
            segments: self.shared.segments.lock().len() as u64,
            durable_lsn: self.durable_lsn(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Writes and fsyncs what is pending, then stops the writer thread.
    /// Later appends fail with [`WalError::Closed`].
    pub fn shutdown(mut self) -> Result<(), WalError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), WalError> {
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        self.shared.pending.lock().shutdown = true;
        self.shared.work_ready.notify_one();
        if writer.join().is_err() {
            return Err(WalError::Failed {
                reason: Arc::from("wal writer thread panicked"),
            });
        }
        match &self.shared.durable.lock().failure {
            Some(reason) => Err(WalError::Failed {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    #[cfg(test)]
    pub(super) fn fail_next_write_for_test(&self) {
        self.shared
            .fail_next_write
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            tracing::error!(%error, "wal shutdown failed");
        }
    }
}

/// Marks the WAL stopped when the writer thread ends, even by a panic, so
/// no waiter waits forever.
struct WriterExit(Arc<Shared>);

impl Drop for WriterExit {
    fn drop(&mut self) {
        let panicked = std::thread::panicking();
        self.0.publish(|state| {
            if panicked && state.failure.is_none() {
                state.failure = Some(Arc::from("wal writer thread panicked"));
            }
            state.stopped = true;
        });
        if panicked {
            self.0.pending.lock().failure = Some(Arc::from("wal writer thread panicked"));
        }
    }
}

fn run_writer(shared: Arc<Shared>, mut active: ActiveSegment, next_lsn: Lsn) {
    let _exit = WriterExit(shared.clone());
    let mut batch = Vec::new();
    let mut written_through = Lsn(next_lsn.0 - 1);
    let mut rotations_done = 0u64;
    loop {
        let (last_lsn, rotations_requested, shutdown) = {
            let mut pending = shared.pending.lock();
            while pending.frames.is_empty()
                && !pending.shutdown
                && pending.rotations_requested == rotations_done
                && pending.failure.is_none()
            {
                shared.work_ready.wait(&mut pending);
            }
            if pending.failure.is_some() {
                return;
            }
            std::mem::swap(&mut pending.frames, &mut batch);
            (
                Lsn(pending.next_lsn.0 - 1),
                pending.rotations_requested,
                pending.shutdown,
            )
        };

        if !batch.is_empty() {
            if let Err(error) = write_batch(&shared, &mut active, &batch) {
                shared.fail(&error);
                return;
            }
            written_through = last_lsn;
            shared.publish(|state| state.durable = last_lsn);
        }
        batch.clear();
        if batch.capacity() > MAX_RETAINED_BUFFER {
            batch = Vec::new();
        }

        let rotate = rotations_requested > rotations_done || active.len >= shared.segment_size;
        if rotate && active.has_records {
            let first = Lsn(written_through.0 + 1);
            match segment::create_segment(&shared.dir, first) {
                Ok((file, path)) => {
                    active = ActiveSegment {
                        file,
                        path,
                        len: segment::SEGMENT_HEADER_LEN as u64,
                        has_records: false,
                    };
                    shared.segments.lock().push(first);
                    shared
                        .counters
                        .segments_created
                        .fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => {
                    shared.fail(&error);
                    return;
                }
            }
        }
        if rotations_requested > rotations_done {
            rotations_done = rotations_requested;
            shared.publish(|state| state.rotations_done = rotations_done);
        }
        if shutdown {
            return;
        }
    }
}

fn write_batch(shared: &Shared, active: &mut ActiveSegment, batch: &[u8]) -> Result<(), WalError> {
    #[cfg(test)]
    if shared.fail_next_write.swap(false, Ordering::SeqCst) {
        return Err(io_error(
            "write",
            &active.path,
            std::io::Error::other("injected failure"),
        ));
    }
    active.write_durably(batch)?;
    let c = &shared.counters;
    c.bytes_written
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
    c.fsyncs.fetch_add(1, Ordering::Relaxed);
    Ok(())
}
