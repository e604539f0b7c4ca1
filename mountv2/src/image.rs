//! The on-disk form of a mount tree: versioned serde JSON, host-independent (indices and
//! symbolic names only), validated completely on load so that nothing a hostile image says can
//! reach the kernel before it is known to be well-formed and inside the target.

use crate::content::{Content, EntryKind};
use crate::model::{MountTree, PeerGroup, SuperblockIdx, SuperblockOrigin, TreeError};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Identifies the format, so that a random JSON file is not mistaken for an image.
pub const FORMAT: &str = "ferry-mountv2";
/// Bumped on every incompatible change; loaders refuse other versions.
pub const SCHEMA_VERSION: u32 = 1;

/// Upper bounds a loaded image must respect (a hostile image must not make us allocate or
/// mount without limit).
pub const MAX_MOUNTS: usize = 1_000_000;
pub const MAX_PATH_LEN: usize = 4096;
pub const MAX_OPTION_LEN: usize = 4096;
pub const MAX_CONTENT_BYTES: u64 = 1 << 30;
pub const MAX_IMAGE_BYTES: u64 = 2 << 30;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountImage {
    pub format: String,
    pub version: u32,
    pub tree: MountTree,
    /// Captured file content of fresh superblocks (tmpfs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contents: Vec<SuperblockContent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuperblockContent {
    pub superblock: SuperblockIdx,
    pub content: Content,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("image is not valid JSON for a mount image: {0}")]
    Json(#[from] serde_json::Error),
    #[error("image: `format` is {0:?}, expected {FORMAT:?}: not a ferry mount image")]
    Format(String),
    #[error("image: unknown schema `version` {0} (this ferry reads version {SCHEMA_VERSION}); use the ferry that wrote it")]
    Version(u32),
    #[error("image: tree: {0}")]
    Tree(#[from] TreeError),
    #[error("image: {field}: {reason}")]
    Field { field: String, reason: String },
    #[error("image: larger than {limit} {what}")]
    TooLarge { what: &'static str, limit: u64 },
    #[error("reading image {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn field(field: impl Into<String>, reason: impl Into<String>) -> ImageError {
    ImageError::Field {
        field: field.into(),
        reason: reason.into(),
    }
}

impl MountImage {
    pub fn new(tree: MountTree, contents: Vec<SuperblockContent>) -> Self {
        MountImage {
            format: FORMAT.to_string(),
            version: SCHEMA_VERSION,
            tree,
            contents,
        }
    }

    /// Parse and validate.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ImageError> {
        if bytes.len() as u64 > MAX_IMAGE_BYTES {
            return Err(ImageError::TooLarge {
                what: "bytes",
                limit: MAX_IMAGE_BYTES,
            });
        }
        // Check the header first so an image of another version gets a version error, not a
        // confusing field error.
        #[derive(Deserialize)]
        struct Header {
            format: Option<String>,
            version: Option<u32>,
        }
        let header: Header = serde_json::from_slice(bytes)?;
        let format = header.format.unwrap_or_default();
        if format != FORMAT {
            return Err(ImageError::Format(format));
        }
        match header.version {
            Some(SCHEMA_VERSION) => {}
            Some(v) => return Err(ImageError::Version(v)),
            None => return Err(field("version", "missing")),
        }
        let image: MountImage = serde_json::from_slice(bytes)?;
        image.validate()?;
        Ok(image)
    }

    pub fn load(path: &std::path::Path) -> Result<Self, ImageError> {
        let bytes = std::fs::read(path).map_err(|source| ImageError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&bytes)
    }

    pub fn to_json(&self) -> Result<String, ImageError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Everything a restore relies on: structure, paths that stay inside the target, bounded
    /// sizes, resolvable references.
    pub fn validate(&self) -> Result<(), ImageError> {
        if self.format != FORMAT {
            return Err(ImageError::Format(self.format.clone()));
        }
        if self.version != SCHEMA_VERSION {
            return Err(ImageError::Version(self.version));
        }
        let tree = &self.tree;
        if tree.mounts.len() > MAX_MOUNTS {
            return Err(ImageError::TooLarge {
                what: "mounts",
                limit: MAX_MOUNTS as u64,
            });
        }
        tree.validate()?;
        for (i, m) in tree.mounts.iter().enumerate() {
            check_relative(&format!("tree.mounts[{i}].mountpoint"), &m.mountpoint)?;
            if i == 0 && !m.mountpoint.is_empty() {
                return Err(field(
                    "tree.mounts[0].mountpoint",
                    "the root mount point must be \"\"",
                ));
            }
            if i > 0 && m.mountpoint.is_empty() {
                // Only a mount stacked on the root may sit on "" as well.
                if m.parent.map(|p| tree.mount(p).mountpoint.is_empty()) != Some(true) {
                    return Err(field(format!("tree.mounts[{i}].mountpoint"), "empty"));
                }
            }
            if let Some(p) = m.parent {
                let parent_mp = &tree.mount(p).mountpoint;
                if !is_within(parent_mp, &m.mountpoint) {
                    return Err(field(
                        format!("tree.mounts[{i}].mountpoint"),
                        format!(
                            "{:?} is not inside its parent's mount point {:?}",
                            m.mountpoint, parent_mp
                        ),
                    ));
                }
            }
            check_fs_root(&format!("tree.mounts[{i}].root"), &m.root)?;
        }
        for (i, sb) in tree.superblocks.iter().enumerate() {
            let f = format!("tree.superblocks[{i}]");
            check_token(&format!("{f}.fstype"), &sb.fstype, 64)?;
            if sb.fstype.contains(',') {
                return Err(field(format!("{f}.fstype"), "contains ','"));
            }
            check_token(&format!("{f}.source"), &sb.source, MAX_PATH_LEN)?;
            for (j, o) in sb.options.iter().enumerate() {
                check_token(&format!("{f}.options[{j}]"), o, MAX_OPTION_LEN)?;
                if o.is_empty() {
                    return Err(field(format!("{f}.options[{j}]"), "empty"));
                }
            }
            if let SuperblockOrigin::External { key, hint } = &sb.origin {
                check_token(&format!("{f}.origin.key"), key, 256)?;
                if key.is_empty() || key.contains('=') {
                    return Err(field(
                        format!("{f}.origin.key"),
                        "must be non-empty without '='",
                    ));
                }
                if let Some(h) = hint {
                    check_absolute(&format!("{f}.origin.hint"), h)?;
                }
            }
        }
        for (i, g) in tree.groups.iter().enumerate() {
            if let PeerGroup::External { path } = g {
                check_absolute(&format!("tree.groups[{i}].path"), path)?;
            }
        }
        let mut seen = HashSet::new();
        let mut total: u64 = 0;
        for (i, c) in self.contents.iter().enumerate() {
            let f = format!("contents[{i}]");
            let sb = c.superblock.get();
            let Some(superblock) = tree.superblocks.get(sb) else {
                return Err(field(
                    format!("{f}.superblock"),
                    format!("no superblock {sb}"),
                ));
            };
            if superblock.origin != SuperblockOrigin::Fresh {
                return Err(field(
                    format!("{f}.superblock"),
                    "content is only for fresh superblocks",
                ));
            }
            if !seen.insert((sb, c.content.base.as_str())) {
                return Err(field(
                    format!("{f}.superblock"),
                    format!(
                        "superblock {sb} has content for base {} twice",
                        c.content.base
                    ),
                ));
            }
            check_fs_root(&format!("{f}.base"), &c.content.base)?;
            let mut paths = HashSet::new();
            for (j, e) in c.content.entries.iter().enumerate() {
                let ef = format!("{f}.entries[{j}]");
                check_relative(&format!("{ef}.path"), &e.path)?;
                if e.path.is_empty() {
                    return Err(field(format!("{ef}.path"), "empty"));
                }
                if let Some((parent, _)) = e.path.rsplit_once('/') {
                    if !paths.contains(parent) {
                        return Err(field(
                            format!("{ef}.path"),
                            "parent directory does not come first",
                        ));
                    }
                }
                if !paths.insert(e.path.as_str()) {
                    return Err(field(format!("{ef}.path"), "duplicate"));
                }
                if e.meta.mode & !0o7777 != 0 {
                    return Err(field(
                        format!("{ef}.meta.mode"),
                        "only permission bits allowed",
                    ));
                }
                match &e.kind {
                    EntryKind::File { data } => {
                        total += data.len() as u64;
                        if total > MAX_CONTENT_BYTES * 4 / 3 + 4 {
                            return Err(ImageError::TooLarge {
                                what: "content bytes",
                                limit: MAX_CONTENT_BYTES,
                            });
                        }
                    }
                    EntryKind::Symlink { target } => {
                        check_token(&format!("{ef}.target"), target, MAX_PATH_LEN)?;
                    }
                    _ => {}
                }
            }
            // Entries below a non-directory would be created through it.
            for e in &c.content.entries {
                if !matches!(e.kind, EntryKind::Dir) {
                    paths.remove(e.path.as_str());
                }
            }
            for (j, e) in c.content.entries.iter().enumerate() {
                if let Some((parent, _)) = e.path.rsplit_once('/') {
                    if !paths.contains(parent) {
                        return Err(field(
                            format!("{f}.entries[{j}].path"),
                            "parent is not a directory",
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// `path` is `""` or a normalised relative path: no leading or trailing `/`, no empty, `.` or
/// `..` components, no NUL, bounded length.
fn check_relative(name: &str, path: &str) -> Result<(), ImageError> {
    check_token(name, path, MAX_PATH_LEN)?;
    if path.is_empty() {
        return Ok(());
    }
    if path.starts_with('/') {
        return Err(field(
            name,
            format!("{path:?} is absolute; paths must be relative to the target"),
        ));
    }
    for comp in path.split('/') {
        match comp {
            "" => return Err(field(name, format!("{path:?} has an empty component"))),
            "." | ".." => {
                return Err(field(
                    name,
                    format!("{path:?} has a {comp:?} component; it could escape the target"),
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// A root inside a filesystem: `/` or `/` followed by a normalised relative path.
fn check_fs_root(name: &str, path: &str) -> Result<(), ImageError> {
    match path.strip_prefix('/') {
        Some(rest) => check_relative(name, rest),
        None => Err(field(name, format!("{path:?} must start with '/'"))),
    }
}

fn check_absolute(name: &str, path: &str) -> Result<(), ImageError> {
    check_fs_root(name, path)
}

fn check_token(name: &str, s: &str, max: usize) -> Result<(), ImageError> {
    if s.len() > max {
        return Err(field(name, format!("longer than {max} bytes")));
    }
    if s.contains('\0') {
        return Err(field(name, "contains a NUL byte"));
    }
    Ok(())
}

/// Is `child` equal to or below `parent` (both relative, normalised)?
pub fn is_within(parent: &str, child: &str) -> bool {
    parent.is_empty()
        || child == parent
        || (child.len() > parent.len()
            && child.starts_with(parent)
            && child.as_bytes()[parent.len()] == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    fn image() -> MountImage {
        let sb = Superblock {
            fstype: "tmpfs".into(),
            source: "t".into(),
            options: vec!["size=1024k".into()],
            readonly: false,
            origin: SuperblockOrigin::Fresh,
        };
        let m = |parent: Option<u32>, mp: &str| Mount {
            parent: parent.map(MountIdx),
            mountpoint: mp.into(),
            superblock: SuperblockIdx(0),
            root: "/".into(),
            root_deleted: false,
            is_file: false,
            flags: MountFlags::default(),
            propagation: Propagation::default(),
        };
        MountImage::new(
            MountTree {
                mounts: vec![m(None, ""), m(Some(0), "a/b")],
                superblocks: vec![sb],
                groups: vec![],
            },
            vec![],
        )
    }

    fn roundtrip(img: &MountImage) -> Result<MountImage, ImageError> {
        MountImage::from_json(img.to_json().expect("serialize").as_bytes())
    }

    #[test]
    fn roundtrip_is_identity() {
        let img = image();
        assert_eq!(roundtrip(&img).expect("valid"), img);
    }

    #[test]
    fn escaping_mountpoints_are_refused_naming_the_field() {
        for bad in ["../x", "/etc", "a/../../x", "a//b", "a/./b", "a/"] {
            let mut img = image();
            img.tree.mounts[1].mountpoint = bad.into();
            let err = roundtrip(&img).expect_err(bad).to_string();
            assert!(err.contains("tree.mounts[1].mountpoint"), "{bad}: {err}");
        }
    }

    #[test]
    fn child_outside_parent_is_refused() {
        let mut img = image();
        img.tree.mounts.push(Mount {
            parent: Some(MountIdx(1)),
            mountpoint: "c".into(),
            ..img.tree.mounts[1].clone()
        });
        let err = roundtrip(&img).expect_err("outside").to_string();
        assert!(err.contains("not inside its parent"), "{err}");
    }

    #[test]
    fn unknown_version_and_format_are_refused() {
        let mut img = image();
        img.version = 99;
        assert!(matches!(roundtrip(&img), Err(ImageError::Version(99))));
        let mut img = image();
        img.format = "other".into();
        assert!(matches!(roundtrip(&img), Err(ImageError::Format(_))));
    }

    #[test]
    fn truncated_and_garbage_input_is_an_error_not_a_panic() {
        let json = image().to_json().expect("serialize");
        for cut in [0, 1, json.len() / 3, json.len() / 2, json.len() - 1] {
            assert!(MountImage::from_json(&json.as_bytes()[..cut]).is_err());
        }
        assert!(MountImage::from_json(b"\xff\xfe").is_err());
        assert!(MountImage::from_json(b"[]").is_err());
    }

    #[test]
    fn references_to_missing_things_are_refused() {
        let mut img = image();
        img.tree.mounts[1].superblock = SuperblockIdx(5);
        assert!(roundtrip(&img).is_err());
        let mut img = image();
        img.tree.mounts[1].parent = Some(MountIdx(9));
        assert!(roundtrip(&img).is_err());
        let mut img = image();
        img.contents.push(SuperblockContent {
            superblock: SuperblockIdx(3),
            content: Content::default(),
        });
        let err = roundtrip(&img).expect_err("missing sb").to_string();
        assert!(err.contains("contents[0].superblock"), "{err}");
    }

    #[test]
    fn content_paths_are_checked() {
        use crate::content::{Entry, Meta};
        let meta = Meta {
            mode: 0o644,
            uid: 0,
            gid: 0,
        };
        for (path, ok) in [("a", true), ("../a", false), ("/a", false), ("x/a", false)] {
            let mut img = image();
            img.contents.push(SuperblockContent {
                superblock: SuperblockIdx(0),
                content: Content {
                    base: "/".into(),
                    base_meta: None,
                    entries: vec![Entry {
                        path: path.into(),
                        meta,
                        kind: EntryKind::Dir,
                    }],
                },
            });
            assert_eq!(roundtrip(&img).is_ok(), ok, "{path}");
        }
    }

    #[test]
    fn within() {
        assert!(is_within("", "a"));
        assert!(is_within("a", "a/b"));
        assert!(is_within("a", "a"));
        assert!(!is_within("a", "ab"));
        assert!(!is_within("a/b", "a"));
    }
}
