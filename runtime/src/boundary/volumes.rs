//! A restored container's volumes and their ties to this host: the bundle's bind mounts,
//! and re-making the ties (peer, slave) a checkpoint recorded with this host's mounts.

use super::{
    check_ties, volume_propagation, Boundary, HostAnchor, HostNames, Tie, TieKind, Volume,
    VolumePropagation,
};
use crate::error::{Result, RuntimeError};
use crate::mntns::{in_mount_namespace, in_namespace};
use mountv2::scan::RawMount;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Bind mounts of a spec: CRIU must treat them as external (their sources are host paths).
pub(crate) fn bind_mounts(spec: &oci_spec::runtime::Spec) -> Vec<(PathBuf, PathBuf)> {
    volumes(spec)
        .into_iter()
        .map(|v| (PathBuf::from(v.destination), v.source))
        .collect()
}

/// The bundle's bind mounts with their propagation.
pub(crate) fn volumes(spec: &oci_spec::runtime::Spec) -> Vec<Volume> {
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

/// This host's names for host mounts (read in the namespace ferry runs in): the mount
/// holding each volume's source, and each cgroup v1 hierarchy's mount.
pub(crate) fn host_names(spec: &oci_spec::runtime::Spec, bundle: &Path) -> HostNames {
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
pub(crate) fn ties_from_options(spec: &oci_spec::runtime::Spec, bundle: &Path) -> Vec<Tie> {
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
pub(crate) struct Reconnected {
    /// Mount points brought in from this host (below tied volumes).
    pub(crate) brought: Vec<String>,
    pub(crate) ties: Vec<Tie>,
    pub(crate) names: HostNames,
    /// Ties the kernel refused to re-make, in words.
    pub(crate) failed: Vec<String>,
}

/// A host mount a recorded tie is to be re-made with: opened on this host, and whether it is
/// shared; `None` when this host has no such mount.
struct Anchor {
    tie: Tie,
    host: Option<(File, bool)>,
}

/// A copy of a host mount below a tied volume, to attach in the container.
struct HostCopy {
    /// The volume's destination in the container.
    volume: String,
    kind: TieKind,
    /// Where below the volume.
    rel: String,
    tree: OwnedFd,
}

/// What [`connect_volumes`] gathers in the host's namespace.
struct Gathered {
    names: HostNames,
    ties: Vec<Tie>,
    anchors: Vec<Anchor>,
    copies: Vec<HostCopy>,
}

/// Re-make the container's boundary with this host: bring in the mounts the host has under
/// each tied volume's source now (copies tied to the host's groups, as a container started
/// here would have), then re-tie every container mount that was a peer or slave of a host
/// mount at checkpoint to this host's counterpart.
pub(crate) fn connect_volumes(
    spec: &oci_spec::runtime::Spec,
    bundle: &Path,
    host_ns: &File,
    pid: i32,
    boundary: Option<&Boundary>,
) -> Result<Reconnected> {
    let gathered = in_namespace(host_ns.as_fd(), "the host's", || {
        gather(spec, bundle, boundary)
    })?;
    let mut brought = Vec::new();
    let mut failed = Vec::new();
    in_mount_namespace(pid, |root| {
        // Copies first, while the volumes are not yet peers of the host's groups: attaching
        // them must not propagate back to the host.
        for copy in &gathered.copies {
            brought.push(attach_copy(root, copy)?);
        }
        for a in &gathered.anchors {
            // A host mount the host no longer has below a tied volume: nothing to re-tie.
            if a.tie.if_on_host && !brought.contains(&a.tie.mountpoint) {
                continue;
            }
            if let Err(e) = retie_anchor(root, a) {
                failed.push(e);
            }
        }
        Ok(())
    })?;
    Ok(Reconnected {
        brought,
        ties: gathered.ties,
        names: gathered.names,
        failed,
    })
}

/// From the host's namespace: this host's names, the host mount of each tie and copies of
/// what lies below each tied volume's source.
fn gather(
    spec: &oci_spec::runtime::Spec,
    bundle: &Path,
    boundary: Option<&Boundary>,
) -> Result<Gathered> {
    let names = host_names(spec, bundle);
    let ties = match boundary {
        Some(b) if b.version >= 2 => b.ties.clone(),
        _ => ties_from_options(spec, bundle),
    };
    let host_mountinfo = crate::boundary::read_mountinfo("/proc/self/mountinfo")
        .map_err(|e| RuntimeError::io("reading the host's mountinfo", e))?;
    let anchors = ties
        .iter()
        .map(|t| Anchor {
            tie: t.clone(),
            host: open_anchor(&names, &host_mountinfo, t),
        })
        .collect();
    let mut copies = Vec::new();
    for v in volumes(spec) {
        copies.extend(copy_host_mounts(&v, bundle, &ties)?);
    }
    Ok(Gathered {
        names,
        ties,
        anchors,
        copies,
    })
}

/// The host mount tie `t` names on this host, opened, and whether it is shared (any mount
/// there is).
fn open_anchor(names: &HostNames, host_mountinfo: &[RawMount], t: &Tie) -> Option<(File, bool)> {
    let mp = names.resolve(&t.host)?;
    // Names are in the mount image's escaped form; the kernel takes the bytes.
    let mp = mountv2::content::unescape_path(&mp).ok()?;
    let shared = host_mountinfo
        .iter()
        .any(|r| r.mountpoint.as_os_str() == mp.as_os_str() && r.shared.is_some());
    crate::boundary::open_path(&mp).ok().map(|f| (f, shared))
}

/// Copies of the host mounts below volume `v`'s source, for a volume that is tied or has
/// tied mounts below it (an untied volume gets back only the host mounts below it that had
/// ties of their own: copies its rbind made at create).
fn copy_host_mounts(v: &Volume, bundle: &Path, ties: &[Tie]) -> Result<Vec<HostCopy>> {
    let dest = format!("/{}", crate::boundary::image_point(&v.destination));
    let volume_tie = ties
        .iter()
        .find(|t| t.mountpoint.trim_end_matches('/') == dest);
    let below_ties: Vec<&Tie> = ties
        .iter()
        .filter(|t| t.mountpoint.starts_with(&format!("{dest}/")))
        .collect();
    if volume_tie.is_none() && below_ties.is_empty() {
        return Ok(Vec::new());
    }
    let src = if v.source.is_absolute() {
        v.source.clone()
    } else {
        bundle.join(&v.source)
    };
    let below = crate::boundary::host_mounts_below(&src)?;
    let mut copies = Vec::new();
    for h in &below {
        // Only the topmost of nested host mounts is copied, recursively.
        let nested = below
            .iter()
            .any(|o| o.rel != h.rel && h.rel.starts_with(&format!("{}/", o.rel)));
        if nested {
            continue;
        }
        // The copy's own tie when one was recorded (it is re-made later), else the volume's
        // (a mount the host has here now and had not at checkpoint).
        let own = below_ties
            .iter()
            .find(|t| t.mountpoint == format!("{dest}/{}", h.rel))
            .copied();
        let kind = match (own, volume_tie) {
            (Some(t), _) | (None, Some(t)) => t.kind,
            (None, None) => continue,
        };
        let tree = rustix::mount::open_tree(
            rustix::fs::CWD,
            &h.path,
            rustix::mount::OpenTreeFlags::OPEN_TREE_CLONE
                | rustix::mount::OpenTreeFlags::OPEN_TREE_CLOEXEC
                | rustix::mount::OpenTreeFlags::AT_RECURSIVE,
        )
        .map_err(|e| {
            RuntimeError::io(format!("copying host mount {}", h.path.display()), e.into())
        })?;
        copies.push(HostCopy {
            volume: v.destination.clone(),
            kind,
            rel: h.rel.clone(),
            tree,
        });
    }
    Ok(copies)
}

/// Attach a copy of a host mount below its volume in the container (whose root is `root`);
/// returns where, as a tie names mount points.
fn attach_copy(root: BorrowedFd<'_>, copy: &HostCopy) -> Result<String> {
    let (dest, rel) = (copy.volume.trim_matches('/'), &copy.rel);
    let vol = mountv2::sys::open_beneath(root, dest, rustix::fs::OFlags::PATH)
        .map_err(|e| RuntimeError::io(format!("opening volume /{dest} in the container"), e))?;
    if copy.kind == TieKind::Slave {
        mountv2::sys::set_propagation(copy.tree.as_fd(), mountv2::sys::PropagationType::Slave)
            .map_err(|e| RuntimeError::io(format!("making the copy of {rel} a slave"), e))?;
    }
    crate::boundary::attach(copy.tree.as_fd(), vol.as_fd(), rel)?;
    Ok(format!("/{}/{rel}", crate::boundary::image_point(dest)))
}

/// Re-make the tie of anchor `a` in the container (whose root is `root`); the error, in
/// words, when the host has no such mount or the kernel refused.
fn retie_anchor(root: BorrowedFd<'_>, a: &Anchor) -> std::result::Result<(), String> {
    let Some((host, shared)) = &a.host else {
        return Err(format!(
            "{}: {} is not on this host",
            a.tie.mountpoint, a.tie.host
        ));
    };
    let rel = mountv2::content::unescape_name(a.tie.mountpoint.trim_matches('/'))
        .map_err(|e| RuntimeError::Invalid(format!("{}: {e}", a.tie.mountpoint)));
    let made = rel
        .and_then(|rel| {
            mountv2::sys::open_beneath(root, rel, rustix::fs::OFlags::PATH).map_err(|e| {
                RuntimeError::io(format!("opening {} in the container", a.tie.mountpoint), e)
            })
        })
        .and_then(|m| crate::boundary::retie(host.as_fd(), *shared, m.as_fd(), &a.tie));
    made.map_err(|e| {
        // The check after names the tie and what the mount has instead.
        tracing::warn!("re-tying {}: {e}", a.tie.mountpoint);
        format!("{}: {e}", a.tie.mountpoint)
    })
}

/// Whether every tie of `r` holds now: the restored container's mountinfo against the
/// host's. One line per broken tie.
pub(crate) fn broken_ties(r: &Reconnected, host_ns: &File, pid: i32) -> Result<Vec<String>> {
    if r.ties.is_empty() {
        return Ok(Vec::new());
    }
    let container = crate::boundary::read_mountinfo(&format!("/proc/{pid}/mountinfo"))
        .map_err(|e| RuntimeError::io("reading the restored container's mountinfo", e))?;
    // ferry restores from a namespace of its own: the host's mountinfo is read in the host's.
    let host = in_namespace(host_ns.as_fd(), "the host's", || {
        crate::boundary::read_mountinfo("/proc/self/mountinfo")
            .map_err(|e| RuntimeError::io("reading the host's mountinfo", e))
    })?;
    let ties: Vec<Tie> = r
        .ties
        .iter()
        .filter(|t| !t.if_on_host || r.brought.contains(&t.mountpoint))
        .cloned()
        .collect();
    let mut broken = check_ties(&ties, &container, &host, &r.names);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_are_the_bind_mounts_with_their_propagation() {
        let spec: oci_spec::runtime::Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/data", "type": "bind", "source": "/srv/data",
                 "options": ["rbind", "rslave"]},
                {"destination": "/etc/hosts", "source": "hosts", "options": ["bind", "ro"]},
                {"destination": "/shared", "type": "none", "source": "/srv/s",
                 "options": ["rbind", "shared"]}
            ]
        }))
        .expect("a spec");
        let v = volumes(&spec);
        let got: Vec<(&str, &Path, VolumePropagation)> = v
            .iter()
            .map(|v| (v.destination.as_str(), v.source.as_path(), v.propagation))
            .collect();
        assert_eq!(
            got,
            vec![
                ("/data", Path::new("/srv/data"), VolumePropagation::Slave),
                ("/etc/hosts", Path::new("hosts"), VolumePropagation::Private),
                ("/shared", Path::new("/srv/s"), VolumePropagation::Shared),
            ]
        );
        assert_eq!(
            bind_mounts(&spec),
            vec![
                (PathBuf::from("/data"), PathBuf::from("/srv/data")),
                (PathBuf::from("/etc/hosts"), PathBuf::from("hosts")),
                (PathBuf::from("/shared"), PathBuf::from("/srv/s")),
            ]
        );
    }
}
