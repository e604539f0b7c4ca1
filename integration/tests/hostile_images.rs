//! Mount images from elsewhere cannot reach the host: `ferry mounts restore` of a crafted image
//! refuses, before any mount, whatever would touch the host outside the target (a file's mode
//! through a symlink, a filesystem of the host's disks, a bind of a host path, device nodes,
//! set-id files), names the entry and the flag that allows it, and the flag works.

use ferry_integration::{in_private_ns, require_root};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Runs `restore ARGS` on `$W/img.json` into `$W/r` in a private namespace, reports its exit
/// code, whether the mount table changed, and with `AFTER` a check of the restored tree.
const RUN: &str = r#"
set -u
before=$(wc -l < /proc/self/mountinfo)
"$FERRY" mounts restore "$W/img.json" --target "$W/r" $ARGS 2>"$W/err"
rc=$?
after=$(wc -l < /proc/self/mountinfo)
echo "rc=$rc"
[ "$before" = "$after" ] && echo "mounts=unchanged" || echo "mounts=changed"
if [ "$rc" = 0 ] && [ -n "${AFTER:-}" ]; then eval "$AFTER" && echo "after=ok"; fi
cat "$W/err" >&2
"#;

struct Outcome {
    rc: i32,
    mounts_unchanged: bool,
    after_ok: bool,
    stderr: String,
}

fn restore(w: &Path, image: &Value, args: &str, after: &str) -> Outcome {
    std::fs::write(w.join("img.json"), image.to_string()).expect("write image");
    std::fs::create_dir_all(w.join("r")).expect("mkdir r");
    let out = in_private_ns(
        RUN,
        &[
            ("W", w.display().to_string()),
            ("ARGS", args.to_string()),
            ("AFTER", after.to_string()),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let rc = stdout
        .lines()
        .find_map(|l| l.strip_prefix("rc="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no exit code in: {stdout}"));
    Outcome {
        rc,
        mounts_unchanged: stdout.contains("mounts=unchanged"),
        after_ok: stdout.contains("after=ok"),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Refused: non-zero exit, nothing mounted, and a message naming each `want`.
fn assert_refused(o: &Outcome, want: &[&str]) {
    assert_ne!(o.rc, 0, "restore must fail; stderr: {}", o.stderr);
    assert!(
        o.mounts_unchanged,
        "a refused restore mounted something; stderr: {}",
        o.stderr
    );
    for w in want {
        assert!(o.stderr.contains(w), "{w:?} missing from: {}", o.stderr);
    }
}

fn assert_restored(o: &Outcome) {
    assert_eq!(o.rc, 0, "restore must succeed; stderr: {}", o.stderr);
    assert!(
        o.after_ok,
        "the restored tree is not as expected: {}",
        o.stderr
    );
}

/// Refused without `flag` (naming each of `refusal`, nothing mounted), restored with it, and
/// `after` holds of the restored tree.
fn refused_unless(w: &Path, img: &Value, refusal: &[&str], flag: &str, after: &str) {
    assert_refused(&restore(w, img, "", ""), refusal);
    assert_restored(&restore(w, img, flag, after));
}

fn mount(sb: u32) -> Value {
    json!({"parent": null, "mountpoint": "", "superblock": sb, "root": "/",
           "flags": {}, "propagation": {}})
}

fn tmpfs() -> Value {
    json!({"fstype": "tmpfs", "source": "im-tmpfs", "origin": {"kind": "fresh"}})
}

fn image(superblocks: Vec<Value>, groups: Vec<Value>, contents: Vec<Value>) -> Value {
    json!({"format": "ferry-mountv2", "version": 1,
           "tree": {"mounts": [mount(0)], "superblocks": superblocks, "groups": groups},
           "contents": contents})
}

/// Content for superblock `sb`, based at `base`.
fn content(sb: u32, base: &str, entries: Vec<Value>) -> Value {
    json!({"superblock": sb, "content": {"base": base, "base_meta": null, "entries": entries}})
}

/// One fresh tmpfs whose content, based at its root, is `entries`.
fn tmpfs_with(entries: Vec<Value>) -> Value {
    image(vec![tmpfs()], vec![], vec![content(0, "/", entries)])
}

fn entry(path: &str, mode: u32, kind: Value) -> Value {
    json!({"path": path, "meta": {"mode": mode, "uid": 0, "gid": 0}, "kind": kind})
}

/// Two contents of one tmpfs: the first makes `d/s` a symlink to a file of the host, the
/// second (based at `/d`) asks for a directory `s` of mode 7777. The host file's mode must not
/// change.
#[test]
fn im_symlink_in_one_content_cannot_chmod_a_host_file() {
    if !require_root() {
        return;
    }
    let w = tempfile::tempdir().expect("tmp");
    let host_file = w.path().join("im-host-file");
    std::fs::write(&host_file, b"host").expect("write");
    std::fs::set_permissions(&host_file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let img = image(
        vec![tmpfs()],
        vec![],
        vec![
            content(
                0,
                "/",
                vec![
                    entry("d", 0o755, json!({"type": "dir"})),
                    entry(
                        "d/s",
                        0o777,
                        json!({"type": "symlink", "target": host_file.display().to_string()}),
                    ),
                ],
            ),
            content(0, "/d", vec![entry("s", 0o7777, json!({"type": "dir"}))]),
        ],
    );
    let o = restore(w.path(), &img, "", "");
    let mode = std::fs::metadata(&host_file)
        .expect("stat")
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(mode, 0o644, "the image changed a host file's mode");
    assert_refused(&o, &["contents[1].entries[0].path", "/d/s", "must agree"]);
}

/// A new ext4 superblock on a block device (a loop device here; on a real host, its disk).
#[test]
fn im_fresh_block_filesystem_is_refused_unless_allowed() {
    if !require_root() {
        return;
    }
    let w = tempfile::tempdir().expect("tmp");
    let disk = w.path().join("im-disk.img");
    let setup = std::process::Command::new("bash")
        .args([
            "-c",
            "set -e; truncate -s 8M \"$1\"; mkfs.ext4 -q -F \"$1\"; losetup -f --show \"$1\"",
            "im-mkfs",
        ])
        .arg(&disk)
        .output()
        .expect("run mkfs/losetup");
    assert!(
        setup.status.success(),
        "making a loop device: {}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let dev = String::from_utf8_lossy(&setup.stdout).trim().to_string();
    // Detach the loop device even when an assertion fails.
    struct Loop(String);
    impl Drop for Loop {
        fn drop(&mut self) {
            let _ = std::process::Command::new("losetup")
                .args(["-d", &self.0])
                .status();
        }
    }
    let _loop = Loop(dev.clone());
    let img = image(
        vec![json!({"fstype": "ext4", "source": dev, "origin": {"kind": "fresh"}})],
        vec![],
        vec![],
    );
    refused_unless(
        w.path(),
        &img,
        &["tree.superblocks[0]", "ext4", "--allow-fstype ext4"],
        "--allow-fstype ext4",
        "[ -d \"$W/r/lost+found\" ] && findmnt -no FSTYPE \"$W/r\" | grep -qx ext4",
    );
}

/// An external filesystem the caller did not name, with the image's hint pointing at a host
/// directory.
#[test]
fn im_unlisted_external_is_refused_unless_mapped_or_hints_allowed() {
    if !require_root() {
        return;
    }
    let w = tempfile::tempdir().expect("tmp");
    let secret = w.path().join("im-secret");
    let mine = w.path().join("im-mine");
    std::fs::create_dir_all(&secret).expect("mkdir");
    std::fs::create_dir_all(&mine).expect("mkdir");
    std::fs::write(secret.join("key"), b"secret").expect("write");
    std::fs::write(mine.join("mine"), b"mine").expect("write");
    let img = image(
        vec![
            json!({"fstype": "ext4", "source": "/dev/im-disk", "origin": {
            "kind": "external", "key": "im-disk", "hint": secret.display().to_string()}}),
        ],
        vec![],
        vec![],
    );
    refused_unless(
        w.path(),
        &img,
        &[
            "tree.superblocks[0]",
            "(external",
            "--external im-disk=PATH",
            "--allow-image-hints",
        ],
        &format!("--external im-disk={}", mine.display()),
        "[ -f \"$W/r/mine\" ] && [ ! -e \"$W/r/key\" ]",
    );
    let o = restore(w.path(), &img, "--allow-image-hints", "[ -f \"$W/r/key\" ]");
    assert_restored(&o);
}

/// Joining a peer group of the host is refused by default (the group cannot be joined in
/// the test's private namespace, so only the refusal is checked).
#[test]
fn im_outside_peer_group_is_refused_by_default() {
    if !require_root() {
        return;
    }
    let w = tempfile::tempdir().expect("tmp");
    let mut img = image(
        vec![tmpfs()],
        vec![json!({"kind": "external", "path": "/"})],
        vec![],
    );
    img["tree"]["mounts"][0]["propagation"] = json!({"master": 0});
    let o = restore(w.path(), &img, "", "");
    assert_refused(&o, &["tree.groups[0]", "--allow-outside-groups"]);
}

#[test]
fn im_device_node_is_refused_unless_allowed() {
    if !require_root() {
        return;
    }
    let w = tempfile::tempdir().expect("tmp");
    let img = tmpfs_with(vec![entry(
        "im-mem",
        0o666,
        json!({"type": "device", "block": false, "major": 1, "minor": 1}),
    )]);
    refused_unless(
        w.path(),
        &img,
        &["contents[0].entries[0]", "im-mem", "1:1", "--allow-devices"],
        "--allow-devices",
        "[ -c \"$W/r/im-mem\" ] && [ \"$(stat -c %a \"$W/r/im-mem\")\" = 666 ]",
    );
}

#[test]
fn im_setuid_file_is_refused_unless_allowed() {
    if !require_root() {
        return;
    }
    let w = tempfile::tempdir().expect("tmp");
    let img = tmpfs_with(vec![entry(
        "im-sh",
        0o4755,
        json!({"type": "file", "data": ""}),
    )]);
    refused_unless(
        w.path(),
        &img,
        &["contents[0].entries[0]", "im-sh", "--allow-setid"],
        "--allow-setid",
        "[ \"$(stat -c %a \"$W/r/im-sh\")\" = 4755 ]",
    );
}

/// Content goes into a new tmpfs or ramfs only: a new proc shows the host's kernel settings,
/// and writing "content" there would change them.
#[test]
fn im_content_for_proc_is_refused() {
    if !require_root() {
        return;
    }
    let w = tempfile::tempdir().expect("tmp");
    let img = image(
        vec![json!({"fstype": "proc", "source": "proc", "origin": {"kind": "fresh"}})],
        vec![],
        vec![content(
            0,
            "/",
            vec![
                entry("sys", 0o555, json!({"type": "dir"})),
                entry("sys/kernel", 0o555, json!({"type": "dir"})),
                entry(
                    "sys/kernel/im-nonexistent",
                    0o644,
                    json!({"type": "file", "data": ""}),
                ),
            ],
        )],
    );
    let o = restore(w.path(), &img, "", "");
    assert_refused(&o, &["contents[0].superblock", "tmpfs"]);
}
