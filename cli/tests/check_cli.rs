//! End-to-end tests of `fusebox check`: every problem of a file is printed, located, in one
//! run (issue #10 §5), and no input makes the binary panic (exit 101) or crash.

mod common;

use common::fusebox;

fn check(name: &str, text: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let out = fusebox(&["check", path.to_str().unwrap()]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The lines `name:LINE:` quoted in `stderr`, in order of appearance (each report quotes its
/// location twice: in the message and above the snippet).
fn located_lines(stderr: &str, name: &str) -> Vec<u64> {
    let needle = format!("{name}:");
    let mut lines: Vec<u64> = stderr
        .match_indices(&needle)
        .filter_map(|(i, _)| {
            let rest = &stderr[i + needle.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let after = rest[digits.len()..].chars().next();
            (after == Some(':')).then(|| digits.parse().ok()).flatten()
        })
        .collect();
    lines.dedup();
    lines
}

#[test]
fn shape_errors_in_several_triggers_are_all_printed() {
    let text = "\
version: 1
settings: { max_chain_depth: 4 }
triggers:
  - id: t1
    owner: a@x
    conditon: \"true\"
    on: order.completed
    actions:
      - increment: { attribute: points }
  - id: t2
    owner: [a, b]
    on: order.completed
    actions:
      - increment: { attribute: points }
  - id: t3
    priority: first
    owner: a@x
    on: order.completed
    actions:
      - increment: { attribute: points }
colour: blue
";
    let (code, stderr) = check("t.yaml", text);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        located_lines(&stderr, "t.yaml"),
        [6, 11, 16, 21],
        "{stderr}"
    );
    assert!(stderr.contains("unknown field `conditon`"), "{stderr}");
    assert!(stderr.contains("unknown field `colour`"), "{stderr}");
}

#[test]
fn shape_errors_in_several_segments_are_all_printed() {
    let text = "\
segments:
  - id: a
    owner: x
    filter: { attribute: points, gt: 1, lt: 2, colour: red }
  - id: b
    owner: x
    filter: { in_segment: a }
  - id: c
    owner: x
    filter: { and: { attribute: points, gt: 1 } }
  - id: d
    owner: x
    descripton: typo
    filter: { attribute: points, gt: 1 }
extra: 1
";
    let (code, stderr) = check("s.yaml", text);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        located_lines(&stderr, "s.yaml"),
        [4, 10, 13, 15],
        "{stderr}"
    );
    assert!(!stderr.contains("unknown segment `a`"), "{stderr}");
}

#[test]
fn hostile_files_are_errors_never_crashes() {
    let deep_cel = format!(
        "segments:\n  - id: a\n    owner: x\n    filter: {{ cel: \"{}customer.points > 1{}\" }}\n",
        "(".repeat(200),
        ")".repeat(200)
    );
    let deep_condition = format!(
        "triggers:\n  - id: t\n    owner: o\n    on: x\n    condition: \"{}true{}\"\n    actions:\n      - increment: {{ attribute: points }}\n",
        "(".repeat(200),
        ")".repeat(200)
    );
    let deep_filter = format!(
        "segments:\n  - id: a\n    owner: x\n    filter: {}{{ attribute: points, gt: 1 }}{}\n",
        "{ not: ".repeat(300),
        " }".repeat(300)
    );
    let long_line = format!(
        "triggers:\n  - id: t\n    owner: o\n    on: x\n    condition: \"{}\"\n    actions: []\n",
        "customer.points + ".repeat(5000)
    );
    let cases = [
        ("deep_cel.yaml", deep_cel),
        ("deep_condition.yaml", deep_condition),
        ("deep_filter.yaml", deep_filter),
        ("long_line.yaml", long_line),
        ("flow.yaml", "triggers: [ { id: t, on: x, owner: o, actions: [ { teleport: 1 } ] } ]\n".into()),
        ("alias.yaml", "x: &a 1\ntriggers:\n  - id: *a\n".into()),
        ("quota.yaml", "processes:\n  - id: p\n    owner: o\n    limits: { records: 99999999999999999999999999 }\n".into()),
    ];
    for (name, text) in cases {
        let (code, stderr) = check(name, &text);
        assert_exit_ok_or_reported(name, code, &stderr);
    }
}

fn assert_exit_ok_or_reported(name: &str, code: Option<i32>, stderr: &str) {
    assert!(
        matches!(code, Some(0 | 2)),
        "{name}: exit {code:?}\n{}",
        &stderr[..stderr.len().min(3000)]
    );
    if code == Some(2) {
        assert!(stderr.contains(name), "{name}: not located:\n{stderr}");
    }
}

#[test]
fn a_good_file_still_passes() {
    let (code, stderr) = check(
        "ok.yaml",
        "triggers:\n  - id: t\n    owner: o\n    on: x\n    actions:\n      - increment: { attribute: points }\n",
    );
    assert_eq!(code, Some(0), "{stderr}");
}
