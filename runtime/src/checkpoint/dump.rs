//! `checkpoint`: dump a container with CRIU and record its mount tree.

use super::cgroups::cgroup_mounts;
use super::files::{load_mount_image, open_dir, write_image_file};
use super::namespaces::{external_namespaces, scan_container};
use super::options::{criu_failed, CheckpointOptions};
use super::{DESCRIPTORS, MOUNT_IMAGE};
use crate::boundary::{
    bind_mounts, classify, copy_ties, host_names, host_tied_mounts, record_ties, volumes,
    BOUNDARY_FILE,
};
use crate::criu::{Criu, Notification};
use crate::error::{Result, RuntimeError};
use crate::lifecycle::{load_bundle_spec, validate_id, Runtime};
use crate::lock::StateLock;
use libcontainer::container::ContainerStatus;
use rust_criu::rust_criu_protobuf::rpc::{Criu_opts, Criu_req, Criu_req_type, Ext_mount_map};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;

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
        let mut migration = super::migrate::prepare_dump(&criu, opts)?;
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
        migration.apply(&mut o);
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
                let freezer = crate::cgroup_paths::freezer_dir(&cfg.cgroup_path)?;
                o.set_freeze_cgroup(freezer.display().to_string());
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
            .call(
                req,
                &mut |n: Notification| migration.notified(&n.script),
                Some(private_files),
            )
            .map_err(|e| {
                migration.failed(criu_failed(op, e, &log), pid, opts.common.tcp_established)
            })?;
        if !resp.success() {
            return Err(migration.failed(
                criu_failed(
                    op,
                    crate::criu::CriuError::Failed {
                        op,
                        msg: resp.cr_errmsg().to_string(),
                        log: log.display().to_string(),
                    },
                    &log,
                ),
                pid,
                opts.common.tcp_established,
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
}
