//! Every cell of the propagation matrix (tests/propagation_matrix.rs, the cells and probes of
//! [`propagation`]) through checkpoint and restore, on the same host and on a second one, with
//! ferry and runc in the same run, side by side in target/tmp/restore-matrix-table.txt.
//!
//! Each container is probed live before checkpoint (a tmpfs mounted on the host under each
//! volume's source seen in the container: `in`; one mounted in the container under the volume
//! seen on the host: `out`; the volume's tie to the host mount holding its source: `shape`),
//! checkpointed once, restored on the same host and probed again, deleted, then restored from a
//! copy of the image on a second host and probed again. The second host is a fresh private
//! mount namespace with the same `/` propagation, its own shared tmpfs at the same path and its
//! own shared tmpfs below each submount source: the same bundle paths, other peer groups.
//!
//! Cells share containers: every bind option's volumes are volumes of one container (for each
//! host `/`); each rootfsPropagation has a container of its own. A runtime that refuses a
//! restore refuses it for every cell of that container.
//!
//! ferry must give every cell back exactly (the same `in`, `out` and shape after restore as
//! before checkpoint) or refuse the restore with a message naming the mount whose tie it cannot
//! make ("refused"). runc's outcome is recorded, not asserted.

use ferry_integration::table::record_row;
use ferry_integration::{in_private_ns, propagation, require_root, runtime_bin};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Restore-side shell, after [`propagation::shell`] in `$W/lib.sh` (the second host's nested
/// shell sources it too). `$RT`, `$W`, `$HOSTROOT` come from the environment.
const LIB: &str = r#"
T=$W/tmpfs; P=$W/plain; ST=$W/state; B=$W/bundle; IDP=rm
r() { "$RT" --root $ST "$@"; }
# A short reason from error output, without spaces (the table is split on them).
why() {
  x=$(cat "$@" 2>/dev/null | grep -o 'lost [0-9]* tie[^"]*\|[Ee]rror[^"]*\|refuse[^"]*' | grep -v 'msg=$\|rlimit' | head -n1)
  [ -n "$x" ] || x=$(tail -qn1 "$@" 2>/dev/null | head -n1)
  printf '%s' "${x:-unknown}" | cut -c1-60 | tr ' ' '_'
}
# PHASE VALUE for every cell of the row's container.
all_cells() {
  [ -z "$ROOTCELL" ] || echo "$1 $ROOTCELL $2"
  for v in $VOLS; do echo "$1 ${v%%|*} $2"; done
}
# Live probes of every cell of the running container $ID: PHASE TAG.
probe_row() {
  pid=$(r state $ID | jq -r .pid)
  [ -z "$ROOTCELL" ] || echo "$1 $ROOTCELL shape=$(shape $pid / $B/rootfs)"
  for v in $VOLS; do
    IFS='|' read name src probe <<<"$v"
    echo "$1 $name $(probe_volume $pid $name $src "$probe" $2)"
  done
}
# Restore $ID from IMAGE here and probe it: PHASE IMAGE. A failed restore's error goes to
# stdout as `ERR PHASE ID line`, for the test to read the mounts it names.
restore_row() {
  if r --log $W/rs.log restore -d --image-path $2 --bundle $B $ID </dev/null >/dev/null 2>$W/rs.err; then
    probe_row $1 2
  else
    all_cells $1 "failed:$(why $W/rs.err $W/rs.log $2/restore.log)"
    sed "s|^|ERR $1 $ID |" $W/rs.err
  fi
  r delete --force $ID >/dev/null 2>&1
}
# The second host, in a nested private mount namespace: ROW.
second_host() {
  set -u
  trap 'for c in $(r list -q 2>/dev/null); do r delete --force $c >/dev/null 2>&1; done' EXIT
  [ "$HOSTROOT" = rshared ] && mount --make-rshared /
  # Its own shared tmpfs below every submount source and at $T: other peer groups.
  findmnt -rn -o TARGET | grep "^$P/" | sort -r | while read -r m; do umount -l "$m"; done
  umount -l $T; mount -t tmpfs rm-host2 $T; mount --make-shared $T
  row_config $1
  cp -a $W/img $W/img2
  restore_row X $W/img2
}
"#;

/// One host's run: every row started, probed (`B`), checkpointed, restored here (`S`) and on
/// the second host (`X`).
const MATRIX: &str = r#"
set -u
. $W/lib.sh
[ "$HOSTROOT" = rshared ] && mount --make-rshared /
mkdir -p $T $P $B
mount -t tmpfs rm-host $T; mount --make-shared $T
cp -a /opt/ferry/images/busybox/rootfs $B/rootfs
(cd $B && /usr/bin/runc spec)
jq '.process.terminal=false | del(.process.rlimits) | .process.args=["sleep","1000"]' \
  $B/config.json > $W/base.json
cleanup() {
  for c in $(r list -q 2>/dev/null); do r delete --force $c >/dev/null 2>&1; done
  # A runtime's failed restore may leave its cgroups: remove ours, deepest first.
  find /sys/fs/cgroup -depth -type d -name "$IDP-$HOSTROOT-*" -exec rmdir {} \; 2>/dev/null
}
trap cleanup EXIT
for row in $ROWS; do
  row_config $row
  # Standard streams on /dev/null: CRIU cannot dump a file on a host mount the container lacks.
  if ! r --log $W/run.log run -d --bundle $B $ID </dev/null >/dev/null 2>&1; then
    val="no-start:$(why $W/run.log)"
    all_cells B "$val"; all_cells S "$val"; all_cells X "$val"
    r delete --force $ID >/dev/null 2>&1; continue
  fi
  probe_row B 1
  rm -rf $W/img $W/img2
  if ! r checkpoint --image-path $W/img $ID 2>$W/ck.err; then
    val="ck-failed:$(why $W/ck.err $W/img/dump.log)"
    sed "s|^|ERR C $ID |" $W/ck.err
    all_cells S "$val"; all_cells X "$val"
    r delete --force $ID >/dev/null 2>&1; continue
  fi
  r delete --force $ID >/dev/null 2>&1
  restore_row S $W/img
  unshare -m --propagation private bash -c ". $W/lib.sh; second_host $row"
done
"#;

/// One runtime's results on one host: before (`B`), after restore here (`S`) and on the
/// second host (`X`), and the error lines of failed restores by phase and container.
struct Run {
    phases: BTreeMap<&'static str, BTreeMap<String, String>>,
    errors: Vec<String>,
    stderr: String,
}

fn run_matrix(runtime: &str, host_root: &str) -> Run {
    let w = match tempfile::tempdir() {
        Ok(w) => w,
        Err(e) => panic!("creating a scratch directory: {e}"),
    };
    if let Err(e) = std::fs::write(
        w.path().join("lib.sh"),
        format!("{}\n{LIB}", propagation::shell()),
    ) {
        panic!("writing lib.sh: {e}");
    }
    let out = in_private_ns(
        MATRIX,
        &[
            ("W", w.path().display().to_string()),
            ("RT", runtime_bin(runtime)),
            ("HOSTROOT", host_root.to_string()),
            // FERRY_ROWS="bind:all root:slave" runs only those containers (when debugging).
            (
                "ROWS",
                std::env::var("FERRY_ROWS").unwrap_or_else(|_| propagation::split_rows().join(" ")),
            ),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    Run {
        phases: ["B", "S", "X"]
            .into_iter()
            .map(|p| (p, propagation::parse_cells(&stdout, p)))
            .collect(),
        errors: stdout
            .lines()
            .filter_map(|l| l.strip_prefix("ERR "))
            .map(str::to_string)
            .collect(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Run {
    fn get(&self, phase: &str, cell: &str) -> &str {
        self.phases
            .get(phase)
            .and_then(|m| m.get(cell))
            .map(String::as_str)
            .unwrap_or("missing")
    }

    /// The restore error lines of `phase` for the container of `cell`.
    fn restore_errors(&self, phase: &str, host_root: &str, cell: &str) -> Vec<&str> {
        let id = format!(
            "rm-{host_root}-{}",
            propagation::split_row_of(cell).replace(':', "-")
        );
        let prefix = format!("{phase} {id} ");
        self.errors
            .iter()
            .filter_map(|l| l.strip_prefix(prefix.as_str()))
            .collect()
    }
}

/// The container path of a cell's mount: the volume (or the submount's copy below it), or `/`.
fn mount_path(cell: &str) -> String {
    match cell.rsplit_once(':') {
        Some((_, "rootmount")) => "/".into(),
        Some((_, "submount")) => format!("/v/{cell}/m"),
        _ => format!("/v/{cell}"),
    }
}

/// Cells where ferry is known not to give the tie back yet: why. Every other cell is asserted.
fn known_failure(_host_root: &str, cell: &str, _phase: &str) -> Option<&'static str> {
    // ferry makes the container's `/` unbindable as asked (runc cannot start such a container
    // at all); CRIU 4.1 then fails to restore it: "mnt: Unable to mount tmpfs in tmp: Invalid
    // argument" (criu/mount.c), before ferry can re-tie anything.
    if cell.starts_with("root:unbindable:") || cell.starts_with("root:runbindable:") {
        return Some("CRIU cannot restore an unbindable /");
    }
    None
}

/// What a runtime's restore gave a cell, against its probe before checkpoint: `kept` (equal),
/// `refused` (the restore failed naming the mount), the new probe, or the failure.
fn outcome(run: &Run, host_root: &str, cell: &str, phase: &str) -> String {
    let before = run.get("B", cell);
    let after = run.get(phase, cell);
    // Only a container that ran and was probed can keep anything.
    let probed = before.starts_with("in=") || before.starts_with("shape=");
    if probed && after == before {
        return "kept".into();
    }
    if after.starts_with("failed:") {
        let path = mount_path(cell);
        let named = run
            .restore_errors(phase, host_root, cell)
            .iter()
            .any(|l| l.contains(&format!("{path}: ")) && l.contains("tie"));
        if named {
            return "refused".into();
        }
    }
    after.to_string()
}

/// The host's `/` private: every cell kept or refused by ferry.
#[test]
fn every_propagation_cell_survives_restore_ferry_and_runc_host_root_private() {
    host_root_matrix("private");
}

/// The host's `/` rshared: every cell kept or refused by ferry.
#[test]
fn every_propagation_cell_survives_restore_ferry_and_runc_host_root_rshared() {
    host_root_matrix("rshared");
}

/// What the cells' restores came to: outcome classes counted per runtime and restoring host,
/// known failures seen, and ferry's failures.
#[derive(Default)]
struct Tally {
    counts: BTreeMap<String, usize>,
    known_seen: BTreeMap<String, usize>,
    failures: Vec<String>,
}

impl Tally {
    /// Counts one restore of `cell` (phase `S`: on the same host, `X`: on a second one) by
    /// both runtimes, records a ferry failure unless it is a known one, and gives what the
    /// table shows for ferry and runc.
    fn restore(
        &mut self,
        ferry: &Run,
        runc: &Run,
        host_root: &str,
        cell: &str,
        phase: &str,
        target: &str,
    ) -> (String, String) {
        let fb = ferry.get("B", cell);
        let f = outcome(ferry, host_root, cell, phase);
        let r = outcome(runc, host_root, cell, phase);
        let class = |o: &str| match o {
            "kept" | "refused" | "missing" => o.to_string(),
            o if o.starts_with("failed:") => "failed".into(),
            o if o.starts_with("ck-failed:") => "ck-failed".into(),
            o if o.starts_with("no-start:") => "no-start".into(),
            _ => "changed".into(),
        };
        *self
            .counts
            .entry(format!("runc  {target:<6} host: {}", class(&r)))
            .or_default() += 1;
        let known = known_failure(host_root, cell, phase);
        let ok = fb.starts_with("in=") || fb.starts_with("shape=");
        let ferry_class = match (ok && (f == "kept" || f == "refused"), known) {
            (true, None) => class(&f),
            (true, Some(why)) => {
                self.failures.push(format!(
                    "{host_root} host, {cell}, {target} host: listed as a known failure ({why}) but ferry gave `{f}`: update known_failure"
                ));
                class(&f)
            }
            (false, Some(why)) => {
                let k = format!("{why} (ferry: {})", class(&f));
                *self.known_seen.entry(k).or_default() += 1;
                "known failure".to_string()
            }
            (false, None) => {
                self.failures.push(format!(
                    "{host_root} host, {cell}, {target} host: ferry before `{fb}`, after `{f}`; restore errors: {:?}",
                    ferry.restore_errors(phase, host_root, cell)
                ));
                class(&f)
            }
        };
        *self
            .counts
            .entry(format!("ferry {target:<6} host: {ferry_class}"))
            .or_default() += 1;
        let f = if ferry_class == "known failure" {
            "KNOWN-FAIL".to_string()
        } else {
            f
        };
        // Failures in full are in the test's output; the table keeps their start.
        (f, r.chars().take(40).collect())
    }
}

/// Every cell on a host whose `/` is `host_root` (one of [`propagation::HOST_ROOTS`]) through
/// checkpoint/restore with ferry and runc; the rows go to the table hack/test prints
/// (target/tmp/restore-matrix-table.txt), one test a host `/`, so that a failure on one does
/// not hide the other.
fn host_root_matrix(host_root: &str) {
    if !require_root() {
        return;
    }
    let started = std::time::Instant::now();
    let cells = propagation::cells();
    let mut table = String::new();
    let mut tally = Tally::default();
    let ferry = run_matrix("ferry", host_root);
    let runc = run_matrix("runc", host_root);
    if !ferry.stderr.trim().is_empty() {
        eprintln!("--- ferry on a {host_root} host, stderr:\n{}", ferry.stderr);
    }
    for cell in &cells {
        let fb = ferry.get("B", cell);
        let rb = runc.get("B", cell);
        let shown: Vec<(String, String)> = [("S", "same"), ("X", "second")]
            .into_iter()
            .map(|(phase, target)| tally.restore(&ferry, &runc, host_root, cell, phase, target))
            .collect();
        let _ = writeln!(
            table,
            "{host_root:<7} {cell:<26} {fb:<34} {:<10} {:<10} | {rb:<34} {:<10} {}",
            shown[0].0, shown[1].0, shown[0].1, shown[1].1
        );
    }
    let Tally {
        counts,
        known_seen,
        failures,
    } = tally;
    for (k, n) in &counts {
        let _ = writeln!(table, "{host_root} host /, {k}: {n}");
    }
    for (why, n) in &known_seen {
        let _ = writeln!(
            table,
            "{host_root} host /, KNOWN-FAIL, {n} cell restores: {why}"
        );
    }
    let _ = write!(
        table,
        "{host_root} host /: {} cells x 2 restoring hosts; kept: the live probes and shape after restore equal those before checkpoint; refused: restore failed naming the mount; {:.0?}",
        cells.len(),
        started.elapsed()
    );
    eprintln!("{table}");
    record_row(
        &Path::new(env!("CARGO_TARGET_TMPDIR")).join("restore-matrix-table.txt"),
        &format!(
            "{:<7} {:<26} {:<34} {:<10} {:<10} | {:<34} {:<10} second",
            "host /", "cell", "ferry before checkpoint", "same", "second", "runc before", "same"
        ),
        host_root,
        &table,
    );
    // An rshared volume inside a shared host tmpfs was once refused ("peer group only in B"):
    // it restores, both ways live, everywhere.
    for line in table.lines().filter(|l| l.contains(" bind:rshared:tmpfs ")) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert!(
            fields.get(5..7) == Some(&["kept", "kept"][..]),
            "the rshared volume in a shared host tmpfs must restore with its ties: {line}"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
