//! The snapshot hash of CONTRACTS §6.

use alloc::vec::Vec;
use xxhash_rust::xxh3::Xxh3;

use crate::{ClusterNode, NodeId};

/// Bytes staged before one `update` call: per-field updates cost about 4× more
/// than hashing staged bytes (BENCHMARKS.md floors).
const STAGE: usize = 4096;

/// XXH3-64 (seed 0) over the encoding of CONTRACTS §6.
///
/// `members` must be sorted by id and `blocked` sorted, as a
/// [`ProviderSnapshot`](crate::ProviderSnapshot) keeps them; use
/// [`ProviderSnapshot::hash`](crate::ProviderSnapshot::hash) rather than
/// calling this directly.
pub fn snapshot_hash(members: &[ClusterNode], blocked: &[NodeId]) -> u64 {
    hash_encoding(
        members
            .iter()
            .map(|member| (member, member.host.as_bytes())),
        blocked,
    )
}

/// [`snapshot_hash`] of `members` given with their hosts' bytes, so a
/// snapshot can supply the hosts it keeps beside its members.
pub(crate) fn hash_encoding<'a>(
    members: impl ExactSizeIterator<Item = (&'a ClusterNode, &'a [u8])>,
    blocked: &[NodeId],
) -> u64 {
    let mut hasher = Xxh3::new();
    let mut buf: Vec<u8> = Vec::with_capacity(STAGE + 256);
    put_len(&mut buf, members.len());
    for (member, host) in members {
        put_bytes(&mut buf, member.id.as_bytes());
        put_bytes(&mut buf, host);
        buf.extend_from_slice(&member.port.to_le_bytes());
        put_member_tail(&mut buf, member);
        if buf.len() >= STAGE {
            hasher.update(&buf);
            buf.clear();
        }
    }
    put_len(&mut buf, blocked.len());
    for id in blocked {
        put_bytes(&mut buf, id.as_bytes());
        if buf.len() >= STAGE {
            hasher.update(&buf);
            buf.clear();
        }
    }
    hasher.update(&buf);
    hasher.digest()
}

/// The encoded bytes that [`snapshot_hash`] hashes, for tests and tools.
pub fn snapshot_hash_input(members: &[ClusterNode], blocked: &[NodeId]) -> Vec<u8> {
    let mut buf = Vec::new();
    put_len(&mut buf, members.len());
    for member in members {
        put_str(&mut buf, member.id.as_str());
        put_str(&mut buf, &member.host);
        buf.extend_from_slice(&member.port.to_le_bytes());
        put_member_tail(&mut buf, member);
    }
    put_len(&mut buf, blocked.len());
    for id in blocked {
        put_str(&mut buf, id.as_str());
    }
    buf
}

/// Labels, then the v2 lifecycle fields for a member that has any: bit 31 of
/// the label count marks them, so a member with neither encodes as in v1.
fn put_member_tail(buf: &mut Vec<u8>, member: &ClusterNode) {
    let count = u32::try_from(member.labels.len()).unwrap_or(LABEL_COUNT_MASK);
    // A label count reaching bit 31 cannot be held in memory; clamping keeps
    // the marker bit meaningful if it ever were.
    let count = count.min(LABEL_COUNT_MASK);
    if member.has_lifecycle() {
        buf.extend_from_slice(&(count | LIFECYCLE_BIT).to_le_bytes());
    } else {
        buf.extend_from_slice(&count.to_le_bytes());
    }
    for (key, value) in &member.labels {
        put_str(buf, key);
        put_str(buf, value);
    }
    if member.has_lifecycle() {
        put_str(buf, member.incarnation.as_ref().map_or("", |i| i.as_str()));
        buf.push(member.state.hash_byte());
    }
}

/// Bit 31 of a member's label count: the member has an incarnation or is
/// draining, and both follow its labels (CONTRACTS §6, v2).
const LIFECYCLE_BIT: u32 = 0x8000_0000;
const LABEL_COUNT_MASK: u32 = LIFECYCLE_BIT - 1;

fn put_len(buf: &mut Vec<u8>, len: usize) {
    // Lengths above u32::MAX cannot occur for ids, hosts or labels held in
    // memory by a provider; saturate rather than wrap if they ever did.
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    buf.extend_from_slice(&len.to_le_bytes());
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_bytes(buf, s.as_bytes());
}

fn put_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    put_len(buf, bytes.len());
    buf.extend_from_slice(bytes);
}

/// Formats a hash as the contract's 16 lower-case hex digits.
pub fn format_hash(hash: u64) -> HashHex {
    HashHex(hash)
}

/// Display adapter returned by [`format_hash`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashHex(pub u64);

impl core::fmt::Display for HashHex {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}
