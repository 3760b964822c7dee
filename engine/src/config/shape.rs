//! Reading a configuration file into its typed YAML shape, with *every* shape problem
//! reported, not only the first.
//!
//! # Why
//!
//! The front ends deserialize a whole file with serde into typed structs (unknown keys
//! denied, fields [`Spanned`](serde_saphyr::Spanned)). Serde stops at the first problem: a
//! file with an unknown key in one trigger, a wrong type in another and a missing field in a
//! third used to report one of them per run. [`read_shape`] reports all three in one pass,
//! located exactly as the whole-file parse would have located them, and still hands the
//! parts that did parse to the semantic checks.
//!
//! # How
//!
//! A valid file costs one serde parse, as before. When it fails:
//!
//! 1. The file is *outlined* from the YAML parser's events and tokens: the top-level block
//!    mapping's entries (key to end of value) and, for the keys a front end names in
//!    [`Shape::LISTS`] whose value is a block sequence, each item (from its `-` to the end of
//!    its content). Nothing is interpreted; only byte ranges are recorded.
//! 2. A part is parsed on its own from a *blanked copy* of the file: every byte outside the
//!    kept ranges becomes a space, line breaks are kept. Lines, columns and byte offsets in
//!    that copy are those of the original file, so every location (of an error, and of every
//!    `Spanned` value) is the original one. A kept subset of complete block entries or items
//!    is still well-formed YAML with the same meaning.
//! 3. Top level: the top-level entries are parsed as the front end's type `T` with every
//!    split list *neutralised* to an empty flow list `[]` (written over two blanked bytes of
//!    the list, where its first item was). The first error falls inside one entry: that entry
//!    is reported and dropped, and the rest is parsed again, until the remainder parses. That
//!    value of `T` carries every good top-level entry.
//! 4. Lists: the same loop over the items of each split list, deserialized as the list alone
//!    ([`Shape::read_list`]); the items that parse are stored into the top-level value.
//!
//! Each loop costs one parse per problem found plus one; a file with more than
//! [`MAX_SHAPE_PROBLEMS`] shape problems is reported up to that many.
//!
//! # Granularity and limits (documented behaviour)
//!
//! - One problem per top-level entry and per list item: serde stops inside an item, so two
//!   problems in the same trigger (say, in two of its actions) are reported one per run.
//! - No recovery, only the first problem, when: the YAML does not scan (a *syntax* error), it
//!   exceeds one of serde-saphyr's budgets (nesting deeper than 64 levels, ...), the file holds
//!   several documents, the top level is not a block mapping (e.g. a flow mapping
//!   `{...}`), a top-level key is complex or not alone on its line, or the file uses aliases
//!   (`*name`: a part parsed alone could lose the anchor it refers to).
//! - A list written in flow style (`triggers: [ {...}, {...} ]`) is one top-level entry: its
//!   first problem only.
//! - Whatever happens, the result is consistent with the whole-file parse: a file that does not
//!   parse always yields at least one problem, and the whole-file parse's own first problem is
//!   always among them (when the parts disagree with it, it is added and no value is given, so
//!   no semantic check runs on a misunderstood file).
//!
//! # Follow-on problems
//!
//! Dropping a broken part must not invent problems elsewhere:
//! - a list whose items all broke is empty in the value; [`Shaped::has_broken`] lets the front
//!   end skip its "the list is empty" check;
//! - a required top-level entry that broke is not reported a second time as missing;
//! - a broken item's `id:`, when it is a plain scalar, is kept ([`BrokenItem::id`]) so that a
//!   front end does not report references to it as unknown (the item's own problem is
//!   reported; the reference may well be right).

use serde::de::DeserializeOwned;
use serde_saphyr::granit_parser::{Event, Parser, Span, StructureStyle};

use super::diagnostic::{from_yaml_error, Diagnostic};

/// At most this many shape problems are reported for one file (each costs one parse).
pub const MAX_SHAPE_PROBLEMS: usize = 100;

/// A file's typed YAML shape: a top-level mapping some of whose entries are lists of items
/// that can be read one by one.
pub trait Shape: DeserializeOwned {
    /// Top-level keys whose value, when written as a block sequence, is read item by item.
    const LISTS: &'static [&'static str];

    /// Deserializes the list `key` from `text` (a document whose root is that list: the items
    /// kept, everything else blanked) and, when `into` is given, stores its items there,
    /// replacing the placeholder empty list of the top-level parse. Usually
    /// [`read_items`] on the right field.
    fn read_list(key: &str, text: &str, into: Option<&mut Self>)
        -> Result<(), serde_saphyr::Error>;
}

/// Deserializes a list of `I` from `text` and stores it in `into` (see [`Shape::read_list`]).
pub fn read_items<I: DeserializeOwned>(
    text: &str,
    into: Option<&mut Vec<I>>,
) -> Result<(), serde_saphyr::Error> {
    let items: Vec<I> = serde_saphyr::from_str(text)?;
    if let Some(into) = into {
        *into = items;
    }
    Ok(())
}

/// An item of a top-level list that has a shape problem, so is absent from the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokenItem {
    /// The list's top-level key.
    pub list: String,
    /// 0-based position in the list.
    pub index: usize,
    /// The item's `id:` when it is a mapping with a plain scalar `id`.
    pub id: Option<String>,
}

/// What [`read_shape`] found.
#[derive(Debug)]
pub struct Shaped<T> {
    /// The file with its broken parts left out; `None` when the top level itself could not be
    /// recovered (then no semantic check should run).
    pub value: Option<T>,
    /// Every shape problem (errors), sorted by position. Empty when the file parsed whole.
    pub problems: Vec<Diagnostic>,
    /// The list items left out of `value`, in file order.
    pub broken: Vec<BrokenItem>,
}

impl<T> Shaped<T> {
    /// Whether some item of the list `key` was left out.
    pub fn has_broken(&self, key: &str) -> bool {
        self.broken.iter().any(|b| b.list == key)
    }

    /// The ids of the items of list `key` that were left out.
    pub fn broken_ids<'s>(&'s self, key: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.broken
            .iter()
            .filter(move |b| b.list == key)
            .filter_map(|b| b.id.as_deref())
    }
}

/// Deserializes `text` as `T`, reporting every shape problem (see the module docs).
pub fn read_shape<T: Shape>(text: &str) -> Shaped<T> {
    match serde_saphyr::from_str::<T>(text) {
        Ok(value) => Shaped {
            value: Some(value),
            problems: Vec::new(),
            broken: Vec::new(),
        },
        Err(first) => {
            // Over a size or depth limit, the parts would be judged by a different count.
            let splittable = !matches!(original(&first), serde_saphyr::Error::Budget { .. });
            let first = from_yaml_error(&first);
            let recovered = splittable
                .then(|| Outline::of(text, T::LISTS))
                .flatten()
                .and_then(|o| Recovery::run::<T>(text, &o));
            let mut shaped = recovered.unwrap_or(Shaped {
                value: None,
                problems: Vec::new(),
                broken: Vec::new(),
            });
            let same_place = |d: &Diagnostic| {
                (d.line, d.column) == (first.line, first.column)
                    && (first.line > 0 || d.message == first.message)
            };
            if !shaped.problems.iter().any(same_place) {
                shaped.problems.push(first);
                shaped.value = None;
            }
            shaped.problems.sort_by(|a, b| {
                (a.line, a.column, &a.message).cmp(&(b.line, b.column, &b.message))
            });
            shaped
                .problems
                .dedup_by(|a, b| (a.line, a.column, &a.message) == (b.line, b.column, &b.message));
            shaped
        }
    }
}

/// Byte ranges of the top-level entries and of the items of the split lists.
#[derive(Debug)]
struct Outline {
    entries: Vec<Entry>,
    /// Length of a leading byte-order mark (kept in every blanked copy).
    bom: usize,
}

#[derive(Debug)]
struct Entry {
    key: String,
    /// Start of the key.
    start: usize,
    /// End of the value's content.
    end: usize,
    /// The items, when this is a split list.
    list: Option<List>,
}

#[derive(Debug)]
struct List {
    /// Where the neutralising `[` and `]` go (two blanked bytes, in the list's first item).
    open: usize,
    close: usize,
    items: Vec<Item>,
}

#[derive(Debug)]
struct Item {
    /// The item's `-`.
    start: usize,
    /// End of its content.
    end: usize,
    id: Option<String>,
}

fn byte(span: &Span, end: bool) -> Option<usize> {
    if end {
        span.end.byte_offset()
    } else {
        span.start.byte_offset()
    }
}

impl Outline {
    /// Outlines `text`, or `None` when it cannot be split safely (see the module docs).
    fn of(text: &str, lists: &[&str]) -> Option<Outline> {
        let mut events: Vec<(Event<'_>, Span)> = Vec::new();
        for next in Parser::new_from_str(text) {
            let (event, span) = next.ok()?;
            match event {
                Event::StreamStart
                | Event::StreamEnd
                | Event::DocumentStart(..)
                | Event::DocumentEnd
                | Event::Scalar(..)
                | Event::SequenceStart(..)
                | Event::SequenceEnd
                | Event::MappingStart(..)
                | Event::MappingEnd => events.push((event, span)),
                Event::Alias(_) | Event::UnresolvedAlias(_) | Event::Anchor(..) => return None,
                // Comments (and any presentation-only event) carry no structure.
                _ => {}
            }
        }
        match events.as_slice() {
            [(Event::StreamStart, _), (Event::DocumentStart(..), _), (Event::MappingStart(StructureStyle::Block, ..), _), .., (Event::DocumentEnd, _), (Event::StreamEnd, _)] =>
                {}
            _ => return None,
        }
        let mut entries = Vec::new();
        let mut i = 3;
        loop {
            match &events.get(i)?.0 {
                Event::MappingEnd => break,
                Event::Scalar(key, ..) => {
                    let key_span = events[i].1;
                    let start = byte(&key_span, false)?;
                    let line_start = text[..start].rfind(['\n', '\r']).map_or(0, |p| p + 1);
                    let before = text[line_start..start].trim_start_matches('\u{feff}');
                    if !before.bytes().all(|b| b == b' ') {
                        return None;
                    }
                    let key_end = byte(&key_span, true)?;
                    let (next, value_end) = node_extent(&events, i + 1)?;
                    let end = value_end.max(key_end);
                    let list = match events[i + 1].0 {
                        Event::SequenceStart(StructureStyle::Block, ..)
                            if lists.contains(&key.as_ref()) =>
                        {
                            let key_column = start - line_start;
                            Some(List::of(
                                text,
                                &events[i + 2..next - 1],
                                key_end,
                                key_column,
                            )?)
                        }
                        _ => None,
                    };
                    entries.push(Entry {
                        key: key.to_string(),
                        start,
                        end,
                        list,
                    });
                    i = next;
                }
                _ => return None,
            }
        }
        // The root mapping's end must be followed by the document's and the stream's.
        if i + 3 != events.len() {
            return None;
        }
        let bom = if text.starts_with('\u{feff}') { 3 } else { 0 };
        Some(Outline { entries, bom })
    }
}

/// The index just past the node that starts at `events[i]`, and the furthest byte its content
/// reaches. The end of a block collection is not content (its span sits at the next token).
fn node_extent(events: &[(Event<'_>, Span)], i: usize) -> Option<(usize, usize)> {
    let mut open: Vec<StructureStyle> = Vec::new();
    let mut end = byte(&events.get(i)?.1, false)?;
    let mut j = i;
    loop {
        let (event, span) = events.get(j)?;
        match event {
            Event::Scalar(..) => end = end.max(byte(span, true)?),
            Event::SequenceStart(style, ..) | Event::MappingStart(style, ..) => {
                open.push(*style);
                end = end.max(byte(span, true)?);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if open.pop()? == StructureStyle::Flow {
                    end = end.max(byte(span, true)?);
                }
            }
            _ => return None,
        }
        j += 1;
        if open.is_empty() {
            return Some((j, end));
        }
    }
}

impl List {
    /// Outlines the items of a block sequence whose events (without its start and end) are
    /// `events`. `after` is where the list's key ends.
    fn of(
        text: &str,
        events: &[(Event<'_>, Span)],
        after: usize,
        key_column: usize,
    ) -> Option<List> {
        let mut items: Vec<Item> = Vec::new();
        let mut prev_end = after;
        let mut j = 0;
        while j < events.len() {
            let (next, content_end) = node_extent(events, j)?;
            let node_start = byte(&events[j].1, false)?;
            let dash = find_dash(text, prev_end, items.is_empty()).filter(|&d| d < node_start)?;
            let end = content_end.max(dash + 1);
            items.push(Item {
                start: dash,
                end,
                id: item_id(&events[j..next]),
            });
            prev_end = end;
            j = next;
        }
        let first = items.first()?.start;
        let last = items.last()?.end;
        // Two characters, more indented than the key, that are not line breaks: `[` and `]`
        // written over them (the rest of a multi-byte character is blanked like everything
        // else) make an empty flow list where the block list was. In the blanked copy every
        // byte before them on their line is a space, so a byte column is a column.
        let bytes = text.as_bytes();
        let mut spots = (first..last).filter(|&p| {
            let line_start = bytes[..p]
                .iter()
                .rposition(|b| matches!(b, b'\n' | b'\r'))
                .map_or(0, |s| s + 1);
            text.is_char_boundary(p)
                && !matches!(bytes[p], b'\n' | b'\r')
                && p - line_start > key_column
        });
        let open = spots.next()?;
        let close = spots.next()?;
        Some(List { open, close, items })
    }
}

/// The `-` of a block sequence item, searched from `from`: the end of the previous item, where
/// only blanks and comments may come before it, or (`first`) the end of the list's key, where
/// the `:` and the list's tag or anchor may come too. (The parser's tokens are no help: their
/// spans start after the `-`.)
fn find_dash(text: &str, from: usize, first: bool) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut p = from;
    let mut colon = first;
    loop {
        match *bytes.get(p)? {
            b' ' | b'\t' | b'\n' | b'\r' => p += 1,
            b'#' => p = text[p..].find(['\n', '\r']).map_or(text.len(), |n| p + n),
            b':' if colon => {
                colon = false;
                p += 1;
            }
            b'!' | b'&' if first && !colon => {
                p = text[p..]
                    .find([' ', '\t', '\n', '\r'])
                    .map_or(text.len(), |n| p + n)
            }
            b'-' if matches!(bytes.get(p + 1), None | Some(b' ' | b'\t' | b'\n' | b'\r')) => {
                return Some(p)
            }
            _ => return None,
        }
    }
}

/// The plain scalar `id:` of a mapping item.
fn item_id(events: &[(Event<'_>, Span)]) -> Option<String> {
    if !matches!(events.first()?.0, Event::MappingStart(..)) {
        return None;
    }
    let mut i = 1;
    while !matches!(events.get(i)?.0, Event::MappingEnd) {
        let (value, _) = node_extent(events, i)?;
        if let (Event::Scalar(k, ..), Event::Scalar(v, ..)) = (&events[i].0, &events.get(value)?.0)
        {
            if k == "id" {
                return Some(v.to_string());
            }
        }
        i = node_extent(events, value)?.0;
    }
    None
}

/// Why recovery gave up part-way (the caller then falls back to the first problem).
struct GiveUp;

struct Recovery<'t> {
    text: &'t str,
    outline: &'t Outline,
    problems: Vec<Diagnostic>,
    broken: Vec<BrokenItem>,
    truncated: bool,
}

impl<'t> Recovery<'t> {
    fn run<T: Shape>(text: &'t str, outline: &'t Outline) -> Option<Shaped<T>> {
        let mut r = Recovery {
            text,
            outline,
            problems: Vec::new(),
            broken: Vec::new(),
            truncated: false,
        };
        let mut value = r.top_level::<T>().ok()?;
        for entry in &outline.entries {
            if let Some(list) = &entry.list {
                if !r.list::<T>(&entry.key, list, value.as_mut()).ok()? {
                    value = None;
                }
            }
        }
        if r.truncated {
            value = None;
            r.problems.push(
                Diagnostic::global(format!(
                    "stopped after {MAX_SHAPE_PROBLEMS} problems in the shape of the file"
                ))
                .with_help("fix these and check again"),
            );
        }
        Some(Shaped {
            value,
            problems: r.problems,
            broken: r.broken,
        })
    }

    /// A copy of the text with only `keep` (and a byte-order mark) left, the neutralising
    /// brackets of `lists` written in, and every other byte but line breaks blanked.
    ///
    /// A blanked line must read as nothing at all: a line of spaces after a block scalar
    /// (`|`) would be part of its text. So a line with nothing kept but blanks starts a
    /// comment where its blanking starts (further left than any block scalar's text, since
    /// what was there ended that scalar).
    fn blanked(&self, keep: &[(usize, usize)], lists: &[&List]) -> Result<String, GiveUp> {
        let src = self.text.as_bytes();
        let mut bytes: Vec<u8> = src
            .iter()
            .map(|&b| if matches!(b, b'\n' | b'\r') { b } else { b' ' })
            .collect();
        let mut kept = vec![false; src.len()];
        let mut copy = |s: usize, e: usize, bytes: &mut Vec<u8>| {
            bytes[s..e].copy_from_slice(&src[s..e]);
            kept[s..e].iter_mut().for_each(|k| *k = true);
        };
        copy(0, self.outline.bom, &mut bytes);
        for &(s, e) in keep {
            copy(s, e, &mut bytes);
        }
        for list in lists {
            for (at, b) in [(list.open, b'['), (list.close, b']')] {
                bytes[at] = b;
                kept[at] = true;
            }
        }
        let mut line_start = 0;
        while line_start < bytes.len() {
            let line_end = bytes[line_start..]
                .iter()
                .position(|b| matches!(b, b'\n' | b'\r'))
                .map_or(bytes.len(), |n| line_start + n);
            let line = line_start..line_end;
            let has_text = line
                .clone()
                .any(|i| kept[i] && i >= self.outline.bom && !matches!(bytes[i], b' ' | b'\t'));
            if !has_text {
                if let Some(first_blank) = line.clone().find(|&i| !kept[i]) {
                    bytes[first_blank] = b'#';
                }
            }
            line_start = line_end + 1;
        }
        let copy = String::from_utf8(bytes).map_err(|_| GiveUp)?;
        // A kept set of whole entries or items is well-formed by construction; if it is not,
        // the outline is wrong and nothing it says can be trusted.
        if Parser::new_from_str(&copy).any(|e| e.is_err()) {
            return Err(GiveUp);
        }
        Ok(copy)
    }

    fn record(&mut self, err: &serde_saphyr::Error) {
        if self.problems.len() >= MAX_SHAPE_PROBLEMS {
            self.truncated = true;
        } else {
            self.problems.push(from_yaml_error(err));
        }
    }

    /// The top-level pass: returns the value built from the good entries, `None` when the top
    /// level cannot be built.
    fn top_level<T: Shape>(&mut self) -> Result<Option<T>, GiveUp> {
        let entries = &self.outline.entries;
        let mut dropped = vec![false; entries.len()];
        loop {
            let mut keep = Vec::new();
            let mut lists = Vec::new();
            for (entry, &dropped) in entries.iter().zip(&dropped) {
                match &entry.list {
                    Some(list) => {
                        keep.push((entry.start, list.items[0].start));
                        lists.push(list);
                    }
                    None if !dropped => keep.push((entry.start, entry.end)),
                    None => {}
                }
            }
            if keep.is_empty() {
                // Every entry broke: there is nothing left to be missing from.
                return Ok(None);
            }
            let copy = self.blanked(&keep, &lists)?;
            let err = match serde_saphyr::from_str::<T>(&copy) {
                Ok(value) => return Ok(Some(value)),
                Err(err) => err,
            };
            if let Some(field) = missing_field(&err) {
                // A required entry that is there but broken was reported already.
                let broken_there = entries
                    .iter()
                    .zip(&dropped)
                    .any(|(e, &d)| d && e.key == field);
                if !broken_there {
                    self.record(&err);
                }
                return Ok(None);
            }
            self.record(&err);
            if self.truncated {
                return Ok(None);
            }
            let at = error_offset(&err);
            let owner = at.and_then(|at| entries.iter().rposition(|e| e.start <= at));
            match owner {
                Some(j) if entries[j].list.is_none() && !dropped[j] => dropped[j] = true,
                _ => return Ok(None),
            }
        }
    }

    /// The pass over one list's items. Returns whether the list could be read (its good items
    /// are then stored into `value`).
    fn list<T: Shape>(
        &mut self,
        key: &str,
        list: &List,
        mut value: Option<&mut T>,
    ) -> Result<bool, GiveUp> {
        let mut dropped = vec![false; list.items.len()];
        loop {
            let keep: Vec<(usize, usize)> = list
                .items
                .iter()
                .zip(&dropped)
                .filter(|(_, &d)| !d)
                .map(|(item, _)| (item.start, item.end))
                .collect();
            if keep.is_empty() {
                // Every item broke: the value keeps its placeholder empty list.
                return Ok(true);
            }
            let copy = self.blanked(&keep, &[])?;
            let err = match T::read_list(key, &copy, value.as_deref_mut()) {
                Ok(()) => return Ok(true),
                Err(err) => err,
            };
            self.record(&err);
            if self.truncated {
                return Ok(false);
            }
            let at = error_offset(&err);
            let owner = at.and_then(|at| list.items.iter().rposition(|i| i.start <= at));
            match owner {
                Some(j) if !dropped[j] => {
                    dropped[j] = true;
                    self.broken.push(BrokenItem {
                        list: key.to_string(),
                        index: j,
                        id: list.items[j].id.clone(),
                    });
                }
                _ => return Ok(false),
            }
        }
    }
}

/// The name of the missing field, when `err` is serde's "missing field".
fn missing_field(err: &serde_saphyr::Error) -> Option<&'static str> {
    match original(err) {
        serde_saphyr::Error::SerdeMissingField { field, .. } => Some(field),
        _ => None,
    }
}

fn original(mut err: &serde_saphyr::Error) -> &serde_saphyr::Error {
    while let serde_saphyr::Error::WithSnippet { error, .. }
    | serde_saphyr::Error::AliasError { error, .. } = err
    {
        err = error;
    }
    err
}

fn error_offset(err: &serde_saphyr::Error) -> Option<usize> {
    let at = err.location()?;
    if at.line() == 0 {
        return None;
    }
    at.span().byte_offset().map(|o| o as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_saphyr::Spanned;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        size: Option<u32>,
        #[serde(default)]
        others: Vec<Thing>,
        things: Spanned<Vec<Thing>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Thing {
        id: Spanned<String>,
        #[serde(default)]
        n: Option<u32>,
    }

    impl Shape for Doc {
        const LISTS: &'static [&'static str] = &["things", "others"];
        fn read_list(
            key: &str,
            text: &str,
            into: Option<&mut Self>,
        ) -> Result<(), serde_saphyr::Error> {
            match key {
                "things" => read_items(text, into.map(|d| &mut d.things.value)),
                _ => read_items(text, into.map(|d| &mut d.others)),
            }
        }
    }

    fn lines(s: &Shaped<Doc>) -> Vec<(u64, String)> {
        s.problems
            .iter()
            .map(|d| (d.line, d.message.clone()))
            .collect()
    }

    #[test]
    fn a_valid_file_is_one_parse_and_no_problem() {
        let s: Shaped<Doc> = read_shape("name: x\nthings:\n  - id: a\n");
        assert!(s.problems.is_empty());
        assert_eq!(s.value.unwrap().things.value[0].id.value, "a");
    }

    #[test]
    fn every_broken_item_and_entry_is_reported_and_the_rest_kept() {
        let text = "\
name: x
size: big
colour: red
things:
  - id: a
    n: -1
  - id: b
  - id: c
    m: 1
  -
    n: 2
others:
- id: o
  n: x
- id: p
";
        let s: Shaped<Doc> = read_shape(text);
        let l = lines(&s);
        let at: Vec<u64> = l.iter().map(|(l, _)| *l).collect();
        assert_eq!(at, [2, 3, 6, 9, 11, 14], "{l:#?}");
        assert!(l[1].1.contains("unknown field `colour`"), "{l:?}");
        assert!(l[4].1.contains("missing field `id`"), "{l:?}");
        let doc = s.value.as_ref().expect("the top level is recovered");
        assert_eq!(doc.name.as_deref(), Some("x"));
        let ids: Vec<&str> = doc
            .things
            .value
            .iter()
            .map(|t| t.id.value.as_str())
            .collect();
        assert_eq!(ids, ["b"]);
        assert_eq!(
            doc.things.value[0].id.referenced.line(),
            7,
            "original location"
        );
        assert_eq!(doc.others.len(), 1);
        assert_eq!(doc.others[0].n, None);
        assert!(s.has_broken("things") && s.has_broken("others"));
        let broken: Vec<&str> = s.broken_ids("things").collect();
        assert_eq!(broken, ["a", "c"]);
    }

    #[test]
    fn a_broken_required_list_is_not_also_missing() {
        let s: Shaped<Doc> = read_shape("things: 5\nsize: x\n");
        let l = lines(&s);
        assert_eq!(l.len(), 2, "{l:?}");
        assert!(s.value.is_none());
        let s: Shaped<Doc> = read_shape("size: 1\n");
        assert!(lines(&s)[0].1.contains("missing field `things`"));
    }

    #[test]
    fn unsplittable_files_report_their_first_problem() {
        for text in [
            "{ things: [ { id: a, n: x } ], size: y }\n",
            "things: [ { id: a, n: x }, { id: b, n: y } ]\n",
            "a: &x 1\nthings:\n  - id: a\n    n: *x\n  - id: b\n    m: 1\n",
            "things:\n  - id: a\n    n: x\n---\nthings: []\n",
            "things:\n  - id: [\n",
        ] {
            let s: Shaped<Doc> = read_shape(text);
            assert_eq!(s.problems.len(), 1, "{text}: {:?}", lines(&s));
            assert!(s.value.is_none());
        }
    }

    #[test]
    fn indentless_lists_block_scalars_comments_and_crlf() {
        let text = "\u{feff}# head\r\nthings: # c\r\n- id: a # x\r\n  n: q\r\n- id: |\r\n    b\r\n- id: c\r\n  z: 1\r\nsize: 3\r\n";
        let s: Shaped<Doc> = read_shape(text);
        let at: Vec<u64> = s.problems.iter().map(|d| d.line).collect();
        assert_eq!(at, [4, 8], "{:?}", lines(&s));
        let doc = s.value.unwrap();
        assert_eq!(doc.size, Some(3));
        assert_eq!(doc.things.value.len(), 1);
        assert_eq!(doc.things.value[0].id.value, "b\n");
    }

    #[test]
    fn unicode_where_the_neutralising_brackets_go() {
        for text in [
            "things:\n-\n é: 1\n- id: b\n  n: x\n",
            "things:\n- 日本\n- id: b\n  n: x\n",
            "things:\n-\n  - é\n- id: b\n  n: x\n",
        ] {
            let s: Shaped<Doc> = read_shape(text);
            assert!(!s.problems.is_empty(), "{text:?}");
        }
    }

    #[test]
    fn problems_are_capped() {
        let mut text = String::from("things:\n");
        for i in 0..(MAX_SHAPE_PROBLEMS + 20) {
            text.push_str(&format!("  - id: t{i}\n    m: 1\n"));
        }
        let s: Shaped<Doc> = read_shape(&text);
        assert_eq!(s.problems.len(), MAX_SHAPE_PROBLEMS + 1);
        assert_eq!(s.problems[0].line, 0, "the note on the cap is file-level");
        assert!(s.value.is_none());
    }
}
