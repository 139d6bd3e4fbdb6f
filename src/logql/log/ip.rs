//! `ip("…")` matching, for line filters and label filters (`pkg/logql/log/ip.go`).
//!
//! Owns: parsing the pattern (single address, CIDR prefix, `a-b` range, for
//! IPv4 and IPv6, with Go `net/netip` strictness) and finding an address
//! anywhere in a line with Loki's prefix-hint scan.
//!
//! Does not own: operator validation (line filters accept only `|=`/`!=`,
//! label filters only `=`/`!=`; the callers check).
//!
//! Invariants: IPv4 and IPv6 never match each other (an IPv4-mapped IPv6
//! address is IPv6, as in Go); the scan never allocates.

use std::net::IpAddr;
use std::str::FromStr;

use super::LogError;

/// A compiled `ip()` pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IpMatcher {
    Addr(IpAddr),
    Prefix { addr: IpAddr, bits: u8 },
    Range { from: IpAddr, to: IpAddr },
}

const IPV4_CHARSET: &[u8] = b"0123456789.";
const IPV6_CHARSET: &[u8] = b"0123456789abcdefABCDEF:.";

impl IpMatcher {
    /// Parses a single address, a CIDR prefix or an `a-b` range.
    pub fn parse(pattern: &str) -> Result<Self, LogError> {
        if let Some(addr) = parse_addr(pattern) {
            return Ok(IpMatcher::Addr(addr));
        }
        if let Some((addr, bits)) = parse_prefix(pattern) {
            return Ok(IpMatcher::Prefix { addr, bits });
        }
        if let Some((from, to)) = pattern.split_once('-')
            && let (Some(from), Some(to)) = (parse_addr(from), parse_addr(to))
            && from.is_ipv4() == to.is_ipv4()
            && from <= to
        {
            return Ok(IpMatcher::Range { from, to });
        }
        Err(LogError::IpInvalidPattern {
            pattern: pattern.to_string(),
        })
    }

    /// Whether `ip` is matched by the pattern.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match *self {
            IpMatcher::Addr(a) => a == ip,
            IpMatcher::Prefix { addr, bits } => match (addr, ip) {
                (IpAddr::V4(p), IpAddr::V4(x)) => {
                    let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
                    u32::from(p) & mask == u32::from(x) & mask
                }
                (IpAddr::V6(p), IpAddr::V6(x)) => {
                    let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
                    u128::from(p) & mask == u128::from(x) & mask
                }
                _ => false,
            },
            IpMatcher::Range { from, to } => {
                from.is_ipv4() == ip.is_ipv4() && from <= ip && ip <= to
            }
        }
    }

    /// Whether a matching address appears anywhere in `line` (Loki's scan:
    /// an IPv4 hint is a digit with a dot within the next three bytes, an
    /// IPv6 hint a short hex group followed by `:`; the candidate is the run
    /// of address characters from there).
    pub fn matches_line(&self, line: &[u8]) -> bool {
        let n = line.len();
        let mut i = 0;
        while i < n {
            if i + 3 < n && ipv4_hint(&line[i..i + 4]) {
                match self.try_at(line, i, IPV4_CHARSET) {
                    None => return true,
                    Some(len) => {
                        i += len + 1;
                        continue;
                    }
                }
            }
            if i + 4 < n && ipv6_hint(&line[i..i + 5]) {
                match self.try_at(line, i, IPV6_CHARSET) {
                    None => return true,
                    Some(len) => {
                        i += len + 1;
                        continue;
                    }
                }
            }
            i += 1;
        }
        false
    }

    /// `None` when an address at `start` matches; otherwise the length of
    /// the candidate to skip.
    fn try_at(&self, line: &[u8], start: usize, charset: &[u8]) -> Option<usize> {
        let len = line[start..]
            .iter()
            .position(|b| !charset.contains(b))
            .unwrap_or(line.len() - start);
        let candidate = std::str::from_utf8(&line[start..start + len])
            .ok()
            .and_then(parse_addr);
        match candidate {
            Some(ip) if self.contains(ip) => None,
            _ => Some(len),
        }
    }

    /// Whether a label value is (or contains) a matching address.
    pub fn matches_value(&self, value: &str) -> bool {
        self.matches_line(value.as_bytes())
    }
}

fn ipv4_hint(p: &[u8]) -> bool {
    p[0].is_ascii_digit() && (p[1] == b'.' || p[2] == b'.' || p[3] == b'.')
}

fn ipv6_hint(p: &[u8]) -> bool {
    let hex = |b: u8| b.is_ascii_hexdigit();
    (p[0] == b':' && p[1] == b':' && hex(p[2]))
        || (hex(p[0]) && p[1] == b':')
        || (hex(p[0]) && hex(p[1]) && p[2] == b':')
        || (hex(p[0]) && hex(p[1]) && hex(p[2]) && p[3] == b':')
        || (hex(p[0]) && hex(p[1]) && hex(p[2]) && hex(p[3]) && p[4] == b':')
}

/// Go's `netip.ParseAddr` for the forms that can appear here (no zones).
fn parse_addr(s: &str) -> Option<IpAddr> {
    IpAddr::from_str(s).ok()
}

/// Go's `netip.ParsePrefix`: `addr/bits`, bits in range and without a sign
/// or leading zero. The address need not be masked.
fn parse_prefix(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = s.rsplit_once('/')?;
    let addr = parse_addr(addr)?;
    if bits.is_empty()
        || !bits.bytes().all(|b| b.is_ascii_digit())
        || (bits.len() > 1 && bits.starts_with('0'))
    {
        return None;
    }
    let bits: u8 = bits.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((addr, bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str) -> IpMatcher {
        IpMatcher::parse(p).unwrap()
    }

    /// Cases from Loki's `ip_test.go`.
    #[test]
    fn loki_ip_filter_cases() {
        let line = b"vpn 192.168.0.5 connected to vm";
        assert!(m("192.168.0.5").matches_line(line));
        assert!(!m("192.168.0.6").matches_line(line));
        assert!(m("192.168.0.0/24").matches_line(line));
        assert!(!m("192.168.1.0/24").matches_line(line));
        assert!(m("192.168.0.1-192.168.0.10").matches_line(line));
        assert!(!m("192.168.0.6-192.168.0.10").matches_line(line));
        let v6 = b"vpn ::1 connected";
        assert!(m("::1").matches_line(v6));
        let v6 = b"ip 2001:db8:85a3::8a2e:370:7334 ok";
        assert!(m("2001:db8::/32").matches_line(v6));
        assert!(!m("2001:db9::/32").matches_line(v6));
        assert!(m("2001:db8:85a3::8a2e:370:7000-2001:db8:85a3::8a2e:370:8000").matches_line(v6));
        assert!(m("::ffff:192.168.4.5").matches_line(b"x ::ffff:192.168.4.5 y"));
        // IPv4 never matches an IPv4-mapped IPv6 prefix, nor the reverse.
        assert!(!m("192.168.4.0/24").matches_line(b"x ::ffff:192.168.4.5 y"));
        // Several candidates: the second matches.
        assert!(m("10.0.0.2").matches_line(b"from 10.0.0.1 to 10.0.0.2 done"));
        // A trailing dot is part of the candidate (Loki quirk).
        assert!(!m("10.0.0.1").matches_line(b"from 10.0.0.1."));
        assert!(!m("10.0.0.1").matches_line(b""));
        assert!(m("10.0.0.1").matches_value("10.0.0.1"));
    }

    #[test]
    fn invalid_patterns() {
        for p in [
            "",
            "abc",
            "192.168.0.1/33",
            "192.168.0.1/024",
            "10.0.0.9-10.0.0.1",
            "10.0.0.1-::1",
            "192.168.01.1",
            "1.2.3.4 - 1.2.3.5",
        ] {
            assert!(IpMatcher::parse(p).is_err(), "{p:?}");
        }
        assert_eq!(
            IpMatcher::parse("x").unwrap_err().to_string(),
            "ip: invalid pattern: \"x\""
        );
    }
}
