//! Namespaces around a restore: entering a container's mount namespace, CRIU's own private
//! mount namespace, and the namespaces a bundle names by path.

use crate::error::{Result, RuntimeError};
use crate::mntns::in_mount_namespace;
use oci_spec::runtime::LinuxNamespaceType;

/// The mount tree of `pid`'s namespace as the process sees it, scanned from inside.
pub(super) fn scan_container(pid: i32) -> Result<mountv2::image::MountImage> {
    let mut image = None;
    in_mount_namespace(pid, |_root| {
        let opts = mountv2::dump::DumpOptions {
            content: false,
            ..Default::default()
        };
        image = Some(
            mountv2::dump::dump(&opts).map_err(|source| RuntimeError::MountScan { pid, source })?,
        );
        Ok(())
    })?;
    image.ok_or_else(|| RuntimeError::Invalid(format!("scanning the mounts of process {pid}")))
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
    // nix, not rustix: rustix 1.1 deprecates its safe unshare for an unsafe one.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| RuntimeError::io("creating a mount namespace for CRIU", e.into()))?;
    rustix::mount::mount_change(
        "/",
        rustix::mount::MountPropagationFlags::REC
            | rustix::mount::MountPropagationFlags::DOWNSTREAM,
    )
    .map_err(|e| {
        RuntimeError::io(
            "making CRIU's mount namespace a slave of the host's",
            e.into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_named_by_path_are_external_or_joined() {
        let spec: oci_spec::runtime::Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "linux": {"namespaces": [
                {"type": "mount"},
                {"type": "network", "path": "/run/netns/a"},
                {"type": "pid", "path": "/proc/7/ns/pid"},
                {"type": "ipc", "path": "/proc/7/ns/ipc"},
                {"type": "uts", "path": "/proc/7/ns/uts"},
                {"type": "cgroup", "path": "/proc/7/ns/cgroup"}
            ]}
        }))
        .expect("a spec");
        assert_eq!(
            external_namespaces(&spec),
            vec![
                ("net", "extRootNetNS", "/run/netns/a".to_string()),
                ("pid", "extRootPidNS", "/proc/7/ns/pid".to_string())
            ]
        );
        assert_eq!(
            joined_namespaces(&spec),
            vec![
                ("ipc", "/proc/7/ns/ipc".to_string()),
                ("uts", "/proc/7/ns/uts".to_string())
            ]
        );
        let bare: oci_spec::runtime::Spec =
            serde_json::from_value(serde_json::json!({"ociVersion": "1.0.2"})).expect("a spec");
        assert!(external_namespaces(&bare).is_empty() && joined_namespaces(&bare).is_empty());
    }
}
