//! `checkpoint`: dump a container with CRIU and record its mount tree.
//!
//! The phases: check the container and CRIU, record the container's mount tree and stdio
//! (not for a pre-dump), build CRIU's options, record the container's boundary with the
//! host (what CRIU must skip or treat as external), run CRIU, and remove the dumped
//! container unless it keeps running.

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
use libcontainer::container::{Container, ContainerStatus};
use oci_spec::runtime::Spec;
use rust_criu::rust_criu_protobuf::rpc::{Criu_opts, Criu_req, Criu_req_type, Ext_mount_map};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

impl Runtime {
    /// `checkpoint`: dump the container with CRIU and record its mount tree. A failed
    /// checkpoint leaves the container as it was (running, or paused).
    pub fn checkpoint(&self, id: &str, opts: &CheckpointOptions) -> Result<()> {
        validate_id(id)?;
        let _lock = StateLock::container(&self.root, id, true)?;
        let mut c = self.load_container(id)?;
        let (status, pid) = running_init(&c, id)?;
        let criu = opts.common.find_criu()?;
        let mut migration = super::migrate::prepare_dump(&criu, opts)?;
        let images = open_dir(&opts.common.image_path, "image directory")?;
        let work_path = opts.common.work_path();
        let work = open_dir(&work_path, "work directory")?;
        let spec = load_bundle_spec(c.bundle())?;
        if !opts.pre_dump {
            record_mounts_and_stdio(pid, &opts.common.image_path)?;
        }
        let mut o = dump_options(&c, &spec, pid, opts, &images, &work)?;
        migration.apply(&mut o);
        let mut external: Vec<String> = bind_mounts(&spec)
            .into_iter()
            .map(|(dest, _)| dest.display().to_string())
            .collect();
        if !opts.pre_dump {
            external.extend(record_boundary(&c, &spec, pid, opts, &mut o)?);
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
        run_dump(&criu, o, opts, &work_path, &mut migration, pid)?;
        if !opts.leave_running && !opts.pre_dump {
            // As runc: the dumped container's tasks are gone; remove it so that its id can be
            // restored.
            c.refresh_status().ok();
            self.remove_container(id, &mut c, true)?;
        }
        Ok(())
    }
}

/// The status and init pid of a container that can be checkpointed: running or paused.
fn running_init(c: &Container, id: &str) -> Result<(ContainerStatus, i32)> {
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
        .ok_or_else(|| RuntimeError::NoInitPid(id.to_string()))?
        .as_raw();
    Ok((status, pid))
}

/// The mount tree as the container sees it, and the targets of its stdio, beside CRIU's
/// images.
fn record_mounts_and_stdio(pid: i32, image_dir: &Path) -> Result<()> {
    let image = scan_container(pid)?;
    let text = image
        .to_json()
        .map_err(|e| RuntimeError::encode("the mount image", e))?;
    write_image_file(&image_dir.join(MOUNT_IMAGE), text.as_bytes())
        .map_err(|e| RuntimeError::io(format!("writing {MOUNT_IMAGE}"), e))?;
    let descriptors: Vec<String> = (0..3)
        .map(|fd| {
            std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "/dev/null".into())
        })
        .collect();
    let text =
        serde_json::to_vec(&descriptors).map_err(|e| RuntimeError::encode("descriptors", e))?;
    write_image_file(&image_dir.join(DESCRIPTORS), &text)
        .map_err(|e| RuntimeError::io("writing descriptors.json", e))
}

/// The log CRIU writes in the work directory.
fn log_name(pre_dump: bool) -> &'static str {
    if pre_dump {
        "pre-dump.log"
    } else {
        "dump.log"
    }
}

/// CRIU's options for dumping `pid`: directories, root, the flags and namespaces joined by
/// path (external, by inode); the migration adds its own.
fn dump_options(
    c: &Container,
    spec: &Spec,
    pid: i32,
    opts: &CheckpointOptions,
    images: &File,
    work: &File,
) -> Result<Criu_opts> {
    let mut o = Criu_opts::new();
    o.set_images_dir_fd(images.as_raw_fd());
    o.set_work_dir_fd(work.as_raw_fd());
    o.set_log_file(log_name(opts.pre_dump).into());
    o.set_log_level(4);
    o.set_pid(pid);
    let root = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_default();
    o.set_root(c.bundle().join(root).display().to_string());
    opts.common.apply(spec, &mut o)?;
    o.set_leave_running(opts.leave_running || opts.pre_dump);
    for (kind, key, path) in external_namespaces(spec) {
        // CRIU dumps a namespace the container joined by path as external, by inode;
        // restore hands it back as an inherited fd under the same key (runc's keys).
        let inode = std::fs::metadata(&path)
            .map_err(|e| RuntimeError::io(format!("{kind} namespace {path}"), e))?
            .ino();
        o.external.push(format!("{kind}[{inode}]:{key}"));
    }
    Ok(o)
}

/// The container's boundary with the host, recorded beside the images: cgroup v1
/// hierarchies are bound from the host's, rooted at the container's cgroup (external,
/// re-bound on restore from the new container's cgroup: returned); what the host propagated
/// into volumes is the host's (CRIU skips it, restore brings in what the restoring host has
/// there); volumes' ties to host groups are declared, and re-made by ferry after CRIU.
fn record_boundary(
    c: &Container,
    spec: &Spec,
    pid: i32,
    opts: &CheckpointOptions,
    o: &mut Criu_opts,
) -> Result<Vec<String>> {
    let image = load_mount_image(&opts.common.image_path.join(MOUNT_IMAGE))?;
    let cgroup_points = cgroup_mounts(&image).into_iter().map(|(mp, _, _)| mp);
    let container_mountinfo = crate::boundary::read_mountinfo(&format!("/proc/{pid}/mountinfo"))
        .map_err(|e| RuntimeError::io("reading the container's mountinfo", e))?;
    let host_mountinfo = crate::boundary::read_mountinfo("/proc/self/mountinfo")
        .map_err(|e| RuntimeError::io("reading the host's mountinfo", e))?;
    let host_tied = host_tied_mounts(&container_mountinfo, &host_mountinfo);
    let mut boundary = classify(&image, volumes(spec), &host_tied);
    // Every tie to a host group, whatever the bundle's options, named so that the restoring
    // host can find its own counterpart.
    let names = host_names(spec, c.bundle());
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
                    "the host propagated a mount at {mp} into a volume; CRIU's RPC names \
                     mounts to skip as UTF-8 text, and this one is not: unmount it before \
                     checkpointing"
                ))
            })?;
        o.skip_mnt.push(raw);
    }
    o.set_ext_masters(true);
    o.set_ext_sharing(true);
    let text =
        serde_json::to_vec_pretty(&boundary).map_err(|e| RuntimeError::encode(BOUNDARY_FILE, e))?;
    write_image_file(&opts.common.image_path.join(BOUNDARY_FILE), &text)
        .map_err(|e| RuntimeError::io(format!("writing {BOUNDARY_FILE}"), e))?;
    Ok(cgroup_points.collect())
}

/// Run CRIU's dump (or pre-dump) of `pid` with options `o`; its log is in `work_path`. The
/// migration answers CRIU's notifications and says, on failure, where the container is.
fn run_dump(
    criu: &Criu,
    o: Criu_opts,
    opts: &CheckpointOptions,
    work_path: &Path,
    migration: &mut super::migrate::DumpMigration,
    pid: i32,
) -> Result<()> {
    let pre_dump = opts.pre_dump;
    let mut req = Criu_req::new();
    req.set_type(if pre_dump {
        Criu_req_type::PRE_DUMP
    } else {
        Criu_req_type::DUMP
    });
    req.opts = protobuf::MessageField::some(o);
    let log = work_path.join(log_name(pre_dump));
    let op = if pre_dump { "pre-dump" } else { "dump" };
    // CRIU's images hold the container's memory: readable by root only.
    let private_files: crate::criu::PreExec = Box::new(|| {
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
        Ok(())
    });
    let tcp = opts.common.tcp_established;
    let resp = criu
        .call(
            req,
            &mut |n: Notification| migration.notified(&n.script),
            Some(private_files),
        )
        .map_err(|e| migration.failed(criu_failed(op, e, &log), pid, tcp))?;
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
            tcp,
        ));
    }
    Ok(())
}
