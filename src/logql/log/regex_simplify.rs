//! Loki's regex simplifier: which regexes become substring or equality
//! filters, and therefore how `|~` and label `=~` really match.
//!
//! Owns: the shape analysis of a pattern as Go's `regexp/syntax` sees it
//! (literal merging, alternation prefix factoring, `Simplify`), and the
//! transcription of Loki's `RegexSimplifier` (`pkg/logql/log/filter.go`)
//! over that shape. The outcome decides semantics users observe:
//!
//! - `foo`, `(?i)foo`, `.*foo.*`, `foo.*`, `.*foo` → substring (line) or,
//!   for a pure literal in a label filter, equality;
//! - `foo|bar` → any of the above per branch;
//! - concatenations with a factored alternation (`warn|warning` is parsed
//!   as `warn(?:|ing)`) → substrings *even in label filters*, which is why
//!   `name=~"al.*"` matches `prealpha` in Loki;
//! - `.*` → always true, `.+` → non-empty, empty pattern → always true;
//! - anything else → the regex itself, anchored `^(?:re)$` for labels.
//!
//! Does not own: matching (see `line_filter.rs`).
//!
//! Invariants: the analysis is only an over-approximation of Go's parser in
//! places where the difference cannot change which of the three outcomes
//! (substring/equality/regex) is chosen; it runs once per filter, at build
//! time.

use regex_syntax::ast::{
    self, Ast, ClassSet, ClassSetItem, Flag, GroupKind, RepetitionKind, RepetitionRange,
};

use super::LogError;
use super::line_filter::MatchNode;

/// The parts of Go's `syntax.Regexp` that matter to the simplifier.
#[derive(Clone, Debug, PartialEq)]
enum Re {
    EmptyMatch {
        fold: bool,
    },
    Literal {
        runes: Vec<char>,
        fold: bool,
    },
    AnyCharNotNl,
    AnyChar,
    /// Any other character class.
    Class,
    Star {
        sub: Box<Re>,
        fold: bool,
    },
    Plus {
        sub: Box<Re>,
        fold: bool,
    },
    Quest {
        sub: Box<Re>,
        fold: bool,
    },
    Repeat {
        sub: Box<Re>,
        min: u32,
        max: Option<u32>,
        fold: bool,
    },
    Concat(Vec<Re>),
    Alternate(Vec<Re>),
    Capture(Box<Re>),
    /// Anchors, word boundaries, impossible matches.
    Other,
}

#[derive(Copy, Clone, Debug, Default)]
struct Flags {
    fold: bool,
    dot_nl: bool,
}

impl Flags {
    fn apply(&mut self, flags: &ast::Flags) {
        if let Some(on) = flags.flag_state(Flag::CaseInsensitive) {
            self.fold = on;
        }
        if let Some(on) = flags.flag_state(Flag::DotMatchesNewLine) {
            self.dot_nl = on;
        }
    }
}

/// Simplifies `pattern` as Loki does for a line filter (`is_label = false`)
/// or a label filter (`is_label = true`). `Ok(None)` means "use the regex".
pub(crate) fn simplify(pattern: &str, is_label: bool) -> Result<Option<MatchNode>, LogError> {
    let invalid = |message: String| LogError::InvalidRegex {
        pattern: pattern.to_string(),
        message,
    };
    // Go's dialect in Rust's (literal `{`, `\Q…\E`, ASCII Perl classes);
    // classes stay classes, so the shape is unchanged.
    let translated = crate::model::matcher::translate_perl_classes(pattern);
    let ast = ast::parse::ParserBuilder::new()
        .nest_limit(250)
        .build()
        .parse(&translated)
        .map_err(|e| invalid(e.kind().to_string()))?;
    // The shape is taken from the AST; make sure the pattern also compiles.
    regex_syntax::ParserBuilder::new()
        .nest_limit(250)
        .build()
        .parse(&translated)
        .map_err(|e| invalid(e.to_string()))?;
    let mut flags = Flags::default();
    let re = go_simplify(lower(&ast, &mut flags));
    Ok(loki_simplify(re, is_label))
}

/// Describes how a pattern would be matched, for tests and diagnostics.
pub fn describe(pattern: &str, is_label: bool) -> Result<String, LogError> {
    Ok(match simplify(pattern, is_label)? {
        Some(node) => node.describe(),
        None => "regex".to_string(),
    })
}

// ---------------------------------------------------------------------------
// Go's parser, as far as shapes go
// ---------------------------------------------------------------------------

fn lower(ast: &Ast, flags: &mut Flags) -> Re {
    match ast {
        Ast::Empty(_) | Ast::Flags(_) => {
            if let Ast::Flags(f) = ast {
                flags.apply(&f.flags);
            }
            Re::EmptyMatch { fold: flags.fold }
        }
        Ast::Literal(lit) => literal(lit.c, flags.fold),
        Ast::Dot(_) => {
            if flags.dot_nl {
                Re::AnyChar
            } else {
                Re::AnyCharNotNl
            }
        }
        Ast::Assertion(_) => Re::Other,
        Ast::ClassUnicode(_) | Ast::ClassPerl(_) => Re::Class,
        Ast::ClassBracketed(b) => bracketed(b, flags.fold),
        Ast::Repetition(rep) => {
            let sub = Box::new(lower(&rep.ast, flags));
            let fold = flags.fold;
            match &rep.op.kind {
                RepetitionKind::ZeroOrOne => Re::Quest { sub, fold },
                RepetitionKind::ZeroOrMore => Re::Star { sub, fold },
                RepetitionKind::OneOrMore => Re::Plus { sub, fold },
                RepetitionKind::Range(r) => {
                    let (min, max) = match *r {
                        RepetitionRange::Exactly(n) => (n, Some(n)),
                        RepetitionRange::AtLeast(n) => (n, None),
                        RepetitionRange::Bounded(m, n) => (m, Some(n)),
                    };
                    Re::Repeat {
                        sub,
                        min,
                        max,
                        fold,
                    }
                }
            }
        }
        Ast::Group(g) => {
            let saved = *flags;
            let inner = match &g.kind {
                GroupKind::NonCapturing(f) => {
                    flags.apply(f);
                    lower(&g.ast, flags)
                }
                GroupKind::CaptureIndex(_) | GroupKind::CaptureName { .. } => {
                    Re::Capture(Box::new(lower(&g.ast, flags)))
                }
            };
            *flags = saved;
            inner
        }
        Ast::Concat(c) => lower_concat(&c.asts, flags),
        Ast::Alternation(a) => {
            let subs = a.asts.iter().map(|branch| lower(branch, flags)).collect();
            collapse_alternate(subs)
        }
    }
}

fn literal(c: char, fold: bool) -> Re {
    Re::Literal {
        runes: vec![if fold { min_fold(c) } else { c }],
        fold,
    }
}

/// Go's concatenation: adjacent literals with the same case folding merge
/// as they are pushed; nested concatenations (from groups) are flattened
/// afterwards without merging.
fn lower_concat(items: &[Ast], flags: &mut Flags) -> Re {
    let mut stack: Vec<Re> = Vec::new();
    for item in items {
        if let Ast::Flags(f) = item {
            flags.apply(&f.flags);
            continue;
        }
        let node = lower(item, flags);
        match (stack.last_mut(), node) {
            (
                Some(Re::Literal { runes, fold }),
                Re::Literal {
                    runes: more,
                    fold: f2,
                },
            ) if *fold == f2 => runes.extend(more),
            (_, node) => stack.push(node),
        }
    }
    let mut out = Vec::with_capacity(stack.len());
    for node in stack {
        match node {
            Re::Concat(subs) => out.extend(subs),
            n => out.push(n),
        }
    }
    match out.len() {
        0 => Re::EmptyMatch { fold: flags.fold },
        1 => out.pop().unwrap_or(Re::Other),
        _ => Re::Concat(out),
    }
}

/// A bracketed class that holds one rune (or one rune and its case fold)
/// becomes a literal, as Go's parser does; anything else is a class.
fn bracketed(b: &ast::ClassBracketed, fold: bool) -> Re {
    if b.negated {
        return Re::Class;
    }
    let mut chars: Vec<char> = Vec::new();
    if !collect_chars(&b.kind, &mut chars) {
        return Re::Class;
    }
    if fold {
        let folded: Vec<char> = chars.iter().flat_map(|&c| fold_orbit(c)).collect();
        chars.extend(folded);
    }
    chars.sort_unstable();
    chars.dedup();
    match chars.as_slice() {
        [c] => Re::Literal {
            runes: vec![*c],
            fold: false,
        },
        [a, b] if fold_orbit(*a).contains(b) => Re::Literal {
            runes: vec![*a],
            fold: true,
        },
        _ => Re::Class,
    }
}

/// Collects the chars of a small class; `false` when it is not a plain set
/// of at most a few literals.
fn collect_chars(set: &ClassSet, out: &mut Vec<char>) -> bool {
    fn item(it: &ClassSetItem, out: &mut Vec<char>) -> bool {
        match it {
            ClassSetItem::Literal(l) => out.push(l.c),
            ClassSetItem::Range(r) => {
                if (r.end.c as u32).saturating_sub(r.start.c as u32) > 3 {
                    return false;
                }
                out.extend(r.start.c..=r.end.c);
            }
            ClassSetItem::Union(u) => {
                for i in &u.items {
                    if !item(i, out) {
                        return false;
                    }
                }
            }
            _ => return false,
        }
        out.len() <= 4
    }
    match set {
        ClassSet::Item(it) => item(it, out),
        ClassSet::BinaryOp(_) => false,
    }
}

/// The simple case-fold orbit of `c` (itself included).
fn fold_orbit(c: char) -> Vec<char> {
    let mut orbit = vec![c];
    for other in c.to_lowercase().chain(c.to_uppercase()) {
        if !orbit.contains(&other) {
            orbit.push(other);
        }
    }
    if c == 'k' || c == 'K' {
        orbit.push('\u{212a}');
    }
    if c == 's' || c == 'S' {
        orbit.push('\u{17f}');
    }
    orbit
}

/// Go's `minFoldRune`: the smallest rune of the fold orbit.
fn min_fold(c: char) -> char {
    fold_orbit(c).into_iter().min().unwrap_or(c)
}

fn collapse_alternate(subs: Vec<Re>) -> Re {
    let mut flat = Vec::with_capacity(subs.len());
    for s in subs {
        match s {
            Re::Alternate(inner) => flat.extend(inner),
            s => flat.push(s),
        }
    }
    let mut subs = factor(flat);
    if subs.len() == 1 {
        return subs.pop().unwrap_or(Re::Other);
    }
    Re::Alternate(subs)
}

fn leading_string(re: &Re) -> (&[char], bool) {
    let first = match re {
        Re::Concat(subs) if !subs.is_empty() => &subs[0],
        r => r,
    };
    match first {
        Re::Literal { runes, fold } => (runes, *fold),
        _ => (&[], false),
    }
}

fn remove_leading_string(re: Re, n: usize) -> Re {
    match re {
        Re::Concat(mut subs) if !subs.is_empty() => {
            let first = subs.remove(0);
            let first = remove_leading_string(first, n);
            if matches!(first, Re::EmptyMatch { .. }) {
                match subs.len() {
                    0 => first,
                    1 => subs.pop().unwrap_or(Re::Other),
                    _ => Re::Concat(subs),
                }
            } else {
                subs.insert(0, first);
                Re::Concat(subs)
            }
        }
        Re::Literal { mut runes, fold } => {
            runes.drain(..n.min(runes.len()));
            if runes.is_empty() {
                Re::EmptyMatch { fold }
            } else {
                Re::Literal { runes, fold }
            }
        }
        r => r,
    }
}

fn is_char_class(re: &Re) -> bool {
    matches!(re, Re::Literal { runes, .. } if runes.len() == 1)
        || matches!(re, Re::Class | Re::AnyChar | Re::AnyCharNotNl)
}

/// Go's `factor` for alternations: common literal prefixes (round 1), runs
/// of single characters into classes (round 3), runs of empty matches
/// (round 4). Round 2 (common leading classes) is skipped: it only
/// restructures branches that start with a class, which no simplification
/// accepts either way.
fn factor(subs: Vec<Re>) -> Vec<Re> {
    // Round 1.
    let mut out: Vec<Re> = Vec::with_capacity(subs.len());
    let mut pending: Vec<Re> = Vec::new();
    let mut prefix: Vec<char> = Vec::new();
    let mut prefix_fold = false;
    let mut iter = subs.into_iter();
    loop {
        let next = iter.next();
        if let Some(re) = &next {
            let (istr, ifold) = leading_string(re);
            if ifold == prefix_fold && !pending.is_empty() {
                let same = prefix.iter().zip(istr).take_while(|(a, b)| a == b).count();
                if same > 0 {
                    prefix.truncate(same);
                    pending.extend(next);
                    continue;
                }
            }
        }
        // End of a run sharing `prefix`.
        match pending.len() {
            0 => {}
            1 => out.append(&mut pending),
            _ => {
                let n = prefix.len();
                let suffixes = pending
                    .drain(..)
                    .map(|r| remove_leading_string(r, n))
                    .collect();
                out.push(Re::Concat(vec![
                    Re::Literal {
                        runes: prefix.clone(),
                        fold: prefix_fold,
                    },
                    collapse_alternate(suffixes),
                ]));
            }
        }
        let Some(re) = next else { break };
        let (istr, ifold) = leading_string(&re);
        prefix = istr.to_vec();
        prefix_fold = ifold;
        pending.push(re);
    }

    // Round 3.
    let subs = out;
    let mut out: Vec<Re> = Vec::with_capacity(subs.len());
    let mut run: Vec<Re> = Vec::new();
    for re in subs.into_iter().map(Some).chain(std::iter::once(None)) {
        if let Some(r) = &re
            && is_char_class(r)
        {
            run.extend(re);
            continue;
        }
        match run.len() {
            0 => {}
            1 => out.append(&mut run),
            _ => {
                let merged = if run.iter().any(|r| matches!(r, Re::AnyChar)) {
                    Re::AnyChar
                } else if run.iter().any(|r| matches!(r, Re::AnyCharNotNl)) {
                    if run
                        .iter()
                        .any(|r| matches!(r, Re::Literal { runes, .. } if runes == &['\n']))
                    {
                        Re::AnyChar
                    } else {
                        Re::AnyCharNotNl
                    }
                } else {
                    Re::Class
                };
                run.clear();
                out.push(merged);
            }
        }
        out.extend(re);
    }

    // Round 4.
    let mut result: Vec<Re> = Vec::with_capacity(out.len());
    for re in out {
        if matches!(re, Re::EmptyMatch { .. })
            && matches!(result.last(), Some(Re::EmptyMatch { .. }))
        {
            // Go keeps the last of a run; the flags of the kept one matter.
            result.pop();
        }
        result.push(re);
    }
    result
}

/// Go's `Regexp.Simplify`: repetitions rewritten into `*`, `+`, `?` and
/// concatenations; nothing else restructured.
fn go_simplify(re: Re) -> Re {
    match re {
        Re::Capture(sub) => Re::Capture(Box::new(go_simplify(*sub))),
        Re::Concat(subs) => Re::Concat(subs.into_iter().map(go_simplify).collect()),
        Re::Alternate(subs) => Re::Alternate(subs.into_iter().map(go_simplify).collect()),
        Re::Star { sub, fold } => simplify1(Op::Star, go_simplify(*sub), fold),
        Re::Plus { sub, fold } => simplify1(Op::Plus, go_simplify(*sub), fold),
        Re::Quest { sub, fold } => simplify1(Op::Quest, go_simplify(*sub), fold),
        Re::Repeat {
            sub,
            min,
            max,
            fold,
        } => simplify_repeat(go_simplify(*sub), min, max, fold),
        r => r,
    }
}

#[derive(Copy, Clone, PartialEq)]
enum Op {
    Star,
    Plus,
    Quest,
}

fn simplify1(op: Op, sub: Re, fold: bool) -> Re {
    if matches!(sub, Re::EmptyMatch { .. }) {
        return sub;
    }
    let same = matches!(
        (op, &sub),
        (Op::Star, Re::Star { .. }) | (Op::Plus, Re::Plus { .. }) | (Op::Quest, Re::Quest { .. })
    );
    if same {
        return sub;
    }
    let sub = Box::new(sub);
    match op {
        Op::Star => Re::Star { sub, fold },
        Op::Plus => Re::Plus { sub, fold },
        Op::Quest => Re::Quest { sub, fold },
    }
}

/// Go's repetition rewrite. Only the shapes that can take part in a
/// simplification are built (`x{0,}`, `x{1,}`, `x{0,1}`, `x{1}`, `x{0}`);
/// every other count expands into copies that Loki never simplifies, so
/// they stay opaque instead of being expanded (which could be huge).
fn simplify_repeat(sub: Re, min: u32, max: Option<u32>, fold: bool) -> Re {
    match (min, max) {
        (0, Some(0)) => Re::EmptyMatch { fold: false },
        (0, None) => simplify1(Op::Star, sub, fold),
        (1, None) => simplify1(Op::Plus, sub, fold),
        (1, Some(1)) => sub,
        (0, Some(1)) => simplify1(Op::Quest, sub, fold),
        _ => Re::Other,
    }
}

#[cfg(test)]
fn simplify_repeat_expanded(sub: Re, min: u32, max: Option<u32>, fold: bool) -> Re {
    if min == 0 && max == Some(0) {
        return Re::EmptyMatch { fold: false };
    }
    let Some(max) = max else {
        return match min {
            0 => simplify1(Op::Star, sub, fold),
            1 => simplify1(Op::Plus, sub, fold),
            _ => {
                let mut subs: Vec<Re> = (0..min - 1).map(|_| sub.clone()).collect();
                subs.push(simplify1(Op::Plus, sub, fold));
                Re::Concat(subs)
            }
        };
    };
    if min == 1 && max == 1 {
        return sub;
    }
    let mut prefix: Option<Vec<Re>> = (min > 0).then(|| (0..min).map(|_| sub.clone()).collect());
    if max > min {
        let mut suffix = simplify1(Op::Quest, sub.clone(), fold);
        for _ in min + 1..max {
            suffix = simplify1(Op::Quest, Re::Concat(vec![sub.clone(), suffix]), fold);
        }
        match &mut prefix {
            None => return suffix,
            Some(p) => p.push(suffix),
        }
    }
    match prefix {
        Some(p) => Re::Concat(p),
        None => Re::Other,
    }
}

// ---------------------------------------------------------------------------
// Loki's RegexSimplifier
// ---------------------------------------------------------------------------

fn clear_capture(mut re: Re) -> Re {
    while let Re::Capture(sub) = re {
        re = *sub;
    }
    re
}

fn is_any_not_nl_star(re: &Re) -> bool {
    matches!(re, Re::Star { sub, .. } if **sub == Re::AnyCharNotNl)
}

fn runes_bytes(runes: &[char]) -> Vec<u8> {
    runes.iter().collect::<String>().into_bytes()
}

fn is_case_insensitive(re: &Re) -> bool {
    match re {
        Re::Literal { fold, .. }
        | Re::EmptyMatch { fold }
        | Re::Star { fold, .. }
        | Re::Plus { fold, .. }
        | Re::Quest { fold, .. }
        | Re::Repeat { fold, .. } => *fold,
        _ => false,
    }
}

fn loki_simplify(re: Re, is_label: bool) -> Option<MatchNode> {
    match re {
        Re::Alternate(subs) => simplify_alternate(subs, is_label),
        Re::Concat(subs) => simplify_concat(subs, None),
        Re::Capture(_) => loki_simplify(clear_capture(re), is_label),
        Re::Literal { runes, fold } => Some(if is_label {
            MatchNode::equal(runes_bytes(&runes), fold)
        } else {
            MatchNode::contains(runes_bytes(&runes), fold)
        }),
        Re::Star { ref sub, .. } if **sub == Re::AnyCharNotNl => Some(MatchNode::True),
        Re::Plus { ref sub, .. } if **sub == Re::AnyCharNotNl => Some(MatchNode::Exists),
        Re::EmptyMatch { .. } => Some(MatchNode::True),
        _ => None,
    }
}

fn simplify_alternate(subs: Vec<Re>, is_label: bool) -> Option<MatchNode> {
    let mut subs = subs.into_iter().map(clear_capture);
    let mut f = loki_simplify(subs.next()?, is_label)?;
    for s in subs {
        f = MatchNode::or(f, loki_simplify(s, is_label)?);
    }
    Some(f)
}

fn simplify_concat(subs: Vec<Re>, mut base: Option<Vec<u8>>) -> Option<MatchNode> {
    let subs: Vec<Re> = subs
        .into_iter()
        .map(clear_capture)
        .filter(|r| !matches!(r, Re::EmptyMatch { .. }))
        .collect();
    if subs.len() > 3 {
        return None;
    }
    let mut curr: Option<MatchNode> = None;
    let mut literals = 0;
    let mut base_fold = false;
    for sub in subs {
        match sub {
            Re::Literal { runes, fold } => {
                if literals != 0 {
                    return None;
                }
                literals += 1;
                base.get_or_insert_with(Vec::new)
                    .extend(runes_bytes(&runes));
                base_fold = fold;
            }
            Re::Alternate(alts) if base.is_some() => {
                let lit = base.clone().unwrap_or_default();
                curr = Some(simplify_concat_alternate(alts, &lit, curr, base_fold)?);
            }
            ref s if is_any_not_nl_star(s) => {}
            _ => return None,
        }
    }
    if curr.is_some() {
        return curr;
    }
    base.map(|b| MatchNode::contains(b, base_fold))
}

fn chain_or(curr: Option<MatchNode>, next: MatchNode) -> MatchNode {
    match curr {
        None => next,
        Some(c) => MatchNode::or(c, next),
    }
}

fn simplify_concat_alternate(
    alts: Vec<Re>,
    literal: &[u8],
    mut curr: Option<MatchNode>,
    base_fold: bool,
) -> Option<MatchNode> {
    for alt in alts {
        if !base_fold && is_case_insensitive(&alt) {
            return None;
        }
        let next = match alt {
            Re::EmptyMatch { .. } => MatchNode::contains(literal.to_vec(), base_fold),
            Re::Literal { runes, .. } => {
                let mut l = literal.to_vec();
                l.extend(runes_bytes(&runes));
                MatchNode::contains(l, base_fold)
            }
            Re::Concat(subs) => simplify_concat(subs, Some(literal.to_vec()))?,
            ref s if is_any_not_nl_star(s) => MatchNode::contains(literal.to_vec(), base_fold),
            _ => return None,
        };
        curr = Some(chain_or(curr, next));
    }
    curr
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(p: &str) -> String {
        describe(p, false).unwrap()
    }

    fn label(p: &str) -> String {
        describe(p, true).unwrap()
    }

    /// Loki's `Test_SimplifiedRegex` table (`filter_test.go`).
    #[test]
    fn loki_simplified_regex_table() {
        for (re, want) in [
            ("foo", r#"contains("foo")"#),
            ("(foo)", r#"contains("foo")"#),
            ("(foo|ba)", r#"or(contains("foo"), contains("ba"))"#),
            (
                "(foo|ba|ar)",
                r#"or(contains("foo"), contains("ba"), contains("ar"))"#,
            ),
            (
                "(foo|(ba|ar))",
                r#"or(contains("foo"), contains("ba"), contains("ar"))"#,
            ),
            ("foo.*", r#"contains("foo")"#),
            (".*foo", r#"contains("foo")"#),
            (".*foo.*", r#"contains("foo")"#),
            ("(.*)(foo).*", r#"contains("foo")"#),
            ("(foo.*|.*ba)", r#"or(contains("foo"), contains("ba"))"#),
            ("(foo.*|.*bar.*)", r#"or(contains("foo"), contains("bar"))"#),
            (".*foo.*|bar", r#"or(contains("foo"), contains("bar"))"#),
            (".*foo|bar", r#"or(contains("foo"), contains("bar"))"#),
            ("(?:.*foo.*|bar)", r#"or(contains("foo"), contains("bar"))"#),
            (
                "(?P<foo>.*foo.*|bar)",
                r#"or(contains("foo"), contains("bar"))"#,
            ),
            (
                ".*foo.*|bar|buzz",
                r#"or(contains("foo"), contains("bar"), contains("buzz"))"#,
            ),
            (
                ".*foo.*|bar|uzz",
                r#"or(contains("foo"), contains("bar"), contains("uzz"))"#,
            ),
            (
                "foo|bar|b|buzz|zz",
                r#"or(contains("foo"), contains("bar"), contains("b"), contains("buzz"), contains("zz"))"#,
            ),
            (
                "f|foo|foobar",
                r#"or(contains("f"), contains("foo"), contains("foobar"))"#,
            ),
            (
                "f.*|foobar.*|.*buzz",
                r#"or(contains("f"), contains("foobar"), contains("buzz"))"#,
            ),
            (
                "((f.*)|foobar.*)|.*buzz",
                r#"or(contains("f"), contains("foobar"), contains("buzz"))"#,
            ),
            (".*", "true"),
            (".*|.*", "true"),
            (".*||||", "true"),
            ("", "true"),
            ("(?i)foo", r#"contains_fold("foo")"#),
            (".+", "exists"),
        ] {
            assert_eq!(line(re), want, "{re}");
        }
        for re in [
            "[a-z]+foo",
            ".+foo",
            ".*fo.*o",
            r"\d",
            r"\sfoo",
            "foo?",
            "foo{1,2}bar{2,3}",
            r"foo|\d*bar",
            "foo|fo{1,2}",
            r"foo|fo\d*",
            r"foo|fo\d+",
            r"(\w\d+)",
            ".*f.*oo|fo{1,2}",
            "a.*b",
            "(?s)Task failed.*Thread",
            "Task failed.*Thread",
            "^foo",
            "foo$",
            "(?i)foo.*bar",
        ] {
            assert_eq!(line(re), "regex", "{re}");
        }
    }

    /// Label filters: literal = equality, factored alternations and `.*`
    /// concatenations = substring (Loki's anchoring inconsistency).
    #[test]
    fn label_semantics() {
        assert_eq!(
            label("Slow query detected"),
            r#"equal("Slow query detected")"#
        );
        assert_eq!(label("Slow query.*"), r#"contains("Slow query")"#);
        assert_eq!(label("error|warn"), r#"or(equal("error"), equal("warn"))"#);
        assert_eq!(
            label("warn|warning"),
            r#"or(contains("warn"), contains("warning"))"#
        );
        assert_eq!(
            label("prod|preprod"),
            r#"or(contains("prod"), contains("preprod"))"#
        );
        assert_eq!(label("al.*"), r#"contains("al")"#);
        assert_eq!(label(".*al"), r#"contains("al")"#);
        assert_eq!(
            label("request.*|task.*"),
            r#"or(contains("request"), contains("task"))"#
        );
        assert_eq!(label("(?i)foo"), r#"equal_fold("foo")"#);
        assert_eq!(label("xa|xb"), "regex", "x[ab] after factoring");
        assert_eq!(label("api|web"), r#"or(equal("api"), equal("web"))"#);
        assert_eq!(label("fo[o].*"), r#"contains("foo")"#);
        assert_eq!(label("[Ff].*"), r#"contains_fold("f")"#);
        assert_eq!(label(".*"), "true");
    }

    #[test]
    fn loki_quirks_are_kept() {
        // An always-true branch disappears from an or (newOrFilter).
        assert_eq!(line(".*|foo"), r#"contains("foo")"#);
        assert_eq!(line("|foo"), r#"contains("foo")"#);
        // A literal separated by a capture is two literals: not simplified.
        assert_eq!(line("(foo)bar"), "regex");
        // A literal group merges with its neighbours.
        assert_eq!(line("(?:foo)bar"), r#"contains("foobar")"#);
        assert_eq!(line("foo(?:bar.*)"), "regex", "flattened, not merged");
        // Case-insensitive alternatives after a sensitive prefix.
        assert_eq!(line("f|f(?i)oo"), "regex");
        assert_eq!(line("a{2}"), "regex");
        assert_eq!(line("(?:foo){1}"), r#"contains("foo")"#);
        assert_eq!(line(".{0,}foo"), r#"contains("foo")"#);
        // A `{` that is not a repetition is a literal, as in Go.
        assert_eq!(
            line(r#"{"level":"error""#),
            r#"contains("{\"level\":\"error\"")"#
        );
        assert_eq!(line(r"\Qa.b\E"), r#"contains("a.b")"#);
    }

    #[test]
    fn expanded_repeats_are_never_simplified() {
        // The full Go expansion of counted repeats, for the counts the
        // analysis leaves opaque, never yields a simplification.
        let lit = |s: &str| Re::Literal {
            runes: s.chars().collect(),
            fold: false,
        };
        let star = Re::Star {
            sub: Box::new(Re::AnyCharNotNl),
            fold: false,
        };
        for sub in [lit("foo"), star.clone(), Re::EmptyMatch { fold: false }] {
            for (min, max) in [
                (2, Some(2)),
                (2, None),
                (0, Some(3)),
                (1, Some(2)),
                (3, Some(5)),
            ] {
                let expanded = simplify_repeat_expanded(sub.clone(), min, max, false);
                let wrapped = Re::Concat(vec![lit("x"), expanded.clone()]);
                for re in [expanded, wrapped] {
                    for label in [false, true] {
                        let r = loki_simplify(re.clone(), label);
                        assert!(
                            r.is_none() || matches!(r, Some(MatchNode::True)),
                            "{sub:?}{{{min},{max:?}}}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn invalid_patterns_are_errors() {
        assert!(simplify("(", false).is_err());
        assert!(simplify("[z-a]", false).is_err());
        assert!(simplify(r"\p{Nope}", false).is_err());
    }
}
