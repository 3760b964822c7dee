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
                let s = s.min(text.len());
                let e = e.clamp(s, text.len());
                SourceSpan::from((s, e - s))
            });
            let location = if d.line > 0 {
                format!("{file}:{}:{}: ", d.line, d.column)
            } else {
                format!("{file}: ")
            };
            miette::Report::new(Located {
                message: format!("{location}{}", d.message),
                severity: d.severity,
                help: d.help.clone(),
                source: NamedSource::new(file, text.clone()),
                span,
            })
        })
        .collect()
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
