//! Domain types shared by every layer: timestamps, tenants, label sets, stream
//! matchers and entries.
//!
//! This module sits at the bottom of the import graph (L0): it imports nothing
//! from the crate, so every other module can use these types without reaching
//! up. It owns validation of the values it models (a `Labels` is always sorted
//! with valid, unique names; a `TenantId` is always a valid org id) but no
//! limits, which are configuration (L1).

pub mod entry;
pub mod labels;
pub mod matcher;
pub mod selector;
pub mod tenant;
pub mod time;

pub use entry::{Entry, MetadataPair};
pub use labels::{Label, Labels, LabelsError, StreamId};
pub use matcher::{MatchOp, Matcher, MatcherError};
pub use selector::{SelectorError, parse_selector, parse_selector_prefix};
pub use tenant::{TenantError, TenantId};
pub use time::{Direction, Timestamp};
