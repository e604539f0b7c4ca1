//! `events --stats` on a cgroup v2 host whose container cgroup lacks some controllers.
//!
//! libcgroups reads every controller's files and fails when one is not enabled for the
//! cgroup (`cpu.stat` has no `nr_periods` without the cpu controller, `pids.current` is missing
//! without pids), which systemd hosts that do not delegate every controller give. runc reports
//! what there is: CPU usage from `cpu.stat` (always there), the number of processes from
//! `cgroup.procs` without the pids controller, nothing for a controller that is absent. ferry
//! reads the same way when libcgroups cannot.

use libcgroups::stats::{BlkioDeviceStat, Stats};
use std::collections::HashMap;
use std::path::Path;

/// `key value` lines (`cpu.stat`, `memory.stat`).
fn flat_keyed(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// A single number, `max` as u64::MAX (no limit); `None` when the file is absent.
fn single(dir: &Path, file: &str) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join(file)).ok()?;
    match text.trim() {
        "max" => Some(u64::MAX),
        v => v.parse().ok(),
    }
}

/// The `io.stat` lines (`MAJ:MIN rbytes=N wbytes=N rios=N wios=N ...`) as runc's
/// `ioServiceBytesRecursive` and `ioServicedRecursive` entries.
fn io_entries(text: &str) -> (Vec<BlkioDeviceStat>, Vec<BlkioDeviceStat>) {
    let mut bytes = Vec::new();
    let mut ios = Vec::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some((major, minor)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "rios" => (&mut ios, "Read"),
                "wios" => (&mut ios, "Write"),
                _ => continue,
            };
            list.push(BlkioDeviceStat {
                major,
                minor,
                op_type: Some(op.into()),
                value,
            });
        }
    }
    (bytes, ios)
}

/// The statistics of the cgroup v2 directory `dir`, from the files that are there, in the
/// units libcgroups reads them in (CPU times in microseconds), so that one conversion
/// ([`crate::stats::cpu_times_in_nanoseconds`]) serves both readers.
pub fn read(dir: &Path) -> std::io::Result<Stats> {
    let procs = std::fs::read_to_string(dir.join("cgroup.procs"))?;
    let mut s = Stats::default();
    let cpu = flat_keyed(&std::fs::read_to_string(dir.join("cpu.stat")).unwrap_or_default());
    let get = |k: &str| cpu.get(k).copied().unwrap_or(0);
    s.cpu.usage.usage_total = get("usage_usec");
    s.cpu.usage.usage_user = get("user_usec");
    s.cpu.usage.usage_kernel = get("system_usec");
    s.cpu.throttling.periods = get("nr_periods");
    s.cpu.throttling.throttled_periods = get("nr_throttled");
    s.cpu.throttling.throttled_time = get("throttled_usec");
    s.pids.current = single(dir, "pids.current")
        .unwrap_or_else(|| procs.lines().filter(|l| !l.is_empty()).count() as u64);
    s.pids.limit = single(dir, "pids.max")
        .filter(|&l| l != u64::MAX)
        .unwrap_or(0);
    if let Some(usage) = single(dir, "memory.current") {
        s.memory.memory.usage = usage;
        s.memory.memory.limit = single(dir, "memory.max").unwrap_or(u64::MAX);
        s.memory.memory.max_usage = single(dir, "memory.peak").unwrap_or(0);
        s.memory.memswap.usage = single(dir, "memory.swap.current").unwrap_or(0);
        s.memory.memswap.limit = single(dir, "memory.swap.max").unwrap_or(0);
        s.memory.stats =
            flat_keyed(&std::fs::read_to_string(dir.join("memory.stat")).unwrap_or_default());
        s.memory.cache = s.memory.stats.get("file").copied().unwrap_or(0);
    }
    if let Ok(text) = std::fs::read_to_string(dir.join("io.stat")) {
        let (bytes, ios) = io_entries(&text);
        s.blkio.service_bytes = bytes;
        s.blkio.serviced = ios;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_is_there() {
        let d = tempfile::tempdir().expect("tempdir");
        let w = |f: &str, t: &str| std::fs::write(d.path().join(f), t).expect("write");
        w("cgroup.procs", "12\n13\n");
        w("cpu.stat", "usage_usec 5\nuser_usec 3\nsystem_usec 2\n");
        w(
            "io.stat",
            "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0\n",
        );
        let s = read(d.path()).expect("read");
        assert_eq!(s.cpu.usage.usage_total, 5);
        assert_eq!(s.cpu.usage.usage_kernel, 2);
        let mut printed = read(d.path()).expect("read");
        crate::stats::cpu_times_in_nanoseconds(&mut printed, crate::stats::CpuTimeUnits::V2);
        assert_eq!(printed.cpu.usage.usage_total, 5000);
        assert_eq!(printed.cpu.usage.usage_kernel, 2000);
        assert_eq!(s.pids.current, 2);
        assert_eq!(s.pids.limit, 0);
        assert_eq!(s.memory.memory.usage, 0);
        assert_eq!(s.blkio.service_bytes.len(), 2);
        assert_eq!(s.blkio.serviced[1].value, 2);
        w("pids.current", "7\n");
        w("pids.max", "max\n");
        w("memory.current", "4096\n");
        w("memory.max", "max\n");
        w("memory.stat", "anon 1\nfile 9\n");
        let s = read(d.path()).expect("read");
        assert_eq!(s.pids.current, 7);
        assert_eq!(s.memory.memory.limit, u64::MAX);
        assert_eq!(s.memory.cache, 9);
    }
}
