//! Checkpoint and restore of real containers with volumes whose propagation ties them to the
//! host, run with ferry and, in the same run, with runc (so a table shows the difference).
//!
//! Each scenario runs in a private mount namespace that plays the host: a shared tmpfs holds
//! the volume sources, so nothing touches the machine's own mounts. The container's init
//! counts in a file; after restore the count must go on. The mount tree the init sees is
//! scanned before checkpoint and after restore and compared with `ferry mounts diff` (ids
//! aside), leaving out mounts the host propagated into volumes, which are the host's. The
//! host's own mounts must be exactly as they were before the restore.

use ferry_integration::table::record_row;
use ferry_integration::{ferry_bin, in_private_ns, require_root, result_line, WAIT_FOR};
use std::path::Path;

/// Shared part: `$RT` is the runtime binary, `$W` a scratch directory.
const LIB: &str = r#"
set -u
F=$FERRY
ST=$W/state
H=$W/host
mkdir -p $H $W/bundle
mount -t tmpfs hosttmp $H
mount --make-shared $H
mkdir -p $H/src $H/src2
echo hello > $H/src/file
cp -a /opt/ferry/images/busybox/rootfs $W/bundle/rootfs
mkdir -p $W/bundle/rootfs/vol $W/bundle/rootfs/mnt/a $W/bundle/rootfs/mnt/b
(cd $W/bundle && /usr/bin/runc spec)
jq '.process.terminal=false
  | .process.args=["sh","-c","i=0; while :; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.1; done"]
  | del(.process.rlimits) | .root.readonly=false' $W/bundle/config.json > $W/c && mv $W/c $W/bundle/config.json
cfg() { jq "$1" $W/bundle/config.json > $W/c && mv $W/c $W/bundle/config.json; }
volume() { cfg ".mounts += [{\"destination\":\"$1\",\"type\":\"bind\",\"source\":\"$2\",\"options\":$3}]"; }
pid() { "$RT" --root $ST state "$1" | jq -r .pid; }
# The init renames each new count into place, so a read sees a whole number (or no file
# before its first round: 0).
count() {
  n=$(cat /proc/$(pid "$1")/root/tmp/count 2>/dev/null)
  case "$n" in ''|*[!0-9]*) echo 0 ;; *) echo "$n" ;; esac
}
# Whether the init of $1 counts past $2.
counts_past() { [ "$(count "$1")" -gt "$2" ]; }
# The init's view, without host-propagated mounts under volumes (listed in $HOSTPOINTS).
scan() {
  binds=$(jq '[.mounts[] | select(.type=="bind") | .destination | ltrimstr("/")]' $W/bundle/config.json)
  "$F" mounts dump --no-content --root / --pid $(pid "$1") $(for h in ${HOSTPOINTS:-}; do echo --exclude $h; done) \
    -o $W/scan.json || return 1
  # Explained by the bundle and the id: where the root filesystem and each bind source
  # lie on the host, and the cgroup of the container (cgroup v1 mounts are rooted at it).
  jq --argjson binds "$binds" '.tree.superblocks as $sb
    | .tree.mounts |= map(if .mountpoint == "" then .root = "/<rootfs>"
        elif (.mountpoint as $p | $binds | index($p)) then .root = "/<bind-source>"
        elif $sb[.superblock].fstype == "cgroup" and .root != "/" then .root = "/<own-cgroup>"
        else . end)' $W/scan.json > "$2"
}
CKPT=fail; REST=fail; TREE=-; ALIVE=no; HOST=-; EXTRA=-
# The host's mounts under $H (mount point and root): a restore must not change them.
hostmounts() { awk -v h="$H" '$5 == h || index($5, h "/") == 1 { print $5, $4 }' /proc/self/mountinfo | sort; }
finish() {
  echo "RESULT checkpoint=$CKPT restore=$REST tree=$TREE alive=$ALIVE host=$HOST extra=$EXTRA"
  for c in $("$RT" --root $ST list -q 2>/dev/null); do "$RT" --root $ST delete --force $c >/dev/null 2>&1; done
}
trap finish EXIT
# The init's stdio is /dev/null: a file outside the container could not be checkpointed.
start() {
  "$RT" --root $ST --log $W/run.log run -d --bundle ${2:-$W/bundle} "$1" </dev/null >/dev/null 2>/dev/null \
    || { cat $W/run.log >&2; exit 1; }
  # Running once the init has counted (after whatever it mounts first).
  wait_for 5 counts_past "$1" 0 || exit 1
}
# A short reason from a runtime's error output or CRIU's log, without spaces (the table is
# split on them).
why() {
  r=$(cat "$@" 2>/dev/null | grep -o 'unreachable sharing\|[Ee]rror[^"]*' | grep -v 'msg=$\|rlimit' | head -n1)
  [ -n "$r" ] || r=$(tail -qn1 "$@" 2>/dev/null | head -n1)
  printf '%s' "${r:-unknown}" | cut -c1-60 | tr ' ' '_'
}
checkpoint() {
  if "$RT" --root $ST checkpoint --image-path $W/img "$1" 2>$W/ck.err; then CKPT=ok
  else CKPT="failed: $(why $W/ck.err $W/img/dump.log)"; sed -n '1,5p' $W/ck.err >&2; exit 0; fi
  "$RT" --root $ST delete --force "$1" >/dev/null 2>&1 || true
}
restore() {
  hostmounts > $W/host-before
  if "$RT" --root $ST --log $W/rs.err restore -d --image-path $W/img --bundle ${2:-$W/bundle} "$1" </dev/null >/dev/null 2>/dev/null; then REST=ok
  else REST="failed: $(why $W/rs.err $W/img/restore.log)"; sed -n '1,5p' $W/rs.err >&2; exit 0; fi
  # The restored init runs again before the host's mounts are compared.
  wait_for 5 counts_past "$1" "$(count "$1")" || true
  hostmounts > $W/host-after
  if cmp -s $W/host-before $W/host-after; then HOST=same; else HOST=changed; diff $W/host-before $W/host-after >&2; fi
}
compare() { # id-before id-after
  if "$F" mounts diff $W/before.json $W/after.json > $W/diff.txt 2>&1; then TREE=same
  else TREE="$(grep -vc '^equal' $W/diff.txt) differ"; cat $W/diff.txt >&2; fi
  a=$(count "$1")
  [ "$a" -gt 0 ] && wait_for 5 counts_past "$1" "$a" && ALIVE=yes
}
# One scenario: checkpoint and restore the same id with the same bundle.
cycle() {
  start crs-c1; c0=$(count crs-c1)
  scan crs-c1 $W/before.json
  checkpoint crs-c1
  ${HOST_CHANGE:-true}
  restore crs-c1
  scan crs-c1 $W/after.json
  compare crs-c1
  [ "$(count crs-c1)" -gt "$c0" ] || ALIVE=no
}
"#;

/// A volume of `$H/src` (`volume`: its options and what else the bundle needs) with a host
/// tmpfs at `sub` that the host replaces between checkpoint and restore; `EXTRA` says what the
/// restored container sees there.
fn host_submount_replaced(volume: &str) -> String {
    format!(
        r#"mkdir -p $H/src/sub; mount -t tmpfs sub $H/src/sub; echo old > $H/src/sub/x
HOSTPOINTS=/vol/sub
volume /vol $H/src {volume}
HOST_CHANGE='eval umount $H/src/sub; mount -t tmpfs sub2 $H/src/sub; echo new > $H/src/sub/x'
cycle
EXTRA=sees:$(cat /proc/$(pid crs-c1)/root/vol/sub/x 2>/dev/null || echo nothing)"#
    )
}

/// One `#[test]` a scenario, so that a failing scenario does not hide the others: `name` (the
/// table's key), what ferry must show beyond checkpoint and restore ok, the same tree, alive
/// and the host unchanged (`ferry_extra`), and the script run after [`LIB`]. Select scenarios
/// by test name (`cargo test --test checkpoint_restore rshared`).
macro_rules! scenarios {
    ($($test:ident {
        name: $name:literal,
        ferry_extra: $extra:expr,
        script: $script:expr $(,)?
    })*) => {
        $(
            #[test]
            fn $test() {
                scenario($name, $extra, $script);
            }
        )*
    };
}

scenarios! {
    plain_container {
        name: "plain container",
        ferry_extra: None,
        script: "cycle",
    }

    rprivate_bind_volume {
        name: "rprivate bind volume",
        ferry_extra: Some("content"),
        script: r#"volume /vol $H/src '["rbind","rprivate"]'; cycle
[ "$(cat /proc/$(pid crs-c1)/root/vol/file)" = hello ] && EXTRA=content"#,
    }

    rslave_volume_on_a_shared_host_mount {
        name: "rslave volume on a shared host mount",
        ferry_extra: Some("propagates-in"),
        script: r#"volume /vol $H/src '["rbind","rslave"]'; cycle
mkdir -p $H/src/late; mount -t tmpfs late $H/src/late
grep -q ' /vol/late ' /proc/$(pid crs-c1)/mountinfo && EXTRA=propagates-in || EXTRA=no-propagation"#,
    }

    rshared_volume {
        name: "rshared volume",
        ferry_extra: Some("in:yes,out:yes"),
        script: r#"volume /vol $H/src '["rbind","rshared"]'; cfg '.linux.rootfsPropagation="rshared"'; cycle
mkdir -p $H/src/late; mount -t tmpfs late $H/src/late
in=no; grep -q ' /vol/late ' /proc/$(pid crs-c1)/mountinfo && in=yes
nsenter -t $(pid crs-c1) -m sh -c 'mkdir -p /vol/back && mount -t tmpfs back /vol/back'
out=no; grep -q " $H/src/back " /proc/self/mountinfo && out=yes
EXTRA=in:$in,out:$out"#,
    }

    rslave_volume_with_a_host_submount {
        name: "rslave volume with a host submount",
        ferry_extra: Some("submount-back"),
        script: r#"mkdir -p $H/src/sub; mount -t tmpfs sub $H/src/sub; echo s > $H/src/sub/x
HOSTPOINTS=/vol/sub
volume /vol $H/src '["rbind","rslave"]'; cycle
[ "$(cat /proc/$(pid crs-c1)/root/vol/sub/x 2>/dev/null)" = s ] && EXTRA=submount-back || EXTRA=submount-lost"#,
    }

    host_remounts_around_checkpoint {
        name: "host remounts around checkpoint",
        ferry_extra: Some("sees:new"),
        script: &host_submount_replaced(r#"'["rbind","rslave"]'"#),
    }

    rshared_volume_host_submount_replaced {
        name: "rshared volume, host submount replaced",
        ferry_extra: Some("sees:new"),
        script: &host_submount_replaced(
            r#"'["rbind","rshared"]'; cfg '.linux.rootfsPropagation="rshared"'"#
        ),
    }

    containers_own_shared_and_slave_mounts {
        name: "container's own shared and slave mounts",
        ferry_extra: Some("slave-receives"),
        script: r#"cfg '.process.capabilities.bounding += ["CAP_SYS_ADMIN"] | .process.capabilities.effective += ["CAP_SYS_ADMIN"] | .process.capabilities.permitted += ["CAP_SYS_ADMIN"]'
cfg '.process.args=["sh","-c","mount -t tmpfs own /mnt/a && mount --make-shared /mnt/a && mount --bind /mnt/a /mnt/b && mount --make-slave /mnt/b && i=0; while :; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.1; done"]'
cycle
nsenter -t $(pid crs-c1) -m sh -c 'mkdir -p /mnt/a/ev && mount -t tmpfs ev /mnt/a/ev'
grep -q ' /mnt/b/ev ' /proc/$(pid crs-c1)/mountinfo && EXTRA=slave-receives || EXTRA=no-propagation"#,
    }

    rootfspropagation_slave {
        name: "rootfsPropagation slave",
        ferry_extra: None,
        script: r#"volume /vol $H/src '["rbind"]'; cfg '.linux.rootfsPropagation="rslave"'; cycle"#,
    }

    runbindable_volume {
        name: "runbindable volume",
        ferry_extra: None,
        script: r#"volume /vol $H/src '["rbind","runbindable"]'; cycle"#,
    }

    read_only_bind_and_tmpfs_with_content {
        name: "read-only bind and tmpfs with content",
        ferry_extra: Some("content+ro"),
        script: r#"volume /vol $H/src '["rbind","ro"]'
cfg '.mounts += [{"destination":"/scratch","type":"tmpfs","source":"tmpfs","options":["size=1m","mode=755"]}]'
cfg '.process.args=["sh","-c","echo kept > /scratch/f; i=0; while :; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.1; done"]'
cycle
[ "$(cat /proc/$(pid crs-c1)/root/scratch/f)" = kept ] && ! nsenter -t $(pid crs-c1) -m touch /vol/x 2>/dev/null && EXTRA=content+ro"#,
    }

    file_bind_mount {
        name: "file bind mount",
        ferry_extra: Some("file"),
        script: r#"cfg ".mounts += [{\"destination\":\"/etc/motd\",\"type\":\"bind\",\"source\":\"$H/src/file\",\"options\":[\"rbind\"]}]"
touch $W/bundle/rootfs/etc/motd; cycle
[ "$(cat /proc/$(pid crs-c1)/root/etc/motd)" = hello ] && EXTRA=file"#,
    }

    restore_under_a_new_id {
        name: "restore under a new id",
        ferry_extra: None,
        script: r#"volume /vol $H/src '["rbind","rslave"]'
start crs-c1; scan crs-c1 $W/before.json; checkpoint crs-c1; restore crs-c2; scan crs-c2 $W/after.json; compare crs-c2"#,
    }

    migration_new_source_path_and_host_submounts {
        name: "migration: new source path and host submounts",
        ferry_extra: Some("new-host-view"),
        script: r#"mkdir -p $H/src/old; mount -t tmpfs old $H/src/old
HOSTPOINTS="/vol/old /vol/new"
volume /vol $H/src '["rbind","rslave"]'
start crs-c1; scan crs-c1 $W/before.json; checkpoint crs-c1
cp -a $W/bundle $W/bundle2; echo hello > $H/src2/file; mkdir -p $H/src2/new; mount -t tmpfs new $H/src2/new
jq --arg s $H/src2 '(.mounts[] | select(.destination=="/vol") | .source) = $s' $W/bundle2/config.json > $W/c && mv $W/c $W/bundle2/config.json
restore crs-c1 $W/bundle2; scan crs-c1 $W/after.json; compare crs-c1
m=$(grep -c ' /vol/new \| /vol/old ' /proc/$(pid crs-c1)/mountinfo)
grep -q ' /vol/new ' /proc/$(pid crs-c1)/mountinfo && ! grep -q ' /vol/old ' /proc/$(pid crs-c1)/mountinfo && EXTRA=new-host-view"#,
    }

    names_are_bytes_odd_volume_and_host_mount_points {
        name: "names are bytes: odd volume and host mount points",
        ferry_extra: Some("odd-names"),
        // A volume whose destination holds a space, a backslash and U+0080 (a bundle is
        // JSON, so its paths are UTF-8; the host's are any bytes), and a host mount whose point
        // is not UTF-8, made once the container runs (libcontainer 0.7 cannot create a
        // container while one exists). The volume's tie still works after restore.
        script: r#"DEST="/vol a\\b"$'\xc2\x80'; mkdir -p "$W/bundle/rootfs$DEST"
cfg "$(jq -n --arg d "$DEST" --arg s "$H/src" '".mounts += [\({destination: $d, type: "bind", source: $s, options: ["rbind", "rslave"]} | tojson)]"' | jq -r .)"
start crs-by1; c0=$(count crs-by1)
mkdir "$H/odd"$'\x80\xff'; mount -t tmpfs odd "$H/odd"$'\x80\xff'
scan crs-by1 $W/before.json; checkpoint crs-by1
restore crs-by1; scan crs-by1 $W/after.json; compare crs-by1
[ "$(count crs-by1)" -gt "$c0" ] || ALIVE=no
mkdir -p $H/src/late; mount -t tmpfs late $H/src/late
[ "$(cat "/proc/$(pid crs-by1)/root$DEST/file")" = hello ] \
  && grep -qF " /vol\\040a\\134b"$'\xc2\x80'"/late " /proc/$(pid crs-by1)/mountinfo && EXTRA=odd-names"#,
    }
}

fn run(runtime: &str, bin: &str, name: &str, script: &str) -> String {
    let w = tempfile::tempdir().expect("tempdir");
    let script = format!("{WAIT_FOR}\n{LIB}\n{script}\n");
    let out = in_private_ns(
        &script,
        &[
            ("W", w.path().display().to_string()),
            ("RT", bin.to_string()),
        ],
    );
    let line = result_line(&out.stdout);
    if runtime == "ferry" {
        eprintln!(
            "--- {name} ({runtime}) stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    line
}

/// Runs one scenario with ferry and runc, records their row in the table hack/test prints
/// (target/tmp/checkpoint-table.txt) and checks ferry's outcome.
fn scenario(name: &str, ferry_extra: Option<&str>, script: &str) {
    if !require_root() {
        return;
    }
    let f = run("ferry", &ferry_bin().display().to_string(), name, script);
    let r = run("runc", "/usr/bin/runc", name, script);
    let row = format!("{name:<46} ferry: {f}\n{:<46} runc:  {r}", "");
    eprintln!("{row}");
    record_row(
        &Path::new(env!("CARGO_TARGET_TMPDIR")).join("checkpoint-table.txt"),
        "",
        name,
        &row,
    );
    let mut want = vec![
        "checkpoint=ok".to_string(),
        "restore=ok".to_string(),
        "tree=same".to_string(),
        "alive=yes".to_string(),
        "host=same".to_string(),
    ];
    if let Some(e) = ferry_extra {
        want.push(format!("extra={e}"));
    }
    let missing: Vec<String> = want
        .into_iter()
        .filter(|w| !f.split(' ').any(|x| x == w))
        .collect();
    assert!(
        missing.is_empty(),
        "{name}: ferry gave `{f}`, wanted {}",
        missing.join(", ")
    );
}
