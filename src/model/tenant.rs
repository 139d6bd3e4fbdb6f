//! Tenant (org) ids, validated as Loki's dskit validates `X-Scope-OrgID`.

use std::fmt;
use std::sync::Arc;

/// A validated tenant id: letters, digits and `! - _ . * ' ( )`, at most 150
/// bytes, not `.` or `..`. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(Arc<str>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    #[error("no org id")]
    Missing,
    #[error("tenant ID is too long: max 150 characters")]
    TooLong,
    #[error("tenant ID is '.' or '..'")]
    Unsafe,
    #[error("tenant ID '{id}' contains unsupported character '{ch}'")]
    BadCharacter { id: String, ch: char },
}

pub const MAX_TENANT_ID_LEN: usize = 150;

impl TenantId {
    pub fn new(id: &str) -> Result<Self, TenantError> {
        if id.is_empty() {
            return Err(TenantError::Missing);
        }
        if id.len() > MAX_TENANT_ID_LEN {
            return Err(TenantError::TooLong);
        }
        if id == "." || id == ".." {
            return Err(TenantError::Unsafe);
        }
        if let Some(ch) = id.chars().find(|c| !is_supported_char(*c)) {
            return Err(TenantError::BadCharacter {
                id: id.to_string(),
                ch,
            });
        }
        Ok(TenantId(Arc::from(id)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_supported_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '!' | '-' | '_' | '.' | '*' | '\'' | '(' | ')')
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({})", &*self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_like_dskit() {
        assert!(TenantId::new("fake").is_ok());
        assert!(TenantId::new("tenant-b").is_ok());
        assert!(TenantId::new("a.b_c!(d)*'").is_ok());
        assert_eq!(TenantId::new(""), Err(TenantError::Missing));
        assert_eq!(TenantId::new(".."), Err(TenantError::Unsafe));
        assert!(matches!(
            TenantId::new("a/b"),
            Err(TenantError::BadCharacter { ch: '/', .. })
        ));
        assert!(matches!(
            TenantId::new("a|b"),
            Err(TenantError::BadCharacter { .. })
        ));
        assert_eq!(TenantId::new(&"x".repeat(151)), Err(TenantError::TooLong));
    }
}
