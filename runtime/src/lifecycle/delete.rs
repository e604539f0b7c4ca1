//! `delete`: a container's cgroups, ferry's files and its state directory go; also what is
//! left of a container whose state cannot be read.

use super::state::status_name;
use super::{poststop, Runtime, EXTRA_CGROUPS};
use crate::error::{Result, RuntimeError};
use crate::lock::StateLock;
use libcgroups::common::CgroupManager;
use libcontainer::container::{Container, ContainerStatus};
// nix's Signal: the type libcontainer's Container::kill takes (`kill --all` of a leftover too).
use nix::sys::signal::Signal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Cgroups outside libcontainer's care that a restore put the container in (one path a line).
fn remove_extra_cgroups(list: &str) {
    for cg in list.lines().filter(|l| l.starts_with("/sys/fs/cgroup/")) {
        match std::fs::remove_dir(cg) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!("leaving cgroup {cg}: {e}");
            }
            _ => {}
        }
    }
}

/// Signal a process found in a container's cgroup; one that has exited meanwhile needs
/// nothing. nix's kill: `pid` is libcgroups' (CgroupManager::get_all_pids), `signal` the one
/// libcontainer's Container::kill takes.
fn signal_leftover(pid: nix::unistd::Pid, signal: Signal) {
    match nix::sys::signal::kill(pid, signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(e) => tracing::warn!("sending {signal} to process {pid}: {e}"),
    }
}

/// How long a delete waits for the processes it killed to leave the container's cgroup.
const KILLED_PROCESSES_WAIT: Duration = Duration::from_secs(10);

/// SIGKILL every process in the cgroup of `m` and wait (bounded) until the cgroup is empty, so
/// that removing it does not fail on processes still on their way out. A cgroup that cannot
/// be read (already removed) counts as empty.
fn kill_and_wait_until_empty(m: &libcgroups::common::AnyCgroupManager, id: &str) {
    let deadline = Instant::now() + KILLED_PROCESSES_WAIT;
    loop {
        let pids = match m.get_all_pids() {
            Ok(p) if !p.is_empty() => p,
            _ => return,
        };
        for pid in &pids {
            signal_leftover(*pid, Signal::SIGKILL);
        }
        // Tasks frozen by a cgroup v1 freezer die of their SIGKILL only once thawed.
        if let Err(e) = m.freeze(libcgroups::common::FreezerState::Thawed) {
            tracing::debug!("thawing container \"{id}\" to let it die: {e}");
        }
        if Instant::now() >= deadline {
            tracing::warn!(
                "{} process(es) of container \"{id}\" still in its cgroup {:?} after SIGKILL",
                pids.len(),
                KILLED_PROCESSES_WAIT
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Runtime {
    /// `delete`: remove a stopped (or, with `force`, any) container and its cgroup.
    /// `force` on a missing container succeeds, as engines rely on; `force` also removes what
    /// is left of a container whose state is missing or unreadable.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let (_lock, mut c) = match self.open(id, true) {
            Ok(x) => x,
            Err(RuntimeError::NotFound(_) | RuntimeError::CorruptState { .. }) if force => {
                return self.delete_leftover(id)
            }
            Err(e) => return Err(e),
        };
        let status = c.status();
        // `creating` after loading: an interrupted restore whose task lives.
        if !force
            && matches!(
                status,
                ContainerStatus::Running | ContainerStatus::Paused | ContainerStatus::Creating
            )
        {
            return Err(RuntimeError::WrongState {
                op: "delete",
                id: id.into(),
                status: status_name(status).into(),
                hint: "stop it first with `ferry kill`, or use `ferry delete --force`",
            });
        }
        self.remove_container(id, &mut c, force)
    }

    /// Remove a container that is stopped (or, with `force`, kill it first): its cgroups in
    /// every hierarchy, ferry's files for it and its state directory. `delete`, and
    /// `checkpoint` once the container's tasks are dumped, end here; the caller holds the
    /// container's lock.
    pub(crate) fn remove_container(&self, id: &str, c: &mut Container, force: bool) -> Result<()> {
        let dir = self.container_dir(id);
        // libcontainer's delete ends in a recursive removal of the directory: unmount what is
        // below it first, so that the removal cannot reach into a mount.
        crate::cleanup::prepare_delete(&dir)?;
        let extra_cgroups = std::fs::read_to_string(dir.join(EXTRA_CGROUPS)).unwrap_or_default();
        // libcontainer kills what is left and then gives the cgroup about 100 ms to empty, which
        // a loaded machine exceeds: kill first and wait for the processes to be gone, as runc does.
        if let Ok(m) = self.cgroup_manager(c) {
            kill_and_wait_until_empty(&m, id);
        }
        if let Err(e) = poststop::delete_despite_poststop_failure(c, force, id) {
            let e = RuntimeError::container(format!("deleting container \"{id}\""), e);
            if !force {
                return Err(e);
            }
            // A forced delete must not be stopped by a torn file beside the state (the
            // container's youki_config.json, say): remove the rest by the cgroup.
            tracing::warn!("{e}: removing what is left of it");
            return self.remove_leftover(id, c.systemd());
        }
        remove_extra_cgroups(&extra_cgroups);
        self.remove_shadow_bundle(id);
        if let Err(e) = crate::cleanup::remove_state_path(&self.root, &dir) {
            tracing::warn!("{e}");
        }
        Ok(())
    }

    /// The cgroup of a container whose state cannot be read: the one its youki_config.json
    /// names, else the one ferry gives a config that names none.
    fn leftover_cgroup_manager(
        &self,
        id: &str,
        systemd: bool,
    ) -> Result<libcgroups::common::AnyCgroupManager> {
        let cgroup_path = libcontainer::config::YoukiConfig::load(self.container_dir(id))
            .map(|c| c.cgroup_path)
            .unwrap_or_else(|_| PathBuf::from(crate::cgroup_paths::container_cgroup(None, id)));
        libcgroups::common::create_cgroup_manager(libcgroups::common::CgroupConfig {
            cgroup_path,
            systemd_cgroup: systemd,
            container_name: id.to_string(),
        })
        .map_err(|e| RuntimeError::cgroup(format!("cgroups of container \"{id}\""), e))
    }

    /// `kill --all` of a container whose state cannot be read: every process of its cgroup.
    pub(super) fn kill_leftover(&self, id: &str, signal: Signal) -> Result<()> {
        let _lock = StateLock::lock_dir(&self.container_dir(id), true)
            .map_err(|e| RuntimeError::io(format!("locking container \"{id}\""), e))?;
        let m = self.leftover_cgroup_manager(id, self.systemd_cgroup)?;
        for pid in m.get_all_pids().unwrap_or_default() {
            signal_leftover(pid, signal);
        }
        Ok(())
    }

    /// `delete --force` of a container whose state is missing or unreadable (a crash while
    /// it was written, a create that died half-way): kill what is in its cgroup, remove the
    /// cgroup and what is left of its directory.
    fn delete_leftover(&self, id: &str) -> Result<()> {
        let dir = self.container_dir(id);
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(RuntimeError::Invalid(format!(
                    "{} is not a container's state directory: ferry leaves it alone; remove it by hand if it is not wanted",
                    dir.display()
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(RuntimeError::io(format!("reading {}", dir.display()), e)),
        }
        let _lock = StateLock::lock_dir(&dir, true)
            .map_err(|e| RuntimeError::io(format!("locking {}", dir.display()), e))?;
        tracing::warn!("container \"{id}\" has no readable state: removing what is left of it");
        self.remove_leftover(id, self.systemd_cgroup)
    }

    /// Kill what is in the cgroup of container `id`, remove the cgroup and the container's
    /// directory; the caller holds the directory's lock.
    fn remove_leftover(&self, id: &str, systemd: bool) -> Result<()> {
        let dir = self.container_dir(id);
        crate::cleanup::prepare_delete(&dir)?;
        let m = self.leftover_cgroup_manager(id, systemd)?;
        kill_and_wait_until_empty(&m, id);
        m.remove().map_err(|e| {
            RuntimeError::cgroup(format!("removing the cgroup of container \"{id}\""), e)
        })?;
        remove_extra_cgroups(&std::fs::read_to_string(dir.join(EXTRA_CGROUPS)).unwrap_or_default());
        self.remove_shadow_bundle(id);
        crate::cleanup::remove_state_path(&self.root, &dir)
    }
}
