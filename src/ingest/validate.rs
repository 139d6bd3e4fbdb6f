//! Validation of pushed streams and entries, with Loki's rules, order and
//! messages (`pkg/distributor/validator.go`, `pkg/validation/validate.go`).

use bytes::Bytes;

use crate::limits::Limits;
use crate::model::labels::{LabelsError, is_valid_label_name};
use crate::model::{Entry, Labels, MetadataPair, Timestamp};

use super::detect::SERVICE_NAME;

/// Why an entry or a stream was refused. The kind groups messages the way
/// Loki's grouped errors do ("N errors like: ...").
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    InvalidLabels,
    MissingLabels,
    TooManyLabels,
    LabelNameTooLong,
    LabelValueTooLong,
    DuplicateLabelNames,
    TooOld,
    TooNew,
    LineTooLong,
    StructuredMetadataDisallowed,
    StructuredMetadataTooLarge,
    StructuredMetadataTooMany,
    TooFarBehind,
    /// The tenant's ingestion rate (a whole request refused with 429).
    RateLimited,
    /// A stream's own rate (the whole request refused with 429).
    PerStreamRateLimit,
    /// The active-stream limit (the whole request refused with 429).
    StreamLimit,
}

impl Reason {
    pub const ALL: [Reason; 16] = [
        Reason::InvalidLabels,
        Reason::MissingLabels,
        Reason::TooManyLabels,
        Reason::LabelNameTooLong,
        Reason::LabelValueTooLong,
        Reason::DuplicateLabelNames,
        Reason::TooOld,
        Reason::TooNew,
        Reason::LineTooLong,
        Reason::StructuredMetadataDisallowed,
        Reason::StructuredMetadataTooLarge,
        Reason::StructuredMetadataTooMany,
        Reason::TooFarBehind,
        Reason::RateLimited,
        Reason::PerStreamRateLimit,
        Reason::StreamLimit,
    ];

    /// The `reason` label of Loki's `loki_discarded_samples_total`
    /// (Loki `pkg/validation/validate.go`).
    pub fn label(self) -> &'static str {
        match self {
            Reason::InvalidLabels => "invalid_labels",
            Reason::MissingLabels => "missing_labels",
            Reason::TooManyLabels => "max_label_names_per_series",
            Reason::LabelNameTooLong => "label_name_too_long",
            Reason::LabelValueTooLong => "label_value_too_long",
            Reason::DuplicateLabelNames => "duplicate_label_names",
            Reason::TooOld => "greater_than_max_sample_age",
            Reason::TooNew => "too_far_in_future",
            Reason::LineTooLong => "line_too_long",
            Reason::StructuredMetadataDisallowed => "disallowed_structured_metadata",
            Reason::StructuredMetadataTooLarge => "structured_metadata_too_large",
            Reason::StructuredMetadataTooMany => "structured_metadata_too_many",
            Reason::TooFarBehind => "too_far_behind",
            Reason::RateLimited => "rate_limited",
            Reason::PerStreamRateLimit => "per_stream_rate_limit",
            Reason::StreamLimit => "stream_limit",
        }
    }

    /// Position in [`Reason::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub reason: Reason,
    pub message: String,
}

/// Validates the stream's label set (already enriched with `service_name`).
pub fn validate_labels(labels: &Labels, limits: &Limits) -> Result<(), Rejection> {
    let text = labels.canonical();
    if labels.is_empty() {
        return Err(Rejection {
            reason: Reason::MissingLabels,
            message: "error at least one label pair is required per stream".to_string(),
        });
    }
    let names = labels.len() - usize::from(labels.contains(SERVICE_NAME));
    if names > limits.max_label_names_per_series {
        return Err(Rejection {
            reason: Reason::TooManyLabels,
            message: format!(
                "entry for stream '{text}' has {names} label names; limit {}",
                limits.max_label_names_per_series
            ),
        });
    }
    for l in labels {
        if l.name.len() > limits.max_label_name_length {
            return Err(Rejection {
                reason: Reason::LabelNameTooLong,
                message: format!("stream '{text}' has label name too long: '{}'", l.name),
            });
        }
        if l.value.len() > limits.max_label_value_length {
            return Err(Rejection {
                reason: Reason::LabelValueTooLong,
                message: format!("stream '{text}' has label value too long: '{}'", l.value),
            });
        }
    }
    Ok(())
}

/// Maps a label parsing failure of the text `given` to Loki's message.
pub fn label_parse_rejection(given: &str, err: &LabelsError) -> Rejection {
    match err {
        LabelsError::DuplicateName { name } => Rejection {
            reason: Reason::DuplicateLabelNames,
            message: format!("stream '{given}' has duplicate label name: '{name}'"),
        },
        other => Rejection {
            reason: Reason::InvalidLabels,
            message: format!("error parsing labels '{given}' with error: {other}"),
        },
    }
}

/// Normalizes structured-metadata names to Prometheus-safe names (`a.b` →
/// `a_b`, a leading digit gets `key_`), and values to valid UTF-8 with
/// U+FFFD replaced by a space, as Loki's distributor does.
pub fn normalize_metadata(md: &mut [MetadataPair]) {
    for pair in md.iter_mut() {
        if !is_valid_label_name(pair.name_str()) || std::str::from_utf8(&pair.name).is_err() {
            let lossy = String::from_utf8_lossy(&pair.name);
            let mut name: String = lossy
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            if name.starts_with(|c: char| c.is_ascii_digit()) {
                name.insert_str(0, "key_");
            }
            pair.name = Bytes::from(name);
        }
        match std::str::from_utf8(&pair.value) {
            Ok(v) if !v.contains('\u{FFFD}') => {}
            _ => {
                let fixed = String::from_utf8_lossy(&pair.value).replace('\u{FFFD}', " ");
                pair.value = Bytes::from(fixed);
            }
        }
    }
}

/// Validates one entry of a stream whose canonical labels are `stream`.
/// May truncate the line when `max_line_size_truncate` is set.
pub fn validate_entry(
    entry: &mut Entry,
    stream: &str,
    limits: &Limits,
    now: Timestamp,
) -> Result<(), Rejection> {
    if limits.reject_old_samples {
        let oldest = now.saturating_sub_nanos(limits.reject_old_samples_max_age.as_nanos_i64());
        if entry.ts < oldest {
            return Err(Rejection {
                reason: Reason::TooOld,
                message: format!(
                    "entry for stream '{stream}' has timestamp too old: {}, oldest acceptable timestamp is: {}",
                    entry.ts.to_rfc3339(),
                    oldest.to_rfc3339()
                ),
            });
        }
    }
    let newest = now.saturating_add_nanos(limits.creation_grace_period.as_nanos_i64());
    if entry.ts > newest {
        return Err(Rejection {
            reason: Reason::TooNew,
            message: format!(
                "entry for stream '{stream}' has timestamp too new: {}",
                entry.ts.to_rfc3339()
            ),
        });
    }
    let max_line = limits.max_line_size.get() as usize;
    if max_line != 0 && entry.line.len() > max_line {
        if limits.max_line_size_truncate {
            entry.line.truncate(max_line);
        } else {
            return Err(Rejection {
                reason: Reason::LineTooLong,
                message: format!(
                    "max entry size '{max_line}' bytes exceeded for stream '{stream}' while adding an entry with length '{}' bytes",
                    entry.line.len()
                ),
            });
        }
    }
    if !entry.metadata.is_empty() {
        if !limits.allow_structured_metadata {
            return Err(Rejection {
                reason: Reason::StructuredMetadataDisallowed,
                message: format!(
                    "stream '{stream}' includes structured metadata, but this feature is disallowed. Please see `limits_config.structured_metadata` or contact your Loki administrator to enable it."
                ),
            });
        }
        let size: usize = entry
            .metadata
            .iter()
            .map(|m| m.name.len() + m.value.len())
            .sum();
        let max_size = limits.max_structured_metadata_size.get() as usize;
        if max_size != 0 && size > max_size {
            return Err(Rejection {
                reason: Reason::StructuredMetadataTooLarge,
                message: format!(
                    "stream '{stream}' has structured metadata too large: '{size}' bytes, limit: '{max_size}' bytes. Please see `limits_config.max_structured_metadata_size` or contact your Loki administrator to increase it."
                ),
            });
        }
        let max_count = limits.max_structured_metadata_entries_count;
        if max_count != 0 && entry.metadata.len() > max_count {
            return Err(Rejection {
                reason: Reason::StructuredMetadataTooMany,
                message: format!(
                    "stream '{stream}' has too many structured metadata labels: '{}', limit: '{max_count}'. Please see `limits_config.max_structured_metadata_entries_count` or contact your Loki administrator to increase it.",
                    entry.metadata.len()
                ),
            });
        }
    }
    Ok(())
}

/// Loki's grouped error text: one message alone, otherwise
/// `N errors like: <first message>` per reason, joined by `; `.
pub fn group_errors(rejections: &[Rejection]) -> String {
    if let [only] = rejections {
        return only.message.clone();
    }
    let mut groups: Vec<(Reason, usize, &str)> = Vec::new();
    for r in rejections {
        match groups.iter_mut().find(|(reason, _, _)| *reason == r.reason) {
            Some(g) => g.1 += 1,
            None => groups.push((r.reason, 1, &r.message)),
        }
    }
    groups
        .iter()
        .map(|(_, n, msg)| format!("{n} errors like: {msg}"))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::units::{ByteSize, ConfigDuration};

    fn entry(ts: Timestamp, line: &str) -> Entry {
        Entry::new(ts, line.to_string())
    }

    #[test]
    fn label_rules() {
        let limits = Limits {
            max_label_names_per_series: 2,
            ..Limits::default()
        };
        let ok = Labels::parse(r#"{a="1", b="2", service_name="x"}"#).unwrap();
        assert!(
            validate_labels(&ok, &limits).is_ok(),
            "service_name is not counted"
        );
        let many = Labels::parse(r#"{a="1", b="2", c="3"}"#).unwrap();
        let e = validate_labels(&many, &limits).unwrap_err();
        assert_eq!(
            e.message,
            r#"entry for stream '{a="1", b="2", c="3"}' has 3 label names; limit 2"#
        );
        let e = validate_labels(&Labels::empty(), &limits).unwrap_err();
        assert_eq!(e.reason, Reason::MissingLabels);
        let long = Labels::parse(&format!(r#"{{a="{}"}}"#, "x".repeat(2049))).unwrap();
        assert_eq!(
            validate_labels(&long, &Limits::default())
                .unwrap_err()
                .reason,
            Reason::LabelValueTooLong
        );
    }

    #[test]
    fn entry_rules() {
        let now = Timestamp::from_secs(1_800_000_000);
        let limits = Limits {
            max_line_size: ByteSize(10),
            ..Limits::default()
        };
        let s = r#"{a="1"}"#;
        assert!(validate_entry(&mut entry(now, "short"), s, &limits, now).is_ok());
        let old = now.saturating_sub_nanos(8 * 86_400 * 1_000_000_000);
        let e = validate_entry(&mut entry(old, "x"), s, &limits, now).unwrap_err();
        assert_eq!(e.reason, Reason::TooOld);
        assert!(
            e.message
                .starts_with("entry for stream '{a=\"1\"}' has timestamp too old: 2027-01-07T"),
            "{}",
            e.message
        );
        let relaxed = Limits {
            reject_old_samples: false,
            ..limits.clone()
        };
        assert!(validate_entry(&mut entry(old, "x"), s, &relaxed, now).is_ok());
        let future = now.saturating_add_nanos(11 * 60 * 1_000_000_000);
        assert_eq!(
            validate_entry(&mut entry(future, "x"), s, &limits, now)
                .unwrap_err()
                .reason,
            Reason::TooNew
        );
        let e = validate_entry(&mut entry(now, "0123456789abc"), s, &limits, now).unwrap_err();
        assert_eq!(
            e.message,
            "max entry size '10' bytes exceeded for stream '{a=\"1\"}' while adding an entry with length '13' bytes"
        );
        let truncating = Limits {
            max_line_size_truncate: true,
            ..limits.clone()
        };
        let mut long = entry(now, "0123456789abc");
        assert!(validate_entry(&mut long, s, &truncating, now).is_ok());
        assert_eq!(&long.line[..], b"0123456789");
        let mut md = entry(now, "x");
        md.metadata = vec![MetadataPair::new("k", "v".repeat(100))];
        let small = Limits {
            max_structured_metadata_size: ByteSize(50),
            ..Limits::default()
        };
        assert_eq!(
            validate_entry(&mut md, s, &small, now).unwrap_err().reason,
            Reason::StructuredMetadataTooLarge
        );
        let _ = ConfigDuration::ZERO;
    }

    #[test]
    fn metadata_names_are_normalized() {
        let mut md = vec![
            MetadataPair::new("trace.id", "abc"),
            MetadataPair::new("2fa", "yes"),
            MetadataPair::new("ok_name", Bytes::from_static(b"bad \xff byte")),
        ];
        normalize_metadata(&mut md);
        assert_eq!(md[0].name_str(), "trace_id");
        assert_eq!(md[1].name_str(), "key_2fa");
        assert_eq!(md[2].value_str(), "bad   byte");
    }

    #[test]
    fn grouped_like_loki() {
        let r = |reason, m: &str| Rejection {
            reason,
            message: m.to_string(),
        };
        assert_eq!(group_errors(&[r(Reason::LineTooLong, "a")]), "a");
        assert_eq!(
            group_errors(&[
                r(Reason::InvalidLabels, "x"),
                r(Reason::LineTooLong, "a"),
                r(Reason::LineTooLong, "b")
            ]),
            "1 errors like: x; 2 errors like: a"
        );
    }
}
