//! [`InlineStr`]: the immutable string behind [`NodeId`](crate::NodeId), with
//! short values kept inside the value itself.
//!
//! A snapshot's members sit in one vector in id order; with their ids inline,
//! the diff's merge and the hash read that vector front to back instead of
//! following a pointer per member to wherever the heap put the id
//! (BENCHMARKS.md, "Watch hub": a cache miss per member string is what a
//! 100,000-member publication spent its time on).

use alloc::boxed::Box;
use alloc::string::String;
use core::cmp::Ordering;
use core::hash::{Hash, Hasher};

/// Bytes kept inline: with the tag and the length byte, an `InlineStr` is 24
/// bytes (a `String`'s size on 64-bit targets).
const INLINE: usize = 22;

/// An immutable string: up to 22 bytes inside the value, longer ones in a
/// heap allocation of their own. Equality, order and hash are those of the
/// string, whichever way it is held.
#[derive(Clone)]
pub(crate) enum InlineStr {
    /// `bytes[..len]` hold the string, copied whole from a `str`.
    Inline {
        /// Length in bytes, at most [`INLINE`].
        len: u8,
        /// The string's bytes, then zeros.
        bytes: [u8; INLINE],
    },
    /// A string longer than [`INLINE`] bytes.
    Heap(Box<str>),
}

impl InlineStr {
    /// The string.
    pub(crate) fn as_str(&self) -> &str {
        match self {
            // The bytes are a whole `str`, copied in `from`, so this never
            // fails; the empty fallback keeps the function total without a
            // panic path or `unsafe`.
            Self::Inline { .. } => core::str::from_utf8(self.as_bytes()).unwrap_or_default(),
            Self::Heap(text) => text,
        }
    }

    /// The string's bytes, without the UTF-8 check of [`Self::as_str`].
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => &bytes[..usize::from(*len).min(INLINE)],
            Self::Heap(text) => text.as_bytes(),
        }
    }
}

impl From<String> for InlineStr {
    fn from(text: String) -> Self {
        match u8::try_from(text.len()) {
            Ok(len) if text.len() <= INLINE => {
                let mut bytes = [0; INLINE];
                bytes[..text.len()].copy_from_slice(text.as_bytes());
                Self::Inline { len, bytes }
            }
            _ => Self::Heap(text.into_boxed_str()),
        }
    }
}

impl PartialEq for InlineStr {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for InlineStr {}

impl PartialOrd for InlineStr {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for InlineStr {
    /// Byte order, which is `str`'s order.
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl Hash for InlineStr {
    /// As the `str` hashes, so a map keyed by ids can be searched by `&str`.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use alloc::string::ToString;
    use alloc::vec::Vec;
    use core::hash::BuildHasher;

    use super::*;

    /// Strings around the inline limit, multi-byte characters across it,
    /// and the empty string.
    fn samples() -> Vec<String> {
        let mut samples: Vec<String> = (0..=30).map(|n| "a".repeat(n)).collect();
        samples.extend((0..=30).map(|n| "b".repeat(n)));
        samples.extend(["a\u{0}", "a\u{0}b", "é", "éé", "z"].map(ToString::to_string));
        // 21 ASCII bytes and a 2-byte character: 23 bytes, on the heap; 20
        // and a 2-byte character: 22 bytes, inline.
        samples.push(alloc::format!("{}é", "x".repeat(21)));
        samples.push(alloc::format!("{}é", "x".repeat(20)));
        samples.push(alloc::format!("{}€", "x".repeat(20)));
        samples
    }

    #[test]
    fn up_to_22_bytes_inline_longer_on_the_heap() {
        for text in samples() {
            let value = InlineStr::from(text.clone());
            assert_eq!(value.as_str(), text);
            assert_eq!(value.as_bytes(), text.as_bytes());
            assert_eq!(
                matches!(value, InlineStr::Inline { .. }),
                text.len() <= INLINE,
                "{text:?}"
            );
        }
        assert_eq!(
            core::mem::size_of::<InlineStr>(),
            core::mem::size_of::<String>()
        );
    }

    #[test]
    fn equality_order_and_hash_are_the_strings() {
        let hasher = std::hash::RandomState::new();
        let samples = samples();
        for a in &samples {
            for b in &samples {
                let (x, y) = (InlineStr::from(a.clone()), InlineStr::from(b.clone()));
                assert_eq!(x == y, a == b, "{a:?} {b:?}");
                assert_eq!(x.cmp(&y), a.as_str().cmp(b.as_str()), "{a:?} {b:?}");
            }
            let value = InlineStr::from(a.clone());
            assert_eq!(
                hasher.hash_one(&value),
                hasher.hash_one(a.as_str()),
                "{a:?}"
            );
        }
    }
}
