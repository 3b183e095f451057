//! [`WatchValue`]: the kind-specific `watch` parameters of a descriptor as a
//! small JSON value tree, so the contract stays free of any JSON library.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

/// The `watch` object of a descriptor. Each backend documents and parses its
/// own keys, rejecting unknown ones.
pub type WatchParams = BTreeMap<String, WatchValue>;

/// One JSON value inside `watch`.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchValue {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits `i64`.
    Int(i64),
    /// A non-negative integer above `i64::MAX`.
    UInt(u64),
    /// Any other number.
    Float(f64),
    /// A string (durations are strings: `250ms`, `4s`, `1m`).
    String(String),
    /// An array.
    Array(Vec<WatchValue>),
    /// An object, keys ordered.
    Object(BTreeMap<String, WatchValue>),
}

impl WatchValue {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The bool, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// A short name of the JSON type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool(_) => "bool",
            Self::Int(_) | Self::UInt(_) | Self::Float(_) => "number",
            Self::String(_) => "string",
            Self::Array(_) => "array",
            Self::Object(_) => "object",
        }
    }
}

impl From<&str> for WatchValue {
    fn from(value: &str) -> Self {
        Self::String(value.into())
    }
}

impl From<String> for WatchValue {
    fn from(value: String) -> Self {
        Self::String(value)
    }
}

impl From<bool> for WatchValue {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

impl From<i64> for WatchValue {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

#[cfg(feature = "serde")]
mod serde_impl {
    use super::*;
    use core::fmt;
    use serde::de::{self, MapAccess, SeqAccess, Visitor};
    use serde::ser::{SerializeMap, SerializeSeq};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    impl Serialize for WatchValue {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match self {
                Self::Null => s.serialize_unit(),
                Self::Bool(b) => s.serialize_bool(*b),
                Self::Int(i) => s.serialize_i64(*i),
                Self::UInt(u) => s.serialize_u64(*u),
                Self::Float(f) => s.serialize_f64(*f),
                Self::String(v) => s.serialize_str(v),
                Self::Array(items) => {
                    let mut seq = s.serialize_seq(Some(items.len()))?;
                    for item in items {
                        seq.serialize_element(item)?;
                    }
                    seq.end()
                }
                Self::Object(map) => {
                    let mut m = s.serialize_map(Some(map.len()))?;
                    for (k, v) in map {
                        m.serialize_entry(k, v)?;
                    }
                    m.end()
                }
            }
        }
    }

    struct ValueVisitor;

    impl<'de> Visitor<'de> for ValueVisitor {
        type Value = WatchValue;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_unit<E: de::Error>(self) -> Result<WatchValue, E> {
            Ok(WatchValue::Null)
        }
        fn visit_none<E: de::Error>(self) -> Result<WatchValue, E> {
            Ok(WatchValue::Null)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<WatchValue, D::Error> {
            Deserialize::deserialize(d)
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<WatchValue, E> {
            Ok(WatchValue::Bool(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<WatchValue, E> {
            Ok(WatchValue::Int(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<WatchValue, E> {
            Ok(i64::try_from(v).map_or(WatchValue::UInt(v), WatchValue::Int))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<WatchValue, E> {
            Ok(WatchValue::Float(v))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<WatchValue, E> {
            Ok(WatchValue::String(v.into()))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<WatchValue, E> {
            Ok(WatchValue::String(v))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<WatchValue, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element()? {
                items.push(item);
            }
            Ok(WatchValue::Array(items))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WatchValue, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((k, v)) = map.next_entry::<String, WatchValue>()? {
                if out.insert(k, v).is_some() {
                    return Err(de::Error::custom("duplicate key in watch object"));
                }
            }
            Ok(WatchValue::Object(out))
        }
    }

    impl<'de> Deserialize<'de> for WatchValue {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(ValueVisitor)
        }
    }
}
