//! runc-compatible checkpoint and restore: CRIU (over its RPC) for processes, ferry's mountv2
//! engine to record the container's mount tree beside CRIU's images and to check, after a
//! restore, that the tree came back as it was.
//!
//! The image directory holds what runc's does (CRIU's images and `descriptors.json`, the
//! targets of the init's fds 0-2) plus `ferry-mounts.json`, so runc and ferry can restore each
//! other's checkpoints.

use crate::boundary::{
    check_ties, classify, copy_ties, host_tied_mounts, record_ties, volume_propagation,
    without_host_mounts, Boundary, HostAnchor, HostNames, Tie, TieKind, Volume, VolumePropagation,
    BOUNDARY_FILE,
};
use crate::cleanup::RestoreUndo;
use crate::criu::{Criu, Notification};
use crate::error::{Result, RuntimeError};
use crate::lifecycle::{load_bundle_spec, validate_id, Runtime};
use crate::lock::StateLock;
use libcgroups::common::{CgroupManager, ControllerOpt};
use libcontainer::config::YoukiConfig;
use libcontainer::container::{Container, ContainerStatus};
use oci_spec::runtime::LinuxNamespaceType;
use rust_criu::rust_criu_protobuf::rpc::{
    Cgroup_root, Criu_cg_mode, Criu_opts, Criu_req, Criu_req_type, Ext_mount_map, Inherit_fd,
};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The mount image ferry writes beside CRIU's.
pub const MOUNT_IMAGE: &str = "ferry-mounts.json";
const DESCRIPTORS: &str = "descriptors.json";

/// What checkpoint and restore share: where the images are, and the CRIU options both
/// take from runc's flags.
#[derive(Debug, Clone, Default)]
pub struct CriuOptions {
    pub image_path: PathBuf,
    pub work_path: Option<PathBuf>,
    pub parent_path: Option<PathBuf>,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub manage_cgroups_mode: Option<String>,
    pub empty_ns: Vec<String>,
    pub auto_dedup: bool,
    pub lazy_pages: bool,
    /// The CRIU binary (`--criu`), else the one on PATH.
    pub criu: Option<PathBuf>,
}

impl CriuOptions {
    /// CRIU's work directory: `--work-path`, else the image directory.
    fn work_path(&self) -> PathBuf {
        self.work_path
            .clone()
            .unwrap_or_else(|| self.image_path.clone())
    }

    /// The options of a dump or restore request that come from these flags and the bundle.
    fn apply(&self, spec: &oci_spec::runtime::Spec, o: &mut Criu_opts) -> Result<()> {
        o.set_manage_cgroups(true);
        o.set_manage_cgroups_mode(cg_mode(self.manage_cgroups_mode.as_deref())?);
        o.set_notify_scripts(true);
        criu_config(spec, o);
        o.set_shell_job(self.shell_job);
        o.set_ext_unix_sk(self.ext_unix_sk);
        o.set_tcp_established(self.tcp_established);
        o.set_file_locks(self.file_locks);
        o.set_auto_dedup(self.auto_dedup);
        if let Some(parent) = &self.parent_path {
            o.set_parent_img(parent.display().to_string());
        }
        if self
            .empty_ns
            .iter()
            .any(|ns| ns == "network" || ns == "net")
        {
            o.set_empty_ns(libc::CLONE_NEWNET as u32);
        }
        if spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false)
        {
            o.set_orphan_pts_master(true);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default)]
pub struct CheckpointOptions {
    pub common: CriuOptions,
    pub leave_running: bool,
    pub pre_dump: bool,
    pub status_fd: Option<i32>,
    pub page_server: Option<String>,
}

/// What to do when the restored mount tree differs from the checkpointed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MountMismatch {
    /// Kill the restored tasks, remove everything, report.
    #[default]
    Fail,
    /// Report and keep the restored container.
    Warn,
}

#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub common: CriuOptions,
    pub bundle: PathBuf,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub lsm_profile: Option<String>,
    pub lsm_mount_context: Option<String>,
    pub mount_mismatch: MountMismatch,
}

fn cg_mode(mode: Option<&str>) -> Result<Criu_cg_mode> {
    Ok(match mode.unwrap_or("soft") {
        "soft" => Criu_cg_mode::SOFT,
        "full" => Criu_cg_mode::FULL,
        "strict" => Criu_cg_mode::STRICT,
        "ignore" => Criu_cg_mode::IGNORE,
        other => {
            return Err(RuntimeError::Invalid(format!(
                "--manage-cgroups-mode {other:?}: use soft, full, strict or ignore"
            )))
        }
    })
}

/// Open the image or work directory, creating it (and missing parents) readable by root
/// only, as runc does: it holds the container's memory.
fn open_dir(path: &Path, what: &str) -> Result<File> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| RuntimeError::io(format!("creating {what} {}", path.display()), e))?;
    File::open(path).map_err(|e| RuntimeError::io(format!("opening {what} {}", path.display()), e))
}

/// Write one of ferry's image files, readable by its owner only (also when it existed).
fn write_image_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)
}

fn criu_failed(op: &'static str, e: crate::criu::CriuError, log: &Path) -> RuntimeError {
    // CRIU reports its first error, which without CAP_SYS_RESOURCE is its failure to raise
    // its own open-file limit: harmless, and it would hide the real cause.
    let noise = |l: &str| l.contains("Can't setup RLIMIT_NOFILE");
    let msg = match e {
        crate::criu::CriuError::Failed { msg, .. } if noise(&msg) => String::new(),
        crate::criu::CriuError::Failed { msg, .. } => msg,
        other => other.to_string(),
    };
    // The last error lines of CRIU's log say why; include them so one message is enough.
    let tail = std::fs::read_to_string(log)
        .map(|t| {
            t.lines()
                .filter(|l| (l.contains("Error") || l.contains("error")) && !noise(l))
                .rev()
                .take(3)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .unwrap_or_default();
    RuntimeError::Invalid(format!(
        "CRIU {op} failed: {msg}{}{} (log: {})",
        if tail.is_empty() || msg.is_empty() {
            ""
        } else {
            ": "
        },
        tail,
        log.display()
    ))
}

/// Bind mounts of a spec: CRIU must treat them as external (their sources are host paths).
fn bind_mounts(spec: &oci_spec::runtime::Spec) -> Vec<(PathBuf, PathBuf)> {
    volumes(spec)
        .into_iter()
        .map(|v| (PathBuf::from(v.destination), v.source))
        .collect()
}

/// The bundle's bind mounts with their propagation.
fn volumes(spec: &oci_spec::runtime::Spec) -> Vec<Volume> {
    let mut out = Vec::new();
    for m in spec.mounts().iter().flatten() {
        let is_bind = m.typ().as_deref() == Some("bind")
            || m.options()
                .iter()
                .flatten()
                .any(|o| o == "bind" || o == "rbind");
        if let (true, Some(src)) = (is_bind, m.source()) {
            out.push(Volume {
                destination: m.destination().display().to_string(),
                source: src.clone(),
                propagation: volume_propagation(m.options().as_deref().unwrap_or_default()),
            });
        }
    }
    out
}

impl Runtime {
    /// `checkpoint`: dump the container with CRIU and record its mount tree. A failed
    /// checkpoint leaves the container as it was (running, or paused).
    pub fn checkpoint(&self, id: &str, opts: &CheckpointOptions) -> Result<()> {
        validate_id(id)?;
        let _lock = StateLock::container(&self.root, id, true)?;
        let mut c = self.load_container(id)?;
        let status = c.status();
        if !matches!(status, ContainerStatus::Running | ContainerStatus::Paused) {
            return Err(RuntimeError::NotRunning {
                op: "checkpoint",
                id: id.into(),
                status: format!("{status:?}").to_lowercase(),
            });
        }
        let pid = c
            .pid()
            .ok_or_else(|| RuntimeError::Invalid(format!("container \"{id}\" has no init pid")))?
            .as_raw();
        let criu = Criu::find(opts.common.criu.as_deref())
            .map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        criu.check_version()
            .map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        if opts.common.lazy_pages {
            return Err(RuntimeError::Invalid(
                "--lazy-pages needs userfaultfd page serving, which ferry does not drive yet: checkpoint without it".into(),
            ));
        }
        let images = open_dir(&opts.common.image_path, "image directory")?;
        let work_path = opts.common.work_path();
        let work = open_dir(&work_path, "work directory")?;
        let spec = load_bundle_spec(c.bundle())?;

        // The mount tree as the container sees it, and the targets of its stdio.
        if !opts.pre_dump {
            let image = scan_container(pid)?;
            let text = image
                .to_json()
                .map_err(|e| RuntimeError::Invalid(format!("encoding the mount image: {e}")))?;
            write_image_file(&opts.common.image_path.join(MOUNT_IMAGE), text.as_bytes())
                .map_err(|e| RuntimeError::io(format!("writing {MOUNT_IMAGE}"), e))?;
            let descriptors: Vec<String> = (0..3)
                .map(|fd| {
                    std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|_| "/dev/null".into())
                })
                .collect();
            let text = serde_json::to_vec(&descriptors)
                .map_err(|e| RuntimeError::Invalid(format!("encoding descriptors: {e}")))?;
            write_image_file(&opts.common.image_path.join(DESCRIPTORS), &text)
                .map_err(|e| RuntimeError::io("writing descriptors.json", e))?;
        }

        let mut o = Criu_opts::new();
        o.set_images_dir_fd(images.as_raw_fd());
        o.set_work_dir_fd(work.as_raw_fd());
        o.set_log_file(
            if opts.pre_dump {
                "pre-dump.log"
            } else {
                "dump.log"
            }
            .into(),
        );
        o.set_log_level(4);
        o.set_pid(pid);
        o.set_root(
            c.bundle()
                .join(
                    spec.root()
                        .as_ref()
                        .map(|r| r.path().clone())
                        .unwrap_or_default(),
                )
                .display()
                .to_string(),
        );
        opts.common.apply(&spec, &mut o)?;
        o.set_leave_running(opts.leave_running || opts.pre_dump);
        for (kind, key, path) in external_namespaces(&spec) {
            // CRIU dumps a namespace the container joined by path as external, by inode;
            // restore hands it back as an inherited fd under the same key (runc's keys).
            let inode = std::fs::metadata(&path)
                .map_err(|e| RuntimeError::io(format!("{kind} namespace {path}"), e))?
                .ino();
            o.external.push(format!("{kind}[{inode}]:{key}"));
        }
        if let Some(fd) = opts.status_fd {
            o.set_status_fd(fd);
        }
        if let Some(ps) = &opts.page_server {
            let (addr, port) = ps.rsplit_once(':').ok_or_else(|| {
                RuntimeError::Invalid(format!("--page-server {ps:?}: use ADDRESS:PORT"))
            })?;
            let port: i32 = port
                .parse()
                .map_err(|_| RuntimeError::Invalid(format!("--page-server {ps:?}: bad port")))?;
            let mut info = rust_criu::rust_criu_protobuf::rpc::Criu_page_server_info::new();
            info.set_address(addr.into());
            info.set_port(port);
            o.ps = protobuf::MessageField::some(info);
        }
        let mut external: Vec<String> = bind_mounts(&spec)
            .into_iter()
            .map(|(dest, _)| dest.display().to_string())
            .collect();
        if !opts.pre_dump {
            // cgroup v1 hierarchies are bound from the host's, rooted at the container's
            // cgroup: external, re-bound on restore from the new container's cgroup.
            let image = load_mount_image(&opts.common.image_path.join(MOUNT_IMAGE))?;
            external.extend(cgroup_mounts(&image).into_iter().map(|(mp, _, _)| mp));
            // What the host propagated into volumes is the host's: CRIU skips it, restore
            // brings in what the restoring host has there. Volumes' ties to host groups are
            // declared, and re-made by ferry after CRIU.
            let container_mountinfo =
                crate::boundary::read_mountinfo(&format!("/proc/{pid}/mountinfo"))
                    .map_err(|e| RuntimeError::io("reading the container's mountinfo", e))?;
            let host_mountinfo = crate::boundary::read_mountinfo("/proc/self/mountinfo")
                .map_err(|e| RuntimeError::io("reading the host's mountinfo", e))?;
            let host_tied = host_tied_mounts(&container_mountinfo, &host_mountinfo);
            let mut boundary = classify(&image, volumes(&spec), &host_tied);
            // Every tie to a host group, whatever the bundle's options, named so that the
            // restoring host can find its own counterpart.
            let names = host_names(&spec, c.bundle());
            boundary.ties = record_ties(
                &container_mountinfo,
                &host_mountinfo,
                &names,
                &boundary.host_propagated,
            );
            let copies = copy_ties(&boundary, &container_mountinfo, &host_mountinfo, &names);
            boundary.ties.extend(copies);
            for mp in &boundary.host_propagated {
                // CRIU takes mount points as they are, in a text field of its RPC.
                let raw = mountv2::content::unescape_name(mp)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        RuntimeError::Invalid(format!(
                            "the host propagated a mount at {mp} into a volume; CRIU's RPC names                              mounts to skip as UTF-8 text, and this one is not: unmount it                              before checkpointing"
                        ))
                    })?;
                o.skip_mnt.push(raw);
            }
            o.set_ext_masters(true);
            o.set_ext_sharing(true);
            let text = serde_json::to_vec_pretty(&boundary)
                .map_err(|e| RuntimeError::Invalid(format!("encoding {BOUNDARY_FILE}: {e}")))?;
            write_image_file(&opts.common.image_path.join(BOUNDARY_FILE), &text)
                .map_err(|e| RuntimeError::io(format!("writing {BOUNDARY_FILE}"), e))?;
        }
        for key in external {
            let mut m = Ext_mount_map::new();
            m.set_key(key.clone());
            m.set_val(key);
            o.ext_mnt.push(m);
        }
        if status == ContainerStatus::Paused {
            // CRIU must not try to freeze an already frozen cgroup with its own freezer.
            if let Ok(cfg) = c.spec() {
                let rel = cfg.cgroup_path.display().to_string();
                o.set_freeze_cgroup(format!(
                    "/sys/fs/cgroup/freezer/{}",
                    rel.trim_start_matches('/')
                ));
            }
        }
        let mut req = Criu_req::new();
        req.set_type(if opts.pre_dump {
            Criu_req_type::PRE_DUMP
        } else {
            Criu_req_type::DUMP
        });
        req.opts = protobuf::MessageField::some(o);
        let log = work_path.join(if opts.pre_dump {
            "pre-dump.log"
        } else {
            "dump.log"
        });
        let op = if opts.pre_dump { "pre-dump" } else { "dump" };
        // CRIU's images hold the container's memory: readable by root only.
        let private_files: crate::criu::PreExec = Box::new(|| {
            // SAFETY: umask only sets the calling process's file mode mask.
            unsafe { libc::umask(0o077) };
            Ok(())
        });
        let resp = criu
            .call(req, &mut |_n: Notification| Ok(()), Some(private_files))
            .map_err(|e| criu_failed(op, e, &log))?;
        if !resp.success() {
            return Err(criu_failed(
                op,
                crate::criu::CriuError::Failed {
                    op,
                    msg: resp.cr_errmsg().to_string(),
                    log: log.display().to_string(),
                },
                &log,
            ));
        }
        if !opts.leave_running && !opts.pre_dump {
            // As runc: the dumped container's tasks are gone; remove it so that its id can be
            // restored.
            c.refresh_status().ok();
            self.remove_container(id, &mut c, true)?;
        }
        Ok(())
    }

    /// `restore`: recreate a container from a checkpoint under `id` with the given bundle.
    /// Returns the restored init's pid. On failure nothing is left: no tasks, cgroup, state.
    pub fn restore(&self, id: &str, opts: &RestoreOptions) -> Result<i32> {
        validate_id(id)?;
        if !nix::unistd::geteuid().is_root() {
            return Err(RuntimeError::Privilege("restore"));
        }
        let spec = load_bundle_spec(&opts.bundle)?;
        let bundle = std::fs::canonicalize(&opts.bundle).map_err(|e| {
            RuntimeError::io(format!("resolving bundle {}", opts.bundle.display()), e)
        })?;
        let criu = Criu::find(opts.common.criu.as_deref())
            .map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        criu.check_version()
            .map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        if opts.common.lazy_pages {
            return Err(RuntimeError::Invalid(
                "--lazy-pages needs a page server, which ferry does not drive yet: restore without it".into(),
            ));
        }
        if !opts.common.image_path.join("inventory.img").exists() {
            return Err(RuntimeError::Invalid(format!(
                "{} holds no checkpoint (no inventory.img): pass the --image-path a checkpoint wrote",
                opts.common.image_path.display()
            )));
        }
        crate::images::check_page_images(&opts.common.image_path)?;
        // Every bind source must exist on this host before anything is made.
        let mut ext = Vec::new();
        for (dest, src) in bind_mounts(&spec) {
            let src = if src.is_absolute() {
                src
            } else {
                bundle.join(src)
            };
            if !src.exists() {
                return Err(RuntimeError::Invalid(format!(
                    "bundle mount {} has source {}, which does not exist on this host: create it or change the mount's source in {}",
                    dest.display(),
                    src.display(),
                    bundle.join("config.json").display()
                )));
            }
            ext.push((dest, src));
        }
        self.ensure_root()?;
        let root_lock = StateLock::lock_dir(&self.root, true)
            .map_err(|e| RuntimeError::io(format!("locking {}", self.root.display()), e))?;
        let dir = self.root.join(id);
        if dir.exists() {
            return Err(RuntimeError::Exists(id.to_string()));
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| RuntimeError::io(format!("creating {}", dir.display()), e))?;
        let lock = StateLock::lock_dir(&dir, true)
            .map_err(|e| RuntimeError::io(format!("locking {}", dir.display()), e));
        let lock = match lock {
            Ok(l) => l,
            Err(e) => {
                let _ = crate::cleanup::remove_state_path(&self.root, &dir);
                return Err(e);
            }
        };
        drop(root_lock);
        // From here on, everything this restore makes is undone unless it succeeds.
        let undo = RestoreUndo {
            runtime: self,
            id: id.to_string(),
            dir: dir.clone(),
            pid_file: opts.pid_file.clone(),
            restored: std::cell::Cell::new(None),
            made_in_rootfs: std::cell::RefCell::new(None),
            armed: true,
            _lock: lock,
        };
        // As runc's restore: ferry reaps as a subreaper, so that what CRIU leaves behind when
        // it dies (helpers, half-restored tasks) comes to ferry, which ends it on failure.
        if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
            tracing::debug!("becoming a subreaper: {e}");
        }
        let pid = self.restore_inner(id, opts, &spec, &bundle, &ext, &criu, &dir, &undo)?;
        undo.disarm();
        Ok(pid)
    }

    #[allow(clippy::too_many_arguments)]
    fn restore_inner(
        &self,
        id: &str,
        opts: &RestoreOptions,
        spec: &oci_spec::runtime::Spec,
        bundle: &Path,
        ext: &[(PathBuf, PathBuf)],
        criu: &Criu,
        dir: &Path,
        undo: &RestoreUndo<'_>,
    ) -> Result<i32> {
        // As at create: libcontainer's state names the config it runs (exec reads the
        // container's cgroup path from it), `state` the user's bundle.
        let config_bundle = self.compatible_bundle(id, bundle)?;
        if config_bundle.is_some() {
            crate::lifecycle::record_user_bundle(dir, bundle)?;
        }
        let mut c = Container::new(
            id,
            ContainerStatus::Creating,
            None,
            config_bundle.as_deref().unwrap_or(bundle),
            dir,
        )
        .map_err(|e| RuntimeError::container("recording the restored container", e))?;
        c.set_systemd(self.systemd_cgroup);
        c.set_annotations(spec.annotations().clone());
        c.save()
            .map_err(|e| RuntimeError::container("recording the restored container", e))?;
        let mut cfg = YoukiConfig::from_spec(spec, id)
            .map_err(|e| RuntimeError::Invalid(format!("reading config.json: {e}")))?;
        if !self.systemd_cgroup {
            // As at create: runc's place in every hierarchy, never libcontainer's default.
            let given = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
            cfg.cgroup_path = crate::cgroup_paths::container_cgroup(given.as_deref(), id).into();
        }
        cfg.save(dir)
            .map_err(|e| RuntimeError::Invalid(format!("saving the container config: {e}")))?;
        let cgroup_path = cfg.cgroup_path.clone();
        let manager = libcgroups::common::create_cgroup_manager(libcgroups::common::CgroupConfig {
            cgroup_path: cgroup_path.clone(),
            systemd_cgroup: self.systemd_cgroup,
            container_name: id.to_string(),
        })
        .map_err(|e| RuntimeError::Cgroup {
            what: format!("cgroups of container \"{id}\""),
            detail: e.to_string(),
        })?;
        let resources = spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().clone())
            .unwrap_or_default();

        // CRIU restores from a mount namespace of ferry's own, a slave of the host's: nothing
        // mounted there (the root's bind, volume binds, CRIU's cgroup yard) propagates back to
        // the host. ferry enters it itself, because CRIU resolves the directory fds it is
        // given in its client's namespace.
        let host_ns = File::open("/proc/self/ns/mnt")
            .map_err(|e| RuntimeError::io("opening the host's mount namespace", e))?;
        enter_private_mount_namespace()?;
        let criu_root = dir.join("criu-root");
        std::fs::create_dir_all(&criu_root)
            .map_err(|e| RuntimeError::io(format!("creating {}", criu_root.display()), e))?;
        let rootfs = bundle.join(
            spec.root()
                .as_ref()
                .map(|r| r.path().clone())
                .unwrap_or_default(),
        );
        nix::mount::mount(
            Some(&rootfs),
            &criu_root,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| {
            RuntimeError::io(format!("binding {} for CRIU", rootfs.display()), e.into())
        })?;
        undo.note_made_in_rootfs(&rootfs, create_mountpoints(&rootfs, spec, bundle));
        let images = open_dir(&opts.common.image_path, "image directory")?;
        let work_path = opts.common.work_path();
        let work = open_dir(&work_path, "work directory")?;

        let mut o = Criu_opts::new();
        o.set_images_dir_fd(images.as_raw_fd());
        o.set_work_dir_fd(work.as_raw_fd());
        o.set_log_file("restore.log".into());
        o.set_log_level(4);
        o.set_root(criu_root.display().to_string());
        opts.common.apply(spec, &mut o)?;
        o.set_rst_sibling(true);
        // Namespaces the bundle names by path: net and pid were dumped as external and come
        // back as inherited fds (kept open, without close-on-exec, until CRIU is done); the
        // others are joined.
        let mut ns_files = Vec::new();
        for (kind, key, path) in external_namespaces(spec) {
            let f = File::open(&path)
                .map_err(|e| RuntimeError::io(format!("{kind} namespace {path}"), e))?;
            nix::fcntl::fcntl(
                f.as_raw_fd(),
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
            )
            .map_err(|e| RuntimeError::io(format!("{kind} namespace {path}"), e.into()))?;
            let mut i = Inherit_fd::new();
            i.set_key(key.to_string());
            i.set_fd(f.as_raw_fd());
            o.inherit_fd.push(i);
            ns_files.push(f);
        }
        for (kind, path) in joined_namespaces(spec) {
            let mut j = rust_criu::rust_criu_protobuf::rpc::Join_namespace::new();
            j.set_ns(kind.to_string());
            j.set_ns_file(path);
            o.join_ns.push(j);
        }
        if let Some(p) = &opts.lsm_profile {
            o.set_lsm_profile(p.clone());
        }
        if let Some(p) = &opts.lsm_mount_context {
            o.set_lsm_mount_context(p.clone());
        }
        // Tasks go to this bundle's cgroup, also under a new id, in every hierarchy: the
        // container has its own cgroup in each (named ones and the unified one of a hybrid
        // host included), and CRIU re-roots the dumped one there. A checkpoint from an older
        // ferry, whose container sat at `/` of the named hierarchies, is re-rooted the same
        // way.
        let cg_path = format!(
            "/{}",
            cgroup_path.display().to_string().trim_start_matches('/')
        );
        let hierarchies = crate::cgroup_paths::v1_hierarchies();
        let mut default_root = Cgroup_root::new();
        default_root.set_path(cg_path.clone());
        o.cg_root.push(default_root);
        // Named hierarchies' and the hybrid unified one's cgroups are ferry's to remove (at
        // delete, or when this restore fails): noted before they are made.
        let unmanaged: Vec<String> = hierarchies
            .iter()
            .filter(|(_, ctrl)| ctrl.starts_with("name="))
            .map(|(mp, _)| mp.clone())
            .chain(crate::cgroup_paths::hybrid_unified())
            .map(|root| {
                root.join(cg_path.trim_start_matches('/'))
                    .display()
                    .to_string()
            })
            .collect();
        add_extra_cgroups(dir, &unmanaged);
        for (mountpoint, ctrl) in &hierarchies {
            // The cgroup exists before CRIU runs (as with runc): CRIU then leaves its settings
            // alone instead of bringing back the dumped ones, a frozen freezer among them
            // (engines pause a container while they checkpoint it).
            let cg_dir = mountpoint.join(cg_path.trim_start_matches('/'));
            std::fs::create_dir_all(&cg_dir).map_err(|e| {
                RuntimeError::io(format!("creating cgroup {}", cg_dir.display()), e)
            })?;
            let mut cg = Cgroup_root::new();
            cg.set_ctrl(ctrl.clone());
            cg.set_path(cg_path.clone());
            o.cg_root.push(cg);
        }
        // cgroup v1 mounts come from this host's hierarchies, rooted at the new container's
        // cgroup; the image is adjusted the same way before it is compared.
        let image_path = opts.common.image_path.join(MOUNT_IMAGE);
        let boundary: Option<Boundary> =
            match std::fs::read(opts.common.image_path.join(BOUNDARY_FILE)) {
                Ok(text) => {
                    let mut b: Boundary = serde_json::from_slice(&text).map_err(|e| {
                        RuntimeError::Invalid(format!(
                            "{BOUNDARY_FILE} in the checkpoint is malformed: {e}"
                        ))
                    })?;
                    b.upgrade();
                    Some(b)
                }
                Err(_) => None,
            };
        let mut expected = if image_path.exists() {
            let image = load_mount_image(&image_path)?;
            Some(match &boundary {
                Some(b) => without_host_mounts(&image, &b.host_propagated),
                None => image,
            })
        } else {
            None
        };
        let cg_rel = format!(
            "/{}",
            cgroup_path.display().to_string().trim_start_matches('/')
        );
        if let Some(image) = expected.as_mut() {
            for (mp, idx, root) in cgroup_mounts(image) {
                let new_root = if root == "/" { root } else { cg_rel.clone() };
                let hierarchy = Path::new(&mp)
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let host = PathBuf::from("/sys/fs/cgroup")
                    .join(&hierarchy)
                    .join(new_root.trim_start_matches('/'));
                std::fs::create_dir_all(&host).map_err(|e| {
                    RuntimeError::io(
                        format!(
                            "creating cgroup {} for the restored container",
                            host.display()
                        ),
                        e,
                    )
                })?;
                image.tree.mounts[idx].root = new_root;
                let mut m = Ext_mount_map::new();
                m.set_key(mp);
                m.set_val(host.display().to_string());
                o.ext_mnt.push(m);
            }
        }
        if expected.is_none() {
            // A checkpoint without ferry's mount image comes from runc, which dumps the masked
            // files (binds of the container's /dev/null) as external under the key
            // "/dev/null" and restores them from the host's /dev/null; CRIU needs the same
            // mapping to restore them. Its cgroup v1 mounts are external under their mount
            // points: bound here from this container's cgroups (named hierarchies whole).
            let mut m = Ext_mount_map::new();
            m.set_key("/dev/null".into());
            m.set_val("/dev/null".into());
            o.ext_mnt.push(m);
            for (mountpoint, ctrl) in &hierarchies {
                let host = if ctrl.starts_with("name=") {
                    mountpoint.clone()
                } else {
                    mountpoint.join(cg_path.trim_start_matches('/'))
                };
                let mut m = Ext_mount_map::new();
                m.set_key(mountpoint.display().to_string());
                m.set_val(host.display().to_string());
                o.ext_mnt.push(m);
            }
        }
        for (dest, src) in ext {
            let mut m = Ext_mount_map::new();
            m.set_key(dest.display().to_string());
            m.set_val(src.display().to_string());
            o.ext_mnt.push(m);
        }
        // The init's stdio pipes and sockets are replaced by ours (runc's contract).
        if let Ok(text) = std::fs::read(opts.common.image_path.join(DESCRIPTORS)) {
            let descriptors: Vec<String> = serde_json::from_slice(&text).map_err(|e| {
                RuntimeError::Invalid(format!(
                    "descriptors.json in the checkpoint is malformed: {e}"
                ))
            })?;
            for (fd, d) in descriptors.iter().enumerate().take(3) {
                if d.starts_with("pipe:") || d.starts_with("socket:") {
                    let mut i = Inherit_fd::new();
                    i.set_key(d.clone());
                    i.set_fd(fd as i32);
                    o.inherit_fd.push(i);
                }
            }
        }
        let mut req = Criu_req::new();
        req.set_type(Criu_req_type::RESTORE);
        req.opts = protobuf::MessageField::some(o);

        let log = work_path.join("restore.log");
        let pid_file = opts.pid_file.clone();
        let console = opts.console_socket.clone();
        let mut seen_pid: Option<i32> = None;
        let mut notify = |n: Notification| -> std::result::Result<(), String> {
            match n.script.as_str() {
                "setup-namespaces" => {
                    seen_pid = Some(n.pid);
                    undo.note_restored(n.pid);
                    manager
                        .add_task(nix::unistd::Pid::from_raw(n.pid))
                        .map_err(|e| format!("placing the restored init in its cgroup: {e}"))?;
                    // Recorded at once, still `creating`: should ferry die before the end,
                    // `state`, `kill` and `delete` find the restored task (in its cgroup).
                    c.set_pid(n.pid);
                    c.save()
                        .map_err(|e| format!("recording the restored init's pid: {e}"))?;
                    manager
                        .apply(&ControllerOpt {
                            resources: &resources,
                            disable_oom_killer: false,
                            oom_score_adj: None,
                            freezer_state: None,
                        })
                        .map_err(|e| format!("applying the bundle's resources: {e}"))?;
                }
                "post-restore" => {
                    seen_pid = Some(n.pid);
                    undo.note_restored(n.pid);
                    if let Some(p) = &pid_file {
                        write_pid_file(p, n.pid)
                            .map_err(|e| format!("writing pid file {}: {e}", p.display()))?;
                    }
                }
                "orphan-pts-master" => {
                    let Some(fd) = n.fd else {
                        return Err("CRIU sent no pty master".into());
                    };
                    let Some(sock) = &console else {
                        return Err("the container has a terminal: pass --console-socket".into());
                    };
                    send_console(sock, fd)
                        .map_err(|e| format!("console socket {}: {e}", sock.display()))?;
                }
                _ => {}
            }
            Ok(())
        };
        let resp = criu.call(req, &mut notify, None);
        let resp = resp.map_err(|e| criu_failed("restore", e, &log))?;
        if !resp.success() {
            return Err(criu_failed(
                "restore",
                crate::criu::CriuError::Failed {
                    op: "restore",
                    msg: resp.cr_errmsg().to_string(),
                    log: log.display().to_string(),
                },
                &log,
            ));
        }
        let pid = resp
            .restore
            .as_ref()
            .map(|r| r.pid())
            .or(seen_pid)
            .ok_or_else(|| RuntimeError::Invalid("CRIU reported no restored pid".into()))?;
        undo.note_restored(pid);
        // A container is restored running (as runc does), also when its checkpoint was taken
        // while paused.
        manager
            .freeze(libcgroups::common::FreezerState::Thawed)
            .map_err(|e| RuntimeError::Cgroup {
                what: format!("thawing restored container \"{id}\""),
                detail: e.to_string(),
            })?;
        record_extra_cgroups(pid, dir);
        let _ = nix::mount::umount2(&criu_root, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&criu_root);

        // The mount tree must be the one that was checkpointed, up to what this host and
        // this bundle explain: where each bind's source lies in its filesystem.
        let reconnected = connect_volumes(spec, bundle, &host_ns, pid, boundary.as_ref())?;
        crate::fault::untie_after_restore(pid, reconnected.ties.iter().map(|t| &t.mountpoint))?;
        let broken = broken_ties(&reconnected, &host_ns, pid)?;
        if !broken.is_empty() {
            let msg = format!(
                "the restored container \"{id}\" lost {} tie(s) to the host's mounts:\n{}",
                broken.len(),
                broken.join("\n")
            );
            match opts.mount_mismatch {
                MountMismatch::Fail => {
                    return Err(RuntimeError::Invalid(format!(
                    "{msg}\n(restore aborted; pass --mount-mismatch=warn to keep such a container)"
                )))
                }
                MountMismatch::Warn => tracing::warn!("{msg}"),
            }
        }
        let brought = reconnected.brought;
        if let Some(mut expected) = expected {
            let mut live = scan_container(pid)?;
            live = without_host_mounts(&live, &brought);
            // CRIU does not restore every per-mount flag (the root's read-only one among
            // them): give each mount the flags it had, then look again.
            let fixes: Vec<(String, mountv2::model::MountFlags)> = expected
                .tree
                .mounts
                .iter()
                .filter_map(|m| {
                    let same_point = |t: &mountv2::model::MountTree| {
                        t.mounts
                            .iter()
                            .filter(|x| x.mountpoint == m.mountpoint)
                            .count()
                    };
                    let l = live
                        .tree
                        .mounts
                        .iter()
                        .find(|l| l.mountpoint == m.mountpoint)?;
                    (same_point(&expected.tree) == 1
                        && same_point(&live.tree) == 1
                        && l.flags != m.flags)
                        .then(|| (m.mountpoint.clone(), m.flags))
                })
                .collect();
            if !fixes.is_empty() {
                in_mount_namespace(pid, |root| {
                    for (mp, flags) in &fixes {
                        mountv2::apply::set_flags_at(root, mp, flags).map_err(|e| {
                            RuntimeError::io(
                                format!("setting the flags of /{mp} in the restored container"),
                                e,
                            )
                        })?;
                    }
                    Ok(())
                })?;
                // Looked at again as before: without what this host brought in.
                live = without_host_mounts(&scan_container(pid)?, &brought);
            }
            // The root's and each bind's place in their host filesystems come from the new
            // bundle.
            let bind_points: Vec<String> = ext
                .iter()
                .map(|(dest, _)| {
                    mountv2::content::escape_path(dest)
                        .trim_matches('/')
                        .to_string()
                })
                .chain(std::iter::once(String::new()))
                .collect();
            for m in expected.tree.mounts.iter_mut() {
                if bind_points.contains(&m.mountpoint) {
                    if let Some(l) = live
                        .tree
                        .mounts
                        .iter()
                        .find(|l| l.mountpoint == m.mountpoint)
                    {
                        m.root = l.root.clone();
                    }
                }
            }
            let diffs = mountv2::diff::diff(&expected.tree, &live.tree);
            if !diffs.is_empty() {
                let report: Vec<String> = diffs.iter().map(|d| d.to_string()).collect();
                let msg = format!(
                    "the restored mount tree of \"{id}\" differs from the checkpoint in {} place(s):\n{}",
                    diffs.len(),
                    report.join("\n")
                );
                match opts.mount_mismatch {
                    MountMismatch::Fail => {
                        return Err(RuntimeError::Invalid(format!(
                            "{msg}\n(restore aborted; pass --mount-mismatch=warn to keep such a container)"
                        )))
                    }
                    MountMismatch::Warn => tracing::warn!("{msg}"),
                }
            }
        }
        c.set_pid(pid);
        // Created first, so that the creation time is recorded, then running.
        c.set_status(ContainerStatus::Created);
        c.set_status(ContainerStatus::Running);
        c.set_creator(nix::unistd::geteuid().as_raw());
        c.save()
            .map_err(|e| RuntimeError::container("recording the restored container", e))?;
        self.record_init(dir, pid)?;
        Ok(pid)
    }
}

/// CRIU mounts onto the paths it recorded; in a fresh root filesystem (an imported
/// checkpoint, another host) the bundle's mount points may not exist yet. Create them, never
/// following a symlink out of the root; what cannot be made is left for CRIU to report. A
/// mount point beneath another of the bundle's mounts (`/dev/pts` in `/dev`'s tmpfs) lies in
/// that mount, which CRIU restores, not in the root filesystem. Returns what was made
/// (relative path, whether a file), parents first, for a failed restore to take away again.
fn create_mountpoints(
    rootfs: &Path,
    spec: &oci_spec::runtime::Spec,
    bundle: &Path,
) -> Vec<(String, bool)> {
    use std::os::fd::AsFd;
    let mut made = Vec::new();
    let Ok(root) = File::open(rootfs) else {
        return made;
    };
    // Relative, without empty or `.` parts; `..` is kept for open_beneath to refuse.
    let normal = |p: &Path| -> String {
        p.components()
            .filter_map(|c| match c {
                std::path::Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
                std::path::Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("/")
    };
    let destinations: Vec<String> = spec
        .mounts()
        .iter()
        .flatten()
        .map(|m| normal(m.destination()))
        .filter(|d| !d.is_empty())
        .collect();
    for m in spec.mounts().iter().flatten() {
        let rel = normal(m.destination());
        if rel.is_empty()
            || destinations
                .iter()
                .any(|d| rel.starts_with(&format!("{d}/")))
        {
            continue;
        }
        let file = m.source().as_ref().is_some_and(|src| {
            let src = if src.is_absolute() {
                src.clone()
            } else {
                bundle.join(src)
            };
            std::fs::metadata(src).is_ok_and(|md| !md.is_dir())
        });
        // What is missing now is what the call below makes.
        let comps: Vec<&str> = rel.split('/').collect();
        let first_missing = (1..=comps.len()).find(|&n| {
            mountv2::sys::open_beneath(root.as_fd(), comps[..n].join("/"), rustix::fs::OFlags::PATH)
                .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
        });
        if let Err(e) = mountv2::sys::open_or_create_mountpoint(root.as_fd(), &rel, file) {
            tracing::debug!("mount point /{rel} in {}: {e}", rootfs.display());
        }
        if let Some(n) = first_missing {
            for k in n..=comps.len() {
                made.push((comps[..k].join("/"), file && k == comps.len()));
            }
        }
    }
    made
}

fn load_mount_image(path: &Path) -> Result<mountv2::image::MountImage> {
    mountv2::image::MountImage::load(path)
        .map_err(|e| RuntimeError::Invalid(format!("mount image {}: {e}", path.display())))
}

/// The cgroup v1 mounts of an image: absolute mount point, index, root.
fn cgroup_mounts(image: &mountv2::image::MountImage) -> Vec<(String, usize, String)> {
    let t = &image.tree;
    t.mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| {
            t.superblocks
                .get(m.superblock.0 as usize)
                .is_some_and(|sb| sb.fstype == "cgroup")
        })
        .map(|(i, m)| (format!("/{}", m.mountpoint), i, m.root.clone()))
        .collect()
}

/// This host's names for host mounts (read in the namespace ferry runs in): the mount
/// holding each volume's source, and each cgroup v1 hierarchy's mount.
fn host_names(spec: &oci_spec::runtime::Spec, bundle: &Path) -> HostNames {
    let volume_holders = volumes(spec)
        .into_iter()
        .filter_map(|v| {
            let src = if v.source.is_absolute() {
                v.source.clone()
            } else {
                bundle.join(&v.source)
            };
            crate::boundary::host_mount_of(&src).map(|(holder, _)| {
                (
                    mountv2::content::escape_name(v.destination.as_bytes()),
                    mountv2::content::escape_path(&holder),
                )
            })
        })
        .collect();
    let hierarchies = crate::cgroup_paths::v1_hierarchies()
        .into_iter()
        .map(|(mp, name)| (mountv2::content::escape_path(&mp), name))
        .collect();
    HostNames {
        volume_holders,
        hierarchies,
    }
}

/// The ties a checkpoint without recorded ties (an older ferry's) implies: each slave or
/// shared volume to the host mount holding its source, when that mount is shared.
fn ties_from_options(spec: &oci_spec::runtime::Spec, bundle: &Path) -> Vec<Tie> {
    volumes(spec)
        .into_iter()
        .filter_map(|v| {
            let kind = match v.propagation {
                VolumePropagation::Slave => TieKind::Slave,
                VolumePropagation::Shared => TieKind::Peer,
                _ => return None,
            };
            let src = if v.source.is_absolute() {
                v.source.clone()
            } else {
                bundle.join(&v.source)
            };
            let (_, shared) = crate::boundary::host_mount_of(&src)?;
            let destination = mountv2::content::escape_name(v.destination.as_bytes());
            shared.then(|| Tie {
                mountpoint: destination.clone(),
                kind,
                host: HostAnchor::VolumeSource { destination },
                master_host: None,
                also_shared: false,
                if_on_host: false,
            })
        })
        .collect()
}

/// The container's ties to this host after [`connect_volumes`]: what the checkpoint
/// recorded, and this host's names for the mounts they are tied to.
struct Reconnected {
    /// Mount points brought in from this host (below tied volumes).
    brought: Vec<String>,
    ties: Vec<Tie>,
    names: HostNames,
    /// Ties the kernel refused to re-make, in words.
    failed: Vec<String>,
}

/// Re-make the container's boundary with this host: bring in the mounts the host has under
/// each tied volume's source now (copies tied to the host's groups, as a container started
/// here would have), then re-tie every container mount that was a peer or slave of a host
/// mount at checkpoint to this host's counterpart.
fn connect_volumes(
    spec: &oci_spec::runtime::Spec,
    bundle: &Path,
    host_ns: &File,
    pid: i32,
    boundary: Option<&Boundary>,
) -> Result<Reconnected> {
    use std::os::fd::AsFd;
    // Gather, from the host's namespace, this host's names, the host mount of each tie and
    // copies of what lies below each tied volume's source.
    struct Anchor {
        tie: Tie,
        host: Option<(File, bool)>,
    }
    let own = File::open("/proc/self/ns/mnt")
        .map_err(|e| RuntimeError::io("opening ferry's mount namespace", e))?;
    nix::sched::setns(host_ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| RuntimeError::io("entering the host's mount namespace", e.into()))?;
    let gathered = (|| -> Result<(HostNames, Vec<Tie>, Vec<Anchor>, Vec<_>)> {
        let names = host_names(spec, bundle);
        let ties = match boundary {
            Some(b) if b.version >= 2 => b.ties.clone(),
            _ => ties_from_options(spec, bundle),
        };
        let host_mountinfo = crate::boundary::read_mountinfo("/proc/self/mountinfo")
            .map_err(|e| RuntimeError::io("reading the host's mountinfo", e))?;
        let mut anchors = Vec::new();
        for t in &ties {
            let host = names.resolve(&t.host).and_then(|mp| {
                // Names are in the mount image's escaped form; the kernel takes the bytes.
                let mp = mountv2::content::unescape_name(&mp).ok()?;
                let shared = host_mountinfo.lines().rev().any(|l| {
                    let f: Vec<&str> = l.split(' ').collect();
                    f.get(4).map(|m| mountv2::scan::unescape(m.as_bytes())) == Some(mp.clone())
                        && f.iter()
                            .skip(6)
                            .take_while(|x| **x != "-")
                            .any(|x| x.starts_with("shared:"))
                });
                crate::boundary::open_path(Path::new(
                    <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&mp),
                ))
                .ok()
                .map(|f| (f, shared))
            });
            anchors.push(Anchor {
                tie: t.clone(),
                host,
            });
        }
        let mut copies = Vec::new();
        for v in volumes(spec) {
            let dest = format!("/{}", crate::boundary::image_point(&v.destination));
            let volume_tie = ties
                .iter()
                .find(|t| t.mountpoint.trim_end_matches('/') == dest);
            // An untied volume gets back only the host mounts below it that had ties of their
            // own (copies its rbind made at create).
            let below_ties: Vec<&Tie> = ties
                .iter()
                .filter(|t| t.mountpoint.starts_with(&format!("{dest}/")))
                .collect();
            if volume_tie.is_none() && below_ties.is_empty() {
                continue;
            }
            let src = if v.source.is_absolute() {
                v.source.clone()
            } else {
                bundle.join(&v.source)
            };
            let below = crate::boundary::host_mounts_below(&src)?;
            for h in &below {
                // Only the topmost of nested host mounts is copied, recursively.
                let nested = below
                    .iter()
                    .any(|o| o.rel != h.rel && h.rel.starts_with(&format!("{}/", o.rel)));
                if nested {
                    continue;
                }
                // The copy's own tie when one was recorded (it is re-made below), else the
                // volume's (a mount the host has here now and had not at checkpoint).
                let own = below_ties
                    .iter()
                    .find(|t| t.mountpoint == format!("{dest}/{}", h.rel))
                    .copied();
                let kind = match (own, volume_tie) {
                    (Some(t), _) | (None, Some(t)) => t.kind,
                    (None, None) => continue,
                };
                let copy = rustix::mount::open_tree(
                    rustix::fs::CWD,
                    &h.path,
                    rustix::mount::OpenTreeFlags::OPEN_TREE_CLONE
                        | rustix::mount::OpenTreeFlags::OPEN_TREE_CLOEXEC
                        | rustix::mount::OpenTreeFlags::AT_RECURSIVE,
                )
                .map_err(|e| {
                    RuntimeError::io(format!("copying host mount {}", h.path.display()), e.into())
                })?;
                copies.push((v.destination.clone(), kind, h.rel.clone(), copy));
            }
        }
        Ok((names, ties, anchors, copies))
    })();
    nix::sched::setns(own.as_fd(), nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| RuntimeError::io("returning to ferry's mount namespace", e.into()))?;
    let (names, ties, anchors, copies) = gathered?;
    let mut brought = Vec::new();
    let mut failed = Vec::new();
    in_mount_namespace(pid, |root| {
        // Copies first, while the volumes are not yet peers of the host's groups: attaching
        // them must not propagate back to the host.
        for (dest, kind, rel, copy) in &copies {
            let dest = dest.trim_matches('/');
            let vol =
                mountv2::sys::open_beneath(root, dest, rustix::fs::OFlags::PATH).map_err(|e| {
                    RuntimeError::io(format!("opening volume /{dest} in the container"), e)
                })?;
            if *kind == TieKind::Slave {
                mountv2::sys::set_propagation(copy.as_fd(), mountv2::sys::PropagationType::Slave)
                    .map_err(|e| RuntimeError::io(format!("making the copy of {rel} a slave"), e))?;
            }
            crate::boundary::attach(copy.as_fd(), vol.as_fd(), rel)?;
            brought.push(format!("/{}/{rel}", crate::boundary::image_point(dest)));
        }
        for a in &anchors {
            // A host mount the host no longer has below a tied volume: nothing to re-tie.
            if a.tie.if_on_host && !brought.contains(&a.tie.mountpoint) {
                continue;
            }
            let Some((host, shared)) = &a.host else {
                failed.push(format!(
                    "{}: {} is not on this host",
                    a.tie.mountpoint, a.tie.host
                ));
                continue;
            };
            let rel = mountv2::content::unescape_name(a.tie.mountpoint.trim_matches('/'))
                .map_err(|e| RuntimeError::Invalid(format!("{}: {e}", a.tie.mountpoint)));
            let made = rel
                .and_then(|rel| {
                    mountv2::sys::open_beneath(root, rel, rustix::fs::OFlags::PATH).map_err(|e| {
                        RuntimeError::io(
                            format!("opening {} in the container", a.tie.mountpoint),
                            e,
                        )
                    })
                })
                .and_then(|m| crate::boundary::retie(host.as_fd(), *shared, m.as_fd(), &a.tie));
            if let Err(e) = made {
                // The check below names the tie and what the mount has instead.
                tracing::warn!("re-tying {}: {e}", a.tie.mountpoint);
                failed.push(format!("{}: {e}", a.tie.mountpoint));
            }
        }
        Ok(())
    })?;
    Ok(Reconnected {
        brought,
        ties,
        names,
        failed,
    })
}

/// Whether every tie of `r` holds now: the restored container's mountinfo against the
/// host's. One line per broken tie.
fn broken_ties(r: &Reconnected, host_ns: &File, pid: i32) -> Result<Vec<String>> {
    use std::os::fd::AsFd;
    if r.ties.is_empty() {
        return Ok(Vec::new());
    }
    let container = crate::boundary::read_mountinfo(&format!("/proc/{pid}/mountinfo"))
        .map_err(|e| RuntimeError::io("reading the restored container's mountinfo", e))?;
    // ferry restores from a namespace of its own: the host's mountinfo is read in the host's.
    let own = File::open("/proc/self/ns/mnt")
        .map_err(|e| RuntimeError::io("opening ferry's mount namespace", e))?;
    nix::sched::setns(host_ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| RuntimeError::io("entering the host's mount namespace", e.into()))?;
    let host = crate::boundary::read_mountinfo("/proc/self/mountinfo")
        .map_err(|e| RuntimeError::io("reading the host's mountinfo", e));
    nix::sched::setns(own.as_fd(), nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| RuntimeError::io("returning to ferry's mount namespace", e.into()))?;
    let ties: Vec<Tie> = r
        .ties
        .iter()
        .filter(|t| !t.if_on_host || r.brought.contains(&t.mountpoint))
        .cloned()
        .collect();
    let mut broken = check_ties(&ties, &container, &host?, &r.names);
    for f in &r.failed {
        if !broken
            .iter()
            .any(|b| b.split(':').next() == f.split(':').next())
        {
            broken.push(f.clone());
        }
    }
    Ok(broken)
}

/// The mount tree of `pid`'s namespace as the process sees it, scanned from inside.
fn scan_container(pid: i32) -> Result<mountv2::image::MountImage> {
    let mut image = None;
    in_mount_namespace(pid, |_root| {
        let opts = mountv2::dump::DumpOptions {
            content: false,
            ..Default::default()
        };
        image = Some(mountv2::dump::dump(&opts).map_err(|e| {
            RuntimeError::Invalid(format!("scanning the mounts of process {pid}: {e}"))
        })?);
        Ok(())
    })?;
    image.ok_or_else(|| RuntimeError::Invalid(format!("scanning the mounts of process {pid}")))
}

/// Run `f` with a directory fd of the root of `pid`'s mount namespace, from inside that
/// namespace, and come back. ferry is single-threaded here, as setns(CLONE_NEWNS) requires.
fn in_mount_namespace(
    pid: i32,
    f: impl FnOnce(std::os::fd::BorrowedFd<'_>) -> Result<()>,
) -> Result<()> {
    use std::os::fd::AsFd;
    let own = File::open("/proc/self/ns/mnt")
        .map_err(|e| RuntimeError::io("opening ferry's mount namespace", e))?;
    let theirs = File::open(format!("/proc/{pid}/ns/mnt"))
        .map_err(|e| RuntimeError::io(format!("opening the mount namespace of {pid}"), e))?;
    nix::sched::setns(theirs.as_fd(), nix::sched::CloneFlags::CLONE_NEWNS).map_err(|e| {
        RuntimeError::io(format!("entering the mount namespace of {pid}"), e.into())
    })?;
    let result = File::open("/")
        .map_err(|e| RuntimeError::io("opening the restored root", e))
        .and_then(|root| f(root.as_fd()));
    nix::sched::setns(own.as_fd(), nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| RuntimeError::io("returning to ferry's mount namespace", e.into()))?;
    result
}

/// CRIU's configuration file, as runc picks it: the `org.criu.config` annotation (empty:
/// none), else /etc/criu/runc.conf when it exists.
fn criu_config(spec: &oci_spec::runtime::Spec, o: &mut Criu_opts) {
    let annotated = spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get("org.criu.config").cloned());
    match annotated {
        Some(p) if p.is_empty() => {}
        Some(p) => o.set_config_file(p),
        None if Path::new("/etc/criu/runc.conf").exists() => {
            o.set_config_file("/etc/criu/runc.conf".into())
        }
        None => {}
    }
}

fn namespace_paths(spec: &oci_spec::runtime::Spec) -> Vec<(LinuxNamespaceType, String)> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| {
            n.path()
                .as_ref()
                .map(|p| (n.typ(), p.display().to_string()))
        })
        .collect()
}

/// Network and pid namespaces the bundle names by path: (CRIU's name, runc's key, path).
fn external_namespaces(
    spec: &oci_spec::runtime::Spec,
) -> Vec<(&'static str, &'static str, String)> {
    namespace_paths(spec)
        .into_iter()
        .filter_map(|(t, p)| match t {
            LinuxNamespaceType::Network => Some(("net", "extRootNetNS", p)),
            LinuxNamespaceType::Pid => Some(("pid", "extRootPidNS", p)),
            _ => None,
        })
        .collect()
}

/// The other namespaces the bundle names by path, which CRIU joins on restore.
fn joined_namespaces(spec: &oci_spec::runtime::Spec) -> Vec<(&'static str, String)> {
    namespace_paths(spec)
        .into_iter()
        .filter_map(|(t, p)| match t {
            LinuxNamespaceType::Ipc => Some(("ipc", p)),
            LinuxNamespaceType::Uts => Some(("uts", p)),
            _ => None,
        })
        .collect()
}

/// Note the restored init's cgroups in the hierarchies libcontainer leaves alone (named v1
/// ones, the unified one of a hybrid host), so that delete removes them.
fn record_extra_cgroups(pid: i32, dir: &Path) {
    let dirs: Vec<String> = crate::cgroup_paths::unmanaged_of(pid)
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    add_extra_cgroups(dir, &dirs);
}

/// Add cgroup directories to the container's list of those delete removes.
fn add_extra_cgroups(dir: &Path, dirs: &[String]) {
    let file = dir.join(crate::lifecycle::EXTRA_CGROUPS);
    let mut all: Vec<String> = std::fs::read_to_string(&file)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    for d in dirs {
        if !all.contains(d) {
            all.push(d.clone());
        }
    }
    if !all.is_empty() {
        if let Err(e) = std::fs::write(&file, all.join("\n")) {
            tracing::warn!("noting the cgroups of the restored container: {e}");
        }
    }
}

/// Move this process into a new mount namespace whose mounts are slaves of the current
/// ones: it sees the host's mounts, and nothing it mounts reaches the host.
fn enter_private_mount_namespace() -> Result<()> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| RuntimeError::io("creating a mount namespace for CRIU", e.into()))?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(|e| {
        RuntimeError::io(
            "making CRIU's mount namespace a slave of the host's",
            e.into(),
        )
    })
}

fn write_pid_file(path: &Path, pid: i32) -> std::io::Result<()> {
    // Digits only, written atomically (containerd rejects a trailing newline).
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .map(|f| f.to_string_lossy())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, pid.to_string())?;
    std::fs::rename(&tmp, path)
}

fn send_console(socket: &Path, fd: std::os::fd::OwnedFd) -> std::io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let stream = std::os::unix::net::UnixStream::connect(socket)?;
    let name = b"/dev/ptmx";
    let iov = [std::io::IoSlice::new(name)];
    let fds = [fd.as_raw_fd()];
    sendmsg::<()>(
        stream.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(std::io::Error::from)?;
    Ok(())
}
