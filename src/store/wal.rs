//! The write-ahead log: see the module docs once written.
