//! The on-disk form of a mount tree: versioned serde JSON, host-independent (indices and
//! symbolic names only), validated completely on load so that nothing a hostile image says can
//! reach the kernel before it is known to be well-formed and inside the target.

use crate::content::{Content, Entry, EntryKind};
use crate::model::{MountTree, PeerGroup, SuperblockIdx, SuperblockOrigin, TreeError};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// Identifies the format, so that a random JSON file is not mistaken for an image.
pub const FORMAT: &str = "ferry-mountv2";
/// Bumped on every incompatible change; loaders refuse other versions, except that older ones
/// are read and brought to this one.
/// Version 2: content entry paths and symlink targets are escaped byte strings
/// ([`crate::content::escape_name`]).
/// Version 3: so are mount points, mount roots, content bases, outside group paths and
/// external hints: one escaping for every path in the image. In versions 1 and 2 those were
/// text in which a backslash meant itself (and mount points had to be UTF-8); version 1 kept
/// content names that way too.
pub const SCHEMA_VERSION: u32 = 3;

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
    #[error("image: unknown schema `version` {0} (this ferry reads versions 1 to {SCHEMA_VERSION}); use the ferry that wrote it")]
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

/// Mount points: relative, escaped, inside the parent's, one mount per point and parent,
/// and roots that are paths in their filesystems.
fn check_mounts(tree: &MountTree) -> Result<(), ImageError> {
    let mut points = HashMap::new();
    for (i, m) in tree.mounts.iter().enumerate() {
        // The kernel stacks a second mount on a point as a child of the first: siblings on
        // one point cannot exist, and a restore would stack them, making another tree.
        if let Some(p) = m.parent {
            if let Some(other) = points.insert((p, m.mountpoint.as_str()), i) {
                return Err(field(
                    format!("tree.mounts[{i}].mountpoint"),
                    format!(
                        "{:?} is also the mount point of mounts[{other}] with the same \
                         parent; a mount stacked on another has that one as its parent",
                        m.mountpoint
                    ),
                ));
            }
        }
        check_relative(&format!("tree.mounts[{i}].mountpoint"), &m.mountpoint)?;
        check_escaped(&format!("tree.mounts[{i}].mountpoint"), &m.mountpoint)?;
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
        check_escaped(&format!("tree.mounts[{i}].root"), &m.root)?;
    }
    Ok(())
}

/// Superblocks: bounded tokens for type, source and options, and well-formed external keys.
fn check_superblocks(tree: &MountTree) -> Result<(), ImageError> {
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
                check_escaped(&format!("{f}.origin.hint"), h)?;
            }
        }
    }
    Ok(())
}

/// Peer groups outside the tree are named by absolute, escaped paths.
fn check_groups(tree: &MountTree) -> Result<(), ImageError> {
    for (i, g) in tree.groups.iter().enumerate() {
        if let PeerGroup::External { path } = g {
            check_absolute(&format!("tree.groups[{i}].path"), path)?;
            check_escaped(&format!("tree.groups[{i}].path"), path)?;
        }
    }
    Ok(())
}

/// The entries of one content (field prefix `f`): relative escaped paths, each once, parents
/// first and directories, permission bits only, bounded data (added to `total`).
fn check_entries(f: &str, content: &Content, total: &mut u64) -> Result<(), ImageError> {
    let mut paths = HashSet::new();
    for (j, e) in content.entries.iter().enumerate() {
        let ef = format!("{f}.entries[{j}]");
        check_relative(&format!("{ef}.path"), &e.path)?;
        if e.path.is_empty() {
            return Err(field(format!("{ef}.path"), "empty"));
        }
        check_escaped(&format!("{ef}.path"), &e.path)?;
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
                *total += data.len() as u64;
                if *total > MAX_CONTENT_BYTES * 4 / 3 + 4 {
                    return Err(ImageError::TooLarge {
                        what: "content bytes",
                        limit: MAX_CONTENT_BYTES,
                    });
                }
            }
            EntryKind::Symlink { target } => {
                check_token(&format!("{ef}.target"), target, MAX_PATH_LEN)?;
                check_escaped(&format!("{ef}.target"), target)?;
            }
            _ => {}
        }
    }
    // Entries below a non-directory would be created through it.
    for e in &content.entries {
        if !matches!(e.kind, EntryKind::Dir) {
            paths.remove(e.path.as_str());
        }
    }
    for (j, e) in content.entries.iter().enumerate() {
        if let Some((parent, _)) = e.path.rsplit_once('/') {
            if !paths.contains(parent) {
                return Err(field(
                    format!("{f}.entries[{j}].path"),
                    "parent is not a directory",
                ));
            }
        }
    }
    Ok(())
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
        let version = match header.version {
            Some(v @ 1..=SCHEMA_VERSION) => v,
            Some(v) => return Err(ImageError::Version(v)),
            None => return Err(field("version", "missing")),
        };
        let mut image: MountImage = serde_json::from_slice(bytes)?;
        if version == 1 {
            image.upgrade_from_v1();
        }
        if version <= 2 {
            image.upgrade_from_v2();
        }
        image.validate()?;
        Ok(image)
    }

    /// Version 1 kept content names as text in which a backslash was itself: escape it.
    fn upgrade_from_v1(&mut self) {
        let escape = |s: &mut String| *s = s.replace('\\', "\\\\");
        for c in &mut self.contents {
            for e in &mut c.content.entries {
                escape(&mut e.path);
                if let EntryKind::Symlink { target } = &mut e.kind {
                    escape(target);
                }
            }
        }
        self.version = 2;
    }

    /// Versions 1 and 2 kept mount points, roots, content bases and host paths as text in
    /// which a backslash was itself (and every byte was UTF-8): escape the backslashes.
    fn upgrade_from_v2(&mut self) {
        let escape = |s: &mut String| *s = s.replace('\\', "\\\\");
        for m in &mut self.tree.mounts {
            escape(&mut m.mountpoint);
            escape(&mut m.root);
        }
        for sb in &mut self.tree.superblocks {
            if let SuperblockOrigin::External {
                hint: Some(hint), ..
            } = &mut sb.origin
            {
                escape(hint);
            }
        }
        for g in &mut self.tree.groups {
            if let PeerGroup::External { path } = g {
                escape(path);
            }
        }
        for c in &mut self.contents {
            escape(&mut c.content.base);
        }
        self.version = SCHEMA_VERSION;
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
        check_mounts(tree)?;
        check_superblocks(tree)?;
        check_groups(tree)?;
        self.check_contents()?;
        self.check_contents_together()
    }

    /// Each content: for a fresh tmpfs or ramfs superblock, once per base, with entries that
    /// stay inside it and a bounded size in all.
    fn check_contents(&self) -> Result<(), ImageError> {
        let tree = &self.tree;
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
            // Content is written into the new superblock: only into a filesystem that holds
            // nothing but what is written (a new proc or sysfs shows the host's kernel state).
            if superblock.origin != SuperblockOrigin::Fresh
                || !matches!(superblock.fstype.as_str(), "tmpfs" | "ramfs")
            {
                return Err(field(
                    format!("{f}.superblock"),
                    format!(
                        "content is only for fresh tmpfs and ramfs superblocks, not {} {}",
                        match superblock.origin {
                            SuperblockOrigin::Fresh => "fresh",
                            SuperblockOrigin::External { .. } => "external",
                        },
                        superblock.fstype
                    ),
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
            check_escaped(&format!("{f}.base"), &c.content.base)?;
            check_entries(&f, &c.content, &mut total)?;
        }
        Ok(())
    }

    /// Contents of one superblock are written one after the other into the same filesystem,
    /// and mount roots are walked through them: a symlink or file one content makes must never
    /// be where another content, or a mount root, expects a directory. Where contents overlap
    /// they must agree entry for entry, and a mount root below a base must run through
    /// directories of that content only.
    fn check_contents_together(&self) -> Result<(), ImageError> {
        let mut by_sb: HashMap<SuperblockIdx, Vec<usize>> = HashMap::new();
        for (i, c) in self.contents.iter().enumerate() {
            by_sb.entry(c.superblock).or_default().push(i);
        }
        for list in by_sb.values() {
            self.check_overlaps(list)?;
        }
        self.check_roots_through_contents(&by_sb)
    }

    /// Every path of one superblock's contents (`list`) any content speaks of, with what it
    /// is there. A base and its ancestors are directories. Where contents overlap (a dump that
    /// had to read one view through its path and another through a clone captures some files
    /// twice) they must agree exactly, so nothing one of them makes can stand where another
    /// expects a directory.
    fn check_overlaps(&self, list: &[usize]) -> Result<(), ImageError> {
        let mut seen: HashMap<String, (usize, Option<&Entry>)> = HashMap::new();
        for &i in list {
            let content = &self.contents[i].content;
            let base = content.base.trim_start_matches('/');
            let mut dirs: Vec<&str> = base.match_indices('/').map(|(p, _)| &base[..p]).collect();
            if !base.is_empty() {
                dirs.push(base);
            }
            let items = dirs
                .into_iter()
                .map(|d| (d.to_string(), None, format!("contents[{i}].base")))
                .chain(content.entries.iter().enumerate().map(|(k, e)| {
                    let abs = if base.is_empty() {
                        e.path.clone()
                    } else {
                        format!("{base}/{}", e.path)
                    };
                    (abs, Some(e), format!("contents[{i}].entries[{k}].path"))
                }));
            for (abs, entry, name) in items {
                let is_dir = |x: Option<&Entry>| x.is_none_or(|e| e.kind == EntryKind::Dir);
                if let Some((j, other)) = seen.get(&abs) {
                    let agree = (is_dir(entry) && is_dir(*other))
                        || (entry.is_some()
                            && entry.map(|e| (&e.kind, e.meta))
                                == other.map(|e| (&e.kind, e.meta)));
                    if !agree && *j != i {
                        return Err(field(
                            name,
                            format!(
                                "/{abs} is a {} here but a {} in contents[{j}] of the same \
                                 superblock; overlapping contents must agree",
                                kind_name(entry),
                                kind_name(*other)
                            ),
                        ));
                    }
                } else {
                    seen.insert(abs, (i, entry));
                }
            }
        }
        Ok(())
    }

    /// A mount root below a content's base runs through directories of that content only.
    fn check_roots_through_contents(
        &self,
        by_sb: &HashMap<SuperblockIdx, Vec<usize>>,
    ) -> Result<(), ImageError> {
        for (mi, m) in self.tree.mounts.iter().enumerate() {
            let Some(list) = by_sb.get(&m.superblock) else {
                continue;
            };
            let root = m.root.trim_start_matches('/');
            for &ci in list {
                let content = &self.contents[ci].content;
                let base = content.base.trim_start_matches('/');
                if !is_within(base, root) || root == base {
                    continue;
                }
                let rel = if base.is_empty() {
                    root
                } else {
                    &root[base.len() + 1..]
                };
                let kinds: HashMap<&str, &EntryKind> = content
                    .entries
                    .iter()
                    .map(|e| (e.path.as_str(), &e.kind))
                    .collect();
                let ends = rel
                    .match_indices('/')
                    .map(|(pos, _)| pos)
                    .chain([rel.len()]);
                for end in ends {
                    let prefix = &rel[..end];
                    let last = end == rel.len();
                    let ok = match kinds.get(prefix) {
                        None | Some(EntryKind::Dir) => true,
                        Some(EntryKind::File { .. }) => last && m.is_file,
                        Some(_) => false,
                    };
                    if !ok {
                        return Err(field(
                            format!("tree.mounts[{mi}].root"),
                            format!(
                                "{:?} runs through {prefix:?} of contents[{ci}], which is not a \
                                 directory",
                                m.root
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

fn kind_name(entry: Option<&Entry>) -> &'static str {
    match entry.map(|e| &e.kind) {
        None | Some(EntryKind::Dir) => "directory",
        Some(EntryKind::File { .. }) => "file",
        Some(EntryKind::Symlink { .. }) => "symlink",
        Some(EntryKind::Fifo) => "fifo",
        Some(EntryKind::Device { .. }) => "device node",
        Some(EntryKind::Socket) => "socket",
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

/// A name in the escaped form of [`crate::content::escape_name`] whose bytes hold no NUL
/// (escapes only stand for bytes 80 to ff, so `/` and NUL cannot hide in one).
fn check_escaped(name: &str, s: &str) -> Result<(), ImageError> {
    crate::content::unescape_name(s)
        .map(drop)
        .map_err(|reason| field(name, reason))
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
        let m =
            |parent: Option<u32>, mp: &str| Mount::new(parent.map(MountIdx), mp, SuperblockIdx(0));
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

    fn content(base: &str, entries: Vec<crate::content::Entry>) -> SuperblockContent {
        SuperblockContent {
            superblock: SuperblockIdx(0),
            content: Content {
                base: base.into(),
                base_meta: None,
                entries,
            },
        }
    }

    fn entry(path: &str, kind: EntryKind) -> crate::content::Entry {
        crate::content::Entry {
            path: path.into(),
            meta: crate::content::Meta {
                mode: 0o755,
                uid: 0,
                gid: 0,
            },
            kind,
        }
    }

    #[test]
    fn overlapping_contents_must_agree() {
        let symlink = || EntryKind::Symlink {
            target: "/etc/shadow".into(),
        };
        // The attack: a symlink in one content where the other wants a directory, or a
        // base running through it, in either order.
        let cases = [
            (
                (
                    "/",
                    vec![entry("d", EntryKind::Dir), entry("d/s", symlink())],
                ),
                ("/d", vec![entry("s", EntryKind::Dir)]),
            ),
            (
                ("/d", vec![entry("s", EntryKind::Dir)]),
                (
                    "/",
                    vec![entry("d", EntryKind::Dir), entry("d/s", symlink())],
                ),
            ),
            (
                (
                    "/",
                    vec![entry("d", EntryKind::Dir), entry("d/s", symlink())],
                ),
                ("/d/s/x", vec![]),
            ),
            (
                ("/d/s/x", vec![]),
                (
                    "/",
                    vec![entry("d", EntryKind::Dir), entry("d/s", symlink())],
                ),
            ),
            (
                ("/", vec![entry("d", EntryKind::File { data: "".into() })]),
                ("/d", vec![]),
            ),
        ];
        for ((a, ea), (b, eb)) in cases {
            let mut img = image();
            img.contents = vec![content(a, ea), content(b, eb)];
            let err = roundtrip(&img)
                .expect_err("disagreeing overlap")
                .to_string();
            assert!(
                err.contains("contents[1]") && err.contains("must agree"),
                "{a} {b}: {err}"
            );
        }
        // What a dump makes when it reads one view through a clone and a wider one through
        // its path: the same entries twice.
        let file = || EntryKind::File {
            data: "eA==".into(),
        };
        let mut img = image();
        img.contents = vec![
            content("/aux", vec![entry("f", file())]),
            content(
                "/",
                vec![entry("aux", EntryKind::Dir), entry("aux/f", file())],
            ),
        ];
        roundtrip(&img).expect("agreeing overlap");
        img.contents = vec![content("/d", vec![]), content("/e", vec![])];
        roundtrip(&img).expect("disjoint bases are fine");
    }

    #[test]
    fn mount_root_through_a_content_symlink_is_refused() {
        let mut img = image();
        img.tree.mounts[1].root = "/a/s/x".into();
        img.contents = vec![content(
            "/a",
            vec![entry(
                "s",
                EntryKind::Symlink {
                    target: "/etc".into(),
                },
            )],
        )];
        let err = roundtrip(&img).expect_err("through a symlink").to_string();
        assert!(err.contains("tree.mounts[1].root"), "{err}");
        img.contents[0].content.entries[0].kind = EntryKind::Dir;
        roundtrip(&img).expect("through a directory is fine");
    }

    #[test]
    fn content_only_for_tmpfs_and_ramfs() {
        let mut img = image();
        img.tree.superblocks[0].fstype = "proc".into();
        img.contents = vec![content("/", vec![])];
        let err = roundtrip(&img).expect_err("proc content").to_string();
        assert!(err.contains("contents[0].superblock"), "{err}");
    }

    /// Versions 1 and 2 wrote mount points, roots, bases and host paths as text where a
    /// backslash was itself: they load with the backslash escaped, so they name the same
    /// bytes in version 3's form.
    #[test]
    fn version_2_paths_are_upgraded() {
        let mut img = image();
        img.tree.mounts[1].mountpoint = "a\\b/c d".into();
        img.tree.mounts[1].root = "/r\\s".into();
        img.tree.groups.push(PeerGroup::External {
            path: "/o\\p".into(),
        });
        img.tree.mounts[1].propagation.master = Some(GroupIdx(0));
        img.tree.superblocks.push(Superblock {
            fstype: "ext4".into(),
            source: "/dev/x".into(),
            options: vec![],
            readonly: false,
            origin: SuperblockOrigin::External {
                key: "ext4:/dev/x".into(),
                hint: Some("/h\\int".into()),
            },
        });
        img.contents = vec![SuperblockContent {
            superblock: SuperblockIdx(0),
            content: Content {
                base: "/b\\ase".into(),
                base_meta: None,
                entries: vec![],
            },
        }];
        let mut json: serde_json::Value =
            serde_json::from_str(&img.to_json().expect("serialize")).expect("json");
        json["version"] = 2.into();
        let up = MountImage::from_json(json.to_string().as_bytes()).expect("v2 loads");
        assert_eq!(up.version, SCHEMA_VERSION);
        assert_eq!(up.tree.mounts[1].mountpoint, "a\\\\b/c d");
        assert_eq!(up.tree.mounts[1].root, "/r\\\\s");
        assert_eq!(
            up.tree.groups[0],
            PeerGroup::External {
                path: "/o\\\\p".into()
            }
        );
        assert_eq!(
            up.tree.superblocks[1].origin,
            SuperblockOrigin::External {
                key: "ext4:/dev/x".into(),
                hint: Some("/h\\\\int".into())
            }
        );
        assert_eq!(up.contents[0].content.base, "/b\\\\ase");
        // The same text as version 3 is not in canonical form: refused, naming the field.
        let err = MountImage::from_json(img.to_json().expect("serialize").as_bytes())
            .expect_err("a lone backslash in version 3")
            .to_string();
        assert!(err.contains("tree.mounts[1].mountpoint"), "{err}");
    }

    /// Every path field takes bytes that are not UTF-8 in the escaped form, and refuses
    /// escapes the form never writes.
    #[test]
    fn paths_are_escaped_bytes() {
        let mut img = image();
        img.tree.mounts[1].mountpoint = "a\\x80/\\xff\\xfe b\\\\c\nd".into();
        img.tree.mounts[1].root = "/\\xc3".into();
        assert_eq!(roundtrip(&img).expect("valid"), img);
        for (bad, what) in [
            ("a\\x41", "mountpoint"),
            ("a\\q", "mountpoint"),
            ("a\\xc3\\xa9", "mountpoint"),
        ] {
            let mut img = image();
            img.tree.mounts[1].mountpoint = bad.into();
            let err = roundtrip(&img).expect_err(bad).to_string();
            assert!(
                err.contains(&format!("tree.mounts[1].{what}")),
                "{bad}: {err}"
            );
            let mut img = image();
            img.tree.mounts[1].root = format!("/{bad}");
            let err = roundtrip(&img).expect_err(bad).to_string();
            assert!(err.contains("tree.mounts[1].root"), "{bad}: {err}");
        }
    }
}
