//! Ties to the host survive checkpoint and restore: a container mount that is a peer or a
//! slave of a host mount before checkpoint is one of the corresponding host mount after
//! restore, on the same host and on a second one, whatever the volume's options; a tie the
//! restoring host cannot give back fails the restore. Run with ferry and, in the same run,
//! with runc, side by side in target/tmp/ties-table.txt.
//!
//! The oracle is live behaviour: before checkpoint and after restore the host mounts a tmpfs
//! under the volume's source and the test looks for it in the container, and the container
//! mounts one under the volume and the test looks for it on the host; plus the shape of the
//! tie (the container's `shared:`/`master:` against the host mount's). Every scenario runs in
//! a private mount namespace that plays the host; the "second host" is a fresh private
//! namespace below it with its own shared tmpfs at the same path.

use ferry_integration::table::record_row;
use ferry_integration::{
    in_private_ns, require_root, result_line, runtime_bin, tagged_line, unique_id, WAIT_FOR,
};
use std::path::Path;

/// Sourced by every scenario (also from the second host's nested shell). Settings come from
/// the environment: RP (rootfsPropagation), VOPT (the volume's options, JSON), SRCKIND
/// (tmpfs: the source is inside a shared host tmpfs; dir: a plain directory), ROOTSHARED (1:
/// the host's `/` is rshared), COMPAT (1: CRIU's compat mount engine via its config file),
/// CG (1: also report the tie of the container's cpu cgroup mount), ID (the container's id,
/// and so its cgroup's name: unique to the run, see [`unique_id`]).
const LIB: &str = r#"
ST=$W/state; B=$W/bundle; H=$W/host
if [ "$SRCKIND" = tmpfs ]; then SRC=$H/src; else SRC=$W/plain/src; fi
r() { "$RT" --root $ST "$@"; }
pid() { r state $1 | jq -r .pid; }
# The container's init has become its process (sh), past the runtime's own init code.
init_runs() { [ "$(cat /proc/$(pid $1)/comm 2>/dev/null)" = sh ]; }
cfg() { jq "$1" $B/config.json > $W/c && mv $W/c $B/config.json; }
field() { echo "$1" | grep -o "$2:[0-9]*" | cut -d: -f2; }
# The tie of container mount $2 (of pid $1) to host mount $3: peer, slave, peer+slave, none;
# "own" when it is also shared in a group the host mount is not in.
shape() {
  c=$(awk -v m="$2" '$5 == m' /proc/$1/mountinfo | tail -n1)
  h=$(awk -v m="$3" '$5 == m' /proc/self/mountinfo | tail -n1)
  cs=$(field "$c" shared); cm=$(field "$c" master); hs=$(field "$h" shared); hm=$(field "$h" master)
  t=""
  [ -n "$hs" ] && [ "$cs" = "$hs" ] && t=peer
  [ -n "$cm" ] && { [ "$cm" = "$hs" ] || [ "$cm" = "$hm" ]; } && t="${t:+$t+}slave"
  [ -n "$cs" ] && [ "$cs" != "$hs" ] && t="${t:+$t+}own"
  echo "${t:-none}"
}
# Live probes, tagged $2: host to container, container to host; and the tie's shape.
probe() {
  p=$(pid $1)
  hm=$(findmnt -n -o TARGET --target $SRC | tail -n1)
  s=$(shape $p /vol "$hm")
  mkdir -p $SRC/in$2 $SRC/out$2
  # Propagation is done when mount(2) returns: look at once.
  mount -t tmpfs pin $SRC/in$2
  in=no; grep -q " /vol/in$2 " /proc/$p/mountinfo && in=yes
  umount -l $SRC/in$2
  nsenter -t $p -m mount -t tmpfs pout /vol/out$2 2>/dev/null
  out=no; grep -q " $SRC/out$2 " /proc/self/mountinfo && out=yes
  nsenter -t $p -m umount -l /vol/out$2 2>/dev/null
  [ $out = no ] || umount -l $SRC/out$2 2>/dev/null
  cg=""; [ "$CG" = 1 ] && cg=",cg:$(shape $p /sys/fs/cgroup/cpu /sys/fs/cgroup/cpu)"
  echo "$s,in:$in,out:$out$cg"
}
# A short reason from error output, without spaces (the table is split on them).
why() {
  x=$(cat "$@" 2>/dev/null | grep -o 'lost [0-9]* tie[^"]*\|[Ee]rror[^"]*\|refuse[^"]*' | grep -v 'msg=$\|rlimit' | head -n1)
  [ -n "$x" ] || x=$(tail -qn1 "$@" 2>/dev/null | head -n1)
  printf '%s' "${x:-unknown}" | cut -c1-50 | tr ' ' '_'
}
restore_here() {
  if r --log $W/rs.log restore -d --image-path $W/img --bundle $B $ID </dev/null >/dev/null 2>$W/rs.err; then RS=ok; AFTER=$(probe $ID 2)
  else RS="failed:$(why $W/rs.err $W/rs.log $W/img/restore.log)"; AFTER=-; sed -n 1,6p $W/rs.err >&2; fi
}
# The second host: the first host's tmpfs is gone, a new shared one is at the same path.
second_host() {
  umount -l $H; mount -t tmpfs host2 $H; mount --make-shared $H; mkdir -p $H/src
  restore_here
  echo "RS=$RS AFTER=$AFTER" > $W/second.env
  r delete --force $ID >/dev/null 2>&1 || true
}
"#;

/// The scenario proper: make the host and the bundle, start, probe, checkpoint, restore (here
/// or on the second host), probe again.
const SCENARIO: &str = r#"
set -u
. $W/lib.sh
mkdir -p $H $B $W/plain/src
[ "$ROOTSHARED" = 1 ] && mount --make-rshared /
mount -t tmpfs hosttmp $H; mount --make-shared $H; mkdir -p $H/src
cp -a /opt/ferry/images/busybox/rootfs $B/rootfs; mkdir -p $B/rootfs/vol
(cd $B && /usr/bin/runc spec)
cfg '.process.terminal=false | del(.process.rlimits) | .root.readonly=false
  | .process.args=["sh","-c","trap \"exit 0\" TERM; while :; do sleep 0.1; done"]'
cfg ".mounts += [{\"destination\":\"/vol\",\"type\":\"bind\",\"source\":\"$SRC\",\"options\":$VOPT}]"
cfg ".linux.rootfsPropagation=\"$RP\""
CK=fail; RS=-; BEFORE=-; AFTER=-
finish() {
  left=$(r list -q 2>/dev/null | wc -l)
  for c in $(r list -q 2>/dev/null); do r delete --force $c >/dev/null 2>&1; done
  cgleft=$(find /sys/fs/cgroup -type d -name $ID | wc -l)
  echo "RESULT ck=$CK rs=$RS before=$BEFORE after=$AFTER left=$left cgleft=$cgleft"
}
trap finish EXIT
r --log $W/run.log run -d --bundle $B $ID </dev/null >/dev/null 2>&1 || { CK="no-start:$(why $W/run.log)"; exit 0; }
wait_for 5 init_runs $ID || { CK=no-init; exit 0; }
# A volume made shared inside the container: its own peer group beside its tie to the host.
[ "${INSIDE:-0}" = 1 ] && nsenter -t $(pid $ID) -m mount --make-shared /vol
BEFORE=$(probe $ID 1)
if r checkpoint --image-path $W/img $ID 2>$W/ck.err; then CK=ok
else CK="failed:$(why $W/ck.err $W/img/dump.log)"; exit 0; fi
r delete --force $ID >/dev/null 2>&1 || true
eval "${HOST_CHANGE:-true}"
# CRIU takes its compat mount engine on restore only (a dump refuses the option).
if [ "$COMPAT" = 1 ]; then
  echo mntns-compat-mode > $W/criu.conf
  cfg ".annotations[\"org.criu.config\"]=\"$W/criu.conf\""
fi
if [ "${WHERE:-same}" = second ]; then
  unshare -m --propagation private bash -c ". $W/lib.sh; second_host"
  . $W/second.env
else
  restore_here
fi
"#;

#[derive(Clone, Copy)]
struct Cell {
    rootfs: &'static str,
    volume: &'static str,
    source: &'static str,
    second_host: bool,
    root_shared: bool,
    compat: bool,
    /// The container makes its volume shared after start.
    shared_inside: bool,
}

impl Cell {
    fn name(&self) -> String {
        format!(
            "{}/{}/{}{}{}{}{}",
            self.rootfs,
            self.volume,
            self.source,
            if self.second_host { "/second" } else { "/same" },
            if self.root_shared {
                "/root-rshared"
            } else {
                ""
            },
            if self.compat { "/compat" } else { "" },
            if self.shared_inside {
                "/made-shared-inside"
            } else {
                ""
            },
        )
    }

    fn options(&self) -> &'static str {
        match self.volume {
            "rslave" => r#"["rbind","rslave"]"#,
            "rshared" => r#"["rbind","rshared"]"#,
            _ => r#"["rbind"]"#,
        }
    }
}

/// A cell with the common settings: the first host restores, its `/` private, CRIU's own
/// mount engine, the volume left as the bundle makes it.
const fn cell(rootfs: &'static str, volume: &'static str, source: &'static str) -> Cell {
    Cell {
        rootfs,
        volume,
        source,
        second_host: false,
        root_shared: false,
        compat: false,
        shared_inside: false,
    }
}

/// One `#[test]` a cell, so that a failing cell does not hide the others. Select cells by
/// test name (`cargo test --test restore_ties second`).
macro_rules! tie_cells {
    ($($test:ident: $cell:expr;)*) => {
        $(
            #[test]
            fn $test() {
                tie_cell($cell);
            }
        )*
    };
}

// A representative subset of rootfsPropagation x volume option x source x restoring host (the
// full product takes too long for one test run).
tie_cells! {
    shared_none_tmpfs: cell("shared", "none", "tmpfs");
    shared_rslave_tmpfs: cell("shared", "rslave", "tmpfs");
    shared_rshared_tmpfs: cell("shared", "rshared", "tmpfs");
    rshared_none_tmpfs: cell("rshared", "none", "tmpfs");
    rshared_rslave_tmpfs: cell("rshared", "rslave", "tmpfs");
    rshared_rshared_tmpfs: cell("rshared", "rshared", "tmpfs");
    slave_none_tmpfs: cell("slave", "none", "tmpfs");
    slave_rslave_tmpfs: cell("slave", "rslave", "tmpfs");
    slave_rshared_tmpfs: cell("slave", "rshared", "tmpfs");
    private_none_tmpfs: cell("private", "none", "tmpfs");
    private_rslave_tmpfs: cell("private", "rslave", "tmpfs");
    private_rshared_tmpfs: cell("private", "rshared", "tmpfs");
    // A plain directory is tied to the host only when the host's `/` is shared.
    shared_none_dir_root_rshared: Cell { root_shared: true, ..cell("shared", "none", "dir") };
    private_rshared_dir: cell("private", "rshared", "dir");
    rshared_none_tmpfs_second_host: Cell { second_host: true, ..cell("rshared", "none", "tmpfs") };
    private_rslave_tmpfs_second_host: Cell { second_host: true, ..cell("private", "rslave", "tmpfs") };
    private_rshared_tmpfs_second_host: Cell { second_host: true, ..cell("private", "rshared", "tmpfs") };
    rshared_none_tmpfs_root_rshared: Cell { root_shared: true, ..cell("rshared", "none", "tmpfs") };
    rshared_none_tmpfs_compat: Cell { compat: true, ..cell("rshared", "none", "tmpfs") };
    slave_none_tmpfs_made_shared_inside: Cell { shared_inside: true, ..cell("slave", "none", "tmpfs") };
}

fn run_cell(runtime: &str, cell: &Cell, host_change: Option<&str>) -> (String, String) {
    let w = tempfile::tempdir().expect("tempdir");
    std::fs::write(w.path().join("lib.sh"), format!("{WAIT_FOR}{LIB}")).expect("writing lib.sh");
    let flag = |b: bool| if b { "1" } else { "0" }.to_string();
    let mut env = vec![
        ("W", w.path().display().to_string()),
        ("RT", runtime_bin(runtime)),
        ("ID", unique_id("tt-ties")),
        ("RP", cell.rootfs.to_string()),
        ("VOPT", cell.options().to_string()),
        ("SRCKIND", cell.source.to_string()),
        ("ROOTSHARED", flag(cell.root_shared)),
        ("COMPAT", flag(cell.compat)),
        ("CG", flag(cell.root_shared)),
        ("INSIDE", flag(cell.shared_inside)),
        (
            "WHERE",
            if cell.second_host { "second" } else { "same" }.to_string(),
        ),
    ];
    if let Some(h) = host_change {
        env.push(("HOST_CHANGE", h.to_string()));
    }
    let out = in_private_ns(SCENARIO, &env);
    let line = result_line(&out.stdout);
    (line, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn field<'a>(result: &'a str, key: &str) -> &'a str {
    result
        .split(' ')
        .find_map(|f| f.strip_prefix(&format!("{key}=")))
        .unwrap_or("")
}

/// Runs `cell` with ferry and runc, records their row in the table hack/test prints
/// (target/tmp/ties-table.txt) and checks that ferry gave the tie back.
fn tie_cell(cell: Cell) {
    if !require_root() {
        return;
    }
    let (f, ferr) = run_cell("ferry", &cell, None);
    let (r, _) = run_cell("runc", &cell, None);
    let show = |x: &str| {
        format!(
            "{} {} | {} -> {}",
            field(x, "ck"),
            field(x, "rs"),
            field(x, "before"),
            field(x, "after")
        )
    };
    let row = format!(
        "{:<38} {:<8} {:<62} {}",
        cell.name(),
        "",
        show(&f),
        show(&r)
    );
    eprintln!("{row}");
    record_row(
        &Path::new(env!("CARGO_TARGET_TMPDIR")).join("ties-table.txt"),
        &format!(
            "{:<38} {:<8} {:<62} runc\n{:<38} {:<8} (ck restore | tie,in,out before -> after)",
            "rootfsPropagation/volume/source/host", "", "ferry", "", ""
        ),
        &cell.name(),
        &row,
    );
    let ok = field(&f, "ck") == "ok"
        && field(&f, "rs") == "ok"
        && field(&f, "before") != "-"
        && field(&f, "before") == field(&f, "after");
    assert!(ok, "{}: ferry gave `{f}`\n{ferr}", cell.name());
}

/// A tie this host cannot give back fails the restore, names the mount and what it got, and
/// leaves no container behind: the host's mount holding the volume's source is made private
/// between checkpoint and restore, so the volume (a peer of it at checkpoint) cannot rejoin
/// its group.
#[test]
fn restore_fails_when_a_tie_cannot_be_made() {
    if !require_root() {
        return;
    }
    let cell = cell("rshared", "none", "tmpfs");
    let (f, ferr) = run_cell("ferry", &cell, Some("mount --make-private $H"));
    assert_eq!(field(&f, "ck"), "ok", "checkpoint: {f}\n{ferr}");
    assert!(
        field(&f, "before").starts_with("peer,"),
        "the volume must be a peer of the host mount before checkpoint: {f}\n{ferr}"
    );
    assert!(
        field(&f, "rs").starts_with("failed:lost_1_tie"),
        "restore must fail on the lost tie: {f}\n{ferr}"
    );
    assert!(
        ferr.contains("/vol: was peer of the host mount holding the source of volume /vol"),
        "the message must name the mount and its tie: {ferr}"
    );
    assert_eq!(
        field(&f, "left"),
        "0",
        "a failed restore leaves no container: {f}"
    );
    assert_eq!(
        field(&f, "cgleft"),
        "0",
        "a failed restore leaves no cgroup: {f}"
    );
    eprintln!("ferry refused, as it must:\n{ferr}");
}

/// The cgroups scenario in one runtime (`$RT`): container `$ID` is checkpointed while other
/// cgroups named `$OTHER`1 exist at each hierarchy's root, restored after they are replaced by
/// `$OTHER`2, and deleted; it prints the container's cgroups and a RESULT line.
const CGROUPS_SCRIPT: &str = r#"
set -u
B=$W/b; ST=$W/st; mkdir -p $B
cp -a /opt/ferry/images/busybox/rootfs $B/rootfs; (cd $B && /usr/bin/runc spec)
jq '.process.terminal=false | del(.process.rlimits) | del(.linux.cgroupsPath)
  | .process.args=["sh","-c","trap \"exit 0\" TERM; while :; do sleep 0.1; done"]' $B/config.json > $W/c && mv $W/c $B/config.json
r() { "$RT" --root $ST "$@"; }
OTHERS=""
for h in /sys/fs/cgroup/*/; do
  [ -e ${h}cgroup.procs ] || continue
  mkdir -p ${h}${OTHER}1 && OTHERS="$OTHERS ${h}${OTHER}1"
done
cleanup() {
  for c in $(r list -q 2>/dev/null); do r delete --force $c >/dev/null 2>&1; done
  for d in $OTHERS; do rmdir $d 2>/dev/null; done
}
trap cleanup EXIT
r run -d --bundle $B $ID </dev/null >/dev/null 2>&1 || { echo "RESULT start=failed"; exit 0; }
P=$(r state $ID | jq .pid)
# The container's init has become its process (sh), past the runtime's own init code.
wait_for 5 eval '[ "$(cat /proc/$P/comm 2>/dev/null)" = sh ]' || { echo "RESULT start=no-init"; exit 0; }
echo "CGROUPS $(tr '\n' ' ' < /proc/$P/cgroup)"
r checkpoint --image-path $W/img $ID 2>$W/ck.err || { echo "RESULT checkpoint=failed"; sed -n 1,3p $W/ck.err >&2; exit 0; }
OTHER_IN_DUMP=$(grep -ac $OTHER $W/img/cgroup.img)
OWN_IN_DUMP=$(grep -ac $ID $W/img/cgroup.img)
# Someone else's cgroups change between checkpoint and restore.
for d in $OTHERS; do rmdir $d; done
OTHERS=""
for h in /sys/fs/cgroup/*/; do
  [ -e ${h}cgroup.procs ] || continue
  mkdir -p ${h}${OTHER}2 && OTHERS="$OTHERS ${h}${OTHER}2"
done
if r --log $W/rs.log restore -d --image-path $W/img --bundle $B $ID </dev/null >/dev/null 2>$W/rs.err; then RS=ok
else RS=failed; sed -n 1,3p $W/rs.err >&2; fi
[ $RS = ok ] && echo "RESTORED $(tr '\n' ' ' < /proc/$(r state $ID | jq .pid)/cgroup)"
r delete --force $ID >/dev/null 2>&1
LEFT=$(find /sys/fs/cgroup -type d -name "$ID" | tr '\n' ' ')
echo "RESULT other_in_dump=$OTHER_IN_DUMP own_in_dump=$OWN_IN_DUMP restore=$RS left=[$LEFT]"
"#;

/// A container's cgroups are its own in every hierarchy (named ones and the unified one of
/// a hybrid host included), at runc's default place (the id below the caller's cgroup), so
/// CRIU dumps only them: a cgroup of someone else's that was there at checkpoint and is gone
/// at restore does not matter, and delete leaves nothing behind.
#[test]
fn checkpoint_holds_only_the_containers_cgroups() {
    if !require_root() {
        return;
    }
    let script = format!("{WAIT_FOR}{CGROUPS_SCRIPT}");
    // The container's cgroups and the others' are made at fixed places (below the caller's
    // cgroup, at each hierarchy's root): their names are this run's own.
    let id = unique_id("tt-ties-cg");
    let run = |runtime: &str| {
        let w = tempfile::tempdir().expect("tempdir");
        let out = in_private_ns(
            &script,
            &[
                ("W", w.path().display().to_string()),
                ("RT", runtime_bin(runtime)),
                ("ID", id.clone()),
                ("OTHER", unique_id("tt-others")),
            ],
        );
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (f, ferr) = run("ferry");
    let (r, _) = run("runc");
    eprintln!("ferry:\n{f}\nrunc:\n{r}");
    let line = |out: &str, tag: &str| tagged_line(out, tag).unwrap_or("").to_string();
    let cgroups = line(&f, "CGROUPS ");
    assert!(
        !cgroups.is_empty(),
        "ferry's container did not start:\n{f}\n{ferr}"
    );
    assert!(
        !cgroups.contains("youki"),
        "no youki in cgroup names: {cgroups}"
    );
    for entry in cgroups.split(' ').filter(|e| !e.is_empty()) {
        assert!(
            entry.ends_with(&format!("/{id}")),
            "the container has its own cgroup in every hierarchy (named and unified too): {entry} in {cgroups}"
        );
    }
    // Where runc's caller sits at the same cgroup in every hierarchy, ferry and runc agree.
    let runc_cgroups = line(&r, "CGROUPS ");
    let own = std::fs::read_to_string("/proc/self/cgroup").expect("reading /proc/self/cgroup");
    for (ours, theirs) in cgroups.split(' ').zip(runc_cgroups.split(' ')) {
        let hierarchy = ours.rsplit_once(':').map(|x| x.0).unwrap_or("");
        let caller_at_root = own.lines().any(|l| {
            l.rsplit_once(':')
                .is_some_and(|(h, p)| h == hierarchy && p == "/")
        });
        if caller_at_root {
            assert_eq!(ours, theirs, "ferry and runc place the container alike");
        }
    }
    let result = line(&f, "RESULT ");
    assert!(
        result.contains("other_in_dump=0 "),
        "CRIU's dump must hold only the container's cgroups: {result}\n{ferr}"
    );
    assert!(!result.contains("own_in_dump=0 "), "{result}");
    assert!(
        result.contains("restore=ok"),
        "restore after others' cgroups changed: {result}\n{ferr}"
    );
    assert!(
        result.ends_with("left=[]"),
        "delete leaves no cgroup: {result}"
    );
}
