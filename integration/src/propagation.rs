//! The cells of the propagation matrix (the bundle's propagation options, section by section)
//! and the shell that builds their containers and probes them live. Shared by the create-side
//! matrix (tests/propagation_matrix.rs) and the restore-side one (tests/restore_matrix.rs), so
//! both run exactly the same cells.
//!
//! Rows: a bind volume with each propagation option (`rbind` alone and `rbind,<option>`), and
//! each `linux.rootfsPropagation` with plain `rbind` volumes. Columns: the host's `/` private
//! or rshared, and the volume's source on a plain host directory (`plain`), inside a shared
//! host tmpfs (`tmpfs`), or (`submount`) the copy an rbind makes of a shared host tmpfs mounted
//! below a plain source.

use std::collections::BTreeMap;

/// A bind volume's propagation option (`none`: `rbind` alone).
pub const OPTIONS: [&str; 9] = [
    "none",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "private",
    "rprivate",
    "unbindable",
    "runbindable",
];

/// `linux.rootfsPropagation` values: the bind options but `none` (first in [`OPTIONS`]).
pub const ROOT_PROPAGATIONS: &[&str] = OPTIONS.split_at(1).1;

/// Where a volume's source is.
pub const SOURCES: [&str; 3] = ["plain", "tmpfs", "submount"];

/// The host's `/`.
pub const HOST_ROOTS: [&str; 2] = ["private", "rshared"];

/// Containers, one a row: every bind option's volumes share one container (volumes are
/// independent); each rootfsPropagation needs a container of its own.
pub fn rows() -> Vec<String> {
    std::iter::once("bind:all".to_string())
        .chain(ROOT_PROPAGATIONS.iter().map(|p| format!("root:{p}")))
        .collect()
}

/// The same cells in more containers, for checkpoint/restore, where one mount a runtime cannot
/// carry fails its whole container: a container per bind volume source kind, and each
/// rootfsPropagation's submount volume apart from its `/` and other volumes.
pub fn split_rows() -> Vec<String> {
    SOURCES
        .iter()
        .map(|s| format!("bind:{s}"))
        .chain(
            ROOT_PROPAGATIONS
                .iter()
                .flat_map(|p| [format!("root:{p}:base"), format!("root:{p}:submount")]),
        )
        .collect()
}

/// The row of [`split_rows`] holding `cell`.
pub fn split_row_of(cell: &str) -> String {
    match cell.split(':').collect::<Vec<_>>()[..] {
        ["bind", _, source] => format!("bind:{source}"),
        ["root", p, "submount"] => format!("root:{p}:submount"),
        ["root", p, _] => format!("root:{p}:base"),
        _ => String::new(),
    }
}

/// Every cell of one host's `/`, by `<row>:<source>` (`bind:rshared:tmpfs`,
/// `root:slave:rootmount`), in table order.
pub fn cells() -> Vec<String> {
    let mut out = Vec::new();
    for o in OPTIONS {
        for s in SOURCES {
            out.push(format!("bind:{o}:{s}"));
        }
    }
    for p in ROOT_PROPAGATIONS {
        out.push(format!("root:{p}:rootmount"));
        for s in SOURCES {
            out.push(format!("root:{p}:{s}"));
        }
    }
    out
}

/// `<TAG> <cell> <result>` lines of a script's stdout, by cell.
pub fn parse_cells(stdout: &str, tag: &str) -> BTreeMap<String, String> {
    let prefix = format!("{tag} ");
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Shell functions for a host made by the caller: `$W` scratch, `$T` a shared host tmpfs,
/// `$P` a plain host directory, `$B` the bundle with `$W/base.json` its config without
/// volumes, `$HOSTROOT` the host's `/` (private or rshared), `$IDP` the container id prefix.
///
/// - `host_ids PATH`: the peer group and master of the host mount holding PATH (0 for none).
/// - `shape PID PATH HOSTPATH`: the tie of the container mount at PATH to the host mount
///   holding HOSTPATH (`peer`: in its group, `slave`: a slave of it, `shared`: a group of the
///   container's own, `private`, `unbindable`, joined with `+`).
/// - `row_config ROW`: writes `$B/config.json` for ROW, makes its volumes' sources and sets
///   `ID`, `VOLS` (`name|source|probe` words; `probe` is the submount's path, or empty) and
///   `ROOTCELL` (the cell of the container's `/`, or empty). ROW is one of [`rows`] or
///   [`split_rows`].
/// - `probe_volume PID NAME SOURCE PROBE TAG`: prints `in=yes|no out=yes|no shape=...`: a
///   tmpfs mounted on the host at `in<TAG>` under the source seen in the container, one
///   mounted in the container at `out<TAG>` under the volume seen on the host. Both are
///   undone on both sides afterwards.
///
/// The text starts by setting `$BIND_OPTIONS` to [`OPTIONS`], the one list of bind options.
pub fn shell() -> String {
    format!("BIND_OPTIONS=\"{}\"\n{FUNCTIONS}", OPTIONS.join(" "))
}

/// [`shell`]'s functions; the bind options they loop over are `$BIND_OPTIONS`.
const FUNCTIONS: &str = r#"
host_ids() {
  t=$(findmnt -n -o TARGET -T "$1")
  awk -v t="$t" '$5 == t { g=0; m=0; for (i=7; $i != "-"; i++) { if ($i ~ /^shared:/) g=substr($i,8); if ($i ~ /^master:/) m=substr($i,8) } } END { print g, m }' /proc/self/mountinfo
}
shape() {
  read hg hm <<<"$(host_ids "$3")"
  awk -v p="$2" -v hg="$hg" -v hm="$hm" '$5 == p {
      s=""
      for (i=7; $i != "-"; i++) {
        f=$i; v=f; sub(/^[a-z_]*:/, "", v)
        if (f ~ /^shared:/) s=s "+" (v==hg ? "peer" : "shared")
        else if (f ~ /^master:/) s=s "+" (v==hg ? "slave" : (v==hm ? "slave-of-master" : "slave-other"))
        else if (f == "unbindable") s=s "+unbindable"
      }
      found=1; r=(s=="" ? "private" : substr(s,2))
    } END { print found ? r : "absent" }' /proc/$1/mountinfo
}
# volume NAME SOURCE OPTIONS_JSON [sub]: a bind volume at /v/NAME with a fresh source; with
# `sub`, the source holds a shared host tmpfs at m, and the cell is about that mount's copy.
volume() {
  probe=
  if [ "${4:-}" = sub ]; then
    mkdir -p $2/m; mount -t tmpfs pp-sub $2/m; mount --make-shared $2/m; probe=/m
  fi
  mkdir -p $2$probe/in $2$probe/out $2$probe/in1 $2$probe/out1 $2$probe/in2 $2$probe/out2
  jq ".mounts += [{\"destination\":\"/v/$1\",\"type\":\"bind\",\"source\":\"$2\",\"options\":$3}]" \
    $B/config.json > $W/c && mv $W/c $B/config.json
  VOLS="$VOLS $1|$2|$probe"
}
row_config() {
  row=$1; VOLS=""; ROOTCELL=""
  cp $W/base.json $B/config.json
  ID=$IDP-$HOSTROOT-$(echo $row | tr : -)
  case $row in
    bind:*)
      for o in $BIND_OPTIONS; do
        opts='["rbind"]'; [ $o = none ] || opts="[\"rbind\",\"$o\"]"
        case ${row#bind:} in all|plain) volume bind:$o:plain $P/bind-$o "$opts";; esac
        case ${row#bind:} in all|tmpfs) volume bind:$o:tmpfs $T/bind-$o "$opts";; esac
        case ${row#bind:} in all|submount) volume bind:$o:submount $P/bind-$o-sub "$opts" sub;; esac
      done ;;
    root:*)
      prop=${row#root:}; part=${prop#*:}; prop=${prop%%:*}; [ "$part" = "$prop" ] && part=all
      jq ".linux.rootfsPropagation=\"$prop\"" $B/config.json > $W/c && mv $W/c $B/config.json
      if [ $part != submount ]; then
        ROOTCELL=root:$prop:rootmount
        volume root:$prop:plain $P/root-$prop '["rbind"]'
        volume root:$prop:tmpfs $T/root-$prop '["rbind"]'
      fi
      [ $part = base ] || volume root:$prop:submount $P/root-$prop-sub '["rbind"]' sub ;;
  esac
}
probe_volume() {
  src=$3$4; dir=/v/$2$4
  sh=$(shape $1 $dir $src)
  mount -t tmpfs pp-in $src/in$5
  nsenter -t $1 -m mount -t tmpfs pp-out $dir/out$5 || echo "mount in the container failed: $2" >&2
  in=no; grep -q " $dir/in$5 " /proc/$1/mountinfo && in=yes
  out=no; grep -q " $src/out$5 " /proc/self/mountinfo && out=yes
  umount -l $src/in$5 2>/dev/null; umount -l $src/out$5 2>/dev/null
  nsenter -t $1 -m umount -l $dir/in$5 2>/dev/null; nsenter -t $1 -m umount -l $dir/out$5 2>/dev/null
  echo "in=$in out=$out shape=$sh"
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_propagations_are_the_bind_options_but_none() {
        let mut want: Vec<&str> = OPTIONS.iter().copied().filter(|o| *o != "none").collect();
        want.sort_unstable();
        let mut got = ROOT_PROPAGATIONS.to_vec();
        got.sort_unstable();
        assert_eq!(got, want);
    }

    /// The functions loop over exactly [`OPTIONS`], in order.
    #[test]
    fn shell_loops_over_the_bind_options() {
        let script = format!(
            "{}\nset -u\nfor o in $BIND_OPTIONS; do echo $o; done",
            shell()
        );
        let out = match std::process::Command::new("bash")
            .args(["-c", &script])
            .output()
        {
            Ok(o) => o,
            Err(e) => panic!("running bash: {e}"),
        };
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = String::from_utf8_lossy(&out.stdout);
        assert_eq!(got.lines().collect::<Vec<_>>(), OPTIONS);
        assert!(
            !FUNCTIONS.contains("rprivate"),
            "the functions name a bind option themselves instead of using $BIND_OPTIONS"
        );
    }
}
