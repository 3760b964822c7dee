//! Column builders: one per piece of input parsed on a worker, appended in input order.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::props::{Captured, PropertyColumn};
use super::{EventColumns, PropertySelection, Rejected};

/// The columns of one piece of input. Line numbers of rejected records are relative to the
/// piece (its first line is 1) until [`EventColumns::append`] shifts them.
pub(crate) struct Builder<'s> {
    selection: &'s PropertySelection,
    columns: EventColumns,
    type_index: FxHashMap<Arc<str>, u32>,
    prop_index: FxHashMap<Arc<str>, usize>,
}

impl<'s> Builder<'s> {
    pub(crate) fn new(selection: &'s PropertySelection) -> Builder<'s> {
        Builder {
            selection,
            columns: EventColumns::default(),
            type_index: FxHashMap::default(),
            prop_index: FxHashMap::default(),
        }
    }

    /// Appends a valid event.
    pub(crate) fn push(
        &mut self,
        customer_id: u64,
        event_type: &str,
        timestamp: i64,
        properties: Option<Captured<'_>>,
    ) {
        let event = self.columns.customer_ids.len() as u32;
        let code = match self.type_index.get(event_type) {
            Some(&c) => c,
            None => {
                let name: Arc<str> = Arc::from(event_type);
                let c = self.columns.types.len() as u32;
                self.columns.types.push(name.clone());
                self.type_index.insert(name, c);
                c
            }
        };
        self.columns.customer_ids.push(customer_id);
        self.columns.type_codes.push(code);
        self.columns.timestamps.push(timestamp);
        for (key, cell) in properties.into_iter().flat_map(|p| p.0) {
            if !self.selection.keeps(&key) {
                continue;
            }
            let at = match self.prop_index.get(key.as_ref()) {
                Some(&at) => at,
                None => {
                    let name: Arc<str> = Arc::from(key.as_ref());
                    self.columns
                        .properties
                        .push(PropertyColumn::new(name.clone()));
                    let at = self.columns.properties.len() - 1;
                    self.prop_index.insert(name, at);
                    at
                }
            };
            self.columns.properties[at].push(event, cell);
        }
    }

    /// Records a rejected record at `line` (relative to the piece).
    pub(crate) fn reject(&mut self, line: u64, reason: String) {
        self.columns.rejected.push(Rejected { line, reason });
    }

    pub(crate) fn finish(self) -> EventColumns {
        self.columns
    }
}

impl EventColumns {
    /// Appends a later piece's columns; its rejected lines are shifted by `line_offset`.
    pub(crate) fn append(&mut self, piece: EventColumns, line_offset: u64) -> std::io::Result<()> {
        let offset = self.len();
        if offset + piece.len() > u32::MAX as usize {
            return Err(std::io::Error::other(format!(
                "more than {} valid events in one file",
                u32::MAX
            )));
        }
        let offset = offset as u32;
        let codes: Vec<u32> = piece
            .types
            .iter()
            .map(|t| match self.types.iter().position(|known| known == t) {
                Some(c) => c as u32,
                None => {
                    self.types.push(t.clone());
                    (self.types.len() - 1) as u32
                }
            })
            .collect();
        self.customer_ids.extend_from_slice(&piece.customer_ids);
        self.timestamps.extend_from_slice(&piece.timestamps);
        self.type_codes
            .extend(piece.type_codes.iter().map(|&c| codes[c as usize]));
        for column in piece.properties {
            match self.properties.iter_mut().find(|c| c.name == column.name) {
                Some(mine) => mine.append(column, offset),
                None => {
                    let mut mine = PropertyColumn::new(column.name.clone());
                    mine.append(column, offset);
                    self.properties.push(mine);
                }
            }
        }
        self.rejected
            .extend(piece.rejected.into_iter().map(|r| Rejected {
                line: r.line + line_offset,
                reason: r.reason,
            }));
        Ok(())
    }
}
