//! Engine tests: Loki's `fmt_test.go` tables, the conformance `format-*`
//! cases' template parts, and Go/sprig semantics per function.

use super::*;

/// A test entry: labels, line and timestamp.
struct Entry {
    labels: Vec<(&'static str, &'static str)>,
    line: &'static str,
    ts: i64,
}

impl TemplateContext for Entry {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
    }
    fn line(&self) -> &str {
        self.line
    }
    fn timestamp(&self) -> Timestamp {
        Timestamp::from_nanos(self.ts)
    }
    fn for_each_label<'s>(&'s self, visit: &mut dyn FnMut(&'s str, &'s str)) {
        for (k, v) in &self.labels {
            visit(k, v);
        }
    }
}

fn entry(labels: &[(&'static str, &'static str)]) -> Entry {
    Entry {
        labels: labels.to_vec(),
        line: "",
        ts: 0,
    }
}

fn render(tmpl: &str, e: &Entry) -> Result<String, TemplateError> {
    let t = Template::parse(tmpl)?;
    let mut out = String::from("stale");
    t.execute(e, &mut out)?;
    Ok(out)
}

#[track_caller]
fn ok(tmpl: &str, e: &Entry) -> String {
    match render(tmpl, e) {
        Ok(s) => s,
        Err(err) => panic!("template {tmpl:?} failed: {err}"),
    }
}

#[test]
fn smoke() {
    let e = entry(&[("foo", "blip"), ("bar", "blop")]);
    assert_eq!(ok("foo{{.foo}}buzz{{  .bar  }}", &e), "fooblipbuzzblop");
}
