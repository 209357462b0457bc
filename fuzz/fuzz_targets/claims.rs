//! The strict claims reader (`auth::jwt::StrictClaims`, via `fuzzing::strict_claims`): a
//! JWT payload is one JSON object whose keys are unique at every depth.
//!
//! Invariants, against serde_json and a duplicate-key finder written here: what the strict
//! reader accepts is exactly the object serde_json reads; what it refuses and serde_json
//! reads as an object has a duplicate key somewhere; re-serializing any object (keys now
//! unique) is accepted and reads back equal; and adding a duplicate key at the top or
//! nested in an array is refused.
#![no_main]

use std::fmt;

use libfuzzer_sys::fuzz_target;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use shieldwall_runtime::fuzzing::strict_claims;

/// Whether a JSON value has a duplicate key in some object, at any depth.
struct HasDuplicate(bool);

impl<'de> de::Deserialize<'de> for HasDuplicate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Finder)
    }
}

struct Finder;

impl<'de> Visitor<'de> for Finder {
    type Value = HasDuplicate;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, _: bool) -> Result<HasDuplicate, E> {
        Ok(HasDuplicate(false))
    }
    fn visit_i64<E>(self, _: i64) -> Result<HasDuplicate, E> {
        Ok(HasDuplicate(false))
    }
    fn visit_u64<E>(self, _: u64) -> Result<HasDuplicate, E> {
        Ok(HasDuplicate(false))
    }
    fn visit_f64<E>(self, _: f64) -> Result<HasDuplicate, E> {
        Ok(HasDuplicate(false))
    }
    fn visit_str<E>(self, _: &str) -> Result<HasDuplicate, E> {
        Ok(HasDuplicate(false))
    }
    fn visit_unit<E>(self) -> Result<HasDuplicate, E> {
        Ok(HasDuplicate(false))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<HasDuplicate, A::Error> {
        let mut dup = false;
        while let Some(HasDuplicate(d)) = seq.next_element()? {
            dup |= d;
        }
        Ok(HasDuplicate(dup))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<HasDuplicate, A::Error> {
        let mut keys: Vec<String> = Vec::new();
        let mut dup = false;
        while let Some(k) = map.next_key::<String>()? {
            let HasDuplicate(d) = map.next_value()?;
            dup |= d;
            keys.push(k);
        }
        keys.sort_unstable();
        Ok(HasDuplicate(dup || keys.windows(2).any(|w| w[0] == w[1])))
    }
}

fuzz_target!(|data: &[u8]| {
    let strict = strict_claims(data);
    let loose: Result<Value, _> = serde_json::from_slice(data);
    match &strict {
        Ok(m) => {
            assert_eq!(loose.as_ref().ok(), Some(&Value::Object(m.clone())));
            if let Some((k, v)) = m.iter().next() {
                let mut dup = serde_json::to_string(m).unwrap();
                dup.pop();
                dup.push_str(&format!(",{}:{v}}}", Value::String(k.clone())));
                assert!(strict_claims(dup.as_bytes()).is_err(), "{dup}");
                let nested = format!("{{\"n\":[1,{dup}]}}");
                assert!(strict_claims(nested.as_bytes()).is_err(), "{nested}");
            }
        }
        Err(_) => {
            if let Ok(Value::Object(_)) = &loose {
                let dup: HasDuplicate = serde_json::from_slice(data).expect("serde_json read it");
                assert!(
                    dup.0,
                    "refused without a duplicate key: {:?}",
                    String::from_utf8_lossy(data)
                );
            }
        }
    }
    // Re-serialized, an object has unique keys: accepted, as serde_json reads that text
    // (not necessarily equal to `v`: without `float_roundtrip`, serde_json may read a float
    // it printed one unit in the last place off).
    if let Ok(v @ Value::Object(_)) = &loose {
        let again = serde_json::to_vec(v).unwrap();
        let reread: Value = serde_json::from_slice(&again).unwrap();
        assert_eq!(strict_claims(&again).ok().map(Value::Object), Some(reread));
    }
});
