//! Faults a test can ask for, to show that the checks after them catch what they break.
//! Only the `FERRY_TEST_FAULT` environment variable turns one on; unset, nothing here acts.

use crate::error::{Result, RuntimeError};
use std::fs::File;
use std::os::fd::AsFd;

pub const FAULT_ENV: &str = "FERRY_TEST_FAULT";

/// `FERRY_TEST_FAULT=untie-volumes`: once restore has re-tied the container's mounts to the
/// host, make those mounts private again, as a restore that lost their ties would leave them
/// (a volume cut off from the host). The post-restore tie check must then refuse the
/// restore. `mountpoints` are in the mount image's escaped form; those the container does
/// not have (a host mount below a volume that this host no longer has) are passed over.
pub fn untie_after_restore<'a>(
    pid: i32,
    mountpoints: impl IntoIterator<Item = &'a String>,
) -> Result<()> {
    if std::env::var(FAULT_ENV).as_deref() != Ok("untie-volumes") {
        return Ok(());
    }
    let mountpoints: Vec<&String> = mountpoints.into_iter().collect();
    tracing::warn!("{FAULT_ENV}=untie-volumes: making {mountpoints:?} private after restore");
    let own = File::open("/proc/self/ns/mnt")
        .map_err(|e| RuntimeError::io("opening ferry's mount namespace", e))?;
    let theirs = File::open(format!("/proc/{pid}/ns/mnt"))
        .map_err(|e| RuntimeError::io(format!("opening the mount namespace of {pid}"), e))?;
    nix::sched::setns(theirs.as_fd(), nix::sched::CloneFlags::CLONE_NEWNS).map_err(|e| {
        RuntimeError::io(format!("entering the mount namespace of {pid}"), e.into())
    })?;
    let untied = (|| -> Result<()> {
        let root = File::open("/").map_err(|e| RuntimeError::io("opening the restored root", e))?;
        for mp in mountpoints {
            let rel = mountv2::content::unescape_name(mp.trim_matches('/'))
                .map_err(|e| RuntimeError::Invalid(format!("{mp}: {e}")))?;
            let Ok(m) = mountv2::sys::open_beneath(root.as_fd(), rel, rustix::fs::OFlags::PATH)
            else {
                continue;
            };
            mountv2::sys::set_propagation(m.as_fd(), mountv2::sys::PropagationType::Private)
                .map_err(|e| RuntimeError::io(format!("making {mp} private"), e))?;
        }
        Ok(())
    })();
    nix::sched::setns(own.as_fd(), nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| RuntimeError::io("returning to ferry's mount namespace", e.into()))?;
    untied
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_the_variable_nothing_is_touched() {
        // No process has pid -1: anything beyond the variable check would fail.
        if std::env::var_os(FAULT_ENV).is_none() {
            let vol = "/vol".to_string();
            assert!(untie_after_restore(-1, [&vol]).is_ok());
        }
    }
}
