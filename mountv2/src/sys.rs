//! Thin wrappers over the mount API calls that rustix and nix lack (mount_setattr), plus the
//! path helpers the executor needs to stay beneath a directory fd.

use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use std::io;

pub use libc::{
    MOUNT_ATTR_IDMAP, MOUNT_ATTR_NOATIME, MOUNT_ATTR_NODEV, MOUNT_ATTR_NODIRATIME,
    MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NOSYMFOLLOW, MOUNT_ATTR_RDONLY,
    MOUNT_ATTR_RELATIME, MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME,
};

/// Propagation types as mount_setattr's `propagation` field takes them (the MS_* values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropagationType {
    Shared = libc::MS_SHARED as isize,
    Slave = libc::MS_SLAVE as isize,
    Private = libc::MS_PRIVATE as isize,
    Unbindable = libc::MS_UNBINDABLE as isize,
}

/// `struct mount_attr` (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}
const _: () = assert!(std::mem::size_of::<MountAttr>() == 32);

fn mount_setattr(fd: BorrowedFd<'_>, attr: &MountAttr) -> io::Result<()> {
    // SAFETY: the path is a valid NUL-terminated empty string, `attr` points to a live struct
    // whose size we pass, and the fd is borrowed for the duration of the call.
    #[allow(unsafe_code)]
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Set exactly the per-mount flags in `set` (a MOUNT_ATTR_* mask), clearing all others that
/// the engine manages. The atime mode is an enum in the kernel, so its mask is always cleared.
pub fn set_mount_flags(fd: BorrowedFd<'_>, set: u64) -> io::Result<()> {
    let managed = MOUNT_ATTR_RDONLY
        | MOUNT_ATTR_NOSUID
        | MOUNT_ATTR_NODEV
        | MOUNT_ATTR_NOEXEC
        | MOUNT_ATTR_NODIRATIME
        | MOUNT_ATTR_NOSYMFOLLOW;
    let attr = MountAttr {
        attr_set: set,
        attr_clr: (managed & !set) | MOUNT_ATTR__ATIME,
        ..Default::default()
    };
    mount_setattr(fd, &attr)
}

/// Change one mount's propagation type (never recursive: recursive `shared` would give every
/// mount its own new group).
pub fn set_propagation(fd: BorrowedFd<'_>, kind: PropagationType) -> io::Result<()> {
    let attr = MountAttr {
        propagation: kind as u64,
        ..Default::default()
    };
    mount_setattr(fd, &attr)
}

/// Open `rel` below `dir` without following symlinks or leaving `dir`. `rel` empty: `dir`
/// itself (as a new O_PATH fd). `rel` is the path's bytes as the kernel takes them (a
/// `&str` from an OCI config, or an image path after
/// [`crate::content::unescape_name`]).
pub fn open_beneath(
    dir: BorrowedFd<'_>,
    rel: impl AsRef<[u8]>,
    flags: OFlags,
) -> io::Result<OwnedFd> {
    let rel = rel.as_ref();
    let path: &[u8] = if rel.is_empty() { b"." } else { rel };
    Ok(rustix::fs::openat2(
        dir,
        path,
        flags | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )?)
}

/// Open (as O_PATH) the mount point `rel` (bytes, as for [`open_beneath`]) below `dir`,
/// creating missing directories on the way and, when `file` is set, an empty file as the last
/// component. Never follows symlinks.
pub fn open_or_create_mountpoint(
    dir: BorrowedFd<'_>,
    rel: impl AsRef<[u8]>,
    file: bool,
) -> io::Result<OwnedFd> {
    let rel = rel.as_ref();
    match open_beneath(dir, rel, OFlags::PATH) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let comps: Vec<&[u8]> = rel.split(|b| *b == b'/').collect();
    let mut cur: OwnedFd = open_beneath(dir, "", OFlags::PATH | OFlags::DIRECTORY)?;
    for (i, comp) in comps.iter().copied().enumerate() {
        let last = i + 1 == comps.len();
        match open_beneath(cur.as_fd(), comp, OFlags::PATH) {
            Ok(fd) => {
                cur = fd;
                continue;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
        // O_PATH fds cannot be used to create entries; reopen the directory for that.
        let dirfd = open_beneath(cur.as_fd(), "", OFlags::RDONLY | OFlags::DIRECTORY)?;
        if last && file {
            match rustix::fs::openat(
                &dirfd,
                comp,
                OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::from_raw_mode(0o644),
            ) {
                Ok(_) => {}
                Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
        } else {
            match rustix::fs::mkdirat(&dirfd, comp, Mode::from_raw_mode(0o755)) {
                Ok(()) => {}
                Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
        }
        cur = open_beneath(dirfd.as_fd(), comp, OFlags::PATH)?;
    }
    Ok(cur)
}

/// Make `to` a peer of `from`'s group (MOVE_MOUNT_SET_GROUP, Linux 5.15); both are mount fds,
/// attached or not, in any namespaces.
pub fn set_group(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::mount::move_mount(
        from,
        "",
        to,
        "",
        rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH
            | rustix::mount::MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH
            | rustix::mount::MoveMountFlags::MOVE_MOUNT_SET_GROUP,
    )?)
}

/// Which of the kernel's two mount ids: the unique 64-bit one (Linux 6.8, statmount's) or
/// the legacy one (mountinfo's); their ranges do not meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountIdKind {
    Unique,
    Legacy,
}

/// STATX_MNT_ID_UNIQUE (Linux 6.8), which rustix does not name.
const STATX_MNT_ID_UNIQUE: rustix::fs::StatxFlags =
    rustix::fs::StatxFlags::from_bits_retain(0x4000);

/// The id of the given kind of the mount `path` (relative to `dir`, with `flags`) is on;
/// `None` when this kernel does not report that kind. With [`mount_id_of`], the one place
/// mount ids are read.
pub fn mount_id_at<P: rustix::path::Arg>(
    dir: BorrowedFd<'_>,
    path: P,
    flags: rustix::fs::AtFlags,
    kind: MountIdKind,
) -> io::Result<Option<u64>> {
    let mask = match kind {
        MountIdKind::Unique => STATX_MNT_ID_UNIQUE,
        MountIdKind::Legacy => rustix::fs::StatxFlags::MNT_ID,
    };
    let st = rustix::fs::statx(dir, path, flags, mask)?;
    Ok((st.stx_mask & mask.bits() != 0).then_some(st.stx_mnt_id))
}

/// The id of the mount `fd` is on (the unique 64-bit id where the kernel has it).
pub fn mount_id(fd: BorrowedFd<'_>) -> io::Result<u64> {
    mount_id_of(fd, "")
}

/// The id of the mount `path` (relative to `dir`; `""` for `dir` itself) is on, without
/// following a symlink or triggering an automount at its end: the unique 64-bit id where the
/// kernel has it, else the legacy one. Which kind depends on the kernel only, so two of these
/// ids compare; a scan table's ids compare with [`mount_id_at`] of the table's kind.
pub fn mount_id_of<P: rustix::path::Arg>(dir: BorrowedFd<'_>, path: P) -> io::Result<u64> {
    use rustix::fs::{AtFlags, StatxFlags};
    // EMPTY_PATH only matters for "": then `dir` itself is looked at.
    let flags = AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW | AtFlags::NO_AUTOMOUNT;
    // One call asks for both: a kernel that has the unique id gives it (and says so in the
    // mask), an older one ignores that bit and gives the legacy id.
    let st = rustix::fs::statx(dir, path, flags, STATX_MNT_ID_UNIQUE | StatxFlags::MNT_ID)?;
    if st.stx_mask & (STATX_MNT_ID_UNIQUE | StatxFlags::MNT_ID).bits() != 0 {
        return Ok(st.stx_mnt_id);
    }
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "statx reports no mount id",
    ))
}

/// Raise the soft open-file limit to the hard one: restoring keeps one fd per mount open.
/// Needs no privilege (unlike raising the hard limit).
pub fn raise_nofile_limit() -> io::Result<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    // `None` is RLIM_INFINITY, above every finite limit.
    let below = |a: Option<u64>, b: Option<u64>| a.unwrap_or(u64::MAX) < b.unwrap_or(u64::MAX);
    if below(lim.current, lim.maximum) {
        lim.current = lim.maximum;
        setrlimit(Resource::Nofile, lim)?;
    }
    Ok(lim.current.unwrap_or(libc::RLIM_INFINITY))
}

/// chmod the file `fd` stands for (an `O_PATH` descriptor will do, so device nodes and fifos
/// need not be opened), never anything a symlink points to.
pub fn chmod_fd(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    // SAFETY: fchmodat2 reads the NUL-terminated empty path and nothing else; `fd` is borrowed
    // for the duration of the call.
    #[allow(unsafe_code)]
    let r = unsafe {
        libc::syscall(
            libc::SYS_fchmodat2,
            fd.as_raw_fd(),
            c"".as_ptr(),
            mode as libc::c_uint,
            libc::AT_EMPTY_PATH,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(err);
    }
    // Before Linux 6.6: through the descriptor's magic link, which names the file itself.
    Ok(rustix::fs::chmod(
        format!("/proc/self/fd/{}", fd.as_raw_fd()).as_str(),
        Mode::from_raw_mode(mode),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asked for both kinds at once, the kernel gives the unique id where it has one and the
    /// legacy id otherwise: the same id two separate asks would pick.
    #[test]
    fn one_ask_gives_the_unique_id_where_there_is_one() {
        let flags = rustix::fs::AtFlags::SYMLINK_NOFOLLOW;
        for path in ["/", "/proc", "/proc/self/fd"] {
            let expected = match mount_id_at(rustix::fs::CWD, path, flags, MountIdKind::Unique) {
                Ok(Some(id)) => id,
                _ => mount_id_at(rustix::fs::CWD, path, flags, MountIdKind::Legacy)
                    .expect("statx")
                    .expect("a legacy mount id"),
            };
            assert_eq!(
                mount_id_of(rustix::fs::CWD, path).expect("statx"),
                expected,
                "{path}"
            );
        }
    }
}
