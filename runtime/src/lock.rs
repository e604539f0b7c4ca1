//! Per-container serialisation. Every command that reads or changes a container's state holds
//! a lock on the container's state directory, so concurrent `kill`, `delete` and `state` see
//! either the state before or after one another, never a half-written file. `create` locks the
//! state root instead, because the container directory does not exist yet and two creates of
//! one id must not both succeed.

use crate::error::{Result, RuntimeError};
use rustix::fs::{flock, FlockOperation};
use std::fs::File;
use std::path::Path;

/// An flock held until dropped.
#[derive(Debug)]
pub struct StateLock {
    file: File,
}

impl Drop for StateLock {
    /// Unlock explicitly instead of relying on the close: libcontainer forks the container's
    /// init while `create` holds the lock, the child shares the open file description until it
    /// execs (after `start`), and a plain close would leave the lock held by that copy.
    fn drop(&mut self) {
        let _ = flock(&self.file, FlockOperation::Unlock);
    }
}

impl StateLock {
    /// Lock `dir` (a directory) exclusively or shared, waiting for other holders.
    pub fn lock_dir(dir: &Path, exclusive: bool) -> std::io::Result<StateLock> {
        let file = File::open(dir)?;
        let op = if exclusive {
            FlockOperation::LockExclusive
        } else {
            FlockOperation::LockShared
        };
        flock(&file, op)?;
        Ok(StateLock { file })
    }

    /// Lock container `id` under `root`; a missing container is `NotFound`, also when it was
    /// deleted while this caller waited for the lock.
    pub fn container(root: &Path, id: &str, exclusive: bool) -> Result<StateLock> {
        let dir = root.join(id);
        let lock = match Self::lock_dir(&dir, exclusive) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RuntimeError::NotFound(id.to_string()))
            }
            Err(e) => return Err(RuntimeError::io(format!("locking {}", dir.display()), e)),
        };
        if !dir.join("state.json").exists() {
            return Err(RuntimeError::NotFound(id.to_string()));
        }
        Ok(lock)
    }
}

/// Whether a `create` holds the state root `root` now: its container directory may have no
/// state file yet.
pub fn create_in_progress(root: &Path) -> bool {
    let Ok(file) = File::open(root) else {
        return false;
    };
    match flock(&file, FlockOperation::NonBlockingLockShared) {
        Ok(()) => {
            let _ = flock(&file, FlockOperation::Unlock);
            false
        }
        Err(e) => e == rustix::io::Errno::WOULDBLOCK,
    }
}
