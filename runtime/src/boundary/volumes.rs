//! A restored container's volumes and their ties to this host: the bundle's bind mounts,
//! and re-making the ties (peer, slave) a checkpoint recorded with this host's mounts.

use super::{
    check_ties, volume_propagation, Boundary, HostAnchor, HostNames, Tie, TieKind, Volume,
    VolumePropagation,
};
use crate::checkpoint::in_mount_namespace;
use crate::error::{Result, RuntimeError};
use std::fs::File;
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
pub(crate) fn broken_ties(r: &Reconnected, host_ns: &File, pid: i32) -> Result<Vec<String>> {
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
