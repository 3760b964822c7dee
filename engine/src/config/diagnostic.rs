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
