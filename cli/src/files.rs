//! Reading input text and writing output files, with the path in every error.
//!
//! Every output file is written **atomically**: into a temporary file in the same directory,
//! flushed, then renamed over its final name. A reader (or the next pipeline step) sees the
//! previous file or the complete new one, never a file cut mid-line by a full disk or a
//! killed process; a failed write leaves no partial file behind (the temporary file is
//! removed when dropped). The one exception is `notifications.jsonl`, a log appended to as the
//! run goes (see `crate::notify`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::Failure;

/// A whole input file as UTF-8 text (bad input: exit 2). A leading UTF-8 byte-order mark is
/// skipped.
pub fn read_text(path: &Path) -> Result<String, Failure> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read {}", path.display()))
        .map_err(Failure::Input)?;
    let mut text = String::from_utf8(bytes).map_err(|e| {
        Failure::Input(anyhow::anyhow!(
            "{}: not valid UTF-8 (byte {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })?;
    if text.starts_with('\u{feff}') {
        text.drain(..'\u{feff}'.len_utf8());
    }
    Ok(text)
}

/// An output file being written; it appears under its name only on [`AtomicFile::commit`].
pub struct AtomicFile {
    path: PathBuf,
    tmp: tempfile::NamedTempFile,
}

impl AtomicFile {
    /// Starts writing `path` (a temporary file next to it).
    pub fn create(path: &Path) -> Result<AtomicFile> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".fusebox-")
            .suffix(".tmp")
            .tempfile_in(dir)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(AtomicFile {
            path: path.to_path_buf(),
            tmp,
        })
    }

    /// The temporary file to write into.
    pub fn file(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    /// Flushes the data to disk and renames the file into place.
    pub fn commit(self) -> Result<()> {
        let path = self.path;
        self.tmp
            .as_file()
            .sync_all()
            .with_context(|| format!("cannot write {}", path.display()))?;
        self.tmp
            .persist(&path)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }
}

/// Writes `path` atomically with `write`, which gets a buffered writer.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<&mut File>) -> std::io::Result<()>,
) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    {
        let mut out = BufWriter::with_capacity(1 << 20, file.file());
        write(&mut out)
            .and_then(|()| out.flush())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    file.commit()
}

/// A JSONL file written line by line as results come, put in place only by
/// [`JsonlFile::commit`] (dropped uncommitted, it leaves nothing). Lines are serialized as
/// [`write_jsonl`] does, so a file written either way is the same bytes.
pub struct JsonlFile {
    tmp: AtomicFile,
    out: BufWriter<File>,
}

impl JsonlFile {
    /// Starts writing `path`.
    pub fn create(path: &Path) -> Result<JsonlFile> {
        let mut tmp = AtomicFile::create(path)?;
        let file = tmp
            .file()
            .try_clone()
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(JsonlFile {
            tmp,
            out: BufWriter::with_capacity(1 << 20, file),
        })
    }

    /// Appends `item` as one line.
    pub fn item<T: Serialize>(&mut self, item: &T) -> Result<()> {
        serde_json::to_writer(&mut self.out, item).map_err(|e| self.error(e.into()))?;
        self.line_end()
    }

    /// Appends a line already serialized (without its newline).
    pub fn line(&mut self, text: &str) -> Result<()> {
        self.out
            .write_all(text.as_bytes())
            .map_err(|e| self.error(e))?;
        self.line_end()
    }

    fn line_end(&mut self) -> Result<()> {
        self.out.write_all(b"\n").map_err(|e| self.error(e))
    }

    fn error(&self, e: std::io::Error) -> anyhow::Error {
        anyhow::anyhow!("cannot write {}: {e}", self.tmp.path.display())
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(mut self) -> Result<()> {
        self.out.flush().map_err(|e| self.error(e))?;
        drop(self.out);
        self.tmp.commit()
    }
}

/// One compact JSON value per line.
pub fn write_jsonl<T: Serialize>(path: &Path, items: impl IntoIterator<Item = T>) -> Result<()> {
    write_atomically(path, |out| {
        for item in items {
            serde_json::to_writer(&mut *out, &item)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    })
}

/// Pretty JSON plus a final newline.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)
        .with_context(|| format!("cannot serialise {}", path.display()))?;
    text.push('\n');
    write_text(path, &text)
}

/// Text as it is.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    write_atomically(path, |out| out.write_all(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_neither_a_partial_file_nor_a_temporary_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, "old\n").unwrap();
        let r = write_atomically(&path, |out| {
            out.write_all(b"half a li")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "the temporary file is removed");
    }

    #[test]
    fn a_complete_write_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        write_jsonl(&path, [1, 2]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "1\n2\n");
    }

    /// What a streamed run relies on: line by line gives `write_jsonl`'s bytes, and a file
    /// dropped before `commit` (the stream failed) leaves the old file and no temporary one.
    #[test]
    fn a_jsonl_file_writes_write_jsonls_bytes_and_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let (whole, streamed) = (dir.path().join("whole.jsonl"), dir.path().join("s.jsonl"));
        let items = [serde_json::json!({"a": "é\n"}), serde_json::json!([1, 2.5])];
        write_jsonl(&whole, &items).unwrap();
        let mut file = JsonlFile::create(&streamed).unwrap();
        file.item(&items[0]).unwrap();
        file.line(&serde_json::to_string(&items[1]).unwrap())
            .unwrap();
        file.commit().unwrap();
        assert_eq!(
            std::fs::read(&whole).unwrap(),
            std::fs::read(&streamed).unwrap()
        );

        let mut failed = JsonlFile::create(&streamed).unwrap();
        failed.item(&items[0]).unwrap();
        drop(failed);
        assert_eq!(
            std::fs::read(&whole).unwrap(),
            std::fs::read(&streamed).unwrap()
        );
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 2, "the temporary file is removed");
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.yaml");
        std::fs::write(&path, "\u{feff}triggers: []\n").unwrap();
        assert_eq!(read_text(&path).unwrap(), "triggers: []\n");
    }
}
