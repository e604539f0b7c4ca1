//! Image -> [`MountPlan`]: the ordered kernel steps that rebuild the tree. Pure: no syscalls.
//!
//! The order is the mount-v2 method:
//! 1. every superblock once (fresh, or an external one bound from a host path), filled with its
//!    captured content while it is still writable and nothing is mounted on it;
//! 2. every mount as a private, detached clone of its superblock's root walked down to its own
//!    root;
//! 3. the tree assembled parent-first while everything is private, so nothing propagates;
//! 4. the finished tree attached at the target in one move;
//! 5. per-mount attributes (mount_setattr needs the mounts in the caller's namespace), then
//!    read-only superblocks turned read-only;
//! 6. propagation last: each peer group grows from a donor (a member whose root contains every
//!    root that must join it, or else a temporary covering clone of the superblock root), slaves
//!    join their master's group and step down to slave, and unbindable comes at the very end
//!    because unbindable mounts cannot be cloned and lose that state when joining a group.

use crate::content::Content;
use crate::image::{is_within, MountImage};
use crate::model::{
    GroupIdx, Mount, MountFlags, MountIdx, MountTree, PeerGroup, SuperblockIdx, SuperblockOrigin,
};
use crate::policy::RestorePolicy;
use std::collections::HashMap;
use std::fmt;

/// Something a step acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Handle {
    /// A mount of the image.
    Mount(MountIdx),
    /// A temporary clone of a superblock's root that seeds a peer group and is dropped after.
    Cover(GroupIdx),
    /// The mount outside the tree (on the restoring host) that stands for an external group.
    Outside(GroupIdx),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// fsopen/fsconfig/fsmount a new superblock; its root stays detached as the clone source.
    CreateSuperblock {
        sb: SuperblockIdx,
        fstype: String,
        source: String,
        options: Vec<String>,
    },
    /// Take an external superblock's root from a path on this host (`--external KEY=PATH`, or
    /// the dump's hint when it shows the same filesystem here).
    OpenExternal {
        sb: SuperblockIdx,
        key: String,
        hint: Option<String>,
    },
    /// Write the captured content into a fresh superblock.
    Populate {
        sb: SuperblockIdx,
    },
    /// A mount's root had been deleted: make a placeholder so it can be cloned, removed again
    /// once every clone exists.
    MakePlaceholder {
        sb: SuperblockIdx,
        path: String,
        file: bool,
    },
    /// Private, detached clone of the superblock root walked down to `root`.
    Clone {
        mount: MountIdx,
        sb: SuperblockIdx,
        root: String,
    },
    RemovePlaceholder {
        sb: SuperblockIdx,
        path: String,
    },
    /// move_mount the mount onto `at` (relative to the parent's root), creating the mount point
    /// when it is missing. `at` empty: stacked on top of the parent.
    Attach {
        mount: MountIdx,
        parent: MountIdx,
        at: String,
        file: bool,
    },
    /// mount_setattr the per-mount flags.
    SetAttr {
        mount: MountIdx,
        flags: MountFlags,
    },
    /// Reconfigure a superblock read-only once it is filled and every mount point exists.
    SuperblockReadonly {
        sb: SuperblockIdx,
    },
    /// Attach the assembled tree at the target directory.
    AttachRoot {
        mount: MountIdx,
    },
    /// Clone the superblock root as a group's donor (root "/", so it contains every member).
    MakeCover {
        group: GroupIdx,
        sb: SuperblockIdx,
    },
    /// Open the mount at `path` (outside the tree) that stands for an external group.
    OpenOutside {
        group: GroupIdx,
        path: String,
    },
    MakeShared(Handle),
    MakeSlave(Handle),
    /// move_mount(from, to, MOVE_MOUNT_SET_GROUP): `to` joins `from`'s peer group and master.
    SetGroup {
        from: Handle,
        to: Handle,
    },
    MakeUnbindable(MountIdx),
    /// Drop a cover: closing its fd unmounts it and removes it from the group.
    DropCover(GroupIdx),
}

/// The ordered steps, with the image they were made from (for paths in messages and content).
#[derive(Debug, Clone)]
pub struct MountPlan {
    pub steps: Vec<Step>,
    pub mount_count: usize,
    pub superblock_count: usize,
    pub group_count: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("image: {0}")]
    Invalid(String),
    #[error("groups[{0}]: the master relation has a cycle through this group")]
    MasterCycle(u32),
    #[error("groups[{group}]: members sit on different superblocks ({a} and {b}); a peer group cannot span superblocks")]
    GroupSpansSuperblocks { group: u32, a: u32, b: u32 },
    #[error("mounts[{mount}] at /{mountpoint}: idmapped mounts cannot be restored (the image carries no user namespace to map through)")]
    Idmapped { mount: u32, mountpoint: String },
    #[error("mounts[{mount}] at /{mountpoint}: deleted root on an external superblock cannot be recreated")]
    DeletedExternalRoot { mount: u32, mountpoint: String },
    #[error(transparent)]
    Refused(#[from] crate::policy::PolicyError),
}

/// What a group needs from its donor.
struct GroupNeeds {
    sb: Option<SuperblockIdx>,
    /// Roots that must be inside the donor's root: members, slaves, donors of groups it masters.
    roots: Vec<String>,
}

/// Does filesystem root `outer` contain `inner`?
fn root_contains(outer: &str, inner: &str) -> bool {
    is_within(outer.trim_start_matches('/'), inner.trim_start_matches('/'))
}

/// Make the plan for `image`, refusing whatever `policy` does not allow (before any step is
/// made, so a refused image never reaches the kernel).
pub fn plan(image: &MountImage, policy: &RestorePolicy) -> Result<MountPlan, PlanError> {
    image
        .validate()
        .map_err(|e| PlanError::Invalid(e.to_string()))?;
    policy.check(image)?;
    let tree = &image.tree;
    let mut steps = Vec::with_capacity(tree.mounts.len() * 4 + tree.superblocks.len() * 2);

    for (i, m) in tree.mounts.iter().enumerate() {
        if m.flags.idmapped {
            return Err(PlanError::Idmapped {
                mount: i as u32,
                mountpoint: m.mountpoint.clone(),
            });
        }
    }
    let used = superblocks_in_use(tree);
    // 1. Superblocks, filled while writable.
    plan_superblocks(image, policy, &used, &mut steps);
    // 2. Placeholders for deleted roots, so they can be cloned.
    let placeholders = plan_placeholders(tree, &mut steps)?;
    // 3. Clone and assemble parent-first.
    plan_assembly(tree, &mut steps);
    // 4. Into place, then the placeholders go.
    plan_placement(placeholders, &mut steps);
    // 5. Attributes, then read-only superblocks.
    plan_attributes(tree, &used, &mut steps);
    // 6. Propagation.
    plan_propagation(tree, &mut steps)?;

    Ok(MountPlan {
        steps,
        mount_count: tree.mounts.len(),
        superblock_count: tree.superblocks.len(),
        group_count: tree.groups.len(),
    })
}

/// Superblocks in use: created (and filled while writable) or opened from this host.
fn plan_superblocks(
    image: &MountImage,
    policy: &RestorePolicy,
    used: &[bool],
    steps: &mut Vec<Step>,
) {
    let tree = &image.tree;
    let has_content: HashMap<SuperblockIdx, &Content> = image
        .contents
        .iter()
        .map(|c| (c.superblock, &c.content))
        .collect();
    for (i, sb) in tree.superblocks.iter().enumerate() {
        let idx = SuperblockIdx(i as u32);
        if !used[i] {
            continue;
        }
        match &sb.origin {
            SuperblockOrigin::Fresh => {
                steps.push(Step::CreateSuperblock {
                    sb: idx,
                    fstype: sb.fstype.clone(),
                    source: sb.source.clone(),
                    options: sb.options.clone(),
                });
                if has_content.contains_key(&idx) {
                    steps.push(Step::Populate { sb: idx });
                }
            }
            // The image's hint is a path on this host: only when the caller accepts hints.
            SuperblockOrigin::External { key, hint } => steps.push(Step::OpenExternal {
                sb: idx,
                key: key.clone(),
                hint: hint.clone().filter(|_| policy.image_hints),
            }),
        }
    }
}

/// Placeholders for deleted roots, so they can be cloned; returns them.
fn plan_placeholders(
    tree: &MountTree,
    steps: &mut Vec<Step>,
) -> Result<Vec<(SuperblockIdx, String)>, PlanError> {
    let mut placeholders = Vec::new();
    for (i, m) in tree.mounts.iter().enumerate() {
        if m.root_deleted {
            if !matches!(
                tree.superblock(m.superblock).origin,
                SuperblockOrigin::Fresh
            ) {
                return Err(PlanError::DeletedExternalRoot {
                    mount: i as u32,
                    mountpoint: m.mountpoint.clone(),
                });
            }
            if m.root != "/" {
                steps.push(Step::MakePlaceholder {
                    sb: m.superblock,
                    path: m.root.clone(),
                    file: m.is_file,
                });
                placeholders.push((m.superblock, m.root.clone()));
            }
        }
    }
    Ok(placeholders)
}

/// Clone and assemble parent-first, each mount cloned just before it is attached (so an
/// executor short of fds can let go of attached ones). Among siblings, a mount whose mount
/// point lies below another sibling's must go first: attaching it later would walk into
/// that sibling.
fn plan_assembly(tree: &MountTree, steps: &mut Vec<Step>) {
    let clone = |idx: MountIdx| {
        let m = tree.mount(idx);
        Step::Clone {
            mount: idx,
            sb: m.superblock,
            root: m.root.clone(),
        }
    };
    steps.push(clone(MountIdx(0)));
    let children = tree.children();
    let mut stack = vec![MountIdx(0)];
    while let Some(parent) = stack.pop() {
        let mut kids = children[parent.get()].clone();
        kids.sort_by_key(|k| std::cmp::Reverse(depth(&tree.mount(*k).mountpoint)));
        for k in &kids {
            let child = tree.mount(*k);
            steps.push(clone(*k));
            steps.push(Step::Attach {
                mount: *k,
                parent,
                at: relative_to(&tree.mount(parent).mountpoint, &child.mountpoint),
                file: child.is_file,
            });
        }
        stack.extend(kids.into_iter().rev());
    }
}

/// Into place. mount_setattr only works on a detached tree's root, so attributes come after
/// this.
fn plan_placement(mut placeholders: Vec<(SuperblockIdx, String)>, steps: &mut Vec<Step>) {
    steps.push(Step::AttachRoot { mount: MountIdx(0) });
    // The kernel will not attach a mount whose root is already unlinked, so placeholders go
    // only now; deepest first, so nested ones come out in order.
    placeholders.sort_by_key(|p| std::cmp::Reverse(p.1.len()));
    placeholders.dedup();
    for (sb, path) in placeholders {
        steps.push(Step::RemovePlaceholder { sb, path });
    }
}

/// Per-mount attributes, then read-only superblocks.
fn plan_attributes(tree: &MountTree, used: &[bool], steps: &mut Vec<Step>) {
    for (i, m) in tree.mounts.iter().enumerate() {
        steps.push(Step::SetAttr {
            mount: MountIdx(i as u32),
            flags: m.flags,
        });
    }
    for (i, sb) in tree.superblocks.iter().enumerate() {
        if used[i] && sb.readonly && matches!(sb.origin, SuperblockOrigin::Fresh) {
            steps.push(Step::SuperblockReadonly {
                sb: SuperblockIdx(i as u32),
            });
        }
    }
}

fn superblocks_in_use(tree: &MountTree) -> Vec<bool> {
    let mut used = vec![false; tree.superblocks.len()];
    for m in &tree.mounts {
        used[m.superblock.get()] = true;
    }
    used
}

fn depth(path: &str) -> usize {
    if path.is_empty() {
        0
    } else {
        path.split('/').count()
    }
}

fn relative_to(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else if child == parent {
        String::new()
    } else {
        child[parent.len() + 1..].to_string()
    }
}

/// How the tree's mounts relate through peer groups.
struct Relations {
    /// The peers of each group.
    members: Vec<Vec<MountIdx>>,
    /// Mounts that are only slaves (not peers of anything) of each group.
    slaves_only: Vec<Vec<MountIdx>>,
    /// Groups whose master is each group.
    child_groups: Vec<Vec<GroupIdx>>,
    /// Each group's master.
    group_master: Vec<Option<GroupIdx>>,
}

/// Peer groups: masters first, each group seeded from a donor (a member whose root holds
/// every other's, else a cover, or the outside mount), its members and slaves joined to it,
/// covers dropped after.
fn plan_propagation(tree: &MountTree, steps: &mut Vec<Step>) -> Result<(), PlanError> {
    if tree.groups.is_empty() {
        push_unbindable(tree, steps);
        return Ok(());
    }
    let rel = relations(tree);
    let mut needs = group_needs(tree, &rel)?;
    // Masters before the groups they master; detect cycles.
    let order = topological(&rel.group_master, &rel.child_groups)?;
    let donor = choose_donors(tree, &rel, &order, &mut needs)?;
    push_group_steps(tree, &rel, &order, &donor, &needs, steps);
    push_unbindable(tree, steps);
    Ok(())
}

fn relations(tree: &MountTree) -> Relations {
    let ngroups = tree.groups.len();
    let mut slaves_only: Vec<Vec<MountIdx>> = vec![Vec::new(); ngroups];
    let mut child_groups: Vec<Vec<GroupIdx>> = vec![Vec::new(); ngroups];
    let mut group_master: Vec<Option<GroupIdx>> = vec![None; ngroups];
    for (i, m) in tree.mounts.iter().enumerate() {
        let p = &m.propagation;
        match (p.shared, p.master) {
            (None, Some(h)) => slaves_only[h.get()].push(MountIdx(i as u32)),
            (Some(g), Some(h)) if group_master[g.get()].is_none() => {
                group_master[g.get()] = Some(h);
                child_groups[h.get()].push(g);
            }
            _ => {}
        }
    }

    Relations {
        members: tree.group_members(),
        slaves_only,
        child_groups,
        group_master,
    }
}

/// Every group's superblock (all members and slaves must agree) and the roots its donor
/// must contain.
fn group_needs(tree: &MountTree, rel: &Relations) -> Result<Vec<GroupNeeds>, PlanError> {
    let ngroups = tree.groups.len();
    let mut needs: Vec<GroupNeeds> = (0..ngroups)
        .map(|_| GroupNeeds {
            sb: None,
            roots: Vec::new(),
        })
        .collect();
    for (g, need) in needs.iter_mut().enumerate() {
        for m in rel.members[g].iter().chain(rel.slaves_only[g].iter()) {
            let mount = tree.mount(*m);
            note_sb(need, g, mount)?;
            need.roots.push(mount.root.clone());
        }
    }
    Ok(needs)
}

/// Donors, decided slaves-first (a master must contain its child groups' donors).
fn choose_donors(
    tree: &MountTree,
    rel: &Relations,
    order: &[GroupIdx],
    needs: &mut [GroupNeeds],
) -> Result<Vec<Option<Handle>>, PlanError> {
    let ngroups = tree.groups.len();
    let mut donor: Vec<Option<Handle>> = vec![None; ngroups];
    let mut donor_root: Vec<String> = vec![String::from("/"); ngroups];
    for &g in order.iter().rev() {
        let gi = g.get();
        for c in &rel.child_groups[gi] {
            let child_root = donor_root[c.get()].clone();
            needs[gi].roots.push(child_root);
            if let Some(sb) = needs[c.get()].sb {
                if let Some(own) = needs[gi].sb {
                    if own != sb {
                        return Err(PlanError::GroupSpansSuperblocks {
                            group: g.0,
                            a: own.0,
                            b: sb.0,
                        });
                    }
                }
                needs[gi].sb = Some(sb);
            }
        }
        let chosen = match &tree.groups[gi] {
            PeerGroup::External { .. } => Handle::Outside(g),
            // Only the member with the shortest root can contain all the others: check it
            // alone, keeping this linear.
            PeerGroup::Internal => rel.members[gi]
                .iter()
                .min_by_key(|m| tree.mount(**m).root.len())
                .filter(|m| {
                    let r = &tree.mount(**m).root;
                    needs[gi].roots.iter().all(|x| root_contains(r, x))
                })
                .map(|m| Handle::Mount(*m))
                .unwrap_or(Handle::Cover(g)),
        };
        donor_root[gi] = match chosen {
            Handle::Mount(m) => tree.mount(m).root.clone(),
            _ => "/".to_string(),
        };
        donor[gi] = Some(chosen);
    }

    Ok(donor)
}

/// The steps that make each group, in `order`, from its donor.
fn push_group_steps(
    tree: &MountTree,
    rel: &Relations,
    order: &[GroupIdx],
    donor: &[Option<Handle>],
    needs: &[GroupNeeds],
    steps: &mut Vec<Step>,
) {
    for &g in order {
        let gi = g.get();
        let Some(d) = donor[gi] else { continue };
        match (&tree.groups[gi], d) {
            (PeerGroup::External { path }, _) => steps.push(Step::OpenOutside {
                group: g,
                path: path.clone(),
            }),
            (_, Handle::Cover(_)) => match needs[gi].sb {
                Some(sb) => steps.push(Step::MakeCover { group: g, sb }),
                // A group with no mount at all cannot arise from a valid tree.
                None => continue,
            },
            _ => {}
        }
        if !matches!(tree.groups[gi], PeerGroup::External { .. }) {
            // Seed the group: join the master first (as a peer, then step down), then share.
            if let Some(h) = rel.group_master[gi] {
                if let Some(hd) = donor[h.get()] {
                    steps.push(Step::SetGroup { from: hd, to: d });
                    steps.push(Step::MakeSlave(d));
                }
            }
            steps.push(Step::MakeShared(d));
        }
        for m in &rel.members[gi] {
            let h = Handle::Mount(*m);
            if h != d {
                steps.push(Step::SetGroup { from: d, to: h });
            }
        }
        for s in &rel.slaves_only[gi] {
            let h = Handle::Mount(*s);
            steps.push(Step::SetGroup { from: d, to: h });
            steps.push(Step::MakeSlave(h));
        }
    }
    for &g in order {
        if matches!(donor[g.get()], Some(Handle::Cover(_))) {
            steps.push(Step::DropCover(g));
        }
    }
}

fn note_sb(needs: &mut GroupNeeds, g: usize, mount: &Mount) -> Result<(), PlanError> {
    match needs.sb {
        Some(sb) if sb != mount.superblock => Err(PlanError::GroupSpansSuperblocks {
            group: g as u32,
            a: sb.0,
            b: mount.superblock.0,
        }),
        _ => {
            needs.sb = Some(mount.superblock);
            Ok(())
        }
    }
}

/// Groups ordered so that every master comes before the groups it masters.
fn topological(
    master: &[Option<GroupIdx>],
    child_groups: &[Vec<GroupIdx>],
) -> Result<Vec<GroupIdx>, PlanError> {
    let n = master.len();
    let mut order = Vec::with_capacity(n);
    let mut queue: Vec<GroupIdx> = (0..n)
        .filter(|g| master[*g].is_none())
        .map(|g| GroupIdx(g as u32))
        .collect();
    let mut i = 0;
    while i < queue.len() {
        let g = queue[i];
        i += 1;
        order.push(g);
        queue.extend(child_groups[g.get()].iter().copied());
    }
    if order.len() != n {
        let mut seen = vec![false; n];
        for g in &order {
            seen[g.get()] = true;
        }
        let stuck = seen.iter().position(|s| !s).unwrap_or(0);
        return Err(PlanError::MasterCycle(stuck as u32));
    }
    Ok(order)
}

fn push_unbindable(tree: &MountTree, steps: &mut Vec<Step>) {
    for (i, m) in tree.mounts.iter().enumerate() {
        if m.propagation.unbindable {
            steps.push(Step::MakeUnbindable(MountIdx(i as u32)));
        }
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Handle::Mount(m) => write!(f, "mount[{}]", m.0),
            Handle::Cover(g) => write!(f, "cover[group {}]", g.0),
            Handle::Outside(g) => write!(f, "outside[group {}]", g.0),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::CreateSuperblock {
                sb,
                fstype,
                source,
                options,
            } => write!(
                f,
                "create-superblock sb[{}] type={fstype} source={source:?} options={:?}",
                sb.0,
                options.join(",")
            ),
            Step::OpenExternal { sb, key, hint } => write!(
                f,
                "open-external sb[{}] key={key:?} hint={}",
                sb.0,
                hint.as_deref().unwrap_or("-")
            ),
            Step::Populate { sb } => write!(f, "populate sb[{}]", sb.0),
            Step::MakePlaceholder { sb, path, file } => write!(
                f,
                "make-placeholder sb[{}] {path:?} {}",
                sb.0,
                if *file { "file" } else { "dir" }
            ),
            Step::Clone { mount, sb, root } => {
                write!(
                    f,
                    "clone mount[{}] from sb[{}] root={root:?}",
                    mount.0, sb.0
                )
            }
            Step::RemovePlaceholder { sb, path } => {
                write!(f, "remove-placeholder sb[{}] {path:?}", sb.0)
            }
            Step::Attach {
                mount,
                parent,
                at,
                file,
            } => write!(
                f,
                "attach mount[{}] on mount[{}] at {at:?}{}",
                mount.0,
                parent.0,
                if *file { " (file)" } else { "" }
            ),
            Step::SetAttr { mount, flags } => {
                write!(f, "set-attr mount[{}] {}", mount.0, flags_text(flags))
            }
            Step::SuperblockReadonly { sb } => write!(f, "superblock-readonly sb[{}]", sb.0),
            Step::AttachRoot { mount } => write!(f, "attach-root mount[{}] at target", mount.0),
            Step::MakeCover { group, sb } => {
                write!(
                    f,
                    "make-cover cover[group {}] from sb[{}] root=\"/\"",
                    group.0, sb.0
                )
            }
            Step::OpenOutside { group, path } => {
                write!(f, "open-outside outside[group {}] {path:?}", group.0)
            }
            Step::MakeShared(h) => write!(f, "make-shared {h}"),
            Step::MakeSlave(h) => write!(f, "make-slave {h}"),
            Step::SetGroup { from, to } => write!(f, "set-group from {from} to {to}"),
            Step::MakeUnbindable(m) => write!(f, "make-unbindable mount[{}]", m.0),
            Step::DropCover(g) => write!(f, "drop-cover cover[group {}]", g.0),
        }
    }
}

/// Flags in mount(8) words.
pub fn flags_text(flags: &MountFlags) -> String {
    let mut words = vec![if flags.readonly { "ro" } else { "rw" }];
    for (on, word) in [
        (flags.nosuid, "nosuid"),
        (flags.nodev, "nodev"),
        (flags.noexec, "noexec"),
        (flags.nosymfollow, "nosymfollow"),
        (flags.idmapped, "idmapped"),
    ] {
        if on {
            words.push(word);
        }
    }
    words.push(match flags.atime {
        crate::model::Atime::Relatime => "relatime",
        crate::model::Atime::Noatime => "noatime",
        crate::model::Atime::Strictatime => "strictatime",
        crate::model::Atime::Nodiratime => "nodiratime",
    });
    words.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    fn mount(parent: Option<u32>, mp: &str, root: &str, p: Propagation) -> Mount {
        Mount {
            parent: parent.map(MountIdx),
            mountpoint: mp.into(),
            superblock: SuperblockIdx(0),
            root: root.into(),
            root_deleted: false,
            is_file: false,
            flags: MountFlags::default(),
            propagation: p,
        }
    }
    fn shared(g: u32) -> Propagation {
        Propagation {
            shared: Some(GroupIdx(g)),
            ..Default::default()
        }
    }
    fn slave(g: u32) -> Propagation {
        Propagation {
            master: Some(GroupIdx(g)),
            ..Default::default()
        }
    }
    fn image(mounts: Vec<Mount>, groups: usize) -> MountImage {
        MountImage::new(
            MountTree {
                mounts,
                superblocks: vec![Superblock {
                    fstype: "tmpfs".into(),
                    source: "t".into(),
                    options: vec![],
                    readonly: false,
                    origin: SuperblockOrigin::Fresh,
                }],
                groups: vec![PeerGroup::Internal; groups],
            },
            vec![],
        )
    }
    fn lines(img: &MountImage) -> Vec<String> {
        plan(img, &RestorePolicy::trust_all())
            .expect("plan")
            .steps
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn widest_member_is_the_donor() {
        // Scenario 1 shape: root shared, binds of subdirectories in its group.
        let img = image(
            vec![
                mount(None, "", "/", shared(0)),
                mount(Some(0), "d", "/a", shared(0)),
                mount(Some(0), "e", "/a/b", shared(0)),
            ],
            1,
        );
        let l = lines(&img);
        assert!(l.contains(&"make-shared mount[0]".to_string()), "{l:#?}");
        assert!(l.contains(&"set-group from mount[0] to mount[2]".to_string()));
        assert!(!l.iter().any(|s| s.contains("cover")), "{l:#?}");
    }

    #[test]
    fn disjoint_slaves_need_a_covering_donor() {
        // Scenario 8 shape: the master X is shared with root /, binds of /a and /b are slaves,
        // but only the binds are in the dumped tree (the master group lives inside as a bind of
        // /a alone, which cannot donate to /b).
        let img = image(
            vec![
                mount(None, "", "/", Propagation::default()),
                mount(Some(0), "x", "/a", shared(0)),
                mount(Some(0), "p", "/a", slave(0)),
                mount(Some(0), "q", "/b", slave(0)),
            ],
            1,
        );
        let l = lines(&img);
        let cover = l
            .iter()
            .position(|s| s.starts_with("make-cover cover[group 0]"))
            .expect("cover");
        let shared = l
            .iter()
            .position(|s| s == "make-shared cover[group 0]")
            .expect("shared");
        let drop = l
            .iter()
            .position(|s| s == "drop-cover cover[group 0]")
            .expect("drop");
        assert!(cover < shared && shared < drop);
        assert!(l.contains(&"set-group from cover[group 0] to mount[3]".to_string()));
        assert!(l.contains(&"make-slave mount[3]".to_string()));
    }

    #[test]
    fn shared_slave_group_joins_its_master_first() {
        let img = image(
            vec![
                mount(None, "", "/", shared(0)),
                mount(
                    Some(0),
                    "s",
                    "/",
                    Propagation {
                        shared: Some(GroupIdx(1)),
                        master: Some(GroupIdx(0)),
                        unbindable: false,
                    },
                ),
                mount(
                    Some(0),
                    "t",
                    "/",
                    Propagation {
                        shared: Some(GroupIdx(1)),
                        master: Some(GroupIdx(0)),
                        unbindable: false,
                    },
                ),
            ],
            2,
        );
        let l = lines(&img);
        let want = [
            "make-shared mount[0]",
            "set-group from mount[0] to mount[1]",
            "make-slave mount[1]",
            "make-shared mount[1]",
            "set-group from mount[1] to mount[2]",
        ];
        let pos: Vec<usize> = want
            .iter()
            .map(|w| l.iter().position(|s| s == w).expect(w))
            .collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "{l:#?}");
    }

    #[test]
    fn tucked_sibling_attaches_before_the_overmount() {
        let img = image(
            vec![
                mount(None, "", "/", Propagation::default()),
                mount(Some(0), "a", "/", Propagation::default()),
                mount(Some(0), "a/b", "/", Propagation::default()),
            ],
            0,
        );
        let l = lines(&img);
        let deep = l
            .iter()
            .position(|s| s.starts_with("attach mount[2]"))
            .expect("deep");
        let over = l
            .iter()
            .position(|s| s.starts_with("attach mount[1]"))
            .expect("over");
        assert!(deep < over);
    }

    #[test]
    fn unbindable_is_last_and_master_cycles_are_refused() {
        let mut img = image(
            vec![
                mount(None, "", "/", shared(0)),
                mount(
                    Some(0),
                    "u",
                    "/",
                    Propagation {
                        unbindable: true,
                        ..Default::default()
                    },
                ),
            ],
            1,
        );
        let l = lines(&img);
        assert_eq!(
            l.last().map(String::as_str),
            Some("make-unbindable mount[1]")
        );
        img.tree.groups.push(PeerGroup::Internal);
        img.tree.mounts[0].propagation.master = Some(GroupIdx(1));
        img.tree.mounts[1].propagation = Propagation {
            shared: Some(GroupIdx(1)),
            master: Some(GroupIdx(0)),
            unbindable: false,
        };
        assert!(matches!(
            plan(&img, &RestorePolicy::trust_all()),
            Err(PlanError::MasterCycle(_))
        ));
    }

    #[test]
    fn plan_is_linear_in_size() {
        // 20k mounts in one group must plan quickly (no quadratic scans).
        let n = 20_000;
        let mut mounts = vec![mount(None, "", "/", shared(0))];
        for i in 1..n {
            mounts.push(mount(
                Some(0),
                &format!("d{i}"),
                &format!("/s{i}"),
                shared(0),
            ));
        }
        let img = image(mounts, 1);
        let t = std::time::Instant::now();
        let p = plan(&img, &RestorePolicy::trust_all()).expect("plan");
        assert!(p.steps.len() > n);
        assert!(t.elapsed().as_secs_f64() < 2.0, "{:?}", t.elapsed());
    }
}
