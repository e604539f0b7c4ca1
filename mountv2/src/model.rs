//! The mount tree as a final state: mounts in an arena, the superblocks they share, and the
//! peer groups that tie them together.
//!
//! Everything here is host-independent: no mount ids, no device numbers, only indices into the
//! tree's own tables. `scan` builds a [`MountTree`] from a live namespace, `image` wraps one for
//! disk, `plan` turns one into kernel steps and `diff` compares two.

use serde::{Deserialize, Serialize};

/// Index into [`MountTree::mounts`]. `MountIdx(0)` is always the tree's root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MountIdx(pub u32);

/// Index into [`MountTree::superblocks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SuperblockIdx(pub u32);

/// Index into [`MountTree::groups`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GroupIdx(pub u32);

impl MountIdx {
    pub fn get(self) -> usize {
        self.0 as usize
    }
}
impl SuperblockIdx {
    pub fn get(self) -> usize {
        self.0 as usize
    }
}
impl GroupIdx {
    pub fn get(self) -> usize {
        self.0 as usize
    }
}

/// A mount tree rooted at one mount.
///
/// Invariants (checked by [`MountTree::validate`]): `mounts[0]` is the only mount without a
/// parent; every parent index precedes its child (parent-first order, which is also the order
/// in which stacked mounts on one mount point were made); every index resolves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountTree {
    pub mounts: Vec<Mount>,
    pub superblocks: Vec<Superblock>,
    pub groups: Vec<PeerGroup>,
}

/// One mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// `None` only for the root mount.
    pub parent: Option<MountIdx>,
    /// Mount point relative to the tree's root mount point: `""` for the root, `"a/b"` for a
    /// mount at `<root>/a/b`. Mounts stacked on one point share this path; the later one has
    /// the earlier one as its parent.
    pub mountpoint: String,
    pub superblock: SuperblockIdx,
    /// The directory (or file) of the filesystem that this mount shows, absolute within the
    /// filesystem: `"/"` for a whole-filesystem mount, `"/a/b"` for a bind of a subdirectory.
    pub root: String,
    /// The root was deleted after the mount was made (mountinfo's `//deleted`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub root_deleted: bool,
    /// The mount shows a single file, not a directory.
    #[serde(default, skip_serializing_if = "is_false")]
    pub is_file: bool,
    pub flags: MountFlags,
    pub propagation: Propagation,
}

impl Mount {
    /// A mount of the whole filesystem of `superblock` (root `"/"`, not deleted, a directory)
    /// at `mountpoint` (relative to the tree's root, `""` for the root mount) below `parent`,
    /// with default flags (read-write, relatime, nothing else set) and no propagation
    /// (private, bindable). Scans build mounts field by field; this is for trees written by
    /// hand, such as test fixtures, which change the few fields they care about.
    pub fn new(
        parent: Option<MountIdx>,
        mountpoint: impl Into<String>,
        superblock: SuperblockIdx,
    ) -> Self {
        Mount {
            parent,
            mountpoint: mountpoint.into(),
            superblock,
            root: "/".into(),
            root_deleted: false,
            is_file: false,
            flags: MountFlags::default(),
            propagation: Propagation::default(),
        }
    }
}

/// Per-mount flags (not superblock options).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MountFlags {
    #[serde(default, skip_serializing_if = "is_false")]
    pub readonly: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub nosuid: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub nodev: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub noexec: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub nosymfollow: bool,
    #[serde(default)]
    pub atime: Atime,
    /// The mount carries an id mapping (MOUNT_ATTR_IDMAP). Recorded, compared; restoring one
    /// needs a user namespace to map through, which the image does not carry.
    #[serde(default, skip_serializing_if = "is_false")]
    pub idmapped: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Atime {
    #[default]
    Relatime,
    Noatime,
    Strictatime,
    /// nodiratime together with relatime (the kernel keeps it as a separate bit).
    Nodiratime,
}

/// Propagation state of one mount.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Propagation {
    /// Peer group the mount is a member of (`shared:N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<GroupIdx>,
    /// Group the mount receives propagation from (`master:N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<GroupIdx>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub unbindable: bool,
}

/// A filesystem instance, shared by every mount that shows part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Superblock {
    pub fstype: String,
    /// The mount source as mountinfo shows it (`tmpfs`, `/dev/vda`, `proc`, ...).
    pub source: String,
    /// Superblock options that matter for recreating it, in kernel order (`size=...`,
    /// `mode=...`, `uid=...`), without `ro`/`rw`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// The superblock itself is read-only (its options say `ro`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub readonly: bool,
    pub origin: SuperblockOrigin,
}

/// How a restore gets hold of a superblock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum SuperblockOrigin {
    /// The engine makes a new one (tmpfs, proc, sysfs, devpts, mqueue, cgroup, cgroup2...).
    Fresh,
    /// The engine cannot make it (a block device filesystem, overlay, the host's root): restore
    /// binds it from a path on the restoring host. `key` names it in `--external KEY=PATH`;
    /// `hint` is where the dumping host had its root visible, tried first on restore.
    External {
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hint: Option<String>,
    },
}

/// A peer group (the `N` of `shared:N` / `master:N`), without its kernel number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum PeerGroup {
    /// Every member is inside the tree (and at least one is).
    Internal,
    /// The group has members outside the tree (typically on the host), and maybe inside too.
    /// Restore re-joins it from the mount at `path` (absolute, in the restoring namespace),
    /// which must be a member of the group (or a slave of it, when only mastership is needed)
    /// on the same superblock, with a root that contains the roots of the mounts joining.
    External { path: String },
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Why a [`MountTree`] is not well-formed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    #[error("the tree has no mounts")]
    Empty,
    #[error("mounts[0] must be the root (no parent), found parent {0}")]
    RootHasParent(u32),
    #[error("mounts[{0}]: only mounts[0] may lack a parent")]
    SecondRoot(u32),
    #[error("mounts[{mount}].parent = {parent}: parents must come before their children")]
    ParentOrder { mount: u32, parent: u32 },
    #[error("mounts[{mount}].superblock = {sb}: no such superblock")]
    NoSuperblock { mount: u32, sb: u32 },
    #[error("mounts[{mount}].propagation: no such group {group}")]
    NoGroup { mount: u32, group: u32 },
    #[error("mounts[{mount}]: a mount cannot be a slave of its own peer group {group}")]
    SelfMaster { mount: u32, group: u32 },
    #[error("groups[{0}]: internal group has no member inside the tree")]
    EmptyGroup(u32),
}

impl MountTree {
    /// Keep the mounts whose `keep` entry is true (missing entries: kept), renumbering them.
    /// A dropped mount's descendants are dropped too. A peer group left without members
    /// becomes external, named by where its first dropped member was (relative to the root,
    /// with a leading `/`): the mounts still tied to it are tied to something outside now.
    pub fn retain_mounts(&mut self, keep: &[bool]) {
        let mut new_idx = vec![None; self.mounts.len()];
        let mut kept = Vec::new();
        let mut dropped_member: Vec<Option<String>> = vec![None; self.groups.len()];
        for (i, m) in self.mounts.iter().enumerate() {
            let parent_kept = m
                .parent
                .is_none_or(|p| new_idx.get(p.get()).copied().flatten().is_some());
            if parent_kept && keep.get(i).copied().unwrap_or(true) {
                new_idx[i] = Some(MountIdx(kept.len() as u32));
                kept.push(m.clone());
            } else if let Some(g) = m.propagation.shared {
                if let Some(slot) = dropped_member.get_mut(g.get()) {
                    slot.get_or_insert_with(|| format!("/{}", m.mountpoint));
                }
            }
        }
        for m in kept.iter_mut() {
            m.parent = m
                .parent
                .and_then(|p| new_idx.get(p.get()).copied().flatten());
        }
        self.mounts = kept;
        let members = self.group_members();
        for (g, group) in self.groups.iter_mut().enumerate() {
            if matches!(group, PeerGroup::Internal) && members[g].is_empty() {
                let path = dropped_member[g].clone().unwrap_or_else(|| "/".into());
                *group = PeerGroup::External { path };
            }
        }
    }

    /// Drop the mounts at the given mount points (relative, as in [`Mount::mountpoint`]) and
    /// everything below them, as [`MountTree::retain_mounts`] does.
    pub fn exclude(&mut self, points: &[String]) {
        let below = |p: &str, mp: &str| {
            let p = p.trim_matches('/');
            mp == p || (p.is_empty() && !mp.is_empty()) || mp.starts_with(&format!("{p}/"))
        };
        let keep: Vec<bool> = self
            .mounts
            .iter()
            .map(|m| !points.iter().any(|p| below(p, &m.mountpoint)))
            .collect();
        self.retain_mounts(&keep);
    }

    pub fn root(&self) -> Option<&Mount> {
        self.mounts.first()
    }

    pub fn mount(&self, idx: MountIdx) -> &Mount {
        &self.mounts[idx.get()]
    }

    pub fn superblock(&self, idx: SuperblockIdx) -> &Superblock {
        &self.superblocks[idx.get()]
    }

    /// Indices of every mount, with their children lists, in parent-first order.
    pub fn children(&self) -> Vec<Vec<MountIdx>> {
        let mut out = vec![Vec::new(); self.mounts.len()];
        for (i, m) in self.mounts.iter().enumerate() {
            if let Some(p) = m.parent {
                if let Some(list) = out.get_mut(p.get()) {
                    list.push(MountIdx(i as u32));
                }
            }
        }
        out
    }

    /// Members of each group, indexed by group.
    pub fn group_members(&self) -> Vec<Vec<MountIdx>> {
        let mut out = vec![Vec::new(); self.groups.len()];
        for (i, m) in self.mounts.iter().enumerate() {
            if let Some(g) = m.propagation.shared {
                if let Some(list) = out.get_mut(g.get()) {
                    list.push(MountIdx(i as u32));
                }
            }
        }
        out
    }

    /// Check the structural invariants. Every index must resolve and parents come first.
    pub fn validate(&self) -> Result<(), TreeError> {
        let root = self.mounts.first().ok_or(TreeError::Empty)?;
        if let Some(p) = root.parent {
            return Err(TreeError::RootHasParent(p.0));
        }
        let mut has_member = vec![false; self.groups.len()];
        for (i, m) in self.mounts.iter().enumerate() {
            let i = i as u32;
            if i > 0 {
                match m.parent {
                    None => return Err(TreeError::SecondRoot(i)),
                    Some(p) if p.0 >= i => {
                        return Err(TreeError::ParentOrder {
                            mount: i,
                            parent: p.0,
                        })
                    }
                    Some(_) => {}
                }
            }
            if m.superblock.get() >= self.superblocks.len() {
                return Err(TreeError::NoSuperblock {
                    mount: i,
                    sb: m.superblock.0,
                });
            }
            for g in [m.propagation.shared, m.propagation.master]
                .into_iter()
                .flatten()
            {
                if g.get() >= self.groups.len() {
                    return Err(TreeError::NoGroup {
                        mount: i,
                        group: g.0,
                    });
                }
            }
            if let Some(g) = m.propagation.shared {
                has_member[g.get()] = true;
                if m.propagation.master == Some(g) {
                    return Err(TreeError::SelfMaster {
                        mount: i,
                        group: g.0,
                    });
                }
            }
        }
        for (g, group) in self.groups.iter().enumerate() {
            if matches!(group, PeerGroup::Internal) && !has_member[g] {
                return Err(TreeError::EmptyGroup(g as u32));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One fresh tmpfs, mounted at the root and at `a`, both in one peer group.
    pub(crate) fn tmpfs_tree() -> MountTree {
        let sb = Superblock {
            fstype: "tmpfs".into(),
            source: "t".into(),
            options: vec![],
            readonly: false,
            origin: SuperblockOrigin::Fresh,
        };
        let m = |parent: Option<u32>, mp: &str, shared: Option<u32>| {
            let mut m = Mount::new(parent.map(MountIdx), mp, SuperblockIdx(0));
            m.propagation.shared = shared.map(GroupIdx);
            m
        };
        MountTree {
            mounts: vec![m(None, "", Some(0)), m(Some(0), "a", Some(0))],
            superblocks: vec![sb],
            groups: vec![PeerGroup::Internal],
        }
    }

    #[test]
    fn valid_tree_passes() {
        assert_eq!(tmpfs_tree().validate(), Ok(()));
    }

    #[test]
    fn child_before_parent_is_refused() {
        let mut t = tmpfs_tree();
        t.mounts[1].parent = Some(MountIdx(1));
        assert_eq!(
            t.validate(),
            Err(TreeError::ParentOrder {
                mount: 1,
                parent: 1
            })
        );
    }

    #[test]
    fn dangling_group_is_refused() {
        let mut t = tmpfs_tree();
        t.mounts[1].propagation.master = Some(GroupIdx(7));
        assert_eq!(t.validate(), Err(TreeError::NoGroup { mount: 1, group: 7 }));
    }

    #[test]
    fn internal_group_without_member_is_refused() {
        let mut t = tmpfs_tree();
        t.groups.push(PeerGroup::Internal);
        assert_eq!(t.validate(), Err(TreeError::EmptyGroup(1)));
    }
}
