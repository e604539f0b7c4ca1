//! `create` and `start` (`run` is both).

use super::state::status_name;
use super::{
    load_bundle_spec, oom, record_user_bundle, require_root, validate_id, Runtime, EXTRA_CGROUPS,
};
use crate::error::{Result, RuntimeError};
use crate::lock::StateLock;
use libcontainer::container::{Container, ContainerStatus};
use std::path::PathBuf;

/// Options `create` and `exec` share: how the new process is handed over to the caller.
#[derive(Debug, Clone, Default)]
pub struct SpawnOptions {
    /// Where the new process's pid is written.
    pub pid_file: Option<PathBuf>,
    /// The socket that receives the pseudo-terminal's master, for a process with a terminal.
    pub console_socket: Option<PathBuf>,
    /// How many descriptors after stdio (3 and up) the process keeps.
    pub preserve_fds: i32,
}

/// Options of `create` and `run`.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub bundle: PathBuf,
    pub spawn: SpawnOptions,
    pub no_pivot: bool,
    /// `run` without `--detach`: the caller waits for the init and shares its stdio.
    pub foreground: bool,
    /// Keep the caller's session keyring instead of making `_ses.<id>`.
    pub no_new_keyring: bool,
}

impl Runtime {
    /// `create`: set up the container and leave its init waiting for `start`. Returns the
    /// init's pid.
    pub fn create(&self, id: &str, opts: &CreateOptions) -> Result<i32> {
        validate_id(id)?;
        require_root("creating containers")?;
        let spec = load_bundle_spec(&opts.bundle)?;
        self.ensure_root()?;
        // Two creates of one id must not both pass libcontainer's exists-then-mkdir check.
        let _root_lock = StateLock::lock_dir(&self.root, true)
            .map_err(|e| RuntimeError::io(format!("locking {}", self.root.display()), e))?;
        if self.container_dir(id).exists() {
            return Err(RuntimeError::Exists(id.to_string()));
        }
        let bundle = std::fs::canonicalize(&opts.bundle).map_err(|e| {
            RuntimeError::io(format!("resolving bundle {}", opts.bundle.display()), e)
        })?;
        let what = format!("creating container \"{id}\"");
        let config_bundle = self.compatible_bundle(id, &bundle)?;
        // libcontainer sets rootfsPropagation recursively and ignores the propagation options
        // of bind mounts: ferry gives the mounts runc's ties before the process starts.
        crate::rootfs_mounts::prepare(&spec, &bundle)?;
        let propagation = crate::propagation::plan_for_bundle(&spec, &bundle)?;
        let builder = self.builder(id, &what, &opts.spawn)?;
        if !opts.no_new_keyring {
            crate::keyring::new_for_container(id, &spec)?;
        }
        let init_report = crate::rootfs_mounts::InitReport::arm()?;
        let entered = self.enter_unmanaged_cgroups(id, &spec)?;
        let container = builder
            .as_init(config_bundle.as_ref().unwrap_or(&bundle))
            .with_systemd(self.systemd_cgroup)
            // libcontainer uses `detach` only to decide whether a terminal needs a console
            // socket: in the foreground without one, the init keeps ferry's own stdio.
            .with_detach(!opts.foreground || opts.spawn.console_socket.is_some())
            .with_no_pivot(opts.no_pivot)
            .build();
        entered.leave();
        let container = match container {
            Ok(c) => c,
            Err(e) => {
                // libcontainer leaves a half-made state directory behind on some failures;
                // remove it so that the id can be used again.
                self.cleanup_failed_create(id);
                entered.remove();
                if let Some(report) = init_report.take(&spec) {
                    return Err(RuntimeError::Invalid(format!("{what}: {report}")));
                }
                return Err(RuntimeError::container(&what, e));
            }
        };
        if !entered.dirs.is_empty() {
            let list: Vec<String> = entered
                .dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect();
            std::fs::write(self.container_dir(id).join(EXTRA_CGROUPS), list.join("\n"))
                .map_err(|e| RuntimeError::io(format!("recording the cgroups of \"{id}\""), e))?;
        }
        if config_bundle.is_some() {
            // libcontainer's state keeps naming the config it runs (exec reads the cgroup path
            // and the process from it); `state` reports the user's bundle, as runc's does.
            record_user_bundle(&self.container_dir(id), &bundle)?;
        }
        let pid = container
            .pid()
            .map(|p| p.as_raw())
            .ok_or_else(|| RuntimeError::NoInitPid(id.to_string()))?;
        if let Err(e) = self.finish_create(id, pid, &opts.bundle, &propagation) {
            self.cleanup_failed_create(id);
            return Err(e);
        }
        Ok(pid)
    }

    /// Named cgroup hierarchies and the unified one of a hybrid host: the init starts in the
    /// container's own cgroup there, as with runc (libcontainer does the others).
    fn enter_unmanaged_cgroups(
        &self,
        id: &str,
        spec: &oci_spec::runtime::Spec,
    ) -> Result<crate::cgroup_paths::Entered> {
        if self.systemd_cgroup {
            return Ok(crate::cgroup_paths::Entered::default());
        }
        crate::cgroup_paths::enter_unmanaged(&crate::cgroup_paths::container_cgroup(
            spec.linux()
                .as_ref()
                .and_then(|l| l.cgroups_path().as_deref()),
            id,
        ))
    }

    /// After libcontainer made the container: its init's identity, runc's mount ties, and
    /// what runc sets up and libcontainer does not (`lo` of a new network namespace,
    /// disableOOMKiller). The caller undoes the create when this fails.
    fn finish_create(
        &self,
        id: &str,
        pid: i32,
        bundle: &std::path::Path,
        propagation: &[crate::propagation::Fix],
    ) -> Result<()> {
        self.record_init(&self.container_dir(id), pid)?;
        crate::propagation::apply(pid, propagation)?;
        let spec = load_bundle_spec(bundle)?;
        crate::netns::bring_up_loopback_if_new(&spec, pid)?;
        oom::apply_at_create(&spec, pid)
    }

    fn cleanup_failed_create(&self, id: &str) {
        self.remove_shadow_bundle(id);
        let dir = self.container_dir(id);
        // libcontainer's delete removes the directory recursively: only with nothing mounted.
        if let Err(e) = crate::cleanup::prepare_delete(&dir) {
            tracing::warn!("leaving the state of the failed create of \"{id}\": {e}");
            return;
        }
        // A create that failed before libcontainer wrote the state has none to load.
        if dir.join("state.json").exists() {
            if let Ok(mut c) = Container::load(dir.clone()) {
                if let Err(e) = c.delete(true) {
                    tracing::warn!("undoing the failed create of \"{id}\": {e}");
                }
            }
        }
        if let Err(e) = crate::cleanup::remove_state_path(&self.root, &dir) {
            tracing::warn!("{e}");
        }
    }

    /// `start`: let a created container's init run its program.
    pub fn start(&self, id: &str) -> Result<()> {
        let (_lock, mut c) = self.open(id, true)?;
        if c.status() != ContainerStatus::Created {
            return Err(RuntimeError::WrongState {
                op: "start",
                id: id.into(),
                status: status_name(c.status()).into(),
                hint:
                    "only a created container can be started; use `ferry run` to create and start",
            });
        }
        c.start()
            .map_err(|e| RuntimeError::container(format!("starting container \"{id}\""), e))
    }
}
