//! The text form of filters: a CEL expression (the syntax trigger conditions use) translated
//! into the same tree as the YAML form, then validated by the same code.
//!
//! | CEL | tree |
//! |---|---|
//! | `a && b`, `a \|\| b`, `!a` | `and`, `or`, `not` |
//! | `customer.points > 100` (also `100 < customer.points`) | `{attribute: points, gt: 100}` |
//! | `customer.tier in ['gold', 'silver']` | `{attribute: tier, in: [gold, silver]}` |
//! | `'vip' in customer.tags`, `customer.tags.contains('vip')` | `{attribute: tags, contains: vip}` |
//! | `customer.email.startsWith('a')` | `starts_with` |
//! | `has(customer.email)`, `customer.email != null` / `== null` | `exists` / `missing` |
//! | `customer.last_order_at < now - duration('720h')` | `lt: now-720h` |
//! | `customer.signup_at >= timestamp('2026-01-01T00:00:00Z')` | absolute time |
//! | `in_segment('vip')` (or `segment('vip')`) | `in_segment: vip` |
//! | `performed('order.completed')`, `performed('order.completed', '30d')` | `performed` |
//! | `count('order.completed', '30d') >= 3` | `count: {ge: 3}` (`>`, `<` on counts become `ge n+1`, `le n-1`) |
//! | `sum('order.completed', 'total', '30d') >= 100` | `sum: {property: total, ge: 100}` |
//!
//! Errors point at the `cel:` string in the file and say which construct is not supported.
//!
//! Durations inside `duration('…')` use the segment window syntax (whole numbers with `w`,
//! `d`, `h`, `m`, `s`: `30d`, `720h`), not the trigger-condition one (which has no `d`/`w` but
//! takes fractions and `ms`/`us`/`ns`).

use cel::common::ast::{operators as op, Expr, IdedExpr, LiteralValue};
use cel::parser::Parser;
use serde_saphyr::{Location, Spanned};

use crate::config::{Lit, RawEvent, RawFilter, RawNum};

/// Why a CEL filter could not be translated.
#[derive(Debug, Clone, PartialEq)]
pub struct TextError {
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

fn err(message: impl Into<String>, help: Option<&str>) -> TextError {
    TextError {
        message: message.into(),
        help: help.map(str::to_string),
    }
}

const HELP: &str = "supported: &&, ||, !, customer.<column> compared with a literal, in [..], .contains(), .startsWith(), has(), in_segment('id'), performed('type'[, '30d']), count('type'[, '30d']) >= n, sum('type', 'prop'[, '30d']) >= x";

/// Translates a CEL filter into a raw filter tree whose nodes are all located at `at`.
///
/// The `cel` parser recurses deeply per nesting level (a debug build needs about 16 MiB for
/// the 90 nested parentheses its depth limit lets through): this runs inside
/// [`crate::compile_segments`], on the big stack of
/// [`fusebox_engine::config::on_config_stack`], so a deeply nested filter is a located error
/// or a filter, never a stack overflow.
pub(crate) fn translate(src: &str, at: Location) -> Result<Spanned<RawFilter>, TextError> {
    if src.trim().is_empty() {
        return Err(err("empty filter expression", Some(HELP)));
    }
    let ast = Parser::new().parse(src).map_err(|e| {
        let msg = e
            .errors
            .first()
            .map_or("invalid expression".to_string(), |x| x.msg.clone());
        let (message, help) = fusebox_engine::expr::describe_syntax_error(&msg);
        if msg.contains("Recursion limit") {
            err(
                message,
                Some("split it, or write the filter as a YAML tree"),
            )
        } else {
            err(message, help)
        }
    })?;
    let t = Translator { at };
    t.node(&ast)
}

struct Translator {
    at: Location,
}

fn column(e: &IdedExpr) -> Option<&str> {
    match &e.expr {
        Expr::Select(s) if !s.test => match &s.operand.expr {
            Expr::Ident(root) if root == "customer" => Some(&s.field),
            _ => None,
        },
        _ => None,
    }
}

fn string_lit(e: &IdedExpr) -> Option<String> {
    match &e.expr {
        Expr::Literal(LiteralValue::String(s)) => Some(s.inner().to_string()),
        _ => None,
    }
}

impl Translator {
    fn sp<T>(&self, v: T) -> Spanned<T> {
        Spanned::new(v, self.at, self.at)
    }

    fn node(&self, e: &IdedExpr) -> Result<Spanned<RawFilter>, TextError> {
        match &e.expr {
            Expr::Call(c) => {
                let f = c.func_name.as_str();
                match (f, c.args.as_slice(), c.target.as_deref()) {
                    (op::LOGICAL_AND | op::LOGICAL_OR, [a, b], None) => {
                        let kids = vec![self.node(a)?, self.node(b)?];
                        let mut r = RawFilter::default();
                        if f == op::LOGICAL_AND {
                            r.and = Some(kids);
                        } else {
                            r.or = Some(kids);
                        }
                        Ok(self.sp(r))
                    }
                    (op::LOGICAL_NOT, [a], None) => Ok(self.sp(RawFilter {
                        not: Some(Box::new(self.node(a)?)),
                        ..Default::default()
                    })),
                    (
                        op::EQUALS
                        | op::NOT_EQUALS
                        | op::LESS
                        | op::LESS_EQUALS
                        | op::GREATER
                        | op::GREATER_EQUALS,
                        [a, b],
                        None,
                    ) => self.comparison(f, a, b),
                    (op::IN, [a, b], None) => self.membership(a, b),
                    ("contains" | "startsWith", [arg], Some(target)) => {
                        let name = column(target).ok_or_else(|| {
                            err(
                                format!("`.{f}()` needs `customer.<column>` as receiver"),
                                Some(HELP),
                            )
                        })?;
                        let s = string_lit(arg)
                            .ok_or_else(|| err(format!("`.{f}()` takes a string literal"), None))?;
                        let mut r = self.attr(name);
                        if f == "contains" {
                            r.contains = Some(self.sp(s));
                        } else {
                            r.starts_with = Some(self.sp(s));
                        }
                        Ok(self.sp(r))
                    }
                    ("in_segment" | "segment", [arg], None) => {
                        let id = string_lit(arg).ok_or_else(|| {
                            err("in_segment() takes the segment id as a string", None)
                        })?;
                        Ok(self.sp(RawFilter {
                            in_segment: Some(self.sp(id)),
                            ..Default::default()
                        }))
                    }
                    ("performed", args, None) => {
                        let ev = self.event_args(args, false)?;
                        Ok(self.sp(RawFilter {
                            performed: Some(self.sp(ev)),
                            ..Default::default()
                        }))
                    }
                    _ => Err(err(
                        format!("unsupported call `{}`", f.trim_matches('_')),
                        Some(HELP),
                    )),
                }
            }
            Expr::Select(s) if s.test => {
                let name = column(&s.operand).map(|_| s.field.as_str());
                let name = match (&s.operand.expr, name) {
                    (Expr::Ident(root), _) if root == "customer" => s.field.as_str(),
                    _ => return Err(err("has() takes customer.<column>", None)),
                };
                let mut r = self.attr(name);
                r.exists = Some(self.sp(true));
                Ok(self.sp(r))
            }
            Expr::Literal(LiteralValue::Boolean(_)) => Err(err(
                "constant true/false filters are not supported",
                Some("write the condition itself"),
            )),
            _ => Err(err("unsupported expression", Some(HELP))),
        }
    }

    fn attr(&self, name: &str) -> RawFilter {
        RawFilter {
            attribute: Some(self.sp(name.to_string())),
            ..Default::default()
        }
    }

    fn literal(&self, e: &IdedExpr) -> Result<Option<Lit>, TextError> {
        Ok(Some(match &e.expr {
            Expr::Literal(LiteralValue::Int(i)) => Lit::Int(*i.inner()),
            Expr::Literal(LiteralValue::UInt(u)) => {
                Lit::Int(i64::try_from(*u.inner()).map_err(|_| err("integer out of range", None))?)
            }
            Expr::Literal(LiteralValue::Double(d)) => Lit::Float(*d.inner()),
            Expr::Literal(LiteralValue::String(s)) => Lit::Str(s.inner().to_string()),
            Expr::Literal(LiteralValue::Boolean(b)) => Lit::Bool(*b.inner()),
            Expr::Literal(LiteralValue::Null) => return Ok(None),
            Expr::Ident(n) if n == "now" => Lit::Time("now".into()),
            Expr::Call(c) if c.func_name == "timestamp" && c.args.len() == 1 => Lit::Time(
                string_lit(&c.args[0]).ok_or_else(|| err("timestamp() takes a string", None))?,
            ),
            Expr::Call(c) if c.func_name == op::NEGATE && c.args.len() == 1 => {
                match self.literal(&c.args[0])? {
                    Some(Lit::Int(i)) => Lit::Int(-i),
                    Some(Lit::Float(x)) => Lit::Float(-x),
                    _ => return Err(err("unsupported negation", None)),
                }
            }
            Expr::Call(c)
                if (c.func_name == op::SUBSTRACT || c.func_name == op::ADD)
                    && c.args.len() == 2 =>
            {
                let is_now = matches!(&c.args[0].expr, Expr::Ident(n) if n == "now");
                let dur = match &c.args[1].expr {
                    Expr::Call(d) if d.func_name == "duration" && d.args.len() == 1 => {
                        string_lit(&d.args[0])
                    }
                    _ => None,
                };
                match (is_now, dur) {
                    (true, Some(d)) => {
                        let sign = if c.func_name == op::SUBSTRACT { '-' } else { '+' };
                        Lit::Time(format!("now{sign}{d}"))
                    }
                    _ => return Err(err("only `now - duration('…')` / `now + duration('…')` arithmetic is supported", None)),
                }
            }
            _ => return Err(err(
                "expected a literal (number, string, bool, timestamp('…'), now - duration('…'))",
                Some(HELP),
            )),
        }))
    }

    fn comparison(
        &self,
        f: &str,
        a: &IdedExpr,
        b: &IdedExpr,
    ) -> Result<Spanned<RawFilter>, TextError> {
        // Event aggregates on the left: count(...) >= n, sum(...) >= x.
        if let Expr::Call(c) = &a.expr {
            if c.target.is_none() && (c.func_name == "count" || c.func_name == "sum") {
                return self.aggregate(&c.func_name, &c.args, f, b);
            }
        }
        let (name, lit_expr, f) = match (column(a), column(b)) {
            (Some(n), _) => (n, b, f.to_string()),
            (None, Some(n)) => {
                let flipped = match f {
                    op::LESS => op::GREATER,
                    op::LESS_EQUALS => op::GREATER_EQUALS,
                    op::GREATER => op::LESS,
                    op::GREATER_EQUALS => op::LESS_EQUALS,
                    other => other,
                };
                (n, a, flipped.to_string())
            }
            (None, None) => {
                return Err(err(
                    "a comparison needs `customer.<column>` on one side",
                    Some(HELP),
                ))
            }
        };
        let mut r = self.attr(name);
        match (self.literal(lit_expr)?, f.as_str()) {
            (None, op::EQUALS) => r.missing = Some(self.sp(true)),
            (None, op::NOT_EQUALS) => r.exists = Some(self.sp(true)),
            (None, _) => return Err(err("null can only be compared with == or !=", None)),
            (Some(l), _) => {
                let l = Some(self.sp(l));
                match f.as_str() {
                    op::EQUALS => r.eq = l,
                    op::NOT_EQUALS => r.ne = l,
                    op::LESS => r.lt = l,
                    op::LESS_EQUALS => r.le = l,
                    op::GREATER => r.gt = l,
                    _ => r.ge = l,
                }
            }
        }
        Ok(self.sp(r))
    }

    fn membership(&self, a: &IdedExpr, b: &IdedExpr) -> Result<Spanned<RawFilter>, TextError> {
        if let Some(name) = column(a) {
            let Expr::List(list) = &b.expr else {
                return Err(err("`in` needs a list literal on the right", None));
            };
            let mut items = Vec::new();
            for e in &list.elements {
                items.push(
                    self.literal(e)?
                        .ok_or_else(|| err("null is not allowed in `in` lists", None))?,
                );
            }
            let mut r = self.attr(name);
            r.in_ = Some(self.sp(items));
            return Ok(self.sp(r));
        }
        if let (Some(name), Some(s)) = (column(b), string_lit(a)) {
            let mut r = self.attr(name);
            r.contains = Some(self.sp(s));
            return Ok(self.sp(r));
        }
        Err(err(
            "unsupported `in`",
            Some("write `customer.tier in ['gold']` or `'vip' in customer.tags`"),
        ))
    }

    fn event_args(&self, args: &[IdedExpr], with_prop: bool) -> Result<RawEvent, TextError> {
        let strings: Option<Vec<String>> = args.iter().map(string_lit).collect();
        let strings = strings.ok_or_else(|| err("event functions take string literals", None))?;
        let min = if with_prop { 2 } else { 1 };
        if strings.len() < min || strings.len() > min + 1 {
            return Err(err(
                if with_prop {
                    "sum() takes ('event type', 'property'[, 'window'])"
                } else {
                    "expected ('event type'[, 'window'])"
                },
                None,
            ));
        }
        Ok(RawEvent {
            event: Some(self.sp(strings[0].clone())),
            within: strings.get(min).map(|w| self.sp(w.clone())),
            ..Default::default()
        })
    }

    fn aggregate(
        &self,
        func: &str,
        args: &[IdedExpr],
        f: &str,
        rhs: &IdedExpr,
    ) -> Result<Spanned<RawFilter>, TextError> {
        let is_sum = func == "sum";
        let mut ev = self.event_args(args, is_sum)?;
        let x = match self.literal(rhs)? {
            Some(Lit::Int(i)) => i as f64,
            Some(Lit::Float(x)) => x,
            _ => return Err(err(format!("{func}() compares with a number"), None)),
        };
        let cond = match f {
            op::GREATER_EQUALS => RawNum {
                ge: Some(x),
                ..Default::default()
            },
            op::LESS_EQUALS => RawNum {
                le: Some(x),
                ..Default::default()
            },
            op::EQUALS => RawNum {
                eq: Some(x),
                ..Default::default()
            },
            op::GREATER if !is_sum => RawNum {
                ge: Some(x.floor() + 1.0),
                ..Default::default()
            },
            op::LESS if !is_sum => RawNum {
                le: Some(x.ceil() - 1.0),
                ..Default::default()
            },
            _ => {
                return Err(err(
                    format!(
                        "{func}() supports >=, <=, =={}",
                        if is_sum { "" } else { ", >, <" }
                    ),
                    None,
                ))
            }
        };
        if is_sum {
            let prop = string_lit(&args[1]).unwrap_or_default();
            ev.sum = Some(self.sp(crate::config::RawSum {
                property: self.sp(prop),
                ge: cond.ge,
                le: cond.le,
                eq: cond.eq,
                between: None,
            }));
        } else {
            ev.count = Some(self.sp(cond));
        }
        Ok(self.sp(RawFilter {
            performed: Some(self.sp(ev)),
            ..Default::default()
        }))
    }
}
