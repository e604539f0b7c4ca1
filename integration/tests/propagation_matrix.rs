//! The propagation a bundle asks for, at create, with ferry and runc in the same run.
//!
//! Rows: a bind volume with each propagation option (`rbind` alone and `rbind,<option>`),
//! and each `linux.rootfsPropagation` with plain `rbind` volumes. Columns: the host's `/`
//! private or rshared (the host is a private mount namespace made for the run), and the
//! volume's source on a plain host directory or inside a shared host tmpfs, or (`submount`) the
//! copy an rbind makes of a shared host tmpfs mounted below a plain source. Each cell says
//! whether a mount made on the host under the source appears in the container (`in`),
//! whether a mount made in the container under the volume appears on the host (`out`), and
//! the volume's peer/master shape relative to the host mount holding its source (`peer`: in
//! the host's group, `slave`: a slave of it, `shared`: a group of the container's own).
//! rootfsPropagation rows also give the shape of the container's `/`.
//!
//! Every cell must be runc's, except where runc 1.1 is wrong ([`runc_is_wrong`] says why and
//! what ferry does instead). The table goes to stdout and target/tmp/propagation-table.txt.

use ferry_integration::table::record_row;
use ferry_integration::{in_private_ns, propagation, require_root, runtime_bin};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Runs every row with `$RT` on a host whose `/` is `$HOSTROOT` (private or rshared) and
/// prints `CELL <row> <source> <result>` lines. `$W` is scratch; the shell functions are
/// [`propagation::shell`].
const MATRIX: &str = r#"
set -u
[ "$HOSTROOT" = rshared ] && mount --make-rshared /
T=$W/tmpfs; P=$W/plain; ST=$W/state; B=$W/bundle; IDP=pp
mkdir -p $T $P $B
mount -t tmpfs pp-host $T
mount --make-shared $T
cp -a /opt/ferry/images/busybox/rootfs $B/rootfs
(cd $B && /usr/bin/runc spec)
jq '.process.terminal=false | del(.process.rlimits) | .process.args=["sleep","1000"]' \
  $B/config.json > $W/base.json
cleanup() { for c in $("$RT" --root $ST list -q 2>/dev/null); do "$RT" --root $ST delete --force $c >/dev/null 2>&1; done; }
trap cleanup EXIT
run_row() {
  row_config $1
  id=$ID
  if ! "$RT" --root $ST create --bundle $B $id >$W/create.out 2>&1; then
    # The last words of the error: the table is split on spaces.
    err=$(tail -n1 $W/create.out | tr -d '"' | sed 's/.*: //' | cut -c1-40 | tr ' ' '_')
    [ -z "$ROOTCELL" ] || echo "CELL $ROOTCELL create-failed:${err:-unknown}"
    for v in $VOLS; do echo "CELL ${v%%|*} create-failed:${err:-unknown}"; done
    "$RT" --root $ST delete --force $id >/dev/null 2>&1
    return
  fi
  pid=$("$RT" --root $ST state $id | jq -r .pid)
  [ -z "$ROOTCELL" ] || echo "CELL $ROOTCELL shape=$(shape $pid / $B/rootfs)"
  for v in $VOLS; do
    IFS='|' read name src probe <<<"$v"
    echo "CELL $name $(probe_volume $pid $name $src "$probe" "")"
  done
  "$RT" --root $ST delete --force $id >/dev/null 2>&1
}
for row in $ROWS; do
  run_row $row
done
"#;

/// Cells by `<row>:<source>` (`bind:rshared:tmpfs`, `root:slave:rootmount`).
fn run_matrix(runtime: &str, host_root: &str) -> BTreeMap<String, String> {
    let w = match tempfile::tempdir() {
        Ok(w) => w,
        Err(e) => panic!("creating a scratch directory: {e}"),
    };
    let out = in_private_ns(
        &format!("{}\n{MATRIX}", propagation::shell()),
        &[
            ("W", w.path().display().to_string()),
            ("RT", runtime_bin(runtime)),
            ("HOSTROOT", host_root.to_string()),
            ("ROWS", propagation::rows().join(" ")),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stderr.trim().is_empty() {
        eprintln!("--- {runtime} on a {host_root} host, stderr:\n{stderr}");
    }
    propagation::parse_cells(&String::from_utf8_lossy(&out.stdout), "CELL")
}

/// Where runc 1.1 is wrong: why, and what ferry's cell must be instead (given the cells of
/// the same host).
fn runc_is_wrong(cell: &str, ferry: &BTreeMap<String, String>) -> Option<(&'static str, String)> {
    let parts: Vec<&str> = cell.split(':').collect();
    let [row, prop, source] = parts[..] else {
        return None;
    };
    if row != "root" {
        return None;
    }
    match (prop, source) {
        // runc makes `/` unbindable, then cannot bind the root filesystem from it (EINVAL):
        // no container at all. ferry makes the container's `/` unbindable, as asked, and
        // gives the volumes the default ties.
        ("unbindable" | "runbindable", "rootmount") => Some((
            "runc's bind of the rootfs fails on the unbindable mount it made",
            "shape=unbindable".into(),
        )),
        ("unbindable" | "runbindable", _) => Some((
            "runc's bind of the rootfs fails on the unbindable mount it made; ferry gives the default ties",
            ferry
                .get(&format!("bind:none:{source}"))
                .cloned()
                .unwrap_or_default(),
        )),
        // runc sets `/` shared before it makes the mount holding the root filesystem private
        // and never again: the container's `/` ends private. ferry's `/` is shared, as the
        // bundle asks (in a group of the container's own: no tie to the host either way).
        ("shared" | "rshared", "rootmount") => Some((
            "runc leaves the container's / private although asked shared",
            "shape=shared".into(),
        )),
        _ => None,
    }
}

/// The host's `/` private: every cell as runc gives it, or as [`runc_is_wrong`] says.
#[test]
fn propagation_options_take_effect_as_runc_applies_them_host_root_private() {
    host_root_matrix("private");
}

/// The host's `/` rshared: every cell as runc gives it, or as [`runc_is_wrong`] says.
#[test]
fn propagation_options_take_effect_as_runc_applies_them_host_root_rshared() {
    host_root_matrix("rshared");
}

/// Every cell on a host whose `/` is `host_root` (one of [`propagation::HOST_ROOTS`]), with
/// ferry and runc; the rows go to the table hack/test prints (target/tmp/propagation-table.txt),
/// one test a host `/`, so that a failure on one does not hide the other.
fn host_root_matrix(host_root: &str) {
    if !require_root() {
        return;
    }
    let mut table = String::new();
    let mut failures = Vec::new();
    let mut counts = (0, 0, 0);
    let ferry = run_matrix("ferry", host_root);
    let runc = run_matrix("runc", host_root);
    for cell in &propagation::cells() {
        let f = ferry.get(cell).map(String::as_str).unwrap_or("missing");
        let r = runc.get(cell).map(String::as_str).unwrap_or("missing");
        let verdict = match runc_is_wrong(cell, &ferry) {
            _ if f == "missing" || r == "missing" => {
                failures.push(format!("{host_root} host, {cell}: no result"));
                counts.2 += 1;
                "FAIL (no result)".to_string()
            }
            Some((why, want)) if f == want => {
                counts.1 += 1;
                format!("ferry differs: {why}")
            }
            Some((why, want)) => {
                failures.push(format!(
                    "{host_root} host, {cell}: ferry gave `{f}`, wanted `{want}` ({why})"
                ));
                counts.2 += 1;
                format!("FAIL: wanted {want}")
            }
            None if f == r => {
                counts.0 += 1;
                "same".to_string()
            }
            None => {
                failures.push(format!(
                    "{host_root} host, {cell}: ferry gave `{f}`, runc `{r}`"
                ));
                counts.2 += 1;
                "FAIL: not runc's".to_string()
            }
        };
        let _ = writeln!(
            table,
            "{host_root:<7} {cell:<26} ferry: {f:<34} runc: {r:<34} {verdict}"
        );
    }
    let _ = write!(
        table,
        "{host_root} host /: {} cells: {} as runc, {} differ where runc is wrong (reason given), {} failed",
        counts.0 + counts.1 + counts.2,
        counts.0,
        counts.1,
        counts.2
    );
    eprintln!("{table}");
    record_row(
        &Path::new(env!("CARGO_TARGET_TMPDIR")).join("propagation-table.txt"),
        "",
        host_root,
        &table,
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
