//! [`JsonlNotifier`]: one JSON line per notification, appended to a file.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use super::{Counters, DeliveryStatus, Notification, Notifier, NotifyError, SinkFailure};

/// Writes each notification as one line of JSON (the [`Notification`]
/// object) to a file, in `notify` order.
///
/// * **Flushed per line.** There is no user-space buffer: each line is
///   handed to the operating system in one `write` before `notify` returns,
///   so a reader (`tail -f`) or a crash of the process sees whole lines. Call
///   [`JsonlNotifier::sync`] to make them durable against power loss.
/// * **On the caller's thread.** The write happens inside `notify` (see the
///   module's invariant 1): meant for a local file.
/// * **Errors are recorded, not returned.** A failed write counts as
///   `failed` in [`JsonlNotifier::status`] with the error as the last one;
///   the partial line it may have left is cut off again (the file is
///   truncated back to the end of the last whole line), so later lines stay
///   parseable. The file is meant to have one writer.
pub struct JsonlNotifier {
    path: PathBuf,
    out: Mutex<Output>,
    counters: Counters,
}

struct Output {
    file: File,
    /// The end of the last whole line written.
    len: u64,
}

impl fmt::Debug for JsonlNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonlNotifier")
            .field("path", &self.path)
            .field("status", &self.status())
            .finish()
    }
}

impl JsonlNotifier {
    /// Creates `path`, or empties it if it exists.
    pub fn create(path: impl AsRef<Path>) -> Result<JsonlNotifier, NotifyError> {
        let path = path.as_ref();
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|source| NotifyError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(JsonlNotifier::with_file(path, file, 0))
    }

    /// Appends to `path`, creating it if missing.
    pub fn append(path: impl AsRef<Path>) -> Result<JsonlNotifier, NotifyError> {
        let path = path.as_ref();
        let open = || -> std::io::Result<(File, u64)> {
            let mut file = OpenOptions::new().create(true).append(true).open(path)?;
            let len = file.seek(SeekFrom::End(0))?;
            Ok((file, len))
        };
        let (file, len) = open().map_err(|source| NotifyError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(JsonlNotifier::with_file(path, file, len))
    }

    fn with_file(path: &Path, file: File, len: u64) -> JsonlNotifier {
        JsonlNotifier {
            path: path.to_path_buf(),
            out: Mutex::new(Output { file, len }),
            counters: Counters::default(),
        }
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lines written (`delivered`) and failed writes (`failed`, with the last
    /// error). Nothing is ever pending or dropped.
    pub fn status(&self) -> DeliveryStatus {
        self.counters.snapshot(0)
    }

    /// Makes the lines written so far durable (`fdatasync`).
    pub fn sync(&self) -> std::io::Result<()> {
        self.lock().file.sync_data()
    }

    fn lock(&self) -> MutexGuard<'_, Output> {
        // `len` is updated only after a whole line was written; a panic
        // cannot leave it ahead of the file.
        self.out.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Notifier for JsonlNotifier {
    fn notify(&self, n: Notification) {
        let mut line = match serde_json::to_vec(&n) {
            Ok(line) => line,
            Err(source) => {
                return self.counters.failed(&SinkFailure::Serialize {
                    kind: n.kind,
                    subject: n.subject,
                    source,
                })
            }
        };
        line.push(b'\n');
        let mut out = self.lock();
        match out.file.write_all(&line) {
            Ok(()) => {
                out.len += line.len() as u64;
                drop(out);
                self.counters.delivered();
            }
            Err(source) => {
                // Cut a partial line off so the next one starts on its own
                // line; with `append` the next write goes to the end anyway.
                let len = out.len;
                let _ = out.file.set_len(len);
                let _ = out.file.seek(SeekFrom::Start(len));
                drop(out);
                self.counters.failed(&SinkFailure::Write {
                    path: self.path.clone(),
                    source,
                });
            }
        }
    }

    fn delivery(&self) -> Option<DeliveryStatus> {
        Some(self.status())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_directory_is_an_open_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = JsonlNotifier::create(dir.path().join("no/such/dir/n.jsonl")).unwrap_err();
        assert!(
            err.to_string().contains("cannot open notification file"),
            "{err}"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_failed_write_is_counted_and_recorded() {
        // /dev/full accepts the open and fails every write with ENOSPC.
        let n = JsonlNotifier::append("/dev/full").unwrap();
        n.notify(Notification {
            owner: "o".into(),
            subject: crate::notify::Subject::process("p"),
            kind: crate::notify::NotificationKind::Warned,
            reason: "r".into(),
            figures: Default::default(),
            at: chrono::DateTime::from_timestamp(0, 0).unwrap(),
            message: "m".into(),
        });
        let s = n.status();
        assert_eq!((s.delivered, s.failed), (0, 1));
        assert!(s.last_error.unwrap().message.contains("/dev/full"));
    }
}
