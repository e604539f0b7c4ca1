//! `exec`: a new process in a running container.

use super::state::status_name;
use super::{exec_rules, load_bundle_spec, require_root, Runtime, SpawnOptions, EXTRA_CGROUPS};
use crate::error::{Result, RuntimeError};
use libcontainer::container::{Container, ContainerStatus};
use std::path::PathBuf;

/// Options of `exec`.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub process: Option<PathBuf>,
    pub args: Vec<String>,
    pub tty: bool,
    pub spawn: SpawnOptions,
    pub detach: bool,
    pub cwd: Option<PathBuf>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    /// AppArmor profile of the process (`--apparmor`).
    pub apparmor: Option<String>,
    /// SELinux label of the process (`--process-label`).
    pub process_label: Option<String>,
    /// `--ignore-paused`: refused with a clear message for a paused container.
    pub ignore_paused: bool,
}

impl Runtime {
    /// `exec`: start a process in a running container; returns its pid. Not detached, the
    /// caller waits for it ([`wait_foreground`]).
    pub fn exec(&self, id: &str, opts: &ExecOptions) -> Result<i32> {
        require_root("exec")?;
        let what = format!("executing in container \"{id}\"");
        let process_file;
        {
            let (_lock, c) = self.open(id, false)?;
            exec_rules::check_paused(id, c.status(), opts.ignore_paused)?;
            let paused_ok = opts.ignore_paused && c.status() == ContainerStatus::Paused;
            if !matches!(c.status(), ContainerStatus::Running) && !paused_ok {
                return Err(RuntimeError::NotRunning {
                    op: "exec in",
                    id: id.into(),
                    status: status_name(c.status()).into(),
                });
            }
            process_file = self.exec_process_file(&c, opts)?;
        }
        // The process joins the container's cgroups that libcontainer does not manage (named
        // hierarchies, the unified one of a hybrid host), as runc's exec does.
        let joined: Vec<PathBuf> =
            std::fs::read_to_string(self.container_dir(id).join(EXTRA_CGROUPS))
                .unwrap_or_default()
                .lines()
                .filter(|l| l.starts_with("/sys/fs/cgroup/"))
                .map(PathBuf::from)
                .filter(|d| d.is_dir())
                .collect();
        crate::keyring::join_for_exec(id)?;
        let entered = crate::cgroup_paths::enter(joined)?;
        let builder = self.builder(id, &what, &opts.spawn)?;
        let pid = builder
            .as_tenant()
            .with_ignore_paused(opts.ignore_paused)
            // libcontainer only uses `detach` to insist on a console socket for a terminal;
            // whether ferry waits is decided by the caller.
            .with_detach(opts.spawn.console_socket.is_some())
            .with_process(Some(process_file.path()))
            .build();
        entered.leave();
        drop(process_file);
        pid.map(|p| p.as_raw())
            .map_err(|e| RuntimeError::container(&what, e))
    }

    /// The process an exec runs, as a process.json: the given file, or the container's own
    /// process with the command-line overrides (runc's semantics for inline arguments).
    fn exec_process_file(
        &self,
        c: &Container,
        opts: &ExecOptions,
    ) -> Result<tempfile::NamedTempFile> {
        let mut process: serde_json::Value = if let Some(p) = &opts.process {
            let text = std::fs::read(p).map_err(|e| {
                RuntimeError::io(format!("reading process file {}", p.display()), e)
            })?;
            serde_json::from_slice(&text).map_err(|e| {
                RuntimeError::Invalid(format!("process file {} is malformed: {e}", p.display()))
            })?
        } else {
            if opts.args.is_empty() {
                return Err(RuntimeError::Invalid(
                    "exec needs a command: `ferry exec ID CMD [ARGS...]` or --process FILE".into(),
                ));
            }
            let spec = load_bundle_spec(c.bundle())?;
            let mut p = serde_json::to_value(spec.process())
                .map_err(|e| RuntimeError::encode("process", e))?;
            p["args"] = serde_json::json!(opts.args);
            p["terminal"] = serde_json::json!(opts.tty);
            if let Some(obj) = p.as_object_mut() {
                obj.remove("consoleSize");
            }
            p
        };
        let obj = process
            .as_object_mut()
            .ok_or_else(|| RuntimeError::Invalid("the process must be a JSON object".into()))?;
        if opts.tty {
            obj.insert("terminal".into(), true.into());
        }
        if let Some(cwd) = &opts.cwd {
            obj.insert("cwd".into(), cwd.display().to_string().into());
        }
        if !opts.env.is_empty() {
            let mut env: Vec<String> = obj
                .get("env")
                .and_then(|e| serde_json::from_value(e.clone()).ok())
                .unwrap_or_default();
            for kv in &opts.env {
                let key = kv.split('=').next().unwrap_or(kv);
                env.retain(|e| e.split('=').next() != Some(key));
                env.push(kv.clone());
            }
            obj.insert("env".into(), serde_json::json!(env));
        }
        exec_rules::apply(obj, opts)?;
        if opts.no_new_privs {
            obj.insert("noNewPrivileges".into(), true.into());
        }
        // As runc: a capability name it does not know is ignored, with a warning.
        let unknown = crate::spec_check::drop_unknown_capabilities(&mut process);
        if !unknown.is_empty() {
            tracing::warn!(
                "ignoring unknown or unavailable capabilities: {}",
                unknown.join(", ")
            );
        }
        let file = tempfile::Builder::new()
            .prefix("exec-process-")
            .suffix(".json")
            .tempfile_in(self.container_dir(c.id()))
            .map_err(|e| RuntimeError::io("writing the exec process file", e))?;
        serde_json::to_writer(file.as_file(), &process)
            .map_err(|e| RuntimeError::io("writing the exec process file", e.into()))?;
        Ok(file)
    }
}
