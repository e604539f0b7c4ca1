//! Entering a mount namespace and coming back: the one place ferry does it.
//!
//! setns(CLONE_NEWNS) needs a caller with a private fs context: ferry is single-threaded
//! where it calls these.

use crate::error::{Result, RuntimeError};
use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};

/// Run `f` inside the mount namespace `ns` (`whose` names it in errors, "the host's") and
/// come back, also when `f` fails. The working directory stays where it was when it can
/// (entering a namespace moves it to that namespace's root).
pub fn in_namespace<T, E: From<RuntimeError>>(
    ns: BorrowedFd<'_>,
    whose: &str,
    f: impl FnOnce() -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    let own = File::open("/proc/self/ns/mnt")
        .map_err(|e| RuntimeError::io("opening ferry's mount namespace", e))?;
    let cwd = File::open(".").ok();
    move_into_link_name_space(ns, Some(LinkNameSpaceType::Mount))
        .map_err(|e| RuntimeError::io(format!("entering {whose} mount namespace"), e.into()))?;
    let result = f();
    move_into_link_name_space(own.as_fd(), Some(LinkNameSpaceType::Mount))
        .map_err(|e| RuntimeError::io("returning to ferry's mount namespace", e.into()))?;
    if let Some(dir) = cwd {
        if let Err(e) = rustix::process::fchdir(&dir) {
            tracing::debug!("returning to the working directory: {e}");
        }
    }
    result
}

/// Run `f` with a directory fd of the root of `pid`'s mount namespace, from inside that
/// namespace, and come back.
pub fn in_mount_namespace<T>(pid: i32, f: impl FnOnce(BorrowedFd<'_>) -> Result<T>) -> Result<T> {
    let theirs = File::open(format!("/proc/{pid}/ns/mnt"))
        .map_err(|e| RuntimeError::io(format!("opening the mount namespace of {pid}"), e))?;
    in_namespace(theirs.as_fd(), &format!("process {pid}'s"), || {
        let root = File::open("/").map_err(|e| RuntimeError::io("opening the restored root", e))?;
        f(root.as_fd())
    })
}
