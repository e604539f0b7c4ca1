//! Execute a [`MountPlan`] through the kernel, in the caller's mount namespace.
//!
//! Everything is built detached (fds from fsmount and open_tree clones) and attached at the
//! target in one move, so a failure before that point leaves nothing behind but fds to close.
//! A failure after it detaches the whole tree again. Either way the error names the step.

use crate::content::Content;
use crate::image::MountImage;
use crate::model::{Atime, GroupIdx, MountFlags, MountIdx, SuperblockIdx, SuperblockOrigin};
use crate::plan::{Handle, MountPlan, Step};
use crate::sys::{self, PropagationType};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, OFlags, CWD};
use rustix::mount::{
    FsMountFlags, FsOpenFlags, FsPickFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags,
};
use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where and with what host resources to apply a plan.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Directory the image's root mount is attached at.
    pub target: PathBuf,
    /// External superblocks by key: a host path whose mount shows that filesystem's root.
    pub externals: HashMap<String, PathBuf>,
    /// Keep at most this many mounts' fds open at once (default: what the open-file limit,
    /// raised to the hard limit, leaves); below one per mount, attached mounts reachable by
    /// path are reopened when a step needs them.
    pub fd_budget: Option<u64>,
}

/// What an apply did, for logs and benchmarks.
#[derive(Debug, Clone, Default)]
pub struct ApplyReport {
    pub steps: usize,
    pub build: Duration,
    pub propagation: Duration,
}

mod error;
pub use error::{ApplyError, StepError};

/// Check that this kernel has what the method needs, before anything is touched: the new mount
/// API and MOVE_MOUNT_SET_GROUP (Linux 5.15), on detached mounts (Linux 6.15 semantics for
/// cloning from and attaching to detached trees).
pub fn probe_kernel() -> Result<(), ApplyError> {
    let fail = |call: &'static str, source: io::Error| ApplyError::Kernel { call, source };
    let fs = rustix::mount::fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC)
        .map_err(|e| fail("fsopen(tmpfs)", e.into()))?;
    rustix::mount::fsconfig_create(&fs).map_err(|e| fail("fsconfig(create)", e.into()))?;
    let root = rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
        .map_err(|e| fail("fsmount", e.into()))?;
    let a =
        clone_of(root.as_fd(), "").map_err(|e| fail("open_tree(clone) of a detached mount", e))?;
    let b =
        clone_of(root.as_fd(), "").map_err(|e| fail("open_tree(clone) of a detached mount", e))?;
    sys::set_propagation(a.as_fd(), PropagationType::Shared)
        .map_err(|e| fail("mount_setattr(shared)", e))?;
    sys::set_group(a.as_fd(), b.as_fd())
        .map_err(|e| fail("move_mount(MOVE_MOUNT_SET_GROUP)", e))?;
    Ok(())
}

/// The bytes an image path stands for (escaped as [`crate::content::escape_name`] writes it;
/// validation made sure it decodes). Paths reach the kernel only as these bytes.
fn bytes_of(what: &'static str, path: &str) -> Result<Vec<u8>, StepError> {
    crate::content::unescape_name(path).map_err(|reason| StepError::BadPath {
        what,
        path: path.to_string(),
        reason,
    })
}

fn clone_of(dir: BorrowedFd<'_>, rel: impl AsRef<[u8]>) -> io::Result<OwnedFd> {
    let start = sys::open_beneath(dir, rel, OFlags::PATH)?;
    Ok(rustix::mount::open_tree(
        &start,
        "",
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_EMPTY_PATH,
    )?)
}

/// The mount_setattr mask that gives a mount exactly `flags`.
pub fn attr_mask(flags: &MountFlags) -> u64 {
    let mut set = 0;
    for (on, bit) in [
        (flags.readonly, sys::MOUNT_ATTR_RDONLY),
        (flags.nosuid, sys::MOUNT_ATTR_NOSUID),
        (flags.nodev, sys::MOUNT_ATTR_NODEV),
        (flags.noexec, sys::MOUNT_ATTR_NOEXEC),
        (flags.nosymfollow, sys::MOUNT_ATTR_NOSYMFOLLOW),
    ] {
        if on {
            set |= bit;
        }
    }
    set | match flags.atime {
        Atime::Relatime => sys::MOUNT_ATTR_RELATIME,
        Atime::Noatime => sys::MOUNT_ATTR_NOATIME,
        Atime::Strictatime => sys::MOUNT_ATTR_STRICTATIME,
        Atime::Nodiratime => sys::MOUNT_ATTR_RELATIME | sys::MOUNT_ATTR_NODIRATIME,
    }
}

/// Live state of one apply.
struct Executor<'a> {
    image: &'a MountImage,
    opts: &'a ApplyOptions,
    contents: HashMap<SuperblockIdx, Vec<&'a Content>>,
    sb_roots: Vec<Option<OwnedFd>>,
    mounts: Vec<Option<OwnedFd>>,
    covers: HashMap<GroupIdx, OwnedFd>,
    outside: HashMap<GroupIdx, OwnedFd>,
    /// Placeholders this apply created (to remove), by superblock and path.
    placeholders: Vec<(SuperblockIdx, String)>,
    attached: bool,
    /// Short of fds: mounts reachable by path give theirs up once attached
    /// ([`reachable_by_path`]) and are opened again by path for each later step.
    spill: Option<Vec<bool>>,
    /// Mount ids of the mounts whose fds were given up, to check a reopened one is the same.
    released: Vec<Option<u64>>,
}

/// Mounts a path walk from the tree's root reaches: the topmost mount at its mount point,
/// with no other mount over any directory on the way that is not one of its ancestors.
/// Their fds can be closed once attached and opened again by path.
fn reachable_by_path(tree: &crate::model::MountTree) -> Vec<bool> {
    // Of mounts on one mount point, the one attached last (latest in parent-first order) is
    // on top.
    let mut top: HashMap<&str, usize> = HashMap::new();
    for (i, m) in tree.mounts.iter().enumerate() {
        top.insert(m.mountpoint.as_str(), i);
    }
    let mut out = vec![false; tree.mounts.len()];
    for (i, m) in tree.mounts.iter().enumerate() {
        if top.get(m.mountpoint.as_str()) != Some(&i) {
            continue;
        }
        let mut ancestors = std::collections::HashSet::new();
        let mut p = m.parent;
        while let Some(a) = p {
            ancestors.insert(a.get());
            p = tree.mounts.get(a.get()).and_then(|x| x.parent);
        }
        let mp = m.mountpoint.as_str();
        // Walks start at the root mount's fd and do not enter mounts stacked on it.
        let mut clear = top.get("") == Some(&0);
        for (pos, _) in mp.match_indices('/') {
            if let Some(t) = top.get(&mp[..pos]) {
                clear &= ancestors.contains(t);
            }
        }
        out[i] = clear;
    }
    out
}

/// The mounts a step works on through their fds.
fn mounts_used(step: &Step) -> Vec<MountIdx> {
    let handle = |h: &Handle| match h {
        Handle::Mount(m) => Some(*m),
        _ => None,
    };
    match step {
        Step::Attach { mount, parent, .. } => vec![*mount, *parent],
        Step::SetAttr { mount, .. } | Step::MakeUnbindable(mount) => vec![*mount],
        Step::AttachRoot { mount } => vec![*mount],
        Step::MakeShared(h) | Step::MakeSlave(h) => handle(h).into_iter().collect(),
        Step::SetGroup { from, to } => handle(from).into_iter().chain(handle(to)).collect(),
        _ => Vec::new(),
    }
}

/// Apply `plan` (made from `image`) at `opts.target`.
pub fn apply(
    image: &MountImage,
    plan: &MountPlan,
    opts: &ApplyOptions,
) -> Result<ApplyReport, ApplyError> {
    probe_kernel()?;
    let others = (plan.superblock_count + 2 * plan.group_count + 64) as u64;
    let limit = sys::raise_nofile_limit().map_err(ApplyError::FdLimit)?;
    let mut budget = limit.saturating_sub(others);
    if let Some(b) = opts.fd_budget {
        budget = budget.min(b);
    }
    let spill = if budget < plan.mount_count as u64 {
        // Keep only the fds of mounts a path cannot reach; reopen the others when used.
        let reachable = reachable_by_path(&image.tree);
        let pinned = reachable.iter().filter(|r| !**r).count() as u64;
        // Two more for the step that reopens them.
        if budget < pinned + 2 {
            return Err(ApplyError::TooFewFds {
                mounts: plan.mount_count,
                needed: pinned + 2 + others,
                limit,
            });
        }
        tracing::debug!(
            limit,
            budget,
            pinned,
            "short of fds: reopening mounts by path"
        );
        Some(reachable)
    } else {
        None
    };
    let target_meta = std::fs::metadata(&opts.target).map_err(|source| ApplyError::Target {
        path: opts.target.clone(),
        source,
    })?;
    if !target_meta.is_dir() && !image.tree.mounts[0].is_file {
        return Err(ApplyError::TargetNotDirectory(opts.target.clone()));
    }
    let mut ex = Executor::new(image, opts, spill);
    let start = Instant::now();
    let mut report = ApplyReport {
        steps: plan.steps.len(),
        ..Default::default()
    };
    for (index, step) in plan.steps.iter().enumerate() {
        if matches!(step, Step::AttachRoot { .. }) {
            report.build = start.elapsed();
        }
        if let Err(source) = ex.run_spilling(step) {
            let err = ApplyError::Step {
                index,
                step: step.to_string(),
                source,
            };
            ex.undo();
            return Err(err);
        }
    }
    report.propagation = start.elapsed() - report.build;
    Ok(report)
}

impl<'a> Executor<'a> {
    /// An executor with nothing made yet; `spill`: which mounts give up their fds once
    /// attached (short of fds), as [`reachable_by_path`] says.
    fn new(image: &'a MountImage, opts: &'a ApplyOptions, spill: Option<Vec<bool>>) -> Self {
        Executor {
            image,
            opts,
            contents: image.contents.iter().fold(HashMap::new(), |mut m, c| {
                m.entry(c.superblock)
                    .or_insert_with(Vec::new)
                    .push(&c.content);
                m
            }),
            sb_roots: (0..image.tree.superblocks.len()).map(|_| None).collect(),
            mounts: (0..image.tree.mounts.len()).map(|_| None).collect(),
            covers: HashMap::new(),
            outside: HashMap::new(),
            placeholders: Vec::new(),
            attached: false,
            spill,
            released: vec![None; image.tree.mounts.len()],
        }
    }

    /// Run a step; when short of fds, reopen the released mounts it needs first, release
    /// them again after, and release a reachable mount once it is attached.
    fn run_spilling(&mut self, step: &Step) -> Result<(), StepError> {
        if self.spill.is_none() {
            return self.run(step);
        }
        let used = mounts_used(step);
        let mut reopened = Vec::new();
        for m in &used {
            if self.mounts[m.get()].is_none() && self.released[m.get()].is_some() {
                self.reopen(*m)?;
                reopened.push(*m);
            }
        }
        let result = self.run(step);
        for m in reopened {
            self.mounts[m.get()] = None;
        }
        result?;
        if let Step::Attach { mount, .. } = step {
            let reachable = self
                .spill
                .as_ref()
                .is_some_and(|r| r.get(mount.get()).copied().unwrap_or(false));
            if reachable {
                let id = sys::mount_id(self.mount(*mount)?)
                    .map_err(|e| StepError::sys(format!("mount id of mount[{}]", mount.0), e))?;
                self.released[mount.get()] = Some(id);
                self.mounts[mount.get()] = None;
            }
        }
        Ok(())
    }

    /// Open a released mount again by its path below the tree's root, and check it is the
    /// same mount.
    fn reopen(&mut self, m: MountIdx) -> Result<(), StepError> {
        let rel = self.image.tree.mount(m).mountpoint.clone();
        let rel_bytes = bytes_of("mount point", &rel)?;
        let fd = rustix::mount::open_tree(self.mount(MountIdx(0))?, rel_bytes.as_slice(), {
            OpenTreeFlags::OPEN_TREE_CLOEXEC | OpenTreeFlags::AT_SYMLINK_NOFOLLOW
        })
        .map_err(|e| {
            StepError::sys_at(format!("reopening mount[{}]", m.0), format!("{rel:?}"), e)
        })?;
        let id = sys::mount_id(fd.as_fd())
            .map_err(|e| StepError::sys(format!("mount id of mount[{}]", m.0), e))?;
        if Some(id) != self.released[m.get()] {
            return Err(StepError::Replaced {
                mount: m.0,
                at: rel,
            });
        }
        self.mounts[m.get()] = Some(fd);
        Ok(())
    }

    fn sb_root(&self, sb: SuperblockIdx) -> Result<BorrowedFd<'_>, StepError> {
        self.sb_roots
            .get(sb.get())
            .and_then(|f| f.as_ref())
            .map(|f| f.as_fd())
            .ok_or_else(|| StepError::NotMade(format!("superblock sb[{}] was not created", sb.0)))
    }

    fn mount(&self, m: MountIdx) -> Result<BorrowedFd<'_>, StepError> {
        self.mounts
            .get(m.get())
            .and_then(|f| f.as_ref())
            .map(|f| f.as_fd())
            .ok_or_else(|| StepError::NotMade(format!("mount[{}] was not cloned", m.0)))
    }

    fn handle(&self, h: Handle) -> Result<BorrowedFd<'_>, StepError> {
        match h {
            Handle::Mount(m) => self.mount(m),
            Handle::Cover(g) => self
                .covers
                .get(&g)
                .map(|f| f.as_fd())
                .ok_or_else(|| StepError::NotMade(format!("no cover for group {}", g.0))),
            Handle::Outside(g) => self.outside.get(&g).map(|f| f.as_fd()).ok_or_else(|| {
                StepError::NotMade(format!("outside mount of group {} not open", g.0))
            }),
        }
    }

    fn mountpoint_of(&self, m: MountIdx) -> String {
        format!("/{}", self.image.tree.mount(m).mountpoint)
    }

    /// Carries out one step of the plan.
    fn run(&mut self, step: &Step) -> Result<(), StepError> {
        match step {
            Step::CreateSuperblock {
                sb,
                fstype,
                source,
                options,
            } => self.create_superblock(*sb, fstype, source, options),
            Step::OpenExternal { sb, key, hint } => self.open_external(*sb, key, hint.as_deref()),
            Step::Populate { sb } => self.populate(*sb),
            Step::MakePlaceholder { sb, path, file } => self.make_placeholder(*sb, path, *file),
            Step::Clone { mount, sb, root } => self.clone_mount(*mount, *sb, root),
            Step::RemovePlaceholder { sb, path } => self.drop_placeholder(*sb, path),
            Step::Attach {
                mount,
                parent,
                at,
                file,
            } => self.attach(*mount, *parent, at, *file),
            Step::SetAttr { mount, flags } => self.set_attr(*mount, flags),
            Step::SuperblockReadonly { sb } => self.superblock_readonly(*sb),
            Step::AttachRoot { mount } => self.attach_root(*mount),
            Step::MakeCover { group, sb } => self.make_cover(*group, *sb),
            Step::OpenOutside { group, path } => self.open_outside(*group, path),
            Step::MakeShared(h) => sys::set_propagation(self.handle(*h)?, PropagationType::Shared)
                .map_err(|e| StepError::sys(format!("make-shared {h}"), e)),
            Step::MakeSlave(h) => sys::set_propagation(self.handle(*h)?, PropagationType::Slave)
                .map_err(|e| StepError::sys(format!("make-slave {h}"), e)),
            Step::SetGroup { from, to } => self.set_group(*from, *to),
            Step::MakeUnbindable(m) => {
                sys::set_propagation(self.mount(*m)?, PropagationType::Unbindable)
                    .map_err(|e| StepError::sys_at("make-unbindable", self.mountpoint_of(*m), e))
            }
            Step::DropCover(g) => {
                self.covers.remove(g);
                Ok(())
            }
        }
    }

    /// Creates a superblock with the fsopen API and keeps its root.
    fn create_superblock(
        &mut self,
        sb: SuperblockIdx,
        fstype: &str,
        source: &str,
        options: &[String],
    ) -> Result<(), StepError> {
        let fs = rustix::mount::fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC)
            .map_err(|e| StepError::sys(format!("fsopen({fstype})"), e))?;
        if !source.is_empty() {
            rustix::mount::fsconfig_set_string(&fs, "source", source)
                .map_err(|e| StepError::sys(format!("source {source:?}"), e))?;
        }
        for opt in options {
            let r = match opt.split_once('=') {
                Some((k, v)) => rustix::mount::fsconfig_set_string(&fs, k, v),
                None => rustix::mount::fsconfig_set_flag(&fs, opt.as_str()),
            };
            r.map_err(|e| StepError::sys(format!("{fstype} option {opt:?}"), e))?;
        }
        rustix::mount::fsconfig_create(&fs)
            .map_err(|e| StepError::sys(format!("creating the {fstype} superblock"), e))?;
        let root =
            rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
                .map_err(|e| StepError::sys("fsmount", e))?;
        self.sb_roots[sb.get()] = Some(root);
        Ok(())
    }

    /// Opens a private clone of an external filesystem's mount, found by key or by the image's hint.
    fn open_external(
        &mut self,
        sb: SuperblockIdx,
        key: &str,
        hint: Option<&str>,
    ) -> Result<(), StepError> {
        let path: PathBuf = match self.opts.externals.get(key) {
            Some(p) => p.clone(),
            None => match hint {
                Some(h) => {
                    crate::content::unescape_path(h).map_err(|reason| StepError::BadPath {
                        what: "hint of an external filesystem",
                        path: h.to_string(),
                        reason,
                    })?
                }
                None => {
                    return Err(StepError::NoExternal {
                        key: key.to_string(),
                    })
                }
            },
        };
        let root = rustix::mount::open_tree(
            CWD,
            &path,
            OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
        )
        .map_err(|e| {
            StepError::sys_at(
                format!("external filesystem {key:?}"),
                path.display().to_string(),
                e,
            )
            .hint(format!("; pass --external {key}=PATH"))
        })?;
        // A clone of a shared or slave mount keeps those ties; the method wants every
        // building block private.
        sys::set_propagation(root.as_fd(), PropagationType::Private).map_err(|e| {
            StepError::sys(format!("making the clone of {} private", path.display()), e)
        })?;
        self.sb_roots[sb.get()] = Some(root);
        Ok(())
    }

    /// Fills a fresh superblock with its recorded contents.
    fn populate(&mut self, sb: SuperblockIdx) -> Result<(), StepError> {
        let contents = self
            .contents
            .get(&sb)
            .ok_or_else(|| StepError::NotMade(format!("no content for sb[{}]", sb.0)))?;
        let root = self.sb_root(sb)?;
        // Overlapping contents agree entry for entry (validation checks it): a file
        // an earlier one made is left alone, never made twice.
        let mut made: std::collections::HashSet<String> = Default::default();
        for content in contents {
            let base = content.base.trim_start_matches('/');
            let abs = |path: &str| {
                if base.is_empty() {
                    path.to_string()
                } else {
                    format!("{base}/{path}")
                }
            };
            let fresh_entries;
            let content: &Content = if content.entries.iter().any(|e| made.contains(&abs(&e.path)))
            {
                fresh_entries = Content {
                    entries: content
                        .entries
                        .iter()
                        .filter(|e| !made.contains(&abs(&e.path)))
                        .cloned()
                        .collect(),
                    base: content.base.clone(),
                    base_meta: content.base_meta,
                };
                &fresh_entries
            } else {
                content
            };
            made.extend(
                content
                    .entries
                    .iter()
                    .filter(|e| e.kind != crate::content::EntryKind::Dir)
                    .map(|e| abs(&e.path)),
            );
            let base = bytes_of("content base", content.base.trim_start_matches('/'))?;
            let base_fd = if base.is_empty() {
                sys::open_beneath(root, "", OFlags::RDONLY | OFlags::DIRECTORY)
            } else {
                sys::open_or_create_mountpoint(root, base, false).and_then(|p| {
                    sys::open_beneath(p.as_fd(), "", OFlags::RDONLY | OFlags::DIRECTORY)
                })
            }
            .map_err(|e| StepError::sys(format!("content base {:?}", content.base), e))?;
            crate::content::populate(base_fd.as_fd(), content)?;
        }
        Ok(())
    }

    /// Makes a mount point a later step needs, remembered for removal.
    fn make_placeholder(
        &mut self,
        sb: SuperblockIdx,
        path: &str,
        file: bool,
    ) -> Result<(), StepError> {
        let rel = path.trim_start_matches('/');
        let rel_bytes = bytes_of("placeholder", rel)?;
        let root = self.sb_root(sb)?;
        let existed = sys::open_beneath(root, &rel_bytes, OFlags::PATH).is_ok();
        if !existed {
            sys::open_or_create_mountpoint(root, &rel_bytes, file)
                .map_err(|e| StepError::sys(format!("placeholder {path:?}"), e))?;
            self.placeholders.push((sb, rel.to_string()));
        }
        Ok(())
    }

    /// Clones a mount of a superblock at its root.
    fn clone_mount(
        &mut self,
        mount: MountIdx,
        sb: SuperblockIdx,
        root: &str,
    ) -> Result<(), StepError> {
        let rel = bytes_of("mount root", root.trim_start_matches('/'))?;
        let sb_root = self.sb_root(sb)?;
        // A fresh filesystem has only what the dump could see: a root that was under
        // an overmount in every view is made here, empty.
        if !rel.is_empty()
            && self.image.tree.superblock(sb).origin == SuperblockOrigin::Fresh
            && sys::open_beneath(sb_root, &rel, OFlags::PATH).is_err()
        {
            sys::open_or_create_mountpoint(sb_root, &rel, self.image.tree.mount(mount).is_file)
                .map_err(|e| StepError::sys(format!("making root {root:?}"), e))?;
        }
        let fd = clone_of(sb_root, &rel)
            .map_err(|e| StepError::sys(format!("cloning root {root:?}"), e))?;
        self.mounts[mount.get()] = Some(fd);
        Ok(())
    }

    /// Removes a placeholder this run made.
    fn drop_placeholder(&mut self, sb: SuperblockIdx, path: &str) -> Result<(), StepError> {
        let rel = path.trim_start_matches('/');
        if let Some(pos) = self
            .placeholders
            .iter()
            .position(|(s, p)| *s == sb && p == rel)
        {
            self.placeholders.swap_remove(pos);
            self.remove_placeholder(sb, rel)
                .map_err(|e| StepError::sys(format!("removing placeholder {path:?}"), e))?;
        }
        Ok(())
    }

    /// Moves a cloned mount onto its mount point in its parent.
    fn attach(
        &mut self,
        mount: MountIdx,
        parent: MountIdx,
        at: &str,
        file: bool,
    ) -> Result<(), StepError> {
        let parent_fd = self.mount(parent)?;
        let mp = if at.is_empty() {
            None
        } else {
            let at = bytes_of("mount point", at)?;
            Some(
                sys::open_or_create_mountpoint(parent_fd, at, file).map_err(|e| {
                    StepError::sys_at("making the mount point", self.mountpoint_of(mount), e)
                })?,
            )
        };
        let to = mp.as_ref().map(|f| f.as_fd()).unwrap_or(parent_fd);
        rustix::mount::move_mount(
            self.mount(mount)?,
            "",
            to,
            "",
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
        )
        .map_err(|e| StepError::sys_at("attaching", self.mountpoint_of(mount), e))?;
        Ok(())
    }

    /// Gives a mount its per-mount flags.
    fn set_attr(&mut self, mount: MountIdx, flags: &MountFlags) -> Result<(), StepError> {
        sys::set_mount_flags(self.mount(mount)?, attr_mask(flags)).map_err(|e| {
            StepError::sys_at(
                format!("mount_setattr({})", crate::plan::flags_text(flags)),
                self.mountpoint_of(mount),
                e,
            )
        })?;
        Ok(())
    }

    /// Makes a superblock read-only.
    fn superblock_readonly(&mut self, sb: SuperblockIdx) -> Result<(), StepError> {
        let fs = rustix::mount::fspick(
            self.sb_root(sb)?,
            "",
            FsPickFlags::FSPICK_EMPTY_PATH | FsPickFlags::FSPICK_CLOEXEC,
        )
        .map_err(|e| StepError::sys("fspick", e))?;
        rustix::mount::fsconfig_set_flag(&fs, "ro").map_err(|e| StepError::sys("ro", e))?;
        rustix::mount::fsconfig_reconfigure(&fs)
            .map_err(|e| StepError::sys("reconfigure read-only", e))?;
        Ok(())
    }

    /// Moves the tree's root mount onto the target.
    fn attach_root(&mut self, mount: MountIdx) -> Result<(), StepError> {
        rustix::mount::move_mount(
            self.mount(mount)?,
            "",
            CWD,
            &self.opts.target,
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )
        .map_err(|e| StepError::sys_at("attaching", self.opts.target.display().to_string(), e))?;
        self.attached = true;
        Ok(())
    }

    /// Clones a superblock root to stand for a peer group.
    fn make_cover(&mut self, group: GroupIdx, sb: SuperblockIdx) -> Result<(), StepError> {
        let fd = clone_of(self.sb_root(sb)?, "")
            .map_err(|e| StepError::sys("cloning the superblock root", e))?;
        self.covers.insert(group, fd);
        Ok(())
    }

    /// Opens the mount outside the tree that stands for a peer group.
    fn open_outside(&mut self, group: GroupIdx, path: &str) -> Result<(), StepError> {
        let host_path =
            crate::content::unescape_path(path).map_err(|reason| StepError::BadPath {
                what: "the mount of an outside peer group",
                path: path.to_string(),
                reason,
            })?;
        let fd = rustix::mount::open_tree(CWD, &host_path, OpenTreeFlags::OPEN_TREE_CLOEXEC)
            .map_err(|e| {
                StepError::sys_at(
                    "opening the mount that stands for an outside peer group",
                    path,
                    e,
                )
            })?;
        self.outside.insert(group, fd);
        Ok(())
    }

    /// Joins a mount to another's peer group.
    fn set_group(&mut self, from: Handle, to: Handle) -> Result<(), StepError> {
        sys::set_group(self.handle(from)?, self.handle(to)?).map_err(|e| {
            let einval = e.raw_os_error() == Some(libc::EINVAL);
            let err = StepError::sys("move_mount(MOVE_MOUNT_SET_GROUP)", e);
            match from {
                _ if !einval => err,
                Handle::Outside(g) => err.hint(format!(
                    " (the outside mount for group {} must be on the same filesystem, \
                     shared or a slave, with a root containing the joining mount's)",
                    g.0
                )),
                _ => err.hint(
                    " (MOVE_MOUNT_SET_GROUP needs the same superblock, a donor root \
                     containing the target's, a private target and a shared donor)",
                ),
            }
        })?;
        Ok(())
    }

    fn remove_placeholder(&self, sb: SuperblockIdx, rel: &str) -> io::Result<()> {
        let root = self
            .sb_root(sb)
            .map_err(|e| io::Error::new(io::ErrorKind::NotFound, e.to_string()))?;
        let (dir, name) = match rel.rsplit_once('/') {
            Some((d, n)) => (d, n),
            None => ("", rel),
        };
        let bytes = |p: &str| {
            crate::content::unescape_name(p)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
        };
        let (dir, name) = (bytes(dir)?, bytes(name)?);
        let name = name.as_slice();
        let dirfd = sys::open_beneath(root, dir, OFlags::RDONLY | OFlags::DIRECTORY)?;
        let st = rustix::fs::statat(&dirfd, name, AtFlags::SYMLINK_NOFOLLOW)?;
        let flags =
            if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory {
                AtFlags::REMOVEDIR
            } else {
                AtFlags::empty()
            };
        rustix::fs::unlinkat(&dirfd, name, flags)?;
        Ok(())
    }

    /// Leave nothing behind: detach the tree if it was attached; closing the fds frees the
    /// detached mounts and superblocks.
    fn undo(&mut self) {
        if self.attached {
            if let Err(e) =
                rustix::mount::unmount(&self.opts.target, rustix::mount::UnmountFlags::DETACH)
            {
                tracing::error!(target = %self.opts.target.display(), error = %e, "detaching the partly restored tree failed");
            }
            self.attached = false;
        }
        for (sb, rel) in std::mem::take(&mut self.placeholders) {
            // A placeholder in an external filesystem stays on the host's disk.
            if let Err(e) = self.remove_placeholder(sb, &rel) {
                tracing::warn!(superblock = sb.0, path = %rel, error = %e, "removing a placeholder the failed apply made");
            }
        }
        self.covers.clear();
        self.outside.clear();
        self.mounts.clear();
        self.sb_roots.clear();
    }
}

/// Plan and apply in one go, refusing what `policy` does not allow before anything is mounted.
pub fn restore(
    image: &MountImage,
    opts: &ApplyOptions,
    policy: &crate::policy::RestorePolicy,
) -> Result<ApplyReport, RestoreError> {
    let plan = crate::plan::plan(image, policy)?;
    Ok(apply(image, &plan, opts)?)
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

/// Give the (topmost) mount at `mountpoint` (a tree's mount point, escaped as the image
/// writes it) below `root` exactly `flags`. Used on live trees made by others (a CRIU
/// restore) whose per-mount flags came back wrong.
pub fn set_flags_at(
    root: std::os::fd::BorrowedFd<'_>,
    mountpoint: &str,
    flags: &MountFlags,
) -> std::io::Result<()> {
    let rel = crate::content::unescape_name(mountpoint)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let fd = sys::open_beneath(root, rel, rustix::fs::OFlags::PATH)?;
    sys::set_mount_flags(std::os::fd::AsFd::as_fd(&fd), attr_mask(flags))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;
    use std::error::Error as _;

    /// A tree of one mount on an external filesystem keyed `k`.
    fn external_image() -> MountImage {
        MountImage::new(
            MountTree {
                mounts: vec![Mount::new(None, "", SuperblockIdx(0))],
                superblocks: vec![Superblock {
                    fstype: "ext4".into(),
                    source: "/dev/te-none".into(),
                    options: vec![],
                    readonly: false,
                    origin: SuperblockOrigin::External {
                        key: "k".into(),
                        hint: None,
                    },
                }],
                groups: vec![],
            },
            vec![],
        )
    }

    /// The errno of the io::Error at the end of `e`'s source chain.
    fn root_errno(e: &(dyn std::error::Error + 'static)) -> Option<i32> {
        let mut cur = Some(e);
        let mut errno = None;
        while let Some(c) = cur {
            if let Some(io) = c.downcast_ref::<io::Error>() {
                errno = io.raw_os_error();
            }
            cur = c.source();
        }
        errno
    }

    /// A step that fails in the kernel keeps the kernel's error as its source, and its text
    /// still names the path and the fix.
    #[test]
    fn a_failed_step_keeps_the_errno_as_its_source() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("te-missing");
        let image = external_image();
        let opts = ApplyOptions {
            target: dir.path().into(),
            externals: [("k".to_string(), missing.clone())].into(),
            fd_budget: None,
        };
        let mut ex = Executor::new(&image, &opts, None);
        let err = ex
            .open_external(SuperblockIdx(0), "k", None)
            .expect_err("a missing path cannot be opened");
        let source = err
            .source()
            .and_then(|s| s.downcast_ref::<io::Error>())
            .expect("the io::Error is the source");
        assert_eq!(source.raw_os_error(), Some(libc::ENOENT), "{err}");
        let text = err.to_string();
        assert!(
            text.contains(&missing.display().to_string()) && text.contains("--external k=PATH"),
            "{text}"
        );

        // Wrapped as the apply reports it, the errno is still at the end of the chain.
        let step = ApplyError::Step {
            index: 0,
            step: "open-external".into(),
            source: err,
        };
        assert_eq!(root_errno(&step), Some(libc::ENOENT));
    }

    /// Through the whole apply: the error names the step and ends in the kernel's errno;
    /// nothing is mounted at the target.
    #[test]
    fn apply_reports_the_failed_step_with_its_errno() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: fsopen needs root");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let image = external_image();
        let policy = crate::policy::RestorePolicy {
            externals: ["k".to_string()].into(),
            ..crate::policy::RestorePolicy::trust_all()
        };
        let plan = crate::plan::plan(&image, &policy).expect("a plan");
        let opts = ApplyOptions {
            target: dir.path().into(),
            externals: [("k".to_string(), dir.path().join("te-missing"))].into(),
            fd_budget: None,
        };
        let err = apply(&image, &plan, &opts).expect_err("the external is missing");
        assert!(
            matches!(&err, ApplyError::Step { step, .. } if step.starts_with("open-external")),
            "{err}"
        );
        assert_eq!(root_errno(&err), Some(libc::ENOENT), "{err}");
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        assert!(
            !mountinfo.contains(&format!(" {} ", dir.path().display())),
            "something was mounted at the target"
        );
    }

    /// A step with no path for its external filesystem says how to give one.
    #[test]
    fn an_unnamed_external_names_the_flag() {
        let image = external_image();
        let opts = ApplyOptions::default();
        let mut ex = Executor::new(&image, &opts, None);
        let err = ex
            .open_external(SuperblockIdx(0), "k", None)
            .expect_err("no path");
        assert!(matches!(err, StepError::NoExternal { .. }), "{err}");
        assert!(err.to_string().contains("--external k=PATH"), "{err}");
    }
}
