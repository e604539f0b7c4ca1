//! `restore`: recreate a container from a checkpoint and check its mount tree.

use super::cgroups::{add_extra_cgroups, cgroup_mounts, record_extra_cgroups};
use super::files::{load_mount_image, open_dir, send_console, write_pid_file};
use super::namespaces::{
    enter_private_mount_namespace, external_namespaces, in_mount_namespace, joined_namespaces,
    scan_container,
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
use libcgroups::common::{CgroupManager, ControllerOpt};
use libcontainer::config::YoukiConfig;
use libcontainer::container::{Container, ContainerStatus};
use rust_criu::rust_criu_protobuf::rpc::{
    Cgroup_root, Criu_opts, Criu_req, Criu_req_type, Ext_mount_map, Inherit_fd,
};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

impl Runtime {
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
        if !opts.common.image_path.join("inventory.img").exists() {
            return Err(RuntimeError::Invalid(format!(
                "{} holds no checkpoint (no inventory.img): pass the --image-path a checkpoint wrote",
                opts.common.image_path.display()
            )));
        }
        crate::images::check_page_images(&opts.common.image_path)?;
        super::migrate::check_restore(&opts.common)?;
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
        super::migrate::apply_restore(&opts.common, &mut o);
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
