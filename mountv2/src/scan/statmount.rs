//! statmount(2)/listmount(2) (Linux 6.8+): unique 64-bit mount ids that are never reused and
//! one atomic read per mount. The structs are declared here, sizes asserted, because neither
//! rustix nor nix has these calls.

use super::{RawMount, ScanError};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::OnceLock;

const SYS_STATMOUNT: libc::c_long = 457;
const SYS_LISTMOUNT: libc::c_long = 458;
const LSMT_ROOT: u64 = u64::MAX;

const STATMOUNT_SB_BASIC: u64 = 0x1;
const STATMOUNT_MNT_BASIC: u64 = 0x2;
const STATMOUNT_PROPAGATE_FROM: u64 = 0x4;
const STATMOUNT_MNT_ROOT: u64 = 0x8;
const STATMOUNT_MNT_POINT: u64 = 0x10;
const STATMOUNT_FS_TYPE: u64 = 0x20;
const STATMOUNT_MNT_OPTS: u64 = 0x80;
const STATMOUNT_SB_SOURCE: u64 = 0x200;

const SB_RDONLY: u32 = 1;
use crate::sys::{
    MOUNT_ATTR_IDMAP, MOUNT_ATTR_NOATIME, MOUNT_ATTR_NODEV, MOUNT_ATTR_NODIRATIME,
    MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NOSYMFOLLOW, MOUNT_ATTR_RDONLY,
    MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME,
};

#[repr(C)]
#[derive(Default)]
struct MntIdReq {
    size: u32,
    spare: u32,
    mnt_id: u64,
    param: u64,
}
const _: () = assert!(std::mem::size_of::<MntIdReq>() == 24);

/// The fixed part of `struct statmount`; strings follow it in the same buffer.
#[repr(C)]
#[derive(Clone, Copy)]
struct StatmountHead {
    size: u32,
    mnt_opts: u32,
    mask: u64,
    sb_dev_major: u32,
    sb_dev_minor: u32,
    sb_magic: u64,
    sb_flags: u32,
    fs_type: u32,
    mnt_id: u64,
    mnt_parent_id: u64,
    mnt_id_old: u32,
    mnt_parent_id_old: u32,
    mnt_attr: u64,
    mnt_propagation: u64,
    mnt_peer_group: u64,
    mnt_master: u64,
    propagate_from: u64,
    mnt_root: u32,
    mnt_point: u32,
    mnt_ns_id: u64,
    fs_subtype: u32,
    sb_source: u32,
    opt_num: u32,
    opt_array: u32,
    opt_sec_num: u32,
    opt_sec_array: u32,
    supported_mask: u64,
    mnt_uidmap_num: u32,
    mnt_uidmap: u32,
    mnt_gidmap_num: u32,
    mnt_gidmap: u32,
    spare: [u64; 43],
}
const _: () = assert!(std::mem::size_of::<StatmountHead>() == 512);

/// Does this kernel have listmount? Probed once.
pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let mut ids = [0u64; 1];
        list_chunk(LSMT_ROOT, 0, &mut ids).is_ok()
    })
}

fn list_chunk(mnt_id: u64, last: u64, out: &mut [u64]) -> std::io::Result<usize> {
    let req = MntIdReq {
        size: std::mem::size_of::<MntIdReq>() as u32,
        mnt_id,
        param: last,
        ..Default::default()
    };
    // SAFETY: `req` is a valid request of the size it declares; `out` is writable for
    // `out.len()` u64s.
    #[allow(unsafe_code)]
    let r = unsafe {
        libc::syscall(
            SYS_LISTMOUNT,
            &req as *const MntIdReq,
            out.as_mut_ptr(),
            out.len(),
            0u32,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// statmount one mount into `buf` (grown on EOVERFLOW).
fn stat_one(id: u64, mask: u64, buf: &mut Vec<u64>) -> std::io::Result<()> {
    loop {
        let req = MntIdReq {
            size: std::mem::size_of::<MntIdReq>() as u32,
            mnt_id: id,
            param: mask,
            ..Default::default()
        };
        // SAFETY: the buffer is u64-aligned and writable for the byte size passed.
        #[allow(unsafe_code)]
        let r = unsafe {
            libc::syscall(
                SYS_STATMOUNT,
                &req as *const MntIdReq,
                buf.as_mut_ptr(),
                buf.len() * 8,
                0u32,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EOVERFLOW) && buf.len() < (1 << 20) {
            let n = buf.len() * 2;
            buf.resize(n, 0);
            continue;
        }
        return Err(e);
    }
}

fn string_at(buf: &[u8], off: u32) -> &[u8] {
    let start = 512 + off as usize;
    let tail = buf.get(start..).unwrap_or(&[]);
    let end = tail.iter().position(|b| *b == 0).unwrap_or(tail.len());
    &tail[..end]
}

/// The caller's root mount's unique id.
fn root_mount_id() -> std::io::Result<u64> {
    use crate::sys::{mount_id_at, MountIdKind};
    mount_id_at(
        rustix::fs::CWD,
        "/",
        rustix::fs::AtFlags::empty(),
        MountIdKind::Unique,
    )?
    .ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "statx reports no unique mount id",
        )
    })
}

/// The ids of every mount of this namespace: the root's, then listmount's, in chunks.
fn mount_ids() -> std::io::Result<Vec<u64>> {
    let mut ids = vec![root_mount_id()?];
    let mut chunk = vec![0u64; 4096];
    let mut last = 0;
    loop {
        let n = list_chunk(LSMT_ROOT, last, &mut chunk)?;
        ids.extend_from_slice(&chunk[..n]);
        if n < chunk.len() {
            break;
        }
        last = chunk[n - 1];
    }
    Ok(ids)
}

/// A mount's attributes in mountinfo's words (`ro`, `nosuid`, `relatime`, ...).
fn mount_options(a: u64) -> Vec<String> {
    let mut mount_options = vec![if a & MOUNT_ATTR_RDONLY != 0 {
        "ro"
    } else {
        "rw"
    }
    .to_string()];
    for (bit, word) in [
        (MOUNT_ATTR_NOSUID, "nosuid"),
        (MOUNT_ATTR_NODEV, "nodev"),
        (MOUNT_ATTR_NOEXEC, "noexec"),
        (MOUNT_ATTR_NOSYMFOLLOW, "nosymfollow"),
        (MOUNT_ATTR_IDMAP, "idmapped"),
        (MOUNT_ATTR_NODIRATIME, "nodiratime"),
    ] {
        if a & bit != 0 {
            mount_options.push(word.to_string());
        }
    }
    mount_options.push(
        match a & MOUNT_ATTR__ATIME {
            MOUNT_ATTR_NOATIME => "noatime",
            MOUNT_ATTR_STRICTATIME => "strictatime",
            _ => "relatime",
        }
        .to_string(),
    );
    mount_options
}

pub fn read_table() -> Result<Vec<RawMount>, ScanError> {
    let err = |what: &str, e: std::io::Error| ScanError::Other(format!("{what}: {e}"));
    let ids = mount_ids().map_err(|e| err("listmount", e))?;
    let mask = STATMOUNT_SB_BASIC
        | STATMOUNT_MNT_BASIC
        | STATMOUNT_PROPAGATE_FROM
        | STATMOUNT_MNT_ROOT
        | STATMOUNT_MNT_POINT
        | STATMOUNT_FS_TYPE
        | STATMOUNT_MNT_OPTS
        | STATMOUNT_SB_SOURCE;
    let mut buf = vec![0u64; 1024];
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        match stat_one(id, mask, &mut buf) {
            Ok(()) => {}
            // Gone between listing and reading it.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(err(&format!("statmount({id})"), e)),
        }
        // SAFETY: the kernel filled at least the fixed part; the buffer is aligned for it.
        #[allow(unsafe_code)]
        let head: StatmountHead = unsafe { std::ptr::read(buf.as_ptr() as *const StatmountHead) };
        // SAFETY: reinterpreting an initialised u64 buffer as bytes.
        #[allow(unsafe_code)]
        let bytes: &[u8] =
            unsafe { std::slice::from_raw_parts(buf.as_ptr() as *const u8, buf.len() * 8) };
        let text = |mask_bit: u64, off: u32| {
            if head.mask & mask_bit != 0 {
                String::from_utf8_lossy(string_at(bytes, off)).into_owned()
            } else {
                String::new()
            }
        };
        let mut root = string_at(bytes, head.mnt_root).to_vec();
        let root_deleted = root.ends_with(b"//deleted");
        if root_deleted {
            root.truncate(root.len() - b"//deleted".len());
            if root.is_empty() {
                root.push(b'/');
            }
        }
        let mount_options = mount_options(head.mnt_attr);
        let mut super_options = vec![if head.sb_flags & SB_RDONLY != 0 {
            "ro"
        } else {
            "rw"
        }
        .to_string()];
        let opts = text(STATMOUNT_MNT_OPTS, head.mnt_opts);
        super_options.extend(
            opts.split(',')
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(&super::unescape(s.as_bytes())).into_owned()),
        );
        let prop = head.mnt_propagation;
        out.push(RawMount {
            id: head.mnt_id,
            parent_id: head.mnt_parent_id,
            dev: (head.sb_dev_major, head.sb_dev_minor),
            root: PathBuf::from(OsStr::from_bytes(&root)),
            root_deleted,
            mountpoint: PathBuf::from(OsStr::from_bytes(string_at(bytes, head.mnt_point))),
            mount_options,
            shared: (prop & libc::MS_SHARED != 0 && head.mnt_peer_group != 0)
                .then_some(head.mnt_peer_group),
            master: (head.mnt_master != 0).then_some(head.mnt_master),
            propagate_from: (head.propagate_from != 0 && head.propagate_from != head.mnt_master)
                .then_some(head.propagate_from),
            unbindable: prop & libc::MS_UNBINDABLE != 0,
            fstype: text(STATMOUNT_FS_TYPE, head.fs_type),
            source: text(STATMOUNT_SB_SOURCE, head.sb_source),
            super_options,
        });
    }
    Ok(out)
}
