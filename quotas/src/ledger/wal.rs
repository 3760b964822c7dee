//! A framed, checksummed, append-only log file with group commit, and a
//! superblock that says how far the log has been acknowledged.
//!
//! # On-disk format (version 2)
//!
//! ```text
//! file       = header superblock record*
//! header     = "FBXQWAL1" (8 bytes) | version: u32 LE = 2 | reserved: u32 LE = 0   bytes 0..16
//! superblock = slot[0] | slot[1]                                                    bytes 16..80
//! slot       = generation: u64 LE | durable_end: u64 LE | flags: u32 LE
//!              | reserved: u32 LE = 0 | reserved: u32 LE = 0 | crc: u32 LE          32 bytes
//!              crc   = CRC-32 (IEEE) over the slot's first 28 bytes
//!              flags = bit 0 SEALED (written by a clean close); other bits zero
//!              valid = crc matches, generation ≥ 1, reserved bytes and flags as above
//! record     = len: u32 LE | !len: u32 LE | crc: u32 LE | payload: len bytes        from byte 80
//!              !len = bitwise complement of len (guards the length itself)
//!              crc  = CRC-32 (IEEE) over the 4 len bytes followed by the payload
//!              1 ≤ len ≤ MAX_PAYLOAD
//! ```
//!
//! The payload is opaque here (see `ledger::durable` for its encoding).
//!
//! # The superblock: a checkable high-water mark
//!
//! A log alone cannot tell "the process died before its last append
//! completed" from "acknowledged records were cut off the end": both leave a
//! shorter, well-formed file, and opening it would silently forget granted
//! usage (and then over-grant the day). The superblock breaks the tie. Its
//! **mark** is `durable_end`, the file offset up to which every record has
//! been acknowledged, and a group commit is ordered
//!
//! 1. write the group's records at the end of the log (`pwrite`);
//! 2. under [`Durability::PowerLoss`]: `fdatasync`;
//! 3. write the mark, `durable_end` = the group's end (one 32-byte `pwrite`);
//! 4. wake the group's waiters: only now is anything acknowledged.
//!
//! So the mark never covers a record that is less durable than the mark
//! itself: after `kill -9` both are in the page cache; under `PowerLoss` the
//! records were synced before the mark was written, and the mark reaches the
//! disk with the next group's sync (or the close's) — on disk it lags by at
//! most one group, it never leads. Under [`Durability::ProcessCrash`] a power
//! loss can persist the mark without the records; then acknowledged records
//! *are* lost, and the file is refused instead of opening short.
//!
//! The mark alternates between the two slots: generation `g` is written to
//! slot `g mod 2`, each write one generation higher, each slot with its own
//! checksum. A torn slot write therefore leaves the other slot — the
//! previous, lower mark — intact, and the valid slot with the highest
//! generation is the mark in force. An open writes an unsealed mark; a clean
//! close syncs everything and writes a SEALED one, so the next open can
//! report whether the previous session ended cleanly (information only; the
//! safety argument does not depend on it). Cost: one small `pwrite` per
//! group commit, no extra sync (`benches/reserve_commit.rs` measures it).
//!
//! # Recovery rules
//!
//! On open, in this order:
//!
//! 1. A file shorter than the 16-byte header, with bad magic, non-zero
//!    reserved bytes or an unknown version is **corrupt**. A version-1 file
//!    is refused as [`LedgerError::OldFormat`] (see "Version 1").
//! 2. A version-2 file shorter than 80 bytes (the superblock is missing),
//!    with neither slot valid, or whose mark points inside the header or
//!    superblock, is **corrupt**.
//! 3. Records are scanned from byte 80. Scanning stops at the first record
//!    that is not entirely present:
//!    * the file ends inside a record's 12-byte frame,
//!    * the frame is intact (length and complement agree) but the file ends
//!      inside the payload, or
//!    * everything from some record boundary to the end is zero bytes
//!      (a file system may expose a zero-filled extension after power loss).
//!
//!    Anything else that is wrong — a length that disagrees with its
//!    complement or is out of range, a checksum mismatch — is **corruption**,
//!    and opening fails. Let `readable_end` be the end of the last complete
//!    record (80 if there is none).
//! 4. `readable_end < durable_end`: records that were acknowledged are
//!    missing — the file was cut or zero-filled at or below the mark. This is
//!    **tail loss**, [`LedgerError::TailLost`], and opening fails.
//! 5. `durable_end` must be a record boundary; otherwise the superblock and
//!    the log disagree: **corrupt**.
//! 6. What follows `readable_end` (at or past the mark) is a **torn tail**:
//!    an append that never completed, hence was never acknowledged. It is
//!    truncated away and reported. Complete records past the mark (written,
//!    but the process died before writing their mark) are kept: they can
//!    only over-count.
//! 7. The file is synced and an unsealed mark at `readable_end` is written.
//!
//! A corrupt, tail-lost or version-1 file is never modified by an open.
//! Because a length is guarded by its complement, a damaged length cannot
//! pass for a torn tail: every single-bit flip in the header or the records
//! is reported as corruption, and a flip in a superblock slot invalidates
//! that slot only, leaving the other, lower mark (property tests check both).
//!
//! [`survey`] reads a file the same way but never fails: it returns what is
//! readable and the first problem, for `fusebox quota recover`, which shows
//! both and, when the operator accepts the loss, rewrites the ledger from
//! the readable records with an audit record (see `ledger::durable`).
//!
//! # Version 1
//!
//! Version 1 was `"FBXQWAL1" | 1 | 0` followed directly by records (from
//! byte 16), without a superblock: it cannot tell a torn tail from a cut
//! one, so migrating it on open would certify whatever tail it happens to
//! have. It is **refused** instead ([`LedgerError::OldFormat`], exit 2 in the
//! CLI); `fusebox quota recover --ledger PATH` shows its contents and
//! `--accept-loss` rewrites it as version 2, logged in an audit record.
//! Version-1 binaries refuse version-2 files ("unsupported ledger format
//! version 2").
//!
//! # Group commit
//!
//! [`Wal::append`] copies a record into a shared buffer and returns its
//! end position (log sequence number). [`Wal::wait_durable`] returns once
//! that position is acknowledged: the first waiter becomes the leader, takes
//! the whole buffer, writes it with one `pwrite` (plus `fdatasync` under
//! [`Durability::PowerLoss`]) and the mark outside the lock, and wakes
//! everyone it covered; appends that arrive meanwhile form the next group.
//! After a failed write the log refuses everything: it can no longer prove
//! what is on disk.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::LedgerError;

/// What an acknowledged write survives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Records reach the operating system (`write(2)`) before a grant is
    /// acknowledged: they survive the process being killed (`kill -9`,
    /// panic, OOM kill) but not a kernel crash or power loss (after which a
    /// ledger that lost acknowledged records is refused, see
    /// [`LedgerError::TailLost`]). Costs one `write` and one 32-byte mark
    /// `pwrite` per commit group (microseconds). The default.
    #[default]
    ProcessCrash,
    /// Records reach stable storage (`fdatasync`) before a grant is
    /// acknowledged: they also survive power loss. Costs one `fdatasync`
    /// per commit group (from ~0.1 ms on NVMe to several ms on disks and
    /// network volumes); concurrent reservers share it.
    PowerLoss,
}

const MAGIC: &[u8; 8] = b"FBXQWAL1";
/// The format this code writes.
pub(crate) const VERSION: u32 = 2;
/// Header and superblock: records start here.
pub(crate) const HEADER_LEN: u64 = 80;
/// Magic, version and reserved word (the whole header of version 1).
const PREFIX_LEN: usize = 16;
const SLOT_LEN: usize = 32;
const FRAME_LEN: usize = 12;
/// Mark flag: written by a clean close.
const SEALED: u32 = 1;
/// Upper bound of one payload; larger lengths are corruption.
pub(crate) const MAX_PAYLOAD: usize = 64 * 1024;
/// `crash_budget` when no crash is injected.
const NO_CRASH: u64 = u64::MAX;

/// A record read back during recovery.
pub(crate) struct Scanned {
    /// File offset of the record's frame.
    pub offset: u64,
    pub payload: Vec<u8>,
}

impl Scanned {
    /// File offset just past the record.
    pub fn end(&self) -> u64 {
        self.offset + (FRAME_LEN + self.payload.len()) as u64
    }
}

/// What opening the log found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Valid records read.
    pub records: u64,
    /// Bytes of torn tail removed.
    pub truncated_bytes: u64,
    /// The superblock mark found: everything before it had been acknowledged.
    pub durable_end: u64,
    /// The previous session closed the log cleanly (its last mark is sealed).
    pub clean_close: bool,
    /// The file did not exist and was created by this open.
    pub created: bool,
}

/// The superblock mark in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mark {
    /// Generation of the slot holding it.
    pub generation: u64,
    /// Every record before this offset was acknowledged.
    pub durable_end: u64,
    /// Written by a clean close.
    pub sealed: bool,
}

/// The first thing wrong with a file, as [`survey`] finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Problem {
    /// Damaged structure or checksum at `offset`.
    Corrupt { offset: u64, reason: String },
    /// A format without a superblock.
    OldFormat { version: u32 },
    /// Records before the mark are missing.
    TailLost { durable_end: u64 },
}

/// Everything readable in a log file, and its first problem.
pub(crate) struct Survey {
    /// Format version (0 when the header is unreadable).
    pub version: u32,
    /// The mark in force (version 2).
    pub mark: Option<Mark>,
    /// The complete, valid records before any problem, in order.
    pub records: Vec<Scanned>,
    /// End of the last complete record (or of the header).
    pub readable_end: u64,
    /// File length.
    pub file_len: u64,
    /// The first problem; `None` when the file opens (after truncating
    /// `file_len - readable_end` bytes of torn tail).
    pub problem: Option<Problem>,
}

impl Survey {
    /// The problem as the error an open reports.
    pub fn error(&self, path: &Path) -> Option<LedgerError> {
        Some(match self.problem.clone()? {
            Problem::Corrupt { offset, reason } => corrupt(path, offset, reason),
            Problem::OldFormat { version } => LedgerError::OldFormat {
                path: path.to_path_buf(),
                version,
            },
            Problem::TailLost { durable_end } => LedgerError::TailLost {
                path: path.to_path_buf(),
                durable_end,
                readable_end: self.readable_end,
                file_len: self.file_len,
            },
        })
    }
}

struct Inner {
    /// Encoded records not yet handed to a leader.
    buf: Vec<u8>,
    /// Log sequence number (logical bytes ever appended) of the buffer's end.
    appended: u64,
    /// Everything up to here is acknowledged: written (and synced, per
    /// durability) and covered by the mark.
    durable: u64,
    /// Bytes in the current file including the buffer (drives compaction,
    /// and places each group: it starts at `file_len - buf.len()`).
    file_len: u64,
    flushing: bool,
    failed: bool,
}

/// The file and the generation of the last mark written to it.
struct LogFile {
    file: File,
    generation: u64,
}

impl LogFile {
    /// Writes the next mark (the other slot). Never leaves both slots torn.
    fn mark(&mut self, durable_end: u64, flags: u32) -> std::io::Result<()> {
        self.generation += 1;
        let (at, slot) = slot_bytes(self.generation, durable_end, flags);
        write_at(&self.file, &slot, at)
    }
}

/// How far a flush goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flush {
    /// Acknowledge: write (and sync under `PowerLoss`), then mark.
    Ack,
    /// Also sync the records and the mark, whatever the durability.
    Sync,
    /// `Sync`, with a sealed mark: a clean close.
    Seal,
}

/// The log. See the module docs.
pub(crate) struct Wal {
    path: PathBuf,
    durability: Durability,
    inner: Mutex<Inner>,
    done: Condvar,
    /// Held only by the flush leader (or a rewrite, which waits for no leader).
    file: Mutex<LogFile>,
    /// Fault injection ([`Wal::crash_after`]): bytes still allowed to reach
    /// the disk, or [`NO_CRASH`].
    crash_budget: AtomicU64,
}

fn injected_crash() -> std::io::Error {
    std::io::Error::other("injected crash (fault injection)")
}

fn io_err(path: &Path, source: std::io::Error) -> LedgerError {
    LedgerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> LedgerError {
    LedgerError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

#[cfg(unix)]
fn write_at(file: &File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

#[cfg(windows)]
fn write_at(file: &File, mut buf: &[u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        let n = file.seek_write(buf, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        buf = &buf[n..];
        offset += n as u64;
    }
    Ok(())
}

/// The slot bytes of a mark and the file offset of its slot.
fn slot_bytes(generation: u64, durable_end: u64, flags: u32) -> (u64, [u8; SLOT_LEN]) {
    let mut s = [0u8; SLOT_LEN];
    s[..8].copy_from_slice(&generation.to_le_bytes());
    s[8..16].copy_from_slice(&durable_end.to_le_bytes());
    s[16..20].copy_from_slice(&flags.to_le_bytes());
    let crc = crc32fast::hash(&s[..28]);
    s[28..].copy_from_slice(&crc.to_le_bytes());
    let at = (PREFIX_LEN + SLOT_LEN * (generation % 2) as usize) as u64;
    (at, s)
}

fn parse_slot(s: &[u8]) -> Option<Mark> {
    let word = |i: usize| u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
    let generation = u64::from_le_bytes(s[..8].try_into().ok()?);
    let durable_end = u64::from_le_bytes(s[8..16].try_into().ok()?);
    let flags = word(16);
    let valid = crc32fast::hash(&s[..28]) == word(28)
        && generation >= 1
        && flags & !SEALED == 0
        && word(20) == 0
        && word(24) == 0;
    valid.then_some(Mark {
        generation,
        durable_end,
        sealed: flags & SEALED != 0,
    })
}

/// A whole version-2 file: header, one mark (the other slot empty), records.
fn image(generation: u64, flags: u32, payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut data = vec![0u8; HEADER_LEN as usize];
    data[..8].copy_from_slice(MAGIC);
    data[8..12].copy_from_slice(&VERSION.to_le_bytes());
    for p in payloads {
        frame(&mut data, p);
    }
    let (at, slot) = slot_bytes(generation, data.len() as u64, flags);
    data[at as usize..at as usize + SLOT_LEN].copy_from_slice(&slot);
    data
}

/// Appends one framed record to `out`.
pub(crate) fn frame(out: &mut Vec<u8>, payload: &[u8]) {
    let n = payload.len() as u32;
    let len = n.to_le_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&len);
    crc.update(payload);
    out.extend_from_slice(&len);
    out.extend_from_slice(&(!n).to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(payload);
}

fn lock_exclusive(file: &File, path: &Path) -> Result<(), LedgerError> {
    lock_exclusive_within(file, path, Duration::ZERO)
}

/// Takes the exclusive lock, retrying for up to `wait`: a previous owner may
/// be exiting, and a process that just forked (to spawn a child) holds a
/// copy of every descriptor until its `exec`.
fn lock_exclusive_within(file: &File, path: &Path, wait: Duration) -> Result<(), LedgerError> {
    let deadline = Instant::now() + wait;
    loop {
        match fs4::FileExt::try_lock(file) {
            Ok(()) => return Ok(()),
            Err(fs4::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(fs4::TryLockError::WouldBlock) => {
                return Err(LedgerError::Locked {
                    path: path.to_path_buf(),
                })
            }
            Err(fs4::TryLockError::Error(e)) => return Err(io_err(path, e)),
        }
    }
}

fn sync_dir(path: &Path) -> Result<(), LedgerError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

/// Reads a whole log file per the recovery rules (module docs) without
/// failing: what is readable, and the first problem.
pub(crate) fn survey(data: &[u8]) -> Survey {
    let mut out = Survey {
        version: 0,
        mark: None,
        records: Vec::new(),
        readable_end: 0,
        file_len: data.len() as u64,
        problem: None,
    };
    let bad = |offset: u64, reason: String| Some(Problem::Corrupt { offset, reason });
    if data.len() < PREFIX_LEN {
        out.problem = bad(
            0,
            format!(
                "file is {} bytes, shorter than the {PREFIX_LEN}-byte header",
                data.len()
            ),
        );
        return out;
    }
    if &data[..8] != MAGIC {
        out.problem = bad(0, "not a fusebox quota ledger (bad magic)".into());
        return out;
    }
    let version = u32::from_le_bytes([data[8], data[9], data[10], data[11]]);
    out.version = version;
    let start = match version {
        1 => PREFIX_LEN,
        VERSION => HEADER_LEN as usize,
        _ => {
            out.problem = bad(8, format!("unsupported ledger format version {version}"));
            return out;
        }
    };
    if data[12..16] != [0, 0, 0, 0] {
        out.problem = bad(12, "reserved header bytes are not zero".into());
        return out;
    }
    if version == VERSION {
        if data.len() < start {
            out.readable_end = data.len() as u64;
            out.problem = bad(
                PREFIX_LEN as u64,
                format!(
                    "file is {} bytes, shorter than its {HEADER_LEN}-byte header and superblock: \
                     the file was cut, and how much was acknowledged is unknown",
                    data.len()
                ),
            );
            return out;
        }
        let slots = &data[PREFIX_LEN..start];
        let mark = [
            parse_slot(&slots[..SLOT_LEN]),
            parse_slot(&slots[SLOT_LEN..]),
        ]
        .into_iter()
        .flatten()
        .max_by_key(|m| m.generation);
        match mark {
            Some(m) if m.durable_end >= HEADER_LEN => out.mark = Some(m),
            Some(m) => {
                out.problem = bad(
                    PREFIX_LEN as u64,
                    format!(
                        "the superblock's durable end {} lies inside the header",
                        m.durable_end
                    ),
                );
                return out;
            }
            None => {
                out.problem = bad(
                    PREFIX_LEN as u64,
                    "neither superblock slot is valid (checksum mismatch)".into(),
                );
                return out;
            }
        }
    }
    let mut at = start;
    out.readable_end = at as u64;
    while at < data.len() {
        let rest = &data[at..];
        if rest.iter().all(|b| *b == 0) {
            break; // zero-filled tail
        }
        if rest.len() < FRAME_LEN {
            break; // torn frame header
        }
        let word = |i: usize| u32::from_le_bytes([rest[i], rest[i + 1], rest[i + 2], rest[i + 3]]);
        let (n, check, crc) = (word(0), word(4), word(8));
        if n != !check {
            out.problem = bad(at as u64, "record length fails its check".into());
            return out;
        }
        let len = n as usize;
        if len == 0 || len > MAX_PAYLOAD {
            out.problem = bad(at as u64, format!("invalid record length {len}"));
            return out;
        }
        if rest.len() < FRAME_LEN + len {
            break; // torn payload
        }
        let payload = &rest[FRAME_LEN..FRAME_LEN + len];
        let mut h = crc32fast::Hasher::new();
        h.update(&rest[..4]);
        h.update(payload);
        if h.finalize() != crc {
            out.problem = bad(at as u64, "record checksum mismatch".into());
            return out;
        }
        out.records.push(Scanned {
            offset: at as u64,
            payload: payload.to_vec(),
        });
        at += FRAME_LEN + len;
        out.readable_end = at as u64;
    }
    match out.mark {
        None => out.problem = Some(Problem::OldFormat { version }),
        Some(m) if out.readable_end < m.durable_end => {
            out.problem = Some(Problem::TailLost {
                durable_end: m.durable_end,
            })
        }
        Some(m) => {
            let boundary =
                m.durable_end == HEADER_LEN || out.records.iter().any(|r| r.end() == m.durable_end);
            if !boundary {
                out.problem = bad(
                    PREFIX_LEN as u64,
                    format!(
                        "the superblock's durable end {} is not a record boundary",
                        m.durable_end
                    ),
                );
            }
        }
    }
    out
}

/// Writes `data` as the new content of `path` atomically: a locked temporary
/// file, synced, renamed over `path`, directory synced. Returns the new
/// file, locked, positioned at its end: a crash at any point leaves either
/// the complete old file or the complete new one.
fn replace_file(path: &Path, data: &[u8]) -> Result<File, LedgerError> {
    let tmp = tmp_path(path);
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&tmp)
        .map_err(|e| io_err(&tmp, e))?;
    // Lock the new inode before it becomes visible under `path`.
    lock_exclusive(&f, &tmp)?;
    f.write_all(data).map_err(|e| io_err(&tmp, e))?;
    f.sync_all().map_err(|e| io_err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))?;
    sync_dir(path)?;
    Ok(f)
}

/// An open, locked log file and what it holds, for inspection and recovery
/// (`fusebox quota recover`): nothing is modified until [`Locked::replace`].
pub(crate) struct Locked {
    path: PathBuf,
    /// Holds the lock.
    _file: File,
    pub survey: Survey,
}

impl Locked {
    /// Opens and locks an existing log and surveys it.
    pub fn open(path: &Path, lock_wait: Duration) -> Result<Locked, LedgerError> {
        let mut file = OpenOptions::new()
            .read(true)
            .open(path)
            .map_err(|e| io_err(path, e))?;
        lock_exclusive_within(&file, path, lock_wait)?;
        let mut data = Vec::new();
        file.read_to_end(&mut data).map_err(|e| io_err(path, e))?;
        Ok(Locked {
            path: path.to_path_buf(),
            _file: file,
            survey: survey(&data),
        })
    }

    /// Replaces the log with a fresh version-2 log of `payloads`, sealed.
    pub fn replace(self, payloads: &[Vec<u8>]) -> Result<(), LedgerError> {
        replace_file(&self.path, &image(1, SEALED, payloads)).map(drop)
    }
}

impl Wal {
    /// Opens (creating if absent) and locks the log, returning its records.
    pub fn open(
        path: &Path,
        durability: Durability,
        lock_wait: Duration,
    ) -> Result<(Wal, Vec<Scanned>, ScanReport), LedgerError> {
        let created = !path.exists();
        if created {
            Self::create(path)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| io_err(path, e))?;
        lock_exclusive_within(&file, path, lock_wait)?;
        let mut data = Vec::new();
        file.read_to_end(&mut data).map_err(|e| io_err(path, e))?;
        let found = survey(&data);
        if let Some(e) = found.error(path) {
            return Err(e);
        }
        let Some(mark) = found.mark else {
            return Err(corrupt(path, PREFIX_LEN as u64, "no superblock"));
        };
        let valid = found.readable_end;
        let truncated = found.file_len - valid;
        if truncated > 0 {
            tracing::warn!(path = %path.display(), bytes = truncated, "truncating torn tail of quota ledger (an unacknowledged append)");
            file.set_len(valid).map_err(|e| io_err(path, e))?;
        }
        // Everything kept is synced before the mark that covers it (rule 7).
        let mut log = LogFile {
            file,
            generation: mark.generation,
        };
        let r = (|| {
            log.file.sync_data()?;
            log.mark(valid, 0)?;
            log.file.sync_data()
        })();
        r.map_err(|e| io_err(path, e))?;
        let report = ScanReport {
            records: found.records.len() as u64,
            truncated_bytes: truncated,
            durable_end: mark.durable_end,
            clean_close: mark.sealed,
            created,
        };
        let wal = Wal {
            path: path.to_path_buf(),
            durability,
            inner: Mutex::new(Inner {
                buf: Vec::with_capacity(64 * 1024),
                appended: valid,
                durable: valid,
                file_len: valid,
                flushing: false,
                failed: false,
            }),
            done: Condvar::new(),
            file: Mutex::new(log),
            crash_budget: AtomicU64::new(NO_CRASH),
        };
        Ok((wal, found.records, report))
    }

    /// Creates an empty log atomically (header and a sealed mark written to a
    /// temporary file, synced, renamed), so a crash never leaves a
    /// headerless ledger.
    fn create(path: &Path) -> Result<(), LedgerError> {
        let tmp = tmp_path(path);
        let mut f = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
        f.write_all(&image(1, SEALED, &[]))
            .map_err(|e| io_err(&tmp, e))?;
        f.sync_all().map_err(|e| io_err(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))?;
        sync_dir(path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Inner is only mutated by short, non-panicking sections.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Buffers one record; returns the LSN to wait for.
    pub fn append(&self, payload: &[u8]) -> Result<u64, LedgerError> {
        let mut g = self.lock();
        if g.failed {
            return Err(LedgerError::Failed(self.path.clone()));
        }
        let before = g.buf.len();
        frame(&mut g.buf, payload);
        let n = (g.buf.len() - before) as u64;
        g.appended += n;
        g.file_len += n;
        Ok(g.appended)
    }

    /// Bytes buffered but not yet handed to a writer.
    pub fn buffered(&self) -> usize {
        self.lock().buf.len()
    }

    /// Current file size including buffered records.
    pub fn file_len(&self) -> u64 {
        self.lock().file_len
    }

    /// The LSN of everything appended so far.
    pub fn appended(&self) -> u64 {
        self.lock().appended
    }

    /// Blocks until everything up to `lsn` is acknowledged (group commit).
    pub fn wait_durable(&self, lsn: u64) -> Result<(), LedgerError> {
        self.flush(lsn, Flush::Ack)
    }

    fn flush(&self, lsn: u64, mode: Flush) -> Result<(), LedgerError> {
        let mut g = self.lock();
        // Nothing beyond what was appended can ever become durable.
        let lsn = lsn.min(g.appended);
        loop {
            if g.failed {
                return Err(LedgerError::Failed(self.path.clone()));
            }
            if g.durable >= lsn && mode == Flush::Ack {
                return Ok(());
            }
            if g.flushing {
                g = self.done.wait(g).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // Become the leader for everything buffered so far.
            g.flushing = true;
            let batch = std::mem::take(&mut g.buf);
            let end = g.appended;
            let at = g.file_len - batch.len() as u64;
            drop(g);
            let result = self.write_out(&batch, at, mode);
            g = self.lock();
            g.flushing = false;
            // Reuse the allocation if nobody refilled the buffer meanwhile.
            if g.buf.is_empty() {
                let mut batch = batch;
                batch.clear();
                g.buf = batch;
            }
            match result {
                Ok(()) => g.durable = g.durable.max(end),
                Err(e) => {
                    g.failed = true;
                    self.done.notify_all();
                    tracing::error!(path = %self.path.display(), error = %e, "quota ledger write failed; ledger disabled");
                    return Err(e);
                }
            }
            self.done.notify_all();
            if mode != Flush::Ack || g.durable >= lsn {
                return Ok(());
            }
        }
    }

    /// Fault injection for crash tests: from now on the log behaves as if
    /// the process died once `bytes` more bytes have been written — a group
    /// commit stops there (after exactly its records, it stops before their
    /// mark), a compaction stops inside its temporary file — and the log
    /// fails, so nothing more reaches the file.
    pub fn crash_after(&self, bytes: u64) {
        self.crash_budget.store(bytes, Ordering::SeqCst);
    }

    /// Spends the crash budget on a write of `n` bytes: `None` when all of
    /// it may be written, `Some(k)` when only `k` bytes reach the disk before
    /// the injected crash.
    fn spend(&self, n: usize) -> Option<usize> {
        let budget = self.crash_budget.load(Ordering::SeqCst);
        if budget == NO_CRASH {
            None
        } else if (n as u64) < budget {
            self.crash_budget.store(budget - n as u64, Ordering::SeqCst);
            None
        } else {
            self.crash_budget.store(0, Ordering::SeqCst);
            Some(budget as usize)
        }
    }

    /// One group commit, in the order the module docs give: records, sync,
    /// mark (and a sync of the mark for `Sync` and `Seal`).
    fn write_out(&self, batch: &[u8], at: u64, mode: Flush) -> Result<(), LedgerError> {
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let r = (|| {
            if let Some(k) = self.spend(batch.len()) {
                write_at(&f.file, &batch[..k], at)?;
                return Err(injected_crash());
            }
            write_at(&f.file, batch, at)?;
            if mode != Flush::Ack || self.durability == Durability::PowerLoss {
                f.file.sync_data()?;
            }
            if !batch.is_empty() || mode != Flush::Ack {
                let flags = if mode == Flush::Seal { SEALED } else { 0 };
                f.mark(at + batch.len() as u64, flags)?;
            }
            if mode != Flush::Ack {
                f.file.sync_data()?;
            }
            Ok(())
        })();
        r.map_err(|e| io_err(&self.path, e))
    }

    /// Replaces the log with `payloads` (a snapshot) atomically. The caller
    /// must hold every lock that orders appends (all slot locks), so nothing
    /// is appended meanwhile. Everything buffered is first made durable in
    /// the old file, so a crash at any point leaves either the complete old
    /// log or the complete new one.
    pub fn rewrite(&self, payloads: &[Vec<u8>]) -> Result<(), LedgerError> {
        let lsn = self.appended();
        self.wait_durable(lsn)?;
        let mut g = self.lock();
        while g.flushing {
            g = self.done.wait(g).unwrap_or_else(|p| p.into_inner());
        }
        if g.failed {
            return Err(LedgerError::Failed(self.path.clone()));
        }
        let mut log = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let generation = log.generation + 1;
        let data = image(generation, 0, payloads);
        if let Some(k) = self.spend(data.len()) {
            // The crash leaves a partial temporary file; the log is untouched.
            let _ = std::fs::write(tmp_path(&self.path), &data[..k]);
            g.failed = true;
            return Err(io_err(&self.path, injected_crash()));
        }
        match replace_file(&self.path, &data) {
            Ok(file) => {
                // The new file is the only writer's handle, and keeps the
                // lock it took before the rename.
                *log = LogFile { file, generation };
                g.file_len = data.len() as u64;
                Ok(())
            }
            Err(e) => {
                g.failed = true;
                Err(e)
            }
        }
    }

    /// Flushes and syncs everything, records and mark (used by `sync`).
    pub fn sync(&self) -> Result<(), LedgerError> {
        let lsn = self.appended();
        self.flush(lsn, Flush::Sync)
    }

    /// A clean close: flushes, syncs and writes a sealed mark. Appending
    /// afterwards is allowed (the next group's mark unseals the file).
    pub fn close(&self) -> Result<(), LedgerError> {
        let lsn = self.appended();
        self.flush(lsn, Flush::Seal)
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(path: &Path) -> Result<(Wal, Vec<Scanned>, ScanReport), LedgerError> {
        Wal::open(path, Durability::ProcessCrash, Duration::ZERO)
    }

    fn payloads_of(recs: &[Scanned]) -> Vec<&[u8]> {
        recs.iter().map(|r| r.payload.as_slice()).collect()
    }

    /// Appends a complete record to the file by hand: written, never marked
    /// (what a process that died between steps 1 and 3 leaves).
    fn append_unmarked(p: &Path, payload: &[u8], keep: usize) {
        let mut data = std::fs::read(p).unwrap();
        let mut rec = Vec::new();
        frame(&mut rec, payload);
        data.extend_from_slice(&rec[..keep.min(rec.len())]);
        std::fs::write(p, data).unwrap();
    }

    #[test]
    fn appends_survive_reopen_and_group_commit_covers_earlier_records() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("q.ledger");
        {
            let (w, recs, rep) = open(&p).unwrap();
            assert!(recs.is_empty());
            assert!(rep.created && rep.clean_close);
            w.append(b"one").unwrap();
            let lsn = w.append(b"two").unwrap();
            w.wait_durable(lsn).unwrap();
            w.append(b"lost: never waited for").unwrap();
            // Dropped without `close`: a crash.
        }
        let (_w, recs, rep) = open(&p).unwrap();
        assert_eq!(
            payloads_of(&recs),
            vec![b"one".as_slice(), b"two".as_slice()]
        );
        assert_eq!(rep.truncated_bytes, 0);
        assert_eq!(rep.durable_end, HEADER_LEN + 2 * 12 + 6);
        assert!(!rep.created && !rep.clean_close, "{rep:?}");
    }

    #[test]
    fn a_clean_close_seals_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("q.ledger");
        {
            let (w, _, _) = open(&p).unwrap();
            w.append(b"one").unwrap();
            w.close().unwrap();
        }
        let (w, recs, rep) = open(&p).unwrap();
        assert_eq!((recs.len(), rep.clean_close), (1, true));
        // Appending after a close is allowed and unseals it again.
        let lsn = w.append(b"two").unwrap();
        w.wait_durable(lsn).unwrap();
        drop(w);
        let (_w, recs, rep) = open(&p).unwrap();
        assert_eq!((recs.len(), rep.clean_close), (2, false));
    }

    #[test]
    fn second_opener_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("q.ledger");
        let (_w, _, _) = open(&p).unwrap();
        assert!(matches!(open(&p), Err(LedgerError::Locked { .. })));
    }

    #[test]
    fn torn_tail_past_the_mark_is_truncated_but_checksum_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("q.ledger");
        {
            let (w, _, _) = open(&p).unwrap();
            let lsn = w.append(b"payload-1").unwrap();
            w.wait_durable(lsn).unwrap();
        }
        // A complete record past the mark is kept (it can only over-count).
        append_unmarked(&p, b"payload-2", usize::MAX);
        let (w, recs, rep) = open(&p).unwrap();
        assert_eq!((recs.len(), rep.truncated_bytes), (2, 0));
        drop(w);
        // A record cut short past the mark: torn tail.
        append_unmarked(&p, b"payload-3", 18);
        let (w, recs, rep) = open(&p).unwrap();
        assert_eq!((recs.len(), rep.truncated_bytes), (2, 18));
        drop(w);
        // Zero-filled extension: also a torn tail.
        let mut z = std::fs::read(&p).unwrap();
        z.extend_from_slice(&[0u8; 40]);
        std::fs::write(&p, &z).unwrap();
        let (w, recs, rep) = open(&p).unwrap();
        assert_eq!((recs.len(), rep.truncated_bytes), (2, 40));
        drop(w);
        // Flip one payload bit of a complete record: corruption.
        let mut bad = std::fs::read(&p).unwrap();
        let at = HEADER_LEN as usize + 12;
        bad[at] ^= 0x01;
        std::fs::write(&p, &bad).unwrap();
        match open(&p) {
            Err(LedgerError::Corrupt { offset, .. }) => assert_eq!(offset, HEADER_LEN),
            other => panic!("expected Corrupt, got {:?}", other.map(|_| ())),
        }
        assert_eq!(std::fs::read(&p).unwrap(), bad, "left as found");
        // Not a ledger at all.
        std::fs::write(&p, b"hello world, definitely not a ledger").unwrap();
        assert!(matches!(
            open(&p),
            Err(LedgerError::Corrupt { offset: 0, .. })
        ));
        std::fs::write(&p, b"").unwrap();
        assert!(matches!(open(&p), Err(LedgerError::Corrupt { .. })));
    }

    #[test]
    fn cut_or_zeroed_below_the_mark_is_tail_lost_and_left_as_found() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("q.ledger");
        {
            let (w, _, _) = open(&p).unwrap();
            w.append(b"first").unwrap();
            let lsn = w.append(b"second").unwrap();
            w.wait_durable(lsn).unwrap();
            w.close().unwrap();
        }
        let full = std::fs::read(&p).unwrap();
        let first_end = HEADER_LEN as usize + 12 + 5;
        let tail_lost = |data: &[u8]| {
            std::fs::write(&p, data).unwrap();
            let r = open(&p).map(|_| ());
            assert_eq!(std::fs::read(&p).unwrap(), data, "left as found");
            r
        };
        for (what, data) in [
            ("cut at a record boundary", full[..first_end].to_vec()),
            ("cut inside a record", full[..first_end + 7].to_vec()),
            (
                "cut to the superblock",
                full[..HEADER_LEN as usize].to_vec(),
            ),
            ("zero-filled from a boundary", {
                let mut z = full.clone();
                z[first_end..].fill(0);
                z
            }),
        ] {
            match tail_lost(&data) {
                Err(LedgerError::TailLost {
                    durable_end,
                    readable_end,
                    file_len,
                    ..
                }) => {
                    assert_eq!(durable_end, full.len() as u64, "{what}");
                    assert!(readable_end < durable_end, "{what}");
                    assert_eq!(file_len, data.len() as u64, "{what}");
                }
                other => panic!("{what}: expected TailLost, got {other:?}"),
            }
        }
        for cut in [16, 40, 79] {
            assert!(
                matches!(tail_lost(&full[..cut]), Err(LedgerError::Corrupt { .. })),
                "cut to {cut} bytes: the superblock is gone"
            );
        }
    }

    #[test]
    fn version_1_files_are_refused_not_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("q.ledger");
        let mut v1 = b"FBXQWAL1".to_vec();
        v1.extend_from_slice(&1u32.to_le_bytes());
        v1.extend_from_slice(&0u32.to_le_bytes());
        frame(&mut v1, b"old record");
        std::fs::write(&p, &v1).unwrap();
        assert!(matches!(
            open(&p),
            Err(LedgerError::OldFormat { version: 1, .. })
        ));
        assert_eq!(std::fs::read(&p).unwrap(), v1, "left as found");
        let found = survey(&v1);
        assert_eq!(payloads_of(&found.records), vec![b"old record".as_slice()]);
        assert_eq!(found.problem, Some(Problem::OldFormat { version: 1 }));
        // Header only: as much a version-1 file (its tail is unknowable).
        assert_eq!(
            survey(&v1[..16]).problem,
            Some(Problem::OldFormat { version: 1 })
        );
    }

    /// A version-2 image of `ps` with one mark per `(generation, records)`:
    /// the mark of that generation covers the first `records` records.
    fn marked(ps: &[Vec<u8>], marks: &[(u64, usize)]) -> Vec<u8> {
        let mut data = image(1, 0, ps);
        data[PREFIX_LEN..HEADER_LEN as usize].fill(0);
        for &(generation, n) in marks {
            let end =
                HEADER_LEN as usize + ps[..n].iter().map(|p| FRAME_LEN + p.len()).sum::<usize>();
            let (at, slot) = slot_bytes(generation, end as u64, 0);
            data[at as usize..at as usize + SLOT_LEN].copy_from_slice(&slot);
        }
        data
    }

    #[test]
    fn marks_alternate_slots_and_the_newest_valid_one_wins() {
        let ps = vec![b"a".to_vec(), b"bb".to_vec(), b"ccc".to_vec()];
        let data = marked(&ps, &[(6, 1), (7, 3)]);
        let m = survey(&data).mark.unwrap();
        assert_eq!((m.generation, m.durable_end), (7, data.len() as u64));
        // Tear the newest slot (generation 7 lives in slot 1): the older mark rules.
        let mut torn = data.clone();
        torn[PREFIX_LEN + SLOT_LEN + 3] ^= 0xFF;
        let found = survey(&torn);
        assert_eq!(found.problem, None);
        assert_eq!(found.mark.unwrap().generation, 6);
        // A mark inside a record disagrees with the log: corrupt.
        let mut inside = data.clone();
        let (at, slot) = slot_bytes(8, HEADER_LEN + 5, 0);
        inside[at as usize..at as usize + SLOT_LEN].copy_from_slice(&slot);
        assert!(matches!(
            survey(&inside).problem,
            Some(Problem::Corrupt { .. })
        ));
    }

    #[test]
    fn rewrite_replaces_contents_atomically_and_keeps_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("q.ledger");
        {
            let (w, _, _) = open(&p).unwrap();
            for i in 0..100u32 {
                w.append(&i.to_le_bytes()).unwrap();
            }
            w.rewrite(&[b"snapshot".to_vec()]).unwrap();
            assert!(matches!(open(&p), Err(LedgerError::Locked { .. })));
            let lsn = w.append(b"after").unwrap();
            w.wait_durable(lsn).unwrap();
        }
        let (_w, recs, rep) = open(&p).unwrap();
        assert_eq!(
            payloads_of(&recs),
            vec![b"snapshot".as_slice(), b"after".as_slice()]
        );
        assert_eq!(rep.durable_end, std::fs::metadata(&p).unwrap().len());
    }

    fn payloads() -> impl proptest::strategy::Strategy<Value = Vec<Vec<u8>>> {
        use proptest::prelude::*;
        prop::collection::vec(prop::collection::vec(any::<u8>(), 1..80), 1..12)
    }

    /// Two marks, the newer one covering at least as much: `(older, newer)`
    /// record counts out of `n`.
    fn two_marks(n: usize, a: usize, b: usize) -> (usize, usize) {
        let (x, y) = (a % (n + 1), b % (n + 1));
        (x.min(y), x.max(y))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Fault injection: any single flipped bit in the header or the
        /// records is reported as corruption — never accepted, never taken for
        /// a torn tail (which would drop records).
        #[test]
        fn every_bit_flip_outside_the_superblock_is_detected(ps in payloads(), pos in proptest::prelude::any::<proptest::sample::Index>(), bit in 0u8..8) {
            let mut data = marked(&ps, &[(1, ps.len())]);
            let mut i = pos.index(data.len() - 64);
            if i >= PREFIX_LEN { i += 64; }
            data[i] ^= 1 << bit;
            let found = survey(&data);
            proptest::prop_assert!(matches!(found.problem, Some(Problem::Corrupt { .. })), "flip at {} accepted", i);
        }

        /// A flip in a superblock slot invalidates that slot only: the other
        /// (older, lower) mark rules, and the intact log opens.
        #[test]
        fn a_flip_in_the_superblock_only_falls_back_to_the_other_mark(ps in payloads(), a in 0usize..16, b in 0usize..16, pos in 0usize..64, bit in 0u8..8) {
            let (older, newer) = two_marks(ps.len(), a, b);
            let mut data = marked(&ps, &[(4, older), (5, newer)]);
            data[PREFIX_LEN + pos] ^= 1 << bit;
            let found = survey(&data);
            proptest::prop_assert_eq!(&found.problem, &None);
            let m = found.mark.unwrap();
            // Generation 4 is slot 0 (bytes 0..32 of the superblock).
            proptest::prop_assert_eq!(m.generation, if pos < SLOT_LEN { 5 } else { 4 });
        }

        /// A log cut anywhere: below the mark it is refused (tail lost, or
        /// corrupt when the superblock itself is cut); at or past the mark it
        /// recovers exactly the records completely written before the cut.
        #[test]
        fn any_truncation_is_refused_below_the_mark_and_recovers_the_prefix_past_it(ps in payloads(), m in 0usize..16, cut in proptest::prelude::any::<proptest::sample::Index>()) {
            let m = m % (ps.len() + 1);
            let data = marked(&ps, &[(1, m)]);
            let mark_end = survey(&data).mark.unwrap().durable_end as usize;
            let at = cut.index(data.len() + 1);
            let found = survey(&data[..at]);
            if at < HEADER_LEN as usize {
                proptest::prop_assert!(matches!(found.problem, Some(Problem::Corrupt { .. })), "cut to {}", at);
            } else if at < mark_end {
                proptest::prop_assert_eq!(found.problem, Some(Problem::TailLost { durable_end: mark_end as u64 }));
            } else {
                proptest::prop_assert_eq!(&found.problem, &None);
                let mut end = HEADER_LEN as usize;
                let mut want = Vec::new();
                for p in &ps {
                    if end + FRAME_LEN + p.len() > at { break; }
                    end += FRAME_LEN + p.len();
                    want.push(p.clone());
                }
                let got: Vec<Vec<u8>> = found.records.into_iter().map(|r| r.payload).collect();
                proptest::prop_assert_eq!(got, want);
                proptest::prop_assert_eq!(found.readable_end as usize, end);
            }
        }

        /// Zeroing everything from any offset below the mark is refused.
        #[test]
        fn zero_fill_below_the_mark_is_refused(ps in payloads(), from in proptest::prelude::any::<proptest::sample::Index>()) {
            let mut data = marked(&ps, &[(1, ps.len())]);
            let from = HEADER_LEN as usize + from.index(data.len() - HEADER_LEN as usize);
            data[from..].fill(0);
            proptest::prop_assert!(survey(&data).problem.is_some(), "zeroed from {} accepted", from);
        }

        /// Arbitrary bytes never panic the scanner.
        #[test]
        fn garbage_never_panics(tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let mut data = image(1, 0, &[]);
            data.extend_from_slice(&tail);
            let _ = survey(&data);
            let _ = survey(&tail);
        }
    }

    #[test]
    fn concurrent_waiters_all_become_durable() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("q.ledger");
        {
            let (w, _, _) = open(&p).unwrap();
            std::thread::scope(|s| {
                for t in 0..4u8 {
                    let w = &w;
                    s.spawn(move || {
                        for i in 0..500u16 {
                            let lsn = w.append(&[t, i as u8, (i >> 8) as u8]).unwrap();
                            w.wait_durable(lsn).unwrap();
                        }
                    });
                }
            });
        }
        let (_w, recs, rep) = open(&p).unwrap();
        assert_eq!(recs.len(), 2000);
        assert_eq!(rep.durable_end, std::fs::metadata(&p).unwrap().len());
    }
}
