//! The matrix's cells: the backend columns, the fault rows, and the
//! outcome each cell must show.

use provisioning_provider_api::SwitchReason;

/// A backend column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Backend {
    /// `InMemoryProvider` with scripted failures.
    Memory,
    /// The Consul provider against the fake Consul (through a proxy).
    Consul,
    /// The Kubernetes provider against the fake API server (through a proxy).
    Kube,
    /// The etcd provider against real etcd on loopback.
    Etcd,
}

impl Backend {
    /// Every column, in table order.
    pub const ALL: [Self; 4] = [Self::Memory, Self::Consul, Self::Kube, Self::Etcd];

    /// The column name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "in-memory",
            Self::Consul => "consul",
            Self::Kube => "k8s",
            Self::Etcd => "etcd",
        }
    }
}

/// A fault row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// Connections refused (port closed, process dead).
    Refused,
    /// One answer cut off mid-way by a TCP reset, once.
    TransientReset,
    /// Answers cut off mid-way by a TCP reset.
    ResetMidResponse,
    /// Requests accepted, never answered.
    Hang,
    /// Connections accepted, then nothing answered at all (the chaos
    /// proxy's black hole), under the default detection numbers (timeout
    /// 15 s, liveness probes every 1 s with a 1 s timeout): only the probes
    /// can catch it before the no-response timeout.
    AcceptsThenSilent,
    /// Answers trickle in far too slowly.
    SlowDrip,
    /// HTTP 500.
    ServerError,
    /// HTTP 429.
    TooManyRequests,
    /// A 200 with a truncated JSON body.
    Malformed,
    /// The backend position goes backwards or expires.
    Rollback,
    /// Leader or quorum loss.
    LeaderLoss,
    /// Down and up every [`FLAP`](super::FLAP).
    Flapping,
    /// The credentials lose their permission (403).
    PermissionRevoked,
}

impl Fault {
    /// Every row, in table order.
    pub const ALL: [Self; 13] = [
        Self::Refused,
        Self::TransientReset,
        Self::ResetMidResponse,
        Self::Hang,
        Self::AcceptsThenSilent,
        Self::SlowDrip,
        Self::ServerError,
        Self::TooManyRequests,
        Self::Malformed,
        Self::Rollback,
        Self::LeaderLoss,
        Self::Flapping,
        Self::PermissionRevoked,
    ];

    /// The row name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Refused => "refused",
            Self::TransientReset => "one reset (transient)",
            Self::ResetMidResponse => "reset mid-response",
            Self::Hang => "hang",
            Self::AcceptsThenSilent => "accepts, then answers nothing",
            Self::SlowDrip => "slow drip",
            Self::ServerError => "5xx",
            Self::TooManyRequests => "429",
            Self::Malformed => "malformed body",
            Self::Rollback => "index rollback / expiry",
            Self::LeaderLoss => "leader / quorum loss",
            Self::Flapping => "flapping 2 s",
            Self::PermissionRevoked => "permission revoked",
        }
    }
}

/// What a cell must show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// Exactly two switches: away with one of `reasons`, and back with
    /// `priority_restored` after healing.
    Switch {
        /// The reasons the first switch may carry (detection by silence and
        /// by counted errors can race for hangs).
        reasons: &'static [SwitchReason],
    },
    /// Exactly one switch with one of `reasons` and no way back: the
    /// stream ended permanently (an operator must re-enable it).
    Permanent {
        /// The reasons the switch may carry.
        reasons: &'static [SwitchReason],
    },
    /// No switch; the primary reported faults (stream interruptions).
    FaultsOnly,
    /// No switch and the primary never turned unreachable: a resync or a
    /// heartbeat-level blip only.
    ResyncOnly,
    /// Switches away and back on every down phase, never more than
    /// `max` in all, alternating, ending on the primary.
    Flapping {
        /// Upper bound on switches.
        max: usize,
    },
    /// The backend cannot express the fault.
    NotApplicable(&'static str),
}

pub(super) const HD: &[SwitchReason] = &[SwitchReason::HealthDegraded];
pub(super) const SILENT: &[SwitchReason] = &[SwitchReason::Timeout, SwitchReason::HealthDegraded];
pub(super) const TERMINATED: &[SwitchReason] = &[SwitchReason::Terminated];

impl Expected {
    /// The short form used in the tables.
    pub fn label(&self) -> String {
        let reasons =
            |r: &[SwitchReason]| r.iter().map(|r| r.as_str()).collect::<Vec<_>>().join("|");
        match self {
            Self::Switch { reasons: r } => format!("switch ({}) + fail-back", reasons(r)),
            Self::Permanent { reasons: r } => format!("permanent failure: switch ({})", reasons(r)),
            Self::FaultsOnly => "no switch, faults reported".into(),
            Self::ResyncOnly => "resync only".into(),
            Self::Flapping { max } => format!("bounded switching (≤ {max}), ends on primary"),
            Self::NotApplicable(why) => format!("N/A: {why}"),
        }
    }
}

/// The expected outcome of every cell, under [`FailoverPolicy::tight`](cluster_provisioning::FailoverPolicy::tight).
pub fn expected(backend: Backend, fault: Fault) -> Expected {
    use Backend as B;
    use Fault as F;
    let flapping = Expected::Flapping { max: 4 };
    match (backend, fault) {
        (_, F::Flapping) => flapping,
        (_, F::Refused | F::ServerError | F::TooManyRequests | F::PermissionRevoked) => {
            match (backend, fault) {
                (B::Etcd, F::ServerError | F::TooManyRequests) => Expected::NotApplicable(
                    "gRPC: etcd answers no HTTP status; overload is a gRPC error the client retries",
                ),
                (B::Etcd, F::PermissionRevoked) => Expected::NotApplicable(
                    "the etcd harness runs without auth (no users or roles to revoke)",
                ),
                (B::Etcd, F::Refused) => Expected::Switch { reasons: SILENT },
                _ => Expected::Switch { reasons: HD },
            }
        }
        // One error, then the retry that comes at once succeeds: below
        // max_errors, never a verdict.
        (_, F::TransientReset) => Expected::FaultsOnly,
        (B::Memory, F::ResetMidResponse) => Expected::Switch {
            reasons: TERMINATED,
        },
        (_, F::ResetMidResponse) => Expected::Switch { reasons: HD },
        (B::Memory, F::Hang) => Expected::Switch {
            reasons: &[SwitchReason::Timeout],
        },
        (_, F::Hang) => Expected::Switch { reasons: SILENT },
        (B::Memory, F::AcceptsThenSilent) => {
            Expected::NotApplicable("no wire: nothing accepts connections")
        }
        (_, F::AcceptsThenSilent) => Expected::Switch { reasons: SILENT },
        (B::Memory, F::SlowDrip) => {
            Expected::NotApplicable("no wire: an in-memory stream has no bytes to drip")
        }
        (_, F::SlowDrip) => Expected::Switch { reasons: SILENT },
        (B::Memory | B::Consul, F::Malformed) => Expected::Switch { reasons: HD },
        (B::Kube, F::Malformed) => {
            Expected::NotApplicable("the fake API server has no malformed-body switch")
        }
        (B::Etcd, F::Malformed) => {
            Expected::NotApplicable("gRPC frames are checked by the transport; etcd sends none")
        }
        // etcd: a compaction up to the head revision. It cancels only
        // watches that start behind it, and the provider never resumes from
        // a remembered revision (it relists), so nothing may happen at all.
        (_, F::Rollback) => Expected::ResyncOnly,
        (B::Memory, F::LeaderLoss) => Expected::NotApplicable("no leader"),
        (B::Consul, F::LeaderLoss) => Expected::Switch { reasons: HD },
        (B::Kube, F::LeaderLoss) => Expected::NotApplicable(
            "the API server hides its etcd leader; quorum loss reaches clients as 5xx or a hang",
        ),
        (B::Etcd, F::LeaderLoss) => Expected::Switch { reasons: SILENT },
    }
}
