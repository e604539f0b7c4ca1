//! Read a mount namespace: /proc/PID/mountinfo everywhere, statmount/listmount where the kernel
//! has them. Output: a raw table ([`RawMount`]) and, for a chosen root path, a [`MountTree`].

use crate::model::MountTree;
use std::path::{Path, PathBuf};

/// One row of a namespace's mount table, as the kernel reports it (kernel ids, not indices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMount {
    /// Mount id: the legacy 32-bit id from mountinfo, or the unique 64-bit id from statmount.
    pub id: u64,
    pub parent_id: u64,
    /// Device number of the superblock (major, minor).
    pub dev: (u32, u32),
    /// Root of the mount inside its filesystem, unescaped, without the `//deleted` suffix.
    pub root: PathBuf,
    pub root_deleted: bool,
    /// Absolute mount point in the namespace, unescaped.
    pub mountpoint: PathBuf,
    /// Per-mount options (`rw`, `nosuid`, `relatime`, ...).
    pub mount_options: Vec<String>,
    pub shared: Option<u64>,
    pub master: Option<u64>,
    pub propagate_from: Option<u64>,
    pub unbindable: bool,
    pub fstype: String,
    pub source: String,
    /// Superblock options (`rw`, `size=...`, ...).
    pub super_options: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {reason}")]
    Parse {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("no mount at {0} in the scanned namespace")]
    NoMountAt(PathBuf),
    #[error("{0}")]
    Other(String),
}

/// Which kernel interface to read the table through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanSource {
    /// statmount/listmount when the kernel has them, mountinfo otherwise.
    Auto,
    Mountinfo,
    Statmount,
}

/// Read the mount table of `pid`'s namespace (the caller's when `None`).
pub fn read_table(_pid: Option<u32>, _source: ScanSource) -> Result<Vec<RawMount>, ScanError> {
    Err(ScanError::Other("not implemented".into()))
}

/// Build the tree of the mount at `root` (the top-most mount on that path) and everything below.
pub fn tree_at(_table: &[RawMount], root: &Path) -> Result<MountTree, ScanError> {
    Err(ScanError::NoMountAt(root.to_path_buf()))
}
