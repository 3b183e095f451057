//! [`PolicyWarning`]: a policy that works but probably not as meant.

/// A policy setting that is accepted but probably not what was meant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyWarning {
    /// More standbys than there are other providers to keep warm.
    #[error(
        "standby {standby} is above the number of providers - 1 ({providers} providers): \
         every other provider is kept warm"
    )]
    StandbyAboveProviders {
        /// `standby`.
        standby: u32,
        /// How many providers there are.
        providers: usize,
    },
}
