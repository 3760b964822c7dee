//! Fuzz targets for the input readers: events (JSONL and Parquet) and customers (CSV and
//! Parquet). Structure-aware generators (proptest, so they run on the stable toolchain) build
//! inputs from the formats' own grammar — valid records with fields removed, repeated,
//! retyped, pushed to their limits — plus raw byte damage of valid files.
//!
//! Properties, for every input:
//! - no reader panics (a Polars panic inside a read is contained and reported);
//! - an events file yields exactly one record per non-blank line (JSONL) or row (Parquet), and
//!   a rejected record says why;
//! - running the records through the engine gives exactly one outcome per record;
//! - a customer file either loads or is refused with the file named, and a table that loads
//!   saves and loads back unchanged (nothing converted lossily).
//!
//! The default budget is small (CI). A long campaign:
//! `PROPTEST_CASES=100000 FUZZ_KEEP=1 cargo test --release -p fusebox-engine --test fuzz_readers`
//! (`FUZZ_KEEP`: see [`keep_for_abort`]).

use std::io::Write;
use std::sync::Arc;

use fusebox_engine::config::compile_triggers;
use fusebox_engine::customers::{Column as AttrColumn, CustomerTable, Schema};
use fusebox_engine::event::EventRecord;
use fusebox_engine::io::customers::{load_customers, save_customers};
use fusebox_engine::io::events::{read_events, read_jsonl, EventChunks};
use fusebox_engine::state::State;
use fusebox_engine::value::AttrType;
use fusebox_engine::{Engine, RunOptions};
use polars::prelude::*;
use proptest::prelude::*;

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------- JSONL events

/// A JSON scalar or small structure, including the awkward ones.
fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        Just("18446744073709551616".to_string()),
        Just("-0".to_string()),
        Just("1e400".to_string()),
        Just("-1.5e-320".to_string()),
        any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(|x| format!("{x:?}")),
        "[a-z#/:\\\\\"é\u{0}\u{1F600} ]{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        Just("\"\\ud800\"".to_string()),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(("[a-z]{1,3}", inner), 0..4).prop_map(|kv| {
                let body: Vec<String> = kv
                    .into_iter()
                    .map(|(k, v)| format!("\"{k}\":{v}"))
                    .collect();
                format!("{{{}}}", body.join(","))
            }),
        ]
    })
}

/// Timestamps at and around the edges of what is accepted.
fn timestamp_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("2026-03-01T12:00:00Z".to_string()),
        Just("2026-03-01T12:00:00.123456789Z".to_string()),
        Just("2026-03-01T12:00:00+14:00".to_string()),
        Just("0000-01-01T00:00:00Z".to_string()),
        Just("0001-01-01T00:00:00Z".to_string()),
        Just("9999-12-31T23:59:59.999999Z".to_string()),
        Just("9999-12-31T23:59:59-23:59".to_string()),
        Just("2026-12-31T23:59:60Z".to_string()),
        Just("2026-02-30T00:00:00Z".to_string()),
        Just("yesterday".to_string()),
        (0u16..10000, 1u8..13, 1u8..29, 0u8..24)
            .prop_map(|(y, m, d, h)| format!("{y:04}-{m:02}-{d:02}T{h:02}:00:00Z")),
    ]
}

/// One line: a well-formed event with some fields mutated, or noise.
fn jsonl_line() -> impl Strategy<Value = Vec<u8>> {
    let field = |name: &'static str, good: BoxedStrategy<String>| {
        prop_oneof![
            6 => good.prop_map(move |v| Some(format!("\"{name}\":{v}"))),
            1 => Just(None),
            1 => json_value().prop_map(move |v| Some(format!("\"{name}\":{v}"))),
        ]
    };
    let event = (
        field(
            "id",
            prop_oneof![
                "[a-z0-9#/:]{0,8}".prop_map(|s| format!("\"{s}\"")),
                any::<u32>().prop_map(|n| n.to_string())
            ]
            .boxed(),
        ),
        field(
            "customer_id",
            prop_oneof![
                (0u64..6).prop_map(|n| n.to_string()),
                Just("1.0".to_string())
            ]
            .boxed(),
        ),
        field(
            "type",
            prop::sample::select(vec!["\"a\"", "\"b\"", "\"\"", "\"zzz\""])
                .prop_map(str::to_string)
                .boxed(),
        ),
        field(
            "timestamp",
            timestamp_text().prop_map(|t| format!("\"{t}\"")).boxed(),
        ),
        field(
            "process",
            prop::sample::select(vec!["\"sync\"", "null", "\"\""])
                .prop_map(str::to_string)
                .boxed(),
        ),
        field("properties", json_value().boxed()),
        prop::option::weighted(0.1, "[a-z]{1,6}"),
        any::<bool>(),
    )
        .prop_map(|(id, cid, ty, ts, process, props, extra, repeat)| {
            let mut fields: Vec<String> = [id, cid, ty, ts, process, props]
                .into_iter()
                .flatten()
                .collect();
            if let Some(extra) = extra {
                fields.push(format!("\"{extra}\":1"));
            }
            if repeat && !fields.is_empty() {
                fields.push(fields[0].clone());
            }
            format!("{{{}}}", fields.join(",")).into_bytes()
        });
    prop_oneof![
        8 => event,
        1 => json_value().prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..40),
    ]
}

fn jsonl_file() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        prop::collection::vec(
            (
                jsonl_line(),
                prop::sample::select(vec!["\n", "\r\n", "\n\n"]),
            ),
            0..12,
        ),
    )
        .prop_map(|(bom, lines)| {
            let mut out = Vec::new();
            if bom {
                out.extend_from_slice(b"\xEF\xBB\xBF");
            }
            for (line, end) in lines {
                out.extend_from_slice(&line);
                out.extend_from_slice(end.as_bytes());
            }
            out
        })
}

/// A small engine over customers 1..=4 with triggers reading what events carry.
fn engine() -> (Engine, CustomerTable) {
    let schema = Schema::new([
        ("points".to_string(), AttrType::Int),
        ("spent".to_string(), AttrType::Float),
    ])
    .unwrap();
    let customers = CustomerTable::new(
        schema,
        vec![1, 2, 3, 4],
        vec![
            AttrColumn::Int(vec![Some(1), None, Some(3), Some(-4)]),
            AttrColumn::Float(vec![None, Some(0.5), None, Some(2.0)]),
        ],
    )
    .unwrap();
    let triggers = r#"
event_types: [a, b]
triggers:
  - id: t
    owner: o@x
    on: a
    condition: "has(event.properties.x) && event.properties.x > 1"
    actions:
      - increment: { attribute: spent, by: "event.properties.x" }
      - emit_event: { type: b, properties: { x: "event.properties.x" } }
  - id: u
    owner: o@x
    on: b
    actions:
      - send_message: { channel: sms, template: t, args: { p: "event.properties" } }
"#;
    let set = compile_triggers(triggers, "t.yaml", Some(customers.schema())).unwrap();
    (Engine::new(set).unwrap(), customers)
}

fn run_all(records: &[EventRecord]) -> Result<(), TestCaseError> {
    let (engine, customers) = engine();
    let mut state = State::new(customers, engine.triggers());
    let result = engine
        .run_batch(&mut state, records, &RunOptions::default())
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(result.outcomes.len(), records.len());
    for (o, r) in result.outcomes.iter().zip(records) {
        prop_assert_eq!(o.line, r.line);
        serde_json::to_string(o).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(400), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn jsonl_events_never_panic_and_account_for_every_line(bytes in jsonl_file()) {
        let records = read_jsonl(&bytes[..]).unwrap();
        let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
        let non_blank = body
            .split(|b| *b == b'\n')
            .filter(|l| !l.iter().all(|b| b.is_ascii_whitespace()))
            .count();
        prop_assert_eq!(records.len(), non_blank);
        for r in &records {
            if let Err(e) = &r.event {
                prop_assert!(!e.is_empty());
            }
        }
        run_all(&records)?;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        std::fs::write(&path, &bytes).unwrap();
        chunks_are_the_whole_read(&path)?;
    }
}

/// [`EventChunks`] at several chunk sizes: concatenated, the chunks are exactly what
/// `read_events` returns, and a file it refuses is refused when opened (or, for damage only
/// decoding finds, by a chunk).
fn chunks_are_the_whole_read(path: &std::path::Path) -> Result<(), TestCaseError> {
    let whole = read_events(path);
    for chunk in [1, 3, 64] {
        let chunked: Result<Vec<Vec<EventRecord>>, _> =
            EventChunks::open(path, chunk).and_then(|c| c.collect());
        match (&whole, chunked) {
            (Ok(whole), Ok(chunks)) => {
                prop_assert!(chunks.iter().all(|c| !c.is_empty() && c.len() <= chunk));
                let joined: Vec<EventRecord> = chunks.into_iter().flatten().collect();
                prop_assert_eq!(whole, &joined, "chunk size {}", chunk);
            }
            (Err(_), Err(_)) => {}
            (whole, chunked) => prop_assert!(
                false,
                "chunk size {chunk}: whole read {:?}, chunked read {:?}",
                whole.as_ref().map(Vec::len),
                chunked.map(|c| c.len())
            ),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- Parquet inputs

/// A column of one of the types Polars can write here, with awkward values.
fn column(name: String, rows: usize) -> impl Strategy<Value = Column> {
    let n = rows;
    prop_oneof![
        prop::collection::vec(
            prop::option::weighted(0.8, "[a-z0-9#{}\":,\\[\\] ]{0,10}"),
            n
        )
        .prop_map({
            let name = name.clone();
            move |v| Series::new(name.clone().into(), v).into_column()
        })
        .boxed(),
        prop::collection::vec(prop::option::weighted(0.8, any::<i64>()), n)
            .prop_map({
                let name = name.clone();
                move |v| Series::new(name.clone().into(), v).into_column()
            })
            .boxed(),
        prop::collection::vec(prop::option::weighted(0.8, any::<u64>()), n)
            .prop_map({
                let name = name.clone();
                move |v| Series::new(name.clone().into(), v).into_column()
            })
            .boxed(),
        prop::collection::vec(prop::option::weighted(0.8, 0u8..=255), n)
            .prop_map({
                let name = name.clone();
                move |v| Series::new(name.clone().into(), v).into_column()
            })
            .boxed(),
        prop::collection::vec(prop::option::weighted(0.8, any::<f64>()), n)
            .prop_map({
                let name = name.clone();
                move |v| Series::new(name.clone().into(), v).into_column()
            })
            .boxed(),
        prop::collection::vec(prop::option::weighted(0.8, any::<bool>()), n)
            .prop_map({
                let name = name.clone();
                move |v| Series::new(name.clone().into(), v).into_column()
            })
            .boxed(),
        (
            prop::collection::vec(prop::option::weighted(0.8, any::<i64>()), n),
            prop::sample::select(vec![
                TimeUnit::Nanoseconds,
                TimeUnit::Microseconds,
                TimeUnit::Milliseconds
            ]),
            prop::option::of(prop::sample::select(vec!["UTC", "Europe/Berlin", "+05:30"])),
        )
            .prop_map({
                let name = name.clone();
                move |(v, unit, zone)| {
                    let zone = zone.and_then(|z| TimeZone::opt_try_new(Some(z)).ok().flatten());
                    Int64Chunked::from_iter_options(name.clone().into(), v.into_iter())
                        .into_datetime(unit, zone)
                        .into_series()
                        .into_column()
                }
            })
            .boxed(),
        prop::collection::vec(prop::option::weighted(0.8, any::<i32>()), n)
            .prop_map({
                let name = name.clone();
                move |v| {
                    Int32Chunked::from_iter_options(name.clone().into(), v.into_iter())
                        .into_date()
                        .into_series()
                        .into_column()
                }
            })
            .boxed(),
        prop::collection::vec(
            prop::option::weighted(0.8, prop::collection::vec("[a-z]{0,3}", 0..3)),
            n
        )
        .prop_map(move |v| {
            let lists: ListChunked = v
                .into_iter()
                .map(|items| items.map(|items| Series::new(PlSmallStr::EMPTY, items)))
                .collect();
            lists
                .with_name(name.clone().into())
                .into_series()
                .cast(&DataType::List(Box::new(DataType::String)))
                .unwrap()
                .into_column()
        })
        .boxed(),
    ]
}

/// A frame with the given column names (each of a random type) and `rows` rows.
fn frame(names: Vec<String>, rows: usize) -> impl Strategy<Value = DataFrame> {
    names
        .into_iter()
        .map(|n| column(n, rows))
        .collect::<Vec<_>>()
        .prop_map(move |cols| DataFrame::new(rows, cols).unwrap())
}

fn events_frame() -> impl Strategy<Value = DataFrame> {
    let names = prop::sample::subsequence(
        vec![
            "id",
            "customer_id",
            "type",
            "timestamp",
            "process",
            "properties",
            "extra",
        ],
        0..=7,
    );
    (names, 0usize..6)
        .prop_flat_map(|(names, rows)| frame(names.into_iter().map(str::to_string).collect(), rows))
}

fn write_parquet(df: &mut DataFrame, path: &std::path::Path) {
    let file = std::fs::File::create(path).unwrap();
    ParquetWriter::new(file).finish(df).unwrap();
}

/// With `FUZZ_KEEP=1`, writes a damaged file to `$TMPDIR/fuzz-<what>.parquet` before it is
/// read: an abort (which proptest cannot catch or shrink) leaves its input behind. That is
/// how a negative page count that made Polars abort on a 2^61-byte allocation was found.
fn keep_for_abort(bytes: &[u8], what: &str) {
    if std::env::var_os("FUZZ_KEEP").is_some() {
        let path = std::env::temp_dir().join(format!("fuzz-{what}.parquet"));
        std::fs::write(path, bytes).unwrap();
    }
}

/// Damage: cut the file, or overwrite a few bytes.
fn damage(bytes: &mut Vec<u8>, cut: Option<usize>, flips: &[(usize, u8)]) {
    if let Some(cut) = cut {
        bytes.truncate(cut % (bytes.len() + 1));
    }
    for &(at, byte) in flips {
        if !bytes.is_empty() {
            let i = at % bytes.len();
            bytes[i] = byte;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(150), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn parquet_events_never_panic_and_account_for_every_row(
        mut df in events_frame(),
        cut in prop::option::weighted(0.2, any::<usize>()),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..3),
        damaged in prop::bool::weighted(0.3),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.parquet");
        write_parquet(&mut df, &path);
        if damaged {
            let mut bytes = std::fs::read(&path).unwrap();
            damage(&mut bytes, cut, &flips);
            std::fs::write(&path, &bytes).unwrap();
            keep_for_abort(&bytes, "events");
        }
        chunks_are_the_whole_read(&path)?;
        match read_events(&path) {
            Err(e) => prop_assert!(!e.to_string().is_empty()),
            Ok(records) => {
                if !damaged {
                    prop_assert_eq!(records.len(), df.height());
                }
                for (i, r) in records.iter().enumerate() {
                    prop_assert_eq!(r.line, i as u64 + 1);
                }
                run_all(&records)?;
            }
        }
    }

    #[test]
    fn parquet_customers_load_exactly_or_are_refused(
        mut df in (prop::collection::vec("[a-c]{1,2}", 0..4), 1usize..5)
            .prop_flat_map(|(mut names, rows)| {
                names.sort();
                names.dedup();
                names.retain(|n| n != "id");
                names.insert(0, "id".to_string());
                frame(names, rows)
            }),
        cut in prop::option::weighted(0.2, any::<usize>()),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..3),
        damaged in prop::bool::weighted(0.3),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.parquet");
        write_parquet(&mut df, &path);
        if damaged {
            let mut bytes = std::fs::read(&path).unwrap();
            damage(&mut bytes, cut, &flips);
            std::fs::write(&path, &bytes).unwrap();
            keep_for_abort(&bytes, "customers");
        }
        check_customers(&path)?;
    }
}

/// Loads, and if that works, saves and loads again: the same table.
fn check_customers(path: &std::path::Path) -> Result<(), TestCaseError> {
    match load_customers(path) {
        Err(e) => {
            let msg = e.to_string();
            prop_assert!(
                msg.contains(path.file_name().unwrap().to_str().unwrap()),
                "{}",
                msg
            );
        }
        Ok(table) => {
            let dir = tempfile::tempdir().unwrap();
            let again = dir.path().join("again.parquet");
            save_customers(&table, &again).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let back = load_customers(&again).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(back.ids(), table.ids());
            prop_assert!(
                back.columns()
                    .iter()
                    .zip(table.columns())
                    .all(|(a, b)| columns_identical(a, b)),
                "a saved table loads back unchanged"
            );
        }
    }
    Ok(())
}

/// Column equality with floats compared by bits (NaN equals itself).
fn columns_identical(a: &AttrColumn, b: &AttrColumn) -> bool {
    match (a, b) {
        (AttrColumn::Float(x), AttrColumn::Float(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|(p, q)| p.map(f64::to_bits) == q.map(f64::to_bits))
        }
        _ => a == b,
    }
}

// ---------------------------------------------------------------- CSV customers

fn csv_cell() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        Just("18446744073709551616".to_string()),
        any::<f64>().prop_map(|x| x.to_string()),
        Just("true".to_string()),
        Just("2026-03-01T12:00:00Z".to_string()),
        Just("2026-03-01".to_string()),
        Just("0000-01-01".to_string()),
        "[a-z ,\"é]{0,6}".prop_map(|s| format!("\"{}\"", s.replace('"', "\"\""))),
        "[a-z]{0,6}",
    ]
}

fn csv_file() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        prop::collection::vec("[a-cid]{1,3}", 1..4),
        prop::collection::vec(prop::collection::vec(csv_cell(), 1..5), 0..6),
        prop::option::weighted(0.1, prop::collection::vec(any::<u8>(), 0..20)),
    )
        .prop_map(|(bom, header, rows, noise)| {
            let mut out = Vec::new();
            if bom {
                out.extend_from_slice(b"\xEF\xBB\xBF");
            }
            writeln!(out, "{}", header.join(",")).unwrap();
            for row in rows {
                writeln!(out, "{}", row.join(",")).unwrap();
            }
            if let Some(noise) = noise {
                out.extend_from_slice(&noise);
            }
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(300), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn csv_customers_load_exactly_or_are_refused(bytes in csv_file()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.csv");
        std::fs::write(&path, &bytes).unwrap();
        check_customers(&path)?;
    }
}

/// The id column and attribute names are taken as they are: not a property, a sanity check
/// that the generators above produce loadable tables at all.
#[test]
fn the_generators_reach_loadable_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.csv");
    std::fs::write(&path, "id,a\n1,x\n2,\n").unwrap();
    let t = load_customers(&path).unwrap();
    assert_eq!(t.len(), 2);
    let _ = Arc::new(t);
}
