//! File content of superblocks the engine recreates (tmpfs): captured at dump from a private,
//! non-recursive clone of the superblock's widest mount (so what lies under overmounts is seen),
//! and written back into the fresh superblock before any mount is attached on top of it.

use serde::{Deserialize, Serialize};

/// Everything inside one superblock, as seen from one of its mounts' roots.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    /// Root inside the filesystem that `entries` are relative to (`"/"` when the whole
    /// superblock was visible).
    pub base: String,
    /// Mode/owner of the base directory itself.
    pub base_meta: Option<Meta>,
    /// Parent directories come before their children.
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// Permission bits including setuid/setgid/sticky (no file type bits).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Relative to `Content::base`, normalised, never empty, never `..`.
    pub path: String,
    pub meta: Meta,
    pub kind: EntryKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum EntryKind {
    Dir,
    /// File bytes, base64.
    File { data: String },
    Symlink { target: String },
    Fifo,
    /// A character or block device node.
    Device { block: bool, major: u32, minor: u32 },
    Socket,
}

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("content of {what} exceeds the limit of {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    #[error("content entry {path}: {reason}")]
    Invalid { path: String, reason: String },
}
