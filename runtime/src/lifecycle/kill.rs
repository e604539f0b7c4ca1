//! `kill`: signals to a container's init or every process of it.

use super::identity::init_identity_holds;
use super::state::status_name;
use super::Runtime;
use crate::error::{Result, RuntimeError};
use libcgroups::common::CgroupManager;
use libcontainer::container::{Container, ContainerStatus};
// nix's Signal: the type libcontainer's Container::kill takes.
use nix::sys::signal::Signal;
use std::str::FromStr;

/// Parse a signal as runc does: a number, or a name with or without `SIG`, any case.
pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n)
            .map_err(|_| RuntimeError::Invalid(format!("unknown signal {s:?}")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    Signal::from_str(&name).map_err(|_| RuntimeError::Invalid(format!("unknown signal {s:?}")))
}

impl Runtime {
    /// `kill`: send a signal to the init, or with `all` to every process of the container.
    pub fn kill(&self, id: &str, signal: Signal, all: bool) -> Result<()> {
        let (_lock, mut c) = match self.open(id, true) {
            Ok(x) => x,
            // What is in the cgroup of a container without a readable state can still be
            // reached, by the cgroup.
            Err(RuntimeError::CorruptState { .. }) if all => return self.kill_leftover(id, signal),
            Err(e) => return Err(e),
        };
        let status = c.status();
        let signallable = match status {
            ContainerStatus::Created | ContainerStatus::Running | ContainerStatus::Paused => true,
            // `kill --all` of a stopped container reaches processes its init left behind.
            ContainerStatus::Stopped => all,
            // Only a restore that was interrupted leaves `creating` with a pid: its tasks run.
            ContainerStatus::Creating => c.pid().is_some(),
        };
        if !signallable {
            return Err(RuntimeError::NotRunning {
                op: "kill",
                id: id.into(),
                status: status_name(status).into(),
            });
        }
        if !all {
            return self.signal_init(id, &c, status, signal);
        }
        if status == ContainerStatus::Creating {
            // libcontainer signals only containers it knows to be up (an interrupted restore
            // leaves one creating with its restored pid).
            c.set_status(ContainerStatus::Running);
        }
        // libcontainer signals the processes of the cgroup, which a reused pid is not in, and
        // records the container as stopped.
        c.kill(signal, all)
            .map_err(|e| RuntimeError::container(format!("signalling container \"{id}\""), e))?;
        // Loading refreshes the status from the init (alive: running); a created or paused
        // container that survived a non-fatal signal keeps its status.
        if status != ContainerStatus::Stopped {
            if let Ok(mut fresh) = Container::load(self.container_dir(id)) {
                if fresh.status() == ContainerStatus::Running {
                    if let Err(e) = fresh.set_status(status).save() {
                        tracing::warn!(
                            "container \"{id}\" stays recorded as running, not {}: {e}",
                            status_name(status)
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// Signal the init through a pidfd opened before its identity is checked: the descriptor
    /// keeps naming the process it was opened for even if that exits and its pid is reused,
    /// so nothing can slip between the check and the signal.
    fn signal_init(
        &self,
        id: &str,
        c: &Container,
        status: ContainerStatus,
        signal: Signal,
    ) -> Result<()> {
        use rustix::io::Errno;
        let stopped = || RuntimeError::NotRunning {
            op: "kill",
            id: id.into(),
            status: "stopped".into(),
        };
        let what = || format!("signalling container \"{id}\"");
        let raw = c.pid().map(|p| p.as_raw()).ok_or_else(stopped)?;
        let pid = rustix::process::Pid::from_raw(raw).ok_or_else(stopped)?;
        let dir = self.container_dir(id);
        let rustix_signal = || {
            rustix::process::Signal::from_named_raw(signal as i32)
                .ok_or_else(|| RuntimeError::Invalid(format!("signal {signal} cannot be sent")))
        };
        match rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
            Ok(pidfd) => {
                if !init_identity_holds(&dir, raw) {
                    return Err(stopped());
                }
                match rustix::process::pidfd_send_signal(&pidfd, rustix_signal()?) {
                    // Exited since the check: as kill(2) of a process that has just exited.
                    Ok(()) | Err(Errno::SRCH) => {}
                    Err(e) => return Err(RuntimeError::io(what(), e.into())),
                }
            }
            Err(Errno::SRCH) => return Err(stopped()),
            // A kernel before 5.3 has no pidfds: check, then signal by pid.
            Err(Errno::NOSYS) => {
                if !init_identity_holds(&dir, raw) {
                    return Err(stopped());
                }
                match rustix::process::kill_process(pid, rustix_signal()?) {
                    Ok(()) | Err(Errno::SRCH) => {}
                    Err(e) => return Err(RuntimeError::io(what(), e.into())),
                }
            }
            Err(e) => return Err(RuntimeError::io(what(), e.into())),
        }
        // A frozen task of a cgroup v1 freezer acts on SIGKILL only once thawed.
        if status == ContainerStatus::Paused
            && signal == Signal::SIGKILL
            && !matches!(
                libcgroups::common::get_cgroup_setup(),
                Ok(libcgroups::common::CgroupSetup::Unified)
            )
        {
            self.cgroup_manager(c)?
                .freeze(libcgroups::common::FreezerState::Thawed)
                .map_err(|e| {
                    RuntimeError::cgroup(format!("thawing container \"{id}\" for SIGKILL"), e)
                })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_number_or_name_in_any_case() {
        for (text, want) in [
            ("9", Signal::SIGKILL),
            ("KILL", Signal::SIGKILL),
            ("sigterm", Signal::SIGTERM),
            ("SigHup", Signal::SIGHUP),
            ("usr1", Signal::SIGUSR1),
        ] {
            assert_eq!(parse_signal(text).ok(), Some(want), "{text}");
        }
        for bad in ["", "0x9", "SIG", "NOPE", "999", "-1"] {
            let err = parse_signal(bad).expect_err(bad).to_string();
            assert!(err.contains("unknown signal"), "{bad}: {err}");
        }
    }
}
