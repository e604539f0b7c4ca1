//! runc's `events --stats` schema over libcgroups' statistics. Tools that read runc's events
//! expect runc's field names (`memory.usage.usage`, `cpu.usage.total`, ...), which differ from
//! the names libcgroups serialises. The types below mirror runc 1.1's event types field for
//! field, including which fields runc leaves out when they are zero or empty, and in runc's
//! order. Not mirrored: runc's `cpuset` object, which libcgroups does not read.

use libcgroups::stats as cg;
use serde::Serialize;
use std::collections::BTreeMap;

/// One record of `events`: its kind (`stats`), the container, what was measured.
#[derive(Debug, Serialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: String,
    pub data: Stats,
}

/// The `stats` record of container `id`.
pub fn stats_event(id: &str, s: &cg::Stats) -> Event {
    Event {
        kind: "stats",
        id: id.to_string(),
        data: Stats::from(s),
    }
}

/// The units libcgroups reads CPU times in, which differ by where they were read; runc prints
/// every CPU time in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuTimeUnits {
    /// cgroup v1: `cpuacct.stat`'s user and system times are clock ticks (USER_HZ); the
    /// totals, per-CPU times and throttled time are nanoseconds already.
    V1,
    /// cgroup v2: `cpu.stat`'s `*_usec` fields are microseconds (libcgroups' reader and
    /// ferry's own, `stats_v2`, alike).
    V2,
}

/// Brings the CPU times of `s` to nanoseconds, as runc reports them.
pub fn cpu_times_in_nanoseconds(s: &mut cg::Stats, units: CpuTimeUnits) {
    let u = &mut s.cpu.usage;
    match units {
        CpuTimeUnits::V1 => {
            let ns_per_tick = 1_000_000_000 / rustix::param::clock_ticks_per_second().max(1);
            u.usage_user = u.usage_user.saturating_mul(ns_per_tick);
            u.usage_kernel = u.usage_kernel.saturating_mul(ns_per_tick);
        }
        CpuTimeUnits::V2 => {
            for t in [
                &mut u.usage_total,
                &mut u.usage_user,
                &mut u.usage_kernel,
                &mut s.cpu.throttling.throttled_time,
            ] {
                *t = t.saturating_mul(1000);
            }
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Serialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    /// By page size (`2MB`, `1GB`).
    pub hugetlb: BTreeMap<String, Hugetlb>,
    pub intel_rdt: IntelRdt,
    /// runc prints `null` here unless it is asked about interfaces it set up itself, which
    /// neither runtime does.
    pub network_interfaces: Option<Vec<NetworkInterface>>,
}

#[derive(Debug, Serialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

#[derive(Debug, Serialize)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Serialize)]
pub struct Memory {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// The cgroup's `memory.stat`, by key.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Serialize)]
pub struct Pids {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    /// Zero (left out) when there is no limit.
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_queue_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Serialize)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    /// `Read`, `Write`, `Sync`, `Async`, `Total`, or empty for counters without one.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Debug, Serialize)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// Intel RDT (resctrl) statistics, which ferry does not read: runc prints an empty object
/// for a container without RDT settings.
#[derive(Debug, Default, Serialize)]
pub struct IntelRdt {}

/// One network interface's counters, named as runc names them (its type carries no JSON
/// names, so they are the Go field names).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkInterface {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

impl From<&cg::MemoryData> for MemoryEntry {
    fn from(m: &cg::MemoryData) -> Self {
        MemoryEntry {
            limit: m.limit,
            usage: m.usage,
            max: m.max_usage,
            failcnt: m.fail_count,
        }
    }
}

fn blkio_entries(stats: &[cg::BlkioDeviceStat]) -> Vec<BlkioEntry> {
    stats
        .iter()
        .map(|s| BlkioEntry {
            major: s.major,
            minor: s.minor,
            op: s.op_type.clone().unwrap_or_default(),
            value: s.value,
        })
        .collect()
}

impl From<&cg::Stats> for Stats {
    fn from(s: &cg::Stats) -> Self {
        let u = &s.cpu.usage;
        let t = &s.cpu.throttling;
        let m = &s.memory;
        let b = &s.blkio;
        Stats {
            cpu: Cpu {
                usage: CpuUsage {
                    total: u.usage_total,
                    percpu: u.per_core_usage_total.clone(),
                    percpu_kernel: u.per_core_usage_kernel.clone(),
                    percpu_user: u.per_core_usage_user.clone(),
                    kernel: u.usage_kernel,
                    user: u.usage_user,
                },
                throttling: Throttling {
                    periods: t.periods,
                    throttled_periods: t.throttled_periods,
                    throttled_time: t.throttled_time,
                },
            },
            memory: Memory {
                cache: m.cache,
                usage: (&m.memory).into(),
                swap: (&m.memswap).into(),
                kernel: (&m.kernel).into(),
                kernel_tcp: (&m.kernel_tcp).into(),
                raw: m.stats.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            },
            pids: Pids {
                current: s.pids.current,
                limit: s.pids.limit,
            },
            blkio: Blkio {
                io_service_bytes_recursive: blkio_entries(&b.service_bytes),
                io_serviced_recursive: blkio_entries(&b.serviced),
                io_queue_recursive: blkio_entries(&b.queued),
                io_service_time_recursive: blkio_entries(&b.service_time),
                io_wait_time_recursive: blkio_entries(&b.wait_time),
                io_merged_recursive: blkio_entries(&b.merged),
                io_time_recursive: blkio_entries(&b.time),
                sectors_recursive: blkio_entries(&b.sectors),
            },
            hugetlb: s
                .hugetlb
                .iter()
                .map(|(size, h)| {
                    let entry = Hugetlb {
                        usage: h.usage,
                        max: h.max_usage,
                        failcnt: h.fail_count,
                    };
                    (size.clone(), entry)
                })
                .collect(),
            intel_rdt: IntelRdt::default(),
            network_interfaces: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filled() -> cg::Stats {
        let mut s = cg::Stats::default();
        s.cpu.usage.usage_total = 77;
        s.cpu.usage.usage_kernel = 5;
        s.cpu.usage.usage_user = 6;
        s.cpu.usage.per_core_usage_total = vec![40, 37];
        s.cpu.usage.per_core_usage_kernel = vec![2, 3];
        s.cpu.usage.per_core_usage_user = vec![1, 5];
        s.cpu.throttling.periods = 10;
        s.cpu.throttling.throttled_periods = 4;
        s.cpu.throttling.throttled_time = 900;
        s.memory.cache = 12;
        s.memory.memory.usage = 4096;
        s.memory.memory.max_usage = 8192;
        s.memory.memory.limit = 1 << 30;
        s.memory.memory.fail_count = 1;
        s.memory.stats.insert("rss".into(), 3);
        s.pids.current = 2;
        s.pids.limit = 100;
        s.blkio.service_bytes = vec![cg::BlkioDeviceStat {
            major: 8,
            minor: 1,
            op_type: Some("Read".into()),
            value: 512,
        }];
        let huge = cg::HugeTlbStats {
            usage: 2,
            max_usage: 3,
            fail_count: 0,
        };
        s.hugetlb.insert("2MB".into(), huge);
        s
    }

    /// CPU times come out in nanoseconds whatever libcgroups read them in; before, a v1
    /// container's user time was printed in clock ticks and a v2 container's in microseconds.
    #[test]
    fn cpu_times_are_printed_in_nanoseconds() {
        let tick = rustix::param::clock_ticks_per_second();
        // (units, read: total, user, kernel, throttled; printed: the same four)
        let cases = [
            (
                CpuTimeUnits::V1,
                [7_000_000_000, 2 * tick, tick, 900],
                [7_000_000_000, 2_000_000_000, 1_000_000_000, 900],
            ),
            (
                CpuTimeUnits::V2,
                [7_000, 4_000, 3_000, 5],
                [7_000_000, 4_000_000, 3_000_000, 5_000],
            ),
        ];
        for (units, read, printed) in cases {
            let mut s = cg::Stats::default();
            let u = &mut s.cpu.usage;
            [u.usage_total, u.usage_user, u.usage_kernel] = [read[0], read[1], read[2]];
            s.cpu.throttling.throttled_time = read[3];
            cpu_times_in_nanoseconds(&mut s, units);
            let u = &s.cpu.usage;
            let got = [
                u.usage_total,
                u.usage_user,
                u.usage_kernel,
                s.cpu.throttling.throttled_time,
            ];
            assert_eq!(got, printed, "{units:?}");
        }
    }

    /// Field names, nesting and order as runc prints them, every field present.
    #[test]
    fn filled_stats_print_as_runc_prints_them() {
        let text = serde_json::to_string(&stats_event("sm-1", &filled())).expect("serialise");
        let expected = concat!(
            r#"{"type":"stats","id":"sm-1","data":{"#,
            r#""cpu":{"usage":{"total":77,"percpu":[40,37],"percpu_kernel":[2,3],"#,
            r#""percpu_user":[1,5],"kernel":5,"user":6},"#,
            r#""throttling":{"periods":10,"throttledPeriods":4,"throttledTime":900}},"#,
            r#""memory":{"cache":12,"#,
            r#""usage":{"limit":1073741824,"usage":4096,"max":8192,"failcnt":1},"#,
            r#""swap":{"limit":0,"failcnt":0},"kernel":{"limit":0,"failcnt":0},"#,
            r#""kernelTCP":{"limit":0,"failcnt":0},"raw":{"rss":3}},"#,
            r#""pids":{"current":2,"limit":100},"#,
            r#""blkio":{"ioServiceBytesRecursive":"#,
            r#"[{"major":8,"minor":1,"op":"Read","value":512}]},"#,
            r#""hugetlb":{"2MB":{"usage":2,"max":3,"failcnt":0}},"#,
            r#""intel_rdt":{},"network_interfaces":null}}"#
        );
        assert_eq!(text, expected);
    }

    /// What runc leaves out when it is zero or empty, and what it always prints.
    #[test]
    fn empty_stats_leave_out_what_runc_leaves_out() {
        let v = serde_json::to_value(stats_event("sm-2", &cg::Stats::default())).expect("json");
        assert_eq!(
            v["data"],
            json!({
                "cpu": {"usage": {"kernel": 0, "user": 0}, "throttling": {}},
                "memory": {
                    "usage": {"limit": 0, "failcnt": 0},
                    "swap": {"limit": 0, "failcnt": 0},
                    "kernel": {"limit": 0, "failcnt": 0},
                    "kernelTCP": {"limit": 0, "failcnt": 0},
                },
                "pids": {},
                "blkio": {},
                "hugetlb": {},
                "intel_rdt": {},
                "network_interfaces": null,
            })
        );
    }
}
