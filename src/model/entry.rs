//! Log entries as they travel from a push to storage.

use bytes::Bytes;

use super::time::Timestamp;

/// One log entry of a stream: timestamp, line and structured metadata.
///
/// Lines and metadata are `Bytes`, usually zero-copy slices of a request or
/// WAL buffer. Ingest validates that metadata names and values are UTF-8;
/// lines are kept byte-exact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub ts: Timestamp,
    pub line: Bytes,
    pub metadata: Vec<MetadataPair>,
}

/// One structured-metadata pair. Both halves are UTF-8.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetadataPair {
    pub name: Bytes,
    pub value: Bytes,
}

impl MetadataPair {
    pub fn new(name: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        MetadataPair {
            name: name.into(),
            value: value.into(),
        }
    }

    /// The name as text (empty if it is not UTF-8, which ingest rules out).
    pub fn name_str(&self) -> &str {
        std::str::from_utf8(&self.name).unwrap_or("")
    }

    /// The value as text (empty if it is not UTF-8, which ingest rules out).
    pub fn value_str(&self) -> &str {
        std::str::from_utf8(&self.value).unwrap_or("")
    }
}

impl Entry {
    pub fn new(ts: Timestamp, line: impl Into<Bytes>) -> Self {
        Entry {
            ts,
            line: line.into(),
            metadata: Vec::new(),
        }
    }

    /// Bytes this entry counts for in rate limits and stats: the line plus
    /// its metadata names and values.
    pub fn size(&self) -> usize {
        self.line.len()
            + self
                .metadata
                .iter()
                .map(|m| m.name.len() + m.value.len())
                .sum::<usize>()
    }
}
