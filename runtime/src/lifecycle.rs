//! runc's lifecycle over libcontainer: create, start, run, state, list, kill, delete, exec, ps,
//! pause, resume, update, events. libcontainer does the kernel work; this module owns the
//! contract engines depend on: bundle checks with useful messages, the per-container lock,
//! runc's state JSON, foreground waiting with signal forwarding, and exit codes.

use crate::error::{Result, RuntimeError};
use crate::lock::StateLock;
use libcgroups::common::{CgroupManager, ControllerOpt};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxResources, Spec};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// In a container's state directory: cgroup directories outside the hierarchies libcontainer
/// manages (a checkpoint from runc brings its own unified cgroup), removed at delete.
pub const EXTRA_CGROUPS: &str = "ferry-extra-cgroups";

/// Where container state lives and how cgroups are driven.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub root: PathBuf,
    pub systemd_cgroup: bool,
}

/// Options of `create` and `run`.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub bundle: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub preserve_fds: i32,
    /// `run` without `--detach`: the caller waits for the init and shares its stdio.
    pub foreground: bool,
}

/// Options of `exec`.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub process: Option<PathBuf>,
    pub args: Vec<String>,
    pub tty: bool,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub detach: bool,
    pub cwd: Option<PathBuf>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub preserve_fds: i32,
}

/// runc's `state` output (also the elements of `list --format json`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuncState {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<HashMap<String, String>>,
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

fn status_name(s: ContainerStatus) -> &'static str {
    match s {
        ContainerStatus::Creating => "creating",
        ContainerStatus::Created => "created",
        ContainerStatus::Running => "running",
        ContainerStatus::Stopped => "stopped",
        ContainerStatus::Paused => "paused",
    }
}

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

/// Read and check a bundle's config.json before libcontainer sees it, so that a missing or
/// malformed file gets a message naming the file, the field and the fix.
pub fn load_bundle_spec(bundle: &Path) -> Result<Spec> {
    let meta = std::fs::metadata(bundle).map_err(|e| RuntimeError::Bundle {
        path: bundle.to_path_buf(),
        reason: format!("{e}: pass an existing OCI bundle directory with --bundle"),
    })?;
    if !meta.is_dir() {
        return Err(RuntimeError::Bundle {
            path: bundle.to_path_buf(),
            reason: "not a directory: --bundle names the directory holding config.json".into(),
        });
    }
    let cfg = bundle.join("config.json");
    let text = std::fs::read(&cfg).map_err(|e| RuntimeError::Bundle {
        path: bundle.to_path_buf(),
        reason: if e.kind() == std::io::ErrorKind::NotFound {
            "config.json does not exist in it: create one with `ferry spec` in the bundle".into()
        } else {
            format!("reading config.json: {e}")
        },
    })?;
    // The path of the offending field (`process.args`) tells the user where to look.
    let mut de = serde_json::Deserializer::from_slice(&text);
    let spec: Spec =
        serde_path_to_error::deserialize(&mut de).map_err(|e| RuntimeError::MalformedConfig {
            path: bundle.to_path_buf(),
            reason: match e.path().to_string().as_str() {
                "." => e.inner().to_string(),
                field => format!("field {field}: {}", e.inner()),
            },
        })?;
    if !spec.version().starts_with("1.") {
        return Err(RuntimeError::MalformedConfig {
            path: bundle.to_path_buf(),
            reason: format!(
                "ociVersion {:?} is not supported: ferry runs runtime-spec 1.x configs",
                spec.version()
            ),
        });
    }
    let Some(root) = spec.root() else {
        return Err(RuntimeError::MalformedConfig {
            path: bundle.to_path_buf(),
            reason: "missing field `root`: set root.path to the container's root filesystem".into(),
        });
    };
    let rootfs = bundle.join(root.path());
    if !rootfs.is_dir() {
        return Err(RuntimeError::MalformedConfig {
            path: bundle.to_path_buf(),
            reason: format!(
                "root.path {} does not exist or is not a directory",
                rootfs.display()
            ),
        });
    }
    if spec
        .process()
        .as_ref()
        .is_none_or(|p| p.args().as_ref().is_none_or(|a| a.is_empty()))
    {
        return Err(RuntimeError::MalformedConfig {
            path: bundle.to_path_buf(),
            reason: "process.args is missing or empty: name the program the container runs".into(),
        });
    }
    Ok(spec)
}

fn require_root(what: &'static str) -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(RuntimeError::Privilege(what))
    }
}

impl Runtime {
    fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    fn ensure_root(&self) -> Result<()> {
        std::fs::create_dir_all(&self.root).map_err(|e| {
            RuntimeError::io(format!("creating state root {}", self.root.display()), e)
        })
    }

    /// Load a container under its lock.
    fn open(&self, id: &str, exclusive: bool) -> Result<(StateLock, Container)> {
        validate_id(id)?;
        let lock = StateLock::container(&self.root, id, exclusive)?;
        let c = Container::load(self.container_dir(id))
            .map_err(|e| RuntimeError::container(format!("loading container \"{id}\""), e))?;
        Ok((lock, c))
    }

    /// `create`: set up the container and leave its init waiting for `start`. Returns the
    /// init's pid.
    pub fn create(&self, id: &str, opts: &CreateOptions) -> Result<i32> {
        validate_id(id)?;
        require_root("creating containers")?;
        load_bundle_spec(&opts.bundle)?;
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
        let builder = self.builder(
            id,
            &what,
            opts.pid_file.as_ref(),
            opts.console_socket.as_ref(),
            opts.preserve_fds,
        )?;
        let container = builder
            .as_init(config_bundle.as_ref().unwrap_or(&bundle))
            .with_systemd(self.systemd_cgroup)
            // libcontainer uses `detach` only to decide whether a terminal needs a console
            // socket: in the foreground without one, the init keeps ferry's own stdio.
            .with_detach(!opts.foreground || opts.console_socket.is_some())
            .with_no_pivot(opts.no_pivot)
            .build();
        let mut container = match container {
            Ok(c) => c,
            Err(e) => {
                // libcontainer leaves a half-made state directory behind on some failures;
                // remove it so that the id can be used again.
                self.cleanup_failed_create(id);
                return Err(RuntimeError::container(&what, e));
            }
        };
        if config_bundle.is_some() {
            // The state names the user's bundle, as runc's does.
            container.state.bundle = bundle.clone();
            container
                .save()
                .map_err(|e| RuntimeError::container(&what, e))?;
        }
        container.pid().map(|p| p.as_raw()).ok_or_else(|| {
            RuntimeError::Invalid(format!("container \"{id}\" has no init pid after create"))
        })
    }

    /// Where libcontainer reads a config that needs runc's spellings translated: runc accepts
    /// `rshared`, `rslave`, `rprivate` and `runbindable` as rootfsPropagation (libcontainer
    /// applies the recursive form for the plain names anyway). Such a config is rewritten
    /// into a private copy of the bundle's config.json with an absolute root; `None` when the
    /// bundle can be used as it is.
    fn compatible_bundle(&self, id: &str, bundle: &Path) -> Result<Option<PathBuf>> {
        let path = bundle.join("config.json");
        let text = std::fs::read(&path)
            .map_err(|e| RuntimeError::io(format!("reading {}", path.display()), e))?;
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| RuntimeError::MalformedConfig {
                path: bundle.to_path_buf(),
                reason: e.to_string(),
            })?;
        let Some(prop) = cfg["linux"]["rootfsPropagation"].as_str() else {
            return Ok(None);
        };
        let plain = match prop {
            "rshared" => "shared",
            "rslave" => "slave",
            "rprivate" => "private",
            "runbindable" => "unbindable",
            _ => return Ok(None),
        };
        cfg["linux"]["rootfsPropagation"] = plain.into();
        if let Some(root) = cfg["root"]["path"].as_str() {
            let abs = bundle.join(root);
            cfg["root"]["path"] = abs.display().to_string().into();
        }
        let dir = self.shadow_bundle(id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| RuntimeError::io(format!("creating {}", dir.display()), e))?;
        let text = serde_json::to_vec(&cfg)
            .map_err(|e| RuntimeError::Invalid(format!("encoding config.json: {e}")))?;
        std::fs::write(dir.join("config.json"), text)
            .map_err(|e| RuntimeError::io(format!("writing {}", dir.display()), e))?;
        Ok(Some(dir))
    }

    pub(crate) fn shadow_bundle(&self, id: &str) -> PathBuf {
        self.root.join(format!(".config-{id}"))
    }

    fn cleanup_failed_create(&self, id: &str) {
        let dir = self.container_dir(id);
        // libcontainer's delete removes the directory recursively: only with nothing mounted.
        if crate::cleanup::prepare_delete(&dir).is_ok() {
            if let Ok(mut c) = Container::load(dir.clone()) {
                let _ = c.delete(true);
            }
        }
        for path in [self.shadow_bundle(id), dir] {
            if let Err(e) = crate::cleanup::remove_state_path(&self.root, &path) {
                tracing::warn!("{e}");
            }
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

    /// The state runc prints.
    pub fn state(&self, id: &str) -> Result<RuncState> {
        let (_lock, c) = self.open(id, false)?;
        Ok(self.runc_state(&c))
    }

    fn runc_state(&self, c: &Container) -> RuncState {
        let status = c.status();
        let pid = match status {
            ContainerStatus::Stopped => 0,
            _ => c.pid().map(|p| p.as_raw()).unwrap_or(0),
        };
        let bundle = c.bundle().clone();
        let rootfs = load_bundle_spec(&bundle)
            .ok()
            .and_then(|s| s.root().as_ref().map(|r| bundle.join(r.path())))
            .unwrap_or_else(|| bundle.join("rootfs"));
        let owner = c
            .creator()
            .map(|o| o.to_string_lossy().into_owned())
            .unwrap_or_default();
        RuncState {
            oci_version: "1.0.2".into(),
            id: c.id().to_string(),
            pid,
            status: status_name(status).into(),
            bundle,
            rootfs,
            created: c
                .created()
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
                .unwrap_or_default(),
            owner,
            annotations: c.state.annotations.clone(),
        }
    }

    /// Every container under the state root, sorted by id.
    pub fn list(&self) -> Result<Vec<RuncState>> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(RuntimeError::io(
                    format!("reading {}", self.root.display()),
                    e,
                ))
            }
        };
        let mut out = Vec::new();
        for e in entries.flatten() {
            let Some(id) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if validate_id(&id).is_err() || !e.path().is_dir() {
                continue;
            }
            // A container deleted meanwhile is simply not listed.
            if let Ok((_l, c)) = self.open(&id, false) {
                out.push(self.runc_state(&c));
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// `kill`: send a signal to the init, or with `all` to every process of the container.
    pub fn kill(&self, id: &str, signal: Signal, all: bool) -> Result<()> {
        let (_lock, mut c) = self.open(id, true)?;
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
        if status == ContainerStatus::Creating {
            // libcontainer signals only containers it knows to be up.
            c.set_status(ContainerStatus::Running);
        }
        c.kill(signal, all)
            .map_err(|e| RuntimeError::container(format!("signalling container \"{id}\""), e))?;
        // libcontainer records every signalled container as stopped. Loading refreshes the
        // status from the process (alive: running); a created or paused container that
        // survived a non-fatal signal keeps its status.
        if status != ContainerStatus::Stopped {
            if let Ok(mut fresh) = Container::load(self.container_dir(id)) {
                if fresh.status() == ContainerStatus::Running {
                    let _ = fresh.set_status(status).save();
                }
            }
        }
        Ok(())
    }

    /// `delete`: remove a stopped (or, with `force`, any) container and its cgroup.
    /// `force` on a missing container succeeds, as engines rely on.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let (_lock, mut c) = match self.open(id, true) {
            Ok(x) => x,
            Err(RuntimeError::NotFound(_)) if force => return Ok(()),
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
        let extra_cgroups =
            std::fs::read_to_string(self.container_dir(id).join(EXTRA_CGROUPS)).unwrap_or_default();
        crate::cleanup::prepare_delete(&self.container_dir(id))?;
        c.delete(force)
            .map_err(|e| RuntimeError::container(format!("deleting container \"{id}\""), e))?;
        // Cgroups outside libcontainer's care that a restore put the container in.
        for cg in extra_cgroups
            .lines()
            .filter(|l| l.starts_with("/sys/fs/cgroup/"))
        {
            let _ = std::fs::remove_dir(cg);
        }
        for path in [self.shadow_bundle(id), self.container_dir(id)] {
            if let Err(e) = crate::cleanup::remove_state_path(&self.root, &path) {
                tracing::warn!("{e}");
            }
        }
        Ok(())
    }

    pub fn pause(&self, id: &str) -> Result<()> {
        let (_lock, mut c) = self.open(id, true)?;
        if c.status() != ContainerStatus::Running {
            return Err(RuntimeError::NotRunning {
                op: "pause",
                id: id.into(),
                status: status_name(c.status()).into(),
            });
        }
        c.pause()
            .map_err(|e| RuntimeError::container(format!("pausing container \"{id}\""), e))
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        let (_lock, mut c) = self.open(id, true)?;
        if c.status() != ContainerStatus::Paused {
            return Err(RuntimeError::WrongState {
                op: "resume",
                id: id.into(),
                status: status_name(c.status()).into(),
                hint: "only a paused container can be resumed",
            });
        }
        c.resume()
            .map_err(|e| RuntimeError::container(format!("resuming container \"{id}\""), e))
    }

    fn cgroup_manager(&self, c: &Container) -> Result<libcgroups::common::AnyCgroupManager> {
        let id = c.id().to_string();
        let cfg = c.spec().map_err(|e| {
            RuntimeError::container(format!("reading config of container \"{id}\""), e)
        })?;
        libcgroups::common::create_cgroup_manager(libcgroups::common::CgroupConfig {
            cgroup_path: cfg.cgroup_path,
            systemd_cgroup: c.systemd(),
            container_name: id.clone(),
        })
        .map_err(|e| RuntimeError::Cgroup {
            what: format!("cgroups of container \"{id}\""),
            detail: e.to_string(),
        })
    }

    /// Pids of every process in the container's cgroup.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let (_lock, c) = self.open(id, false)?;
        let m = self.cgroup_manager(&c)?;
        let mut pids: Vec<i32> = m
            .get_all_pids()
            .map_err(|e| RuntimeError::Cgroup {
                what: format!("listing processes of container \"{id}\""),
                detail: e.to_string(),
            })?
            .into_iter()
            .map(Pid::as_raw)
            .collect();
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// `update`: apply new resource limits to a running or paused container.
    pub fn update(&self, id: &str, resources: &LinuxResources) -> Result<()> {
        let (_lock, c) = self.open(id, true)?;
        if !matches!(
            c.status(),
            ContainerStatus::Created | ContainerStatus::Running | ContainerStatus::Paused
        ) {
            return Err(RuntimeError::NotRunning {
                op: "update",
                id: id.into(),
                status: status_name(c.status()).into(),
            });
        }
        let m = self.cgroup_manager(&c)?;
        m.apply(&ControllerOpt {
            resources,
            disable_oom_killer: false,
            oom_score_adj: None,
            freezer_state: None,
        })
        .map_err(|e| RuntimeError::Cgroup {
            what: format!("updating resources of container \"{id}\""),
            detail: e.to_string(),
        })
    }

    /// One `events --stats` record, in runc's envelope.
    pub fn stats(&self, id: &str) -> Result<serde_json::Value> {
        let (_lock, c) = self.open(id, false)?;
        if c.status() != ContainerStatus::Running && c.status() != ContainerStatus::Paused {
            return Err(RuntimeError::NotRunning {
                op: "read events of",
                id: id.into(),
                status: status_name(c.status()).into(),
            });
        }
        let m = self.cgroup_manager(&c)?;
        let stats = m.stats().map_err(|e| RuntimeError::Cgroup {
            what: format!("reading statistics of container \"{id}\""),
            detail: e.to_string(),
        })?;
        let data = crate::stats::runc_stats(&stats);
        Ok(serde_json::json!({"type": "stats", "id": id, "data": data}))
    }

    /// libcontainer's builder for container `id` under this state root, as create and exec
    /// both start it.
    fn builder(
        &self,
        id: &str,
        what: &str,
        pid_file: Option<&PathBuf>,
        console_socket: Option<&PathBuf>,
        preserve_fds: i32,
    ) -> Result<ContainerBuilder> {
        ContainerBuilder::new(id.to_string(), SyscallType::default())
            .with_executor(DefaultExecutor {})
            .with_root_path(&self.root)
            .map_err(|e| RuntimeError::container(what, e))?
            .with_pid_file(pid_file)
            .map_err(|e| RuntimeError::container(what, e))?
            .with_console_socket(console_socket)
            .with_preserved_fds(preserve_fds)
            .validate_id()
            .map_err(|e| RuntimeError::container(what, e))
    }

    /// `exec`: start a process in a running container; returns its pid. Not detached, the
    /// caller waits for it ([`wait_foreground`]).
    pub fn exec(&self, id: &str, opts: &ExecOptions) -> Result<i32> {
        require_root("exec")?;
        let what = format!("executing in container \"{id}\"");
        let process_file;
        {
            let (_lock, c) = self.open(id, false)?;
            if !matches!(c.status(), ContainerStatus::Running) {
                return Err(RuntimeError::NotRunning {
                    op: "exec in",
                    id: id.into(),
                    status: status_name(c.status()).into(),
                });
            }
            process_file = self.exec_process_file(&c, opts)?;
        }
        let builder = self.builder(
            id,
            &what,
            opts.pid_file.as_ref(),
            opts.console_socket.as_ref(),
            opts.preserve_fds,
        )?;
        let pid = builder
            .as_tenant()
            // libcontainer only uses `detach` to insist on a console socket for a terminal;
            // whether ferry waits is decided by the caller.
            .with_detach(opts.console_socket.is_some())
            .with_process(Some(process_file.path()))
            .build();
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
                .map_err(|e| RuntimeError::Invalid(format!("encoding process: {e}")))?;
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
        if let Some(user) = &opts.user {
            let (u, g) = match user.split_once(':') {
                Some((u, g)) => (u, Some(g)),
                None => (user.as_str(), None),
            };
            let uid: u32 = u.parse().map_err(|_| {
                RuntimeError::Invalid(format!("--user {user:?}: give a numeric UID[:GID]"))
            })?;
            let gid: u32 = match g {
                Some(g) => g.parse().map_err(|_| {
                    RuntimeError::Invalid(format!("--user {user:?}: give a numeric UID[:GID]"))
                })?,
                None => 0,
            };
            obj.insert("user".into(), serde_json::json!({"uid": uid, "gid": gid}));
        }
        if !opts.additional_gids.is_empty() {
            if let Some(u) = obj.get_mut("user").and_then(|u| u.as_object_mut()) {
                u.insert(
                    "additionalGids".into(),
                    serde_json::json!(opts.additional_gids),
                );
            }
        }
        if !opts.caps.is_empty() {
            let caps = obj
                .entry("capabilities")
                .or_insert_with(|| serde_json::json!({}));
            if let Some(caps) = caps.as_object_mut() {
                for set in [
                    "bounding",
                    "effective",
                    "permitted",
                    "inheritable",
                    "ambient",
                ] {
                    let mut list: Vec<String> = caps
                        .get(set)
                        .and_then(|l| serde_json::from_value(l.clone()).ok())
                        .unwrap_or_default();
                    for cap in &opts.caps {
                        let cap = cap.to_ascii_uppercase();
                        let cap = if cap.starts_with("CAP_") {
                            cap
                        } else {
                            format!("CAP_{cap}")
                        };
                        if !list.contains(&cap) {
                            list.push(cap);
                        }
                    }
                    caps.insert(set.into(), serde_json::json!(list));
                }
            }
        }
        if opts.no_new_privs {
            obj.insert("noNewPrivileges".into(), true.into());
        }
        let file = tempfile::Builder::new()
            .prefix("exec-process-")
            .suffix(".json")
            .tempfile_in(self.container_dir(c.id()))
            .map_err(|e| RuntimeError::io("writing the exec process file", e))?;
        serde_json::to_writer(file.as_file(), &process)
            .map_err(|e| RuntimeError::Invalid(format!("writing the exec process file: {e}")))?;
        Ok(file)
    }
}

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
                let _ = kill(target, sig);
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(RuntimeError::io("waiting for signals", e.into())),
        }
    }
}
