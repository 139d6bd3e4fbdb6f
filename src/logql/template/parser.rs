//! Parser from tokens to the template AST, following Go's
//! `text/template/parse` grammar and its parse-time checks: functions must
//! exist, variables must be declared, `{{break}}`/`{{continue}}` only inside
//! `{{range}}`, only the first stage of a pipeline may be a plain operand.
//!
//! `define`, `template` and `block` are rejected: LogQL templates are single
//! anonymous templates. Nesting is limited so hostile input cannot overflow
//! the stack.

use super::TemplateError;
use super::ast::{Arg, Branch, Command, Node, Number, Pipe};
use super::funcs::{Func, compile_regex};
use super::lexer::{Keyword, Tok, Token, lex};
use super::value::{go_parse_float, go_parse_int, go_parse_uint};
use crate::model::labels::go_unescape;

/// Deepest nesting of control structures and parentheses accepted.
const MAX_DEPTH: usize = 64;

/// Parses template source into its item list.
pub(crate) fn parse(name: &str, src: &str) -> Result<Vec<Node>, TemplateError> {
    let tokens = lex(name, src)?;
    let mut p = Parser {
        name,
        src,
        tokens,
        i: 0,
        vars: vec!["$".to_string()],
        range_depth: 0,
        depth: 0,
    };
    let mut root = Vec::new();
    loop {
        if matches!(p.peek().tok, Tok::Eof) {
            return Ok(root);
        }
        match p.text_or_action()? {
            Item::Node(n) => root.push(n),
            Item::End(pos) => return Err(p.err(pos, "unexpected {{end}}")),
            Item::Else(pos) => return Err(p.err(pos, "unexpected {{else}}")),
        }
    }
}

/// What one `textOrAction` step yields.
enum Item {
    Node(Node),
    End(usize),
    /// `{{else}}`; for `else if`/`else with` the keyword is still pending.
    Else(usize),
}

struct Parser<'s, 'n> {
    name: &'n str,
    src: &'s str,
    tokens: Vec<Token<'s>>,
    i: usize,
    vars: Vec<String>,
    range_depth: usize,
    depth: usize,
}

impl<'s> Parser<'s, '_> {
    fn err(&self, pos: usize, message: impl Into<String>) -> TemplateError {
        TemplateError::Parse {
            name: self.name.to_string(),
            line: 1 + self.src[..pos.min(self.src.len())].matches('\n').count(),
            message: message.into(),
        }
    }

    fn peek(&self) -> &Token<'s> {
        // The lexer always ends the stream with Eof, and `next` never moves past it.
        &self.tokens[self.i.min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Token<'s> {
        let t = self.peek().clone();
        if self.i < self.tokens.len() - 1 {
            self.i += 1;
        }
        t
    }

    fn skip_space(&mut self) {
        while matches!(self.peek().tok, Tok::Space) {
            self.i += 1;
        }
    }

    fn peek_non_space(&mut self) -> &Token<'s> {
        self.skip_space();
        self.peek()
    }

    fn next_non_space(&mut self) -> Token<'s> {
        self.skip_space();
        self.next()
    }

    fn unexpected(&self, t: &Token<'_>, context: &str) -> TemplateError {
        let what = match &t.tok {
            Tok::Eof => "EOF".to_string(),
            Tok::RightDelim => "\"}}\"".to_string(),
            Tok::LeftDelim => "\"{{\"".to_string(),
            Tok::RightParen => "\")\"".to_string(),
            Tok::LeftParen => "\"(\"".to_string(),
            Tok::Pipe => "\"|\"".to_string(),
            Tok::Keyword(k) => format!("<{}>", k.as_str()),
            Tok::Char(c) => format!("{:?}", c.to_string()),
            _ => {
                let end = self
                    .tokens
                    .get(self.tokens.iter().position(|x| x == t).unwrap_or(0) + 1)
                    .map_or(self.src.len(), |n| n.pos);
                format!("{:?}", &self.src[t.pos..end.max(t.pos)])
            }
        };
        self.err(t.pos, format!("unexpected {what} in {context}"))
    }

    fn enter(&mut self, pos: usize) -> Result<(), TemplateError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(pos, "template nested too deeply"));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn text_or_action(&mut self) -> Result<Item, TemplateError> {
        let t = self.next_non_space();
        match t.tok {
            Tok::Text(s) => Ok(Item::Node(Node::Text(s.to_string()))),
            Tok::LeftDelim => self.action(),
            _ => Err(self.unexpected(&t, "input")),
        }
    }

    /// Items up to `{{end}}` or `{{else}}`.
    fn item_list(&mut self) -> Result<(Vec<Node>, Item), TemplateError> {
        let mut list = Vec::new();
        loop {
            if matches!(self.peek_non_space().tok, Tok::Eof) {
                let pos = self.peek().pos;
                return Err(self.err(pos, "unexpected EOF"));
            }
            match self.text_or_action()? {
                Item::Node(n) => list.push(n),
                other => return Ok((list, other)),
            }
        }
    }

    fn expect_right_delim(&mut self, context: &str) -> Result<Token<'s>, TemplateError> {
        let t = self.next_non_space();
        if !matches!(t.tok, Tok::RightDelim) {
            return Err(self.unexpected(&t, context));
        }
        Ok(t)
    }

    fn action(&mut self) -> Result<Item, TemplateError> {
        let t = self.next_non_space();
        match t.tok {
            Tok::Keyword(Keyword::Break) | Tok::Keyword(Keyword::Continue) => {
                let is_break = matches!(t.tok, Tok::Keyword(Keyword::Break));
                let word = if is_break {
                    "{{break}}"
                } else {
                    "{{continue}}"
                };
                self.expect_right_delim(word)?;
                if self.range_depth == 0 {
                    return Err(self.err(t.pos, format!("{word} outside {{{{range}}}}")));
                }
                Ok(Item::Node(if is_break {
                    Node::Break
                } else {
                    Node::Continue
                }))
            }
            Tok::Keyword(Keyword::Else) => {
                // `else if` / `else with` leave their keyword pending.
                if matches!(
                    self.peek_non_space().tok,
                    Tok::Keyword(Keyword::If) | Tok::Keyword(Keyword::With)
                ) {
                    return Ok(Item::Else(t.pos));
                }
                self.expect_right_delim("else")?;
                Ok(Item::Else(t.pos))
            }
            Tok::Keyword(Keyword::End) => {
                self.expect_right_delim("end")?;
                Ok(Item::End(t.pos))
            }
            Tok::Keyword(Keyword::If) => Ok(Item::Node(Node::If(self.control("if", t.pos)?))),
            Tok::Keyword(Keyword::With) => Ok(Item::Node(Node::With(self.control("with", t.pos)?))),
            Tok::Keyword(Keyword::Range) => {
                Ok(Item::Node(Node::Range(self.control("range", t.pos)?)))
            }
            Tok::Keyword(k @ (Keyword::Define | Keyword::Template | Keyword::Block)) => {
                Err(self.err(t.pos, format!("{{{{{}}}}} is not supported", k.as_str())))
            }
            _ => {
                self.i -= 1;
                let pipe = self.pipeline("command", true)?;
                Ok(Item::Node(Node::Action(pipe)))
            }
        }
    }

    /// `if`, `with` and `range`: pipeline, list, optional else list, end.
    fn control(&mut self, context: &str, pos: usize) -> Result<Box<Branch>, TemplateError> {
        self.enter(pos)?;
        let saved_vars = self.vars.len();
        let result = self.control_body(context);
        self.vars.truncate(saved_vars);
        self.leave();
        result
    }

    fn control_body(&mut self, context: &str) -> Result<Box<Branch>, TemplateError> {
        let pipe = self.pipeline(context, true)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let listed = self.item_list();
        if context == "range" {
            self.range_depth -= 1;
        }
        let (list, next) = listed?;
        let mut else_list = None;
        if let Item::Else(else_pos) = next {
            let pending = self.peek_non_space().clone();
            match pending.tok {
                Tok::Keyword(Keyword::If) if context == "if" => {
                    self.next();
                    else_list = Some(vec![Node::If(self.control("if", pending.pos)?)]);
                }
                Tok::Keyword(Keyword::With) if context == "with" => {
                    self.next();
                    else_list = Some(vec![Node::With(self.control("with", pending.pos)?)]);
                }
                Tok::Keyword(Keyword::If | Keyword::With) => {
                    return Err(self.unexpected(&pending, "else"));
                }
                _ => {
                    let (l, end) = self.item_list()?;
                    match end {
                        Item::End(_) => else_list = Some(l),
                        _ => return Err(self.err(else_pos, "expected end; found {{else}}")),
                    }
                }
            }
        }
        Ok(Box::new(Branch {
            pipe,
            list,
            else_list,
        }))
    }

    /// A pipeline ending at `}}` (`at_delim`) or `)`.
    fn pipeline(&mut self, context: &str, at_delim: bool) -> Result<Pipe, TemplateError> {
        let pos = self.peek_non_space().pos;
        let mut pipe = Pipe {
            pos,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        // Declarations: `$x :=`, `$x =`, and in range `$i, $e :=`.
        loop {
            let v = self.peek_non_space().clone();
            let Tok::Variable(name) = v.tok else { break };
            let save = self.i;
            self.next();
            let after = self.peek_non_space().clone();
            match after.tok {
                Tok::Declare | Tok::Assign => {
                    self.next();
                    pipe.is_assign = matches!(after.tok, Tok::Assign);
                    pipe.decl.push(name.to_string());
                    self.vars.push(name.to_string());
                    break;
                }
                Tok::Char(',') => {
                    self.next();
                    pipe.decl.push(name.to_string());
                    self.vars.push(name.to_string());
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space().tok {
                            Tok::Variable(_) | Tok::RightDelim | Tok::RightParen => continue,
                            _ => return Err(self.err(v.pos, "range can only initialize variables")),
                        }
                    }
                    return Err(self.err(v.pos, format!("too many declarations in {context}")));
                }
                _ => {
                    self.i = save;
                    break;
                }
            }
        }
        loop {
            let t = self.next_non_space();
            match t.tok {
                Tok::RightDelim if at_delim => break,
                Tok::RightParen if !at_delim => break,
                Tok::Bool(_)
                | Tok::CharConst(_)
                | Tok::Dot
                | Tok::Field(_)
                | Tok::Identifier(_)
                | Tok::Number(_)
                | Tok::Nil
                | Tok::RawStr(_)
                | Tok::Str(_)
                | Tok::Variable(_)
                | Tok::LeftParen => {
                    self.i -= 1;
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return Err(self.unexpected(&t, context)),
            }
        }
        if pipe.cmds.is_empty() {
            return Err(self.err(pos, format!("missing value for {context}")));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                c.args[0],
                Arg::Bool { .. }
                    | Arg::Dot { .. }
                    | Arg::Nil { .. }
                    | Arg::Number(_)
                    | Arg::Str { .. }
            ) {
                return Err(self.err(
                    c.pos,
                    format!("non executable command in pipeline stage {}", i + 1),
                ));
            }
        }
        Ok(pipe)
    }

    fn command(&mut self) -> Result<Command, TemplateError> {
        let pos = self.peek_non_space().pos;
        let mut args = Vec::new();
        loop {
            self.skip_space();
            if let Some(a) = self.operand()? {
                args.push(a);
            }
            let t = self.next();
            match t.tok {
                Tok::Space => continue,
                Tok::RightDelim | Tok::RightParen => {
                    self.i -= 1;
                }
                Tok::Pipe => {}
                _ => return Err(self.unexpected(&t, "operand")),
            }
            break;
        }
        if args.is_empty() {
            return Err(self.err(pos, "empty command"));
        }
        let regex = match (&args[0], args.get(1)) {
            (Arg::Func { func, .. }, Some(Arg::Str { value, .. })) if func.takes_regex() => {
                Some(compile_regex(value))
            }
            _ => None,
        };
        Ok(Command { pos, args, regex })
    }

    fn operand(&mut self) -> Result<Option<Arg>, TemplateError> {
        let Some(term) = self.term()? else {
            return Ok(None);
        };
        if !matches!(self.peek().tok, Tok::Field(_)) {
            return Ok(Some(term));
        }
        let mut fields = Vec::new();
        while let Tok::Field(f) = self.peek().tok {
            fields.push(f.to_string());
            self.next();
        }
        Ok(Some(match term {
            Arg::Field { pos, mut idents } => {
                idents.extend(fields);
                Arg::Field { pos, idents }
            }
            Arg::Variable {
                pos,
                name,
                fields: mut existing,
            } => {
                existing.extend(fields);
                Arg::Variable {
                    pos,
                    name,
                    fields: existing,
                }
            }
            Arg::Bool { .. }
            | Arg::Str { .. }
            | Arg::Number(_)
            | Arg::Nil { .. }
            | Arg::Dot { .. } => {
                return Err(self.err(
                    term.pos(),
                    format!("unexpected . after term {:?}", term.to_string()),
                ));
            }
            other => Arg::Chain {
                pos: other.pos(),
                node: Box::new(other),
                fields,
            },
        }))
    }

    fn term(&mut self) -> Result<Option<Arg>, TemplateError> {
        let t = self.next_non_space();
        let pos = t.pos;
        Ok(Some(match t.tok {
            Tok::Identifier(name) => {
                let Some(func) = Func::lookup(name) else {
                    return Err(self.err(pos, format!("function {name:?} not defined")));
                };
                Arg::Func {
                    pos,
                    func,
                    name: name.to_string(),
                }
            }
            Tok::Dot => Arg::Dot { pos },
            Tok::Nil => Arg::Nil { pos },
            Tok::Variable(name) => {
                if !self.vars.iter().any(|v| v == name) {
                    return Err(self.err(pos, format!("undefined variable {name:?}")));
                }
                Arg::Variable {
                    pos,
                    name: name.to_string(),
                    fields: Vec::new(),
                }
            }
            Tok::Field(f) => Arg::Field {
                pos,
                idents: vec![f.to_string()],
            },
            Tok::Bool(value) => Arg::Bool { pos, value },
            Tok::Number(text) => Arg::Number(Box::new(self.number(pos, text)?)),
            Tok::CharConst(text) => Arg::Number(Box::new(self.char_const(pos, text)?)),
            Tok::LeftParen => {
                self.enter(pos)?;
                let pipe = self.pipeline("parenthesized pipeline", false);
                self.leave();
                Arg::Pipe(Box::new(pipe?))
            }
            Tok::Str(quoted) => {
                let Some(value) = go_unescape(&quoted[1..quoted.len() - 1]) else {
                    return Err(self.err(pos, "invalid syntax"));
                };
                Arg::Str {
                    pos,
                    quoted: quoted.to_string(),
                    value,
                }
            }
            Tok::RawStr(quoted) => Arg::Str {
                pos,
                quoted: quoted.to_string(),
                // Go's strconv.Unquote drops carriage returns from raw strings.
                value: quoted[1..quoted.len() - 1].replace('\r', ""),
            },
            _ => {
                self.i -= 1;
                return Ok(None);
            }
        }))
    }

    fn char_const(&self, pos: usize, text: &str) -> Result<Number, TemplateError> {
        let body = &text[1..text.len() - 1];
        let c = if body.starts_with('\\') {
            if body == "\\'" {
                Some('\'')
            } else if body == "\\\"" {
                None
            } else {
                go_unescape(body).and_then(|s| {
                    let mut it = s.chars();
                    match (it.next(), it.next()) {
                        (Some(c), None) => Some(c),
                        _ => None,
                    }
                })
            }
        } else {
            let mut it = body.chars();
            match (it.next(), it.next()) {
                (Some(c), None) => Some(c),
                _ => None,
            }
        };
        let Some(c) = c else {
            return Err(self.err(pos, format!("malformed character constant: {text}")));
        };
        let v = c as u32;
        Ok(Number {
            pos,
            text: text.to_string(),
            int: Some(i64::from(v)),
            uint: Some(u64::from(v)),
            float: Some(f64::from(v)),
        })
    }

    fn number(&self, pos: usize, text: &str) -> Result<Number, TemplateError> {
        if text.ends_with('i') {
            return Err(self.err(pos, format!("complex numbers are not supported: {text:?}")));
        }
        let uint = go_parse_uint(text);
        let int = go_parse_int(text);
        let mut n = Number {
            pos,
            text: text.to_string(),
            int,
            uint: if int == Some(0) { Some(0) } else { uint },
            float: None,
        };
        if let Some(i) = n.int {
            n.float = Some(i as f64);
        } else if let Some(u) = n.uint {
            n.float = Some(u as f64);
        } else if let Some(f) = go_parse_float(text) {
            if !text.contains(['.', 'e', 'E', 'p', 'P']) {
                return Err(self.err(pos, format!("integer overflow: {text:?}")));
            }
            n.float = Some(f);
            if f.fract() == 0.0
                && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f)
            {
                n.int = Some(f as i64);
            }
            if f.fract() == 0.0 && (0.0..1.844_674_407_370_955_2e19).contains(&f) {
                n.uint = Some(f as u64);
            }
        }
        if n.int.is_none() && n.uint.is_none() && n.float.is_none() {
            return Err(self.err(pos, format!("illegal number syntax: {text:?}")));
        }
        Ok(n)
    }
}
