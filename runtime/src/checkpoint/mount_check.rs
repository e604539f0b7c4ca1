//! The restore's mount check, as pure functions over the checkpointed tree (A), the restored
//! one (B) and their differences: which flags to give back, and which differences this host
//! and this bundle explain.
//!
//! The host's own mounts (those it propagated into volumes, those the restore brought in) are
//! taken out of both trees before they are compared, not filtered afterwards: they pair up
//! with each other, share superblocks and peer groups with the container's mounts, and so
//! change what is reported at the container's own mount points.

use mountv2::diff::{Difference, DifferenceKind};
use mountv2::model::{MountFlags, MountTree};
use std::path::PathBuf;

/// The mount points (as mount images write them) whose place in their host filesystem comes
/// from the bundle the container is restored with: the root and each bind's destination.
pub(super) fn bundle_points(binds: &[(PathBuf, PathBuf)]) -> Vec<String> {
    binds
        .iter()
        .map(|(dest, _)| {
            mountv2::content::escape_path(dest)
                .trim_matches('/')
                .to_string()
        })
        .chain(std::iter::once(String::new()))
        .collect()
}

/// Whether this host explains a difference: a mount of the bundle's (the root, a bind) has
/// its root where the new bundle's source is, which need not be where the checkpointed
/// one's was. Only the root at the bundle's point itself: mounts below it, its other
/// properties and a deleted root are the container's. (A mount the container stacked on a
/// bind point shares the point, so its root passes too.)
pub(super) fn explained_by_host(d: &Difference, bundle_points: &[String]) -> bool {
    d.kind == DifferenceKind::Root && bundle_points.contains(&d.mountpoint)
}

/// The differences this host does not explain: the restore's mismatches.
pub(super) fn unexplained(diffs: Vec<Difference>, bundle_points: &[String]) -> Vec<Difference> {
    diffs
        .into_iter()
        .filter(|d| !explained_by_host(d, bundle_points))
        .collect()
}

/// CRIU does not restore every per-mount flag (the root's read-only one among them): the
/// flags to give back, from the checkpoint, at each mount point holding one mount in each
/// tree whose flags differ (a stacked point's path reaches only its top mount). Mounts are
/// matched by mount point alone, not through [`mountv2::diff`], which says nothing of the
/// flags of a mount whose filesystem type changed: with `--mount-mismatch=warn` such a mount
/// (a read-only root on another filesystem) still gets its flags back.
pub(super) fn flag_repairs(expected: &MountTree, live: &MountTree) -> Vec<(String, MountFlags)> {
    let alone =
        |t: &MountTree, mp: &str| t.mounts.iter().filter(|m| m.mountpoint == mp).count() == 1;
    expected
        .mounts
        .iter()
        .filter(|m| alone(expected, &m.mountpoint) && alone(live, &m.mountpoint))
        .filter(|m| {
            live.mounts
                .iter()
                .any(|l| l.mountpoint == m.mountpoint && l.flags != m.flags)
        })
        .map(|m| (m.mountpoint.clone(), m.flags))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mountv2::model::{Mount, MountIdx, Superblock, SuperblockIdx, SuperblockOrigin};

    fn difference(kind: DifferenceKind, mountpoint: &str) -> Difference {
        Difference {
            mountpoint: mountpoint.into(),
            kind,
            what: format!("{kind:?}"),
        }
    }

    fn points() -> Vec<String> {
        bundle_points(&[
            (PathBuf::from("/data"), PathBuf::from("/srv/data")),
            (PathBuf::from("/etc/hosts"), PathBuf::from("/run/hosts")),
        ])
    }

    #[test]
    fn bundle_points_are_the_root_and_each_bind_destination() {
        assert_eq!(points(), ["data", "etc/hosts", ""]);
    }

    #[test]
    fn a_root_difference_at_a_bundle_point_is_explained() {
        let left = unexplained(
            vec![
                difference(DifferenceKind::Root, ""),
                difference(DifferenceKind::Root, "data"),
                difference(DifferenceKind::Root, "etc/hosts"),
            ],
            &points(),
        );
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_root_difference_elsewhere_is_not_explained() {
        let elsewhere = vec![
            difference(DifferenceKind::Root, "data/sub"),
            difference(DifferenceKind::Root, "etc"),
            difference(DifferenceKind::Root, "dat"),
            difference(DifferenceKind::Root, "proc"),
        ];
        assert_eq!(unexplained(elsewhere.clone(), &points()), elsewhere);
    }

    #[test]
    fn other_kinds_at_a_bundle_point_are_not_explained() {
        let others: Vec<Difference> = [
            DifferenceKind::OnlyInA,
            DifferenceKind::OnlyInB,
            DifferenceKind::FsType,
            DifferenceKind::RootDeleted,
            DifferenceKind::FileMount,
            DifferenceKind::Flags,
            DifferenceKind::SuperblockSharing,
            DifferenceKind::SuperblockOptions,
            DifferenceKind::Unbindable,
            DifferenceKind::PeerGroup,
            DifferenceKind::Master,
        ]
        .into_iter()
        .flat_map(|k| [difference(k, ""), difference(k, "data")])
        .collect();
        assert_eq!(unexplained(others.clone(), &points()), others);
    }

    /// A root tmpfs with `data` on it, and a second mount stacked on `data` when `stacked`.
    fn tree(stacked: bool, readonly_data: bool) -> MountTree {
        let m =
            |parent: Option<u32>, mp: &str| Mount::new(parent.map(MountIdx), mp, SuperblockIdx(0));
        let mut mounts = vec![m(None, ""), m(Some(0), "data")];
        mounts[1].flags.readonly = readonly_data;
        if stacked {
            mounts.push(m(Some(1), "data"));
        }
        MountTree {
            mounts,
            superblocks: vec![Superblock {
                fstype: "tmpfs".into(),
                source: "x".into(),
                options: vec![],
                readonly: false,
                origin: SuperblockOrigin::Fresh,
            }],
            groups: vec![],
        }
    }

    #[test]
    fn flags_are_given_back_from_the_checkpoint() {
        let repairs = flag_repairs(&tree(false, true), &tree(false, false));
        assert_eq!(repairs.len(), 1, "{repairs:?}");
        assert_eq!(repairs[0].0, "data");
        assert!(repairs[0].1.readonly);
        assert!(flag_repairs(&tree(false, true), &tree(false, true)).is_empty());
    }

    #[test]
    fn flags_come_back_also_on_another_filesystem() {
        let expected = tree(false, true);
        let mut live = tree(false, false);
        live.superblocks[0].fstype = "ramfs".into();
        let repairs = flag_repairs(&expected, &live);
        assert_eq!(repairs.len(), 1, "{repairs:?}");
    }

    #[test]
    fn stacked_points_are_not_repaired() {
        assert!(flag_repairs(&tree(true, true), &tree(true, false)).is_empty());
        assert!(flag_repairs(&tree(false, true), &tree(true, false)).is_empty());
    }
}
