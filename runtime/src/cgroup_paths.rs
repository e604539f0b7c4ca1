//! Where a container's cgroups are, as runc's cgroupfs driver places them: in every
//! hierarchy, named v1 ones (`name=systemd`) and the unified one of a hybrid host included,
//! at `cgroupsPath` when it is absolute, else below the caller's own cgroup, with the
//! container id as the default name.
//!
//! libcontainer manages the v1 controllers only and names a container without `cgroupsPath`
//! `:youki:<id>`; the rest is done here. A container left at `/` of a hierarchy makes CRIU
//! dump that hierarchy's whole tree, other services' cgroups among them, and a restore then
//! depends on every one of them still being there.

use crate::error::{Result, RuntimeError};
use mountv2::scan::RawMount;
use std::path::{Path, PathBuf};

/// This host's cgroup v1 hierarchies: where each is mounted and its controller set
/// (`cpu,cpuacct`, `memory`, ...) or, for a named hierarchy, its name (`name=systemd`).
pub fn v1_hierarchies() -> Vec<(PathBuf, String)> {
    v1_hierarchies_in(
        &crate::boundary::read_mountinfo("/proc/self/mountinfo").unwrap_or_default(),
        &std::fs::read_to_string("/proc/cgroups").unwrap_or_default(),
    )
}

/// The cgroup v1 hierarchies of a mount table, given /proc/cgroups' text (which names the
/// controllers: other options of a cgroup mount are not controllers). One entry per
/// hierarchy, at its first mount.
fn v1_hierarchies_in(mountinfo: &[RawMount], proc_cgroups: &str) -> Vec<(PathBuf, String)> {
    let known: Vec<&str> = proc_cgroups
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let mut out: Vec<(PathBuf, String)> = Vec::new();
    for r in mountinfo.iter().filter(|r| r.fstype == "cgroup") {
        let options = &r.super_options;
        let ctrls: Vec<&str> = options
            .iter()
            .map(String::as_str)
            .filter(|o| known.contains(o))
            .collect();
        let set = if ctrls.is_empty() {
            match options.iter().find(|o| o.starts_with("name=")) {
                Some(name) => name.clone(),
                None => continue,
            }
        } else {
            ctrls.join(",")
        };
        if out.iter().all(|(_, s)| *s != set) {
            out.push((r.mountpoint.clone(), set));
        }
    }
    out
}

/// The unified hierarchy's mount point on a hybrid host (cgroup2 beside v1 hierarchies).
pub fn hybrid_unified() -> Option<PathBuf> {
    if v1_hierarchies().is_empty() {
        return None;
    }
    crate::boundary::read_mountinfo("/proc/self/mountinfo")
        .ok()?
        .into_iter()
        .find(|r| r.fstype == "cgroup2")
        .map(|r| r.mountpoint)
}

/// Whether this host is cgroup v2 only, as libcontainer decides it (a cgroup2 file system at
/// `/sys/fs/cgroup`): then every controller, the freezer among them, is in that one hierarchy.
pub fn unified_only() -> bool {
    matches!(
        libcgroups::common::get_cgroup_setup(),
        Ok(libcgroups::common::CgroupSetup::Unified)
    )
}

/// The directory of the freezer holding a container whose cgroup is `cgroup_path`: in the v1
/// freezer hierarchy (`freezer.state`), or on a cgroup v2 host in the unified one
/// (`cgroup.freeze`). CRIU is given it to leave a paused container's freezer alone.
pub fn freezer_dir(cgroup_path: &Path) -> Result<PathBuf> {
    let rel = clean(&cgroup_path.to_string_lossy());
    let root = if unified_only() {
        PathBuf::from(libcgroups::common::DEFAULT_CGROUP_ROOT)
    } else {
        v1_hierarchies()
            .into_iter()
            .find(|(_, set)| set.split(',').any(|c| c == "freezer"))
            .map(|(mp, _)| mp)
            .ok_or_else(|| RuntimeError::Cgroup {
                what: "the freezer".into(),
                source: "this host has neither a cgroup v1 freezer hierarchy nor cgroup v2 \
                         at /sys/fs/cgroup"
                    .into(),
            })?
    };
    Ok(root.join(rel.trim_start_matches('/')))
}

/// The directory of a container whose cgroup is `cgroup_path` on a cgroup v2 host; `None` on
/// a v1 or hybrid one.
pub fn unified_dir(cgroup_path: &Path) -> Option<PathBuf> {
    unified_only().then(|| {
        Path::new(libcgroups::common::DEFAULT_CGROUP_ROOT)
            .join(clean(&cgroup_path.to_string_lossy()).trim_start_matches('/'))
    })
}

/// The host's directory for `rel` in the cgroup v1 hierarchy that a container sees mounted at
/// `.../NAME` (`cpu,cpuacct`, `systemd`): the host's hierarchy whose mount point has that
/// name, else `/sys/fs/cgroup/NAME` (where runc's and libcontainer's hosts mount them).
pub fn v1_dir_named(name: &str, rel: &str) -> PathBuf {
    let root = v1_hierarchies()
        .into_iter()
        .map(|(mp, _)| mp)
        .find(|mp| mp.file_name().is_some_and(|f| f == name))
        .unwrap_or_else(|| Path::new(libcgroups::common::DEFAULT_CGROUP_ROOT).join(name));
    root.join(clean(rel).trim_start_matches('/'))
}

/// Normalise a cgroup path: absolute, no empty, `.` or `..` components (a `..` cannot climb
/// above the root, as runc's CleanPath).
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The caller's own cgroup, from `/proc/self/cgroup` text: the path most v1 controller
/// hierarchies agree on, or the unified one on a cgroup v2 host. One path serves every
/// hierarchy (libcontainer takes one): where the caller sits in different cgroups in
/// different hierarchies, runc would follow each, ferry the majority.
fn own_cgroup(proc_cgroup: &str) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    let mut unified = None;
    for line in proc_cgroup.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if id == "0" && ctrls.is_empty() {
            unified = Some(path.to_string());
        } else if !ctrls.starts_with("name=") && !ctrls.is_empty() {
            match counts.iter_mut().find(|(p, _)| p == path) {
                Some((_, n)) => *n += 1,
                None => counts.push((path.to_string(), 1)),
            }
        }
    }
    // On a cgroup v2 host a scope holds processes already, and v2 allows no children with
    // controllers beside them: runc goes up to the scope's parent.
    let unified = unified.map(|u| match u.rsplit_once('/') {
        Some((parent, leaf)) if leaf.ends_with(".scope") => parent.to_string(),
        _ => u,
    });
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(p, _)| p)
        .or(unified)
        .unwrap_or_else(|| "/".into())
}

/// The container's cgroup path in every hierarchy, as runc's cgroupfs driver resolves it:
/// `cgroupsPath` when absolute; relative (or unset: the id) below the caller's own cgroup.
pub fn container_cgroup(cgroups_path: Option<&Path>, id: &str) -> String {
    let given = cgroups_path.map(|p| p.to_string_lossy().into_owned());
    match given {
        Some(p) if p.starts_with('/') => clean(&p),
        other => {
            let rel = other.filter(|p| !p.is_empty()).unwrap_or_else(|| id.into());
            let own = own_cgroup(&std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default());
            clean(&format!("{own}/{rel}"))
        }
    }
}

/// The hierarchies libcontainer leaves alone: named v1 ones and the unified one of a
/// hybrid host (their mount points).
fn unmanaged_roots() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = v1_hierarchies()
        .into_iter()
        .filter(|(_, name)| name.starts_with("name="))
        .map(|(mp, _)| mp)
        .collect();
    roots.extend(hybrid_unified());
    roots
}

/// This process's cgroup directories in the hierarchies libcontainer leaves alone.
fn own_unmanaged() -> Vec<PathBuf> {
    unmanaged_dirs(
        &std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default(),
        true,
    )
}

/// The directories a `/proc/PID/cgroup` text names in the hierarchies libcontainer leaves
/// alone (named v1 ones, the unified one of a hybrid host); a hierarchy's root only with
/// `with_roots`.
fn unmanaged_dirs(text: &str, with_roots: bool) -> Vec<PathBuf> {
    let hierarchies = v1_hierarchies();
    let unified = hybrid_unified();
    text.lines()
        .filter_map(|line| {
            let mut f = line.splitn(3, ':');
            let (id, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            if path == "/" && !with_roots {
                return None;
            }
            let root = if id == "0" && ctrls.is_empty() {
                unified.clone()
            } else if ctrls.starts_with("name=") {
                hierarchies
                    .iter()
                    .find(|(_, n)| n == ctrls)
                    .map(|(mp, _)| mp.clone())
            } else {
                None
            }?;
            Some(root.join(path.trim_start_matches('/')))
        })
        .collect()
}

fn move_self(dir: &Path) -> std::io::Result<()> {
    std::fs::write(dir.join("cgroup.procs"), std::process::id().to_string())
}

/// Where this process was before [`enter_unmanaged`], and the directories it entered.
#[derive(Debug, Default)]
pub struct Entered {
    pub dirs: Vec<PathBuf>,
    previous: Vec<PathBuf>,
}

/// Move this process into the container's cgroup `path` of the hierarchies libcontainer
/// leaves alone, so that the container's init, forked next, starts there (and mounts its
/// own cgroup there, as with runc). [`Entered::leave`] comes back.
pub fn enter_unmanaged(path: &str) -> Result<Entered> {
    let dirs = unmanaged_roots()
        .into_iter()
        .map(|root| root.join(path.trim_start_matches('/')))
        .collect();
    enter(dirs)
}

/// Move this process into the cgroup directories `dirs` (made when missing), so that a
/// process it forks next starts there; [`Entered::leave`] comes back.
pub fn enter(dirs: Vec<PathBuf>) -> Result<Entered> {
    let mut entered = Entered {
        dirs: Vec::new(),
        previous: own_unmanaged(),
    };
    for dir in dirs {
        std::fs::create_dir_all(&dir)
            .map_err(|e| RuntimeError::io(format!("creating cgroup {}", dir.display()), e))?;
        entered.dirs.push(dir.clone());
        if let Err(e) = move_self(&dir) {
            entered.leave();
            entered.remove();
            return Err(RuntimeError::io(
                format!("entering cgroup {}", dir.display()),
                e,
            ));
        }
    }
    Ok(entered)
}

impl Entered {
    /// Back to the cgroups this process had.
    pub fn leave(&self) {
        for dir in &self.previous {
            if let Err(e) = move_self(dir) {
                tracing::warn!("returning to cgroup {}: {e}", dir.display());
            }
        }
    }

    /// Remove the entered directories (after a failed create).
    pub fn remove(&self) {
        for dir in self.dirs.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// The directories of `pid`'s cgroups in the hierarchies libcontainer leaves alone (named
/// v1 ones, the unified one of a hybrid host), when they are not a hierarchy's root.
pub fn unmanaged_of(pid: i32) -> Vec<PathBuf> {
    match std::fs::read_to_string(format!("/proc/{pid}/cgroup")) {
        Ok(text) => unmanaged_dirs(&text, false),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_follow_the_callers_cgroup() {
        let text = "9:name=systemd:/user.slice\n4:memory:/a/b\n3:cpu:/\n2:pids:/\n0::/user.slice\n";
        assert_eq!(own_cgroup(text), "/");
        let text = "3:cpu:/svc\n2:pids:/svc\n1:memory:/\n0::/\n";
        assert_eq!(own_cgroup(text), "/svc");
        assert_eq!(own_cgroup("0::/x.slice/y\n"), "/x.slice/y");
        assert_eq!(
            own_cgroup("0::/user.slice/session-1.scope\n"),
            "/user.slice"
        );
        assert_eq!(clean("/a//b/./c/../d"), "/a/b/d");
        assert_eq!(clean("/../.."), "/");
        assert_eq!(container_cgroup(Some(Path::new("/abs//x")), "id"), "/abs/x");
    }

    /// A hierarchy mounted at a path that is not UTF-8 is found where it is (the text-based
    /// reading before the shared parser turned such bytes into U+FFFD, a path that does not
    /// exist).
    #[test]
    fn hierarchies_keep_mount_points_that_are_not_utf8() {
        use std::os::unix::ffi::OsStrExt;
        let proc_cgroups = "memory\t3\t1\t1\n";
        let mountinfo = mountv2::scan::parse_mountinfo(
            b"34 30 0:30 / /sys/fs/cgroup/m\xe9m\\040x rw - cgroup cgroup rw,memory\n",
            Path::new("mountinfo"),
        )
        .expect("parse");
        let found = v1_hierarchies_in(&mountinfo, proc_cgroups);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0].0.as_os_str().as_bytes(),
            b"/sys/fs/cgroup/m\xe9m x"
        );
    }

    #[test]
    fn hierarchies_are_read_from_a_mountinfo_text() {
        let proc_cgroups = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n\
                            cpu\t2\t1\t1\ncpuacct\t2\t1\t1\nmemory\t3\t1\t1\n";
        let mountinfo = "\
30 25 0:26 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
34 30 0:30 / /sys/fs/cgroup/my\\040memory rw - cgroup cgroup rw,memory
35 30 0:29 / /elsewhere/cpu rw - cgroup cgroup rw,cpu,cpuacct
36 30 0:31 / /sys/fs/cgroup/odd rw - cgroup cgroup rw,nonsense
";
        let mountinfo =
            mountv2::scan::parse_mountinfo(mountinfo.as_bytes(), Path::new("mountinfo"))
                .expect("parse");
        assert_eq!(
            v1_hierarchies_in(&mountinfo, proc_cgroups),
            vec![
                (
                    PathBuf::from("/sys/fs/cgroup/systemd"),
                    "name=systemd".into()
                ),
                (
                    PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"),
                    "cpu,cpuacct".into()
                ),
                (PathBuf::from("/sys/fs/cgroup/my memory"), "memory".into()),
            ]
        );
    }
}
