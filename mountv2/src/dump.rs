//! Scan -> image: read the caller's mount namespace, build the tree at a path, settle what the
//! tree shares with the rest of the namespace (groups and superblocks that also live outside),
//! and capture the content of the superblocks a restore will make fresh.
//!
//! Runs in the namespace being dumped: a caller that wants another process's namespace enters
//! it first (setns), because open_tree cannot clone mounts of a foreign namespace.

use crate::content::ContentError;
use crate::image::{MountImage, SuperblockContent};
use crate::model::{MountIdx, MountTree, PeerGroup, SuperblockIdx, SuperblockOrigin};
use crate::scan::{self, RawMount, ScanError, ScanSource};
use rustix::fd::AsFd;
use rustix::mount::OpenTreeFlags;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct DumpOptions {
    /// The mount at this path is the image's root.
    pub root: PathBuf,
    pub source: ScanSource,
    /// Capture file content of fresh tmpfs superblocks.
    pub content: bool,
    /// Bound on captured content bytes in all.
    pub content_limit: u64,
}

impl Default for DumpOptions {
    fn default() -> Self {
        DumpOptions {
            root: PathBuf::from("/"),
            source: ScanSource::Auto,
            content: true,
            content_limit: crate::image::MAX_CONTENT_BYTES,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error("capturing content of the {fstype} mounted at {mountpoint}: {source}")]
    Content {
        fstype: String,
        mountpoint: String,
        source: ContentError,
    },
    #[error("{0}")]
    Other(String),
}

/// Superblock types whose content travels in the image.
fn carries_content(fstype: &str) -> bool {
    matches!(fstype, "tmpfs" | "ramfs")
}

pub fn dump(opts: &DumpOptions) -> Result<MountImage, DumpError> {
    let table = scan::read_table(None, opts.source)?;
    let mut tree = scan::tree_at(&table, &opts.root)?;
    let rows = match_rows(&table, &tree, &opts.root)?;
    settle_outside_ties(&table, &mut tree, &rows, &opts.root);
    reachable_outside_paths(&table, &mut tree, &rows);
    let contents = if opts.content {
        capture_contents(&tree, &rows, &opts.root, opts.content_limit)?
    } else {
        Vec::new()
    };
    Ok(MountImage::new(tree, contents))
}

/// Absolute path of a tree mount point (escaped as [`crate::content::escape_path`] writes
/// it), byte for byte.
pub fn absolute(root: &Path, mountpoint: &str) -> Result<PathBuf, DumpError> {
    if mountpoint.is_empty() {
        return Ok(root.to_path_buf());
    }
    crate::content::unescape_path(mountpoint)
        .map(|rel| root.join(rel))
        .map_err(|e| DumpError::Other(format!("mount point {mountpoint:?}: {e}")))
}

/// The raw row of every tree mount, found by walking the tree and the table together (among
/// one parent's children a mount point is unique: mounts on the same point are stacked, that
/// is parent and child).
fn match_rows<'t>(
    table: &'t [RawMount],
    tree: &MountTree,
    root: &Path,
) -> Result<Vec<&'t RawMount>, DumpError> {
    let mut by_parent: HashMap<u64, Vec<&RawMount>> = HashMap::new();
    for r in table {
        if r.parent_id != r.id {
            by_parent.entry(r.parent_id).or_default().push(r);
        }
    }
    let covered = |r: &RawMount| {
        by_parent
            .get(&r.id)
            .is_some_and(|kids| kids.iter().any(|k| k.mountpoint == r.mountpoint))
    };
    let top = table
        .iter()
        .find(|r| r.mountpoint == root && !covered(r))
        .ok_or_else(|| ScanError::NoMountAt(root.to_path_buf()))?;
    // Looked up once per mount: a parent with thousands of children must not be searched
    // linearly each time.
    let child_at: HashMap<(u64, &Path), &RawMount> = table
        .iter()
        .filter(|r| r.parent_id != r.id)
        .map(|r| ((r.parent_id, r.mountpoint.as_path()), r))
        .collect();
    let mut rows: Vec<Option<&RawMount>> = vec![None; tree.mounts.len()];
    rows[0] = Some(top);
    for (i, m) in tree.mounts.iter().enumerate().skip(1) {
        let parent = m
            .parent
            .and_then(|p| rows.get(p.get()).copied().flatten())
            .ok_or_else(|| DumpError::Other(format!("mounts[{i}]: parent not matched")))?;
        let want = absolute(root, &m.mountpoint)?;
        let row = child_at
            .get(&(parent.id, want.as_path()))
            .copied()
            .ok_or_else(|| {
                DumpError::Other(format!(
                    "mount at {} changed while it was being scanned",
                    want.display()
                ))
            })?;
        rows[i] = Some(row);
    }
    Ok(rows.into_iter().flatten().collect())
}

/// Groups with members outside the tree become external (re-joined from an outside member on
/// restore), and a superblock whose mounts are tied to an outside group must be the very same
/// filesystem on restore, so it becomes external too (bound from the host, not recreated).
fn settle_outside_ties(table: &[RawMount], tree: &mut MountTree, rows: &[&RawMount], root: &Path) {
    let inside: HashSet<u64> = rows.iter().map(|r| r.id).collect();
    let outside_rows: Vec<&RawMount> = table.iter().filter(|r| !inside.contains(&r.id)).collect();
    // Kernel id of each tree group, from its members.
    let mut kernel_group: HashMap<usize, u64> = HashMap::new();
    for (i, m) in tree.mounts.iter().enumerate() {
        if let (Some(g), Some(id)) = (m.propagation.shared, rows[i].shared) {
            kernel_group.insert(g.get(), id);
        }
    }
    for (g, id) in kernel_group {
        if !matches!(tree.groups[g], PeerGroup::Internal) {
            continue;
        }
        let widest = outside_rows
            .iter()
            .filter(|r| r.shared == Some(id))
            .min_by_key(|r| (r.root.as_os_str().len(), r.mountpoint.as_os_str().len()));
        if let Some(r) = widest {
            tree.groups[g] = PeerGroup::External {
                path: crate::content::escape_path(&r.mountpoint),
            };
        }
    }
    // Superblocks tied to an external group.
    let mut tied: HashSet<SuperblockIdx> = HashSet::new();
    for m in &tree.mounts {
        for g in [m.propagation.shared, m.propagation.master]
            .into_iter()
            .flatten()
        {
            if matches!(tree.groups[g.get()], PeerGroup::External { .. }) {
                tied.insert(m.superblock);
            }
        }
    }
    let mut dev_of: HashMap<SuperblockIdx, (u32, u32)> = HashMap::new();
    for (i, m) in tree.mounts.iter().enumerate() {
        dev_of.entry(m.superblock).or_insert(rows[i].dev);
    }
    let mut keys: HashSet<String> = tree
        .superblocks
        .iter()
        .filter_map(|s| match &s.origin {
            SuperblockOrigin::External { key, .. } => Some(key.clone()),
            SuperblockOrigin::Fresh => None,
        })
        .collect();
    for sb in tied {
        let Some(dev) = dev_of.get(&sb).copied() else {
            continue;
        };
        let s = &mut tree.superblocks[sb.get()];
        if !matches!(s.origin, SuperblockOrigin::Fresh) {
            continue;
        }
        // A mount of the filesystem's root, preferably outside the tree (it outlives the tree).
        let hint = outside_rows
            .iter()
            .chain(rows.iter())
            .filter(|r| r.dev == dev && r.root == Path::new("/"))
            .map(|r| crate::content::escape_path(&r.mountpoint))
            .next();
        let base = format!("{}:{}", s.fstype, s.source);
        let mut key = base.clone();
        let mut n = 1;
        while keys.contains(&key) {
            n += 1;
            key = format!("{base}#{n}");
        }
        keys.insert(key.clone());
        tracing::debug!(superblock = sb.0, %key, root = %root.display(), "tied to an outside group: external");
        s.origin = SuperblockOrigin::External { key, hint };
    }
}

/// Paths that stand for outside groups and external filesystems must lead to that mount when
/// walked (a mount tucked under another cannot be opened by path): pick reachable ones.
fn reachable_outside_paths(table: &[RawMount], tree: &mut MountTree, rows: &[&RawMount]) {
    let inside: HashSet<u64> = rows.iter().map(|r| r.id).collect();
    let best = |pred: &dyn Fn(&RawMount) -> bool| -> Option<String> {
        table
            .iter()
            .filter(|r| pred(r) && mount_is_at(&r.mountpoint, r.id))
            .min_by_key(|r| {
                (
                    inside.contains(&r.id),
                    r.root.as_os_str().len(),
                    r.mountpoint.as_os_str().len(),
                )
            })
            .map(|r| crate::content::escape_path(&r.mountpoint))
    };
    let mut kernel_group: HashMap<usize, u64> = HashMap::new();
    for (i, m) in tree.mounts.iter().enumerate() {
        if let (Some(g), Some(id)) = (m.propagation.shared, rows[i].shared) {
            kernel_group.insert(g.get(), id);
        }
        if let (Some(g), Some(id)) = (m.propagation.master, rows[i].master) {
            kernel_group.entry(g.get()).or_insert(id);
        }
    }
    for (g, id) in kernel_group {
        if let PeerGroup::External { path } = &mut tree.groups[g] {
            if let Some(p) = best(&|r: &RawMount| r.shared == Some(id) && !inside.contains(&r.id)) {
                *path = p;
            }
        }
    }
    let mut dev_of: HashMap<SuperblockIdx, (u32, u32)> = HashMap::new();
    for (i, m) in tree.mounts.iter().enumerate() {
        dev_of.entry(m.superblock).or_insert(rows[i].dev);
    }
    for (sb, dev) in dev_of {
        if let SuperblockOrigin::External { hint, .. } = &mut tree.superblocks[sb.get()].origin {
            if let Some(p) =
                best(&|r: &RawMount| r.dev == dev && r.root == Path::new("/") && !r.root_deleted)
            {
                *hint = Some(p);
            }
        }
    }
}

/// Is the mount with id `id` the one `path` resolves to now? Compared with the unique 64-bit
/// id (statmount tables) and the legacy id (mountinfo tables); the two ranges do not meet.
fn mount_is_at(path: &Path, id: u64) -> bool {
    use crate::sys::{mount_id_at, MountIdKind};
    use rustix::fs::AtFlags;
    let flags = AtFlags::SYMLINK_NOFOLLOW | AtFlags::NO_AUTOMOUNT;
    [MountIdKind::Unique, MountIdKind::Legacy]
        .into_iter()
        .any(|kind| mount_id_at(rustix::fs::CWD, path, flags, kind).is_ok_and(|m| m == Some(id)))
}

fn capture_contents(
    tree: &MountTree,
    rows: &[&RawMount],
    root: &Path,
    limit: u64,
) -> Result<Vec<SuperblockContent>, DumpError> {
    let mut by_sb: HashMap<SuperblockIdx, Vec<MountIdx>> = HashMap::new();
    for (i, m) in tree.mounts.iter().enumerate() {
        by_sb
            .entry(m.superblock)
            .or_default()
            .push(MountIdx(i as u32));
    }
    let mut out = Vec::new();
    let mut budget = limit;
    let mut sbs: Vec<_> = by_sb.into_iter().collect();
    sbs.sort_by_key(|(sb, _)| *sb);
    for (sb, mut mounts) in sbs {
        let s = tree.superblock(sb);
        if s.origin != SuperblockOrigin::Fresh || !carries_content(&s.fstype) {
            continue;
        }
        // Widest root first; it must be reachable by path (not covered by another mount).
        view_order(tree, &mut mounts);
        let mut reachable: Vec<MountIdx> = Vec::new();
        for m in &mounts {
            let mount = tree.mount(*m);
            if !mount.root_deleted
                && !mount.is_file
                && mount_is_at(&absolute(root, &mount.mountpoint)?, rows[m.get()].id)
            {
                reachable.push(*m);
            }
        }
        // The widest view first; then any view whose root lies outside every captured one
        // (no mount may show the whole filesystem).
        let mut captured: Vec<String> = Vec::new();
        let mut pending: &[MountIdx] = &reachable;
        while !pending.is_empty() {
            // Beyond the first view, only the one uncovered mount itself will do.
            let candidates = if captured.is_empty() {
                pending
            } else {
                &pending[..1]
            };
            let Some(content) = capture_one(tree, candidates, root, budget)? else {
                break;
            };
            let used: u64 = content
                .entries
                .iter()
                .map(|e| match &e.kind {
                    crate::content::EntryKind::File { data } => data.len() as u64 * 3 / 4,
                    _ => 0,
                })
                .sum();
            budget = budget.saturating_sub(used);
            captured.push(content.base.clone());
            out.push(SuperblockContent {
                superblock: sb,
                content,
            });
            let next = pending.iter().position(|m| {
                let r = tree.mount(*m).root.as_str();
                !captured.iter().any(|c| {
                    crate::image::is_within(c.trim_start_matches('/'), r.trim_start_matches('/'))
                })
            });
            pending = match next {
                Some(i) => &pending[i..],
                None => &[],
            };
        }
        if captured.is_empty() {
            tracing::warn!(superblock = sb.0, fstype = %s.fstype, "no mount of this filesystem is reachable by path; its content is not captured");
        }
    }
    Ok(out)
}

/// Sort one superblock's mounts into the order they are tried as views of its content: widest
/// root first, ties broken by root, then by mount point. The tree lists siblings in the order
/// they were mounted, which a restore does not keep; were ties left in that order, the same
/// tree could yield a different view (another content base) once restored, whenever the
/// widest one cannot be cloned (unbindable) and a narrower one is captured in its stead.
fn view_order(tree: &MountTree, mounts: &mut [MountIdx]) {
    mounts.sort_by(|a, b| {
        let (a, b) = (tree.mount(*a), tree.mount(*b));
        (a.root.len(), &a.root, &a.mountpoint).cmp(&(b.root.len(), &b.root, &b.mountpoint))
    });
}

/// Capture a superblock's content from the widest of `candidates`. A private non-recursive
/// clone shows what lies under overmounts; an unbindable mount cannot be cloned, so the next
/// candidate is tried, and as a last resort the mount is read through its path (overmounted
/// parts then stay unseen, and the walk does not enter other filesystems).
fn capture_one(
    tree: &MountTree,
    candidates: &[MountIdx],
    root: &Path,
    budget: u64,
) -> Result<Option<crate::content::Content>, DumpError> {
    let Some(first) = candidates.first() else {
        return Ok(None);
    };
    let err = |m: MountIdx, source: ContentError| DumpError::Content {
        fstype: tree.superblock(tree.mount(m).superblock).fstype.clone(),
        // Named as the image writes it (escaped), for a message.
        mountpoint: root.join(&tree.mount(m).mountpoint).display().to_string(),
        source,
    };
    for m in candidates {
        let mount = tree.mount(*m);
        let path = absolute(root, &mount.mountpoint)?;
        let Ok(clone) = rustix::mount::open_tree(
            rustix::fs::CWD,
            &path,
            OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
        ) else {
            continue;
        };
        // The clone of a shared mount would be a peer: keep it out of the group.
        let _ = crate::sys::set_propagation(clone.as_fd(), crate::sys::PropagationType::Private);
        return crate::content::capture(clone.as_fd(), &mount.root, budget)
            .map(Some)
            .map_err(|e| err(*m, e));
    }
    let mount = tree.mount(*first);
    let path = absolute(root, &mount.mountpoint)?;
    let dir = std::fs::File::open(&path).map_err(|e| {
        err(
            *first,
            ContentError::Io {
                path: path.display().to_string(),
                source: e,
            },
        )
    })?;
    crate::content::capture(dir.as_fd(), &mount.root, budget)
        .map(Some)
        .map_err(|e| err(*first, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Mount;

    /// One tmpfs: its whole root (unbindable, so it cannot be cloned) with two binds of equally
    /// long subdirectories below it, mounted in the order `roots` gives.
    fn tree(roots: [(&str, &str); 2]) -> MountTree {
        let sb = SuperblockIdx(0);
        let mut top = Mount::new(None, "", sb);
        top.propagation.unbindable = true;
        let mut mounts = vec![top];
        for (mountpoint, root) in roots {
            let mut bind = Mount::new(Some(MountIdx(0)), mountpoint, sb);
            bind.root = root.into();
            mounts.push(bind);
        }
        let mut tree = crate::model::tests::tmpfs_tree();
        tree.mounts = mounts;
        tree.groups.clear();
        tree
    }

    fn views(tree: &MountTree) -> Vec<(&str, &str)> {
        let mut mounts: Vec<MountIdx> = (0..tree.mounts.len() as u32).map(MountIdx).collect();
        view_order(tree, &mut mounts);
        mounts
            .iter()
            .map(|m| {
                let m = tree.mount(*m);
                (m.root.as_str(), m.mountpoint.as_str())
            })
            .collect()
    }

    /// A restore makes mounts in another order than the dumped namespace did; the views a
    /// superblock's content is captured from, and so the content bases, must not follow it.
    #[test]
    fn content_views_do_not_follow_mount_order() {
        let (p, q) = (("p", "/a/x"), ("q", "/b/y"));
        let made_first = tree([p, q]);
        let made_last = tree([q, p]);
        let expected = vec![("/", ""), ("/a/x", "p"), ("/b/y", "q")];
        assert_eq!(views(&made_first), expected);
        assert_eq!(views(&made_last), expected);
    }
}
