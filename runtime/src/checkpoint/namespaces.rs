//! Namespaces around a restore: entering a container's mount namespace, CRIU's own private
//! mount namespace, and the namespaces a bundle names by path.

use crate::error::{Result, RuntimeError};
use oci_spec::runtime::LinuxNamespaceType;
use std::fs::File;

/// The mount tree of `pid`'s namespace as the process sees it, scanned from inside.
pub(super) fn scan_container(pid: i32) -> Result<mountv2::image::MountImage> {
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
pub(crate) fn in_mount_namespace(
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

pub(super) fn namespace_paths(spec: &oci_spec::runtime::Spec) -> Vec<(LinuxNamespaceType, String)> {
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
pub(super) fn external_namespaces(
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
pub(super) fn joined_namespaces(spec: &oci_spec::runtime::Spec) -> Vec<(&'static str, String)> {
    namespace_paths(spec)
        .into_iter()
        .filter_map(|(t, p)| match t {
            LinuxNamespaceType::Ipc => Some(("ipc", p)),
            LinuxNamespaceType::Uts => Some(("uts", p)),
            _ => None,
        })
        .collect()
}

/// Move this process into a new mount namespace whose mounts are slaves of the current
/// ones: it sees the host's mounts, and nothing it mounts reaches the host.
pub(super) fn enter_private_mount_namespace() -> Result<()> {
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
