//! The naive reference evaluator: one customer at a time, straight from the filter tree, no
//! planner, no bitmaps, no aggregates, no Polars. Obviously correct and slow
//! (O(customers × events) per event predicate); the property tests compare the engine with it.

use std::sync::Arc;

use fusebox_engine::customers::Row;
use fusebox_engine::value::Value;

use crate::data::{Batch, SegmentData};
use crate::model::{EventPred, EventTest, Filter, SegmentGroup};

/// Members (rows, ascending) of every segment of the group, in group order.
pub fn evaluate(group: &SegmentGroup, data: &SegmentData, as_of: i64) -> Vec<(Arc<str>, Vec<u32>)> {
    group
        .segments
        .iter()
        .map(|s| {
            let rows = (0..data.len() as Row)
                .filter(|&r| member(group, data, as_of, &s.id, r))
                .collect();
            (s.id.clone(), rows)
        })
        .collect()
}

fn member(group: &SegmentGroup, data: &SegmentData, as_of: i64, id: &str, row: Row) -> bool {
    group
        .segments
        .iter()
        .find(|s| s.id.as_ref() == id)
        .is_some_and(|s| eval(group, data, as_of, &s.filter, row) == Some(true))
}

/// Kleene evaluation of a filter for one customer.
pub fn eval(
    group: &SegmentGroup,
    data: &SegmentData,
    as_of: i64,
    f: &Filter,
    row: Row,
) -> Option<bool> {
    match f {
        Filter::And(cs) => {
            let mut unknown = false;
            for c in cs {
                match eval(group, data, as_of, c, row) {
                    Some(false) => return Some(false),
                    None => unknown = true,
                    Some(true) => {}
                }
            }
            if unknown {
                None
            } else {
                Some(true)
            }
        }
        Filter::Or(cs) => {
            let mut unknown = false;
            for c in cs {
                match eval(group, data, as_of, c, row) {
                    Some(true) => return Some(true),
                    None => unknown = true,
                    Some(false) => {}
                }
            }
            if unknown {
                None
            } else {
                Some(false)
            }
        }
        Filter::Not(c) => eval(group, data, as_of, c, row).map(|b| !b),
        Filter::Attr(p) => p.op.test(&data.customers().get(row, p.attr), as_of),
        Filter::Event(p) => Some(event(data, as_of, p, row)),
        Filter::InSegment(id) => Some(member(group, data, as_of, id, row)),
    }
}

fn event(data: &SegmentData, as_of: i64, p: &EventPred, row: Row) -> bool {
    let (mut count, mut sum, mut first, mut last) = (0u64, 0.0f64, None::<i64>, None::<i64>);
    if let Some(te) = data.events.of_type(&p.event_type) {
        let mut scan = |b: &Batch| {
            for i in 0..b.len() {
                if b.rows[i] != row || !p.window.contains(b.ts[i], as_of) {
                    continue;
                }
                if !p
                    .filters
                    .iter()
                    .all(|f| f.op.test(&b.prop(&f.name, i), as_of) == Some(true))
                {
                    continue;
                }
                count += 1;
                if let EventTest::Performed {
                    sum: Some((prop, _)),
                    ..
                } = &p.test
                {
                    match b.prop(prop, i) {
                        Value::Int(n) => sum += n as f64,
                        Value::Float(x) if !x.is_nan() => sum += x,
                        _ => {}
                    }
                }
                let t = b.ts[i];
                first = Some(first.map_or(t, |f| f.min(t)));
                last = Some(last.map_or(t, |l| l.max(t)));
            }
        };
        scan(&te.base);
        scan(&te.tail);
    }
    match &p.test {
        EventTest::Performed {
            count: None,
            sum: None,
        } => count >= 1,
        EventTest::Performed { count: c, sum: s } => {
            c.is_none_or(|c| c.holds(count as f64)) && s.as_ref().is_none_or(|(_, c)| c.holds(sum))
        }
        EventTest::First { before, at } => first.is_some_and(|f| {
            if *before {
                f < at.at(as_of)
            } else {
                f > at.at(as_of)
            }
        }),
        EventTest::Last { before, at } => last.is_some_and(|l| {
            if *before {
                l < at.at(as_of)
            } else {
                l > at.at(as_of)
            }
        }),
    }
}
