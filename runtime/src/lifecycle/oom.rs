//! `linux.resources.memory.disableOOMKiller`, as runc applies it on cgroup v1: libcontainer
//! passes "enabled" to the memory controller at create and at update whatever the spec says,
//! so ferry writes the spec's choice to memory.oom_control itself once the init is in its
//! cgroup, and keeps it across `update`. cgroup v2 has no such switch; runc ignores the field
//! there, and so does ferry.

use crate::error::{Result, RuntimeError};
use oci_spec::runtime::{LinuxResources, Spec};
use std::path::PathBuf;

/// The v1 memory cgroup directory of process `pid`, or `None` when there is no v1 memory
/// hierarchy (a cgroup v2 host) or the process is gone.
fn memory_cgroup_dir(pid: i32) -> Option<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    // Lines are "ID:CONTROLLERS:PATH"; the memory controller may share a line with others.
    let path = text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == "memory")
            .then(|| path.to_string())
    })?;
    let mount =
        libcgroups::v1::util::get_subsystem_mount_point(&libcgroups::v1::ControllerType::Memory)
            .ok()?;
    Some(mount.join(path.trim_start_matches('/')))
}

/// Whether the OOM killer is disabled for the memory cgroup of `pid` (`oom_kill_disable 1`
/// in memory.oom_control); `None` when it cannot be read.
fn oom_killer_disabled(pid: i32) -> Option<bool> {
    let file = memory_cgroup_dir(pid)?.join("memory.oom_control");
    let text = std::fs::read_to_string(file).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill_disable "))
        .map(|v| v.trim() == "1")
}

/// At create: disable the OOM killer of the container's memory cgroup when the spec asks.
pub(super) fn apply_at_create(spec: &Spec, pid: i32) -> Result<()> {
    let wanted = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.memory().as_ref())
        .and_then(|m| m.disable_oom_killer())
        .unwrap_or(false);
    if !wanted {
        return Ok(());
    }
    let Some(dir) = memory_cgroup_dir(pid) else {
        tracing::warn!("disableOOMKiller is ignored: there is no cgroup v1 memory controller");
        return Ok(());
    };
    let file = dir.join("memory.oom_control");
    std::fs::write(&file, "1").map_err(|e| {
        RuntimeError::io(
            format!(
                "disabling the OOM killer (linux.resources.memory.disableOOMKiller) in {}",
                file.display()
            ),
            e,
        )
    })
}

/// The `disable_oom_killer` to hand libcontainer at `update`, which writes it whenever the
/// update has memory settings: what the update says, else what the cgroup has now (as set
/// at create), so an update of the memory limit does not turn the OOM killer back on.
pub(super) fn disable_at_update(resources: &LinuxResources, pid: Option<i32>) -> bool {
    resources
        .memory()
        .as_ref()
        .and_then(|m| m.disable_oom_killer())
        .or_else(|| pid.and_then(oom_killer_disabled))
        .unwrap_or(false)
}
