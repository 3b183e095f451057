//! [`MemberState`]: whether a member takes new work (CONTRACTS §1, "Member
//! lifecycle").

use core::fmt;

/// Whether a member takes new work. A `Draining` member is still a member
/// and still reachable, but about to go: take no new work there, hand its
/// work off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum MemberState {
    /// `serving`: the default.
    #[default]
    Serving,
    /// `draining`: about to leave.
    Draining,
}

impl MemberState {
    /// The contract string (`serving`, `draining`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Serving => "serving",
            Self::Draining => "draining",
        }
    }

    /// Whether this is `Serving` (serde skips the field then, so a v1 member
    /// object is unchanged).
    pub fn is_serving(&self) -> bool {
        *self == Self::Serving
    }

    /// The byte the snapshot hash encodes (CONTRACTS §6): 0 serving,
    /// 1 draining.
    pub fn hash_byte(self) -> u8 {
        match self {
            Self::Serving => 0,
            Self::Draining => 1,
        }
    }
}

impl fmt::Display for MemberState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
