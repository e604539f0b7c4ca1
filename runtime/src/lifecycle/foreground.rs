//! Waiting in the foreground for a container's init or an exec'd process.

use crate::error::{Result, RuntimeError};
// nix for the signal mask and sigwait, which rustix has no safe wrapper for; the signal
// sigwait returns is forwarded with nix's kill as it is.
use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// Wait for a child (the container's init or an exec'd process) while forwarding the signals
/// a runtime in the foreground forwards; returns the exit status the shell would report.
pub fn wait_foreground(pid: i32) -> Result<i32> {
    use nix::sys::signal::{kill, SigSet};
    use rustix::io::Errno;
    use rustix::process::{wait, WaitOptions};
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
            // Any child, as waitpid(-1): rustix's waitpid(None) is waitpid(0), ferry's process
            // group only, which a container's process is not in (it starts its own session).
            match wait(WaitOptions::NOHANG) {
                Ok(Some((p, status))) if p.as_raw_nonzero().get() == pid => {
                    if let Some(code) = status.exit_status() {
                        return Ok(code);
                    }
                    if let Some(sig) = status.terminating_signal() {
                        return Ok(128 + sig);
                    }
                }
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(Errno::CHILD) => {
                    return Err(RuntimeError::Invalid(format!(
                        "process {pid} is not a child of ferry; cannot wait for it"
                    )))
                }
                Err(Errno::INTR) => continue,
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
