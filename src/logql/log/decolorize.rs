//! `| decolorize`: strips ANSI escape sequences from the line.
//!
//! Owns: Loki's `Decolorizer`, which removes every match of the
//! acarl005/stripansi regular expression.
//!
//! Does not own: anything else about the line.
//!
//! Invariants: a line without escape sequences is left untouched (no copy).

use std::sync::OnceLock;

use crate::model::Timestamp;

use super::{LabelsBuilder, LineBuf, Stage};

/// The stripansi expression, with RE2's ASCII `\d` spelled out.
const ANSI: &str = r"[\x1B\x{9B}][\[\]()#;?]*(?:(?:(?:[a-zA-Z0-9]*(?:;[a-zA-Z0-9]*)*)?\x07)|(?:(?:[0-9]{1,4}(?:;[0-9]{0,4})*)?[0-9A-PRZcf-ntqry=><~]))";

fn ansi_regex() -> Option<&'static regex::bytes::Regex> {
    static RE: OnceLock<Option<regex::bytes::Regex>> = OnceLock::new();
    RE.get_or_init(|| regex::bytes::Regex::new(ANSI).ok())
        .as_ref()
}

/// The `decolorize` stage.
#[derive(Clone, Debug, Default)]
pub struct Decolorizer;

impl Decolorizer {
    pub fn new() -> Self {
        Decolorizer
    }
}

impl Stage for Decolorizer {
    fn process(&mut self, _ts: Timestamp, line: &mut LineBuf<'_>, _: &mut LabelsBuilder) -> bool {
        let Some(re) = ansi_regex() else {
            return true;
        };
        if !re.is_match(line.as_bytes()) {
            return true;
        }
        line.rewrite(|cur, out| {
            let mut last = 0;
            for m in re.find_iter(cur) {
                out.extend_from_slice(&cur[last..m.start()]);
                last = m.end();
            }
            out.extend_from_slice(&cur[last..]);
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logql::log::LineScratch;
    use crate::model::Labels;

    fn strip(line: &[u8]) -> (Vec<u8>, bool) {
        let mut b = LabelsBuilder::new(&Labels::empty());
        b.reset();
        let mut scratch = LineScratch::default();
        let mut lb = LineBuf::new(line, &mut scratch);
        Decolorizer::new().process(Timestamp::EPOCH, &mut lb, &mut b);
        (lb.as_bytes().to_vec(), lb.is_changed())
    }

    #[test]
    fn strips_ansi_sequences() {
        assert!(ansi_regex().is_some());
        let (out, changed) = strip(b"\x1b[31mERROR\x1b[0m in ./src/app.js");
        assert_eq!(out, b"ERROR in ./src/app.js");
        assert!(changed);
        let (out, _) = strip(b"\x1b[1;32mok\x1b[39;49m \x1b]0;title\x07done");
        assert_eq!(out, b"ok done");
        let (out, _) = strip("\u{9b}31mred".as_bytes());
        assert_eq!(out, b"red");
        let (out, changed) = strip(b"plain line");
        assert_eq!(out, b"plain line");
        assert!(!changed, "untouched lines are not copied");
    }
}
