//! The bundle's mounts before and while libcontainer mounts them, as runc treats them.
//!
//! runc resolves a mount's destination inside the root file system (symlinks followed, an
//! absolute one from the rootfs, never above it) and creates what is missing there, so a
//! destination reached through a symlink to a directory that does not exist yet works.
//! libcontainer refuses to create through such a dangling symlink: [`prepare`] creates the
//! target first, inside the rootfs, as runc would.
//!
//! libcontainer's init reports any failure of the root file system to ferry as the bare
//! "failed to prepare rootfs". [`InitReport`] carries the mount it was at and its cause from
//! the init's own log events to ferry, so that every rootfs error names the mount, in runc's
//! words: `error mounting "SRC" to rootfs at "DEST": CAUSE`.

use crate::error::{Result, RuntimeError};
use oci_spec::runtime::{Mount, Spec};
use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::Mutex;

/// How many symlinks one destination may pass through (the kernel's limit, as runc's).
const MAX_SYMLINKS: usize = 40;

fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

/// `error mounting "SRC" to rootfs at "DEST"`, runc's words for where a rootfs error is.
fn where_is(m: &Mount) -> String {
    format!(
        "error mounting {:?} to rootfs at {:?}",
        m.source()
            .as_deref()
            .map(|s| s.display().to_string())
            .unwrap_or_else(|| m.typ().clone().unwrap_or_default()),
        m.destination().display().to_string()
    )
}

/// Resolve `dest` inside `rootfs` as if `rootfs` were `/`: symlinks are followed (absolute
/// ones from `rootfs`), `..` stops at `rootfs`, and the first missing component and all after
/// it are taken as they are. Returns the path below `rootfs` and whether a symlink was
/// crossed.
pub fn resolve_in_root(rootfs: &Path, dest: &Path) -> std::io::Result<(PathBuf, bool)> {
    let mut pending: Vec<OsString> = Vec::new();
    let push_front = |pending: &mut Vec<OsString>, p: &Path| {
        // `pending` is a stack: its last element is the next component.
        let mut parts: Vec<OsString> = p
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect();
        parts.reverse();
        pending.extend(parts);
    };
    push_front(&mut pending, dest);
    let mut resolved: Vec<OsString> = Vec::new();
    let mut hops = 0;
    let mut crossed = false;
    while let Some(c) = pending.pop() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        let here: PathBuf = resolved.iter().collect();
        let candidate = rootfs.join(&here).join(&c);
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_SYMLINKS {
                    return Err(std::io::Error::from_raw_os_error(libc::ELOOP));
                }
                crossed = true;
                let target = std::fs::read_link(&candidate)?;
                if target.is_absolute() {
                    resolved.clear();
                }
                push_front(&mut pending, &target);
            }
            _ => resolved.push(c),
        }
    }
    Ok((resolved.iter().collect(), crossed))
}

/// Before libcontainer mounts: every bind mount's source must exist, and a destination that
/// passes through a symlink to something missing is created inside the rootfs (a directory,
/// or for a file source an empty file), as runc does. Errors name the mount.
pub fn prepare(spec: &Spec, bundle: &Path) -> Result<()> {
    let Some(root) = spec.root() else {
        return Ok(());
    };
    let rootfs = bundle.join(root.path());
    for m in spec.mounts().iter().flatten() {
        let place = || where_is(m);
        let source_is_file = if is_bind(m) {
            let Some(src) = m.source() else {
                return Err(RuntimeError::Invalid(format!(
                    "{}: a bind mount needs a source",
                    place()
                )));
            };
            let src = if src.is_absolute() {
                src.clone()
            } else {
                bundle.join(src)
            };
            match std::fs::metadata(&src) {
                Ok(meta) => !meta.is_dir(),
                Err(e) => {
                    return Err(RuntimeError::io(
                        format!("{}: stat {}", place(), src.display()),
                        e,
                    ))
                }
            }
        } else {
            false
        };
        // libcontainer refuses proc and sysfs on anything but a plain directory, as runc.
        if matches!(
            m.typ().as_deref(),
            Some("proc" | "sysfs" | "cgroup" | "cgroup2")
        ) {
            continue;
        }
        let (inside, crossed) = resolve_in_root(&rootfs, m.destination())
            .map_err(|e| RuntimeError::io(format!("{}: resolving it in the rootfs", place()), e))?;
        let target = rootfs.join(&inside);
        if !crossed || std::fs::symlink_metadata(&target).is_ok() {
            continue;
        }
        let made = if source_is_file {
            let parent = target.parent().unwrap_or(&rootfs);
            std::fs::create_dir_all(parent).and_then(|()| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                    .map(drop)
            })
        } else {
            std::fs::create_dir_all(&target)
        };
        made.map_err(|e| {
            RuntimeError::io(
                format!(
                    "{}: creating /{} (where {} leads) in the rootfs",
                    place(),
                    inside.display(),
                    m.destination().display()
                ),
                e,
            )
        })?;
        tracing::debug!(
            "mount at {}: created /{} in the rootfs",
            m.destination().display(),
            inside.display()
        );
    }
    Ok(())
}

/// The write end of the report pipe while a create runs (-1 otherwise), and the pid of the
/// ferry process that made it: only its children (libcontainer's init) report.
static REPORT_FD: AtomicI32 = AtomicI32::new(-1);
static REPORTER_PARENT: AtomicU32 = AtomicU32::new(0);

/// In the init: the mount libcontainer is at (its destination, as it logged it) and the first
/// error it logged there.
#[derive(Default)]
struct AtMount {
    destination: Option<String>,
    cause: Option<String>,
}

static AT_MOUNT: Mutex<AtMount> = Mutex::new(AtMount {
    destination: None,
    cause: None,
});

/// A create's channel for the init's rootfs error (see the module's comment).
pub struct InitReport {
    read: OwnedFd,
    _write: OwnedFd,
}

impl InitReport {
    /// Open the channel before libcontainer forks the init.
    pub fn arm() -> Result<InitReport> {
        use rustix::pipe::{pipe_with, PipeFlags};
        let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)
            .map_err(|e| RuntimeError::io("creating the init's report pipe", e.into()))?;
        REPORTER_PARENT.store(std::process::id(), Ordering::SeqCst);
        REPORT_FD.store(write.as_raw_fd(), Ordering::SeqCst);
        Ok(InitReport {
            read,
            _write: write,
        })
    }

    /// What the init reported, as `error mounting "SRC" to rootfs at "DEST": CAUSE` with the
    /// spec's mount (the one whose destination holds where libcontainer was).
    pub fn take(&self, spec: &Spec) -> Option<String> {
        let mut buf = vec![0u8; 4096];
        let n = rustix::io::read(&self.read, &mut buf[..]).ok()?;
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let (dest, cause) = text.split_once('\t')?;
        let mount = spec
            .mounts()
            .iter()
            .flatten()
            .filter(|m| Path::new(dest).starts_with(m.destination()))
            .max_by_key(|m| m.destination().as_os_str().len());
        Some(match mount {
            Some(m) => format!("{}: {cause}", where_is(m)),
            None if dest.is_empty() => format!("preparing the root file system: {cause}"),
            None => format!("error mounting at {dest:?} in the rootfs: {cause}"),
        })
    }
}

impl Drop for InitReport {
    fn drop(&mut self) {
        REPORT_FD.store(-1, Ordering::SeqCst);
    }
}

/// The destination in libcontainer's `mounting Mount { destination: "/x", ... }` log line.
fn destination_in(message: &str) -> Option<String> {
    let rest = &message[message.find("destination: \"")? + "destination: \"".len()..];
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    None
}

/// The cause to report from libcontainer's first error at a mount (`failed to mount Mount
/// { ... }: CAUSE`, the mount itself left out: ferry names it) and the error it returned
/// (`Mount(Syscall(Nix(EINVAL)))`, whose errno is added when the first says only `syscall`).
fn cause_of(first: Option<&str>, returned: Option<&str>) -> String {
    let errno = returned.and_then(|r| {
        let rest = &r[r.find("Nix(")? + 4..];
        Some(&rest[..rest.find(')')?])
    });
    let Some(first) = first else {
        return returned.unwrap_or("failed").to_string();
    };
    let first = match (
        first.strip_prefix("failed to mount Mount {"),
        first.find(" }: "),
    ) {
        (Some(_), Some(end)) => &first[end + 4..],
        _ => first,
    };
    match errno {
        Some(errno) if !first.contains(errno) => format!("{first}: {errno}"),
        _ => first.to_string(),
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    err: Option<String>,
}

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "err" => self.err = Some(format!("{value:?}")),
            _ => {}
        }
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_string(),
            "err" => self.err = Some(value.to_string()),
            _ => {}
        }
    }
}

/// The tracing layer that follows libcontainer's init through the mounts (installed by the
/// `ferry` binary beside its log).
pub struct InitReportLayer;

impl InitReportLayer {
    /// Only libcontainer's rootfs and init events matter (debug ones included).
    pub fn wants(meta: &tracing::Metadata<'_>) -> bool {
        meta.target().starts_with("libcontainer::rootfs")
            || meta.target().starts_with("libcontainer::process::init")
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for InitReportLayer {
    #[allow(unsafe_code)]
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let fd = REPORT_FD.load(Ordering::SeqCst);
        if fd < 0 || REPORTER_PARENT.load(Ordering::SeqCst) == std::process::id() {
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        let Ok(mut at) = AT_MOUNT.lock() else {
            return;
        };
        if f.message == "mount root fs" {
            *at = AtMount {
                destination: Some(String::new()),
                cause: None,
            };
        } else if let Some(dest) = f
            .message
            .starts_with("mounting ")
            .then(|| destination_in(&f.message))
            .flatten()
        {
            *at = AtMount {
                destination: Some(dest),
                cause: None,
            };
        } else if f.message == "failed to prepare rootfs" {
            let cause = cause_of(at.cause.as_deref(), f.err.as_deref());
            // Devices and symlinks come after the mounts: an error there is not the last
            // mount's (libcontainer's error says which step failed).
            let at_a_mount = f.err.as_deref().is_none_or(|e| e.starts_with("Mount("));
            let dest = match at_a_mount {
                true => at.destination.clone().unwrap_or_default(),
                false => String::new(),
            };
            let line = format!("{dest}\t{cause}");
            // SAFETY: `fd` is the report pipe's write end, open in this process (inherited
            // from the parent that armed it); one short write, atomic below PIPE_BUF.
            unsafe { libc::write(fd, line.as_ptr().cast(), line.len().min(4000)) };
        } else if *event.metadata().level() == tracing::Level::ERROR && at.cause.is_none() {
            at.cause = Some(match f.err {
                Some(e) => format!("{}: {e}", f.message),
                None => f.message,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_symlinks_inside_the_root_only() {
        let d = tempfile::tempdir().expect("tempdir");
        let r = d.path();
        std::fs::create_dir_all(r.join("usr/lib")).expect("mkdir");
        std::os::unix::fs::symlink("/srv/data", r.join("data")).expect("symlink");
        std::os::unix::fs::symlink("../../..", r.join("usr/lib/up")).expect("symlink");
        std::os::unix::fs::symlink("lib", r.join("usr/l")).expect("symlink");
        std::os::unix::fs::symlink("loop", r.join("loop")).expect("symlink");
        let res = |p: &str| resolve_in_root(r, Path::new(p)).expect("resolve");
        assert_eq!(res("/data/x"), (PathBuf::from("srv/data/x"), true));
        assert_eq!(res("/usr/lib/up/etc"), (PathBuf::from("etc"), true));
        assert_eq!(res("/usr/l/y"), (PathBuf::from("usr/lib/y"), true));
        assert_eq!(res("/../../a/./b"), (PathBuf::from("a/b"), false));
        assert!(resolve_in_root(r, Path::new("/loop")).is_err());
        assert_eq!(
            destination_in(r#"mounting Mount { destination: "/a \"b\"", typ: None }"#),
            Some("/a \"b\"".into())
        );
        assert_eq!(
            cause_of(
                Some(
                    r#"failed to mount Mount { destination: "/t", options: Some(["size=x"]) }: syscall"#
                ),
                Some("Mount(Syscall(Nix(EINVAL)))")
            ),
            "syscall: EINVAL"
        );
        assert_eq!(cause_of(None, Some("Device(X)")), "Device(X)");
    }
}
