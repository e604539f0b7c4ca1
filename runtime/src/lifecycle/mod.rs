//! runc's lifecycle over libcontainer: create, start, run, state, list, kill, delete, exec, ps,
//! pause, resume, update, events. libcontainer does the kernel work; this module owns the
//! contract engines depend on: bundle checks with useful messages, the per-container lock,
//! runc's state JSON, foreground waiting with signal forwarding, and exit codes.

use crate::error::{Result, RuntimeError};
use crate::lock::StateLock;
use identity::init_identity_holds;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;
use std::path::PathBuf;

mod bundle;
mod create;
mod delete;
mod exec;
mod exec_rules;
mod foreground;
#[cfg(test)]
mod fuzz;
mod identity;
mod kill;
mod oom;
mod poststop;
mod resources;
mod signal_number;
mod state;

pub use bundle::load_bundle_spec;
pub(crate) use bundle::{record_user_bundle, user_bundle};
pub use create::{CreateOptions, SpawnOptions};
pub use exec::ExecOptions;
pub use foreground::wait_foreground;
pub use kill::parse_signal;
pub use signal_number::{parse_signal_number, SIGRTMAX, SIGRTMIN};
pub use state::RuncState;

/// In a container's state directory: cgroup directories outside the hierarchies libcontainer
/// manages (a checkpoint from runc brings its own unified cgroup), removed at delete.
pub const EXTRA_CGROUPS: &str = "ferry-extra-cgroups";

/// Where container state lives and how cgroups are driven.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub root: PathBuf,
    pub systemd_cgroup: bool,
}

/// Container ids become directory names: refuse anything that could escape the state root.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::InvalidId(id.to_string()))
    }
}

fn require_root(what: &'static str) -> Result<()> {
    if rustix::process::geteuid().is_root() {
        Ok(())
    } else {
        Err(RuntimeError::Privilege(what))
    }
}

impl Runtime {
    fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// The state root is root's alone (0700, as runc makes it): states name pids, bundles and
    /// annotations that are no other user's business.
    pub(crate) fn ensure_root(&self) -> Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .map_err(|e| {
                RuntimeError::io(format!("creating state root {}", self.root.display()), e)
            })
    }

    /// Load a container under its lock.
    fn open(&self, id: &str, exclusive: bool) -> Result<(StateLock, Container)> {
        validate_id(id)?;
        let lock = StateLock::container(&self.root, id, exclusive)?;
        let c = self.load_container(id)?;
        Ok((lock, c))
    }

    /// Load container `id` (the caller holds its lock), believing its pid only while it still
    /// names the recorded init. When the init is gone and its pid was given to another
    /// process, the container is stopped; forgetting the pid (in memory) makes libcontainer's
    /// own status refresh in kill and delete agree, so the other process is never touched.
    pub(crate) fn load_container(&self, id: &str) -> Result<Container> {
        let dir = self.container_dir(id);
        let mut c = Container::load(dir.clone()).map_err(|e| RuntimeError::CorruptState {
            id: id.into(),
            path: dir.join("state.json"),
            source: Box::new(e),
        })?;
        if let Some(pid) = c.pid() {
            if !init_identity_holds(&dir, pid.as_raw()) {
                tracing::debug!(
                    "pid {pid} of container \"{id}\" now names another process: the init is gone"
                );
                c.state.pid = None;
                c.set_status(ContainerStatus::Stopped);
            }
        }
        Ok(c)
    }

    /// libcontainer's builder for container `id` under this state root, as create and exec
    /// both start it.
    fn builder(&self, id: &str, what: &str, spawn: &SpawnOptions) -> Result<ContainerBuilder> {
        ContainerBuilder::new(id.to_string(), SyscallType::default())
            .with_executor(DefaultExecutor {})
            .with_root_path(&self.root)
            .map_err(|e| RuntimeError::container(what, e))?
            .with_pid_file(spawn.pid_file.as_ref())
            .map_err(|e| RuntimeError::container(what, e))?
            .with_console_socket(spawn.console_socket.as_ref())
            .with_preserved_fds(spawn.preserve_fds)
            .validate_id()
            .map_err(|e| RuntimeError::container(what, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_names_that_stay_in_the_state_root() {
        for good in ["c1", "a.b", "x_y-z+1", "A", &"x".repeat(1024)] {
            assert!(validate_id(good).is_ok(), "{good:?} refused");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "../x",
            "a b",
            "ferry:internal",
            "é",
            "a\0b",
            &"x".repeat(1025),
        ] {
            assert!(
                matches!(validate_id(bad), Err(RuntimeError::InvalidId(_))),
                "{bad:?} accepted"
            );
        }
    }
}
