//! [`HostKey`]: a member's host as its snapshot keeps it beside the members.

/// Hosts up to this many bytes are held in the key: every IPv4 address in
/// dotted form, short IPv6 addresses and host names. With the length byte a
/// key is 16 bytes per member.
const SHORT: usize = 15;
/// The `len` of a key whose host is longer than [`SHORT`].
const LONG: u8 = u8::MAX;

/// A copy of a member's host when it is short, kept by the snapshot in a
/// vector parallel to its members. The snapshot's hash and the diff's merge
/// read hosts from there, in member order, instead of from each member's
/// heap allocation; a long host is read from the member.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct HostKey {
    /// The host's length, or [`LONG`].
    len: u8,
    /// The host's bytes, then zeros (all zeros for a long host).
    bytes: [u8; SHORT],
}

impl HostKey {
    /// The key of `host`.
    pub(crate) fn of(host: &str) -> Self {
        let mut bytes = [0; SHORT];
        match u8::try_from(host.len()) {
            Ok(len) if host.len() <= SHORT => {
                bytes[..host.len()].copy_from_slice(host.as_bytes());
                Self { len, bytes }
            }
            _ => Self { len: LONG, bytes },
        }
    }

    /// The bytes of the host this key was made from: its own copy, or
    /// `host` (that same host, as the member holds it) when it is long.
    pub(crate) fn host_bytes<'a>(&'a self, host: &'a str) -> &'a [u8] {
        if self.len == LONG {
            host.as_bytes()
        } else {
            &self.bytes[..usize::from(self.len)]
        }
    }

    /// Whether two members' hosts are equal, given their keys and (for long
    /// hosts) the hosts themselves. Two short hosts compare by key; a short
    /// and a long one differ in length; only two long ones are read.
    pub(crate) fn same_host(&self, other: &Self, host: &str, other_host: &str) -> bool {
        if self.len == LONG && other.len == LONG {
            host == other_host
        } else {
            self == other
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::String;
    use alloc::vec::Vec;

    use super::*;

    fn hosts() -> Vec<String> {
        let mut hosts: Vec<String> = (0..=30).map(|n| "h".repeat(n)).collect();
        hosts.extend((0..=30).map(|n| "g".repeat(n)));
        // Same length past the limit, different last byte.
        hosts.push(alloc::format!("{}a", "x".repeat(30)));
        hosts.push(alloc::format!("{}b", "x".repeat(30)));
        hosts.push("fd00:10:244:1::2a".into());
        hosts
    }

    #[test]
    fn equal_keys_exactly_when_equal_hosts() {
        let hosts = hosts();
        for a in &hosts {
            for b in &hosts {
                let (x, y) = (HostKey::of(a), HostKey::of(b));
                assert_eq!(x.same_host(&y, a, b), a == b, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn host_bytes_are_the_hosts_bytes() {
        for host in hosts() {
            let key = HostKey::of(&host);
            assert_eq!(key.host_bytes(&host), host.as_bytes(), "{host:?}");
            assert_eq!(key.len == LONG, host.len() > SHORT, "{host:?}");
        }
    }
}
