//! Dumps of real mounts, made in a private mount namespace: this test binary runs itself again
//! under `unshare -m --propagation private`, so nothing it mounts reaches the host.

use mountv2::dump::{dump, DumpOptions};
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Set in the copy of this binary that runs inside the private namespace.
const IN_PRIVATE_NS: &str = "MOUNTV2_TEST_IN_PRIVATE_NS";

/// Run test `name` of this binary again, alone, in a private mount namespace; true when the
/// caller is that copy and should do the work itself.
fn in_private_ns(name: &str) -> bool {
    if std::env::var_os(IN_PRIVATE_NS).is_some() {
        return true;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private"])
        .arg(exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(IN_PRIVATE_NS, "1")
        .output()
        .expect("running unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // "1 passed": the name matched, so the test did run there.
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name} in a private mount namespace failed\n--- stdout\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

/// Detaches the mount at a path when dropped, so the directory under it is removed only once
/// nothing is mounted there (also when the test fails).
struct Detach(PathBuf);

impl Drop for Detach {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, UnmountFlags::DETACH);
    }
}

/// The bases of the contents a dump captures of a tmpfs at `dir`: its root is unbindable (no
/// clone of it can be made) and two equally long subdirectories are bound to `p` and `q`,
/// `/b/y` first when `b_first`.
fn content_bases(dir: &Path, b_first: bool) -> Vec<String> {
    std::fs::create_dir(dir).expect("mkdir");
    rustix::mount::mount(
        "eg-views",
        dir,
        "tmpfs",
        MountFlags::empty(),
        None::<&std::ffi::CStr>,
    )
    .expect("tmpfs");
    let _detach = Detach(dir.to_path_buf());
    for d in ["a/x", "b/y", "p", "q"] {
        std::fs::create_dir_all(dir.join(d)).expect("mkdir");
    }
    std::fs::write(dir.join("a/x/f"), b"in a").expect("write");
    let mut binds = [("a/x", "p"), ("b/y", "q")];
    if b_first {
        binds.reverse();
    }
    for (from, to) in binds {
        rustix::mount::mount_bind(dir.join(from), dir.join(to)).expect("bind");
    }
    rustix::mount::mount_change(dir, MountPropagationFlags::UNBINDABLE).expect("make-unbindable");
    let image = dump(&DumpOptions {
        root: dir.to_path_buf(),
        ..DumpOptions::default()
    })
    .expect("dump");
    assert_eq!(image.tree.mounts.len(), 3, "{:?}", image.tree);
    // The whole root is read through its path: the binds on p and q are other mounts, left
    // out (the walk does not enter them).
    let whole = image
        .contents
        .iter()
        .find(|c| c.content.base == "/")
        .expect("the root's content");
    let paths: Vec<&str> = whole
        .content
        .entries
        .iter()
        .map(|e| e.path.as_str())
        .collect();
    assert_eq!(paths, ["a", "a/x", "a/x/f", "b", "b/y"]);
    let mut bases: Vec<String> = image
        .contents
        .iter()
        .map(|c| c.content.base.clone())
        .collect();
    bases.sort();
    bases
}

/// The same mounts made in another order (as a restore makes them) give the same captured
/// contents: when the widest view cannot be cloned, the narrower one used in its stead is
/// chosen by the tree, not by the order the mounts were made in.
#[test]
fn content_bases_do_not_follow_mount_order() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: mounting needs root");
        return;
    }
    if !in_private_ns("content_bases_do_not_follow_mount_order") {
        return;
    }
    let w = tempfile::tempdir().expect("tmp");
    let a_first = content_bases(&w.path().join("a-first"), false);
    let b_first = content_bases(&w.path().join("b-first"), true);
    assert_eq!(a_first, ["/", "/a/x"]);
    assert_eq!(
        b_first, a_first,
        "the mount order changed the captured contents"
    );
}
