//! The propagation a bundle asks for, made exact as runc applies it.
//!
//! runc (1.1) builds a container's mount tree in this order: the propagation of `/` in the
//! new mount namespace is set to `linux.rootfsPropagation` (recursively only for the `r`
//! spellings; `MS_SLAVE|MS_REC` when unset); the mount holding the root filesystem is made
//! private if it is shared; the root filesystem is bind-mounted; then every bind volume is
//! bind-mounted and gets its own propagation options applied in order. A volume therefore
//! starts as a copy of its source's mount *as it was after the first step*: a peer of the
//! host's group when the source's mount was left shared, a slave of it when `/` was made a
//! slave recursively, private when it was made private.
//!
//! libcontainer always applies the root's propagation recursively (so a `slave` or `private`
//! root turns every volume from a shared host mount into a slave or a private mount) and
//! ignores the propagation options of bind mounts. ferry lets libcontainer build the tree and
//! then, before the container's process starts, gives each bind volume the ties runc's
//! sequence gives it: the volume is made private, joins the host mount's peer group (and its
//! master) with MOVE_MOUNT_SET_GROUP where runc's copy would have kept them, becomes a slave
//! or a new group where runc's first step made it one, and then gets its own options.
//!
//! Where runc 1.1 cannot run a bundle at all (`unbindable`/`runbindable` rootfsPropagation:
//! its bind of the root filesystem fails on the unbindable mount it has just made), ferry
//! gives the volumes the default ties and makes the container's `/` unbindable (with every
//! mount below it for `runbindable`), before the volumes' ties are set. With `shared` or
//! `rshared`, runc leaves the container's `/` private (its root-parent step comes after);
//! libcontainer makes it shared after pivot_root, as the bundle asks, and ferry keeps that.
//!
//! The mounts an `rbind` copies from below its source get the same treatment, each from its
//! own host mount. Not reproduced: where runc's first step gives a private host mount a new
//! group (`rshared` root), volumes from that one mount share the group in runc; in ferry each
//! volume gets a group of its own (the kernel joins groups only from a wider mount root).

use crate::error::{Result, RuntimeError};
use mountv2::scan::RawMount;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use rustix::mount::{mount_change, MountPropagationFlags};
use std::path::{Path, PathBuf};

/// A propagation type as mount(2) sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Shared,
    Slave,
    Private,
    Unbindable,
}

/// One propagation change: a type, for the mount alone or for every mount below it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub kind: Kind,
    pub recursive: bool,
}

impl Change {
    /// runc's spellings (the same for mount options and rootfsPropagation).
    pub fn parse(word: &str) -> Option<Change> {
        let (recursive, plain) = match word.strip_prefix('r') {
            Some(rest) if !rest.is_empty() => (true, rest),
            _ => (false, word),
        };
        let kind = match plain {
            "shared" => Kind::Shared,
            "slave" => Kind::Slave,
            "private" => Kind::Private,
            "unbindable" => Kind::Unbindable,
            _ => return None,
        };
        Some(Change { kind, recursive })
    }

    fn flags(self) -> MountPropagationFlags {
        let kind = match self.kind {
            Kind::Shared => MountPropagationFlags::SHARED,
            Kind::Slave => MountPropagationFlags::DOWNSTREAM,
            Kind::Private => MountPropagationFlags::PRIVATE,
            Kind::Unbindable => MountPropagationFlags::UNBINDABLE,
        };
        if self.recursive {
            kind | MountPropagationFlags::REC
        } else {
            kind
        }
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            Kind::Shared => "shared",
            Kind::Slave => "slave",
            Kind::Private => "private",
            Kind::Unbindable => "unbindable",
        };
        write!(f, "{}{kind}", if self.recursive { "r" } else { "" })
    }
}

/// One step on a mount of the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Join the peer group of the host's mount at `host_mountpoint` and take its master, as
    /// a bind copy of it does (MOVE_MOUNT_SET_GROUP; the container's mount must be private).
    CopyHostTies {
        host_mountpoint: PathBuf,
    },
    Change(Change),
}

/// The steps for the mount at `target` (a path in the container) in the order they run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    pub target: PathBuf,
    pub steps: Vec<Step>,
    /// A fix of a mount below a volume (copied from the host by an rbind) may meet a tree
    /// that changed since the host's table was read: its failure is logged, not fatal.
    pub required: bool,
}

/// A bind volume of the bundle, its source resolved on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub destination: PathBuf,
    pub source: PathBuf,
    /// `rbind`: the mounts below the source are copied too.
    pub recursive: bool,
    /// The propagation options, in the order the bundle gives them.
    pub changes: Vec<Change>,
}

/// What runc's copy of a host mount is like after its first step, before anything is bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CopyState {
    /// As on the host: a peer of the host's group if the mount is shared, a slave of its
    /// master if it has one.
    AsHost,
    /// A slave of the host mount's peer group (`MS_SLAVE` on a shared mount).
    SlaveOfHostGroup,
    /// Shared in a group of the container's own, still a slave of the host mount's master.
    OwnGroup,
    Private,
    Unbindable,
}

/// The host mount a path lies on: the last (topmost) of those with the longest mount point
/// that is a prefix of it.
fn mount_of<'a>(host: &'a [RawMount], path: &Path) -> Option<&'a RawMount> {
    let mut best: Option<&RawMount> = None;
    for m in host {
        if path.starts_with(&m.mountpoint)
            && best.is_none_or(|b| {
                m.mountpoint.components().count() >= b.mountpoint.components().count()
            })
        {
            best = Some(m);
        }
    }
    best
}

/// The state of runc's copy of `m` after `root` was applied to the namespace's `/` and the
/// mount holding the root filesystem was made private if it was shared.
fn copy_state(m: &RawMount, root: Change, holds_rootfs: bool) -> CopyState {
    let touched = root.recursive || m.mountpoint == Path::new("/");
    let state = if !touched {
        if m.unbindable {
            CopyState::Unbindable
        } else if m.shared.is_some() || m.master.is_some() {
            CopyState::AsHost
        } else {
            CopyState::Private
        }
    } else {
        match root.kind {
            Kind::Shared if m.shared.is_some() => CopyState::AsHost,
            Kind::Shared => CopyState::OwnGroup,
            Kind::Slave if m.shared.is_some() => CopyState::SlaveOfHostGroup,
            Kind::Slave if m.master.is_some() && !m.unbindable => CopyState::AsHost,
            Kind::Slave | Kind::Private => CopyState::Private,
            Kind::Unbindable => CopyState::Unbindable,
        }
    };
    let shared = match state {
        CopyState::AsHost => m.shared.is_some(),
        CopyState::OwnGroup => true,
        _ => false,
    };
    if holds_rootfs && shared {
        CopyState::Private
    } else {
        state
    }
}

/// The steps that give the container's copy of host mount `m` the state runc's copy has.
fn copy_steps(m: &RawMount, root: Change, rootfs_mount: Option<u64>) -> Vec<Step> {
    let single = |kind| {
        Step::Change(Change {
            kind,
            recursive: false,
        })
    };
    let ties = Step::CopyHostTies {
        host_mountpoint: m.mountpoint.clone(),
    };
    // Joining a group needs a private mount; libcontainer's state is undone first.
    let mut steps = vec![single(Kind::Private)];
    match copy_state(m, root, rootfs_mount == Some(m.id)) {
        CopyState::AsHost => steps.push(ties),
        CopyState::SlaveOfHostGroup => steps.extend([ties, single(Kind::Slave)]),
        CopyState::OwnGroup if m.master.is_some() => steps.extend([ties, single(Kind::Shared)]),
        CopyState::OwnGroup => steps.push(single(Kind::Shared)),
        CopyState::Private => {}
        CopyState::Unbindable => steps.push(single(Kind::Unbindable)),
    }
    steps
}

/// The host mounts an rbind of `source` copies: those below it, except unbindable ones and
/// everything below them (the kernel leaves them out of the copy).
fn submounts<'a>(host: &'a [RawMount], source: &Path) -> Vec<&'a RawMount> {
    let below = |m: &RawMount| m.mountpoint != source && m.mountpoint.starts_with(source);
    let skipped: Vec<&Path> = host
        .iter()
        .filter(|m| below(m) && m.unbindable)
        .map(|m| m.mountpoint.as_path())
        .collect();
    host.iter()
        .filter(|m| below(m) && !skipped.iter().any(|u| m.mountpoint.starts_with(u)))
        .collect()
}

/// The steps that give the container's root and bind volumes the ties runc gives them, from
/// the bundle's rootfsPropagation, the host path of the root filesystem, the bind volumes and
/// the host's mount table (the one ferry runs in).
pub fn plan(
    rootfs_propagation: Option<&str>,
    rootfs: &Path,
    volumes: &[Volume],
    host: &[RawMount],
) -> Result<Vec<Fix>> {
    let default = Change {
        kind: Kind::Slave,
        recursive: true,
    };
    let asked = match rootfs_propagation {
        None | Some("") => None,
        Some(word) => Some(Change::parse(word).ok_or_else(|| {
            RuntimeError::Invalid(format!(
                "linux.rootfsPropagation {word:?} is not a propagation: use shared, slave, \
                 private or unbindable, with an r in front for the whole tree"
            ))
        })?),
    };
    let mut fixes = Vec::new();
    // runc cannot bind the root filesystem from an unbindable mount; ferry keeps the default
    // ties for everything bound and makes the tree unbindable as asked, before the volumes.
    let root = match asked {
        Some(c) if c.kind == Kind::Unbindable => {
            fixes.push(Fix {
                target: PathBuf::from("/"),
                steps: vec![Step::Change(c)],
                required: true,
            });
            default
        }
        Some(c) => c,
        None => default,
    };
    let rootfs_mount = mount_of(host, rootfs).map(|m| m.id);
    for v in volumes {
        let Some(m) = mount_of(host, &v.source) else {
            return Err(RuntimeError::Invalid(format!(
                "bind source {} lies on no mount of ferry's mount namespace",
                v.source.display()
            )));
        };
        fixes.push(Fix {
            target: v.destination.clone(),
            steps: copy_steps(m, root, rootfs_mount),
            required: true,
        });
        // An rbind copies the mounts below the source too, each as runc's first step left
        // it; the volume's own options (recursive ones reach them) come after.
        if v.recursive {
            for sub in submounts(host, &v.source) {
                let Ok(rel) = sub.mountpoint.strip_prefix(&v.source) else {
                    continue;
                };
                fixes.push(Fix {
                    target: v.destination.join(rel),
                    steps: copy_steps(sub, root, rootfs_mount),
                    required: false,
                });
            }
        }
        if !v.changes.is_empty() {
            fixes.push(Fix {
                target: v.destination.clone(),
                steps: v.changes.iter().copied().map(Step::Change).collect(),
                required: true,
            });
        }
    }
    Ok(fixes)
}

/// Whether a spec mount is a bind mount, as runc decides it.
fn is_bind(m: &oci_spec::runtime::Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .as_ref()
            .is_some_and(|o| o.iter().any(|x| x == "bind" || x == "rbind"))
}

/// Whether a later mount of the bundle lands on the same destination: the mount there is
/// that one, and the one at `i` is out of reach below it.
fn hidden(mounts: &[oci_spec::runtime::Mount], i: usize) -> bool {
    let dest = mounts[i].destination();
    mounts[i + 1..].iter().any(|m| m.destination() == dest)
}

/// The fixes for a bundle: nothing when the container shares ferry's mount namespace or
/// joins an existing one (runc builds no tree there either).
pub fn plan_for_bundle(spec: &Spec, bundle: &Path) -> Result<Vec<Fix>> {
    let Some(linux) = spec.linux() else {
        return Ok(Vec::new());
    };
    let own_mount_ns = linux.namespaces().as_ref().is_some_and(|ns| {
        ns.iter()
            .any(|n| n.typ() == LinuxNamespaceType::Mount && n.path().is_none())
    });
    if !own_mount_ns {
        return Ok(Vec::new());
    }
    let resolve = |p: &Path| -> Result<PathBuf> {
        let abs = if p.is_absolute() {
            p.to_path_buf()
        } else {
            bundle.join(p)
        };
        std::fs::canonicalize(&abs)
            .map_err(|e| RuntimeError::io(format!("resolving {}", abs.display()), e))
    };
    let Some(root) = spec.root() else {
        return Ok(Vec::new());
    };
    let rootfs = resolve(root.path())?;
    let mounts: &[oci_spec::runtime::Mount] = spec.mounts().as_deref().unwrap_or_default();
    let mut volumes = Vec::new();
    for (i, m) in mounts.iter().enumerate() {
        if !is_bind(m) || hidden(mounts, i) {
            continue;
        }
        let Some(source) = m.source() else { continue };
        let changes = m
            .options()
            .iter()
            .flatten()
            .filter_map(|o| Change::parse(o))
            .collect();
        let recursive = m
            .options()
            .as_ref()
            .is_some_and(|o| o.iter().any(|x| x == "rbind"));
        volumes.push(Volume {
            destination: m.destination().clone(),
            source: resolve(source)?,
            recursive,
            changes,
        });
    }
    let host = mountv2::scan::read_table(None, mountv2::scan::ScanSource::Mountinfo)
        .map_err(|e| RuntimeError::Invalid(format!("reading ferry's mount table: {e}")))?;
    plan(
        linux.rootfs_propagation().as_deref(),
        &rootfs,
        &volumes,
        &host,
    )
    .map_err(|e| match e {
        RuntimeError::Invalid(reason) => RuntimeError::MalformedConfig {
            path: bundle.to_path_buf(),
            reason,
        },
        e => e,
    })
}

/// Run `fixes` in the mount namespace of `pid` (a created container's init, before it
/// starts). The host mounts whose ties are copied are opened first, in ferry's namespace; a
/// thread of its own (with a private fs context, as setns requires) then enters the
/// container's namespace, so ferry's own namespace never changes.
pub fn apply(pid: i32, fixes: &[Fix]) -> Result<()> {
    if fixes.is_empty() {
        return Ok(());
    }
    let mut host_mounts: Vec<(PathBuf, OwnedFd)> = Vec::new();
    for s in fixes.iter().flat_map(|f| &f.steps) {
        if let Step::CopyHostTies { host_mountpoint } = s {
            if host_mounts.iter().any(|(p, _)| p == host_mountpoint) {
                continue;
            }
            let fd = rustix::fs::open(
                host_mountpoint,
                OFlags::PATH | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| {
                RuntimeError::io(
                    format!("opening host mount {}", host_mountpoint.display()),
                    e.into(),
                )
            })?;
            host_mounts.push((host_mountpoint.clone(), fd));
        }
    }
    let ns_path = format!("/proc/{pid}/ns/mnt");
    let ns = std::fs::File::open(&ns_path)
        .map_err(|e| RuntimeError::io(format!("opening {ns_path}"), e))?;
    std::thread::scope(|scope| {
        // setns(CLONE_NEWNS) refuses an fs context that other threads share: a thread of its
        // own unshares one and enters the namespace.
        let worker = scope.spawn(|| -> Result<()> {
            // nix, not rustix: rustix 1.1 deprecates its safe unshare for an unsafe one.
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS)
                .map_err(|e| RuntimeError::io("unsharing the fs context of a thread", e.into()))?;
            crate::mntns::in_namespace(ns.as_fd(), &format!("process {pid}'s"), || {
                for fix in fixes {
                    match apply_fix(fix, &host_mounts) {
                        Ok(()) => {}
                        Err(e) if !fix.required => {
                            tracing::warn!("{e}: the mount keeps the ties libcontainer gave it");
                        }
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            })
        });
        worker.join().unwrap_or_else(|_| {
            Err(RuntimeError::Invalid(
                "the thread setting mount propagation panicked".into(),
            ))
        })
    })
}

/// One fix, run in the container's mount namespace (where `/` is the container's root).
fn apply_fix(fix: &Fix, host_mounts: &[(PathBuf, OwnedFd)]) -> Result<()> {
    let target = &fix.target;
    let failed = |what: String, e: std::io::Error| {
        RuntimeError::io(
            format!("mount {} of the container: {what}", target.display()),
            e,
        )
    };
    for step in &fix.steps {
        match step {
            Step::Change(c) => {
                mount_change(target.as_path(), c.flags())
                    .map_err(|e| failed(format!("making it {c}"), e.into()))?;
            }
            Step::CopyHostTies { host_mountpoint } => {
                let Some((_, from)) = host_mounts.iter().find(|(p, _)| p == host_mountpoint) else {
                    continue;
                };
                let to = rustix::fs::open(
                    target,
                    OFlags::PATH | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                    Mode::empty(),
                )
                .map_err(|e| failed("opening it".into(), e.into()))?;
                mountv2::sys::set_group(from.as_fd(), to.as_fd()).map_err(|e| {
                    failed(
                        format!(
                            "joining the peer group of host mount {}",
                            host_mountpoint.display()
                        ),
                        e,
                    )
                })?;
            }
        }
    }
    tracing::debug!(target = %target.display(), steps = ?fix.steps, "propagation set as runc sets it");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host mount at `mountpoint` with the given peer group and master.
    fn host_mount(id: u64, mountpoint: &str, shared: Option<u64>, master: Option<u64>) -> RawMount {
        RawMount {
            id,
            parent_id: 1,
            dev: (0, id as u32),
            root: PathBuf::from("/"),
            root_deleted: false,
            mountpoint: PathBuf::from(mountpoint),
            mount_options: vec!["rw".into()],
            shared,
            master,
            propagate_from: None,
            unbindable: false,
            fstype: "tmpfs".into(),
            source: "tmpfs".into(),
            super_options: Vec::new(),
        }
    }

    /// The host of the integration matrix: `/` (private or shared), a shared tmpfs at /h.
    fn host(root_shared: bool) -> Vec<RawMount> {
        vec![
            host_mount(10, "/", root_shared.then_some(1), None),
            host_mount(20, "/h", Some(2), None),
        ]
    }

    fn volume(source: &str, options: &[&str]) -> Volume {
        Volume {
            destination: PathBuf::from("/v"),
            source: PathBuf::from(source),
            recursive: options.contains(&"rbind"),
            changes: options.iter().filter_map(|o| Change::parse(o)).collect(),
        }
    }

    fn change(word: &str) -> Step {
        match Change::parse(word) {
            Some(c) => Step::Change(c),
            None => panic!("{word} is a propagation"),
        }
    }

    fn ties(mountpoint: &str) -> Step {
        Step::CopyHostTies {
            host_mountpoint: PathBuf::from(mountpoint),
        }
    }

    /// The steps for the mount at the volume's destination, in order.
    fn steps(prop: Option<&str>, host: &[RawMount], v: Volume) -> Vec<Step> {
        let dest = v.destination.clone();
        match plan(prop, Path::new("/bundle/rootfs"), &[v], host) {
            Ok(fixes) => fixes
                .into_iter()
                .filter(|f| f.target == dest)
                .flat_map(|f| f.steps)
                .collect(),
            Err(e) => panic!("plan failed: {e}"),
        }
    }

    #[test]
    fn parses_runc_spellings() {
        assert_eq!(
            Change::parse("rshared"),
            Some(Change {
                kind: Kind::Shared,
                recursive: true
            })
        );
        assert_eq!(
            Change::parse("unbindable"),
            Some(Change {
                kind: Kind::Unbindable,
                recursive: false
            })
        );
        assert_eq!(Change::parse("rbind"), None);
        assert_eq!(Change::parse("r"), None);
        assert_eq!(Change::parse("ro"), None);
    }

    #[test]
    fn default_root_makes_a_volume_of_a_shared_mount_a_slave_of_it() {
        let s = steps(None, &host(false), volume("/h/src", &["rbind"]));
        assert_eq!(s, vec![change("private"), ties("/h"), change("slave")]);
    }

    #[test]
    fn volume_options_run_after_the_copied_ties() {
        let s = steps(None, &host(false), volume("/h/src", &["rbind", "rshared"]));
        assert_eq!(
            s,
            vec![
                change("private"),
                ties("/h"),
                change("slave"),
                change("rshared")
            ]
        );
        // On a private `/` that holds the root filesystem, the copy is private.
        let s = steps(None, &host(false), volume("/plain", &["rbind", "rshared"]));
        assert_eq!(s, vec![change("private"), change("rshared")]);
    }

    #[test]
    fn plain_root_propagation_leaves_other_mounts_peers_of_the_host() {
        for prop in ["slave", "private", "shared", "rshared"] {
            let s = steps(Some(prop), &host(true), volume("/h/src", &["rbind"]));
            assert_eq!(s, vec![change("private"), ties("/h")], "{prop}");
        }
        let s = steps(Some("rslave"), &host(true), volume("/h/src", &["rbind"]));
        assert_eq!(s, vec![change("private"), ties("/h"), change("slave")]);
        let s = steps(Some("rprivate"), &host(true), volume("/h/src", &["rbind"]));
        assert_eq!(s, vec![change("private")]);
    }

    #[test]
    fn the_mount_holding_the_rootfs_loses_its_peers_before_volumes_are_bound() {
        // `/` shared: made private by runc before the root filesystem is bound.
        for prop in ["shared", "rshared", "private", "slave"] {
            let s = steps(Some(prop), &host(true), volume("/plain", &["rbind"]));
            let want = match prop {
                "slave" => vec![change("private"), ties("/"), change("slave")],
                _ => vec![change("private")],
            };
            assert_eq!(s, want, "{prop}");
        }
    }

    #[test]
    fn a_shared_root_gives_a_private_mount_elsewhere_a_group_of_its_own() {
        let mut h = host(false);
        h.push(host_mount(30, "/data", None, Some(2)));
        let s = steps(Some("rshared"), &h, volume("/data/x", &["rbind"]));
        assert_eq!(s, vec![change("private"), ties("/data"), change("shared")]);
        h.push(host_mount(40, "/other", None, None));
        let s = steps(Some("rshared"), &h, volume("/other/x", &["rbind"]));
        assert_eq!(s, vec![change("private"), change("shared")]);
    }

    #[test]
    fn unbindable_root_is_set_first_and_volumes_keep_default_ties() {
        let v = volume("/h/src", &["rbind"]);
        let fixes = match plan(
            Some("runbindable"),
            Path::new("/bundle/rootfs"),
            &[v],
            &host(false),
        ) {
            Ok(f) => f,
            Err(e) => panic!("plan failed: {e}"),
        };
        assert_eq!(fixes[0].target, PathBuf::from("/"));
        assert_eq!(fixes[0].steps, vec![change("runbindable")]);
        assert_eq!(
            fixes[1].steps,
            vec![change("private"), ties("/h"), change("slave")]
        );
    }

    #[test]
    fn an_rbind_gives_the_mounts_below_its_source_their_own_copies_before_its_options() {
        let mut h = host(false);
        h.push(host_mount(30, "/plain/src/m", Some(3), None));
        let mut unbindable = host_mount(31, "/plain/src/u", None, None);
        unbindable.unbindable = true;
        h.push(unbindable);
        h.push(host_mount(32, "/plain/src/u/below", Some(4), None));
        let v = volume("/plain/src", &["rbind", "rprivate"]);
        let fixes = match plan(Some("private"), Path::new("/bundle/rootfs"), &[v], &h) {
            Ok(f) => f,
            Err(e) => panic!("plan failed: {e}"),
        };
        let targets: Vec<(&Path, bool)> = fixes
            .iter()
            .map(|f| (f.target.as_path(), f.required))
            .collect();
        assert_eq!(
            targets,
            vec![
                (Path::new("/v"), true),
                (Path::new("/v/m"), false),
                (Path::new("/v"), true)
            ]
        );
        assert_eq!(
            fixes[1].steps,
            vec![change("private"), ties("/plain/src/m")]
        );
        assert_eq!(fixes[2].steps, vec![change("rprivate")]);
        // A plain bind copies nothing below.
        let v = volume("/plain/src", &["bind"]);
        let fixes = match plan(Some("private"), Path::new("/bundle/rootfs"), &[v], &h) {
            Ok(f) => f,
            Err(e) => panic!("plan failed: {e}"),
        };
        assert_eq!(fixes.len(), 1);
    }

    #[test]
    fn topmost_mount_at_the_longest_prefix_holds_a_path() {
        let mut h = host(false);
        h.push(host_mount(21, "/h", Some(7), None));
        h.push(host_mount(22, "/hh", Some(8), None));
        let m = mount_of(&h, Path::new("/h/src"));
        assert_eq!(m.map(|m| m.id), Some(21));
        assert_eq!(mount_of(&h, Path::new("/hx")).map(|m| m.id), Some(10));
    }

    #[test]
    fn a_bind_under_a_later_mount_at_the_same_place_is_left_alone() {
        let mount = |dest: &str, typ: &str| {
            let mut m = oci_spec::runtime::Mount::default();
            m.set_destination(PathBuf::from(dest));
            m.set_typ(Some(typ.to_string()));
            m
        };
        let mounts = vec![
            mount("/x", "bind"),
            mount("/y", "bind"),
            mount("/x", "tmpfs"),
        ];
        assert!(hidden(&mounts, 0));
        assert!(!hidden(&mounts, 1));
        assert!(!hidden(&mounts, 2));
    }

    #[test]
    fn unknown_root_propagation_is_refused_with_the_choices() {
        match plan(Some("bogus"), Path::new("/r"), &[], &host(false)) {
            Err(e) => assert!(e.to_string().contains("rootfsPropagation \"bogus\""), "{e}"),
            Ok(f) => panic!("planned {f:?}"),
        }
    }
}
