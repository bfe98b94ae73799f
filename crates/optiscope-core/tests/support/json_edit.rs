//! Random edits of a JSON tree for property tests: a value replaced by an awkward one, a key
//! removed or an unknown one added (shared by the core and app suites through `#[path]`).

use proptest::prelude::*;
use serde_json::Value;

/// Awkward values: type confusions, zero, negative, huge, non-integral, long strings and arrays.
fn awkward_value() -> impl Strategy<Value = Value> {
    let ints = prop_oneof![
        Just(0i64),
        Just(1),
        Just(2),
        Just(-1),
        Just(3),
        Just(7),
        Just(64),
        Just(1000),
        Just(65_536),
        Just(i64::from(i32::MAX)),
        Just(1 << 32),
        Just(1 << 53),
        Just(i64::MAX),
        Just(i64::MIN),
    ]
    .prop_map(Value::from);
    let floats = prop_oneof![
        Just(0.5f64),
        Just(-0.0),
        Just(1e-300),
        Just(1e300),
        Just(-1e300),
        Just(f64::MAX),
        Just(0.1),
        Just(2.5),
    ]
    .prop_map(Value::from);
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        ints,
        floats,
        Just(Value::from(u64::MAX)),
        "[a-z_-]{0,12}".prop_map(Value::from),
        (0usize..5000).prop_map(|n| Value::from("x".repeat(n))),
        (0usize..3000, -2i64..70_000).prop_map(|(n, v)| Value::from(vec![v; n])),
        Just(Value::Array(vec![])),
        Just(serde_json::json!({})),
    ]
}

/// Every path (object keys and array indices) to a value in `v`, in document order.
fn paths(v: &Value, here: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    out.push(here.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                here.push(PathStep::Key(k.clone()));
                paths(child, here, out);
                here.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                here.push(PathStep::Index(i));
                paths(child, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn at<'a>(v: &'a mut Value, path: &[PathStep]) -> &'a mut Value {
    path.iter().fold(v, |v, step| match step {
        PathStep::Key(k) => &mut v[k.as_str()],
        PathStep::Index(i) => &mut v[*i],
    })
}

/// One edit of a JSON tree.
#[derive(Debug, Clone)]
pub enum Edit {
    /// Replace the value at a path.
    Replace(usize, Value),
    /// Remove a key of the object at (or around) a path.
    Remove(usize),
    /// Add an unknown key to the object at (or around) a path.
    Add(usize),
}

pub fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        6 => (any::<usize>(), awkward_value()).prop_map(|(p, v)| Edit::Replace(p, v)),
        1 => any::<usize>().prop_map(Edit::Remove),
        1 => any::<usize>().prop_map(Edit::Add),
    ]
}

pub fn apply(mut v: Value, edits: &[Edit]) -> Value {
    for e in edits {
        let mut all = vec![];
        paths(&v, &mut vec![], &mut all);
        let pick = |i: usize| all[i % all.len()].clone();
        match e {
            Edit::Replace(i, new) => *at(&mut v, &pick(*i)) = new.clone(),
            Edit::Remove(i) | Edit::Add(i) => {
                // The nearest object at or above the path.
                let mut path = pick(*i);
                while !at(&mut v, &path).is_object() && !path.is_empty() {
                    path.pop();
                }
                if let Value::Object(m) = at(&mut v, &path) {
                    if matches!(e, Edit::Add(_)) {
                        m.insert("not_a_field".into(), Value::from(1));
                    } else if let Some(k) = m.keys().nth(*i % m.len().max(1)).cloned() {
                        m.remove(&k);
                    }
                }
            }
        }
    }
    v
}
