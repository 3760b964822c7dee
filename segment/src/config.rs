//! Segment files: YAML in, a validated [`SegmentGroup`] out, or every problem located (file,
//! line, column, hint) as engine [`Diagnostic`]s — the same shape `fusebox check` prints for
//! triggers.
//!
//! ```yaml
//! segments:
//!   - id: vip
//!     owner: crm@shop.example
//!     filter:
//!       and:
//!         - { attribute: tier, in: [gold, silver] }
//!         - performed: { event: order.completed, within: 30d, count: { ge: 2 } }
//!         - not: { in_segment: churned }
//!   - id: churned
//!     owner: crm@shop.example
//!     filter: { cel: "customer.last_order_at < now - duration('2160h')" }
//! ```
//!
//! A filter node is a map with exactly one of: `and`, `or` (non-empty lists), `not`,
//! `attribute` (+ one operator), `performed`, `not_performed`, `first_performed`,
//! `last_performed`, `in_segment`, `cel` (the text form, see [`crate::text`]).
//! Everything is checked before any work: unknown columns, literal types, malformed windows
//! and times, unknown or cyclic segment references, empty groups. Shape problems (unknown
//! keys, wrong types, missing fields) are reported for every segment at once, not only the
//! first (see [`fusebox_engine::config::shape`]); a segment whose shape is broken is left out
//! of the other checks, and references to it are not reported as unknown. Unknown event types are
//! allowed (they match nothing) but warned about when the known types are given.

use std::sync::Arc;

use fusebox_engine::config::shape::{read_items, read_shape, Shape};
use fusebox_engine::config::{on_config_stack, ConfigError, Diagnostic, Severity};
use fusebox_engine::customers::Schema;
use fusebox_engine::expr::closest_name;
use fusebox_engine::value::AttrType;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

use crate::model::{
    parse_duration, AttrPred, CmpOp, EventPred, EventTest, Filter, NumCond, PropPred, Scalar,
    Segment, SegmentGroup, TimeRef, ValueOp, Window,
};

/// A literal as written in YAML (where times are strings), or translated from CEL (where a time
/// is its own kind: `now`, `now - duration('…')`, `timestamp('…')`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub(crate) enum Lit {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A time in [`TimeRef::parse`] syntax, from CEL only: it matches timestamp columns and
    /// nothing else.
    #[serde(skip)]
    Time(String),
}

impl Lit {
    fn kind(&self) -> &'static str {
        match self {
            Lit::Bool(_) => "bool",
            Lit::Int(_) => "int",
            Lit::Float(_) => "float",
            Lit::Str(_) => "string",
            Lit::Time(_) => "time",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    #[allow(dead_code)]
    version: Option<u32>,
    segments: Spanned<Vec<RawSegment>>,
}

impl Shape for RawFile {
    const LISTS: &'static [&'static str] = &["segments"];

    fn read_list(
        key: &str,
        text: &str,
        into: Option<&mut Self>,
    ) -> Result<(), serde_saphyr::Error> {
        match key {
            "segments" => read_items(text, into.map(|f| &mut f.segments.value)),
            // Only the keys of `LISTS` are ever asked for.
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSegment {
    id: Spanned<String>,
    owner: Spanned<String>,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    filter: Spanned<RawFilter>,
}

/// The operators shared by attribute and property predicates.
#[derive(Debug, Default, Clone)]
pub(crate) struct RawOps {
    pub eq: Option<Spanned<Lit>>,
    pub ne: Option<Spanned<Lit>>,
    pub lt: Option<Spanned<Lit>>,
    pub le: Option<Spanned<Lit>>,
    pub gt: Option<Spanned<Lit>>,
    pub ge: Option<Spanned<Lit>>,
    pub between: Option<Spanned<Vec<Lit>>>,
    pub in_: Option<Spanned<Vec<Lit>>>,
    pub contains: Option<Spanned<String>>,
    pub starts_with: Option<Spanned<String>>,
    pub exists: Option<Spanned<bool>>,
    pub missing: Option<Spanned<bool>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFilter {
    #[serde(default)]
    pub and: Option<Vec<Spanned<RawFilter>>>,
    #[serde(default)]
    pub or: Option<Vec<Spanned<RawFilter>>>,
    #[serde(default)]
    pub not: Option<Box<Spanned<RawFilter>>>,
    #[serde(default)]
    pub attribute: Option<Spanned<String>>,
    #[serde(default)]
    pub eq: Option<Spanned<Lit>>,
    #[serde(default)]
    pub ne: Option<Spanned<Lit>>,
    #[serde(default)]
    pub lt: Option<Spanned<Lit>>,
    #[serde(default)]
    pub le: Option<Spanned<Lit>>,
    #[serde(default)]
    pub gt: Option<Spanned<Lit>>,
    #[serde(default)]
    pub ge: Option<Spanned<Lit>>,
    #[serde(default)]
    pub between: Option<Spanned<Vec<Lit>>>,
    #[serde(default, rename = "in")]
    pub in_: Option<Spanned<Vec<Lit>>>,
    #[serde(default)]
    pub contains: Option<Spanned<String>>,
    #[serde(default)]
    pub starts_with: Option<Spanned<String>>,
    #[serde(default)]
    pub exists: Option<Spanned<bool>>,
    #[serde(default)]
    pub missing: Option<Spanned<bool>>,
    #[serde(default)]
    pub performed: Option<Spanned<RawEvent>>,
    #[serde(default)]
    pub not_performed: Option<Spanned<RawEvent>>,
    #[serde(default)]
    pub first_performed: Option<Spanned<RawEvent>>,
    #[serde(default)]
    pub last_performed: Option<Spanned<RawEvent>>,
    #[serde(default)]
    pub in_segment: Option<Spanned<String>>,
    #[serde(default)]
    pub cel: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEvent {
    pub event: Option<Spanned<String>>,
    #[serde(default, rename = "where")]
    pub where_: Vec<Spanned<RawProp>>,
    #[serde(default)]
    pub within: Option<Spanned<String>>,
    #[serde(default)]
    pub from: Option<Spanned<String>>,
    #[serde(default)]
    pub to: Option<Spanned<String>>,
    #[serde(default)]
    pub count: Option<Spanned<RawNum>>,
    #[serde(default)]
    pub sum: Option<Spanned<RawSum>>,
    #[serde(default)]
    pub before: Option<Spanned<String>>,
    #[serde(default)]
    pub after: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProp {
    pub property: Spanned<String>,
    #[serde(default)]
    pub eq: Option<Spanned<Lit>>,
    #[serde(default)]
    pub ne: Option<Spanned<Lit>>,
    #[serde(default)]
    pub lt: Option<Spanned<Lit>>,
    #[serde(default)]
    pub le: Option<Spanned<Lit>>,
    #[serde(default)]
    pub gt: Option<Spanned<Lit>>,
    #[serde(default)]
    pub ge: Option<Spanned<Lit>>,
    #[serde(default)]
    pub between: Option<Spanned<Vec<Lit>>>,
    #[serde(default, rename = "in")]
    pub in_: Option<Spanned<Vec<Lit>>>,
    #[serde(default)]
    pub contains: Option<Spanned<String>>,
    #[serde(default)]
    pub starts_with: Option<Spanned<String>>,
    #[serde(default)]
    pub exists: Option<Spanned<bool>>,
    #[serde(default)]
    pub missing: Option<Spanned<bool>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNum {
    #[serde(default)]
    pub ge: Option<f64>,
    #[serde(default)]
    pub le: Option<f64>,
    #[serde(default)]
    pub eq: Option<f64>,
    #[serde(default)]
    pub between: Option<Vec<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSum {
    pub property: Spanned<String>,
    #[serde(default)]
    pub ge: Option<f64>,
    #[serde(default)]
    pub le: Option<f64>,
    #[serde(default)]
    pub eq: Option<f64>,
    #[serde(default)]
    pub between: Option<Vec<f64>>,
}

macro_rules! ops_of {
    ($r:expr) => {
        RawOps {
            eq: $r.eq.clone(),
            ne: $r.ne.clone(),
            lt: $r.lt.clone(),
            le: $r.le.clone(),
            gt: $r.gt.clone(),
            ge: $r.ge.clone(),
            between: $r.between.clone(),
            in_: $r.in_.clone(),
            contains: $r.contains.clone(),
            starts_with: $r.starts_with.clone(),
            exists: $r.exists.clone(),
            missing: $r.missing.clone(),
        }
    };
}

/// Parses and validates a segment file.
///
/// `schema: None` checks everything except attribute names and types (for `fusebox check`
/// without customers); such a group is for checking only — its attribute predicates were not
/// resolved against a customer table, and nothing stops it from being computed, so compute a
/// group compiled with the schema (as `fusebox segment` does). `event_types`, when given, are the types
/// present in the data: others are warned about.
pub fn compile_segments(
    text: &str,
    file: &str,
    schema: Option<&Schema>,
    event_types: Option<&[Arc<str>]>,
) -> Result<SegmentGroup, ConfigError> {
    // Filters nest (and the `cel` parser recurses deeply): compile on a big stack.
    on_config_stack(|| compile_here(text, file, schema, event_types))
}

fn compile_here(
    text: &str,
    file: &str,
    schema: Option<&Schema>,
    event_types: Option<&[Arc<str>]>,
) -> Result<SegmentGroup, ConfigError> {
    let fail = |diagnostics: Vec<Diagnostic>| ConfigError::new(file, text, diagnostics);
    if text.trim().is_empty() {
        return Err(fail(vec![Diagnostic::global("the segments file is empty")
            .with_help("a segments file needs `segments:` with at least one segment; run `fusebox gen` for an example")]));
    }
    let mut shaped = read_shape::<RawFile>(text);
    let Some(raw) = shaped.value.take() else {
        return Err(fail(shaped.problems));
    };
    let empty = Schema::default();
    let mut v = Validator {
        schema: schema.unwrap_or(&empty),
        lenient: schema.is_none(),
        events: event_types.map(|t| t.iter().cloned().collect()),
        diags: Vec::new(),
        warned_events: FxHashSet::default(),
        broken_any: shaped.has_broken("segments"),
        broken_ids: shaped.broken_ids("segments").map(str::to_string).collect(),
    };
    let group = v.file(raw);
    v.diags.sort_by_key(|d| (d.line, d.column));
    if !shaped.problems.is_empty() || v.diags.iter().any(|d| d.severity == Severity::Error) {
        let mut all = shaped.problems;
        all.append(&mut v.diags);
        return Err(fail(all));
    }
    let mut group = group;
    for w in &mut v.diags {
        w.locate_in(text);
    }
    group.warnings = v.diags;
    Ok(group)
}

pub(crate) struct Validator<'a> {
    pub schema: &'a Schema,
    pub lenient: bool,
    pub events: Option<FxHashSet<Arc<str>>>,
    pub diags: Vec<Diagnostic>,
    warned_events: FxHashSet<String>,
    /// Some segment was left out for its shape (already reported): an empty group is not
    /// reported as empty.
    broken_any: bool,
    /// Ids of the segments left out for their shape: references to them are not "unknown".
    broken_ids: FxHashSet<String>,
}

impl Validator<'_> {
    fn error(&mut self, at: Location, msg: impl Into<String>, help: Option<String>) {
        self.diags
            .push(Diagnostic::error(at, msg).with_help_opt(help));
    }

    fn file(&mut self, raw: RawFile) -> SegmentGroup {
        if raw.segments.value.is_empty() {
            if self.broken_any {
                return SegmentGroup::default();
            }
            self.error(
                raw.segments.referenced,
                "the segment group is empty",
                Some("add at least one segment with `id`, `owner` and `filter`".into()),
            );
            return SegmentGroup::default();
        }
        let mut ids: FxHashMap<String, Location> = FxHashMap::default();
        for s in &raw.segments.value {
            if s.id.value.trim().is_empty() {
                self.error(s.id.referenced, "segment id must not be empty", None);
            } else if let Some(first) = ids.get(&s.id.value) {
                let line = first.line();
                self.error(
                    s.id.referenced,
                    format!("duplicate segment id `{}`", s.id.value),
                    Some(format!("first defined on line {line}")),
                );
            } else {
                ids.insert(s.id.value.clone(), s.id.referenced);
            }
        }
        let mut segments = Vec::new();
        let mut refs: Vec<(String, Vec<(String, Location)>)> = Vec::new();
        for s in raw.segments.value {
            if s.owner.value.trim().is_empty() {
                self.error(
                    s.owner.referenced,
                    "owner must not be empty",
                    Some("an email or team that is notified when the segment fails".into()),
                );
            }
            let mut r = Vec::new();
            let filter = self.filter(&s.filter, &mut r);
            for (target, at) in &r {
                if !ids.contains_key(target) && !self.broken_ids.contains(target) {
                    let help = closest_name(target, ids.keys().map(String::as_str))
                        .map(|c| format!("did you mean `{c}`?"));
                    self.error(
                        *at,
                        format!("unknown segment `{target}` in in_segment"),
                        help,
                    );
                }
            }
            refs.push((s.id.value.clone(), r));
            if let Some(filter) = filter {
                segments.push(Segment {
                    id: Arc::from(s.id.value.as_str()),
                    owner: Arc::from(s.owner.value.as_str()),
                    filter,
                });
            }
        }
        self.cycles(&refs);
        SegmentGroup {
            segments,
            warnings: Vec::new(),
        }
    }

    fn cycles(&mut self, refs: &[(String, Vec<(String, Location)>)]) {
        let index: FxHashMap<&str, usize> = refs
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (id.as_str(), i))
            .collect();
        // 0 = unvisited, 1 = on stack, 2 = done.
        let mut state = vec![0u8; refs.len()];
        let mut reported = FxHashSet::default();
        fn dfs(
            v: usize,
            refs: &[(String, Vec<(String, Location)>)],
            index: &FxHashMap<&str, usize>,
            state: &mut [u8],
            stack: &mut Vec<usize>,
            found: &mut Vec<(Vec<usize>, Location)>,
        ) {
            state[v] = 1;
            stack.push(v);
            for (target, at) in &refs[v].1 {
                let Some(&w) = index.get(target.as_str()) else {
                    continue;
                };
                if state[w] == 1 {
                    let pos = stack.iter().position(|&x| x == w).unwrap_or(0);
                    found.push((stack[pos..].to_vec(), *at));
                } else if state[w] == 0 {
                    dfs(w, refs, index, state, stack, found);
                }
            }
            stack.pop();
            state[v] = 2;
        }
        let mut found = Vec::new();
        for v in 0..refs.len() {
            if state[v] == 0 {
                dfs(v, refs, &index, &mut state, &mut Vec::new(), &mut found);
            }
        }
        for (cycle, at) in found {
            let mut names: Vec<&str> = cycle.iter().map(|&i| refs[i].0.as_str()).collect();
            let mut key = names.clone();
            key.sort_unstable();
            if !reported.insert(key.join(",")) {
                continue;
            }
            names.push(refs[cycle[0]].0.as_str());
            self.error(
                at,
                format!("segment references form a cycle: {}", names.join(" -> ")),
                Some("a segment cannot (directly or indirectly) include itself".into()),
            );
        }
    }

    pub(crate) fn filter(
        &mut self,
        f: &Spanned<RawFilter>,
        refs: &mut Vec<(String, Location)>,
    ) -> Option<Filter> {
        let r = &f.value;
        let at = f.referenced;
        let kinds = [
            r.and.is_some(),
            r.or.is_some(),
            r.not.is_some(),
            r.attribute.is_some(),
            r.performed.is_some(),
            r.not_performed.is_some(),
            r.first_performed.is_some(),
            r.last_performed.is_some(),
            r.in_segment.is_some(),
            r.cel.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        const KINDS: &str = "and, or, not, attribute, performed, not_performed, first_performed, last_performed, in_segment, cel";
        if kinds != 1 {
            let msg = if kinds == 0 {
                "empty filter node".to_string()
            } else {
                "a filter node must have exactly one kind, found several".to_string()
            };
            self.error(at, msg, Some(format!("use one of: {KINDS}")));
            return None;
        }
        let ops = ops_of!(r);
        if r.attribute.is_none() && ops_count(&ops) > 0 {
            self.error(
                at,
                "comparison operators need `attribute:`",
                Some("e.g. `{ attribute: points, gt: 100 }`".into()),
            );
            return None;
        }
        if let Some(children) = r.and.as_ref().or(r.or.as_ref()) {
            if children.is_empty() {
                self.error(
                    at,
                    "empty `and`/`or` list",
                    Some("list at least one condition".into()),
                );
                return None;
            }
            let kids: Vec<Option<Filter>> = children.iter().map(|c| self.filter(c, refs)).collect();
            let kids: Option<Vec<Filter>> = kids.into_iter().collect();
            let kids = kids?;
            return Some(if r.and.is_some() {
                Filter::And(kids)
            } else {
                Filter::Or(kids)
            });
        }
        if let Some(c) = &r.not {
            return self.filter(c, refs).map(|f| Filter::Not(Box::new(f)));
        }
        if let Some(name) = &r.attribute {
            return self.attribute(name, &ops, at).map(Filter::Attr);
        }
        if let Some(e) = &r.performed {
            return self.event(e, EventKind::Performed).map(Filter::Event);
        }
        if let Some(e) = &r.not_performed {
            return self
                .event(e, EventKind::Performed)
                .map(|p| Filter::Not(Box::new(Filter::Event(p))));
        }
        if let Some(e) = &r.first_performed {
            return self.event(e, EventKind::First).map(Filter::Event);
        }
        if let Some(e) = &r.last_performed {
            return self.event(e, EventKind::Last).map(Filter::Event);
        }
        if let Some(id) = &r.in_segment {
            refs.push((id.value.clone(), id.referenced));
            return Some(Filter::InSegment(Arc::from(id.value.as_str())));
        }
        if let Some(src) = &r.cel {
            return match crate::text::translate(&src.value, src.referenced) {
                Ok(tree) => self.filter(&tree, refs),
                Err(e) => {
                    let mut d =
                        Diagnostic::error(src.referenced, format!("in `cel`: {}", e.message));
                    d.help = e.help;
                    self.diags.push(d);
                    None
                }
            };
        }
        None
    }

    fn attribute(
        &mut self,
        name: &Spanned<String>,
        ops: &RawOps,
        at: Location,
    ) -> Option<AttrPred> {
        let (attr, ty) = match self.schema.attr(&name.value) {
            Some(a) => a,
            None if self.lenient => (0, lenient_type(ops)),
            None => {
                let help = closest_name(&name.value, self.schema.iter().map(|(_, n, _)| n))
                    .map(|c| format!("did you mean `{c}`?"))
                    .or_else(|| {
                        Some(format!(
                            "customer columns: {}",
                            self.schema
                                .iter()
                                .map(|(_, n, _)| n)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    });
                self.error(
                    name.referenced,
                    format!("unknown customer column `{}`", name.value),
                    help,
                );
                return None;
            }
        };
        let op = self.ops(ops, at, Some((&name.value, ty)))?;
        Some(AttrPred {
            attr,
            name: Arc::from(name.value.as_str()),
            ty,
            op,
        })
    }

    /// Converts the operator of a predicate. `column` is `(name, type)` for attributes and
    /// `None` for event properties (dynamic: any literal kind).
    fn ops(
        &mut self,
        ops: &RawOps,
        at: Location,
        column: Option<(&str, AttrType)>,
    ) -> Option<ValueOp> {
        if ops_count(ops) != 1 {
            self.error(
                at,
                if ops_count(ops) == 0 { "missing operator" } else { "more than one operator" },
                Some("use exactly one of: eq, ne, lt, le, gt, ge, between, in, contains, starts_with, exists, missing".into()),
            );
            return None;
        }
        let cmp = [
            (CmpOp::Eq, &ops.eq),
            (CmpOp::Ne, &ops.ne),
            (CmpOp::Lt, &ops.lt),
            (CmpOp::Le, &ops.le),
            (CmpOp::Gt, &ops.gt),
            (CmpOp::Ge, &ops.ge),
        ];
        for (op, lit) in cmp {
            if let Some(lit) = lit {
                if let Some((name, ty)) = column {
                    let ordered = matches!(op, CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge);
                    if (ordered && ty == AttrType::Bool) || ty == AttrType::StringList {
                        self.error(
                            lit.referenced,
                            format!("`{}` cannot be used on `{name}` ({ty})", op.name()),
                            Some(match ty {
                                AttrType::StringList => {
                                    "string lists support `contains`, `in`, `exists` and `missing`"
                                        .to_string()
                                }
                                _ => "booleans support `eq`, `ne`, `in`, `exists` and `missing`"
                                    .to_string(),
                            }),
                        );
                        return None;
                    }
                }
                return self.scalar(lit, column).map(|s| ValueOp::Cmp(op, s));
            }
        }
        if let Some(b) = &ops.between {
            if b.value.len() != 2 {
                self.error(
                    b.referenced,
                    "`between` takes two values: [low, high]",
                    None,
                );
                return None;
            }
            if matches!(column, Some((_, AttrType::Bool | AttrType::StringList))) {
                self.error(
                    b.referenced,
                    "`between` needs a numeric, time or string column",
                    None,
                );
                return None;
            }
            let lo = self.scalar(
                &Spanned::new(b.value[0].clone(), b.referenced, b.defined),
                column,
            )?;
            let hi = self.scalar(
                &Spanned::new(b.value[1].clone(), b.referenced, b.defined),
                column,
            )?;
            return Some(ValueOp::Between(lo, hi));
        }
        if let Some(items) = &ops.in_ {
            if items.value.is_empty() {
                self.error(items.referenced, "`in` needs at least one value", None);
                return None;
            }
            let col = column.map(|(n, t)| {
                (
                    n,
                    if t == AttrType::StringList {
                        AttrType::String
                    } else {
                        t
                    },
                )
            });
            let mut out = Vec::new();
            for item in &items.value {
                out.push(self.scalar(
                    &Spanned::new(item.clone(), items.referenced, items.defined),
                    col,
                )?);
            }
            return Some(ValueOp::In(out));
        }
        for (is_contains, text) in [(true, &ops.contains), (false, &ops.starts_with)] {
            if let Some(text) = text {
                if let Some((name, ty)) = column {
                    let ok = ty == AttrType::String || (is_contains && ty == AttrType::StringList);
                    if !ok {
                        self.error(
                            text.referenced,
                            format!(
                                "`{}` needs a string column, `{name}` is {ty}",
                                if is_contains {
                                    "contains"
                                } else {
                                    "starts_with"
                                }
                            ),
                            None,
                        );
                        return None;
                    }
                }
                let s: Arc<str> = Arc::from(text.value.as_str());
                return Some(if is_contains {
                    ValueOp::Contains(s)
                } else {
                    ValueOp::StartsWith(s)
                });
            }
        }
        if let Some(b) = &ops.exists {
            return Some(if b.value {
                ValueOp::Exists
            } else {
                ValueOp::Missing
            });
        }
        if let Some(b) = &ops.missing {
            return Some(if b.value {
                ValueOp::Missing
            } else {
                ValueOp::Exists
            });
        }
        None
    }

    fn scalar(&mut self, lit: &Spanned<Lit>, column: Option<(&str, AttrType)>) -> Option<Scalar> {
        let Some((name, ty)) = column else {
            return Some(match &lit.value {
                Lit::Bool(b) => Scalar::Bool(*b),
                Lit::Int(i) => Scalar::Int(*i),
                Lit::Float(x) => Scalar::Float(*x),
                Lit::Str(s) => Scalar::Str(Arc::from(s.as_str())),
                // Only CEL makes time literals, and CEL compares them with columns only (it has
                // no event-property filters).
                Lit::Time(_) => unreachable!("a CEL time literal outside a column comparison"),
            });
        };
        let ok = match (ty, &lit.value) {
            (AttrType::Int | AttrType::Float, Lit::Int(i)) => Some(Scalar::Int(*i)),
            (AttrType::Int | AttrType::Float, Lit::Float(x)) if x.is_finite() => {
                Some(Scalar::Float(*x))
            }
            (AttrType::String | AttrType::StringList, Lit::Str(s)) => {
                Some(Scalar::Str(Arc::from(s.as_str())))
            }
            (AttrType::Bool, Lit::Bool(b)) => Some(Scalar::Bool(*b)),
            (AttrType::Timestamp, Lit::Str(s) | Lit::Time(s)) => match TimeRef::parse(s) {
                Some(t) => Some(Scalar::Time(t)),
                None => {
                    self.error(
                        lit.referenced,
                        format!("malformed time `{s}` for `{name}`"),
                        Some("write an RFC 3339 timestamp (2026-03-01T00:00:00Z) or a time relative to --as-of (now, now-30d, now-12h)".into()),
                    );
                    return None;
                }
            },
            _ => None,
        };
        if ok.is_none() {
            let shown = match &lit.value {
                Lit::Str(s) => format!("{s:?}"),
                Lit::Time(s) => s.clone(),
                Lit::Int(i) => i.to_string(),
                Lit::Float(x) => x.to_string(),
                Lit::Bool(b) => b.to_string(),
            };
            self.error(
                lit.referenced,
                format!(
                    "type mismatch: `{name}` is {ty}, compared with {} {shown}",
                    lit.value.kind()
                ),
                Some(match ty {
                    AttrType::Int | AttrType::Float => {
                        "compare with a number, e.g. `gt: 100`".to_string()
                    }
                    AttrType::Timestamp => {
                        "compare with a timestamp string, e.g. `lt: now-30d`".to_string()
                    }
                    AttrType::Bool => "compare with true or false".to_string(),
                    _ => "compare with a quoted string".to_string(),
                }),
            );
        }
        ok
    }

    fn event(&mut self, e: &Spanned<RawEvent>, kind: EventKind) -> Option<EventPred> {
        let r = &e.value;
        let at = e.referenced;
        let Some(ty) = &r.event else {
            self.error(
                at,
                "missing `event:` (the event type)",
                Some("e.g. `performed: { event: order.completed }`".into()),
            );
            return None;
        };
        if ty.value.trim().is_empty() {
            self.error(ty.referenced, "event type must not be empty", None);
            return None;
        }
        if let Some(known) = &self.events {
            if !known.contains(ty.value.as_str()) && self.warned_events.insert(ty.value.clone()) {
                let help = closest_name(&ty.value, known.iter().map(|s| s.as_ref()))
                    .map(|c| format!("did you mean `{c}`?"))
                    .unwrap_or_else(|| {
                        "check the spelling; it is allowed but matches no customer".into()
                    });
                self.diags.push(
                    Diagnostic::warning(ty.referenced, format!("unknown event type `{}`: no such events in the data, the predicate matches nothing", ty.value))
                        .with_help(help),
                );
            }
        }
        let mut ok = true;
        let mut filters = Vec::new();
        for p in &r.where_ {
            match self.ops(&ops_of!(p.value), p.referenced, None) {
                Some(op) => filters.push(PropPred {
                    name: Arc::from(p.value.property.value.as_str()),
                    op,
                }),
                None => ok = false,
            }
        }
        let window = match (&r.within, &r.from, &r.to) {
            (Some(w), None, None) => match parse_duration(&w.value) {
                Some(d) => Window::Last(d),
                None => {
                    self.error(
                        w.referenced,
                        format!("malformed window `{}`", w.value),
                        Some("write a positive duration like 30d, 12h, 2w, 90m or 1d12h".into()),
                    );
                    ok = false;
                    Window::All
                }
            },
            (Some(w), _, _) => {
                self.error(
                    w.referenced,
                    "use either `within` or `from`/`to`, not both",
                    None,
                );
                ok = false;
                Window::All
            }
            (None, None, None) => Window::All,
            (None, from, to) => {
                let mut bound = |b: &Option<Spanned<String>>| -> Option<Option<i64>> {
                    let Some(b) = b else { return Some(None) };
                    match TimeRef::parse(&b.value) {
                        Some(TimeRef::Abs(t)) => Some(Some(t)),
                        _ => {
                            self.error(
                                b.referenced,
                                format!("malformed window bound `{}`", b.value),
                                Some("`from`/`to` take RFC 3339 timestamps (2026-03-01T00:00:00Z); for a window relative to --as-of use `within: 30d`".into()),
                            );
                            None
                        }
                    }
                };
                match (bound(from), bound(to)) {
                    (Some(f), Some(t)) => {
                        if let (Some(a), Some(b), Some(loc)) = (f, t, from.as_ref()) {
                            if a >= b {
                                self.error(
                                    loc.referenced,
                                    "empty window: `from` must be before `to`",
                                    None,
                                );
                                ok = false;
                            }
                        }
                        Window::Range(f, t)
                    }
                    _ => {
                        ok = false;
                        Window::All
                    }
                }
            }
        };
        let test = match kind {
            EventKind::Performed => {
                if let Some(b) = r.before.as_ref().or(r.after.as_ref()) {
                    self.error(
                        b.referenced,
                        "`before`/`after` belong to first_performed / last_performed",
                        Some("for a time window use `within`, or `from`/`to`".into()),
                    );
                    ok = false;
                }
                let count = match &r.count {
                    Some(c) => {
                        let v = self.num(c.referenced, &c.value, true);
                        ok &= v.is_some();
                        v
                    }
                    None => None,
                };
                let sum = match &r.sum {
                    Some(s) => match self.num(
                        s.referenced,
                        &RawNum {
                            ge: s.value.ge,
                            le: s.value.le,
                            eq: s.value.eq,
                            between: s.value.between.clone(),
                        },
                        false,
                    ) {
                        Some(c) => Some((Arc::from(s.value.property.value.as_str()), c)),
                        None => {
                            ok = false;
                            None
                        }
                    },
                    None => None,
                };
                EventTest::Performed { count, sum }
            }
            EventKind::First | EventKind::Last => {
                if let Some(c) = &r.count {
                    self.error(
                        c.referenced,
                        "`count` belongs to performed / not_performed",
                        None,
                    );
                    ok = false;
                }
                if let Some(c) = &r.sum {
                    self.error(
                        c.referenced,
                        "`sum` belongs to performed / not_performed",
                        None,
                    );
                    ok = false;
                }
                let (before, text) = match (&r.before, &r.after) {
                    (Some(b), None) => (true, b),
                    (None, Some(a)) => (false, a),
                    _ => {
                        self.error(at, "give exactly one of `before` or `after`", Some("e.g. `first_performed: { event: order.completed, before: now-90d }`".into()));
                        return None;
                    }
                };
                let Some(t) = TimeRef::parse(&text.value) else {
                    self.error(
                        text.referenced,
                        format!("malformed time `{}`", text.value),
                        Some("RFC 3339, or now / now-30d / now+1h".into()),
                    );
                    return None;
                };
                if matches!(kind, EventKind::First) {
                    EventTest::First { before, at: t }
                } else {
                    EventTest::Last { before, at: t }
                }
            }
        };
        ok.then(|| EventPred {
            event_type: Arc::from(ty.value.as_str()),
            filters,
            window,
            test,
        })
    }

    fn num(&mut self, at: Location, n: &RawNum, count: bool) -> Option<NumCond> {
        let given = [
            n.ge.is_some(),
            n.le.is_some(),
            n.eq.is_some(),
            n.between.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if given != 1 {
            self.error(
                at,
                "give exactly one of ge, le, eq, between",
                Some(
                    "e.g. `count: { ge: 3 }` or `sum: { property: total, between: [100, 500] }`"
                        .into(),
                ),
            );
            return None;
        }
        let cond = if let Some(x) = n.ge {
            NumCond::Ge(x)
        } else if let Some(x) = n.le {
            NumCond::Le(x)
        } else if let Some(x) = n.eq {
            NumCond::Eq(x)
        } else {
            match n.between.as_deref() {
                Some([a, b]) if a <= b => NumCond::Between(*a, *b),
                _ => {
                    self.error(at, "`between` takes [low, high] with low <= high", None);
                    return None;
                }
            }
        };
        let values = match cond {
            NumCond::Ge(x) | NumCond::Le(x) | NumCond::Eq(x) => [x, x],
            NumCond::Between(a, b) => [a, b],
        };
        if values.iter().any(|v| !v.is_finite() || (count && *v < 0.0)) {
            self.error(
                at,
                if count {
                    "counts are finite and not negative"
                } else {
                    "sums compare with finite numbers"
                },
                None,
            );
            return None;
        }
        Some(cond)
    }
}

#[derive(Clone, Copy)]
enum EventKind {
    Performed,
    First,
    Last,
}

fn ops_count(o: &RawOps) -> usize {
    [
        o.eq.is_some(),
        o.ne.is_some(),
        o.lt.is_some(),
        o.le.is_some(),
        o.gt.is_some(),
        o.ge.is_some(),
        o.between.is_some(),
        o.in_.is_some(),
        o.contains.is_some(),
        o.starts_with.is_some(),
        o.exists.is_some(),
        o.missing.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count()
}

/// Without a schema, an attribute's type is guessed from its literal (only for checking).
fn lenient_type(o: &RawOps) -> AttrType {
    let lit = [&o.eq, &o.ne, &o.lt, &o.le, &o.gt, &o.ge]
        .into_iter()
        .flatten()
        .map(|l| l.value.clone())
        .chain(
            o.between
                .iter()
                .chain(o.in_.iter())
                .flat_map(|l| l.value.first().cloned()),
        )
        .next();
    match lit {
        Some(Lit::Int(_) | Lit::Float(_)) => AttrType::Float,
        Some(Lit::Bool(_)) => AttrType::Bool,
        Some(Lit::Str(s)) if TimeRef::parse(&s).is_some() => AttrType::Timestamp,
        Some(Lit::Time(_)) => AttrType::Timestamp,
        _ if o.contains.is_some() => AttrType::StringList,
        _ => AttrType::String,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fusebox_engine::value::AttrType;

    fn schema() -> Schema {
        Schema::new([
            ("points".to_string(), AttrType::Int),
            ("tier".to_string(), AttrType::String),
            ("tags".to_string(), AttrType::StringList),
            ("last_order_at".to_string(), AttrType::Timestamp),
            ("opt_in".to_string(), AttrType::Bool),
        ])
        .unwrap()
    }

    fn compile(text: &str) -> Result<SegmentGroup, ConfigError> {
        let types: Vec<Arc<str>> = vec![Arc::from("order.completed"), Arc::from("page.viewed")];
        compile_segments(text, "segments.yaml", Some(&schema()), Some(&types))
    }

    fn errors(text: &str) -> Vec<Diagnostic> {
        compile(text).unwrap_err().errors().cloned().collect()
    }

    #[test]
    fn a_valid_group_compiles() {
        let g = compile(
            r#"
segments:
  - id: vip
    owner: crm@x
    filter:
      and:
        - { attribute: tier, in: [gold, silver] }
        - { attribute: last_order_at, ge: now-90d }
        - performed: { event: order.completed, within: 30d, count: { ge: 2 }, sum: { property: total, between: [100, 900] }, where: [ { property: channel, eq: web } ] }
        - not: { in_segment: lapsed }
  - id: lapsed
    owner: crm@x
    filter:
      or:
        - last_performed: { event: order.completed, before: now-60d }
        - not_performed: { event: order.completed, from: "2026-01-01T00:00:00Z", to: "2026-02-01T00:00:00Z" }
        - { attribute: tags, contains: churn-risk }
        - { attribute: opt_in, exists: false }
"#,
        )
        .unwrap();
        assert_eq!(g.segments.len(), 2);
        assert!(g.warnings.is_empty());
    }

    #[test]
    fn unknown_columns_are_located_with_a_hint() {
        let e = errors(
            "segments:\n  - id: a\n    owner: x\n    filter: { attribute: pionts, gt: 5 }\n",
        );
        assert_eq!(e.len(), 1);
        assert_eq!(
            (e[0].line, e[0].message.as_str()),
            (4, "unknown customer column `pionts`")
        );
        assert_eq!(e[0].help.as_deref(), Some("did you mean `points`?"));
    }

    #[test]
    fn cel_times_match_timestamp_columns_only() {
        for (cel, col) in [
            ("customer.tier > now - duration('30d')", "tier"),
            (
                "customer.points < timestamp('2026-01-01T00:00:00Z')",
                "points",
            ),
            ("now > customer.tier", "tier"),
        ] {
            let e = errors(&format!(
                "segments:\n  - id: a\n    owner: x\n    filter: {{ cel: \"{cel}\" }}\n"
            ));
            assert_eq!(e.len(), 1, "{cel}");
            assert!(
                e[0].message.contains(&format!("type mismatch: `{col}`"))
                    && e[0].message.contains("compared with time"),
                "{cel}: {}",
                e[0].message
            );
        }
        let ok = "segments:\n  - id: a\n    owner: x\n    filter: { cel: \"customer.last_order_at > now - duration('30d') && customer.last_order_at < timestamp('2026-01-01T00:00:00Z')\" }\n";
        assert!(compile(ok).is_ok());
    }

    #[test]
    fn type_mismatches_are_errors() {
        let e = errors(
            "segments:\n  - id: a\n    owner: x\n    filter: { attribute: points, gt: \"abc\" }\n",
        );
        assert_eq!(e[0].line, 4);
        assert!(
            e[0].message
                .contains("type mismatch: `points` is int, compared with string \"abc\""),
            "{}",
            e[0].message
        );
        let e = errors(
            "segments:\n  - id: a\n    owner: x\n    filter: { attribute: points, contains: x }\n",
        );
        assert!(
            e[0].message.contains("`contains` needs a string column"),
            "{e:?}"
        );
        let e = errors(
            "segments:\n  - id: a\n    owner: x\n    filter: { attribute: opt_in, gt: true }\n",
        );
        assert!(e[0].message.contains("`gt` cannot be used on `opt_in`"));
    }

    #[test]
    fn unknown_event_types_warn_but_compile() {
        let g = compile("segments:\n  - id: a\n    owner: x\n    filter:\n      performed: { event: order.complete }\n").unwrap();
        assert_eq!(g.warnings.len(), 1);
        assert_eq!(g.warnings[0].severity, Severity::Warning);
        assert_eq!(
            g.warnings[0].help.as_deref(),
            Some("did you mean `order.completed`?")
        );
    }

    #[test]
    fn cycles_unknown_references_and_empty_groups_are_errors() {
        let e = errors("segments:\n  - id: a\n    owner: x\n    filter: { in_segment: b }\n  - id: b\n    owner: x\n    filter: { not: { in_segment: a } }\n");
        assert_eq!(e.len(), 1);
        assert!(
            e[0].message.contains("cycle: a -> b -> a"),
            "{}",
            e[0].message
        );
        let e = errors("segments:\n  - id: a\n    owner: x\n    filter: { in_segment: a }\n");
        assert!(e[0].message.contains("cycle: a -> a"));
        let e = errors("segments:\n  - id: a\n    owner: x\n    filter: { in_segment: c }\n");
        assert_eq!(e[0].message, "unknown segment `c` in in_segment");
        let e = errors("segments: []\n");
        assert_eq!(e[0].message, "the segment group is empty");
        assert!(compile("  \n").is_err());
    }

    #[test]
    fn malformed_windows_and_times_are_errors() {
        let e = errors("segments:\n  - id: a\n    owner: x\n    filter:\n      performed: { event: order.completed, within: 30 days }\n");
        assert_eq!(
            (e[0].line, e[0].message.as_str()),
            (5, "malformed window `30 days`")
        );
        let e = errors("segments:\n  - id: a\n    owner: x\n    filter:\n      performed: { event: order.completed, from: yesterday }\n");
        assert!(e[0].message.contains("malformed window bound"));
        let e = errors("segments:\n  - id: a\n    owner: x\n    filter: { attribute: last_order_at, lt: last week }\n");
        assert!(e[0].message.contains("malformed time `last week`"));
        let e = errors("segments:\n  - id: a\n    owner: x\n    filter:\n      performed: { event: order.completed, count: { ge: -1 } }\n");
        assert!(e[0].message.contains("not negative"));
    }

    #[test]
    fn node_shape_errors_are_reported() {
        let e = errors(
            "segments:\n  - id: a\n    owner: x\n    filter: { attribute: points, gt: 1, lt: 5 }\n",
        );
        assert_eq!(e[0].message, "more than one operator");
        let e = errors("segments:\n  - id: a\n    owner: x\n    filter: { and: [] }\n");
        assert_eq!(e[0].message, "empty `and`/`or` list");
        let e = errors("segments:\n  - id: a\n    owner: x\n    filter: { atribute: points }\n");
        assert!(e[0].message.contains("unknown field"), "{}", e[0].message);
        let e = errors("segments:\n  - id: a\n    owner: x\n    filter: { attribute: points, gt: 1 }\n  - id: a\n    owner: x\n    filter: { attribute: points, gt: 1 }\n");
        assert!(e[0].message.contains("duplicate segment id"));
    }

    /// Issue #10 §5: three segments with shape errors (unknown key, wrong type, missing
    /// field) and one top-level error are all reported, located and in file order, followed by
    /// the semantic problems of the segments that parsed; references to a broken segment add
    /// no noise.
    #[test]
    fn every_shape_error_is_reported_then_the_semantic_ones() {
        let text = r#"version: 1
name: spring
segments:
  - id: vip
    owner: crm@x
    filter: { attribute: points, gt: 100, colour: red }
  - id: fans
    owner: crm@x
    filter: { in_segment: vip }
  - id: big
    owner: crm@x
    filter:
      performed: { event: order.completed, count: { ge: many } }
  - id: lapsed
    filter: { attribute: pionts, exists: true }
  - id: late
    owner: crm@x
    filter: { attribute: pionts, exists: true }
"#;
        let err = compile(text).unwrap_err();
        let got: Vec<(u64, &str)> = err
            .diagnostics
            .iter()
            .map(|d| (d.line, d.message.as_str()))
            .collect();
        assert_eq!(
            got.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
            [2, 6, 13, 15, 18],
            "{got:#?}"
        );
        assert!(got[0].1.contains("unknown field `name`"), "{got:#?}");
        assert!(got[1].1.contains("unknown field `colour`"), "{got:#?}");
        assert!(got[2].1.contains("floating point"), "{got:#?}");
        assert!(got[3].1.contains("missing field `owner`"), "{got:#?}");
        assert_eq!(got[4].1, "unknown customer column `pionts`");
        assert!(
            err.diagnostics
                .iter()
                .all(|d| d.span.is_some() && d.column > 0),
            "{got:#?}"
        );
    }

    #[test]
    fn a_group_whose_segments_all_broke_is_not_reported_empty() {
        let e = errors("segments:\n  - id: a\n    owner: x\n    filter: 3\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].line, 4);
    }

    /// Every row of the table in `text`'s docs: the CEL form and the YAML form compile to the
    /// same filter.
    #[test]
    fn every_row_of_the_cel_table_translates() {
        let rows = [
            ("100 < customer.points", "{ attribute: points, gt: 100 }"),
            ("customer.tags.contains('vip')", "{ attribute: tags, contains: vip }"),
            ("'vip' in customer.tags", "{ attribute: tags, contains: vip }"),
            ("customer.tier.startsWith('g')", "{ attribute: tier, starts_with: g }"),
            ("customer.tier != null", "{ attribute: tier, exists: true }"),
            ("customer.tier == null", "{ attribute: tier, missing: true }"),
            (
                "customer.last_order_at >= timestamp('2026-01-01T00:00:00Z')",
                "{ attribute: last_order_at, ge: '2026-01-01T00:00:00Z' }",
            ),
            ("segment('u')", "{ in_segment: u }"),
            (
                "customer.last_order_at > now - duration('2w')",
                "{ attribute: last_order_at, gt: now-2w }",
            ),
            ("performed('order.completed')", "{ performed: { event: order.completed } }"),
            (
                "performed('order.completed', '30d')",
                "{ performed: { event: order.completed, within: 30d } }",
            ),
            (
                "count('order.completed', '30d') < 3",
                "{ performed: { event: order.completed, within: 30d, count: { le: 2 } } }",
            ),
            (
                "sum('order.completed', 'total', '30d') >= 100",
                "{ performed: { event: order.completed, within: 30d, sum: { property: total, ge: 100 } } }",
            ),
        ];
        let group = |filter: &str| {
            format!("segments:\n  - id: t\n    owner: x\n    filter: {filter}\n  - id: u\n    owner: x\n    filter: {{ attribute: points, exists: true }}\n")
        };
        for (cel, yaml) in rows {
            let a = compile(&group(&format!("{{ cel: \"{cel}\" }}")))
                .unwrap_or_else(|e| panic!("{cel}: {e:?}"));
            let b = compile(&group(yaml)).unwrap_or_else(|e| panic!("{yaml}: {e:?}"));
            assert_eq!(a.segments[0].filter, b.segments[0].filter, "{cel}");
        }
        // Durations use the window syntax: no fractions, no sub-second units.
        for bad in ["1.5h", "90ms"] {
            let e = errors(&group(&format!(
                "{{ cel: \"customer.last_order_at > now - duration('{bad}')\" }}"
            )));
            assert_eq!(e.len(), 1, "{bad}: {e:?}");
        }
        // Errors point at the line of the `cel:` string.
        let e = errors(
            "segments:\n  - id: a\n    owner: x\n    filter:\n      cel: \"customer.nope > 1\"\n",
        );
        assert_eq!(e[0].line, 5, "{:?}", e[0]);
    }

    #[test]
    fn cel_form_translates_to_the_same_tree() {
        let yaml = compile(
            r#"
segments:
  - id: t
    owner: x
    filter:
      and:
        - { attribute: points, gt: 100 }
        - or:
            - { attribute: tier, in: [gold, silver] }
            - not: { attribute: tags, contains: vip }
        - { attribute: last_order_at, lt: now-720h }
        - performed: { event: order.completed, within: 30d, count: { ge: 3 } }
        - in_segment: u
  - id: u
    owner: x
    filter: { attribute: points, exists: true }
"#,
        )
        .unwrap();
        let cel = compile(
            r#"
segments:
  - id: t
    owner: x
    filter: { cel: "customer.points > 100 && (customer.tier in ['gold', 'silver'] || !('vip' in customer.tags)) && customer.last_order_at < now - duration('720h') && count('order.completed', '30d') > 2 && in_segment('u')" }
  - id: u
    owner: x
    filter: { cel: "has(customer.points)" }
"#,
        )
        .unwrap();
        // CEL `&&` is binary, so the tree nests; flatten before comparing.
        fn flat(f: &Filter) -> Filter {
            match f {
                Filter::And(c) => Filter::And(
                    c.iter()
                        .flat_map(|x| match flat(x) {
                            Filter::And(k) => k,
                            o => vec![o],
                        })
                        .collect(),
                ),
                Filter::Or(c) => Filter::Or(
                    c.iter()
                        .flat_map(|x| match flat(x) {
                            Filter::Or(k) => k,
                            o => vec![o],
                        })
                        .collect(),
                ),
                Filter::Not(c) => Filter::Not(Box::new(flat(c))),
                o => o.clone(),
            }
        }
        for (a, b) in yaml.segments.iter().zip(&cel.segments) {
            assert_eq!(flat(&a.filter), flat(&b.filter));
        }
        let e = errors(
            "segments:\n  - id: a\n    owner: x\n    filter: { cel: \"customer.points >\" }\n",
        );
        assert!(
            e[0].message.starts_with("in `cel`: syntax error"),
            "{}",
            e[0].message
        );
        let e = errors("segments:\n  - id: a\n    owner: x\n    filter: { cel: \"customer.points > 'abc'\" }\n");
        assert!(e[0].message.contains("type mismatch"), "{}", e[0].message);
    }
}
