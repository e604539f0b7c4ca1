//! The boundary between a container's mounts and the host's.
//!
//! At checkpoint every container mount is classified: the root, a bundle mount (named in
//! config.json), host-propagated (it appeared under an rslave/rshared volume because the host
//! mounted something under the volume's source), or container-made. Host-propagated mounts
//! belong to the host, not to the container: CRIU is told to skip them, and at restore ferry
//! brings in what *this* host has under each volume's source now, tied to the host's peer
//! groups exactly as in a container started here. Each volume's own tie (slave of, or peer of,
//! the host mount holding its source) is re-made with MOVE_MOUNT_SET_GROUP.

mod volumes;

pub(crate) use volumes::{bind_mounts, broken_ties, connect_volumes, host_names, volumes};

use crate::error::{Result, RuntimeError};
use mountv2::image::MountImage;
use mountv2::model::PeerGroup;
use mountv2::scan::{RawMount, ScanError};
use rustix::mount::{move_mount, MoveMountFlags};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
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
    /// Format version: 1 (no `version` field, no `ties`) or [`BOUNDARY_VERSION`].
    #[serde(default = "version_one")]
    pub version: u32,
    pub volumes: Vec<Volume>,
    /// Mount points (absolute, in the mount image's escaped form) that the host propagated
    /// into volumes: not the container's.
    pub host_propagated: Vec<String>,
    /// Every container mount that was a peer or slave of a host mount at checkpoint.
    #[serde(default)]
    pub ties: Vec<Tie>,
}

pub const BOUNDARY_FILE: &str = "ferry-boundary.json";
/// Version 2 added `ties`; version 1 files load with none (restore then derives them from
/// the volumes' options, as before). Version 3: mount points and host paths are in the mount
/// image's escaped form ([`mountv2::content::escape_name`]); older files, where a backslash
/// was itself, are brought to it by [`Boundary::upgrade`].
pub const BOUNDARY_VERSION: u32 = 3;

impl Boundary {
    /// Bring a file an older ferry wrote to this version's escaped mount points.
    pub fn upgrade(&mut self) {
        if self.version >= 3 {
            return;
        }
        let escape = |s: &mut String| *s = s.replace('\\', "\\\\");
        self.host_propagated.iter_mut().for_each(escape);
        for t in &mut self.ties {
            escape(&mut t.mountpoint);
            for a in std::iter::once(&mut t.host).chain(t.master_host.as_mut()) {
                match a {
                    HostAnchor::VolumeSource { destination } => escape(destination),
                    HostAnchor::HostPath { path } => escape(path),
                    HostAnchor::CgroupHierarchy { .. } => {}
                }
            }
        }
        if self.version == 2 {
            self.version = BOUNDARY_VERSION;
        }
    }
}

/// A path from a bundle (an OCI mount destination) in the mount image's escaped form, without
/// leading or trailing `/`, to compare with image mount points.
pub fn image_point(path: &str) -> String {
    mountv2::content::escape_name(path.trim_matches('/').as_bytes())
}

/// A mountinfo file (`/proc/PID/mountinfo`), parsed by the engine's parser
/// ([`mountv2::scan::read_mountinfo`]): mount points are the kernel's bytes. A line the parser
/// cannot read is an error of kind `InvalidData` naming the file and line.
pub fn read_mountinfo(path: &str) -> std::io::Result<Vec<RawMount>> {
    mountv2::scan::read_mountinfo(Path::new(path)).map_err(|e| match e {
        ScanError::Read { source, .. } => source,
        other => std::io::Error::new(std::io::ErrorKind::InvalidData, other),
    })
}

fn version_one() -> u32 {
    1
}

/// How a container mount is tied to a host mount's peer group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TieKind {
    /// A member of the host mount's peer group: propagation both ways.
    Peer,
    /// A slave of the host mount's peer group (or of its master, when the host mount is only
    /// a slave): propagation from the host only.
    Slave,
    /// A member of the host mount's peer group and a slave of its master, as the host mount
    /// itself is.
    Both,
}

/// A host mount named so that the restoring host can find its own counterpart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum HostAnchor {
    /// The host mount holding the source of the bundle volume mounted at `destination`
    /// (the new bundle's source at restore).
    VolumeSource { destination: String },
    /// The mount of the cgroup v1 hierarchy named `hierarchy` (`cpu,cpuacct`,
    /// `name=systemd`).
    CgroupHierarchy { hierarchy: String },
    /// The host mount at `path`.
    HostPath { path: String },
}

impl std::fmt::Display for HostAnchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostAnchor::VolumeSource { destination } => {
                write!(
                    f,
                    "the host mount holding the source of volume {destination}"
                )
            }
            HostAnchor::CgroupHierarchy { hierarchy } => {
                write!(f, "the host's cgroup hierarchy {hierarchy}")
            }
            HostAnchor::HostPath { path } => write!(f, "the host mount at {path}"),
        }
    }
}

/// One container mount's tie to the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tie {
    /// Mount point in the container (absolute, escaped as mount images write it).
    pub mountpoint: String,
    pub kind: TieKind,
    pub host: HostAnchor,
    /// For `both`: the host mount whose peer group is the master, when it is not the master
    /// of `host` itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_host: Option<HostAnchor>,
    /// A slave tie whose mount is also shared, in a peer group the host does not have (a
    /// volume made shared inside a slave rootfs): shared again after re-tying.
    #[serde(default, skip_serializing_if = "is_false")]
    pub also_shared: bool,
    /// The copy of a host mount below a volume that is itself tied to the host: the host's
    /// to propagate. Re-tied when the restoring host has that mount (it is brought in), not
    /// required when it has not (a container started there would not have it either).
    #[serde(default, skip_serializing_if = "is_false")]
    pub if_on_host: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Tie {
    fn describe(&self) -> String {
        match (self.kind, &self.master_host) {
            (TieKind::Peer, _) => format!("peer of {}", self.host),
            (TieKind::Slave, _) if self.also_shared => {
                format!("slave of {}, and shared", self.host)
            }
            (TieKind::Slave, _) => format!("slave of {}", self.host),
            (TieKind::Both, None) => format!("peer and co-slave of {}", self.host),
            (TieKind::Both, Some(m)) => format!("peer of {} and slave of {m}", self.host),
        }
    }
}

/// One mountinfo line, as far as ties go.
#[derive(Debug, Clone)]
struct MountLine {
    /// Absolute, in the mount image's escaped form: the same string the engine's scan makes
    /// of it, so that the two compare, byte for byte.
    mountpoint: String,
    shared: Option<u64>,
    master: Option<u64>,
}

fn mount_lines(table: &[RawMount]) -> Vec<MountLine> {
    table
        .iter()
        .map(|r| MountLine {
            mountpoint: mountv2::content::escape_path(&r.mountpoint),
            shared: r.shared,
            master: r.master,
        })
        .collect()
}

/// The mount on top at `mountpoint` (the last listed there).
fn top_at<'a>(lines: &'a [MountLine], mountpoint: &str) -> Option<&'a MountLine> {
    lines.iter().rev().find(|l| l.mountpoint == mountpoint)
}

/// What the restoring host offers to name host mounts host-independently.
#[derive(Debug, Clone, Default)]
pub struct HostNames {
    /// (volume destination, mount point of the host mount holding its source).
    pub volume_holders: Vec<(String, String)>,
    /// (mount point, hierarchy name) of the cgroup v1 hierarchies.
    pub hierarchies: Vec<(String, String)>,
}

impl HostNames {
    /// The most telling name of the host mount at `mp`; `near` is the container mount point
    /// the name is for (its own volume wins over another volume on the same host mount).
    fn anchor(&self, mp: &str, near: &str) -> HostAnchor {
        let holders = self.volume_holders.iter().filter(|(_, h)| h == mp);
        let own = holders
            .clone()
            .find(|(d, _)| d.trim_end_matches('/') == near || is_below(d, near));
        if let Some((d, _)) = own.or_else(|| holders.clone().next()) {
            return HostAnchor::VolumeSource {
                destination: d.clone(),
            };
        }
        if let Some((_, name)) = self.hierarchies.iter().find(|(m, _)| m == mp) {
            return HostAnchor::CgroupHierarchy {
                hierarchy: name.clone(),
            };
        }
        HostAnchor::HostPath {
            path: mp.to_string(),
        }
    }

    /// This host's mount point for `anchor`.
    pub fn resolve(&self, anchor: &HostAnchor) -> Option<String> {
        match anchor {
            HostAnchor::VolumeSource { destination } => self
                .volume_holders
                .iter()
                .find(|(d, _)| d.trim_end_matches('/') == destination.trim_end_matches('/'))
                .map(|(_, h)| h.clone()),
            HostAnchor::CgroupHierarchy { hierarchy } => self
                .hierarchies
                .iter()
                .find(|(_, n)| n == hierarchy)
                .map(|(m, _)| m.clone()),
            HostAnchor::HostPath { path } => Some(path.clone()),
        }
    }
}

/// The ties of the container's mounts to the host's peer groups. Peer group ids are global:
/// a container mount's `shared:N` that a host mount has too makes it a peer of that mount,
/// its `master:N` a slave. Mounts in `skip` (and below them) are the host's and left out.
pub fn record_ties(
    container_mountinfo: &[RawMount],
    host_mountinfo: &[RawMount],
    names: &HostNames,
    skip: &[String],
) -> Vec<Tie> {
    let host = mount_lines(host_mountinfo);
    let container = mount_lines(container_mountinfo);
    let mut ties: Vec<Tie> = Vec::new();
    for (i, c) in container.iter().enumerate() {
        // Only the mount on top at a mount point is reachable, and only it is re-tied.
        if container[i + 1..]
            .iter()
            .any(|o| o.mountpoint == c.mountpoint)
        {
            continue;
        }
        if skip
            .iter()
            .any(|s| s == &c.mountpoint || is_below(s, &c.mountpoint))
        {
            continue;
        }
        let peer = c
            .shared
            .and_then(|g| host.iter().find(|h| h.shared == Some(g)));
        let master = c.master.and_then(|g| {
            host.iter().find(|h| h.shared == Some(g)).or_else(|| {
                host.iter()
                    .find(|h| h.shared.is_none() && h.master == Some(g))
            })
        });
        let tie = match (peer, master) {
            (None, None) => continue,
            (Some(p), None) => Tie {
                mountpoint: c.mountpoint.clone(),
                kind: TieKind::Peer,
                host: names.anchor(&p.mountpoint, &c.mountpoint),
                master_host: None,
                also_shared: false,
                if_on_host: false,
            },
            (None, Some(m)) => Tie {
                mountpoint: c.mountpoint.clone(),
                kind: TieKind::Slave,
                host: names.anchor(&m.mountpoint, &c.mountpoint),
                master_host: None,
                also_shared: c.shared.is_some(),
                if_on_host: false,
            },
            (Some(p), Some(m)) => Tie {
                mountpoint: c.mountpoint.clone(),
                kind: TieKind::Both,
                host: names.anchor(&p.mountpoint, &c.mountpoint),
                master_host: (p.master != c.master)
                    .then(|| names.anchor(&m.mountpoint, &c.mountpoint)),
                also_shared: false,
                if_on_host: false,
            },
        };
        ties.push(tie);
    }
    ties
}

/// What the container mount `c` is tied to now, in words.
fn describe_now(c: Option<&MountLine>, host: &[MountLine]) -> String {
    let Some(c) = c else {
        return "no mount there".into();
    };
    let name = |g: u64| {
        host.iter()
            .find(|h| h.shared == Some(g))
            .map(|h| format!("the host mount at {}", h.mountpoint))
    };
    let mut parts = Vec::new();
    if let Some(g) = c.shared {
        parts.push(match name(g) {
            Some(h) => format!("peer of {h}"),
            None => format!("in peer group {g}, which no host mount is in"),
        });
    }
    if let Some(g) = c.master {
        parts.push(match name(g) {
            Some(h) => format!("slave of {h}"),
            None => format!("slave of group {g}, which no host mount is in"),
        });
    }
    if parts.is_empty() {
        "private (no tie)".into()
    } else {
        parts.join(" and ")
    }
}

/// Check every recorded tie against the mounts now: the container's and the host's
/// mountinfo, and this host's names. Returns one line per broken tie, naming the mount, the
/// tie it had and what it has now.
pub fn check_ties(
    ties: &[Tie],
    container_mountinfo: &[RawMount],
    host_mountinfo: &[RawMount],
    names: &HostNames,
) -> Vec<String> {
    let host = mount_lines(host_mountinfo);
    let container = mount_lines(container_mountinfo);
    let mut broken = Vec::new();
    for t in ties {
        let c = top_at(&container, &t.mountpoint);
        let h = names.resolve(&t.host).and_then(|p| top_at(&host, &p));
        let m = match &t.master_host {
            Some(a) => names.resolve(a).and_then(|p| top_at(&host, &p)),
            None => h,
        };
        let held = match (c, h) {
            (Some(c), Some(h)) => match t.kind {
                TieKind::Peer => h.shared.is_some() && c.shared == h.shared,
                TieKind::Slave => {
                    let want = h.shared.or(h.master);
                    let shared_ok = !t.also_shared
                        || c.shared
                            .is_some_and(|g| host.iter().all(|x| x.shared != Some(g)));
                    want.is_some() && c.master == want && shared_ok
                }
                TieKind::Both => {
                    let want_master = match &t.master_host {
                        Some(_) => m.and_then(|m| m.shared.or(m.master)),
                        None => h.master,
                    };
                    h.shared.is_some() && c.shared == h.shared && c.master == want_master
                }
            },
            _ => false,
        };
        if !held {
            let had = t.describe();
            let host_state = match h {
                None => "; this host has no such mount".to_string(),
                Some(h) if h.shared.is_none() && h.master.is_none() => {
                    format!("; the host mount at {} is private", h.mountpoint)
                }
                Some(_) => String::new(),
            };
            broken.push(format!(
                "{}: was {had}, is {}{host_state}",
                t.mountpoint,
                describe_now(c, &host)
            ));
        }
    }
    broken
}

/// Re-make one tie: `mount` (in the container's namespace) joins the peer group of
/// `host_mount` (opened in the host's namespace) with MOVE_MOUNT_SET_GROUP, which also
/// makes it a slave of the host mount's master; a slave tie then turns the membership into
/// mastership. The kernel joins only private mounts, so the mount leaves whatever group
/// CRIU gave it first.
pub fn retie(
    host_mount: BorrowedFd<'_>,
    host_is_shared: bool,
    mount: BorrowedFd<'_>,
    tie: &Tie,
) -> Result<()> {
    mountv2::sys::set_propagation(mount, mountv2::sys::PropagationType::Private)
        .map_err(|e| RuntimeError::io("making a mount private before re-tying it", e))?;
    set_group(host_mount, mount)?;
    if tie.kind == TieKind::Slave && host_is_shared {
        mountv2::sys::set_propagation(mount, mountv2::sys::PropagationType::Slave)
            .map_err(|e| RuntimeError::io("making a mount a slave of the host's group", e))?;
    }
    if tie.kind == TieKind::Slave && tie.also_shared {
        mountv2::sys::set_propagation(mount, mountv2::sys::PropagationType::Shared)
            .map_err(|e| RuntimeError::io("making a re-tied slave shared again", e))?;
    }
    Ok(())
}

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

fn is_below(parent: &str, child: &str) -> bool {
    let parent = parent.trim_matches('/');
    let child = child.trim_matches('/');
    !child.is_empty()
        && child != parent
        && (parent.is_empty() || child.starts_with(&format!("{parent}/")))
}

/// The container's mounts (image-style relative mount points) that are peers or slaves of a
/// peer group the host has too. Peer group ids are global, so a `shared:N` or `master:N` of
/// the container matching a host mount's `shared:N` ties it to the host, which a scan of the
/// container's namespace alone cannot see: an rshared volume's submounts are such peers.
pub fn host_tied_mounts(
    container_mountinfo: &[RawMount],
    host_mountinfo: &[RawMount],
) -> Vec<String> {
    let host_groups: std::collections::HashSet<u64> =
        host_mountinfo.iter().filter_map(|h| h.shared).collect();
    mount_lines(container_mountinfo)
        .into_iter()
        .filter(|c| {
            [c.shared, c.master]
                .iter()
                .any(|g| g.is_some_and(|g| host_groups.contains(&g)))
        })
        .map(|c| c.mountpoint.trim_matches('/').to_string())
        .collect()
}

/// Classify the container's tree: which mounts under volumes came from the host. A mount is
/// host-propagated when it lies strictly below a volume and its master or peer group reaches
/// outside the container (only the host could have put it there: by propagation into a
/// slave or shared volume, or as the copy the volume's rbind made of a host mount below its
/// source, whatever the volume's own propagation): an external group of the scan, or one of
/// `host_tied` ([`host_tied_mounts`]).
pub fn classify(image: &MountImage, volumes: Vec<Volume>, host_tied: &[String]) -> Boundary {
    let t = &image.tree;
    let external = |g: Option<mountv2::model::GroupIdx>| {
        g.and_then(|g| t.groups.get(g.0 as usize))
            .is_some_and(|g| matches!(g, PeerGroup::External { .. }))
    };
    let mut host_propagated = Vec::new();
    for m in &t.mounts {
        // A host mount's copy below any volume is the host's: propagated into a receiving
        // volume, or copied by the volume's rbind whatever its own propagation.
        let under = volumes
            .iter()
            .any(|v| is_below(&image_point(&v.destination), &m.mountpoint));
        let is_volume = volumes
            .iter()
            .any(|v| image_point(&v.destination) == m.mountpoint);
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
        version: BOUNDARY_VERSION,
        volumes,
        host_propagated,
        ties: Vec::new(),
    }
}

/// The ties of the host mounts the container has copies of below its volumes (the topmost
/// host-propagated mounts), each as the copy had it: restore brings each copy in from the
/// host and re-makes exactly this tie (a copy attached below a shared volume would otherwise
/// join the volume's own group, and one below a slave volume would lose a peer tie of its
/// own). Below a volume tied to the host they are the host's to propagate ([`Tie::if_on_host`]);
/// below an untied one, copies the volume's rbind made at create, required at restore.
pub fn copy_ties(
    boundary: &Boundary,
    container_mountinfo: &[RawMount],
    host_mountinfo: &[RawMount],
    names: &HostNames,
) -> Vec<Tie> {
    let hp = &boundary.host_propagated;
    let copies: Vec<&String> = hp
        .iter()
        .filter(|p| !hp.iter().any(|o| is_below(o, p)))
        .collect();
    if copies.is_empty() {
        return Vec::new();
    }
    let skip: Vec<String> = hp.iter().filter(|p| !copies.contains(p)).cloned().collect();
    let volume_tied = |mp: &str| {
        boundary.volumes.iter().any(|v| {
            let dest = image_point(&v.destination);
            is_below(&dest, mp)
                && boundary
                    .ties
                    .iter()
                    .any(|t| t.mountpoint.trim_matches('/') == dest)
        })
    };
    record_ties(container_mountinfo, host_mountinfo, names, &skip)
        .into_iter()
        .filter(|t| copies.contains(&&t.mountpoint))
        .map(|t| Tie {
            if_on_host: volume_tied(&t.mountpoint),
            ..t
        })
        .collect()
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
    /// Path relative to the source (escaped as mount images write paths).
    pub rel: String,
}

/// The mounts the host has strictly below `source` now, parents first, from its mountinfo.
pub fn host_mounts_below(source: &Path) -> Result<Vec<HostMount>> {
    let table = read_mountinfo("/proc/self/mountinfo")
        .map_err(|e| RuntimeError::io("reading the host's mountinfo", e))?;
    let src = mountv2::content::escape_path(source)
        .trim_end_matches('/')
        .to_string();
    let mut out: Vec<HostMount> = Vec::new();
    for r in &table {
        let mp = mountv2::content::escape_path(&r.mountpoint);
        if let Some(rel) = mp.strip_prefix(&format!("{src}/")) {
            if out.iter().all(|h| h.rel != rel) {
                out.push(HostMount {
                    path: r.mountpoint.clone(),
                    rel: rel.to_string(),
                });
            }
        }
    }
    // mountinfo lists parents before children; keep that order (shallowest first is safe).
    out.sort_by_key(|h| h.rel.matches('/').count());
    Ok(out)
}

/// Join `to` to the peer group of `from` (both attached; namespaces may differ).
fn set_group(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<()> {
    mountv2::sys::set_group(from, to)
        .map_err(|e| RuntimeError::io("joining the host's peer group (MOVE_MOUNT_SET_GROUP)", e))
}

/// Attach a detached mount at `rel` (escaped as mount images write paths) below `dir` (both
/// in the current namespace).
pub fn attach(tree: BorrowedFd<'_>, dir: BorrowedFd<'_>, rel: &str) -> Result<()> {
    let bytes = mountv2::content::unescape_name(rel)
        .map_err(|e| RuntimeError::Invalid(format!("mount point {rel:?}: {e}")))?;
    let target = mountv2::sys::open_or_create_mountpoint(dir, bytes, false)
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
    let table = read_mountinfo("/proc/self/mountinfo").ok()?;
    // The mount holding `path` is the last-listed one whose mount point is its longest prefix
    // (compared in the escaped form, which keeps `/` and every byte).
    let p = mountv2::content::escape_path(path);
    let mut best: Option<(String, &RawMount)> = None;
    for r in &table {
        let mp = mountv2::content::escape_path(&r.mountpoint);
        let within = mp == "/" || p == mp || p.starts_with(&format!("{mp}/"));
        if within && best.as_ref().is_none_or(|(b, _)| mp.len() >= b.len()) {
            best = Some((mp, r));
        }
    }
    best.map(|(_, r)| (r.mountpoint.clone(), r.shared.is_some()))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A mountinfo text as the engine's parser reads it.
    fn table(text: &str) -> Vec<RawMount> {
        mountv2::scan::parse_mountinfo(text.as_bytes(), Path::new("mountinfo")).expect("parse")
    }

    const HOST: &str = "\
1 0 8:1 / / rw - ext4 /dev/sda rw
40 1 0:30 / /srv/h rw shared:7 - tmpfs h rw
41 1 0:29 / /sys/fs/cgroup/cpu rw shared:9 - cgroup cgroup rw,cpu
";
    const CONTAINER: &str = "\
100 90 8:1 /b/rootfs / rw - ext4 /dev/sda rw
101 100 0:30 /src /vol rw shared:7 - tmpfs h rw
102 100 0:30 /src2 /slave rw master:7 - tmpfs h rw
103 100 0:29 /c1 /sys/fs/cgroup/cpu rw shared:9 - cgroup cgroup rw,cpu
104 101 0:31 / /vol/sub rw shared:7 - tmpfs s rw
105 100 0:32 / /own rw shared:55 - tmpfs o rw
106 100 0:30 /src3 /mixed rw shared:60 master:7 - tmpfs h rw
";

    fn names() -> HostNames {
        HostNames {
            volume_holders: vec![
                ("/vol".into(), "/srv/h".into()),
                ("/slave".into(), "/srv/h".into()),
            ],
            hierarchies: vec![("/sys/fs/cgroup/cpu".into(), "cpu".into())],
        }
    }

    #[test]
    fn ties_are_recorded_with_host_independent_names() {
        let ties = record_ties(
            &table(CONTAINER),
            &table(HOST),
            &names(),
            &["/vol/sub".into()],
        );
        let vol = HostAnchor::VolumeSource {
            destination: "/vol".into(),
        };
        assert_eq!(ties.len(), 4, "{ties:?}");
        assert_eq!(
            (
                ties[3].mountpoint.as_str(),
                ties[3].kind,
                ties[3].also_shared
            ),
            ("/mixed", TieKind::Slave, true)
        );
        assert!(!ties[1].also_shared);
        assert_eq!(
            (ties[0].mountpoint.as_str(), ties[0].kind),
            ("/vol", TieKind::Peer)
        );
        assert_eq!(ties[0].host, vol);
        assert_eq!(ties[1].kind, TieKind::Slave);
        assert_eq!(
            ties[1].host,
            HostAnchor::VolumeSource {
                destination: "/slave".into()
            }
        );
        assert_eq!(
            ties[2].host,
            HostAnchor::CgroupHierarchy {
                hierarchy: "cpu".into()
            }
        );
    }

    #[test]
    fn a_lost_tie_is_named_with_what_it_got() {
        let (container, host) = (table(CONTAINER), table(HOST));
        let ties = record_ties(&container, &host, &names(), &[]);
        assert!(check_ties(&ties, &container, &host, &names()).is_empty());
        // After a restore that gave the volume a group of its own.
        let restored = CONTAINER.replace("/src /vol rw shared:7", "/src /vol rw shared:77");
        let broken = check_ties(&ties, &table(&restored), &host, &names());
        assert_eq!(broken.len(), 1, "{broken:?}");
        assert_eq!(
            broken[0],
            "/vol: was peer of the host mount holding the source of volume /vol, is in peer group 77, which no host mount is in"
        );
        // The host mount went private: the slave tie cannot hold either.
        let host = HOST.replace("rw shared:7 - tmpfs h", "rw - tmpfs h");
        let broken = check_ties(&ties, &container, &table(&host), &names());
        assert!(
            broken.iter().any(|b| b.starts_with("/slave: was slave of")
                && b.ends_with("the host mount at /srv/h is private")),
            "{broken:?}"
        );
    }

    #[test]
    fn version_one_files_load_without_ties() {
        let b: Boundary =
            serde_json::from_str(r#"{"volumes":[],"host_propagated":["/vol/x"]}"#).expect("v1");
        assert_eq!(b.version, 1);
        assert!(b.ties.is_empty());
    }

    /// Mount points in mountinfo (octal escapes, raw bytes that are not UTF-8) come out in
    /// the mount image's escaped form, so ties, host-tied mounts and the engine's scan name a
    /// mount with one string.
    #[test]
    fn mount_points_are_the_engines_escaped_bytes() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("mountinfo");
        let host = b"1 0 8:1 / / rw - ext4 /dev/sda rw\n40 1 0:30 / /srv/h\\134\x80 rw shared:7 - tmpfs h rw\n";
        let container = b"100 90 8:1 /b/rootfs / rw - ext4 /dev/sda rw\n101 100 0:30 /src /v\\040\xff\\012a\\134b rw shared:7 - tmpfs h rw\n";
        std::fs::write(&file, host).expect("write");
        let host = read_mountinfo(&file.display().to_string()).expect("read");
        std::fs::write(&file, container).expect("write");
        let container = read_mountinfo(&file.display().to_string()).expect("read");
        let escaped_volume = "/v \\xff\na\\\\b";
        let tied = host_tied_mounts(&container, &host);
        assert_eq!(
            tied,
            vec![escaped_volume.trim_start_matches('/').to_string()]
        );
        // The engine's scan of the same line names the mount the same way.
        let tree = mountv2::scan::tree_at(&container, Path::new("/")).expect("tree");
        assert_eq!(tree.mounts[1].mountpoint, tied[0]);
        let names = HostNames {
            volume_holders: vec![(escaped_volume.into(), "/srv/h\\\\\\x80".into())],
            hierarchies: vec![],
        };
        let ties = record_ties(&container, &host, &names, &[]);
        assert_eq!(ties.len(), 1, "{ties:?}");
        assert_eq!(ties[0].mountpoint, escaped_volume);
        assert_eq!(
            names.resolve(&ties[0].host).as_deref(),
            Some("/srv/h\\\\\\x80")
        );
        assert!(check_ties(&ties, &container, &host, &names).is_empty());
        assert_eq!(image_point("/v \u{ff}/"), "v \u{ff}");
    }

    /// Files of version 2 wrote mount points as text where a backslash was itself.
    #[test]
    fn version_2_boundaries_are_upgraded() {
        let mut b: Boundary = serde_json::from_str(
            r#"{"version":2,"volumes":[],"host_propagated":["/v\\x"],
                "ties":[{"mountpoint":"/v\\x","kind":"peer","host":{"kind":"host_path","path":"/h\\p"}}]}"#,
        )
        .expect("v2");
        b.upgrade();
        assert_eq!(b.version, BOUNDARY_VERSION);
        assert_eq!(b.host_propagated, vec!["/v\\\\x".to_string()]);
        assert_eq!(b.ties[0].mountpoint, "/v\\\\x");
        assert_eq!(
            b.ties[0].host,
            HostAnchor::HostPath {
                path: "/h\\\\p".into()
            }
        );
    }

    /// Each copy of a host mount below a volume keeps its own tie, also when it differs from
    /// the volume's; below a tied volume it is needed only if the host still has it; what
    /// lies below a copy comes with it.
    #[test]
    fn copies_keep_their_own_ties() {
        let vol = |d: &str| Volume {
            destination: d.into(),
            source: PathBuf::from("/srv/h/x"),
            propagation: VolumePropagation::Private,
        };
        let host = "\
1 0 8:1 / / rw - ext4 /dev/sda rw
40 1 0:30 / /srv/h rw shared:7 - tmpfs h rw
";
        let container = "\
100 90 8:1 /b/rootfs / rw - ext4 /dev/sda rw
101 100 8:1 /p /plain rw - ext4 /dev/sda rw
102 101 0:30 /x /plain/m rw master:7 - tmpfs h rw
103 102 0:30 /y /plain/m/deeper rw master:7 - tmpfs h rw
104 100 0:30 /x /tied rw master:7 - tmpfs h rw
105 104 0:30 /z /tied/m rw shared:7 - tmpfs h rw
";
        let names = HostNames {
            volume_holders: vec![("/tied".into(), "/srv/h".into())],
            hierarchies: Vec::new(),
        };
        let mut boundary = Boundary {
            version: BOUNDARY_VERSION,
            volumes: vec![vol("/plain"), vol("/tied")],
            host_propagated: vec![
                "/plain/m".into(),
                "/plain/m/deeper".into(),
                "/tied/m".into(),
            ],
            ties: Vec::new(),
        };
        let (container, host) = (table(container), table(host));
        boundary.ties = record_ties(&container, &host, &names, &boundary.host_propagated);
        assert_eq!(boundary.ties.len(), 1, "{:?}", boundary.ties);
        let copies = copy_ties(&boundary, &container, &host, &names);
        let got: Vec<(&str, TieKind, bool)> = copies
            .iter()
            .map(|t| (t.mountpoint.as_str(), t.kind, t.if_on_host))
            .collect();
        assert_eq!(
            got,
            vec![
                ("/plain/m", TieKind::Slave, false),
                ("/tied/m", TieKind::Peer, true)
            ]
        );
    }
}
