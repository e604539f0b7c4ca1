//! Read a mount namespace: /proc/PID/mountinfo everywhere, statmount/listmount where the kernel
//! has them. Output: a raw table ([`RawMount`]) and, for a chosen root path, a [`MountTree`].

use crate::content::escape_path;
use crate::model::{
    Atime, GroupIdx, Mount, MountFlags, MountIdx, MountTree, PeerGroup, Propagation, Superblock,
    SuperblockIdx, SuperblockOrigin,
};
use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

mod statmount;

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
pub fn read_table(pid: Option<u32>, source: ScanSource) -> Result<Vec<RawMount>, ScanError> {
    let use_statmount = match source {
        ScanSource::Mountinfo => false,
        ScanSource::Statmount => true,
        ScanSource::Auto => pid.is_none() && statmount::available(),
    };
    if use_statmount {
        if pid.is_some() {
            return Err(ScanError::Other(
                "statmount scans only the caller's namespace; enter it first or use mountinfo"
                    .into(),
            ));
        }
        return statmount::read_table();
    }
    let path = match pid {
        Some(p) => PathBuf::from(format!("/proc/{p}/mountinfo")),
        None => PathBuf::from("/proc/self/mountinfo"),
    };
    read_mountinfo(&path)
}

/// Read and parse one mountinfo file (`/proc/PID/mountinfo`): the one reader of that format.
/// The file is taken as bytes, so mount points that are not UTF-8 come out as they are.
pub fn read_mountinfo(path: &Path) -> Result<Vec<RawMount>, ScanError> {
    let bytes = std::fs::read(path).map_err(|source| ScanError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_mountinfo(&bytes, path)
}

/// Undo the kernel's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134`
/// backslash, and any other `\NNN`).
pub fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\'
            && i + 3 < field.len()
            && field[i + 1..i + 4]
                .iter()
                .all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (field[i + 1] - b'0') as u32 * 64
                + (field[i + 2] - b'0') as u32 * 8
                + (field[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(field[i]);
            i += 1;
        }
    }
    out
}

fn path_of(field: &[u8]) -> PathBuf {
    PathBuf::from(OsString::from_vec(unescape(field)))
}

fn text_of(field: &[u8]) -> String {
    String::from_utf8_lossy(&unescape(field)).into_owned()
}

/// Parse mountinfo text. Fields are separated by single spaces (an empty source leaves an
/// empty field), optional fields run until a lone `-`.
pub fn parse_mountinfo(bytes: &[u8], path: &Path) -> Result<Vec<RawMount>, ScanError> {
    let mut out = Vec::new();
    for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let bad = |reason: &str| ScanError::Parse {
            path: path.to_path_buf(),
            line: n + 1,
            reason: reason.to_string(),
        };
        let fields: Vec<&[u8]> = line.split(|b| *b == b' ').collect();
        let sep = fields
            .iter()
            .position(|f| *f == b"-")
            .ok_or_else(|| bad("no ' - ' separator"))?;
        if sep < 6 || fields.len() < sep + 4 {
            return Err(bad("too few fields"));
        }
        let num = |f: &[u8], what: &str| -> Result<u64, ScanError> {
            std::str::from_utf8(f)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad(&format!("{what} is not a number")))
        };
        let id = num(fields[0], "mount id")?;
        let parent_id = num(fields[1], "parent id")?;
        let dev_text = std::str::from_utf8(fields[2]).map_err(|_| bad("bad device"))?;
        let (maj, min) = dev_text
            .split_once(':')
            .ok_or_else(|| bad("device is not major:minor"))?;
        let dev = (
            maj.parse().map_err(|_| bad("bad major"))?,
            min.parse().map_err(|_| bad("bad minor"))?,
        );
        let mut root_raw = fields[3].to_vec();
        let root_deleted = root_raw.ends_with(b"//deleted");
        if root_deleted {
            root_raw.truncate(root_raw.len() - b"//deleted".len());
            if root_raw.is_empty() {
                root_raw.push(b'/');
            }
        }
        let mut raw = RawMount {
            id,
            parent_id,
            dev,
            root: path_of(&root_raw),
            root_deleted,
            mountpoint: path_of(fields[4]),
            mount_options: text_of(fields[5]).split(',').map(str::to_string).collect(),
            shared: None,
            master: None,
            propagate_from: None,
            unbindable: false,
            fstype: text_of(fields[sep + 1]),
            source: text_of(fields[sep + 2]),
            super_options: text_of(fields[sep + 3])
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        };
        for opt in &fields[6..sep] {
            let opt = std::str::from_utf8(opt).map_err(|_| bad("bad optional field"))?;
            if let Some(v) = opt.strip_prefix("shared:") {
                raw.shared = Some(num(v.as_bytes(), "shared group")?);
            } else if let Some(v) = opt.strip_prefix("master:") {
                raw.master = Some(num(v.as_bytes(), "master group")?);
            } else if let Some(v) = opt.strip_prefix("propagate_from:") {
                raw.propagate_from = Some(num(v.as_bytes(), "propagate_from")?);
            } else if opt == "unbindable" {
                raw.unbindable = true;
            }
        }
        out.push(raw);
    }
    Ok(out)
}

/// Filesystem types the engine creates afresh on restore.
pub fn is_fresh_fstype(fstype: &str) -> bool {
    matches!(
        fstype,
        "tmpfs" | "ramfs" | "proc" | "sysfs" | "devpts" | "mqueue" | "cgroup" | "cgroup2"
    )
}

/// Superblock options worth keeping for recreating a superblock (without rw/ro and options
/// the kernel only reports).
fn superblock_options(fstype: &str, opts: &[String]) -> Vec<String> {
    opts.iter()
        .filter(|o| o.as_str() != "rw" && o.as_str() != "ro")
        // sysfs/proc/mqueue report nothing settable beyond these; cgroup v1 reports its
        // controllers, which are exactly what mounting it again needs.
        .filter(|o| !(fstype == "tmpfs" && o.as_str() == "inode64"))
        .cloned()
        .collect()
}

fn mount_flags(opts: &[String]) -> MountFlags {
    let has = |w: &str| opts.iter().any(|o| o == w);
    let atime = if has("noatime") {
        Atime::Noatime
    } else if has("strictatime") {
        Atime::Strictatime
    } else if has("nodiratime") {
        Atime::Nodiratime
    } else {
        Atime::Relatime
    };
    MountFlags {
        readonly: has("ro"),
        nosuid: has("nosuid"),
        nodev: has("nodev"),
        noexec: has("noexec"),
        nosymfollow: has("nosymfollow"),
        atime,
        idmapped: has("idmapped"),
    }
}

/// Build the tree of the mount at `root` (the top-most mount on that path) and everything
/// below it, in parent-first order with siblings in creation order.
pub fn tree_at(table: &[RawMount], root: &Path) -> Result<MountTree, ScanError> {
    let (order, index_of) = walk_order(table, root)?;
    let mut groups: Vec<PeerGroup> = Vec::new();
    let mut group_of = internal_groups(table, &order, &mut groups);
    let mut superblocks: Vec<Superblock> = Vec::new();
    let mut sb_of_dev: HashMap<(u32, u32), SuperblockIdx> = HashMap::new();
    let mut mounts = Vec::with_capacity(order.len());
    for (pos, &row) in order.iter().enumerate() {
        let r = &table[row];
        let sb = *sb_of_dev.entry(r.dev).or_insert_with(|| {
            superblocks.push(new_superblock(r));
            SuperblockIdx(superblocks.len() as u32 - 1)
        });
        let master = r.master.map(|m| {
            *group_of.entry(m).or_insert_with(|| {
                groups.push(PeerGroup::External {
                    path: outside_member(table, m, r),
                });
                GroupIdx(groups.len() as u32 - 1)
            })
        });
        let mountpoint = if pos == 0 {
            String::new()
        } else {
            relative(root, &r.mountpoint).ok_or_else(|| {
                ScanError::Other(format!(
                    "mount at {} is below {} in the tree but not in the path",
                    r.mountpoint.display(),
                    root.display()
                ))
            })?
        };
        mounts.push(Mount {
            parent: if pos == 0 {
                None
            } else {
                index_of.get(&r.parent_id).copied()
            },
            mountpoint,
            superblock: sb,
            root: escape_path(&r.root),
            root_deleted: r.root_deleted,
            is_file: false,
            flags: mount_flags(&r.mount_options),
            propagation: Propagation {
                shared: r.shared.and_then(|g| group_of.get(&g).copied()),
                master,
                unbindable: r.unbindable,
            },
        });
    }
    mark_file_mounts(table, &order, &mut mounts);
    key_external_superblocks(table, &sb_of_dev, &mut superblocks);
    let tree = MountTree {
        mounts,
        superblocks,
        groups,
    };
    tree.validate()
        .map_err(|e| ScanError::Other(format!("scanned tree is inconsistent: {e}")))?;
    Ok(tree)
}

/// The rows of the mount at `root` and below it, breadth first (parents before children,
/// siblings in creation order), and the index each mount id gets in the tree.
fn walk_order(
    table: &[RawMount],
    root: &Path,
) -> Result<(Vec<usize>, HashMap<u64, MountIdx>), ScanError> {
    let mut children: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, r) in table.iter().enumerate() {
        if r.parent_id != r.id {
            children.entry(r.parent_id).or_default().push(i);
        }
    }
    for kids in children.values_mut() {
        // Ids grow with creation (unique ids always; legacy ids as long as none were reused,
        // and table order is creation order anyway).
        kids.sort_by_key(|i| table[*i].id);
    }
    let covered = |r: &RawMount| {
        children
            .get(&r.id)
            .is_some_and(|kids| kids.iter().any(|k| table[*k].mountpoint == r.mountpoint))
    };
    let top = table
        .iter()
        .position(|r| r.mountpoint == root && !covered(r))
        .ok_or_else(|| ScanError::NoMountAt(root.to_path_buf()))?;

    // Breadth-first from the root: parents always precede children.
    let mut order = vec![top];
    let mut index_of: HashMap<u64, MountIdx> = HashMap::new();
    index_of.insert(table[top].id, MountIdx(0));
    let mut i = 0;
    while i < order.len() {
        let r = &table[order[i]];
        if let Some(kids) = children.get(&r.id) {
            for k in kids {
                // A table the kernel wrote has unique ids and no cycles; anything else (a
                // garbled or hand-made table) must not walk forever.
                let id = table[*k].id;
                if index_of.insert(id, MountIdx(order.len() as u32)).is_some() {
                    return Err(ScanError::Other(format!(
                        "mount table: mount id {id} is reached twice below {} (a duplicate id \
                         or a cycle of parents); it is not a table the kernel wrote",
                        root.display()
                    )));
                }
                order.push(*k);
            }
        }
        i += 1;
    }

    Ok((order, index_of))
}

/// The peer groups with a member in the tree, which are internal (groups that only master a
/// mount of the tree are external, added as they are met).
fn internal_groups(
    table: &[RawMount],
    order: &[usize],
    groups: &mut Vec<PeerGroup>,
) -> HashMap<u64, GroupIdx> {
    let mut group_of: HashMap<u64, GroupIdx> = HashMap::new();
    for &row in order {
        if let Some(g) = table[row].shared {
            group_of.entry(g).or_insert_with(|| {
                groups.push(PeerGroup::Internal);
                GroupIdx(groups.len() as u32 - 1)
            });
        }
    }
    group_of
}

/// The superblock of mount `r`, fresh or external (its key is given later).
fn new_superblock(r: &RawMount) -> Superblock {
    let readonly = r.super_options.iter().any(|o| o == "ro");
    let origin = if is_fresh_fstype(&r.fstype) {
        SuperblockOrigin::Fresh
    } else {
        SuperblockOrigin::External {
            key: String::new(),
            hint: None,
        }
    };
    Superblock {
        fstype: r.fstype.clone(),
        source: r.source.clone(),
        options: superblock_options(&r.fstype, &r.super_options),
        readonly,
        origin,
    }
}

/// File mounts: a mount whose mount point is a regular file (stat through the path sees the
/// topmost mount, which for a file bind is a file too).
fn mark_file_mounts(table: &[RawMount], order: &[usize], mounts: &mut [Mount]) {
    for (pos, &row) in order.iter().enumerate() {
        let r = &table[row];
        match std::fs::symlink_metadata(&r.mountpoint) {
            Ok(meta) => mounts[pos].is_file = meta.file_type().is_file(),
            // Gone since the table was read (or out of reach): taken for a directory, and said.
            Err(e) => tracing::warn!(
                mountpoint = %r.mountpoint.display(),
                error = %e,
                "cannot stat the mount point; recorded as a directory mount"
            ),
        }
    }
}

/// External superblocks: a key from what they are, and where their root is visible.
fn key_external_superblocks(
    table: &[RawMount],
    sb_of_dev: &HashMap<(u32, u32), SuperblockIdx>,
    superblocks: &mut [Superblock],
) {
    let mut keys: HashMap<String, u32> = HashMap::new();
    for (dev, sb) in sb_of_dev {
        let s = &mut superblocks[sb.get()];
        if let SuperblockOrigin::External { .. } = s.origin {
            let base = format!("{}:{}", s.fstype, s.source);
            let n = keys.entry(base.clone()).or_insert(0);
            *n += 1;
            let key = if *n == 1 { base } else { format!("{base}#{n}") };
            let hint = table
                .iter()
                .filter(|r| r.dev == *dev && r.root == Path::new("/") && !r.root_deleted)
                .min_by_key(|r| r.mountpoint.as_os_str().len())
                .map(|r| escape_path(&r.mountpoint));
            s.origin = SuperblockOrigin::External { key, hint };
        }
    }
}

/// A mount outside the tree that stands for group `group`: a member (shortest root, then
/// shortest path), else a member of the group the kernel says propagation comes from.
fn outside_member(table: &[RawMount], group: u64, slave: &RawMount) -> String {
    let pick = |g: u64| {
        table
            .iter()
            .filter(|r| r.shared == Some(g))
            .min_by_key(|r| (r.root.as_os_str().len(), r.mountpoint.as_os_str().len()))
            .map(|r| escape_path(&r.mountpoint))
    };
    pick(group)
        .or_else(|| slave.propagate_from.and_then(pick))
        .unwrap_or_else(|| escape_path(&slave.mountpoint))
}

fn relative(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    Some(escape_path(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] = b"22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
30 22 0:30 / /t rw,nosuid shared:5 - tmpfs t rw,size=1024k,mode=755\n\
31 30 0:30 /a /t/with\\040space\\011tab\\012nl\\134bs rw,noatime master:5 - tmpfs t rw,size=1024k\n\
32 30 0:30 /gone//deleted /t/g ro shared:7 master:5 propagate_from:5 unbindable - tmpfs  rw\n";

    #[test]
    fn parses_escapes_optional_fields_and_empty_source() {
        let t = parse_mountinfo(SAMPLE, Path::new("x")).expect("parse");
        assert_eq!(t.len(), 4);
        assert_eq!(t[2].mountpoint, PathBuf::from("/t/with space\ttab\nnl\\bs"));
        assert_eq!(t[2].master, Some(5));
        assert_eq!(t[3].root, PathBuf::from("/gone"));
        assert!(t[3].root_deleted);
        assert_eq!(t[3].source, "");
        assert_eq!(t[3].fstype, "tmpfs");
        assert_eq!(
            (t[3].shared, t[3].master, t[3].propagate_from),
            (Some(7), Some(5), Some(5))
        );
        assert!(t[3].unbindable);
        assert_eq!(t[1].super_options, vec!["rw", "size=1024k", "mode=755"]);
    }

    /// Every `\NNN` is one byte, whatever its value; raw bytes that are not UTF-8 stay as
    /// they are; a backslash not followed by three octal digits is itself.
    #[test]
    fn octal_escapes_and_raw_bytes_come_back_as_the_kernels_bytes() {
        use std::os::unix::ffi::OsStrExt;
        let t = parse_mountinfo(
            b"7 1 0:2 /r\\134x\\377 /a\\040b\xff\\011c\\012 rw - fuse.sshfs u@h:/p\\040q rw\n",
            Path::new("x"),
        )
        .expect("parse");
        assert_eq!(t[0].mountpoint.as_os_str().as_bytes(), b"/a b\xff\tc\n");
        assert_eq!(t[0].root.as_os_str().as_bytes(), b"/r\\x\xff");
        assert_eq!(
            (t[0].fstype.as_str(), t[0].source.as_str()),
            ("fuse.sshfs", "u@h:/p q")
        );
        for (field, bytes) in [
            (&b"x\\040"[..], &b"x "[..]),
            (b"\\0400", b" 0"),
            (b"\\04", b"\\04"),
            (b"a\\b\\", b"a\\b\\"),
            (b"\\800", b"\\800"),
            (b"\\000", b"\0"),
        ] {
            assert_eq!(
                unescape(field),
                bytes,
                "{:?}",
                String::from_utf8_lossy(field)
            );
        }
    }

    /// Optional fields come in any order; ones this parser does not know are skipped; a line
    /// without any is private and bindable.
    #[test]
    fn optional_fields_in_any_order_unknown_ones_skipped() {
        let t = parse_mountinfo(
            b"1 0 8:1 / / rw - ext4 /dev/sda rw\n\
2 1 0:3 / /p rw,nosuid unbindable propagate_from:4 future:9 master:3 shared:12 - tmpfs t rw\n",
            Path::new("x"),
        )
        .expect("parse");
        let none = (None, None, None, false);
        let r = &t[0];
        assert_eq!((r.shared, r.master, r.propagate_from, r.unbindable), none);
        let r = &t[1];
        assert_eq!(
            (r.shared, r.master, r.propagate_from, r.unbindable),
            (Some(12), Some(3), Some(4), true)
        );
        assert_eq!(r.mount_options, vec!["rw", "nosuid"]);
        assert_eq!((r.id, r.parent_id, r.dev), (2, 1, (0, 3)));
        assert!(
            parse_mountinfo(b"2 1 0:3 / /p rw shared:x - tmpfs t rw\n", Path::new("x")).is_err()
        );
    }

    /// The file is read as bytes; a missing one is an error naming it.
    #[test]
    fn read_mountinfo_keeps_bytes_and_names_a_missing_file() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("mountinfo");
        std::fs::write(&file, b"1 0 8:1 / /m\x80\\040n rw - ext4 /dev/sda rw\n").expect("write");
        let t = read_mountinfo(&file).expect("read");
        assert_eq!(t[0].mountpoint.as_os_str().as_bytes(), b"/m\x80 n");
        let missing = dir.path().join("nothing");
        let err = read_mountinfo(&missing).expect_err("missing file");
        assert!(
            matches!(&err, ScanError::Read { path, .. } if *path == missing),
            "{err}"
        );
    }

    #[test]
    fn malformed_lines_are_errors() {
        for bad in [
            &b"1 2 0:1 / /x rw shared:1 ext4 x rw\n"[..],
            b"x 1 0:1 / / rw - a b c\n",
            b"1 1 01 / / rw - a b c\n",
        ] {
            assert!(parse_mountinfo(bad, Path::new("x")).is_err());
        }
    }

    /// Found by the fuzz test: two mounts that are each other's parent made the walk grow
    /// without end.
    #[test]
    fn a_cycle_of_parents_is_an_error_not_a_hang() {
        let t = parse_mountinfo(
            b"1 1 0:1 / / rw - ext4 a rw\n5 7 0:2 / /x rw - tmpfs t rw\n7 5 0:2 / /x rw - tmpfs t rw\n5 1 0:2 / /x rw - tmpfs t rw\n",
            Path::new("x"),
        )
        .expect("parse");
        let err = tree_at(&t, Path::new("/")).expect_err("cycle").to_string();
        assert!(err.contains("reached twice"), "{err}");
    }

    /// Mount points and roots are bytes: mountinfo's octal escapes and bytes that are not
    /// UTF-8 end up in the image's escaped form, never mangled or refused.
    #[test]
    fn mount_points_and_roots_that_are_not_utf8_are_kept_escaped() {
        let t = parse_mountinfo(
            b"1 1 0:1 / / rw - ext4 a rw\n5 1 0:2 /r\\377\\134 /x\\377y\\012\\134\\040z rw master:3 - tmpfs t rw\n6 1 0:2 / /o\\200 rw shared:3 - tmpfs t rw\n",
            Path::new("x"),
        )
        .expect("parse");
        let tree = tree_at(&t, Path::new("/")).expect("not UTF-8 is fine");
        assert_eq!(tree.mounts[1].mountpoint, "x\\xffy\n\\\\ z");
        assert_eq!(tree.mounts[1].root, "/r\\xff\\\\");
        assert_eq!(tree.mounts[2].mountpoint, "o\\x80");
        use std::os::unix::ffi::OsStrExt;
        let sub = tree_at(&t, Path::new(std::ffi::OsStr::from_bytes(b"/x\xffy\n\\ z")))
            .expect("tree at a root that is not UTF-8");
        assert_eq!(
            sub.groups[0],
            PeerGroup::External {
                path: "/o\\x80".into()
            }
        );
    }

    #[test]
    fn tree_at_builds_groups_and_superblocks() {
        let t = parse_mountinfo(SAMPLE, Path::new("x")).expect("parse");
        let tree = tree_at(&t, Path::new("/t")).expect("tree");
        assert_eq!(tree.mounts.len(), 3);
        // In the image's escaped form: the backslash is doubled.
        assert_eq!(tree.mounts[1].mountpoint, "with space\ttab\nnl\\\\bs");
        assert_eq!(tree.superblocks.len(), 1);
        assert_eq!(tree.superblocks[0].options, vec!["size=1024k", "mode=755"]);
        // Group 5 is internal (the root is a member); mounts 1 and 2 are its slaves.
        let g5 = tree.mounts[0].propagation.shared.expect("shared");
        assert_eq!(tree.mounts[1].propagation.master, Some(g5));
        assert_eq!(tree.mounts[2].propagation.master, Some(g5));
        assert_eq!(tree.mounts[1].flags.atime, Atime::Noatime);
        assert!(tree.mounts[2].flags.readonly && tree.mounts[2].propagation.unbindable);
    }

    #[test]
    fn master_outside_the_tree_is_external() {
        let t = parse_mountinfo(SAMPLE, Path::new("x")).expect("parse");
        let tree = tree_at(&t, Path::new("/t/g")).expect("tree");
        let m = tree.mounts[0].propagation.master.expect("master");
        assert_eq!(
            tree.groups[m.get()],
            PeerGroup::External { path: "/t".into() }
        );
    }
}
