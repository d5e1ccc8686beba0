//! Time as an argument: the core never reads a clock.

use serde::{Deserialize, Serialize};

/// A point in time as whole seconds since the Unix epoch (UTC).
///
/// Every operation that depends on time takes a `UnixTime` argument; the core never reads a
/// clock, so the same inputs always give the same outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnixTime(pub u64);

impl UnixTime {
    /// The epoch itself.
    pub const EPOCH: UnixTime = UnixTime(0);

    /// Seconds since the epoch.
    #[must_use]
    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// `self + secs`, saturating at `u64::MAX`.
    #[must_use]
    pub const fn plus(self, secs: u64) -> UnixTime {
        UnixTime(self.0.saturating_add(secs))
    }

    /// `self - secs`, saturating at the epoch.
    #[must_use]
    pub const fn minus(self, secs: u64) -> UnixTime {
        UnixTime(self.0.saturating_sub(secs))
    }

    /// Seconds from `earlier` to `self`, or 0 when `earlier` is later.
    #[must_use]
    pub const fn since(self, earlier: UnixTime) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl From<u64> for UnixTime {
    fn from(secs: u64) -> Self {
        UnixTime(secs)
    }
}
