//! Located configuration errors and warnings.
//!
//! Every problem found in a configuration file becomes a [`Diagnostic`] with the file, the
//! 1-based line and column, the byte range when known, and a hint. Validation collects *all*
//! of them before giving up, so a user fixes a file in one pass instead of one error a run.

use std::fmt;
use std::sync::Arc;

use serde_saphyr::Location;

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The file cannot be used.
    Error,
    /// Suspicious but allowed.
    Warning,
}

/// One located problem.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong.
    pub message: String,
    /// 1-based line (0 if unknown).
    pub line: u64,
    /// 1-based column (0 if unknown).
    pub column: u64,
    /// Byte range in the file, when known.
    pub span: Option<(usize, usize)>,
    /// How to fix it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error at a YAML location.
    pub fn error(at: Location, message: impl Into<String>) -> Diagnostic {
        Diagnostic::at(Severity::Error, at, message)
    }

    /// A warning at a YAML location.
    pub fn warning(at: Location, message: impl Into<String>) -> Diagnostic {
        Diagnostic::at(Severity::Warning, at, message)
    }

    fn at(severity: Severity, at: Location, message: impl Into<String>) -> Diagnostic {
        let span = at.span();
        let span = span.byte_offset().map(|start| {
            let len = span.byte_len().unwrap_or(1).max(1);
            (start as usize, (start + len) as usize)
        });
        Diagnostic {
            severity,
            message: message.into(),
            line: at.line(),
            column: at.column(),
            span,
            help: None,
        }
    }

    /// An error with no location (e.g. "the file is empty").
    pub fn global(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            line: 0,
            column: 0,
            span: None,
            help: None,
        }
    }

    /// Adds a hint.
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// Adds an optional hint.
    pub fn with_help_opt(mut self, help: Option<String>) -> Diagnostic {
        self.help = help;
        self
    }
}

impl Diagnostic {
    /// Makes the location agree with `text`, whatever produced it: a diagnostic with a line
    /// gets a column from 1 and a span inside the text, on char boundaries, that starts on
    /// that line (serde-saphyr gives syntax errors a line and column but no byte offset, or
    /// a character index where a byte offset belongs). A span that already agrees is kept.
    /// A diagnostic without a line (file-level) has no span.
    pub fn locate_in(&mut self, text: &str) {
        self.locate(text, &LineIndex::new(text));
    }

    fn locate(&mut self, text: &str, lines: &LineIndex) {
        if self.line == 0 {
            self.span = None;
            self.column = 0;
            return;
        }
        let line = (self.line as usize).min(lines.starts.len());
        self.line = line as u64;
        let (line_start, line_end) = lines.line(line, text);
        let agrees = self.span.is_some_and(|(s, e)| {
            s <= e
                && e <= text.len()
                && text.is_char_boundary(s)
                && text.is_char_boundary(e)
                && (line_start..=line_end).contains(&s)
        });
        if agrees {
            if self.column == 0 {
                self.column = text[line_start..self.span.map_or(line_start, |(s, _)| s)]
                    .chars()
                    .count() as u64
                    + 1;
            }
            return;
        }
        // The column (in characters, from 1) is trusted; the span is rebuilt from it.
        let line_text = &text[line_start..line_end];
        let column = (self.column.max(1) as usize).min(line_text.chars().count() + 1);
        self.column = column as u64;
        let start = line_start
            + line_text
                .char_indices()
                .nth(column - 1)
                .map_or(line_text.len(), |(i, _)| i);
        let wanted = self.span.map_or(1, |(s, e)| e.saturating_sub(s).max(1));
        let mut end = (start + wanted).min(line_end.max(start));
        while !text.is_char_boundary(end) {
            end += 1;
        }
        if end == start && start < text.len() {
            end = start + text[start..].chars().next().map_or(0, char::len_utf8);
        }
        self.span = Some((start, end));
    }
}

/// Where each line of a text starts, with YAML's line breaks (`\n`, `\r\n`, `\r`).
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let b = text.as_bytes();
        let mut starts = vec![0];
        for (i, &c) in b.iter().enumerate() {
            if c == b'\n' || (c == b'\r' && b.get(i + 1) != Some(&b'\n')) {
                starts.push(i + 1);
            }
        }
        LineIndex { starts }
    }

    /// Start and end (before the line break) of 1-based line `line` of `text`.
    fn line(&self, line: usize, text: &str) -> (usize, usize) {
        let b = text.as_bytes();
        let start = self.starts[line - 1];
        let end = match self.starts.get(line) {
            None => text.len(),
            // `\r\n` is one two-byte break.
            Some(&next) if next >= 2 && b[next - 1] == b'\n' && b[next - 2] == b'\r' => next - 2,
            Some(&next) => next - 1,
        };
        (start, end.max(start))
    }
}

/// All diagnostics of one file; an `Err` of the loaders when any of them is an error.
#[derive(Clone, Debug, thiserror::Error)]
pub struct ConfigError {
    /// The file's name as given by the caller.
    pub file: Arc<str>,
    /// The file's text, for rendering snippets.
    pub source_text: Arc<str>,
    /// Every problem found, errors and warnings: problems with the file's YAML shape first
    /// (unknown keys, wrong types, missing fields; see [`super::shape`]), then the others,
    /// each group in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigError {
    /// The error of `file`, with its text; every diagnostic is [located](Diagnostic::locate_in)
    /// in `text`.
    pub fn new(file: &str, text: &str, mut diagnostics: Vec<Diagnostic>) -> ConfigError {
        let lines = LineIndex::new(text);
        for d in &mut diagnostics {
            d.locate(text, &lines);
        }
        ConfigError {
            file: Arc::from(file),
            source_text: Arc::from(text),
            diagnostics,
        }
    }

    /// Only the errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self.errors().count();
        write!(f, "{}: {} error(s)", self.file, errors)?;
        for d in &self.diagnostics {
            let kind = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            write!(
                f,
                "\n  {}:{}:{}: {kind}: {}",
                self.file, d.line, d.column, d.message
            )?;
            if let Some(help) = &d.help {
                write!(f, " (help: {help})")?;
            }
        }
        Ok(())
    }
}

/// Converts a serde-saphyr parse error into a diagnostic.
pub fn from_yaml_error(err: &serde_saphyr::Error) -> Diagnostic {
    let message = yaml_message(err);
    match err.location() {
        Some(loc) if loc.line() > 0 => Diagnostic::error(loc, message),
        _ => Diagnostic::global(message),
    }
}

fn yaml_message(err: &serde_saphyr::Error) -> String {
    use serde_saphyr::MessageFormatter;
    // The message alone: the location is the diagnostic's own, and serde-saphyr's Display
    // would repeat it ("line 3 column 8: ...") and add its own snippet.
    let mut inner = err;
    while let serde_saphyr::Error::WithSnippet { error, .. }
    | serde_saphyr::Error::AliasError { error, .. } = inner
    {
        inner = error;
    }
    if let serde_saphyr::Error::Budget { breach, .. } = inner {
        return match breach {
            serde_saphyr::budget::BudgetBreach::Depth { depth } => format!(
                "the YAML nests too deep ({depth} levels; at most {} are read)",
                depth.saturating_sub(1)
            ),
            other => format!("the file is too large to read as configuration ({other:?})"),
        };
    }
    let text = serde_saphyr::DefaultMessageFormatter.format_message(inner);
    let text: String = text
        .chars()
        .flat_map(|c| {
            let escape = c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
            let mut buf = Vec::new();
            if escape {
                buf.extend(c.escape_debug());
            } else {
                buf.push(c);
            }
            buf
        })
        .collect();
    let text = text.trim();
    if text.is_empty() {
        "invalid YAML".to_string()
    } else {
        text.to_string()
    }
}

/// Finds where the *content* of a scalar starts: after an opening quote if there is one.
pub fn scalar_content_offset(source: &str, at: Location) -> Option<usize> {
    let start = at.span().byte_offset()? as usize;
    match source.as_bytes().get(start) {
        Some(b'"' | b'\'') => Some(start + 1),
        Some(_) => Some(start),
        None => None,
    }
}
