//! [`FsLock`]: a held advisory lock.

use std::fmt;

/// A held exclusive lock from [`Fs::try_lock`](crate::Fs::try_lock);
/// released when dropped.
pub trait FsLock: Send + fmt::Debug {}
