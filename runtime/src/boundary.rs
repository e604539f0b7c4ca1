//! The boundary between a container's mounts and the host's.
//!
//! At checkpoint every container mount is classified: the root, a bundle mount (named in
//! config.json), host-propagated (it appeared under an rslave/rshared volume because the host
//! mounted something under the volume's source), or container-made. Host-propagated mounts
//! belong to the host, not to the container: CRIU is told to skip them, and at restore ferry
//! brings in what *this* host has under each volume's source now, tied to the host's peer
//! groups exactly as in a container started here. Each volume's own tie (slave of, or peer of,
//! the host mount holding its source) is re-made with MOVE_MOUNT_SET_GROUP.

use crate::error::{Result, RuntimeError};
use mountv2::image::MountImage;
use mountv2::model::PeerGroup;
use rustix::mount::{move_mount, open_tree, MoveMountFlags, OpenTreeFlags};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// How a volume propagates to and from the host (its config.json propagation option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumePropagation {
    Private,
    Slave,
    Shared,
    Unbindable,
}

/// A bind mount of the bundle, as checkpointed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Volume {
    /// Mount point in the container (absolute).
    pub destination: String,
    /// Host path at checkpoint time (informational: restore uses the new bundle's).
    pub source: PathBuf,
    pub propagation: VolumePropagation,
}

/// What ferry records about the boundary beside CRIU's images (`ferry-boundary.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Boundary {
    pub volumes: Vec<Volume>,
    /// Mount points (absolute) that the host propagated into volumes: not the container's.
    pub host_propagated: Vec<String>,
}

pub const BOUNDARY_FILE: &str = "ferry-boundary.json";

/// Propagation named by a bundle mount's options (the last one wins, as in runc).
pub fn volume_propagation(options: &[String]) -> VolumePropagation {
    let mut p = VolumePropagation::Private;
    for o in options {
        p = match o.as_str() {
            "rslave" | "slave" => VolumePropagation::Slave,
            "rshared" | "shared" => VolumePropagation::Shared,
            "rprivate" | "private" => VolumePropagation::Private,
            "runbindable" | "unbindable" => VolumePropagation::Unbindable,
            _ => p,
        };
    }
    p
}

fn unescape(field: &str) -> String {
    String::from_utf8_lossy(&mountv2::scan::unescape(field.as_bytes())).into_owned()
}

fn is_below(parent: &str, child: &str) -> bool {
    let parent = parent.trim_matches('/');
    let child = child.trim_matches('/');
    !child.is_empty()
        && child != parent
        && (parent.is_empty() || child.starts_with(&format!("{parent}/")))
}

/// The propagation fields of one mountinfo line: mount point, `shared:N`, `master:N`.
fn propagation_ids(line: &str) -> Option<(String, Option<u64>, Option<u64>)> {
    let fields: Vec<&str> = line.split(' ').collect();
    let mountpoint = unescape(fields.get(4)?);
    let (mut shared, mut master) = (None, None);
    for f in fields.iter().skip(6).take_while(|f| **f != "-") {
        if let Some(n) = f.strip_prefix("shared:") {
            shared = n.parse().ok();
        } else if let Some(n) = f.strip_prefix("master:") {
            master = n.parse().ok();
        }
    }
    Some((mountpoint, shared, master))
}

/// The container's mounts (image-style relative mount points) that are peers or slaves of a
/// peer group the host has too. Peer group ids are global, so a `shared:N` or `master:N` of
/// the container matching a host mount's `shared:N` ties it to the host, which a scan of the
/// container's namespace alone cannot see: an rshared volume's submounts are such peers.
pub fn host_tied_mounts(container_mountinfo: &str, host_mountinfo: &str) -> Vec<String> {
    let host_groups: std::collections::HashSet<u64> = host_mountinfo
        .lines()
        .filter_map(propagation_ids)
        .filter_map(|(_, shared, _)| shared)
        .collect();
    container_mountinfo
        .lines()
        .filter_map(propagation_ids)
        .filter(|(_, shared, master)| {
            [shared, master]
                .iter()
                .any(|g| g.is_some_and(|g| host_groups.contains(&g)))
        })
        .map(|(mp, _, _)| mp.trim_matches('/').to_string())
        .collect()
}

/// Classify the container's tree: which mounts under volumes came from the host. A mount is
/// host-propagated when it lies strictly below a slave or shared volume and its master or
/// peer group reaches outside the container (only the host could have put it there): an
/// external group of the scan, or one of `host_tied` ([`host_tied_mounts`]).
pub fn classify(image: &MountImage, volumes: Vec<Volume>, host_tied: &[String]) -> Boundary {
    let t = &image.tree;
    let external = |g: Option<mountv2::model::GroupIdx>| {
        g.and_then(|g| t.groups.get(g.0 as usize))
            .is_some_and(|g| matches!(g, PeerGroup::External { .. }))
    };
    let mut host_propagated = Vec::new();
    for m in &t.mounts {
        let under = volumes.iter().any(|v| {
            v.propagation != VolumePropagation::Private && is_below(&v.destination, &m.mountpoint)
        });
        let is_volume = volumes
            .iter()
            .any(|v| v.destination.trim_matches('/') == m.mountpoint);
        let tied = external(m.propagation.master)
            || external(m.propagation.shared)
            || host_tied.contains(&m.mountpoint);
        if under && !is_volume && tied {
            host_propagated.push(format!("/{}", m.mountpoint));
        }
    }
    // Below a host-propagated mount everything is the host's too.
    let roots = host_propagated.clone();
    for m in &t.mounts {
        let p = format!("/{}", m.mountpoint);
        if !host_propagated.contains(&p) && roots.iter().any(|r| is_below(r, &p)) {
            host_propagated.push(p);
        }
    }
    Boundary {
        volumes,
        host_propagated,
    }
}

/// Remove host-propagated mounts (and what lies below them) from a tree before comparing:
/// they are the host's, and legitimately differ between hosts and over time.
pub fn without_host_mounts(image: &MountImage, host_points: &[String]) -> MountImage {
    let mut out = image.clone();
    out.tree.exclude(host_points);
    out
}

/// One mount of the host (the namespace ferry was started in) below a volume's source.
#[derive(Debug, Clone)]
pub struct HostMount {
    /// Absolute host path.
    pub path: PathBuf,
    /// Path relative to the source.
    pub rel: String,
}

/// The mounts the host has strictly below `source` now, parents first, from its mountinfo.
pub fn host_mounts_below(source: &Path) -> Result<Vec<HostMount>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| RuntimeError::io("reading the host's mountinfo", e))?;
    let src = source.to_string_lossy().trim_end_matches('/').to_string();
    let mut out: Vec<HostMount> = Vec::new();
    for line in text.lines() {
        let Some(mp) = line.split(' ').nth(4) else {
            continue;
        };
        let mp = unescape(mp);
        if let Some(rel) = mp.strip_prefix(&format!("{src}/")) {
            if out.iter().all(|h| h.rel != rel) {
                out.push(HostMount {
                    path: PathBuf::from(&mp),
                    rel: rel.to_string(),
                });
            }
        }
    }
    // mountinfo lists parents before children; keep that order (shallowest first is safe).
    out.sort_by_key(|h| h.rel.matches('/').count());
    Ok(out)
}

/// Tie the container's volume at `volume` (an fd of the mount, in the container's namespace)
/// to the host mount holding `source` (an fd opened in the host's namespace): peer for a
/// shared volume, slave for a slave one. A host source that is not shared gives no tie, as in
/// a container started here.
pub fn retie_volume(
    host_source: BorrowedFd<'_>,
    volume: BorrowedFd<'_>,
    propagation: VolumePropagation,
    host_is_shared: bool,
) -> Result<()> {
    if !host_is_shared
        || !matches!(
            propagation,
            VolumePropagation::Shared | VolumePropagation::Slave
        )
    {
        return Ok(());
    }
    // The kernel only joins a private mount to a group; CRIU left the volume tied to its own
    // namespace's copy of the host mount.
    mountv2::sys::set_propagation(volume, mountv2::sys::PropagationType::Private)
        .map_err(|e| RuntimeError::io("making the volume private before re-tying it", e))?;
    set_group(host_source, volume)?;
    if propagation == VolumePropagation::Slave {
        mountv2::sys::set_propagation(volume, mountv2::sys::PropagationType::Slave)
            .map_err(|e| RuntimeError::io("making the volume a slave of the host's group", e))?;
    }
    Ok(())
}

/// Join `to` to the peer group of `from` (both attached; namespaces may differ).
fn set_group(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<()> {
    mountv2::sys::set_group(from, to)
        .map_err(|e| RuntimeError::io("joining the host's peer group (MOVE_MOUNT_SET_GROUP)", e))
}

/// A detached copy of the host mount at `path` (opened in the host's namespace). A copy of a
/// shared mount is a peer of it, a copy of a slave a slave of the same master.
pub fn clone_host_mount(path: &Path) -> Result<OwnedFd> {
    open_tree(
        rustix::fs::CWD,
        path,
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )
    .map_err(|e| RuntimeError::io(format!("copying host mount {}", path.display()), e.into()))
}

/// Attach a detached mount at `rel` below `dir` (both in the current namespace).
pub fn attach(tree: BorrowedFd<'_>, dir: BorrowedFd<'_>, rel: &str) -> Result<()> {
    let target = mountv2::sys::open_or_create_mountpoint(dir, rel, false)
        .map_err(|e| RuntimeError::io(format!("mount point {rel} in the container"), e))?;
    move_mount(
        tree,
        "",
        target.as_fd(),
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .map_err(|e| RuntimeError::io(format!("attaching a host mount at {rel}"), e.into()))
}

/// The host mount holding `path`: its mount point, and whether it is shared (`shared:N`).
/// MOVE_MOUNT_SET_GROUP takes mount roots, so the tie is made from that mount point.
pub fn host_mount_of(path: &Path) -> Option<(PathBuf, bool)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    // The mount holding `path` is the last-listed one whose mount point is its longest prefix.
    let p = path.to_string_lossy().to_string();
    let mut best: Option<(String, bool)> = None;
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(mp) = fields.get(4).map(|m| unescape(m)) else {
            continue;
        };
        let within = mp == "/" || p == mp || p.starts_with(&format!("{mp}/"));
        if !within {
            continue;
        }
        let shared = fields
            .iter()
            .skip(6)
            .take_while(|f| **f != "-")
            .any(|f| f.starts_with("shared:"));
        if best.as_ref().is_none_or(|(b, _)| mp.len() >= b.len()) {
            best = Some((mp, shared));
        }
    }
    best.map(|(mp, shared)| (PathBuf::from(mp), shared))
}

/// Open `path` as an O_PATH fd (the mount holding it, in the current namespace).
pub fn open_path(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(path)
        .map_err(|e| RuntimeError::io(format!("opening {}", path.display()), e))
}
