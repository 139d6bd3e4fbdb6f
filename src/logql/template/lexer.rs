//! Lexer for Go `text/template` source, as Go 1.22's `text/template/parse`
//! scans it: text, `{{`/`}}` with trim markers (`{{- ` and ` -}}`), comments
//! (`{{/* */}}`), and the tokens inside actions.
//!
//! Owns tokenisation only; the parser decides what the tokens mean. Every
//! token carries its byte offset in the source so errors can point at it.

use super::TemplateError;

/// One token of template source.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok<'s> {
    /// Plain text outside actions, already trimmed by trim markers.
    Text(&'s str),
    LeftDelim,
    RightDelim,
    /// A run of spaces (space, tab, CR, LF) inside an action.
    Space,
    Pipe,
    /// `:=`
    Declare,
    /// `=`
    Assign,
    LeftParen,
    RightParen,
    /// `.name` (without the dot).
    Field(&'s str),
    Identifier(&'s str),
    /// `$` or `$name` (with the dollar).
    Variable(&'s str),
    Bool(bool),
    /// A number as written (`12`, `0x1F`, `1.5e3`, `-2`).
    Number(&'s str),
    /// A character constant as written, with its quotes (`'a'`).
    CharConst(&'s str),
    /// An interpreted string as written, with its quotes.
    Str(&'s str),
    /// A raw string as written, with its backquotes.
    RawStr(&'s str),
    /// Any other printable ASCII character (`,` is the only one the parser uses).
    Char(char),
    Dot,
    Nil,
    Keyword(Keyword),
    Eof,
}

/// Reserved words of the template language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyword {
    Block,
    Break,
    Continue,
    Define,
    Else,
    End,
    If,
    Range,
    Template,
    With,
}

impl Keyword {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Keyword::Block => "block",
            Keyword::Break => "break",
            Keyword::Continue => "continue",
            Keyword::Define => "define",
            Keyword::Else => "else",
            Keyword::End => "end",
            Keyword::If => "if",
            Keyword::Range => "range",
            Keyword::Template => "template",
            Keyword::With => "with",
        }
    }
}

/// A token and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token<'s> {
    pub tok: Tok<'s>,
    pub pos: usize,
}

const LEFT_DELIM: &str = "{{";
const RIGHT_DELIM: &str = "}}";
const LEFT_COMMENT: &str = "/*";
const RIGHT_COMMENT: &str = "*/";

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alphanumeric(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

/// `{{- ` : a minus followed by a space character.
fn has_left_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0] == b'-' && is_space(b[1] as char)
}

/// ` -}}` : a space character followed by a minus and the right delimiter.
fn has_right_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && is_space(b[0] as char) && b[1] == b'-' && s[2..].starts_with(RIGHT_DELIM)
}

/// Splits template source into tokens.
pub(crate) fn lex<'s>(name: &str, src: &'s str) -> Result<Vec<Token<'s>>, TemplateError> {
    let mut lx = Lexer {
        src,
        pos: 0,
        out: Vec::new(),
        name,
    };
    lx.run()?;
    Ok(lx.out)
}

struct Lexer<'s, 'n> {
    src: &'s str,
    pos: usize,
    out: Vec<Token<'s>>,
    name: &'n str,
}

impl<'s> Lexer<'s, '_> {
    fn err(&self, at: usize, message: impl Into<String>) -> TemplateError {
        TemplateError::Parse {
            name: self.name.to_string(),
            line: 1 + self.src[..at.min(self.src.len())].matches('\n').count(),
            message: message.into(),
        }
    }

    fn emit(&mut self, tok: Tok<'s>, pos: usize) {
        self.out.push(Token { tok, pos });
    }

    fn rest(&self) -> &'s str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn run(&mut self) -> Result<(), TemplateError> {
        loop {
            // Text up to the next left delimiter.
            let start = self.pos;
            let Some(x) = self.rest().find(LEFT_DELIM) else {
                if self.pos < self.src.len() {
                    self.emit(Tok::Text(&self.src[start..]), start);
                }
                self.pos = self.src.len();
                self.emit(Tok::Eof, self.pos);
                return Ok(());
            };
            let delim_at = start + x;
            let after = &self.src[delim_at + LEFT_DELIM.len()..];
            let trim = has_left_trim_marker(after);
            let text = &self.src[start..delim_at];
            let text = if trim {
                text.trim_end_matches(is_space)
            } else {
                text
            };
            if !text.is_empty() {
                self.emit(Tok::Text(text), start);
            }
            self.pos = delim_at + LEFT_DELIM.len();
            let marker = if trim { 2 } else { 0 };
            if self.src[self.pos + marker..].starts_with(LEFT_COMMENT) {
                self.pos += marker;
                self.comment(delim_at)?;
                continue;
            }
            self.emit(Tok::LeftDelim, delim_at);
            self.pos += marker;
            self.inside_action(delim_at)?;
        }
    }

    /// Scans `/* ... */` and the closing delimiter; the comment is dropped.
    fn comment(&mut self, delim_at: usize) -> Result<(), TemplateError> {
        self.pos += LEFT_COMMENT.len();
        let Some(i) = self.rest().find(RIGHT_COMMENT) else {
            return Err(self.err(delim_at, "unclosed comment"));
        };
        self.pos += i + RIGHT_COMMENT.len();
        let (at_delim, trim) = self.at_right_delim();
        if !at_delim {
            return Err(self.err(delim_at, "comment ends before closing delimiter"));
        }
        if trim {
            self.pos += 2;
        }
        self.pos += RIGHT_DELIM.len();
        if trim {
            self.skip_leading_space();
        }
        Ok(())
    }

    fn skip_leading_space(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start_matches(is_space).len();
    }

    /// Whether the input is at a right delimiter, possibly preceded by a trim marker.
    fn at_right_delim(&self) -> (bool, bool) {
        let rest = self.rest();
        if rest.starts_with(RIGHT_DELIM) {
            return (true, false);
        }
        if has_right_trim_marker(rest) {
            return (true, true);
        }
        (false, false)
    }

    /// Emits the right delimiter (with its optional trim marker).
    fn right_delim(&mut self) {
        let trim = has_right_trim_marker(self.rest());
        if trim {
            self.pos += 2;
        }
        let at = self.pos;
        self.pos += RIGHT_DELIM.len();
        self.emit(Tok::RightDelim, at);
        if trim {
            self.skip_leading_space();
        }
    }

    fn inside_action(&mut self, delim_at: usize) -> Result<(), TemplateError> {
        let mut paren_depth = 0usize;
        loop {
            let (at_delim, _) = self.at_right_delim();
            // A trim marker needs its space; " -}}" is lexed as space + delim below.
            if at_delim && self.rest().starts_with(RIGHT_DELIM) {
                if paren_depth == 0 {
                    self.right_delim();
                    return Ok(());
                }
                return Err(self.err(delim_at, "unclosed left paren"));
            }
            let start = self.pos;
            let Some(c) = self.peek() else {
                return Err(self.err(delim_at, "unclosed action"));
            };
            match c {
                c if is_space(c) => {
                    let rest = self.rest();
                    let n = rest.len() - rest.trim_start_matches(is_space).len();
                    let end = start + n;
                    // A trim-marked closing delimiter: the last space belongs to it.
                    if has_right_trim_marker(&self.src[end - 1..]) {
                        if n == 1 {
                            if paren_depth == 0 {
                                self.right_delim();
                                return Ok(());
                            }
                            return Err(self.err(delim_at, "unclosed left paren"));
                        }
                        self.pos = end - 1;
                    } else {
                        self.pos = end;
                    }
                    self.emit(Tok::Space, start);
                }
                ':' => {
                    if !self.rest().starts_with(":=") {
                        return Err(self.err(start, "expected :="));
                    }
                    self.pos += 2;
                    self.emit(Tok::Declare, start);
                }
                '=' => {
                    self.pos += 1;
                    self.emit(Tok::Assign, start);
                }
                '|' => {
                    self.pos += 1;
                    self.emit(Tok::Pipe, start);
                }
                '"' => self.quote(delim_at)?,
                '`' => self.raw_quote(delim_at)?,
                '$' => {
                    self.pos += 1;
                    self.field_or_variable(start, true)?;
                }
                '\'' => self.char_const(delim_at)?,
                '.' => {
                    let next = self.src.as_bytes().get(start + 1).copied();
                    if matches!(next, Some(b'0'..=b'9')) {
                        self.number()?;
                    } else {
                        self.pos += 1;
                        self.field_or_variable(start, false)?;
                    }
                }
                '+' | '-' | '0'..='9' => self.number()?,
                c if is_alphanumeric(c) => self.identifier()?,
                '(' => {
                    self.pos += 1;
                    self.emit(Tok::LeftParen, start);
                    paren_depth += 1;
                }
                ')' => {
                    self.pos += 1;
                    self.emit(Tok::RightParen, start);
                    if paren_depth == 0 {
                        return Err(self.err(start, "unexpected right paren"));
                    }
                    paren_depth -= 1;
                }
                c if c.is_ascii() && !c.is_ascii_control() => {
                    self.pos += 1;
                    self.emit(Tok::Char(c), start);
                }
                c => {
                    return Err(self.err(
                        start,
                        format!("unrecognized character in action: U+{:04X}", c as u32),
                    ));
                }
            }
        }
    }

    /// Whether the next character may end an identifier, field or variable.
    fn at_terminator(&self) -> bool {
        match self.peek() {
            None => true,
            Some(c) if is_space(c) => true,
            Some('.' | ',' | '|' | ':' | ')' | '(' | '=') => true,
            Some('}') => true,
            Some(_) => false,
        }
    }

    fn scan_alphanumerics(&mut self) {
        let rest = self.rest();
        let n = rest.len() - rest.trim_start_matches(is_alphanumeric).len();
        self.pos += n;
    }

    fn bad_character(&self) -> TemplateError {
        let c = self.peek().unwrap_or(' ');
        self.err(self.pos, format!("bad character U+{:04X} '{c}'", c as u32))
    }

    fn field_or_variable(&mut self, start: usize, variable: bool) -> Result<(), TemplateError> {
        if self.at_terminator() {
            if variable {
                self.emit(Tok::Variable("$"), start);
            } else {
                self.emit(Tok::Dot, start);
            }
            return Ok(());
        }
        self.scan_alphanumerics();
        if !self.at_terminator() {
            return Err(self.bad_character());
        }
        if variable {
            self.emit(Tok::Variable(&self.src[start..self.pos]), start);
        } else {
            self.emit(Tok::Field(&self.src[start + 1..self.pos]), start);
        }
        Ok(())
    }

    fn identifier(&mut self) -> Result<(), TemplateError> {
        let start = self.pos;
        self.scan_alphanumerics();
        if !self.at_terminator() {
            return Err(self.bad_character());
        }
        let word = &self.src[start..self.pos];
        let tok = match word {
            "block" => Tok::Keyword(Keyword::Block),
            "break" => Tok::Keyword(Keyword::Break),
            "continue" => Tok::Keyword(Keyword::Continue),
            "define" => Tok::Keyword(Keyword::Define),
            "else" => Tok::Keyword(Keyword::Else),
            "end" => Tok::Keyword(Keyword::End),
            "if" => Tok::Keyword(Keyword::If),
            "range" => Tok::Keyword(Keyword::Range),
            "template" => Tok::Keyword(Keyword::Template),
            "with" => Tok::Keyword(Keyword::With),
            "nil" => Tok::Nil,
            "true" => Tok::Bool(true),
            "false" => Tok::Bool(false),
            _ => Tok::Identifier(word),
        };
        self.emit(tok, start);
        Ok(())
    }

    fn accept(&mut self, valid: &str) -> bool {
        match self.peek() {
            Some(c) if valid.contains(c) => {
                self.pos += c.len_utf8();
                true
            }
            _ => false,
        }
    }

    fn accept_run(&mut self, valid: &str) {
        while self.accept(valid) {}
    }

    /// Scans a number the way Go's template lexer does: permissive, with
    /// `strconv` rejecting malformed ones in the parser.
    fn number(&mut self) -> Result<(), TemplateError> {
        let start = self.pos;
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 11 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        if digits.len() == 23 && self.accept("pP") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        self.accept("i");
        if self.peek().is_some_and(is_alphanumeric) {
            let end = self.pos + self.peek().map_or(0, char::len_utf8);
            return Err(self.err(
                start,
                format!("bad number syntax: {:?}", &self.src[start..end]),
            ));
        }
        if matches!(self.peek(), Some('+' | '-')) {
            return Err(self.err(start, "complex numbers are not supported"));
        }
        self.emit(Tok::Number(&self.src[start..self.pos]), start);
        Ok(())
    }

    fn quote(&mut self, delim_at: usize) -> Result<(), TemplateError> {
        let start = self.pos;
        self.pos += 1;
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err(delim_at, "unterminated quoted string"));
            };
            self.pos += c.len_utf8();
            match c {
                '\\' => match self.peek() {
                    None | Some('\n') => {
                        return Err(self.err(delim_at, "unterminated quoted string"));
                    }
                    Some(e) => self.pos += e.len_utf8(),
                },
                '\n' => return Err(self.err(delim_at, "unterminated quoted string")),
                '"' => break,
                _ => {}
            }
        }
        self.emit(Tok::Str(&self.src[start..self.pos]), start);
        Ok(())
    }

    fn raw_quote(&mut self, delim_at: usize) -> Result<(), TemplateError> {
        let start = self.pos;
        let Some(end) = self.src[start + 1..].find('`') else {
            return Err(self.err(delim_at, "unterminated raw quoted string"));
        };
        self.pos = start + 1 + end + 1;
        self.emit(Tok::RawStr(&self.src[start..self.pos]), start);
        Ok(())
    }

    fn char_const(&mut self, delim_at: usize) -> Result<(), TemplateError> {
        let start = self.pos;
        self.pos += 1;
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err(delim_at, "unterminated character constant"));
            };
            self.pos += c.len_utf8();
            match c {
                '\\' => match self.peek() {
                    None | Some('\n') => {
                        return Err(self.err(delim_at, "unterminated character constant"));
                    }
                    Some(e) => self.pos += e.len_utf8(),
                },
                '\n' => return Err(self.err(delim_at, "unterminated character constant")),
                '\'' => break,
                _ => {}
            }
        }
        self.emit(Tok::CharConst(&self.src[start..self.pos]), start);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok<'_>> {
        lex("t", src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn text_and_fields() {
        assert_eq!(
            toks("a{{.x}}b"),
            vec![
                Tok::Text("a"),
                Tok::LeftDelim,
                Tok::Field("x"),
                Tok::RightDelim,
                Tok::Text("b"),
                Tok::Eof
            ]
        );
        assert_eq!(
            toks("{{.x.y}}"),
            vec![
                Tok::LeftDelim,
                Tok::Field("x"),
                Tok::Field("y"),
                Tok::RightDelim,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn trim_markers() {
        assert_eq!(
            toks("a  {{- .x -}}\n b"),
            vec![
                Tok::Text("a"),
                Tok::LeftDelim,
                Tok::Field("x"),
                Tok::RightDelim,
                Tok::Text("b"),
                Tok::Eof
            ]
        );
        // "{{-3}}" is the number -3, not a trim marker.
        assert_eq!(
            toks("{{-3}}"),
            vec![Tok::LeftDelim, Tok::Number("-3"), Tok::RightDelim, Tok::Eof]
        );
        // Two spaces before the marker: one is an argument separator.
        assert_eq!(
            toks("{{.x  -}} y"),
            vec![
                Tok::LeftDelim,
                Tok::Field("x"),
                Tok::Space,
                Tok::RightDelim,
                Tok::Text("y"),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn comments() {
        assert_eq!(
            toks("a {{- /* c */ -}} b{{/*x*/}}"),
            vec![Tok::Text("a"), Tok::Text("b"), Tok::Eof]
        );
        assert!(lex("t", "{{/* x").is_err());
        assert!(lex("t", "{{/* x */ y}}").is_err());
    }

    #[test]
    fn literals_and_variables() {
        assert_eq!(
            toks(r#"{{$x := "a\"b" `r` 'c' 1.5e3 true nil}}"#),
            vec![
                Tok::LeftDelim,
                Tok::Variable("$x"),
                Tok::Space,
                Tok::Declare,
                Tok::Space,
                Tok::Str(r#""a\"b""#),
                Tok::Space,
                Tok::RawStr("`r`"),
                Tok::Space,
                Tok::CharConst("'c'"),
                Tok::Space,
                Tok::Number("1.5e3"),
                Tok::Space,
                Tok::Bool(true),
                Tok::Space,
                Tok::Nil,
                Tok::RightDelim,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn errors() {
        assert!(lex("t", "{{.x").is_err());
        assert!(lex("t", "{{ (.x }}").is_err());
        assert!(lex("t", "{{ .x) }}").is_err());
        assert!(lex("t", "{{ \"abc }}").is_err());
        assert!(lex("t", "{{ 3x }}").is_err());
        assert!(lex("t", "{{ a: }}").is_err());
    }
}
