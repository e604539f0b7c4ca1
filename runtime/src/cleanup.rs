//! Removing what ferry made, and only that. A container's state directory can have mounts
//! below it (during a restore, CRIU's bind of the bundle's root filesystem sits in it), and a
//! recursive removal that walks into such a mount deletes the user's files. Everything here
//! unmounts first, then removes with a walk that stays on the directory's own mount and never
//! follows a symbolic link, so the worst a stray mount can cause is a refusal.
//!
//! Failed restores also leave processes: [`kill_tree`] ends a process and everything it
//! started.

use crate::error::{Result, RuntimeError};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// How deep a state directory may nest before the walk refuses (ferry's own are 2 deep).
const MAX_DEPTH: usize = 64;

/// Mount points at or below `dir` in this process's mount namespace, deepest first.
pub fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::canonicalize(dir) else {
        return Vec::new();
    };
    let table = crate::boundary::read_mountinfo("/proc/self/mountinfo").unwrap_or_default();
    let mut out: Vec<PathBuf> = table
        .into_iter()
        .map(|r| r.mountpoint)
        .filter(|mp| mp.starts_with(&dir))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    out
}

/// Unmount (lazily: MNT_DETACH) everything mounted at or below `dir` in this mount namespace,
/// deepest first, stacked mounts included. Fails, naming the mount, when something stays.
pub fn detach_mounts_below(dir: &Path) -> Result<()> {
    // Each round takes off the topmost layer of every stack; a few rounds cover any stacking
    // ferry or CRIU makes.
    for _ in 0..16 {
        let mounts = mounts_below(dir);
        if mounts.is_empty() {
            return Ok(());
        }
        for mp in &mounts {
            // EINVAL: no longer a mount (detached with its parent); the next round looks again.
            if let Err(e) = rustix::mount::unmount(mp, rustix::mount::UnmountFlags::DETACH) {
                tracing::debug!("detaching {}: {e}", mp.display());
            }
        }
    }
    match mounts_below(dir).first() {
        None => Ok(()),
        Some(mp) => Err(RuntimeError::Invalid(format!(
            "{} is still mounted below {} and cannot be unmounted: unmount it by hand (umount -l), then retry",
            mp.display(),
            dir.display()
        ))),
    }
}

/// Before libcontainer's delete, which removes the state directory recursively: make sure
/// nothing is mounted below it, so that the removal cannot reach into a mount.
pub fn prepare_delete(dir: &Path) -> Result<()> {
    detach_mounts_below(dir)
}

/// Remove `path`, a directory ferry keeps under the state root `root` (a container's state
/// directory, a rewritten bundle config), as [`remove_dir_beneath`] does. Anything not strictly
/// inside `root` is refused.
pub fn remove_state_path(root: &Path, path: &Path) -> Result<()> {
    let inside = path.starts_with(root)
        && path != root
        && path
            .components()
            .all(|c| !matches!(c, std::path::Component::ParentDir));
    let (Some(parent), Some(name), true) = (path.parent(), path.file_name(), inside) else {
        return Err(RuntimeError::Invalid(format!(
            "refusing to remove {}: not inside the state root {}",
            path.display(),
            root.display()
        )));
    };
    let name = name.to_str().ok_or_else(|| {
        RuntimeError::Invalid(format!(
            "refusing to remove {}: not a name ferry makes",
            path.display()
        ))
    })?;
    remove_dir_beneath(parent, name)
}

/// Remove the directory `name` directly inside `parent` (a container's state directory in the
/// state root), with everything in it: unmount what is mounted below first, then remove
/// entries through directory descriptors, never following a symbolic link and never entering
/// another mount. `name` must be one path component; a `name` that is not a directory, or is
/// itself a mount point, is refused (ferry only ever makes directories there). A missing
/// directory is not an error.
pub fn remove_dir_beneath(parent: &Path, name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(RuntimeError::Invalid(format!(
            "refusing to remove {name:?} in {}: not a single directory name",
            parent.display()
        )));
    }
    let path = parent.join(name);
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(());
    }
    detach_mounts_below(&path)?;
    let parent_fd = rustix::fs::open(
        parent,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| RuntimeError::io(format!("opening {}", parent.display()), e.into()))?;
    let cname = CString::new(name)
        .map_err(|_| RuntimeError::Invalid(format!("refusing to remove {name:?}: contains NUL")))?;
    let dir = match open_dir_at(parent_fd.as_fd(), &cname) {
        Ok(d) => d,
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(rustix::io::Errno::NOTDIR) | Err(rustix::io::Errno::LOOP) => {
            return Err(RuntimeError::Invalid(format!(
                "refusing to remove {}: not a directory ferry made (a file or symbolic link is in its place); remove it by hand",
                path.display()
            )))
        }
        Err(e) => {
            return Err(RuntimeError::io(
                format!("opening {}", path.display()),
                e.into(),
            ))
        }
    };
    if mount_id(parent_fd.as_fd())? != mount_id(dir.as_fd())? {
        return Err(RuntimeError::Invalid(format!(
            "refusing to remove {}: it is a mount point, not a directory ferry made; unmount it first",
            path.display()
        )));
    }
    empty_dir(dir.as_fd(), &path, 0)?;
    drop(dir);
    rustix::fs::unlinkat(parent_fd.as_fd(), cname.as_c_str(), AtFlags::REMOVEDIR)
        .or_else(|e| {
            if e == rustix::io::Errno::NOENT {
                Ok(())
            } else {
                Err(e)
            }
        })
        .map_err(|e| RuntimeError::io(format!("removing {}", path.display()), e.into()))
}

fn open_dir_at(dir: BorrowedFd<'_>, name: &CStr) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// The id of the mount `fd` lies on (unique per mount, unlike the device number: a bind mount
/// of a directory of the same filesystem has the same device but another mount id).
fn mount_id(fd: BorrowedFd<'_>) -> Result<u64> {
    mountv2::sys::mount_id(fd).map_err(|e| {
        if e.kind() == std::io::ErrorKind::Unsupported {
            RuntimeError::Invalid(
                "this kernel does not report mount ids (statx STATX_MNT_ID, Linux 5.8): refusing to remove state directories without it".into(),
            )
        } else {
            RuntimeError::io("reading a directory's mount id", e)
        }
    })
}

/// Remove every entry of the directory `dir` (shown as `path` in messages). Subdirectories
/// are entered only through descriptors opened without following links, and only when they
/// lie on the same mount as `dir`.
fn empty_dir(dir: BorrowedFd<'_>, path: &Path, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(RuntimeError::Invalid(format!(
            "refusing to remove {}: nested deeper than {MAX_DEPTH} levels, which ferry never makes",
            path.display()
        )));
    }
    let own_mount = mount_id(dir)?;
    // Names first, removal after: removing while reading a directory may skip entries.
    let mut names: Vec<(CString, FileType)> = Vec::new();
    let mut reader = rustix::fs::Dir::read_from(dir)
        .map_err(|e| RuntimeError::io(format!("reading {}", path.display()), e.into()))?;
    while let Some(entry) = reader.read() {
        let entry =
            entry.map_err(|e| RuntimeError::io(format!("reading {}", path.display()), e.into()))?;
        let n = entry.file_name();
        if n == c"." || n == c".." {
            continue;
        }
        names.push((n.to_owned(), entry.file_type()));
    }
    for (name, kind) in names {
        let child = path.join(OsStr::from_bytes(name.as_bytes()));
        let is_dir = match kind {
            FileType::Directory => true,
            FileType::Unknown => {
                rustix::fs::statat(dir, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW)
                    .map(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
                    .unwrap_or(false)
            }
            _ => false,
        };
        if is_dir {
            let sub = match open_dir_at(dir, &name) {
                Ok(s) => s,
                Err(rustix::io::Errno::NOENT) => continue,
                Err(e) => {
                    return Err(RuntimeError::io(
                        format!("opening {}", child.display()),
                        e.into(),
                    ))
                }
            };
            // Checked on the opened descriptor: a mount appearing between listing and opening
            // is seen here.
            if mount_id(sub.as_fd())? != own_mount {
                return Err(RuntimeError::Invalid(format!(
                    "refusing to remove {}: something is mounted there (not ferry's to delete); unmount it (umount -l) and retry",
                    child.display()
                )));
            }
            empty_dir(sub.as_fd(), &child, depth + 1)?;
            drop(sub);
            rustix::fs::unlinkat(dir, name.as_c_str(), AtFlags::REMOVEDIR)
        } else {
            // A file bind-mounted over an entry cannot be unlinked in this namespace (EBUSY):
            // the error below is the refusal.
            rustix::fs::unlinkat(dir, name.as_c_str(), AtFlags::empty())
        }
        .or_else(|e| if e == rustix::io::Errno::NOENT { Ok(()) } else { Err(e) })
        .map_err(|e| RuntimeError::io(format!("removing {}", child.display()), e.into()))?;
    }
    Ok(())
}

/// Mount points made in a root filesystem: paths relative to it (whether a file), parents
/// first.
pub type MadeMountpoints = Vec<(String, bool)>;

/// Undoes a restore that did not finish, when dropped armed: kills what the restore started
/// (the restored tasks, anything CRIU left, everything in the container's cgroups), removes
/// the cgroups, a pid file naming a restored task, and the state directory, unmounting what is
/// mounted in it first. It holds the container's lock until then. [`RestoreUndo::disarm`] on
/// success.
pub(crate) struct RestoreUndo<'a> {
    runtime: &'a crate::lifecycle::Runtime,
    id: String,
    /// The container's state directory.
    pub dir: PathBuf,
    pid_file: Option<PathBuf>,
    /// The restored init, once CRIU has named it.
    restored: Option<i32>,
    /// Mount points made in the bundle's root filesystem: the root filesystem, and paths
    /// relative to it (whether a file), parents first.
    made_in_rootfs: Option<(PathBuf, MadeMountpoints)>,
    armed: bool,
    _lock: crate::lock::StateLock,
}

impl<'a> RestoreUndo<'a> {
    /// Armed: the restore of `id` into state directory `dir`, whose lock it holds.
    pub fn new(
        runtime: &'a crate::lifecycle::Runtime,
        id: &str,
        dir: PathBuf,
        pid_file: Option<PathBuf>,
        lock: crate::lock::StateLock,
    ) -> Self {
        RestoreUndo {
            runtime,
            id: id.to_string(),
            dir,
            pid_file,
            restored: None,
            made_in_rootfs: None,
            armed: true,
            _lock: lock,
        }
    }

    pub fn note_restored(&mut self, pid: i32) {
        self.restored = Some(pid);
    }

    pub fn note_made_in_rootfs(&mut self, rootfs: &Path, made: MadeMountpoints) {
        self.made_in_rootfs = Some((rootfs.to_path_buf(), made));
    }

    /// The restore succeeded: keep everything.
    pub fn disarm(mut self) {
        self.armed = false;
    }

    fn undo(&self) {
        use libcgroups::common::CgroupManager;
        let id = &self.id;
        tracing::error!("restore of \"{id}\" failed, removing what it made");
        // The restored tree first, then whatever else came to ferry (its children are CRIU's
        // leftovers and restored tasks only: a restore starts nothing else).
        if let Some(pid) = self.restored {
            kill_tree(pid, false);
        }
        kill_tree(std::process::id() as i32, true);
        reap_children();
        let config = libcontainer::config::YoukiConfig::load(&self.dir).ok();
        if let Some(cfg) = &config {
            let manager =
                libcgroups::common::create_cgroup_manager(libcgroups::common::CgroupConfig {
                    cgroup_path: cfg.cgroup_path.clone(),
                    systemd_cgroup: self.runtime.systemd_cgroup,
                    container_name: id.clone(),
                });
            match manager {
                Ok(m) => {
                    // Tasks that were moved into the cgroup but are no children of ferry. A
                    // frozen task (a checkpoint taken while paused) dies only once thawed.
                    if let Err(e) = m.freeze(libcgroups::common::FreezerState::Thawed) {
                        tracing::debug!("thawing the cgroups of \"{id}\": {e}");
                    }
                    for _ in 0..50 {
                        let pids = m.get_all_pids().unwrap_or_default();
                        if pids.is_empty() {
                            break;
                        }
                        for p in pids {
                            kill_tree(p.as_raw(), false);
                        }
                        reap_children();
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    if let Err(e) = m.remove() {
                        tracing::error!("removing the cgroups of \"{id}\": {e}");
                    }
                }
                Err(e) => tracing::error!("cgroups of \"{id}\": {e}"),
            }
            remove_v1_cgroup_dirs(&cfg.cgroup_path);
        }
        let extra = std::fs::read_to_string(self.dir.join(crate::lifecycle::EXTRA_CGROUPS))
            .unwrap_or_default();
        for cg in extra.lines().filter(|l| l.starts_with("/sys/fs/cgroup/")) {
            if let Err(e) = std::fs::remove_dir(cg) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::error!("removing cgroup {cg} of \"{id}\": {e}");
                }
            }
        }
        if let (Some(path), Some(pid)) = (&self.pid_file, self.restored) {
            if std::fs::read_to_string(path).is_ok_and(|t| t.trim() == pid.to_string()) {
                if let Err(e) = std::fs::remove_file(path) {
                    tracing::error!("removing pid file {}: {e}", path.display());
                }
            }
        }
        self.runtime.remove_shadow_bundle(id);
        if let Err(e) = remove_state_path(&self.runtime.root, &self.dir) {
            tracing::error!("removing the state of \"{id}\": {e}");
        }
        if let Some((rootfs, made)) = self.made_in_rootfs.as_ref() {
            remove_made_mountpoints(rootfs, made);
        }
    }
}

impl Drop for RestoreUndo<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.undo();
        }
    }
}

/// Take away mount points made in the root filesystem `rootfs` (paths relative to it, parents
/// first, whether a file): deepest first, a directory only when empty, a file only when it is
/// an empty regular file; never following a symbolic link.
pub fn remove_made_mountpoints(rootfs: &Path, made: &[(String, bool)]) {
    let Ok(root) = std::fs::File::open(rootfs) else {
        return;
    };
    for (rel, file) in made.iter().rev() {
        let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel.as_str()));
        let Ok(dir) =
            mountv2::sys::open_beneath(root.as_fd(), parent, OFlags::RDONLY | OFlags::DIRECTORY)
        else {
            continue;
        };
        let removed = if *file {
            let empty_file =
                rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|st| {
                    FileType::from_raw_mode(st.st_mode) == FileType::RegularFile && st.st_size == 0
                });
            if !empty_file {
                continue;
            }
            rustix::fs::unlinkat(&dir, name, AtFlags::empty())
        } else {
            rustix::fs::unlinkat(&dir, name, AtFlags::REMOVEDIR)
        };
        if let Err(e) = removed {
            tracing::debug!(
                "removing mount point /{rel} made in {}: {e}",
                rootfs.display()
            );
        }
    }
}

/// Reap every child that has exited; wait briefly for killed ones.
fn reap_children() {
    use rustix::process::{wait, WaitOptions};
    for _ in 0..250 {
        match wait(WaitOptions::NOHANG) {
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(20)),
            Ok(Some(_)) => continue,
            // ECHILD: no children left.
            Err(_) => return,
        }
    }
}

/// Directories of the container's cgroup in every v1 hierarchy mounted here, also those the
/// cgroup manager does not know (named ones, controllers it does not drive): removed when empty.
fn remove_v1_cgroup_dirs(cgroup_path: &Path) {
    let rel = cgroup_path.to_string_lossy();
    let rel = rel.trim_matches('/');
    if rel.is_empty() || rel.split('/').any(|c| c == "..") {
        return;
    }
    let table = crate::boundary::read_mountinfo("/proc/self/mountinfo").unwrap_or_default();
    for r in table.iter().filter(|r| r.fstype == "cgroup") {
        let _ = std::fs::remove_dir(r.mountpoint.join(rel));
    }
}

/// Each process's parent, from /proc.
fn parents() -> HashMap<i32, i32> {
    let mut out = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command name may hold spaces and parentheses: fields follow the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        if let Some(ppid) = ppid {
            out.insert(pid, ppid);
        }
    }
    out
}

/// The descendants of `root` (not `root` itself), parents before children.
pub fn descendants(root: i32) -> Vec<i32> {
    let parents = parents();
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (&child, &parent) in &parents {
            if parent == p && child != root && !out.contains(&child) {
                out.push(child);
                frontier.push(child);
            }
        }
    }
    out
}

/// SIGKILL `root` (unless `spare_root`) and every process descending from it. Children are
/// collected before anything is killed, so that none escapes by being reparented; a second
/// round catches what was forked meanwhile. Returns the pids signalled.
pub fn kill_tree(root: i32, spare_root: bool) -> Vec<i32> {
    use rustix::process::{kill_process, Pid, Signal};
    let mut killed = Vec::new();
    for _ in 0..2 {
        let mut victims = descendants(root);
        if !spare_root && !killed.contains(&root) {
            victims.insert(0, root);
        }
        victims.retain(|p| !killed.contains(p));
        if victims.is_empty() {
            break;
        }
        // Only real pids: 0 or a negative number would signal a whole process group.
        for pid in victims
            .iter()
            .filter(|p| **p > 0)
            .filter_map(|p| Pid::from_raw(*p))
        {
            let _ = kill_process(pid, Signal::KILL);
        }
        killed.extend(victims);
    }
    killed
}

/// Whether `pid` is gone (or a zombie) within a few seconds: dying takes a moment under load.
#[cfg(test)]
pub(crate) fn dies(pid: i32) -> bool {
    for _ in 0..250 {
        let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = st
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().next());
        if matches!(state, None | Some("Z") | Some("X")) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_a_tree_without_following_links() {
        let root = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("keep"), b"x").expect("write");
        let d = root.path().join("c1");
        std::fs::create_dir_all(d.join("a/b")).expect("mkdir");
        std::fs::write(d.join("a/b/f"), b"y").expect("write");
        std::os::unix::fs::symlink(outside.path(), d.join("link")).expect("symlink");
        std::os::unix::fs::symlink(outside.path(), d.join("a/link")).expect("symlink");
        remove_dir_beneath(root.path(), "c1").expect("remove");
        assert!(!d.exists());
        assert!(outside.path().join("keep").exists(), "followed a link");
    }

    #[test]
    fn refuses_names_that_are_not_one_component() {
        let root = tempfile::tempdir().expect("tempdir");
        for bad in ["", ".", "..", "a/b", "../x"] {
            assert!(remove_dir_beneath(root.path(), bad).is_err(), "{bad:?}");
        }
        // A missing directory is not an error.
        remove_dir_beneath(root.path(), "missing").expect("missing");
    }

    #[test]
    fn refuses_a_symlink_in_place_of_the_directory() {
        let root = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("keep"), b"x").expect("write");
        std::os::unix::fs::symlink(outside.path(), root.path().join("c1")).expect("symlink");
        assert!(remove_dir_beneath(root.path(), "c1").is_err());
        assert!(outside.path().join("keep").exists());
    }

    /// A directory that is another mount (as one that appears after the unmounting would be)
    /// is told apart by its mount id and not entered: what is mounted there stays. The mount
    /// is made by a thread of its own in a private mount namespace, which ends with it.
    #[test]
    fn refuses_to_enter_another_mount() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: mounting needs root");
            return;
        }
        let in_private_ns = std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).expect("unshare");
            rustix::mount::mount_change(
                "/",
                rustix::mount::MountPropagationFlags::PRIVATE
                    | rustix::mount::MountPropagationFlags::REC,
            )
            .expect("make-rprivate");
            /// Detached before the directories go, also when the test fails.
            struct Detach(PathBuf);
            impl Drop for Detach {
                fn drop(&mut self) {
                    let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
                }
            }
            let root = tempfile::tempdir().expect("tempdir");
            let outside = tempfile::tempdir().expect("tempdir");
            std::fs::write(outside.path().join("keep"), b"x").expect("write");
            let dir = root.path().join("c1");
            let sub = dir.join("sub");
            std::fs::create_dir_all(&sub).expect("mkdir");
            rustix::mount::mount_bind(outside.path(), &sub).expect("bind");
            let _detach = Detach(sub.clone());
            let fd = rustix::fs::open(&dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
                .expect("open");
            let err = empty_dir(fd.as_fd(), &dir, 0).expect_err("entered another mount");
            assert!(
                err.to_string().contains("something is mounted there"),
                "{err}"
            );
            assert!(
                outside.path().join("keep").exists(),
                "removed through a mount"
            );
        });
        if let Err(panic) = in_private_ns.join() {
            std::panic::resume_unwind(panic);
        }
    }

    #[test]
    fn kill_tree_ends_children_and_grandchildren() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 60 & sleep 60 & wait"])
            .spawn()
            .expect("spawn");
        let pid = child.id() as i32;
        let mut found = Vec::new();
        for _ in 0..100 {
            found = descendants(pid);
            if found.len() >= 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(found.len(), 2, "sleeps not started: {found:?}");
        let killed = kill_tree(pid, false);
        assert!(killed.contains(&pid));
        let _ = child.wait();
        for p in found {
            assert!(dies(p), "{p} lives on");
        }
    }
}
