//! `fusebox check FILE...`: validate configuration files and report every problem, located.

use std::path::PathBuf;

use fusebox_engine::config::compile_triggers;
use fusebox_engine::customers::CustomerTable;
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
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
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

/// Checks one file's text and prints its problems (or an `ok:` line); returns whether it is
/// valid.
fn check_text(name: &str, text: &str, table: Option<&CustomerTable>) -> bool {
    match kind_of(text) {
        Some(Kind::Triggers) => {
            match compile_triggers(text, name, table.map(|t| t.schema().as_ref())) {
                Ok(set) => {
                    print_diagnostics(name, text, &set.warnings);
                    let enabled = set.triggers.iter().filter(|t| t.enabled).count();
                    println!(
                    "ok: {name}: {} triggers ({enabled} enabled), {} pools, {} counters, {} warnings{}",
                    set.triggers.len(),
                    set.pools.len(),
                    set.counters.len(),
                    set.warnings.len(),
                    if table.is_none() { " (attributes not checked: pass --customers FILE)" } else { "" }
                );
                    true
                }
                Err(e) => {
                    print_config_error(&e);
                    false
                }
            }
        }
        Some(Kind::Quotas) => crate::quotas::check_text(name, text),
        Some(Kind::Segments) => super::segment::check_file(name, text, table),
        None => {
            eprintln!("error: {name}: not a Fusebox configuration file (expected a top-level `triggers:`, `segments:` or `processes:` key)");
            false
        }
    }
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
        failed |= !check_text(&name, &text, table.as_ref());
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
        assert_eq!(kind_of("\u{feff}triggers: []"), Some(Kind::Triggers));
    }

    const TRIGGERS: &str = r#"version: 1
event_types: [order.completed, points.milestone]
settings: { max_chain_depth: 4 }
pools:
  - id: welcome10
    generate: { prefix: "W10-", count: 50000 }
counters:
  - id: orders
    kind: int
triggers:
  - id: order-points
    owner: loyalty@shop.example
    on: order.completed
    condition: "event.properties.total > 50"
    limits: { max_points: 1000 }
    actions:
      - award_points: { amount: "int(event.properties.total / 10)" }
      - issue_coupon: { pool: welcome10 }
      - send_message: { channel: sms, template: thanks, args: { code: "coupon" } }
      - increment: { counter: orders }
      - emit_event: { type: points.milestone, properties: { points: "customer.points" } }
"#;

    const QUOTAS: &str = r#"unknown_process: default
default_limits: { records: 100000, bytes: 50000000 }
default_owner: ops@example.com
default_time_zone: UTC
processes:
  - id: crm-sync
    owner: data-team@example.com
    time_zone: Europe/Berlin
    limits: { records: 2000000, bytes: 1500000000 }
    warn_at: 0.8
    shadow: false
    on_backend_unavailable: fail_closed
"#;

    /// Pieces a mutation puts into a file: YAML structure, wrong kinds of values, a line too
    /// long for a snippet (miette panicked past column 65535), unicode.
    const PIECES: &[&str] = &[
        "- ",
        ": ",
        "\n",
        "\n  ",
        "{",
        "}",
        "[",
        "]",
        ", ",
        "#",
        "'",
        "\"",
        "&a ",
        "*a",
        "|\n",
        "\t",
        "\r\n",
        "~",
        "99999999999999999999999",
        "-1",
        "1e400",
        ".nan",
        "é",
        "日本",
        "\u{202e}",
        "\u{feff}",
        "colour: red\n",
        "  - id: x\n",
        "customer.pionts",
        "(((((((((((((((((((((((((((((((((((((((",
        "segments:\n",
        "processes:\n",
    ];

    fn mutate(rng: &mut impl rand::Rng, text: &str) -> String {
        let at = |rng: &mut dyn rand::RngCore| {
            let mut i = (rng.next_u64() % (text.len() as u64 + 1)) as usize;
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        let mut lines: Vec<&str> = text.split('\n').collect();
        match rng.random_range(0..7) {
            0 if !lines.is_empty() => {
                lines.remove(rng.random_range(0..lines.len()));
                lines.join("\n")
            }
            1 if !lines.is_empty() => {
                let i = rng.random_range(0..lines.len());
                lines.insert(i, lines[i]);
                lines.join("\n")
            }
            2 => {
                let i = at(rng);
                let piece = PIECES[rng.random_range(0..PIECES.len())];
                format!("{}{piece}{}", &text[..i], &text[i..])
            }
            3 => {
                let i = at(rng);
                let long = "x".repeat(rng.random_range(60_000..80_000));
                format!("{}{long}{}", &text[..i], &text[i..])
            }
            4 => {
                let i = at(rng);
                text[..i].to_string()
            }
            5 => {
                let (i, j) = (at(rng), at(rng));
                let (i, j) = (i.min(j), i.max(j));
                format!("{}{}", &text[..i], &text[j..])
            }
            _ => {
                let i = at(rng);
                let n = rng.random_range(1..4);
                format!("{}{}{}", &text[..i], " ".repeat(n), &text[i..])
            }
        }
    }

    /// Mutated files of every kind go through `check_text` as `fusebox check` runs it: each
    /// is compiled and every diagnostic rendered by miette, with the CLI's handler. Nothing
    /// may panic (exit 101). `PROPTEST_CASES` sets the number of files (default 150);
    /// `FUZZ_SEED` the seed.
    #[test]
    fn mutated_files_of_every_kind_are_checked_and_rendered_without_panic() {
        use rand::{Rng, SeedableRng};
        let _ = miette::set_hook(Box::new(|_| {
            Box::new(miette::MietteHandlerOpts::new().wrap_lines(false).build())
        }));
        let env = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        let seed = env("FUZZ_SEED", 10);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let seeds = [TRIGGERS, super::super::segment::GENERATED_SEGMENTS, QUOTAS];
        for case in 0..env("PROPTEST_CASES", 150) {
            let mut text = seeds[case as usize % seeds.len()].to_string();
            for _ in 0..rng.random_range(1..5) {
                text = mutate(&mut rng, &text);
            }
            let checked = std::panic::catch_unwind(|| check_text("f.yaml", &text, None));
            assert!(
                checked.is_ok(),
                "case {case} (FUZZ_SEED={seed}) panicked on:\n{text}"
            );
        }
    }
}
