//! Segment files: naming, the header, scanning frames, recovering the last
//! segment after a crash, and [`Replay`].
//!
//! Owns what a damaged frame means: at the tail of the last segment it is a
//! torn write (the file is truncated to the last good frame); anywhere else
//! it is corruption, reported with the file and offset. Does not own the
//! writer thread (`writer`).

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::record::{self, FRAME_PREFIX_LEN, MIN_BODY_LEN, Record, TYPE_ENTRIES, TYPE_FLUSHED};
use super::{Lsn, WalError};

/// Magic at the start of every segment file.
pub const SEGMENT_MAGIC: [u8; 4] = *b"LKWL";
/// The segment format version this code writes and the newest it reads.
pub const WAL_FORMAT_VERSION: u8 = 1;
/// Length of the segment header (magic, version, three reserved zero bytes).
pub const SEGMENT_HEADER_LEN: usize = 8;

const SEGMENT_SUFFIX: &str = ".wal";

pub(super) fn segment_header() -> [u8; SEGMENT_HEADER_LEN] {
    let mut header = [0; SEGMENT_HEADER_LEN];
    header[..4].copy_from_slice(&SEGMENT_MAGIC);
    header[4] = WAL_FORMAT_VERSION;
    header
}

/// `00000000000000000042.wal`: the first LSN, zero-padded so names sort.
pub(super) fn segment_file_name(first: Lsn) -> String {
    format!("{:020}{SEGMENT_SUFFIX}", first.0)
}

fn parse_segment_file_name(name: &str) -> Option<Lsn> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(Lsn)
}

pub(super) fn io_error(op: &'static str, path: &Path, source: std::io::Error) -> WalError {
    WalError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Fsyncs a directory, so created or removed entries survive power loss.
pub(super) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("fsync directory", dir, e))
}

/// One segment file on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct SegmentFile {
    /// The first LSN the segment may hold (from its name); every record in it
    /// has an LSN ≥ this and < the next segment's.
    pub(super) first: Lsn,
    pub(super) path: PathBuf,
}

/// The segment files in `dir`, by first LSN. Other files are ignored.
pub(super) fn list_segments(dir: &Path) -> Result<Vec<SegmentFile>, WalError> {
    let mut segments = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| io_error("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_error("list", dir, e))?;
        let name = entry.file_name();
        if let Some(first) = name.to_str().and_then(parse_segment_file_name) {
            segments.push(SegmentFile {
                first,
                path: entry.path(),
            });
        }
    }
    segments.sort_by_key(|s| s.first);
    Ok(segments)
}

/// Creates a segment file holding only the header, durably.
pub(super) fn create_segment(dir: &Path, first: Lsn) -> Result<(File, PathBuf), WalError> {
    let path = dir.join(segment_file_name(first));
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| io_error("create", &path, e))?;
    file.write_all(&segment_header())
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error("write header of", &path, e))?;
    sync_dir(dir)?;
    Ok((file, path))
}

fn check_header(path: &Path, data: &[u8]) -> Result<(), WalError> {
    if data.len() < SEGMENT_HEADER_LEN {
        return Err(WalError::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            reason: format!("segment header cut off at {} bytes", data.len()),
        });
    }
    let mut magic = [0; 4];
    magic.copy_from_slice(&data[..4]);
    if magic != SEGMENT_MAGIC {
        return Err(WalError::BadMagic {
            path: path.to_path_buf(),
            found: magic,
        });
    }
    if data[4] != WAL_FORMAT_VERSION {
        return Err(WalError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: data[4],
            supported: WAL_FORMAT_VERSION,
        });
    }
    if data[5..SEGMENT_HEADER_LEN] != [0; 3] {
        return Err(WalError::Corrupt {
            path: path.to_path_buf(),
            offset: 5,
            reason: "reserved header bytes are not zero".to_string(),
        });
    }
    Ok(())
}

/// A frame whose length and checksum are valid.
struct Frame {
    kind: u8,
    lsn: Lsn,
    /// The payload's range in the segment (between type byte and LSN).
    payload: Range<usize>,
    end: usize,
}

/// Why the bytes at an offset are not a valid frame.
enum Damage {
    Truncated { needed: u64, available: u64 },
    BadLength { body_len: u64 },
    Checksum { got: u32, expected: u32 },
}

impl Damage {
    fn into_error(self, path: &Path, offset: usize) -> WalError {
        let path = path.to_path_buf();
        let offset = offset as u64;
        match self {
            Damage::Truncated { needed, available } => WalError::Corrupt {
                path,
                offset,
                reason: format!("record needs {needed} bytes, {available} left in the file"),
            },
            Damage::BadLength { body_len } => WalError::Corrupt {
                path,
                offset,
                reason: format!("record length {body_len} is below the minimum {MIN_BODY_LEN}"),
            },
            Damage::Checksum { got, expected } => WalError::ChecksumMismatch {
                path,
                offset,
                got,
                expected,
            },
        }
    }

    fn describe(&self) -> String {
        match self {
            Damage::Truncated { needed, available } => {
                format!("record needs {needed} bytes, {available} left")
            }
            Damage::BadLength { body_len } => format!("record length {body_len}"),
            Damage::Checksum { got, expected } => {
                format!("checksum {got:#010x}, expected {expected:#010x}")
            }
        }
    }
}

/// Reads the frame at `pos`; `Ok(None)` at the end of `data`.
fn scan_frame(data: &[u8], pos: usize) -> Result<Option<Frame>, Damage> {
    let available = data.len() - pos;
    if available == 0 {
        return Ok(None);
    }
    if available < FRAME_PREFIX_LEN {
        return Err(Damage::Truncated {
            needed: FRAME_PREFIX_LEN as u64,
            available: available as u64,
        });
    }
    let mut len_bytes = [0; 4];
    len_bytes.copy_from_slice(&data[pos..pos + 4]);
    let body_len = u32::from_le_bytes(len_bytes) as usize;
    if body_len < MIN_BODY_LEN {
        return Err(Damage::BadLength {
            body_len: body_len as u64,
        });
    }
    let frame_len = FRAME_PREFIX_LEN + body_len;
    if available < frame_len {
        return Err(Damage::Truncated {
            needed: frame_len as u64,
            available: available as u64,
        });
    }
    let mut crc_bytes = [0; 4];
    crc_bytes.copy_from_slice(&data[pos + 4..pos + 8]);
    let expected = u32::from_le_bytes(crc_bytes);
    let body = pos + FRAME_PREFIX_LEN..pos + frame_len;
    let got = crc32c::crc32c_append(crc32c::crc32c(&len_bytes), &data[body.clone()]);
    if got != expected {
        return Err(Damage::Checksum { got, expected });
    }
    let mut lsn_bytes = [0; 8];
    lsn_bytes.copy_from_slice(&data[body.end - 8..body.end]);
    Ok(Some(Frame {
        kind: data[body.start],
        lsn: Lsn(u64::from_le_bytes(lsn_bytes)),
        payload: body.start + 1..body.end - 8,
        end: body.end,
    }))
}

/// Checks what a checksum cannot: a known type and an LSN in order.
fn check_frame(
    frame: &Frame,
    segment: &SegmentFile,
    offset: usize,
    prev: Option<Lsn>,
    next_segment: Option<Lsn>,
) -> Result<(), WalError> {
    if frame.kind != TYPE_ENTRIES && frame.kind != TYPE_FLUSHED {
        return Err(WalError::UnsupportedRecordType {
            path: segment.path.clone(),
            offset: offset as u64,
            found: frame.kind,
        });
    }
    let in_order = frame.lsn >= segment.first
        && prev.is_none_or(|prev| frame.lsn > prev)
        && next_segment.is_none_or(|next| frame.lsn < next);
    if !in_order {
        return Err(WalError::Corrupt {
            path: segment.path.clone(),
            offset: offset as u64,
            reason: format!(
                "lsn {} out of order (previous {:?}, segment starts at {})",
                frame.lsn.0,
                prev.map(|l| l.0),
                segment.first.0
            ),
        });
    }
    Ok(())
}

/// The last segment after crash recovery.
pub(super) struct RecoveredSegment {
    pub(super) segment: SegmentFile,
    /// Its valid bytes, header included.
    pub(super) data: Bytes,
    /// Open for appending after the valid bytes.
    pub(super) file: File,
    pub(super) last_lsn: Option<Lsn>,
    pub(super) dropped_bytes: u64,
}

/// Reads the last segment, truncating a torn or corrupt tail (and a header
/// cut off while the segment was being created).
pub(super) fn recover_last_segment(segment: SegmentFile) -> Result<RecoveredSegment, WalError> {
    let path = &segment.path;
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .open(path)
        .map_err(|e| io_error("open", path, e))?;
    let mut data = Vec::new();
    file.read_to_end(&mut data)
        .map_err(|e| io_error("read", path, e))?;
    let file_len = data.len();

    if file_len < SEGMENT_HEADER_LEN {
        // Created but its header never fully reached the disk; no record
        // can be in it.
        tracing::warn!(path = %path.display(), file_len, "rewriting the cut-off header of the last wal segment");
        file.set_len(0)
            .and_then(|()| file.write_all(&segment_header()))
            .and_then(|()| file.sync_all())
            .map_err(|e| io_error("rewrite header of", path, e))?;
        return Ok(RecoveredSegment {
            segment,
            data: Bytes::copy_from_slice(&segment_header()),
            file,
            last_lsn: None,
            dropped_bytes: file_len as u64,
        });
    }
    check_header(path, &data)?;

    let mut pos = SEGMENT_HEADER_LEN;
    let mut last_lsn = None;
    let mut damage = None;
    loop {
        match scan_frame(&data, pos) {
            Ok(None) => break,
            Ok(Some(frame)) => {
                check_frame(&frame, &segment, pos, last_lsn, None)?;
                last_lsn = Some(frame.lsn);
                pos = frame.end;
            }
            Err(why) => {
                damage = Some(why);
                break;
            }
        }
    }
    let dropped_bytes = (file_len - pos) as u64;
    if let Some(why) = damage {
        tracing::warn!(
            path = %path.display(),
            offset = pos,
            dropped_bytes,
            reason = %why.describe(),
            "truncating a torn record at the tail of the wal"
        );
        file.set_len(pos as u64)
            .and_then(|()| file.sync_all())
            .map_err(|e| io_error("truncate", path, e))?;
        data.truncate(pos);
    }
    Ok(RecoveredSegment {
        segment,
        data: Bytes::from(data),
        file,
        last_lsn,
        dropped_bytes,
    })
}

/// The records found when the WAL was opened, in LSN order.
///
/// Segments before the last are read one at a time as the iteration reaches
/// them; damage in them is an error naming the file and offset, after which
/// the iteration ends. Finish replaying before calling
/// [`Wal::remove_segments_before`](super::Wal::remove_segments_before).
pub struct Replay {
    earlier: VecDeque<SegmentFile>,
    last: Option<(SegmentFile, Bytes)>,
    current: Option<SegmentCursor>,
    prev_lsn: Option<Lsn>,
    dropped_bytes: u64,
    finished: bool,
}

struct SegmentCursor {
    segment: SegmentFile,
    data: Bytes,
    pos: usize,
    /// The next segment's first LSN, an upper bound for this one's.
    next_first: Option<Lsn>,
}

impl Replay {
    pub(super) fn new(
        earlier: Vec<SegmentFile>,
        last: Option<(SegmentFile, Bytes)>,
        dropped_bytes: u64,
    ) -> Self {
        Replay {
            earlier: earlier.into(),
            last,
            current: None,
            prev_lsn: None,
            dropped_bytes,
            finished: false,
        }
    }

    /// Bytes dropped from the tail of the last segment when it was opened.
    pub fn dropped_tail_bytes(&self) -> u64 {
        self.dropped_bytes
    }

    fn next_segment(&mut self) -> Result<Option<SegmentCursor>, WalError> {
        if let Some(segment) = self.earlier.pop_front() {
            let data = fs::read(&segment.path).map_err(|e| io_error("read", &segment.path, e))?;
            check_header(&segment.path, &data)?;
            let next_first = self
                .earlier
                .front()
                .or(self.last.as_ref().map(|(s, _)| s))
                .map(|s| s.first);
            return Ok(Some(SegmentCursor {
                segment,
                data: Bytes::from(data),
                pos: SEGMENT_HEADER_LEN,
                next_first,
            }));
        }
        Ok(self.last.take().map(|(segment, data)| SegmentCursor {
            segment,
            data,
            pos: SEGMENT_HEADER_LEN,
            next_first: None,
        }))
    }

    fn advance(&mut self) -> Result<Option<(Lsn, Record)>, WalError> {
        loop {
            if self.current.is_none() {
                self.current = self.next_segment()?;
            }
            let Some(cursor) = self.current.as_mut() else {
                return Ok(None);
            };
            let offset = cursor.pos;
            let frame = match scan_frame(&cursor.data, offset) {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    self.current = None;
                    continue;
                }
                Err(damage) => return Err(damage.into_error(&cursor.segment.path, offset)),
            };
            check_frame(
                &frame,
                &cursor.segment,
                offset,
                self.prev_lsn,
                cursor.next_first,
            )?;
            let payload = cursor.data.slice(frame.payload.clone());
            let record =
                record::decode_payload(frame.kind, &payload).map_err(|why| WalError::Corrupt {
                    path: cursor.segment.path.clone(),
                    offset: offset as u64,
                    reason: why.to_string(),
                })?;
            cursor.pos = frame.end;
            self.prev_lsn = Some(frame.lsn);
            return Ok(Some((frame.lsn, record)));
        }
    }
}

impl Iterator for Replay {
    type Item = Result<(Lsn, Record), WalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let item = self.advance().transpose();
        if !matches!(item, Some(Ok(_))) {
            self.finished = true;
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_lsn_and_round_trip() {
        let a = segment_file_name(Lsn(9));
        let b = segment_file_name(Lsn(10));
        assert!(a < b);
        assert_eq!(a, "00000000000000000009.wal");
        assert_eq!(parse_segment_file_name(&a), Some(Lsn(9)));
        assert_eq!(
            parse_segment_file_name(&segment_file_name(Lsn(u64::MAX))),
            Some(Lsn(u64::MAX))
        );
        assert_eq!(parse_segment_file_name("9.wal"), None);
        assert_eq!(parse_segment_file_name("0000000000000000000x.wal"), None);
        assert_eq!(parse_segment_file_name("00000000000000000009.tmp"), None);
    }

    #[test]
    fn scan_frame_reports_damage() {
        let data = [0u8; 4];
        assert!(matches!(
            scan_frame(&data, 0),
            Err(Damage::Truncated { .. })
        ));
        let data = [0u8; 12];
        assert!(matches!(
            scan_frame(&data, 0),
            Err(Damage::BadLength { .. })
        ));
        assert!(matches!(scan_frame(&data, 12), Ok(None)));
    }
}
