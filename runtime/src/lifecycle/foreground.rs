//! Waiting in the foreground for a container's init or an exec'd process.

use crate::error::{Result, RuntimeError};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// Wait for a child (the container's init or an exec'd process) while forwarding the signals
/// a runtime in the foreground forwards; returns the exit status the shell would report.
pub fn wait_foreground(pid: i32) -> Result<i32> {
    use nix::sys::signal::{kill, SigSet};
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let target = Pid::from_raw(pid);
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        set.add(s);
    }
    set.thread_block()
        .map_err(|e| RuntimeError::io("blocking signals", e.into()))?;
    loop {
        // Reap first: the child may have exited before the signals were blocked.
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p == target => return Ok(code),
                Ok(WaitStatus::Signaled(p, sig, _)) if p == target => return Ok(128 + sig as i32),
                Ok(WaitStatus::StillAlive) => break,
                Ok(_) => continue,
                Err(nix::errno::Errno::ECHILD) => {
                    return Err(RuntimeError::Invalid(format!(
                        "process {pid} is not a child of ferry; cannot wait for it"
                    )))
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(RuntimeError::io("waiting for the container", e.into())),
            }
        }
        match set.wait() {
            Ok(Signal::SIGCHLD) => continue,
            Ok(sig) => {
                // A child that exited meanwhile (ESRCH) is reaped on the next round.
                if let Err(e) = kill(target, sig) {
                    tracing::debug!("forwarding {sig} to process {target}: {e}");
                }
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(RuntimeError::io("waiting for signals", e.into())),
        }
    }
}
