//! Signals by number, as runc sends them: 0 (a liveness check that delivers nothing) and the
//! real-time signals, which nix's `Signal` and libcontainer cannot name. Named standard
//! signals go through [`Runtime::kill`].

use super::identity::init_identity_holds;
use super::state::status_name;
use super::Runtime;
use crate::error::{Result, RuntimeError};
use libcgroups::common::CgroupManager;
use libcontainer::container::ContainerStatus;
// nix's Signal: the type Runtime::kill passes on to libcontainer's Container::kill.
use nix::sys::signal::Signal;
use std::os::fd::AsRawFd;
use std::str::FromStr;

/// The first real-time signal a program may use: glibc keeps 32 and 33 for its threads, and
/// podman, Go and the shells count `RTMIN+n` from 34.
pub const SIGRTMIN: i32 = 34;
/// The last real-time signal of Linux.
pub const SIGRTMAX: i32 = 64;

/// Parse a signal as runc does, to its number: a number from 0 to 64, or a name with or
/// without `SIG`, any case. Real-time signals may also be named `RTMIN`, `RTMIN+n`, `RTMAX`
/// and `RTMAX-n` (runc 1.1 takes their numbers only; podman sends `RTMIN+3` to stop systemd).
pub fn parse_signal_number(s: &str) -> Result<i32> {
    let unknown = || {
        RuntimeError::Invalid(format!(
            "unknown signal {s:?}: use a name such as TERM or KILL, RTMIN+N, or a number from 0 to {SIGRTMAX}"
        ))
    };
    if let Ok(n) = s.parse::<i64>() {
        return match i32::try_from(n) {
            Ok(n) if (0..=SIGRTMAX).contains(&n) => Ok(n),
            _ => Err(unknown()),
        };
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let offset = |rest: &str| -> Option<i32> {
        if rest.is_empty() {
            return Some(0);
        }
        // A sign and decimal digits only: "+3", not "+ 3" or "++3".
        let digits = rest.get(1..)?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<i32>().ok()
    };
    let rt = if let Some(rest) = name.strip_prefix("RTMIN") {
        if !(rest.is_empty() || rest.starts_with('+')) {
            return Err(unknown());
        }
        offset(rest).and_then(|o| SIGRTMIN.checked_add(o))
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        if !(rest.is_empty() || rest.starts_with('-')) {
            return Err(unknown());
        }
        offset(rest).and_then(|o| SIGRTMAX.checked_sub(o))
    } else {
        return Signal::from_str(&format!("SIG{name}"))
            .map(|sig| sig as i32)
            .map_err(|_| unknown());
    };
    match rt {
        Some(n) if (SIGRTMIN..=SIGRTMAX).contains(&n) => Ok(n),
        _ => Err(unknown()),
    }
}

impl Runtime {
    /// `kill` with a signal number: a standard signal goes through [`Runtime::kill`]; 0 and
    /// the real-time signals reach the init (checked to be the container's own, through a
    /// pidfd) or, with `all`, every process of the container's cgroup.
    #[allow(unsafe_code)]
    pub fn kill_number(&self, id: &str, signo: i32, all: bool) -> Result<()> {
        if signo != 0 {
            if let Ok(sig) = Signal::try_from(signo) {
                return self.kill(id, sig, all);
            }
        }
        let (_lock, c) = self.open(id, true)?;
        let status = c.status();
        let signallable = match status {
            ContainerStatus::Created | ContainerStatus::Running | ContainerStatus::Paused => true,
            ContainerStatus::Stopped => all,
            ContainerStatus::Creating => false,
        };
        let stopped = || RuntimeError::NotRunning {
            op: "kill",
            id: id.into(),
            status: status_name(status).into(),
        };
        if !signallable {
            return Err(stopped());
        }
        let what = || format!("sending signal {signo} to container \"{id}\"");
        if all {
            let pids = self
                .cgroup_manager(&c)?
                .get_all_pids()
                .map_err(|e| RuntimeError::cgroup(what(), e))?;
            for pid in pids {
                // SAFETY: kill(2) has no memory preconditions.
                unsafe { libc::kill(pid.as_raw(), signo) };
            }
            return Ok(());
        }
        let raw = c.pid().map(|p| p.as_raw()).ok_or_else(stopped)?;
        let pid = rustix::process::Pid::from_raw(raw).ok_or_else(stopped)?;
        let pidfd = match rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::SRCH) => return Err(stopped()),
            Err(e) => return Err(RuntimeError::io(what(), e.into())),
        };
        // The descriptor names the process it was opened for even if its pid is reused, so
        // the check holds for the signal that follows.
        if !init_identity_holds(&self.container_dir(id), raw) {
            return Err(stopped());
        }
        // rustix's Signal cannot be 0; the system call takes any number.
        // SAFETY: pidfd_send_signal with a valid descriptor and no siginfo.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                pidfd.as_raw_fd(),
                signo,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ESRCH) {
                return Err(stopped());
            }
            return Err(RuntimeError::io(what(), e));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names() {
        for (s, n) in [
            ("0", 0),
            ("9", 9),
            ("34", 34),
            ("64", 64),
            ("TERM", 15),
            ("sigkill", 9),
            ("RTMIN", 34),
            ("RTMIN+3", 37),
            ("SIGRTMIN+3", 37),
            ("rtmin+3", 37),
            ("RTMAX-2", 62),
            ("SIGRTMAX", 64),
            ("RTMIN+30", 64),
        ] {
            assert_eq!(parse_signal_number(s).ok(), Some(n), "{s}");
        }
        for s in [
            "65",
            "-1",
            "99999999999999999999",
            "RTMIN+31",
            "RTMAX-31",
            "RTMIN-1",
            "RTMAX+1",
            "RTMIN+",
            "RTMIN++3",
            "RTMIN+ 3",
            "RTMINX",
            "NOPE",
            "",
            "SIG",
        ] {
            assert!(parse_signal_number(s).is_err(), "{s} must be refused");
        }
    }
}
