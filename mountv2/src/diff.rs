//! Are two trees the same up to ids? Compares shape, fs type, root (and whether it was
//! deleted), file or directory, flags, superblock sharing, superblock options, the partition
//! into peer groups, the master relation and unbindable; each difference names its
//! [`DifferenceKind`].
//!
//! Mounts are matched structurally: the roots with each other, then children by mount point
//! (among one parent's children a mount point is unique; mounts on one point are stacked, that
//! is parent and child). Superblocks and groups are matched through the matched mounts; a
//! mapping that is not one-to-one is a difference.

use crate::model::{
    GroupIdx, Mount, MountIdx, MountTree, PeerGroup, SuperblockIdx, SuperblockOrigin,
};
use crate::plan::flags_text;
use serde::Serialize;
use std::collections::HashMap;

/// One difference, located by the mount point (relative to the tree roots) where it shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub mountpoint: String,
    /// The property the trees disagree on, for a caller that accepts some of them (restore
    /// accepts what its host explains).
    pub kind: DifferenceKind,
    /// The difference in words, with both sides' values.
    pub what: String,
}

/// The property of a mount two trees disagree on: one kind for each thing [`diff`] compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DifferenceKind {
    /// A mount (with whatever lies below it) only in A: missing from B. An empty B is one at
    /// the root.
    OnlyInA,
    /// A mount (with whatever lies below it) only in B: extra in B.
    OnlyInB,
    /// The filesystem type; the mount's other properties are not compared then.
    FsType,
    /// The root: the mount's place in its filesystem.
    Root,
    /// Whether the root was deleted (unlinked) from its filesystem.
    RootDeleted,
    /// A file mounted on a file in one tree, a directory in the other.
    FileMount,
    /// The per-mount flags (read-only, nosuid, nodev, noexec, atime).
    Flags,
    /// Which other mounts show the same superblock.
    SuperblockSharing,
    /// The superblock's options or its read-only state.
    SuperblockOptions,
    /// Unbindable or not.
    Unbindable,
    /// The peer group: which mounts are peers, or where an outside group is.
    PeerGroup,
    /// The master: which group the mount receives from, or where an outside one is.
    Master,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "/{}: {}", self.mountpoint, self.what)
    }
}

/// A one-to-one correspondence being built up between two index spaces.
struct Bijection<T: std::hash::Hash + Eq + Copy> {
    ab: HashMap<T, T>,
    ba: HashMap<T, T>,
}

impl<T: std::hash::Hash + Eq + Copy> Bijection<T> {
    fn new() -> Self {
        Bijection {
            ab: HashMap::new(),
            ba: HashMap::new(),
        }
    }
    /// Record a ~ b; false when it contradicts an earlier pairing.
    fn pair(&mut self, a: T, b: T) -> bool {
        match (self.ab.get(&a), self.ba.get(&b)) {
            (None, None) => {
                self.ab.insert(a, b);
                self.ba.insert(b, a);
                true
            }
            (Some(x), Some(y)) => *x == b && *y == a,
            _ => false,
        }
    }
}

/// Every difference between `a` and `b`; empty when they are equal up to ids.
pub fn diff(a: &MountTree, b: &MountTree) -> Vec<Difference> {
    let mut out = Vec::new();
    if a.mounts.is_empty() || b.mounts.is_empty() {
        if a.mounts.len() != b.mounts.len() {
            out.push(Difference {
                mountpoint: String::new(),
                kind: if b.mounts.is_empty() {
                    DifferenceKind::OnlyInA
                } else {
                    DifferenceKind::OnlyInB
                },
                what: "one tree is empty".into(),
            });
        }
        return out;
    }
    let mut pairs = pair_mounts(a, b, &mut out);
    pairs.sort_by(|x, y| a.mount(x.0).mountpoint.cmp(&a.mount(y.0).mountpoint));
    let mut sbs: Bijection<SuperblockIdx> = Bijection::new();
    let mut groups: Bijection<GroupIdx> = Bijection::new();
    for (ma, mb) in pairs {
        let (x, y) = (a.mount(ma), b.mount(mb));
        let mut say = |kind: DifferenceKind, what: String| {
            out.push(Difference {
                mountpoint: x.mountpoint.clone(),
                kind,
                what,
            })
        };
        if compare_mounts(a, b, x, y, &mut sbs, &mut say) {
            compare_propagation(a, b, x, y, &mut groups, &mut say);
        }
    }
    out.sort_by(|x, y| x.mountpoint.cmp(&y.mountpoint));
    out
}

/// Pair the mounts of `a` and `b` by mount point, walking down from the roots; a mount of one
/// tree without a counterpart in the other is a difference.
fn pair_mounts(
    a: &MountTree,
    b: &MountTree,
    out: &mut Vec<Difference>,
) -> Vec<(MountIdx, MountIdx)> {
    let ca = a.children();
    let cb = b.children();
    let mut pairs: Vec<(MountIdx, MountIdx)> = Vec::new();
    let mut queue = vec![(MountIdx(0), MountIdx(0))];
    while let Some((ma, mb)) = queue.pop() {
        pairs.push((ma, mb));
        let kb: HashMap<&str, MountIdx> = cb[mb.get()]
            .iter()
            .map(|k| (b.mount(*k).mountpoint.as_str(), *k))
            .collect();
        let mut seen = std::collections::HashSet::new();
        for k in &ca[ma.get()] {
            let mp = a.mount(*k).mountpoint.as_str();
            match kb.get(mp) {
                Some(other) => {
                    seen.insert(mp);
                    queue.push((*k, *other));
                }
                None => out.push(Difference {
                    mountpoint: mp.to_string(),
                    kind: DifferenceKind::OnlyInA,
                    what: format!(
                        "{} mount (root {}) on mount /{} only in A",
                        a.superblock(a.mount(*k).superblock).fstype,
                        a.mount(*k).root,
                        a.mount(ma).mountpoint
                    ),
                }),
            }
        }
        for k in &cb[mb.get()] {
            let mp = b.mount(*k).mountpoint.as_str();
            if !seen.contains(mp) {
                out.push(Difference {
                    mountpoint: mp.to_string(),
                    kind: DifferenceKind::OnlyInB,
                    what: format!(
                        "{} mount (root {}) on mount /{} only in B",
                        b.superblock(b.mount(*k).superblock).fstype,
                        b.mount(*k).root,
                        b.mount(mb).mountpoint
                    ),
                });
            }
        }
    }
    pairs
}

/// What two paired mounts are: filesystem type, root, file or directory, flags, which mounts
/// share their superblock and the superblock's options. False when their filesystem types
/// differ: that says it all.
fn compare_mounts(
    a: &MountTree,
    b: &MountTree,
    x: &Mount,
    y: &Mount,
    sbs: &mut Bijection<SuperblockIdx>,
    say: &mut impl FnMut(DifferenceKind, String),
) -> bool {
    let (sa, sb) = (a.superblock(x.superblock), b.superblock(y.superblock));
    if sa.fstype != sb.fstype {
        say(
            DifferenceKind::FsType,
            format!("fs type {} vs {}", sa.fstype, sb.fstype),
        );
        return false;
    }
    let deleted = |m: &Mount| if m.root_deleted { " (deleted)" } else { "" };
    if x.root != y.root {
        say(
            DifferenceKind::Root,
            format!("root {}{} vs {}{}", x.root, deleted(x), y.root, deleted(y)),
        );
    }
    if x.root_deleted != y.root_deleted {
        say(
            DifferenceKind::RootDeleted,
            format!("root deleted {} vs {}", x.root_deleted, y.root_deleted),
        );
    }
    if x.is_file != y.is_file {
        say(
            DifferenceKind::FileMount,
            format!("file mount {} vs {}", x.is_file, y.is_file),
        );
    }
    if x.flags != y.flags {
        say(
            DifferenceKind::Flags,
            format!("flags {} vs {}", flags_text(&x.flags), flags_text(&y.flags)),
        );
    }
    if !sbs.pair(x.superblock, y.superblock) {
        say(
            DifferenceKind::SuperblockSharing,
            "shares its superblock differently (with other mounts) in A and B".into(),
        );
    }
    // An external filesystem is the restoring host's (an overlay remounted by the engine,
    // a disk): its mount options are the host's business, its read-only state is not.
    let both_external = matches!(sa.origin, SuperblockOrigin::External { .. })
        && matches!(sb.origin, SuperblockOrigin::External { .. });
    let options_differ = !both_external && sa.options != sb.options;
    if options_differ || sa.readonly != sb.readonly {
        say(
            DifferenceKind::SuperblockOptions,
            format!(
                "superblock options {}{} vs {}{}",
                if sa.readonly { "ro," } else { "rw," },
                sa.options.join(","),
                if sb.readonly { "ro," } else { "rw," },
                sb.options.join(",")
            ),
        );
    }
    true
}

/// How two paired mounts propagate: unbindable, and their peer group and master, related to
/// the other mounts the same way in both trees.
fn compare_propagation(
    a: &MountTree,
    b: &MountTree,
    x: &Mount,
    y: &Mount,
    groups: &mut Bijection<GroupIdx>,
    say: &mut impl FnMut(DifferenceKind, String),
) {
    let (px, py) = (x.propagation, y.propagation);
    if px.unbindable != py.unbindable {
        say(
            DifferenceKind::Unbindable,
            format!("unbindable {} vs {}", px.unbindable, py.unbindable),
        );
    }
    for (kind, what, ga, gb) in [
        (
            DifferenceKind::PeerGroup,
            "peer group",
            px.shared,
            py.shared,
        ),
        (DifferenceKind::Master, "master", px.master, py.master),
    ] {
        let mut say = |text: String| say(kind, text);
        match (ga, gb) {
            (None, None) => {}
            (Some(g1), Some(g2)) => {
                if !groups.pair(g1, g2) {
                    say(format!(
                        "{what} differs: it relates to other mounts in A than in B"
                    ));
                } else if let (PeerGroup::External { path: p1 }, PeerGroup::External { path: p2 }) =
                    (&a.groups[g1.get()], &b.groups[g2.get()])
                {
                    if p1 != p2 {
                        say(format!("{what} is the outside group of {p1} vs of {p2}"));
                    }
                } else if std::mem::discriminant(&a.groups[g1.get()])
                    != std::mem::discriminant(&b.groups[g2.get()])
                {
                    say(format!(
                        "{what} reaches outside the tree in one and not in the other"
                    ));
                }
            }
            (Some(_), None) => say(format!("{what} only in A")),
            (None, Some(_)) => say(format!("{what} only in B")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    fn tree() -> MountTree {
        let sb = |t: &str| Superblock {
            fstype: t.into(),
            source: "x".into(),
            options: vec![],
            readonly: false,
            origin: SuperblockOrigin::Fresh,
        };
        let m = |parent: Option<u32>, mp: &str, sb: u32, p: Propagation| Mount {
            parent: parent.map(MountIdx),
            mountpoint: mp.into(),
            superblock: SuperblockIdx(sb),
            root: "/".into(),
            root_deleted: false,
            is_file: false,
            flags: MountFlags::default(),
            propagation: p,
        };
        let shared = |g| Propagation {
            shared: Some(GroupIdx(g)),
            ..Default::default()
        };
        MountTree {
            mounts: vec![
                m(None, "", 0, shared(0)),
                m(Some(0), "a", 0, shared(0)),
                m(Some(0), "b", 1, Propagation::default()),
                m(
                    Some(0),
                    "c",
                    0,
                    Propagation {
                        master: Some(GroupIdx(0)),
                        ..Default::default()
                    },
                ),
            ],
            superblocks: vec![sb("tmpfs"), sb("tmpfs")],
            groups: vec![PeerGroup::Internal],
        }
    }

    /// The same tree with mounts, superblocks and groups numbered differently.
    fn permuted() -> MountTree {
        let mut t = tree();
        t.superblocks.swap(0, 1);
        for m in &mut t.mounts {
            m.superblock = SuperblockIdx(1 - m.superblock.0);
        }
        t.groups.insert(0, PeerGroup::Internal);
        t.groups[0] = PeerGroup::Internal;
        for m in &mut t.mounts {
            for x in [&mut m.propagation.shared, &mut m.propagation.master]
                .into_iter()
                .flatten()
            {
                *x = GroupIdx(x.0 + 1);
            }
        }
        // Group 0 now has no member; give it one so the tree stays valid.
        t.mounts[2].propagation.shared = Some(GroupIdx(0));
        t.mounts.swap(1, 3);
        t
    }

    #[test]
    fn equal_up_to_ids() {
        let a = tree();
        let mut b = tree();
        b.mounts.swap(2, 3);
        assert!(diff(&a, &b).is_empty(), "{:?}", diff(&a, &b));
    }

    #[test]
    fn permuted_ids_with_a_real_change_is_found() {
        let d = diff(&tree(), &permuted());
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].mountpoint, "b");
        assert!(d[0].what.contains("peer group only in B"), "{d:?}");
    }

    #[test]
    fn each_kind_of_difference_is_reported() {
        let a = tree();
        let mut b = tree();
        b.mounts[1].flags.readonly = true;
        b.mounts[2].superblock = SuperblockIdx(0);
        b.mounts[3].propagation.master = None;
        b.mounts[3].propagation.unbindable = true;
        b.mounts.push(Mount {
            parent: Some(MountIdx(0)),
            mountpoint: "extra".into(),
            ..b.mounts[2].clone()
        });
        let text: Vec<String> = diff(&a, &b).iter().map(|d| d.to_string()).collect();
        let all = text.join("\n");
        for want in [
            "/a: flags",
            "/b: shares its superblock",
            "/c: master only in A",
            "/c: unbindable",
            "/extra: tmpfs mount",
        ] {
            assert!(all.contains(want), "missing {want:?} in\n{all}");
        }
    }

    /// `b` is `tree()` changed by `change`: exactly one difference, of `kind`, at `mountpoint`.
    fn only_difference(change: impl FnOnce(&mut MountTree), kind: DifferenceKind, at: &str) {
        let a = tree();
        let mut b = tree();
        change(&mut b);
        let d = diff(&a, &b);
        assert_eq!(d.len(), 1, "{kind:?}: {d:?}");
        assert_eq!((d[0].kind, d[0].mountpoint.as_str()), (kind, at), "{d:?}");
    }

    #[test]
    fn a_mount_only_in_a_is_missing() {
        only_difference(|b| drop(b.mounts.pop()), DifferenceKind::OnlyInA, "c");
    }

    #[test]
    fn a_mount_only_in_b_is_extra() {
        let extra = |b: &mut MountTree| {
            b.mounts.push(Mount {
                parent: Some(MountIdx(1)),
                mountpoint: "a/x".into(),
                ..b.mounts[2].clone()
            })
        };
        only_difference(extra, DifferenceKind::OnlyInB, "a/x");
    }

    #[test]
    fn an_empty_tree_misses_the_root() {
        let empty = MountTree {
            mounts: vec![],
            superblocks: vec![],
            groups: vec![],
        };
        let d = diff(&tree(), &empty);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(
            (d[0].kind, d[0].mountpoint.as_str()),
            (DifferenceKind::OnlyInA, "")
        );
        let d = diff(&empty, &tree());
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].kind, DifferenceKind::OnlyInB);
        assert!(diff(&empty, &empty).is_empty());
    }

    #[test]
    fn fs_type_alone_is_reported() {
        let change = |b: &mut MountTree| b.superblocks[1].fstype = "ramfs".into();
        only_difference(change, DifferenceKind::FsType, "b");
    }

    #[test]
    fn root_is_its_own_kind() {
        only_difference(
            |b| b.mounts[1].root = "/sub".into(),
            DifferenceKind::Root,
            "a",
        );
    }

    #[test]
    fn deleted_root_is_its_own_kind() {
        let change = |b: &mut MountTree| b.mounts[1].root_deleted = true;
        only_difference(change, DifferenceKind::RootDeleted, "a");
    }

    #[test]
    fn file_mount_is_its_own_kind() {
        only_difference(
            |b| b.mounts[2].is_file = true,
            DifferenceKind::FileMount,
            "b",
        );
    }

    #[test]
    fn flags_are_their_own_kind() {
        let change = |b: &mut MountTree| b.mounts[3].flags.nosuid = true;
        only_difference(change, DifferenceKind::Flags, "c");
    }

    #[test]
    fn superblock_sharing_is_its_own_kind() {
        // b shows the root's superblock instead of one of its own (same type and options).
        let change = |b: &mut MountTree| b.mounts[2].superblock = SuperblockIdx(0);
        only_difference(change, DifferenceKind::SuperblockSharing, "b");
    }

    #[test]
    fn superblock_options_are_their_own_kind() {
        let options = |b: &mut MountTree| b.superblocks[1].options = vec!["size=4k".into()];
        only_difference(options, DifferenceKind::SuperblockOptions, "b");
        let readonly = |b: &mut MountTree| b.superblocks[1].readonly = true;
        only_difference(readonly, DifferenceKind::SuperblockOptions, "b");
    }

    #[test]
    fn unbindable_is_its_own_kind() {
        let change = |b: &mut MountTree| b.mounts[2].propagation.unbindable = true;
        only_difference(change, DifferenceKind::Unbindable, "b");
    }

    #[test]
    fn peer_group_partition_is_its_own_kind() {
        // a leaves the root's group for one of its own.
        let split = |b: &mut MountTree| {
            b.groups.push(PeerGroup::Internal);
            b.mounts[1].propagation.shared = Some(GroupIdx(1));
        };
        only_difference(split, DifferenceKind::PeerGroup, "a");
        let outside = |b: &mut MountTree| {
            b.groups.push(PeerGroup::External { path: "/x".into() });
            b.mounts[2].propagation.shared = Some(GroupIdx(1));
        };
        only_difference(outside, DifferenceKind::PeerGroup, "b");
    }

    #[test]
    fn master_is_its_own_kind() {
        let change = |b: &mut MountTree| b.mounts[3].propagation.master = None;
        only_difference(change, DifferenceKind::Master, "c");
    }

    #[test]
    fn kind_is_serialised_beside_the_text() {
        let a = tree();
        let mut b = tree();
        b.mounts[1].flags.readonly = true;
        let json = serde_json::to_value(diff(&a, &b)).expect("differences serialise");
        assert_eq!(json[0]["mountpoint"], "a", "{json}");
        assert_eq!(json[0]["kind"], "flags", "{json}");
        assert!(
            json[0]["what"]
                .as_str()
                .is_some_and(|w| w.starts_with("flags")),
            "{json}"
        );
        let extra = serde_json::to_value(DifferenceKind::OnlyInB).expect("kind serialises");
        assert_eq!(extra, "only_in_b");
    }

    #[test]
    fn split_peer_group_is_a_difference() {
        let a = tree();
        let mut b = tree();
        b.groups.push(PeerGroup::Internal);
        b.mounts[1].propagation.shared = Some(GroupIdx(1));
        let d = diff(&a, &b);
        assert!(
            d.iter()
                .any(|x| x.mountpoint == "a" && x.what.contains("peer group")),
            "{d:?}"
        );
    }
}
