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

mod exec_rules;
mod oom;
mod poststop;
mod signal_number;
pub use signal_number::{parse_signal_number, SIGRTMAX, SIGRTMIN};

/// In a container's state directory: cgroup directories outside the hierarchies libcontainer
/// manages (a checkpoint from runc brings its own unified cgroup), removed at delete.
pub const EXTRA_CGROUPS: &str = "ferry-extra-cgroups";

/// ferry's own files that belong to no single container's state directory live in this
/// directory of the state root. Its name holds a ':', which ids cannot, so no container can be
/// called like it and deleting a container can never reach it.
const INTERNAL_DIR: &str = "ferry:internal";

/// In a container's state directory: the identity of its init, "PID START" with START the
/// process's start time. A pid alone is not an identity: once the init is gone the kernel
/// hands the number to any new process.
const INIT_IDENTITY: &str = "ferry-init";

/// The start time of process `pid` (field 22 of /proc/PID/stat, clock ticks after boot), or
/// `None` when there is no such process.
pub(crate) fn process_start_time(pid: i32) -> Option<u64> {
    start_time_from_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Field 22 of a /proc/PID/stat line.
fn start_time_from_stat(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and ')': the fixed fields follow the last ')'.
    let fixed = &stat[stat.rfind(')')? + 1..];
    fixed.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `pid`, the pid a container's state names, is the init recorded in container
/// directory `dir`: a process whose start time is the init's. A container without a record
/// (made by an older ferry) is taken at its word, as before records existed.
fn init_identity_holds(dir: &Path, pid: i32) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join(INIT_IDENTITY)) else {
        return true;
    };
    // "PID START": the pid is there for people reading the file; the start time decides.
    match text.split_whitespace().nth(1).map(str::parse::<u64>) {
        Some(Ok(start)) => process_start_time(pid) == Some(start),
        _ => true,
    }
}

/// In a container's state directory whose config libcontainer reads from ferry's rewritten
/// copy: the bundle the user gave, which `state` reports.
const USER_BUNDLE: &str = "ferry-bundle";

/// Write a file only root can read (state, rewritten configs), replacing it whole: a crash
/// leaves the old file or the new one.
fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| RuntimeError::io(format!("writing {}", tmp.display()), e))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| RuntimeError::io(format!("writing {}", path.display()), e))
}

pub(crate) fn record_user_bundle(dir: &Path, bundle: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    write_private(&dir.join(USER_BUNDLE), bundle.as_os_str().as_bytes())
}

/// The bundle the user created (or restored) the container from.
pub(crate) fn user_bundle(c: &Container) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    match std::fs::read(c.root.join(USER_BUNDLE)) {
        Ok(b) if !b.is_empty() => PathBuf::from(std::ffi::OsString::from_vec(b)),
        _ => c.bundle().clone(),
    }
}

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
    /// AppArmor profile of the process (`--apparmor`).
    pub apparmor: Option<String>,
    /// SELinux label of the process (`--process-label`).
    pub process_label: Option<String>,
    /// `--ignore-paused`: refused with a clear message for a paused container.
    pub ignore_paused: bool,
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

    /// Record the identity of a container's new init, and give its state directory runc's
    /// permissions: the directory 0711, the files in it 0600 (libcontainer writes them with
    /// the umask's 0644; its later rewrites keep the mode).
    pub(crate) fn record_init(&self, dir: &Path, pid: i32) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let io = |what: &str, e| RuntimeError::io(format!("{what} {}", dir.display()), e);
        if let Some(start) = process_start_time(pid) {
            // Written whole and renamed into place: a crash leaves the old record or the new.
            write_private(
                &dir.join(INIT_IDENTITY),
                format!("{pid} {start}\n").as_bytes(),
            )?;
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))
            .map_err(|e| io("restricting", e))?;
        for entry in std::fs::read_dir(dir)
            .map_err(|e| io("reading", e))?
            .flatten()
        {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| io("restricting the files of", e))?;
            }
        }
        Ok(())
    }

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
        let propagation = crate::propagation::plan_for_bundle(&spec, &bundle)?;
        let builder = self.builder(
            id,
            &what,
            opts.pid_file.as_ref(),
            opts.console_socket.as_ref(),
            opts.preserve_fds,
        )?;
        // Named cgroup hierarchies and the unified one of a hybrid host: the init starts in
        // the container's own cgroup there, as with runc (libcontainer does the others).
        let entered = match self.systemd_cgroup {
            true => crate::cgroup_paths::Entered::default(),
            false => crate::cgroup_paths::enter_unmanaged(&crate::cgroup_paths::container_cgroup(
                spec.linux()
                    .as_ref()
                    .and_then(|l| l.cgroups_path().as_deref()),
                id,
            ))?,
        };
        let container = builder
            .as_init(config_bundle.as_ref().unwrap_or(&bundle))
            .with_systemd(self.systemd_cgroup)
            // libcontainer uses `detach` only to decide whether a terminal needs a console
            // socket: in the foreground without one, the init keeps ferry's own stdio.
            .with_detach(!opts.foreground || opts.console_socket.is_some())
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
        let pid = container.pid().map(|p| p.as_raw()).ok_or_else(|| {
            RuntimeError::Invalid(format!("container \"{id}\" has no init pid after create"))
        })?;
        let finish = self
            .record_init(&self.container_dir(id), pid)
            .and_then(|()| crate::propagation::apply(pid, &propagation));
        if let Err(e) = finish {
            self.cleanup_failed_create(id);
            return Err(e);
        }
        // What runc sets up and libcontainer does not: `lo` of a new network namespace, and
        // disableOOMKiller.
        let runc_setup = load_bundle_spec(&opts.bundle).and_then(|spec| {
            crate::netns::bring_up_loopback_if_new(&spec, pid)?;
            oom::apply_at_create(&spec, pid)
        });
        if let Err(e) = runc_setup {
            self.cleanup_failed_create(id);
            return Err(e);
        }
        Ok(pid)
    }

    /// Where libcontainer reads a config that needs runc's spellings translated: runc accepts
    /// `rshared`, `rslave`, `rprivate` and `runbindable` as rootfsPropagation (libcontainer
    /// applies the recursive form for the plain names anyway). Such a config is rewritten
    /// into a private copy of the bundle's config.json with an absolute root; `None` when the
    /// bundle can be used as it is.
    pub(crate) fn compatible_bundle(&self, id: &str, bundle: &Path) -> Result<Option<PathBuf>> {
        let path = bundle.join("config.json");
        let text = std::fs::read(&path)
            .map_err(|e| RuntimeError::io(format!("reading {}", path.display()), e))?;
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| RuntimeError::MalformedConfig {
                path: bundle.to_path_buf(),
                reason: e.to_string(),
            })?;
        let plain = match cfg["linux"]["rootfsPropagation"].as_str() {
            Some("rshared") => Some("shared"),
            Some("rslave") => Some("slave"),
            Some("rprivate") => Some("private"),
            Some("runbindable") => Some("unbindable"),
            _ => None,
        };
        // libcontainer names a container without an absolute cgroupsPath `:youki:<id>` at
        // the hierarchies' roots; runc's place is the id (or the relative path) below the
        // caller's cgroup.
        let cgroups = cfg["linux"].is_object() && !self.systemd_cgroup && {
            let given = cfg["linux"]["cgroupsPath"].as_str().map(PathBuf::from);
            let path = crate::cgroup_paths::container_cgroup(given.as_deref(), id);
            let changed = given.as_deref() != Some(Path::new(&path));
            cfg["linux"]["cgroupsPath"] = path.into();
            changed
        };
        if plain.is_none() && !cgroups {
            return Ok(None);
        }
        if let Some(plain) = plain {
            cfg["linux"]["rootfsPropagation"] = plain.into();
        }
        if let Some(root) = cfg["root"]["path"].as_str() {
            let abs = bundle.join(root);
            cfg["root"]["path"] = abs.display().to_string().into();
        }
        // Relative mount sources are relative to the bundle, which the copy is not beside.
        if let Some(mounts) = cfg["mounts"].as_array_mut() {
            for m in mounts {
                if let Some(src) = m["source"].as_str().filter(|s| !s.starts_with('/')) {
                    let is_bind = m["type"].as_str() == Some("bind")
                        || m["options"].as_array().is_some_and(|o| {
                            o.iter()
                                .any(|o| matches!(o.as_str(), Some("bind" | "rbind")))
                        });
                    if is_bind {
                        m["source"] = bundle.join(src).display().to_string().into();
                    }
                }
            }
        }
        let dir = self.shadow_bundle(id);
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&dir)
            .map_err(|e| RuntimeError::io(format!("creating {}", dir.display()), e))?;
        let text = serde_json::to_vec(&cfg)
            .map_err(|e| RuntimeError::Invalid(format!("encoding config.json: {e}")))?;
        write_private(&dir.join("config.json"), &text)?;
        Ok(Some(dir))
    }

    pub(crate) fn shadow_bundle(&self, id: &str) -> PathBuf {
        self.root.join(INTERNAL_DIR).join("config").join(id)
    }

    /// Remove the shadow bundle of `id`, also where older versions of ferry put it
    /// (`.config-ID` beside the containers), there only when it is one (a directory holding
    /// config.json alone) and never the state of a container that happens to be called so.
    pub(crate) fn remove_shadow_bundle(&self, id: &str) {
        let _ = std::fs::remove_dir_all(self.shadow_bundle(id));
        let old = self.root.join(format!(".config-{id}"));
        let names: Vec<_> = match std::fs::read_dir(&old) {
            Ok(d) => d.flatten().map(|e| e.file_name()).collect(),
            Err(_) => return,
        };
        if names.len() == 1 && names[0] == "config.json" {
            let _ = std::fs::remove_file(old.join("config.json"));
            let _ = std::fs::remove_dir(&old);
        }
    }

    fn cleanup_failed_create(&self, id: &str) {
        self.remove_shadow_bundle(id);
        let dir = self.container_dir(id);
        // libcontainer's delete removes the directory recursively: only with nothing mounted.
        if let Err(e) = crate::cleanup::prepare_delete(&dir) {
            tracing::warn!("leaving the state of the failed create of \"{id}\": {e}");
            return;
        }
        if let Ok(mut c) = Container::load(dir.clone()) {
            let _ = c.delete(true);
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
        let bundle = user_bundle(c);
        let rootfs = load_bundle_spec(c.bundle())
            .ok()
            .and_then(|s| s.root().as_ref().map(|r| c.bundle().join(r.path())))
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
            match self.open(&id, false) {
                Ok((_l, c)) => out.push(self.runc_state(&c)),
                Err(e @ RuntimeError::CorruptState { .. }) => tracing::warn!("{e}"),
                Err(_) => {}
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

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
                    let _ = fresh.set_status(status).save();
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
        let raw = c.pid().map(Pid::as_raw).ok_or_else(stopped)?;
        let pid = rustix::process::Pid::from_raw(raw).ok_or_else(stopped)?;
        let dir = self.container_dir(id);
        match rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
            Ok(pidfd) => {
                if !init_identity_holds(&dir, raw) {
                    return Err(stopped());
                }
                let sig =
                    rustix::process::Signal::from_named_raw(signal as i32).ok_or_else(|| {
                        RuntimeError::Invalid(format!("signal {signal} cannot be sent"))
                    })?;
                match rustix::process::pidfd_send_signal(&pidfd, sig) {
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
                match nix::sys::signal::kill(Pid::from_raw(raw), signal) {
                    Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
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
                .map_err(|e| RuntimeError::Cgroup {
                    what: format!("thawing container \"{id}\" for SIGKILL"),
                    detail: e.to_string(),
                })?;
        }
        Ok(())
    }

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
        .map_err(|e| RuntimeError::Cgroup {
            what: format!("cgroups of container \"{id}\""),
            detail: e.to_string(),
        })
    }

    /// `kill --all` of a container whose state cannot be read: every process of its cgroup.
    fn kill_leftover(&self, id: &str, signal: Signal) -> Result<()> {
        let _lock = StateLock::lock_dir(&self.container_dir(id), true)
            .map_err(|e| RuntimeError::io(format!("locking container \"{id}\""), e))?;
        let m = self.leftover_cgroup_manager(id, self.systemd_cgroup)?;
        for pid in m.get_all_pids().unwrap_or_default() {
            let _ = nix::sys::signal::kill(pid, signal);
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
        let pids = m.get_all_pids().unwrap_or_default();
        for pid in &pids {
            let _ = nix::sys::signal::kill(*pid, Signal::SIGKILL);
        }
        if !pids.is_empty() {
            // Tasks frozen by a cgroup v1 freezer die of their SIGKILL once thawed.
            let _ = m.freeze(libcgroups::common::FreezerState::Thawed);
        }
        m.remove().map_err(|e| RuntimeError::Cgroup {
            what: format!("removing the cgroup of container \"{id}\""),
            detail: e.to_string(),
        })?;
        remove_extra_cgroups(&std::fs::read_to_string(dir.join(EXTRA_CGROUPS)).unwrap_or_default());
        self.remove_shadow_bundle(id);
        crate::cleanup::remove_state_path(&self.root, &dir)
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
            disable_oom_killer: oom::disable_at_update(resources, c.pid().map(Pid::as_raw)),
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
            exec_rules::check_paused(id, c.status(), opts.ignore_paused)?;
            if !matches!(c.status(), ContainerStatus::Running) {
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
        let entered = crate::cgroup_paths::enter(joined)?;
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
        exec_rules::apply(obj, opts)?;
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

/// Cgroups outside libcontainer's care that a restore put the container in (one path a line).
fn remove_extra_cgroups(list: &str) {
    for cg in list.lines().filter(|l| l.starts_with("/sys/fs/cgroup/")) {
        let _ = std::fs::remove_dir(cg);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_field_22_after_any_command_name() {
        let fields = (3..=25)
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(
            start_time_from_stat(&format!("7 (a) b) c) {fields}")),
            Some(22)
        );
        assert_eq!(start_time_from_stat("7 (sh) S 1 2"), None);
        assert_eq!(start_time_from_stat("no parenthesis"), None);
        let me = std::process::id() as i32;
        assert!(process_start_time(me).is_some_and(|t| t > 0));
    }

    #[test]
    fn init_identity_is_the_start_time() {
        let dir = tempfile::tempdir().expect("temp dir");
        let me = std::process::id() as i32;
        // No record: taken at its word.
        assert!(init_identity_holds(dir.path(), me));
        let start = process_start_time(me).expect("own start time");
        std::fs::write(dir.path().join(INIT_IDENTITY), format!("{me} {start}\n")).expect("write");
        assert!(init_identity_holds(dir.path(), me));
        std::fs::write(
            dir.path().join(INIT_IDENTITY),
            format!("{me} {}\n", start + 1),
        )
        .expect("write");
        assert!(!init_identity_holds(dir.path(), me));
    }

    #[test]
    fn shadow_bundles_are_out_of_the_id_namespace() {
        let root = tempfile::tempdir().expect("state root");
        let rt = Runtime {
            root: root.path().to_path_buf(),
            systemd_cgroup: false,
        };
        let shadow = rt.shadow_bundle("foo");
        let name = shadow
            .strip_prefix(root.path())
            .ok()
            .and_then(|p| p.components().next())
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        assert!(
            validate_id(&name).is_err(),
            "{name} could be a container id"
        );
        // The old layout: `.config-ID` is removed only when it is a shadow bundle.
        let old = root.path().join(".config-foo");
        std::fs::create_dir(&old).expect("mkdir");
        std::fs::write(old.join("config.json"), "{}").expect("write");
        std::fs::write(old.join("state.json"), "{}").expect("write");
        rt.remove_shadow_bundle("foo");
        assert!(
            old.join("state.json").exists(),
            "a container's state was removed"
        );
        std::fs::remove_file(old.join("state.json")).expect("rm");
        rt.remove_shadow_bundle("foo");
        assert!(!old.exists(), "an old shadow bundle was left");
    }

    /// Bounded fuzzing of the parsers that read files from outside: deterministic mutations
    /// (fixed seed) of valid documents, byte-wise and by JSON structure. Every input must give
    /// a result or an error, never a panic.
    mod fuzz {
        use super::super::*;
        use libcontainer::container::state::State;

        /// Runs per parser: a few thousand in all, some seconds in a debug build.
        const CONFIG_RUNS: usize = 1000;
        const STATE_RUNS: usize = 700;

        /// xorshift64*: deterministic and good enough to pick mutations.
        struct Rng(u64);
        impl Rng {
            fn next(&mut self) -> u64 {
                self.0 ^= self.0 >> 12;
                self.0 ^= self.0 << 25;
                self.0 ^= self.0 >> 27;
                self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
            }
            fn below(&mut self, n: usize) -> usize {
                if n == 0 {
                    0
                } else {
                    (self.next() % n as u64) as usize
                }
            }
        }

        const TOKENS: &[&str] = &[
            "{",
            "}",
            "[",
            "]",
            "\"",
            ":",
            ",",
            "null",
            "true",
            "false",
            "-1",
            "0",
            "1e999",
            "18446744073709551616",
            "-9223372036854775809",
            "0.5",
            "\"\"",
            "\"\\u0000\"",
            "\"\\ud800\"",
            "\"../../..\"",
            "\"/\"",
            "\"1.0.2\"",
            "\"2.0.0\"",
            "\u{feff}",
            "\u{0}",
            "\\",
            "\"running\"",
            "\"paused\"",
            "{}",
            "[]",
        ];

        fn random_value(rng: &mut Rng, depth: u32) -> serde_json::Value {
            use serde_json::json;
            match rng.below(if depth > 2 { 6 } else { 8 }) {
                0 => json!(null),
                1 => json!(rng.below(2) == 0),
                2 => json!(rng.next() as i64),
                3 => json!(-(rng.below(1000) as i64)),
                4 => json!(TOKENS[rng.below(TOKENS.len())]),
                5 => json!("x".repeat(rng.below(300))),
                6 => serde_json::Value::Array(
                    (0..rng.below(4))
                        .map(|_| random_value(rng, depth + 1))
                        .collect(),
                ),
                _ => serde_json::Value::Object(
                    (0..rng.below(4))
                        .map(|i| (format!("k{i}"), random_value(rng, depth + 1)))
                        .collect(),
                ),
            }
        }

        /// Replace, remove or retype one node of the document, chosen by a random walk.
        fn mutate_structure(node: &mut serde_json::Value, rng: &mut Rng) {
            let descend = rng.below(4) != 0;
            match node {
                serde_json::Value::Object(m) if descend && !m.is_empty() => {
                    let i = rng.below(m.len());
                    if rng.below(6) == 0 {
                        if let Some(k) = m.keys().nth(i).cloned() {
                            m.remove(&k);
                        }
                        return;
                    }
                    if let Some(child) = m.values_mut().nth(i) {
                        return mutate_structure(child, rng);
                    }
                }
                serde_json::Value::Array(a) if descend && !a.is_empty() => {
                    let i = rng.below(a.len());
                    return mutate_structure(&mut a[i], rng);
                }
                _ => {}
            }
            *node = random_value(rng, 0);
        }

        fn mutate_bytes(data: &mut Vec<u8>, rng: &mut Rng) {
            for _ in 0..=rng.below(4) {
                let len = data.len();
                let at = rng.below(len + 1);
                match rng.below(6) {
                    0 if len > 0 => data[at.min(len - 1)] ^= 1 << rng.below(8),
                    1 => data.insert(at, rng.next() as u8),
                    2 => {
                        let end = (at + rng.below(64)).min(len);
                        data.drain(at..end);
                    }
                    3 => {
                        let end = (at + rng.below(64)).min(len);
                        let copy = data[at..end].to_vec();
                        let to = rng.below(data.len() + 1);
                        data.splice(to..to, copy);
                    }
                    4 => data.truncate(at),
                    _ => {
                        let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                        data.splice(at..at, t.iter().copied());
                    }
                }
            }
        }

        /// A mutated copy of `seed`: half of the time by structure, else byte-wise.
        fn mutant(seed: &serde_json::Value, rng: &mut Rng) -> Vec<u8> {
            if rng.below(2) == 0 {
                let mut doc = seed.clone();
                for _ in 0..=rng.below(3) {
                    mutate_structure(&mut doc, rng);
                }
                serde_json::to_vec(&doc).unwrap_or_default()
            } else {
                let mut data = serde_json::to_vec(seed).unwrap_or_default();
                mutate_bytes(&mut data, rng);
                data
            }
        }

        /// Run `f` on `input`, naming the input when it panics.
        fn no_panic(what: &str, input: &[u8], f: impl FnOnce()) {
            if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                eprintln!("{what} panicked on: {}", String::from_utf8_lossy(input));
                std::panic::resume_unwind(p);
            }
        }

        fn bundle() -> tempfile::TempDir {
            let b = tempfile::tempdir().expect("temp bundle");
            std::fs::create_dir(b.path().join("rootfs")).expect("rootfs");
            b
        }

        #[test]
        fn config_json_never_panics() {
            let b = bundle();
            let seed = serde_json::to_value(Spec::default()).expect("default spec");
            let cfg = b.path().join("config.json");
            std::fs::write(&cfg, serde_json::to_vec(&seed).expect("encode")).expect("write");
            assert!(load_bundle_spec(b.path()).is_ok(), "the seed itself loads");
            let mut rng = Rng(0x5eed_0fc0_4f16);
            let (mut ok, mut refused) = (0, 0);
            for _ in 0..CONFIG_RUNS {
                let input = mutant(&seed, &mut rng);
                std::fs::write(&cfg, &input).expect("write config.json");
                no_panic("load_bundle_spec", &input, || {
                    match load_bundle_spec(b.path()) {
                        Ok(_) => ok += 1,
                        Err(e) => {
                            assert!(!e.to_string().is_empty());
                            refused += 1
                        }
                    }
                });
            }
            // Both outcomes are reached: the mutations are neither all fatal nor all inert.
            assert!(ok > 50 && refused > 50, "ok {ok}, refused {refused}");
        }

        #[test]
        fn state_json_never_panics() {
            let b = bundle();
            std::fs::write(
                b.path().join("config.json"),
                serde_json::to_vec(&Spec::default()).expect("encode"),
            )
            .expect("write config.json");
            let root = tempfile::tempdir().expect("state root");
            let rt = Runtime {
                root: root.path().to_path_buf(),
                systemd_cgroup: false,
            };
            let dir = root.path().join("fz");
            std::fs::create_dir(&dir).expect("container dir");
            // A live pid, so that status checks read /proc; the record is mutated too.
            let me = std::process::id() as i32;
            let mut state = State::new("fz", ContainerStatus::Running, Some(me), b.path().into());
            state.created = Some(chrono::Utc::now());
            let seed = serde_json::to_value(&state).expect("encode state");
            let start = process_start_time(me).expect("own start time");
            let record = format!("{me} {start}\n");
            std::fs::write(
                dir.join("state.json"),
                serde_json::to_vec(&seed).expect("encode"),
            )
            .expect("write");
            assert!(rt.state("fz").is_ok(), "the seed itself loads");
            let mut rng = Rng(0x057a_7e0f_f0a2);
            let (mut ok, mut refused) = (0, 0);
            for run in 0..STATE_RUNS {
                let input = mutant(&seed, &mut rng);
                std::fs::write(dir.join("state.json"), &input).expect("write state.json");
                let mut rec = record.clone().into_bytes();
                if rng.below(4) == 0 {
                    mutate_bytes(&mut rec, &mut rng);
                }
                std::fs::write(dir.join(INIT_IDENTITY), &rec).expect("write record");
                no_panic("state", &input, || match rt.state("fz") {
                    Ok(s) => {
                        assert!(s.pid == 0 || s.status != "stopped");
                        ok += 1
                    }
                    Err(e) => {
                        assert!(matches!(e, RuntimeError::CorruptState { .. }), "{e}");
                        refused += 1
                    }
                });
                if run % 10 == 0 {
                    no_panic("list", &input, || {
                        assert!(rt.list().is_ok());
                    });
                }
            }
            assert!(ok > 20 && refused > 20, "ok {ok}, refused {refused}");
        }

        #[test]
        fn proc_stat_parser_never_panics() {
            let mut rng = Rng(0x009a_45e4);
            let stat = format!(
                "1 (init) S {}",
                (4..=52)
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            for _ in 0..5000 {
                let mut s = stat.clone().into_bytes();
                mutate_bytes(&mut s, &mut rng);
                let s = String::from_utf8_lossy(&s).into_owned();
                no_panic("start_time_from_stat", s.as_bytes(), || {
                    let _ = start_time_from_stat(&s);
                });
            }
        }
    }
}
