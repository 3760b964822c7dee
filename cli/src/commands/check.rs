//! `fusebox check FILE...`: validate configuration files and report every problem, located.

use std::path::PathBuf;

use fusebox_engine::config::compile_triggers;
use fusebox_engine::io::customers::load_customers;

use crate::diagnostics::{print_config_error, print_diagnostics};
use crate::Failure;

/// What kind of configuration a file holds, from its top-level keys.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Triggers,
    Segments,
    Quotas,
}

fn kind_of(text: &str) -> Option<Kind> {
    text.lines().find_map(|line| {
        let key = line.split(':').next()?.trim_end();
        if line.starts_with(' ') || line.starts_with('#') {
            return None;
        }
        match key {
            "triggers" => Some(Kind::Triggers),
            "segments" => Some(Kind::Segments),
            "processes" | "unknown_process" | "default_limits" => Some(Kind::Quotas),
            _ => None,
        }
    })
}

/// Checks every file; returns `Failure::Reported` if any had errors (after printing them all).
pub fn check(files: &[PathBuf], customers: Option<&PathBuf>) -> Result<(), Failure> {
    let table = match customers {
        Some(path) => Some(load_customers(path).map_err(|e| Failure::Input(e.into()))?),
        None => None,
    };
    let mut failed = false;
    for path in files {
        let name = path.display().to_string();
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: cannot read {name}: {e}");
                failed = true;
                continue;
            }
        };
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                eprintln!(
                    "error: {name}: not valid UTF-8 (invalid byte at offset {})",
                    e.utf8_error().valid_up_to()
                );
                failed = true;
                continue;
            }
        };
        match kind_of(&text) {
            Some(Kind::Triggers) => {
                match compile_triggers(&text, &name, table.as_ref().map(|t| t.schema().as_ref())) {
                    Ok(set) => {
                        print_diagnostics(&name, &text, &set.warnings);
                        let enabled = set.triggers.iter().filter(|t| t.enabled).count();
                        println!(
                        "ok: {name}: {} triggers ({enabled} enabled), {} pools, {} counters, {} warnings{}",
                        set.triggers.len(),
                        set.pools.len(),
                        set.counters.len(),
                        set.warnings.len(),
                        if table.is_none() { " (attributes not checked: pass --customers FILE)" } else { "" }
                    );
                    }
                    Err(e) => {
                        print_config_error(&e);
                        failed = true;
                    }
                }
            }
            Some(Kind::Quotas) => failed |= !crate::quotas::check_text(&name, &text),
            Some(Kind::Segments) => {
                failed |= !super::segment::check_file(&name, &text, table.as_ref());
            }
            None => {
                eprintln!("error: {name}: not a Fusebox configuration file (expected a top-level `triggers:`, `segments:` or `processes:` key)");
                failed = true;
            }
        }
    }
    if failed {
        Err(Failure::Reported)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_come_from_top_level_keys() {
        assert_eq!(
            kind_of("# c\nversion: 1\ntriggers:\n  - id: x"),
            Some(Kind::Triggers)
        );
        assert_eq!(kind_of("segments: []"), Some(Kind::Segments));
        assert_eq!(
            kind_of("# quotas\nunknown_process: deny\nprocesses: []"),
            Some(Kind::Quotas)
        );
        assert_eq!(kind_of("  triggers: nested"), None);
        assert_eq!(kind_of(""), None);
    }
}
