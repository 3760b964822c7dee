//! The columnar path (`read_event_columns` + `EventStore::from_columns`) against the object
//! path (`read_events` + `EventStore::from_events`) on generated files, JSONL and Parquet:
//! valid events with properties of every kind (ints, floats, huge integers, strings with
//! escapes, booleans, nulls, lists, objects, one key with mixed kinds across events), events
//! of unknown customers, and bad records of every kind (malformed, arrays, missing or mistyped
//! fields, repeated keys, bad timestamps, non-UTF-8, blank lines, CRLF, a BOM). Both paths
//! must give the same rejected records (line and reason), the same events, the same store
//! (types, rows, timestamps, offsets, property kinds and values) and the same members — also
//! when only the properties the group reads are kept, as `fusebox segment` does.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use fusebox_engine::customers::{Column, CustomerTable, Schema};
use fusebox_engine::event::Event;
use fusebox_engine::io::columnar::{read_event_columns, PropertySelection};
use fusebox_engine::io::events::read_events;
use fusebox_engine::value::AttrType;
use fusebox_segment::data::PropColumn;
use fusebox_segment::{compile_segments, ComputeOptions, EventStore, SegmentData, SegmentEngine};
use polars::prelude::*;
use proptest::prelude::*;

const TYPES: &[&str] = &["order", "cart", "view"];
const KEYS: &[&str] = &["total", "url", "flag", "misc"];
const STRINGS: &[&str] = &["/sale", "/", "a\"b", "é\\n", ""];
/// Customers 1..=CUSTOMERS are known; generated ids go up to CUSTOMERS + 2.
const CUSTOMERS: u64 = 6;

#[derive(Clone, Debug)]
enum Prop {
    Null,
    Bool(bool),
    Int(i64),
    Huge,
    Float(f64),
    Str(usize),
    List,
    Object,
}

impl Prop {
    fn json(&self) -> String {
        match self {
            Prop::Null => "null".into(),
            Prop::Bool(b) => b.to_string(),
            Prop::Int(i) => i.to_string(),
            Prop::Huge => "18446744073709551615".into(),
            Prop::Float(x) => format!("{x:?}"),
            Prop::Str(s) => serde_json::to_string(STRINGS[*s]).unwrap(),
            Prop::List => r#"[1,"x",null]"#.into(),
            Prop::Object => r#"{"b":2,"a":[true]}"#.into(),
        }
    }
}

fn prop() -> impl Strategy<Value = Prop> {
    prop_oneof![
        Just(Prop::Null),
        any::<bool>().prop_map(Prop::Bool),
        (-5i64..500).prop_map(Prop::Int),
        Just(Prop::Huge),
        (-50i32..5000).prop_map(|x| Prop::Float(f64::from(x) / 4.0)),
        (0..STRINGS.len()).prop_map(Prop::Str),
        Just(Prop::List),
        Just(Prop::Object),
    ]
}

#[derive(Clone, Debug)]
struct Valid {
    numeric_id: bool,
    customer: u64,
    ty: usize,
    /// Seconds after 2026-01-01; few values, so equal timestamps happen.
    second: i64,
    process: bool,
    /// Keys (indices into `KEYS`, distinct) and values; `None`: no `properties` field.
    props: Option<Vec<(usize, Prop)>>,
}

#[derive(Clone, Debug)]
enum Record {
    Valid(Valid),
    /// One of the bad shapes (JSONL: `BAD_LINES`; Parquet: `bad_row`).
    Bad(usize),
    /// A blank line (JSONL only).
    Blank,
}

fn valid() -> impl Strategy<Value = Valid> {
    (
        any::<bool>(),
        1..CUSTOMERS + 3,
        0..TYPES.len(),
        0i64..20,
        any::<bool>(),
        prop::option::weighted(
            0.85,
            prop::collection::btree_map(0..KEYS.len(), prop(), 0..4),
        ),
    )
        .prop_map(|(numeric_id, customer, ty, second, process, props)| Valid {
            numeric_id,
            customer,
            ty,
            second,
            process,
            props: props.map(|m| m.into_iter().collect()),
        })
}

fn record() -> impl Strategy<Value = Record> {
    prop_oneof![
        8 => valid().prop_map(Record::Valid),
        2 => (0..BAD_LINES.len()).prop_map(Record::Bad),
        1 => Just(Record::Blank),
    ]
}

fn timestamp_text(second: i64) -> String {
    format!("2026-01-01T00:00:{second:02}Z")
}

fn properties_json(props: &[(usize, Prop)]) -> String {
    let fields: Vec<String> = props
        .iter()
        .map(|(k, v)| format!("{}:{}", serde_json::to_string(KEYS[*k]).unwrap(), v.json()))
        .collect();
    format!("{{{}}}", fields.join(","))
}

fn jsonl_line(i: usize, v: &Valid) -> String {
    let id = if v.numeric_id {
        i.to_string()
    } else {
        format!("\"e{i}\"")
    };
    let mut line = format!(
        r#"{{"id":{id},"customer_id":{},"type":"{}","timestamp":"{}""#,
        v.customer,
        TYPES[v.ty],
        timestamp_text(v.second)
    );
    if v.process {
        line.push_str(r#","process":"sync""#);
    }
    if let Some(props) = &v.props {
        line.push_str(&format!(r#","properties":{}"#, properties_json(props)));
    }
    line.push('}');
    line
}

const BAD_LINES: &[&[u8]] = &[
    br#"{"id":"x","customer_id":1,"type":"order""#,
    br#"["x",1,"order","2026-01-01T00:00:00Z"]"#,
    br#"{"id":"x","customer_id":1,"type":"order"}"#,
    br#"{"id":"x","customer_id":1.0,"type":"order","timestamp":"2026-01-01T00:00:00Z"}"#,
    br#"{"id":"x","customer_id":-1,"type":"order","timestamp":"2026-01-01T00:00:00Z"}"#,
    br#"{"id":"x","customer_id":1,"type":"order","timestamp":"2026-01-01T00:00:00Z","properties":{"total":1,"total":2}}"#,
    br#"{"id":"x","id":"y","customer_id":1,"type":"order","timestamp":"2026-01-01T00:00:00Z"}"#,
    br#"{"id":"x","customer_id":1,"type":"order","timestamp":"2026-01-01T00:00:00Z","colour":1}"#,
    br#"{"id":"x","customer_id":1,"type":"order","timestamp":"noon"}"#,
    br#"{"id":"","customer_id":1,"type":"order","timestamp":"2026-01-01T00:00:00Z"}"#,
    br#"{"id":"x","customer_id":1,"type":"","timestamp":"2026-01-01T00:00:00Z"}"#,
    b"{\"id\":\"\xff\",\"customer_id\":1}",
    br#"{"id":"x","customer_id":1,"type":"order","timestamp":"2026-01-01T00:00:00Z","properties":[1]}"#,
    br#"  42"#,
];

fn write_jsonl(path: &Path, records: &[Record], bom: bool, crlf: bool) {
    let mut out = Vec::new();
    if bom {
        out.extend_from_slice(b"\xEF\xBB\xBF");
    }
    for (i, r) in records.iter().enumerate() {
        match r {
            Record::Valid(v) => out.extend_from_slice(jsonl_line(i, v).as_bytes()),
            Record::Bad(k) => out.extend_from_slice(BAD_LINES[*k]),
            Record::Blank => out.extend_from_slice(b"   "),
        }
        out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
    }
    std::fs::File::create(path)
        .and_then(|mut f| f.write_all(&out))
        .unwrap();
}

/// One Parquet row: id, customer_id, type, timestamp (µs), process, properties.
type Row = (
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
);

fn bad_row(k: usize) -> Row {
    let ts = Some(1_767_225_600_000_000);
    let s = |x: &str| Some(x.to_string());
    match k % 7 {
        0 => (None, Some(1), s("order"), ts, None, None),
        1 => (s(""), Some(1), s("order"), ts, None, None),
        2 => (s("x"), Some(-4), s("order"), ts, None, None),
        3 => (s("x"), None, s("order"), ts, None, None),
        4 => (s("x"), Some(1), s("order"), None, None, None),
        5 => (s("x"), Some(1), None, ts, None, s(r#"{"a":1,"a":2}"#)),
        _ => (s("x"), Some(1), s("order"), ts, None, s(r#"{"a":"#)),
    }
}

fn write_parquet(path: &Path, records: &[Record]) {
    let rows: Vec<Row> = records
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match r {
            Record::Valid(v) => Some((
                Some(format!("e{i}")),
                Some(v.customer as i64),
                Some(TYPES[v.ty].to_string()),
                Some(1_767_225_600_000_000 + v.second * 1_000_000),
                v.process.then(|| "sync".to_string()),
                v.props.as_ref().map(|p| properties_json(p)),
            )),
            Record::Bad(k) => Some(bad_row(*k)),
            Record::Blank => None,
        })
        .collect();
    let col = |name: &str, f: &dyn Fn(&Row) -> Option<String>| {
        Series::new(name.into(), rows.iter().map(f).collect::<Vec<_>>()).into_column()
    };
    let ts = Series::new(
        "timestamp".into(),
        rows.iter().map(|r| r.3).collect::<Vec<_>>(),
    )
    .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
    .unwrap();
    let mut df = DataFrame::new(
        rows.len(),
        vec![
            col("id", &|r| r.0.clone()),
            Series::new(
                "customer_id".into(),
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )
            .into_column(),
            col("type", &|r| r.2.clone()),
            ts.into_column(),
            col("process", &|r| r.4.clone()),
            col("properties", &|r| r.5.clone()),
        ],
    )
    .unwrap();
    ParquetWriter::new(std::fs::File::create(path).unwrap())
        .finish(&mut df)
        .unwrap();
}

fn customers() -> CustomerTable {
    let schema = Schema::new([("points".to_string(), AttrType::Int)]).unwrap();
    CustomerTable::new(
        schema,
        (1..=CUSTOMERS).collect(),
        vec![Column::Int((1..=CUSTOMERS as i64).map(Some).collect())],
    )
    .unwrap()
}

const GROUP: &str = r#"
segments:
  - id: big-spenders
    owner: t
    filter:
      performed: { event: order, sum: { property: total, ge: 100 } }
  - id: sale-views
    owner: t
    filter:
      performed: { event: view, count: { ge: 1 }, where: [ { property: url, eq: /sale } ] }
  - id: flagged-carts
    owner: t
    filter:
      and:
        - performed: { event: cart, where: [ { property: flag, eq: true } ] }
        - not: { in_segment: big-spenders }
"#;

fn members(store: EventStore) -> Vec<(Arc<str>, Vec<u64>)> {
    let data = SegmentData::new(customers(), store);
    let group = compile_segments(GROUP, "group.yaml", Some(data.customers().schema()), None)
        .expect("the test group compiles");
    let as_of = 1_767_225_700_000_000;
    let engine = SegmentEngine::new(group, &data, as_of, Some(2)).unwrap();
    let opts = ComputeOptions {
        as_of,
        deadline: None,
        use_cache: false,
    };
    let result = engine.compute(&data, &opts).unwrap();
    engine.member_ids(&data, &result)
}

fn kind(c: &PropColumn) -> &'static str {
    match c {
        PropColumn::Num(_) => "num",
        PropColumn::Str { .. } => "str",
        PropColumn::Bool(_) => "bool",
        PropColumn::Any(_) => "any",
    }
}

fn assert_same_store(a: &EventStore, b: &EventStore) {
    assert_eq!(a.types(), b.types());
    assert_eq!(a.unknown_customers, b.unknown_customers);
    for ty in a.types() {
        let (x, y) = (a.of_type(&ty).unwrap(), b.of_type(&ty).unwrap());
        assert_eq!(x.base.rows, y.base.rows, "{ty}: rows");
        assert_eq!(x.base.ts, y.base.ts, "{ty}: timestamps");
        assert_eq!(x.offsets, y.offsets, "{ty}: offsets");
        let mut names: Vec<_> = x.base.props.keys().collect();
        let mut other: Vec<_> = y.base.props.keys().collect();
        names.sort();
        other.sort();
        assert_eq!(names, other, "{ty}: property names");
        for name in names {
            let (p, q) = (&x.base.props[name], &y.base.props[name]);
            assert_eq!(kind(p), kind(q), "{ty}.{name}: kind");
            for i in 0..x.base.len() {
                assert_eq!(p.get(i), q.get(i), "{ty}.{name}: event {i}");
            }
        }
    }
}

/// Both paths on one file: same records, same store, same members.
fn check_file(path: &Path) {
    let (records, columns) = match (
        read_events(path),
        read_event_columns(path, &PropertySelection::All),
    ) {
        (Ok(r), Ok(c)) => (r, c),
        // A file the object path refuses (e.g. no events at all) is refused the same way.
        (Err(a), Err(b)) => {
            assert_eq!(a.to_string(), b.to_string());
            return;
        }
        (a, b) => panic!(
            "one path refused the file: objects {:?}, columns {:?}",
            a.err().map(|e| e.to_string()),
            b.err().map(|e| e.to_string())
        ),
    };
    let old_bad: Vec<(u64, String)> = records
        .iter()
        .filter_map(|r| r.event.as_ref().err().map(|e| (r.line, e.clone())))
        .collect();
    let new_bad: Vec<(u64, String)> = columns
        .rejected
        .iter()
        .map(|r| (r.line, r.reason.clone()))
        .collect();
    assert_eq!(new_bad, old_bad, "rejected records");
    let events: Vec<&Event> = records
        .iter()
        .filter_map(|r| r.event.as_ref().ok())
        .collect();
    assert_eq!(columns.len(), events.len());
    for (i, e) in events.iter().enumerate() {
        assert_eq!(columns.customer_ids[i], e.customer_id, "event {i}");
        assert_eq!(
            columns.types[columns.type_codes[i] as usize], e.event_type,
            "event {i}"
        );
        assert_eq!(columns.timestamps[i], e.timestamp, "event {i}");
        assert_eq!(
            columns.properties_of(i),
            e.properties.entries().to_vec(),
            "event {i}"
        );
    }
    assert_eq!(
        columns.max_timestamp(),
        events.iter().map(|e| e.timestamp).max()
    );

    let table = customers();
    let old_store = EventStore::from_events(&table, events.iter().copied());
    let new_store = EventStore::from_columns(&table, &columns);
    assert_same_store(&old_store, &new_store);
    let want = members(old_store);
    assert_eq!(members(new_store), want, "members (all properties)");

    // What `fusebox segment` keeps: only the properties the group reads.
    let group = compile_segments(GROUP, "group.yaml", Some(table.schema()), None).unwrap();
    let only = PropertySelection::Only(group.event_properties());
    let selected = read_event_columns(path, &only).unwrap();
    assert_eq!(selected.rejected, columns.rejected);
    assert_eq!(
        members(EventStore::from_columns(&table, &selected)),
        want,
        "members (selected properties)"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn jsonl_columns_equal_the_object_path(
        records in prop::collection::vec(record(), 1..60),
        bom in any::<bool>(),
        crlf in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        write_jsonl(&path, &records, bom, crlf);
        check_file(&path);
    }

    #[test]
    fn parquet_columns_equal_the_object_path(
        records in prop::collection::vec(record(), 1..60),
    ) {
        prop_assume!(records.iter().any(|r| !matches!(r, Record::Blank)));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.parquet");
        write_parquet(&path, &records);
        check_file(&path);
    }
}

/// Pieces and blocks: a file large enough to be cut into several parallel pieces (JSONL
/// pieces are 1 MiB) keeps its line numbers and order.
#[test]
fn many_pieces_keep_order_and_line_numbers() {
    let records: Vec<Record> = (0..40_000)
        .map(|i| {
            if i % 997 == 0 {
                Record::Bad(i % BAD_LINES.len())
            } else if i % 1999 == 0 {
                Record::Blank
            } else {
                Record::Valid(Valid {
                    numeric_id: i % 2 == 0,
                    customer: (i as u64 % (CUSTOMERS + 2)) + 1,
                    ty: i % TYPES.len(),
                    second: (i as i64 * 7) % 20,
                    process: i % 3 == 0,
                    props: Some(vec![
                        (0, Prop::Float(i as f64)),
                        (1, Prop::Str(i % STRINGS.len())),
                        (3, Prop::Str(0)),
                    ]),
                })
            }
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    write_jsonl(&path, &records, false, false);
    check_file(&path);
    let path = dir.path().join("events.parquet");
    write_parquet(&path, &records);
    check_file(&path);
}

/// The engine's Parquet and JSONL fixtures (time zones, dates at the range's edge, float
/// customer ids, decimals, …): the same records both ways, or the same file-level error.
#[test]
fn engine_fixtures_read_the_same_both_ways() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/fixtures");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("events") {
            continue;
        }
        seen += 1;
        match read_events(&path) {
            Ok(_) => check_file(&path),
            Err(e) => {
                let columnar = read_event_columns(&path, &PropertySelection::All)
                    .err()
                    .unwrap_or_else(|| panic!("{name}: the columnar reader accepts it"));
                assert_eq!(columnar.to_string(), e.to_string(), "{name}");
            }
        }
    }
    assert!(seen > 0, "no event fixtures in {}", dir.display());
}
