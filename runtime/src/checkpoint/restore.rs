//! `restore`: recreate a container from a checkpoint and check its mount tree.
//!
//! A restore runs as named phases over one [`Restoring`] value: check the input (nothing is
//! made before it passes), claim the state directory, record the container's state, prepare
//! the mount namespace CRIU restores from, build the CRIU request, run CRIU with its
//! notifications, verify the mount tree, and record the container running. The value owns a
//! [`RestoreUndo`] guard: whatever phase fails, dropping it removes everything made so far.

use super::cgroups::{add_extra_cgroups, cgroup_mounts, record_extra_cgroups};
use super::files::{load_mount_image, open_dir, send_console, write_pid_file};
use super::mount_check::{bundle_points, flag_repairs, unexplained};
use super::namespaces::{
    enter_private_mount_namespace, external_namespaces, joined_namespaces, scan_container,
};
use super::options::{criu_failed, MountMismatch, RestoreOptions};
use super::{DESCRIPTORS, MOUNT_IMAGE};
use crate::boundary::{
    bind_mounts, broken_ties, connect_volumes, without_host_mounts, Boundary, BOUNDARY_FILE,
};
use crate::cleanup::RestoreUndo;
use crate::criu::{Criu, Notification};
use crate::error::{Result, RuntimeError};
use crate::lifecycle::{load_bundle_spec, validate_id, Runtime};
use crate::lock::StateLock;
use crate::mntns::in_mount_namespace;
use libcgroups::common::{AnyCgroupManager, CgroupManager, ControllerOpt};
use libcontainer::config::YoukiConfig;
use libcontainer::container::{Container, ContainerStatus};
use mountv2::image::MountImage;
use oci_spec::runtime::{LinuxResources, Spec};
use rust_criu::rust_criu_protobuf::rpc::{
    Cgroup_root, Criu_opts, Criu_req, Criu_req_type, Ext_mount_map, Inherit_fd,
};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// What a restore checked before making anything.
struct RestoreInput {
    spec: Spec,
    /// The bundle, absolute.
    bundle: PathBuf,
    criu: Criu,
    /// The bundle's bind mounts: destination in the container, source on this host.
    binds: Vec<(PathBuf, PathBuf)>,
}

/// A restore in progress. Dropped before [`Restoring::finish`], its guard undoes the restore.
struct Restoring<'a> {
    runtime: &'a Runtime,
    id: &'a str,
    opts: &'a RestoreOptions,
    input: RestoreInput,
    undo: RestoreUndo<'a>,
}

/// The container's state as recorded before CRIU runs, and its cgroups.
struct Recorded {
    container: Container,
    /// The container's cgroup, absolute (`/a/b`) in every hierarchy.
    cgroup: String,
    manager: AnyCgroupManager,
    resources: LinuxResources,
}

/// The mount namespace CRIU restores from, and the host's, to come back to.
struct CriuNamespace {
    host: File,
    /// The bundle's root filesystem, bound here for CRIU.
    root: PathBuf,
}

/// The request for CRIU, with what it refers to and what the mount check needs.
struct RestoreRequest {
    req: Criu_req,
    /// Image and work directories and namespace files: open until CRIU is done.
    _files: Vec<File>,
    log: PathBuf,
    /// The mount tree the checkpoint recorded, adjusted to this host's cgroups; `None` for a
    /// checkpoint without ferry's mount image (runc's).
    expected: Option<MountImage>,
    boundary: Option<Boundary>,
}

impl Runtime {
    /// `restore`: recreate a container from a checkpoint under `id` with the given bundle.
    /// Returns the restored init's pid. On failure nothing is left: no tasks, cgroup, state.
    pub fn restore(&self, id: &str, opts: &RestoreOptions) -> Result<i32> {
        let input = check_restore_input(id, opts)?;
        let undo = self.claim_state_dir(id, opts)?;
        // As runc's restore: ferry reaps as a subreaper, so that what CRIU leaves behind when
        // it dies (helpers, half-restored tasks) comes to ferry, which ends it on failure.
        // rustix passes the flag as a pid: any non-zero one turns it on.
        if let Err(e) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
            tracing::debug!("becoming a subreaper: {e}");
        }
        let mut r = Restoring {
            runtime: self,
            id,
            opts,
            input,
            undo,
        };
        let mut recorded = r.record_state()?;
        let ns = r.prepare_criu_namespace()?;
        let request = r.build_request(&recorded.cgroup, &ns)?;
        let pid = r.run_criu(request.req, &request.log, &mut recorded)?;
        r.leave_criu_root(&ns.root);
        r.verify_mounts(pid, &ns.host, request.expected, request.boundary.as_ref())?;
        r.finish(recorded.container, pid)
    }

    /// Make the container's state directory, under the state root's lock so that two
    /// restores of one id cannot both pass the check. From here on, everything the restore
    /// makes is undone by the returned guard unless it is disarmed.
    fn claim_state_dir<'a>(&'a self, id: &str, opts: &RestoreOptions) -> Result<RestoreUndo<'a>> {
        self.ensure_root()?;
        let root_lock = StateLock::lock_dir(&self.root, true)
            .map_err(|e| RuntimeError::io(format!("locking {}", self.root.display()), e))?;
        let dir = self.root.join(id);
        if dir.exists() {
            return Err(RuntimeError::Exists(id.to_string()));
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| RuntimeError::io(format!("creating {}", dir.display()), e))?;
        let lock = match StateLock::lock_dir(&dir, true) {
            Ok(l) => l,
            Err(e) => {
                if let Err(e) = crate::cleanup::remove_state_path(&self.root, &dir) {
                    tracing::error!("removing {} after a failed lock: {e}", dir.display());
                }
                return Err(RuntimeError::io(format!("locking {}", dir.display()), e));
            }
        };
        drop(root_lock);
        Ok(RestoreUndo::new(self, id, dir, opts.pid_file.clone(), lock))
    }
}

/// Everything a restore can check before it makes anything: the caller, the bundle, CRIU,
/// the images, and that every bind source exists on this host.
fn check_restore_input(id: &str, opts: &RestoreOptions) -> Result<RestoreInput> {
    validate_id(id)?;
    if !rustix::process::geteuid().is_root() {
        return Err(RuntimeError::Privilege("restore"));
    }
    let spec = load_bundle_spec(&opts.bundle)?;
    let bundle = std::fs::canonicalize(&opts.bundle)
        .map_err(|e| RuntimeError::io(format!("resolving bundle {}", opts.bundle.display()), e))?;
    let criu = opts.common.find_criu()?;
    if !opts.common.image_path.join("inventory.img").exists() {
        return Err(RuntimeError::NoCheckpoint(opts.common.image_path.clone()));
    }
    crate::images::check_page_images(&opts.common.image_path)?;
    super::migrate::check_restore(&opts.common)?;
    let mut binds = Vec::new();
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
        binds.push((dest, src));
    }
    Ok(RestoreInput {
        spec,
        bundle,
        criu,
        binds,
    })
}

impl Restoring<'_> {
    fn dir(&self) -> &Path {
        &self.undo.dir
    }

    /// Phase: record the container (`creating`) and its config, and make its cgroup manager.
    fn record_state(&self) -> Result<Recorded> {
        let (id, spec, bundle, dir) = (self.id, &self.input.spec, &self.input.bundle, self.dir());
        // As at create: libcontainer's state names the config it runs (exec reads the
        // container's cgroup path from it), `state` the user's bundle.
        let config_bundle = self.runtime.compatible_bundle(id, bundle)?;
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
        c.set_systemd(self.runtime.systemd_cgroup);
        c.set_annotations(spec.annotations().clone());
        c.save()
            .map_err(|e| RuntimeError::container("recording the restored container", e))?;
        let mut cfg = YoukiConfig::from_spec(spec, id)
            .map_err(|e| RuntimeError::Invalid(format!("reading config.json: {e}")))?;
        if !self.runtime.systemd_cgroup {
            // As at create: runc's place in every hierarchy, never libcontainer's default.
            let given = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
            cfg.cgroup_path = crate::cgroup_paths::container_cgroup(given.as_deref(), id).into();
        }
        cfg.save(dir)
            .map_err(|e| RuntimeError::Invalid(format!("saving the container config: {e}")))?;
        let manager = libcgroups::common::create_cgroup_manager(libcgroups::common::CgroupConfig {
            cgroup_path: cfg.cgroup_path.clone(),
            systemd_cgroup: self.runtime.systemd_cgroup,
            container_name: id.to_string(),
        })
        .map_err(|e| RuntimeError::cgroup(format!("cgroups of container \"{id}\""), e))?;
        let resources = spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().clone())
            .unwrap_or_default();
        Ok(Recorded {
            container: c,
            cgroup: format!(
                "/{}",
                cfg.cgroup_path
                    .display()
                    .to_string()
                    .trim_start_matches('/')
            ),
            manager,
            resources,
        })
    }

    /// Phase: CRIU restores from a mount namespace of ferry's own, a slave of the host's:
    /// nothing mounted there (the root's bind, volume binds, CRIU's cgroup yard) propagates
    /// back to the host. ferry enters it itself, because CRIU resolves the directory fds it is
    /// given in its client's namespace. The bundle's root filesystem is bound there, with
    /// the mount points CRIU needs.
    fn prepare_criu_namespace(&mut self) -> Result<CriuNamespace> {
        let host = File::open("/proc/self/ns/mnt")
            .map_err(|e| RuntimeError::io("opening the host's mount namespace", e))?;
        enter_private_mount_namespace()?;
        let criu_root = self.dir().join("criu-root");
        std::fs::create_dir_all(&criu_root)
            .map_err(|e| RuntimeError::io(format!("creating {}", criu_root.display()), e))?;
        let (spec, bundle) = (&self.input.spec, &self.input.bundle);
        let rootfs = bundle.join(
            spec.root()
                .as_ref()
                .map(|r| r.path().clone())
                .unwrap_or_default(),
        );
        rustix::mount::mount_bind_recursive(&rootfs, &criu_root).map_err(|e| {
            RuntimeError::io(format!("binding {} for CRIU", rootfs.display()), e.into())
        })?;
        let made = create_mountpoints(&rootfs, spec, bundle);
        self.undo.note_made_in_rootfs(&rootfs, made);
        Ok(CriuNamespace {
            host,
            root: criu_root,
        })
    }

    /// Phase: the CRIU request: directories, flags, namespaces, cgroups, external mounts and
    /// inherited descriptors.
    fn build_request(&self, cgroup: &str, ns: &CriuNamespace) -> Result<RestoreRequest> {
        let common = &self.opts.common;
        let images = open_dir(&common.image_path, "image directory")?;
        let work_path = common.work_path();
        let work = open_dir(&work_path, "work directory")?;
        let mut o = Criu_opts::new();
        o.set_images_dir_fd(images.as_raw_fd());
        o.set_work_dir_fd(work.as_raw_fd());
        o.set_log_file("restore.log".into());
        o.set_log_level(4);
        o.set_root(ns.root.display().to_string());
        common.apply(&self.input.spec, &mut o)?;
        super::migrate::apply_restore(common, &mut o);
        o.set_rst_sibling(true);
        let mut files = self.namespace_options(&mut o)?;
        files.extend([images, work]);
        if let Some(p) = &self.opts.lsm_profile {
            o.set_lsm_profile(p.clone());
        }
        if let Some(p) = &self.opts.lsm_mount_context {
            o.set_lsm_mount_context(p.clone());
        }
        let hierarchies = self.cgroup_roots(&mut o, cgroup)?;
        let boundary = read_boundary(&common.image_path)?;
        let mut expected = self.expected_mounts(boundary.as_ref())?;
        match expected.as_mut() {
            Some(image) => cgroup_mounts_from_host(image, cgroup, &mut o)?,
            None => runc_external_mounts(&hierarchies, cgroup, &mut o),
        }
        for (dest, src) in &self.input.binds {
            o.ext_mnt.push(ext_mount(dest.display(), src.display()));
        }
        inherit_stdio(&common.image_path, &mut o)?;
        let mut req = Criu_req::new();
        req.set_type(Criu_req_type::RESTORE);
        req.opts = protobuf::MessageField::some(o);
        Ok(RestoreRequest {
            req,
            _files: files,
            log: work_path.join("restore.log"),
            expected,
            boundary,
        })
    }

    /// Namespaces the bundle names by path: net and pid were dumped as external and come back
    /// as inherited fds (kept open, without close-on-exec, until CRIU is done: the returned
    /// files); the others are joined.
    fn namespace_options(&self, o: &mut Criu_opts) -> Result<Vec<File>> {
        let mut files = Vec::new();
        for (kind, key, path) in external_namespaces(&self.input.spec) {
            let f = File::open(&path)
                .map_err(|e| RuntimeError::io(format!("{kind} namespace {path}"), e))?;
            rustix::io::fcntl_setfd(&f, rustix::io::FdFlags::empty())
                .map_err(|e| RuntimeError::io(format!("{kind} namespace {path}"), e.into()))?;
            let mut i = Inherit_fd::new();
            i.set_key(key.to_string());
            i.set_fd(f.as_raw_fd());
            o.inherit_fd.push(i);
            files.push(f);
        }
        for (kind, path) in joined_namespaces(&self.input.spec) {
            let mut j = rust_criu::rust_criu_protobuf::rpc::Join_namespace::new();
            j.set_ns(kind.to_string());
            j.set_ns_file(path);
            o.join_ns.push(j);
        }
        Ok(files)
    }

    /// Tasks go to this bundle's cgroup, also under a new id, in every hierarchy: the
    /// container has its own cgroup in each (named ones and the unified one of a hybrid host
    /// included), and CRIU re-roots the dumped one there. A checkpoint from an older ferry,
    /// whose container sat at `/` of the named hierarchies, is re-rooted the same way.
    /// Returns the v1 hierarchies (mount point, controllers).
    fn cgroup_roots(&self, o: &mut Criu_opts, cgroup: &str) -> Result<Vec<(PathBuf, String)>> {
        let hierarchies = crate::cgroup_paths::v1_hierarchies();
        let mut default_root = Cgroup_root::new();
        if crate::cgroup_paths::unified_only() {
            // Only the unified hierarchy (CRIU names it by the empty controller) is the
            // container's. v1 hierarchies the kernel still has but this mount namespace does
            // not show are not: re-rooted there too, CRIU would make the container's cgroup
            // in them, copy what the task's cgroup holds below it, and give the v1 freezer
            // the checkpoint's frozen state, which nothing here thaws.
            default_root.set_ctrl(String::new());
        }
        default_root.set_path(cgroup.to_string());
        o.cg_root.push(default_root);
        // Named hierarchies' and the hybrid unified one's cgroups are ferry's to remove (at
        // delete, or when this restore fails): noted before they are made.
        let unmanaged: Vec<String> = hierarchies
            .iter()
            .filter(|(_, ctrl)| ctrl.starts_with("name="))
            .map(|(mp, _)| mp.clone())
            .chain(crate::cgroup_paths::hybrid_unified())
            .map(|root| {
                root.join(cgroup.trim_start_matches('/'))
                    .display()
                    .to_string()
            })
            .collect();
        add_extra_cgroups(self.dir(), &unmanaged);
        for (mountpoint, ctrl) in &hierarchies {
            // The cgroup exists before CRIU runs (as with runc): CRIU then leaves its settings
            // alone instead of bringing back the dumped ones, a frozen freezer among them
            // (engines pause a container while they checkpoint it).
            let cg_dir = mountpoint.join(cgroup.trim_start_matches('/'));
            std::fs::create_dir_all(&cg_dir).map_err(|e| {
                RuntimeError::io(format!("creating cgroup {}", cg_dir.display()), e)
            })?;
            let mut cg = Cgroup_root::new();
            cg.set_ctrl(ctrl.clone());
            cg.set_path(cgroup.to_string());
            o.cg_root.push(cg);
        }
        Ok(hierarchies)
    }

    /// The mount tree the checkpoint recorded, without the host's mounts the boundary names.
    fn expected_mounts(&self, boundary: Option<&Boundary>) -> Result<Option<MountImage>> {
        let image_path = self.opts.common.image_path.join(MOUNT_IMAGE);
        if !image_path.exists() {
            return Ok(None);
        }
        let image = load_mount_image(&image_path)?;
        Ok(Some(match boundary {
            Some(b) => without_host_mounts(&image, &b.host_propagated),
            None => image,
        }))
    }

    /// Phase: run CRIU, answering its notifications: at `setup-namespaces` the restored init
    /// goes into its cgroup, is recorded (still `creating`, so that should ferry die before
    /// the end, `state`, `kill` and `delete` find it) and gets the bundle's resources; at
    /// `post-restore` the pid file is written; a terminal's master goes to the console
    /// socket. Returns the restored init's pid, thawed.
    fn run_criu(&mut self, req: Criu_req, log: &Path, rec: &mut Recorded) -> Result<i32> {
        let (pid_file, console) = (&self.opts.pid_file, &self.opts.console_socket);
        let undo = &mut self.undo;
        let mut seen_pid: Option<i32> = None;
        let mut notify = |n: Notification| -> std::result::Result<(), String> {
            match n.script.as_str() {
                "setup-namespaces" => {
                    seen_pid = Some(n.pid);
                    undo.note_restored(n.pid);
                    rec.manager
                        // nix's Pid: the type libcgroups' CgroupManager::add_task takes.
                        .add_task(nix::unistd::Pid::from_raw(n.pid))
                        .map_err(|e| format!("placing the restored init in its cgroup: {e}"))?;
                    rec.container.set_pid(n.pid);
                    rec.container
                        .save()
                        .map_err(|e| format!("recording the restored init's pid: {e}"))?;
                    rec.manager
                        .apply(&ControllerOpt {
                            resources: &rec.resources,
                            disable_oom_killer: false,
                            oom_score_adj: None,
                            freezer_state: None,
                        })
                        .map_err(|e| format!("applying the bundle's resources: {e}"))?;
                }
                "post-restore" => {
                    seen_pid = Some(n.pid);
                    undo.note_restored(n.pid);
                    if let Some(p) = pid_file {
                        write_pid_file(p, n.pid)
                            .map_err(|e| format!("writing pid file {}: {e}", p.display()))?;
                    }
                }
                "orphan-pts-master" => {
                    let Some(fd) = n.fd else {
                        return Err("CRIU sent no pty master".into());
                    };
                    let Some(sock) = console else {
                        return Err("the container has a terminal: pass --console-socket".into());
                    };
                    send_console(sock, fd)
                        .map_err(|e| format!("console socket {}: {e}", sock.display()))?;
                }
                _ => {}
            }
            Ok(())
        };
        let resp = self.input.criu.call(req, &mut notify, None);
        let resp = resp.map_err(|e| criu_failed("restore", e, log))?;
        if !resp.success() {
            return Err(criu_failed(
                "restore",
                crate::criu::CriuError::Failed {
                    op: "restore",
                    msg: resp.cr_errmsg().to_string(),
                    log: log.display().to_string(),
                },
                log,
            ));
        }
        let pid = resp
            .restore
            .as_ref()
            .map(|r| r.pid())
            .or(seen_pid)
            .ok_or_else(|| crate::criu::CriuError::Rpc("the reply names no restored pid".into()))?;
        self.undo.note_restored(pid);
        // A container is restored running (as runc does), also when its checkpoint was taken
        // while paused.
        rec.manager
            .freeze(libcgroups::common::FreezerState::Thawed)
            .map_err(|e| {
                RuntimeError::cgroup(format!("thawing restored container \"{}\"", self.id), e)
            })?;
        record_extra_cgroups(pid, self.dir());
        Ok(pid)
    }

    /// CRIU is done with its root: unmount it (the restored tasks keep their own mounts).
    fn leave_criu_root(&self, criu_root: &Path) {
        if let Err(e) = rustix::mount::unmount(criu_root, rustix::mount::UnmountFlags::DETACH) {
            tracing::debug!("unmounting {}: {e}", criu_root.display());
        }
        if let Err(e) = std::fs::remove_dir(criu_root) {
            tracing::debug!("removing {}: {e}", criu_root.display());
        }
    }

    /// Phase: the mount tree must be the one that was checkpointed, up to what this host and
    /// this bundle explain: the ties to the host are re-made and checked, then the tree is
    /// compared with the image.
    fn verify_mounts(
        &self,
        pid: i32,
        host_ns: &File,
        expected: Option<MountImage>,
        boundary: Option<&Boundary>,
    ) -> Result<()> {
        let spec = &self.input.spec;
        let reconnected = connect_volumes(spec, &self.input.bundle, host_ns, pid, boundary)?;
        crate::fault::untie_after_restore(pid, reconnected.ties.iter().map(|t| &t.mountpoint))?;
        let broken = broken_ties(&reconnected, host_ns, pid)?;
        if !broken.is_empty() {
            self.mismatch(format!(
                "the restored container \"{}\" lost {} tie(s) to the host's mounts:\n{}",
                self.id,
                broken.len(),
                broken.join("\n")
            ))?;
        }
        let Some(expected) = expected else {
            return Ok(());
        };
        let brought = &reconnected.brought;
        let mut live = without_host_mounts(&scan_container(pid)?, brought);
        let repairs = flag_repairs(&expected.tree, &live.tree);
        if !repairs.is_empty() {
            restore_mount_flags(pid, &repairs)?;
            // Looked at again as before: without what this host brought in.
            live = without_host_mounts(&scan_container(pid)?, brought);
        }
        let diffs = unexplained(
            mountv2::diff::diff(&expected.tree, &live.tree),
            &bundle_points(&self.input.binds),
        );
        if !diffs.is_empty() {
            let report: Vec<String> = diffs.iter().map(|d| d.to_string()).collect();
            self.mismatch(format!(
                "the restored mount tree of \"{}\" differs from the checkpoint in {} place(s):\n{}",
                self.id,
                diffs.len(),
                report.join("\n")
            ))?;
        }
        Ok(())
    }

    /// A restored tree that is not the checkpointed one: fail (the guard removes everything),
    /// or with `--mount-mismatch=warn` report and go on.
    fn mismatch(&self, msg: String) -> Result<()> {
        match self.opts.mount_mismatch {
            MountMismatch::Fail => Err(RuntimeError::MountMismatch(msg)),
            MountMismatch::Warn => {
                tracing::warn!("{msg}");
                Ok(())
            }
        }
    }

    /// Phase: record the container running, its init's identity, and keep everything.
    fn finish(self, mut c: Container, pid: i32) -> Result<i32> {
        c.set_pid(pid);
        // Created first, so that the creation time is recorded, then running.
        c.set_status(ContainerStatus::Created);
        c.set_status(ContainerStatus::Running);
        c.set_creator(rustix::process::geteuid().as_raw());
        c.save()
            .map_err(|e| RuntimeError::container("recording the restored container", e))?;
        self.runtime.record_init(self.dir(), pid)?;
        self.undo.disarm();
        Ok(pid)
    }
}

/// The checkpoint's record of the container's boundary with its host, if it has one.
fn read_boundary(image_dir: &Path) -> Result<Option<Boundary>> {
    match std::fs::read(image_dir.join(BOUNDARY_FILE)) {
        Ok(text) => {
            let mut b: Boundary =
                serde_json::from_slice(&text).map_err(|e| RuntimeError::CheckpointFile {
                    what: format!("{BOUNDARY_FILE} in the checkpoint is malformed"),
                    source: e.into(),
                })?;
            b.upgrade();
            Ok(Some(b))
        }
        Err(_) => Ok(None),
    }
}

fn ext_mount(key: impl std::fmt::Display, val: impl std::fmt::Display) -> Ext_mount_map {
    let mut m = Ext_mount_map::new();
    m.set_key(key.to_string());
    m.set_val(val.to_string());
    m
}

/// cgroup v1 mounts come from this host's hierarchies, rooted at the new container's cgroup;
/// the expected image is adjusted the same way before it is compared.
fn cgroup_mounts_from_host(image: &mut MountImage, cgroup: &str, o: &mut Criu_opts) -> Result<()> {
    for (mp, idx, root) in cgroup_mounts(image) {
        let new_root = if root == "/" {
            root
        } else {
            cgroup.to_string()
        };
        let hierarchy = Path::new(&mp)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let host = crate::cgroup_paths::v1_dir_named(&hierarchy, &new_root);
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
        o.ext_mnt.push(ext_mount(mp, host.display()));
    }
    Ok(())
}

/// A checkpoint without ferry's mount image comes from runc, which dumps the masked files
/// (binds of the container's /dev/null) as external under the key "/dev/null" and restores
/// them from the host's /dev/null; CRIU needs the same mapping to restore them. Its cgroup v1
/// mounts are external under their mount points: bound here from this container's cgroups
/// (named hierarchies whole).
fn runc_external_mounts(hierarchies: &[(PathBuf, String)], cgroup: &str, o: &mut Criu_opts) {
    o.ext_mnt.push(ext_mount("/dev/null", "/dev/null"));
    for (mountpoint, ctrl) in hierarchies {
        let host = if ctrl.starts_with("name=") {
            mountpoint.clone()
        } else {
            mountpoint.join(cgroup.trim_start_matches('/'))
        };
        o.ext_mnt
            .push(ext_mount(mountpoint.display(), host.display()));
    }
}

/// The init's stdio pipes and sockets are replaced by ours (runc's contract).
fn inherit_stdio(image_dir: &Path, o: &mut Criu_opts) -> Result<()> {
    let Ok(text) = std::fs::read(image_dir.join(DESCRIPTORS)) else {
        return Ok(());
    };
    let descriptors: Vec<String> =
        serde_json::from_slice(&text).map_err(|e| RuntimeError::CheckpointFile {
            what: format!("{DESCRIPTORS} in the checkpoint is malformed"),
            source: e.into(),
        })?;
    for (fd, d) in descriptors.iter().enumerate().take(3) {
        if d.starts_with("pipe:") || d.starts_with("socket:") {
            let mut i = Inherit_fd::new();
            i.set_key(d.clone());
            i.set_fd(fd as i32);
            o.inherit_fd.push(i);
        }
    }
    Ok(())
}

/// Give mounts the flags CRIU did not restore ([`flag_repairs`]), in the restored container.
fn restore_mount_flags(pid: i32, repairs: &[(String, mountv2::model::MountFlags)]) -> Result<()> {
    in_mount_namespace(pid, |root| {
        for (mp, flags) in repairs {
            mountv2::apply::set_flags_at(root, mp, flags).map_err(|e| {
                RuntimeError::io(
                    format!("setting the flags of /{mp} in the restored container"),
                    e,
                )
            })?;
        }
        Ok(())
    })
}

/// CRIU mounts onto the paths it recorded; in a fresh root filesystem (an imported
/// checkpoint, another host) the bundle's mount points may not exist yet. Create them, never
/// following a symlink out of the root; what cannot be made is left for CRIU to report. A
/// mount point beneath another of the bundle's mounts (`/dev/pts` in `/dev`'s tmpfs) lies in
/// that mount, which CRIU restores, not in the root filesystem. Returns what was made
/// (relative path, whether a file), parents first, for a failed restore to take away again.
pub(super) fn create_mountpoints(
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
