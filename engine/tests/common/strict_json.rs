//! A strict JSON check for output lines: valid JSON, and no object with a repeated key.
//!
//! `serde_json::Value` keeps the last of two equal keys, so it cannot see a repeated key;
//! this walks the document with a visitor that remembers the keys of every object. Shared by
//! the engine's and the CLI's tests (`#[path]`).

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// `Ok` if `line` is one JSON value whose objects all have unique keys; otherwise what is wrong.
pub fn check_strict_json(line: &str) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_str(line);
    Strict
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| format!("{e} in {line}"))
}

/// Like [`check_strict_json`], and the value must be an object.
pub fn check_strict_object(line: &str) -> Result<(), String> {
    check_strict_json(line)?;
    if line.trim_start().starts_with('{') {
        Ok(())
    } else {
        Err(format!("not a JSON object: {line}"))
    }
}

struct Strict;

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(Strict)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Strict)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !keys.insert(key.clone()) {
                return Err(de::Error::custom(format!("key `{key}` appears twice")));
            }
            map.next_value_seed(Strict)?;
        }
        Ok(())
    }
}
