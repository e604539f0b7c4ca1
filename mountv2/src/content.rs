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
    /// Relative to `Content::base`, normalised, never empty, never `..`; names in the escaped
    /// form of [`escape_name`], so any bytes a name holds survive.
    pub path: String,
    pub meta: Meta,
    pub kind: EntryKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum EntryKind {
    Dir,
    /// File bytes, base64.
    File {
        data: String,
    },
    /// The link's target, escaped as [`escape_name`] does.
    Symlink {
        target: String,
    },
    Fifo,
    /// A character or block device node.
    Device {
        block: bool,
        major: u32,
        minor: u32,
    },
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

/// File names are bytes; the image is JSON text. A name is kept as is where it is valid UTF-8,
/// except that a backslash becomes `\\`; each byte of an invalid sequence becomes `\xNN`
/// (always two lower-case hex digits, always 80 to ff). The form is canonical: one name, one
/// string.
pub fn escape_name(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The bytes of a name in [`escape_name`]'s form; anything that form never produces (another
/// escape, a `\xNN` below 80 or in upper case) is an error, so that no two strings name one
/// file.
pub fn unescape_name(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b != b'\\' {
            out.push(b);
            rest = tail;
            continue;
        }
        match tail {
            [b'\\', more @ ..] => {
                out.push(b'\\');
                rest = more;
            }
            [b'x', h, l, more @ ..] => {
                let digit = |d: u8| match d {
                    b'0'..=b'9' => Some(d - b'0'),
                    b'a'..=b'f' => Some(d - b'a' + 10),
                    _ => None,
                };
                match (digit(*h), digit(*l)) {
                    (Some(h), Some(l)) if h >= 8 => out.push(h << 4 | l),
                    _ => {
                        return Err(format!(
                            "{s:?}: \\x must be followed by 80 to ff in lower case"
                        ))
                    }
                }
                rest = more;
            }
            _ => return Err(format!("{s:?}: a backslash must start \\\\ or \\xNN")),
        }
    }
    // Bytes that were escaped only stand for invalid UTF-8: a run that decodes to valid UTF-8
    // would have been written as is.
    if escape_name(&out) != s {
        return Err(format!("{s:?} is not in canonical escaped form"));
    }
    Ok(out)
}

/// A host path in [`escape_name`]'s form: the one way the image writes mount points, mount
/// roots, content bases and host paths (escaping never touches `/`, so the escaped form of a
/// path is the escaped components joined by `/`, and prefixes compare as the bytes do).
pub fn escape_path(path: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    escape_name(path.as_os_str().as_bytes())
}

/// The host path an escaped string names, byte for byte (see [`unescape_name`]).
pub fn unescape_path(s: &str) -> Result<std::path::PathBuf, String> {
    use std::os::unix::ffi::OsStringExt;
    unescape_name(s).map(|b| std::path::PathBuf::from(std::ffi::OsString::from_vec(b)))
}

use base64::Engine as _;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use std::io::{Read, Write};

fn io_err(path: &str, e: impl Into<std::io::Error>) -> ContentError {
    ContentError::Io {
        path: path.to_string(),
        source: e.into(),
    }
}

fn meta_of(st: &rustix::fs::Stat) -> Meta {
    Meta {
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Capture everything below `dir` (a mount's root, normally a private non-recursive clone so
/// that nothing is mounted on top). Symlinks are never followed and other filesystems are not
/// entered. `base` is the directory's path inside its filesystem ([`escape_path`]'s form),
/// recorded for restore.
pub fn capture(dir: BorrowedFd<'_>, base: &str, limit: u64) -> Result<Content, ContentError> {
    let root = rustix::fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err(base, e))?;
    let st = rustix::fs::fstat(&root).map_err(|e| io_err(base, e))?;
    let mut content = Content {
        base: base.to_string(),
        base_meta: Some(meta_of(&st)),
        entries: Vec::new(),
    };
    let mut used = 0u64;
    let mount = crate::sys::mount_id(root.as_fd()).map_err(|e| io_err(base, e))?;
    walk(&root, "", mount, limit, &mut used, &mut content.entries)?;
    Ok(content)
}

/// The names in directory `dir` (at `rel`), sorted, without `.` and `..`.
fn sorted_names(dir: &OwnedFd, rel: &str) -> Result<Vec<Vec<u8>>, ContentError> {
    let mut names = Vec::new();
    let reader_fd = rustix::fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err(rel, e))?;
    let mut reader = rustix::fs::Dir::read_from(&reader_fd).map_err(|e| io_err(rel, e))?;
    for entry in reader.by_ref() {
        let entry = entry.map_err(|e| io_err(rel, e))?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        names.push(name.to_vec());
    }
    names.sort();
    Ok(names)
}

/// A regular file's content (`size` bytes expected), as an entry holds it.
fn read_file(
    dir: &OwnedFd,
    name: &[u8],
    path: &str,
    size: usize,
) -> Result<EntryKind, ContentError> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err(path, e))?;
    let mut data = Vec::with_capacity(size);
    std::fs::File::from(fd)
        .read_to_end(&mut data)
        .map_err(|e| io_err(path, e))?;
    Ok(EntryKind::File {
        data: base64::engine::general_purpose::STANDARD.encode(&data),
    })
}

fn walk(
    dir: &OwnedFd,
    rel: &str,
    mount: u64,
    limit: u64,
    used: &mut u64,
    out: &mut Vec<Entry>,
) -> Result<(), ContentError> {
    for name in sorted_names(dir, rel)? {
        let path = join(rel, &escape_name(&name));
        let name = name.as_slice();
        let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            // Removed between reading the directory and looking at the entry: the capture no
            // longer holds it, and says so.
            Err(rustix::io::Errno::NOENT) => {
                tracing::warn!(path = %path, "removed while its directory was being captured; not in the image");
                continue;
            }
            Err(e) => return Err(io_err(&path, e)),
        };
        let meta = meta_of(&st);
        let kind = match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                // Something else is mounted here (only on a live view, never on a clone): what
                // stat shows is that filesystem's root, and the directory beneath is hidden.
                // Leave it to the mount point creation on restore.
                if crate::sys::mount_id_of(dir.as_fd(), name).map_err(|e| io_err(&path, e))?
                    != mount
                {
                    continue;
                }
                out.push(Entry {
                    path: path.clone(),
                    meta,
                    kind: EntryKind::Dir,
                });
                let sub = rustix::fs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| io_err(&path, e))?;
                walk(&sub, &path, mount, limit, used, out)?;
                continue;
            }
            FileType::RegularFile => {
                *used += st.st_size as u64;
                if *used > limit {
                    return Err(ContentError::TooLarge { what: path, limit });
                }
                read_file(dir, name, &path, st.st_size as usize)?
            }
            FileType::Symlink => {
                let target =
                    rustix::fs::readlinkat(dir, name, Vec::new()).map_err(|e| io_err(&path, e))?;
                EntryKind::Symlink {
                    target: escape_name(target.as_bytes()),
                }
            }
            FileType::Fifo => EntryKind::Fifo,
            FileType::Socket => EntryKind::Socket,
            FileType::CharacterDevice | FileType::BlockDevice => EntryKind::Device {
                block: FileType::from_raw_mode(st.st_mode) == FileType::BlockDevice,
                major: rustix::fs::major(st.st_rdev),
                minor: rustix::fs::minor(st.st_rdev),
            },
            FileType::Unknown => continue,
        };
        out.push(Entry { path, meta, kind });
    }
    Ok(())
}

/// Open `rel` (escaped as [`escape_name`] does, `""` for `dir` itself) below `dir` without
/// following symlinks or leaving `dir`.
fn open_beneath(dir: BorrowedFd<'_>, rel: &str, flags: OFlags) -> Result<OwnedFd, ContentError> {
    let bytes = unescape(rel)?;
    let path: &[u8] = if bytes.is_empty() { b"." } else { &bytes };
    rustix::fs::openat2(
        dir,
        path,
        flags | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
        rustix::fs::ResolveFlags::BENEATH
            | rustix::fs::ResolveFlags::NO_SYMLINKS
            | rustix::fs::ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| io_err(rel, e))
}

fn unescape(path: &str) -> Result<Vec<u8>, ContentError> {
    unescape_name(path).map_err(|reason| ContentError::Invalid {
        path: path.to_string(),
        reason,
    })
}

/// Open directory `rel` below `dir` without following symlinks or leaving `dir`.
fn open_dir_beneath(dir: BorrowedFd<'_>, rel: &str) -> Result<OwnedFd, ContentError> {
    open_beneath(dir, rel, OFlags::RDONLY | OFlags::DIRECTORY)
}

/// Split an entry's path into its parent directory and name, refusing anything but a
/// normalised relative path (validation has checked this; populate does not rely on it).
fn split_entry(e: &Entry) -> Result<(&str, &str), ContentError> {
    let (parent, name) = match e.path.rsplit_once('/') {
        Some((p, n)) => (p, n),
        None => ("", e.path.as_str()),
    };
    if name.is_empty()
        || name == "."
        || name == ".."
        || e.path.starts_with('/')
        || parent.split('/').any(|c| c == "." || c == "..")
    {
        return Err(ContentError::Invalid {
            path: e.path.clone(),
            reason: "not a normalised relative path".into(),
        });
    }
    Ok((parent, name))
}

/// The file type an entry is recreated as (a socket becomes an empty file).
fn created_type(kind: &EntryKind) -> FileType {
    match kind {
        EntryKind::Dir => FileType::Directory,
        EntryKind::File { .. } | EntryKind::Socket => FileType::RegularFile,
        EntryKind::Symlink { .. } => FileType::Symlink,
        EntryKind::Fifo => FileType::Fifo,
        EntryKind::Device { block: true, .. } => FileType::BlockDevice,
        EntryKind::Device { block: false, .. } => FileType::CharacterDevice,
    }
}

fn type_name(t: FileType) -> &'static str {
    match t {
        FileType::Directory => "directory",
        FileType::RegularFile => "regular file",
        FileType::Symlink => "symlink",
        FileType::Fifo => "fifo",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Unknown => "file of unknown type",
    }
}

/// Recreate `content` under `dir`: entries first, then owners, then modes (directories last and
/// deepest first, so read-only directories can still be filled).
///
/// Nothing here follows a symlink: parents are opened beneath `dir` with symlink resolution
/// off, every entry is created exclusively (an existing one is an error, except a real
/// directory where a directory is wanted), and owners and modes are set through an `O_PATH`
/// descriptor of the entry itself after checking it is what was created. A symlink the content
/// made earlier therefore cannot steer a later entry, or its mode, to a file elsewhere.
pub fn populate(dir: BorrowedFd<'_>, content: &Content) -> Result<(), ContentError> {
    for e in &content.entries {
        create_entry(dir, e)?;
    }
    // Owners and modes (symlinks get owners only), deepest first.
    for e in content.entries.iter().rev() {
        set_owner_and_mode(dir, e)?;
    }
    if let Some(meta) = &content.base_meta {
        set_owner(dir, meta).map_err(|err| io_err(".", err))?;
        crate::sys::chmod_fd(dir, meta.mode).map_err(|err| io_err(".", err))?;
    }
    Ok(())
}

/// Create entry `e` below `dir`, exclusively (a directory may be there already).
fn create_entry(dir: BorrowedFd<'_>, e: &Entry) -> Result<(), ContentError> {
    let engine = base64::engine::general_purpose::STANDARD;
    let (parent, name) = split_entry(e)?;
    let pfd = open_dir_beneath(dir, parent)?;
    let name = unescape(name)?;
    let name = name.as_slice();
    let created = |r| exclusive(&e.path, r);
    let create_file = || {
        rustix::fs::openat(
            &pfd,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
    };
    match &e.kind {
        EntryKind::Dir => match rustix::fs::mkdirat(&pfd, name, Mode::from_raw_mode(0o700)) {
            // A directory made on the way to a mount root or content base may be there
            // already; anything else in its place (a symlink above all) is refused.
            Err(rustix::io::Errno::EXIST) => {
                let st = rustix::fs::statat(&pfd, name, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|err| io_err(&e.path, err))?;
                let found = FileType::from_raw_mode(st.st_mode);
                if found != FileType::Directory {
                    return Err(ContentError::Invalid {
                        path: e.path.clone(),
                        reason: format!(
                            "a {} is already there where a directory is wanted",
                            type_name(found)
                        ),
                    });
                }
            }
            other => other.map_err(|err| io_err(&e.path, err))?,
        },
        EntryKind::File { data } => {
            let bytes = engine.decode(data).map_err(|err| ContentError::Invalid {
                path: e.path.clone(),
                reason: format!("file data is not base64: {err}"),
            })?;
            let fd = exclusive(&e.path, create_file())?;
            std::fs::File::from(fd)
                .write_all(&bytes)
                .map_err(|err| io_err(&e.path, err))?;
        }
        EntryKind::Symlink { target } => created(rustix::fs::symlinkat(
            unescape(target)?.as_slice(),
            &pfd,
            name,
        ))?,
        EntryKind::Fifo => created(rustix::fs::mknodat(
            &pfd,
            name,
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        ))?,
        // A socket cannot be recreated as such; an empty file keeps the name.
        EntryKind::Socket => created(create_file().map(drop))?,
        EntryKind::Device {
            block,
            major,
            minor,
        } => created(rustix::fs::mknodat(
            &pfd,
            name,
            if *block {
                FileType::BlockDevice
            } else {
                FileType::CharacterDevice
            },
            Mode::from_raw_mode(0o600),
            rustix::fs::makedev(*major, *minor),
        ))?,
    }
    Ok(())
}

/// Give entry `e` its owner and mode, through an `O_PATH` descriptor of what was created.
fn set_owner_and_mode(dir: BorrowedFd<'_>, e: &Entry) -> Result<(), ContentError> {
    split_entry(e)?;
    let fd = open_beneath(dir, &e.path, OFlags::PATH)?;
    let st = rustix::fs::fstat(&fd).map_err(|err| io_err(&e.path, err))?;
    let found = FileType::from_raw_mode(st.st_mode);
    let wanted = created_type(&e.kind);
    if found != wanted {
        return Err(ContentError::Invalid {
            path: e.path.clone(),
            reason: format!(
                "is a {} where a {} was created",
                type_name(found),
                type_name(wanted)
            ),
        });
    }
    set_owner(fd.as_fd(), &e.meta).map_err(|err| io_err(&e.path, err))?;
    if wanted != FileType::Symlink {
        crate::sys::chmod_fd(fd.as_fd(), e.meta.mode).map_err(|err| io_err(&e.path, err))?;
    }
    Ok(())
}

/// The result of creating `path`, where finding something already there is an error.
fn exclusive<T>(path: &str, r: rustix::io::Result<T>) -> Result<T, ContentError> {
    match r {
        Err(rustix::io::Errno::EXIST) => Err(ContentError::Invalid {
            path: path.to_string(),
            reason: "already exists; content entries are created once, never over something \
                     else"
                .into(),
        }),
        other => other.map_err(|err| io_err(path, err)),
    }
}

/// chown the file `fd` stands for (an O_PATH descriptor will do), never what it links to.
fn set_owner(fd: BorrowedFd<'_>, meta: &Meta) -> rustix::io::Result<()> {
    rustix::fs::chownat(
        fd,
        "",
        Some(rustix::fs::Uid::from_raw(meta.uid)),
        Some(rustix::fs::Gid::from_raw(meta.gid)),
        AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fd_of(p: &std::path::Path) -> OwnedFd {
        rustix::fs::open(p, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).expect("open")
    }

    #[test]
    fn roundtrip_keeps_names_kinds_modes_and_bytes() {
        let src = tempfile::tempdir().expect("tmp");
        let s = src.path();
        std::fs::create_dir_all(s.join("a b/c\nd")).expect("mkdir");
        std::fs::write(s.join("a b/c\nd/back\\slash"), b"hello").expect("write");
        std::fs::write(s.join("big"), vec![7u8; 1 << 20]).expect("write");
        std::os::unix::fs::symlink("/nowhere", s.join("dangling")).expect("symlink");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            s.join("fifo"),
            FileType::Fifo,
            Mode::from_raw_mode(0o640),
            0,
        )
        .expect("fifo");
        std::fs::create_dir(s.join("sticky")).expect("mkdir");
        rustix::fs::chmod(s.join("sticky"), Mode::from_raw_mode(0o1777)).expect("chmod");
        std::fs::write(s.join("suid"), b"x").expect("write");
        rustix::fs::chmod(s.join("suid"), Mode::from_raw_mode(0o4755)).expect("chmod");
        std::fs::create_dir(s.join("locked")).expect("mkdir");
        std::fs::write(s.join("locked/inner"), b"in").expect("write");
        rustix::fs::chmod(s.join("locked"), Mode::from_raw_mode(0o000)).expect("chmod");
        let captured = capture(fd_of(s).as_fd(), "/", 1 << 30).expect("capture");

        let dst = tempfile::tempdir().expect("tmp");
        populate(fd_of(dst.path()).as_fd(), &captured).expect("populate");
        let again = capture(fd_of(dst.path()).as_fd(), "/", 1 << 30).expect("capture again");
        assert_eq!(captured.entries, again.entries);
        assert_eq!(
            std::fs::read(dst.path().join("a b/c\nd/back\\slash")).expect("read"),
            b"hello"
        );
        rustix::fs::chmod(s.join("locked"), Mode::from_raw_mode(0o755)).expect("chmod");
        rustix::fs::chmod(dst.path().join("locked"), Mode::from_raw_mode(0o755)).expect("chmod");
    }

    #[test]
    fn limit_is_enforced() {
        let src = tempfile::tempdir().expect("tmp");
        std::fs::write(src.path().join("f"), vec![0u8; 4096]).expect("write");
        let r = capture(fd_of(src.path()).as_fd(), "/", 100);
        assert!(matches!(r, Err(ContentError::TooLarge { .. })), "{r:?}");
    }

    #[test]
    fn populate_refuses_paths_that_climb_out() {
        let dst = tempfile::tempdir().expect("tmp");
        let c = Content {
            base: "/".into(),
            base_meta: None,
            entries: vec![Entry {
                path: "../escape".into(),
                meta: Meta {
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                },
                kind: EntryKind::Dir,
            }],
        };
        assert!(populate(fd_of(dst.path()).as_fd(), &c).is_err());
        assert!(!dst.path().join("../escape").exists());
    }

    /// A symlink one content made cannot steer another content's entry (or its mode) to a
    /// file outside, whatever validation let through.
    #[test]
    fn populate_never_follows_a_symlink_it_meets() {
        let host = tempfile::tempdir().expect("tmp");
        let host_file = host.path().join("host-file");
        std::fs::write(&host_file, b"host").expect("write");
        rustix::fs::chmod(&host_file, Mode::from_raw_mode(0o644)).expect("chmod");
        let meta = |mode| Meta {
            mode,
            uid: 0,
            gid: 0,
        };
        let dst = tempfile::tempdir().expect("tmp");
        let first = Content {
            base: "/".into(),
            base_meta: None,
            entries: vec![
                Entry {
                    path: "d".into(),
                    meta: meta(0o755),
                    kind: EntryKind::Dir,
                },
                Entry {
                    path: "d/s".into(),
                    meta: meta(0o777),
                    kind: EntryKind::Symlink {
                        target: host_file.display().to_string(),
                    },
                },
            ],
        };
        populate(fd_of(dst.path()).as_fd(), &first).expect("populate the first content");
        for kind in [EntryKind::Dir, EntryKind::File { data: "".into() }] {
            let second = Content {
                base: "/d".into(),
                base_meta: None,
                entries: vec![Entry {
                    path: "s".into(),
                    meta: meta(0o7777),
                    kind: kind.clone(),
                }],
            };
            let err = populate(fd_of(&dst.path().join("d")).as_fd(), &second)
                .expect_err("an entry over a symlink must fail");
            assert!(
                err.to_string().contains("s"),
                "{kind:?}: the error names the entry: {err}"
            );
            let st = rustix::fs::stat(&host_file).expect("stat");
            assert_eq!(
                st.st_mode & 0o7777,
                0o644,
                "{kind:?}: host file mode changed"
            );
            assert_eq!(std::fs::read(&host_file).expect("read"), b"host");
        }
    }

    /// Names are bytes: every byte 80 to ff, invalid sequences, newlines, spaces, backslashes
    /// and text that looks like an escape survive capture and populate exactly, in names and
    /// in symlink targets.
    #[test]
    fn names_are_bytes() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let src = tempfile::tempdir().expect("tmp");
        let s = src.path();
        let mut names: Vec<Vec<u8>> = (0x80..=0xffu8).map(|b| vec![b'n', b]).collect();
        names.extend([
            b"a b\nc".to_vec(),
            b"line\nbreak".to_vec(),
            b"back\\slash".to_vec(),
            b"looks\\x80escaped".to_vec(),
            b"\xc3\x28".to_vec(),
            "caf\u{e9}".as_bytes().to_vec(),
            b"\xe2\x82".to_vec(),
        ]);
        let dir = s.join(OsStr::from_bytes(b"d\xff \\ir"));
        std::fs::create_dir(&dir).expect("mkdir");
        for n in &names {
            std::fs::write(dir.join(OsStr::from_bytes(n)), n).expect("write");
        }
        std::os::unix::fs::symlink(OsStr::from_bytes(b"/t\x80rget\\x"), s.join("link"))
            .expect("symlink");
        let captured = capture(fd_of(s).as_fd(), "/", 1 << 30).expect("capture");
        assert_eq!(
            captured.entries.len(),
            names.len() + 2,
            "an entry was dropped"
        );
        for e in &captured.entries {
            assert_eq!(
                escape_name(&unescape_name(&e.path).expect("canonical")),
                e.path
            );
        }

        let dst = tempfile::tempdir().expect("tmp");
        populate(fd_of(dst.path()).as_fd(), &captured).expect("populate");
        let ddir = dst.path().join(OsStr::from_bytes(b"d\xff \\ir"));
        for n in &names {
            let got = std::fs::read(ddir.join(OsStr::from_bytes(n))).expect("restored file");
            assert_eq!(&got, n);
        }
        assert_eq!(
            std::fs::read_link(dst.path().join("link"))
                .expect("readlink")
                .as_os_str()
                .as_bytes(),
            b"/t\x80rget\\x"
        );
        let again = capture(fd_of(dst.path()).as_fd(), "/", 1 << 30).expect("capture again");
        assert_eq!(captured.entries, again.entries);
    }

    #[test]
    fn escapes_are_canonical() {
        for bad in ["\\x7f", "\\xFF", "\\q", "a\\", "\\x8", "\\xc3\\xa9"] {
            assert!(unescape_name(bad).is_err(), "{bad:?} must be refused");
        }
        assert_eq!(unescape_name("a\\\\b\\xff").expect("valid"), b"a\\b\xff");
    }
}
