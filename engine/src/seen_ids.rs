//! The event ids a stream has seen, with the line each was first seen at: what makes
//! "duplicate event id" exact over a whole stream.
//!
//! It is the one part of a stream's memory that grows with the number of events (a streamed
//! `fusebox run` holds a few chunks otherwise), so it is compact rather than a map of
//! strings (which cost ~80 bytes an id: a heap string, a fat pointer and the line):
//!
//! - **Short ids** (at most 15 bytes — `ev-00000042`, a UUID without dashes does not fit, a
//!   decimal number does) are stored inline in a 16-byte key: the bytes, zero-padded, and
//!   the length in the last byte. Equal keys are equal ids, exactly.
//! - **Longer ids** go to one byte arena; their key holds the arena offset, the length and a
//!   32-bit hash of the bytes (for a quick reject), with the last byte's top bit set, and a
//!   match is confirmed by comparing the bytes. Exact too.
//! - **Lines** are 32-bit; a line past `u32::MAX - 1` is kept in a side map by id (exact,
//!   and only files of more than four billion lines ever use it).
//!
//! An entry is 20 bytes plus hashbrown's control byte. The ids are spread over [`SHARDS`]
//! tables by hash, so growing doubles one small table at a time instead of the whole set
//! (no transient 1.5× peak at the resize of a large table).
//!
//! Invariant: `first_line(id)` (and `first_line_or_insert(id, _)`) is `Some(line)` if and
//! only if `first_line_or_insert` was called before with the same bytes, and `line` is that
//! first call's line.

use hashbrown::hash_table::Entry;
use hashbrown::HashTable;
use rustc_hash::{FxHashMap, FxHasher};
use std::hash::Hasher;

/// Tables the ids are spread over.
pub const SHARDS: usize = 64;

/// Longest id stored inline.
const INLINE_MAX: usize = 15;

/// Line stored when the real one is in `far_lines`.
const FAR_LINE: u32 = u32::MAX;

/// One id: its 16-byte key (see the module docs) and first line.
#[derive(Clone, Copy)]
struct Slot {
    key: [u8; 16],
    line: u32,
}

/// Exact set of seen ids with first lines (see the module docs).
pub(crate) struct SeenIds {
    shards: Vec<HashTable<Slot>>,
    /// Bytes of the ids longer than [`INLINE_MAX`].
    arena: Vec<u8>,
    /// First lines that do not fit in 32 bits, by id.
    far_lines: FxHashMap<Box<[u8]>, u64>,
    len: usize,
}

impl Default for SeenIds {
    fn default() -> SeenIds {
        SeenIds {
            shards: (0..SHARDS).map(|_| HashTable::new()).collect(),
            arena: Vec::new(),
            far_lines: FxHashMap::default(),
            len: 0,
        }
    }
}

impl std::fmt::Debug for SeenIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeenIds").field("len", &self.len).finish()
    }
}

fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write(bytes);
    h.write_usize(bytes.len());
    // Fx leaves the low bits weak for short inputs; spread them (shard and bucket bits).
    let x = h.finish();
    x ^ (x >> 29) ^ (x >> 47)
}

/// The inline key of a short id.
fn inline_key(bytes: &[u8]) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..bytes.len()].copy_from_slice(bytes);
    key[15] = bytes.len() as u8;
    key
}

/// Parts of a long id's key: (arena offset, length, 32-bit hash).
fn long_parts(key: &[u8; 16]) -> (usize, usize, u32) {
    let mut offset = [0u8; 8];
    offset[..6].copy_from_slice(&key[..6]);
    let len = u32::from_le_bytes([key[6], key[7], key[8], key[9]]);
    let hash = u32::from_le_bytes([key[10], key[11], key[12], key[13]]);
    (u64::from_le_bytes(offset) as usize, len as usize, hash)
}

fn is_long(key: &[u8; 16]) -> bool {
    key[15] & 0x80 != 0
}

impl SeenIds {
    /// Ids seen.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The line `id` was first seen at, if it was (without recording it).
    #[cfg(test)]
    pub fn first_line(&self, id: &str) -> Option<u64> {
        let bytes = id.as_bytes();
        let hash = hash_bytes(bytes);
        let shard = &self.shards[shard_of(hash)];
        let slot = if bytes.len() <= INLINE_MAX {
            let key = inline_key(bytes);
            shard.find(hash, |s| s.key == key)?
        } else {
            let short = hash as u32;
            shard.find(hash, |s| {
                is_long(&s.key) && {
                    let (_, len, h) = long_parts(&s.key);
                    len == bytes.len() && h == short && bytes_of(&self.arena, s) == bytes
                }
            })?
        };
        Some(match slot.line {
            FAR_LINE => self.far_lines.get(bytes).copied()?,
            line => u64::from(line),
        })
    }

    /// The line `id` was first seen at if it was; otherwise records it as first seen at
    /// `line` and returns `None`. One hash and one probe either way (admission calls this
    /// once per input event).
    pub fn first_line_or_insert(&mut self, id: &str, line: u64) -> Option<u64> {
        let bytes = id.as_bytes();
        let hash = hash_bytes(bytes);
        let inline = (bytes.len() <= INLINE_MAX).then(|| inline_key(bytes));
        let arena = &self.arena;
        let eq = |s: &Slot| match &inline {
            Some(key) => s.key == *key,
            None => {
                is_long(&s.key) && {
                    let (_, len, h) = long_parts(&s.key);
                    len == bytes.len() && h == hash as u32 && bytes_of(arena, s) == bytes
                }
            }
        };
        let entry = self.shards[shard_of(hash)].entry(hash, eq, |s| hash_bytes(bytes_of(arena, s)));
        let vacant = match entry {
            Entry::Occupied(found) => {
                return Some(match found.get().line {
                    FAR_LINE => self.far_lines.get(bytes).copied().unwrap_or(u64::MAX),
                    line => u64::from(line),
                })
            }
            Entry::Vacant(vacant) => vacant,
        };
        let key = match inline {
            Some(key) => key,
            None => {
                let offset = self.arena.len() as u64;
                self.arena.extend_from_slice(bytes);
                let mut key = [0u8; 16];
                key[..6].copy_from_slice(&offset.to_le_bytes()[..6]);
                key[6..10].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
                key[10..14].copy_from_slice(&(hash as u32).to_le_bytes());
                key[15] = 0x80;
                key
            }
        };
        let line = match u32::try_from(line) {
            Ok(l) if l != FAR_LINE => l,
            _ => {
                self.far_lines.insert(bytes.into(), line);
                FAR_LINE
            }
        };
        vacant.insert(Slot { key, line });
        self.len += 1;
        None
    }
}

fn shard_of(hash: u64) -> usize {
    (hash >> 58) as usize % SHARDS
}

fn bytes_of<'a>(arena: &'a [u8], slot: &'a Slot) -> &'a [u8] {
    if is_long(&slot.key) {
        let (offset, len, _) = long_parts(&slot.key);
        &arena[offset..offset + len]
    } else {
        &slot.key[..usize::from(slot.key[15])]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_long_and_far_ids_are_exact() {
        let mut seen = SeenIds::default();
        let long = "x".repeat(40);
        let ids = [
            "",
            "a",
            "ev-00000001",
            "123456789012345",
            "1234567890123456",
            &long,
        ];
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(seen.first_line(id), None, "{id:?}");
            assert_eq!(seen.first_line_or_insert(id, i as u64 + 1), None, "{id:?}");
            assert_eq!(
                seen.first_line_or_insert(id, 99),
                Some(i as u64 + 1),
                "{id:?}"
            );
        }
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(seen.first_line(id), Some(i as u64 + 1), "{id:?}");
        }
        // A prefix, an extension, a zero byte where the padding is: different ids.
        for other in ["ev-0000000", "ev-000000010", "a\0", "x".repeat(39).as_str()] {
            assert_eq!(seen.first_line(other), None, "{other:?}");
        }
        let far = "far, and longer than fifteen bytes";
        for (id, line) in [
            ("far", u64::from(u32::MAX) + 7),
            ("edge", u64::from(u32::MAX)),
            (far, u64::MAX),
        ] {
            assert_eq!(seen.first_line_or_insert(id, line), None);
            assert_eq!(seen.first_line(id), Some(line));
            assert_eq!(seen.first_line_or_insert(id, 1), Some(line));
        }
        assert_eq!(seen.len(), ids.len() + 3);
    }

    proptest! {
        /// Against a map of strings: same answers for every id, after every insert.
        #[test]
        fn it_answers_as_a_string_map_does(
            ids in prop::collection::vec("[a-c\0é]{0,20}", 0..300),
            probes in prop::collection::vec("[a-c\0é]{0,20}", 0..50),
        ) {
            let mut seen = SeenIds::default();
            let mut reference: std::collections::HashMap<String, u64> = Default::default();
            for (line, id) in ids.iter().enumerate() {
                prop_assert_eq!(seen.first_line(id), reference.get(id).copied());
                prop_assert_eq!(
                    seen.first_line_or_insert(id, line as u64),
                    reference.get(id).copied()
                );
                reference.entry(id.clone()).or_insert(line as u64);
            }
            for id in ids.iter().chain(&probes) {
                prop_assert_eq!(seen.first_line(id), reference.get(id).copied());
            }
            prop_assert_eq!(seen.len(), reference.len());
        }
    }
}
