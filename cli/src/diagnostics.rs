//! Rendering located configuration problems as miette reports (file, line, column, snippet,
//! hint), the way a compiler would.

use std::sync::Arc;

use fusebox_engine::config::{
    ConfigError, Diagnostic as ConfigDiagnostic, Severity as ConfigSeverity,
};
use miette::{Diagnostic, LabeledSpan, NamedSource, Severity, SourceSpan};

/// One configuration problem with its file attached, ready for miette.
#[derive(Debug)]
pub struct Located {
    message: String,
    severity: ConfigSeverity,
    help: Option<String>,
    source: NamedSource<Arc<str>>,
    span: Option<SourceSpan>,
}

impl std::fmt::Display for Located {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Located {}

impl Diagnostic for Located {
    fn severity(&self) -> Option<Severity> {
        Some(match self.severity {
            ConfigSeverity::Error => Severity::Error,
            ConfigSeverity::Warning => Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h.as_str()) as Box<dyn std::fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.span
            .is_some()
            .then_some(&self.source as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.span?;
        Some(Box::new(std::iter::once(
            LabeledSpan::new_primary_with_span(Some("here".into()), span),
        )))
    }
}

/// Lines longer than this are not drawn as a snippet: miette's renderer cannot draw columns
/// past 65535 (it panics), and a snippet that wide is unreadable anyway. Such a diagnostic
/// quotes the text around its span instead.
const MAX_SNIPPET_LINE: usize = 1000;

/// How much text around a span an excerpt quotes, on each side.
const EXCERPT_CONTEXT: usize = 60;

/// Builds the miette reports for every diagnostic of a file.
pub fn reports(
    file: &str,
    text: &Arc<str>,
    diagnostics: &[ConfigDiagnostic],
) -> Vec<miette::Report> {
    diagnostics
        .iter()
        .map(|d| {
            let span = d.span.map(|(s, e)| {
                let s = floor_char_boundary(text, s.min(text.len()));
                let e = floor_char_boundary(text, e.clamp(s, text.len()));
                (s, e)
            });
            let location = if d.line > 0 {
                format!("{file}:{}:{}: ", d.line, d.column)
            } else {
                format!("{file}: ")
            };
            let mut message = format!("{location}{}", d.message);
            let span = match span {
                Some((s, e)) if touches_long_line(text, s, e) => {
                    message.push_str(&format!("\n  near: {}", excerpt(text, s, e)));
                    None
                }
                span => span.map(|(s, e)| SourceSpan::from((s, e - s))),
            };
            miette::Report::new(Located {
                message,
                severity: d.severity,
                help: d.help.clone(),
                source: NamedSource::new(file, text.clone()),
                span,
            })
        })
        .collect()
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Whether a line the snippet of `start..end` would draw (the span's lines and one line of
/// context either side) is longer than [`MAX_SNIPPET_LINE`].
fn touches_long_line(text: &str, start: usize, end: usize) -> bool {
    let first = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let first = text[..first.saturating_sub(1)]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let last = text[end..].find('\n').map_or(text.len(), |i| end + i);
    let last = text[(last + 1).min(text.len())..]
        .find('\n')
        .map_or(text.len(), |i| last + 1 + i);
    text[first..last.max(first)]
        .split('\n')
        .any(|line| line.len() > MAX_SNIPPET_LINE)
}

/// The text around `start..end` on its line, at most [`EXCERPT_CONTEXT`] characters either
/// side, with `…` where it is cut, and the span itself marked `>>>…<<<`.
fn excerpt(text: &str, start: usize, end: usize) -> String {
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[end..].find('\n').map_or(text.len(), |i| end + i);
    let before: String = {
        let chars: Vec<char> = text[line_start..start].chars().collect();
        let cut = chars.len().saturating_sub(EXCERPT_CONTEXT);
        let prefix = if cut > 0 { "…" } else { "" };
        format!("{prefix}{}", chars[cut..].iter().collect::<String>())
    };
    let marked: String = text[start..end.min(line_end.max(start))]
        .chars()
        .take(EXCERPT_CONTEXT)
        .collect();
    let after: String = {
        let rest = &text[end.min(line_end.max(start))..line_end.max(start)];
        let taken: String = rest.chars().take(EXCERPT_CONTEXT).collect();
        let suffix = if taken.len() < rest.len() { "…" } else { "" };
        format!("{taken}{suffix}")
    };
    format!("{before}>>>{marked}<<<{after}")
}

/// Prints a file's diagnostics (warnings, or errors built elsewhere), located, to stderr.
pub fn print_diagnostics(file: &str, text: &str, diagnostics: &[ConfigDiagnostic]) {
    if diagnostics.is_empty() {
        return;
    }
    let text: Arc<str> = Arc::from(text);
    for r in reports(file, &text, diagnostics) {
        eprintln!("{r:?}");
    }
}

/// Prints every problem of a configuration error, located.
pub fn print_config_error(err: &ConfigError) {
    for report in reports(&err.file, &err.source_text, &err.diagnostics) {
        eprintln!("{report:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fusebox_engine::config::Diagnostic as ConfigDiagnostic;

    fn render(text: &str, span: (usize, usize)) -> String {
        let text: Arc<str> = Arc::from(text);
        let mut d = ConfigDiagnostic::global("bad thing");
        d.span = Some(span);
        d.line = 1;
        d.column = span.0 as u64 + 1;
        let reports = reports("f.yaml", &text, &[d]);
        format!("{:?}", reports[0])
    }

    #[test]
    fn a_span_past_column_65535_renders_as_an_excerpt() {
        let mut line = "x".repeat(70_000);
        line.push_str("BAD");
        line.push_str(&"y".repeat(100));
        let out = render(&line, (70_000, 70_003));
        assert!(out.contains(">>>BAD<<<"), "{out}");
        assert!(out.contains("f.yaml:1:70001"), "{out}");
        assert!(out.len() < 1000, "an excerpt, not the whole line");
    }

    #[test]
    fn a_long_neighbouring_line_also_gets_an_excerpt() {
        let text = format!("key: 1\n{}\n", "z".repeat(70_000));
        let out = render(&text, (0, 3));
        assert!(out.contains(">>>key<<<"), "{out}");
    }

    #[test]
    fn short_lines_keep_their_snippet() {
        let out = render("key: 1\nother: 2\n", (0, 3));
        assert!(!out.contains(">>>"), "{out}");
    }

    #[test]
    fn spans_inside_multibyte_characters_do_not_panic() {
        let text = format!("é{}", "é".repeat(40_000));
        let _ = render(&text, (1, 3));
        let _ = render(&text, (79_999, 80_003));
    }
}
