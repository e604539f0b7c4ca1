//! runc's `events --stats` schema over libcgroups' statistics. Tools that read runc's events
//! expect runc's field names (`memory.usage.usage`, `cpu.usage.total`, ...), which differ from
//! the names libcgroups serialises.

use libcgroups::stats::{BlkioDeviceStat, MemoryData, Stats};
use serde_json::{json, Map, Value};

fn memory_entry(m: &MemoryData) -> Value {
    json!({"limit": m.limit, "usage": m.usage, "max": m.max_usage, "failcnt": m.fail_count})
}

fn blkio_list(stats: &[BlkioDeviceStat]) -> Value {
    stats
        .iter()
        .map(|s| {
            json!({"major": s.major, "minor": s.minor,
                   "op": s.op_type.clone().unwrap_or_default(), "value": s.value})
        })
        .collect()
}

/// The `data` object of runc's stats event.
pub fn runc_stats(s: &Stats) -> Value {
    let mut data = Map::new();
    let u = &s.cpu.usage;
    data.insert(
        "cpu".into(),
        json!({
            "usage": {"total": u.usage_total, "percpu": u.per_core_usage_total,
                      "percpu_kernel": u.per_core_usage_kernel,
                      "percpu_user": u.per_core_usage_user,
                      "kernel": u.usage_kernel, "user": u.usage_user},
            "throttling": {"periods": s.cpu.throttling.periods,
                           "throttled_periods": s.cpu.throttling.throttled_periods,
                           "throttled_time": s.cpu.throttling.throttled_time},
        }),
    );
    let m = &s.memory;
    data.insert(
        "memory".into(),
        json!({
            "cache": m.cache,
            "usage": memory_entry(&m.memory),
            "swap": memory_entry(&m.memswap),
            "kernel": memory_entry(&m.kernel),
            "kernelTCP": memory_entry(&m.kernel_tcp),
            "raw": m.stats,
        }),
    );
    let mut pids = Map::new();
    pids.insert("current".into(), s.pids.current.into());
    if s.pids.limit > 0 {
        pids.insert("limit".into(), s.pids.limit.into());
    }
    data.insert("pids".into(), Value::Object(pids));
    let b = &s.blkio;
    data.insert(
        "blkio".into(),
        json!({
            "ioServiceBytesRecursive": blkio_list(&b.service_bytes),
            "ioServicedRecursive": blkio_list(&b.serviced),
            "ioQueueRecursive": blkio_list(&b.queued),
            "ioServiceTimeRecursive": blkio_list(&b.service_time),
            "ioWaitTimeRecursive": blkio_list(&b.wait_time),
            "ioMergedRecursive": blkio_list(&b.merged),
            "ioTimeRecursive": blkio_list(&b.time),
            "sectorsRecursive": blkio_list(&b.sectors),
        }),
    );
    let huge: Map<String, Value> = s
        .hugetlb
        .iter()
        .map(|(size, h)| {
            (
                size.clone(),
                json!({"usage": h.usage, "max": h.max_usage, "failcnt": h.fail_count}),
            )
        })
        .collect();
    data.insert("hugetlb".into(), Value::Object(huge));
    Value::Object(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_runc_field_names() {
        let mut s = Stats::default();
        s.memory.memory.usage = 4096;
        s.memory.memory.max_usage = 8192;
        s.cpu.usage.usage_total = 77;
        s.pids.current = 2;
        let v = runc_stats(&s);
        assert_eq!(v["memory"]["usage"]["usage"], 4096);
        assert_eq!(v["memory"]["usage"]["max"], 8192);
        assert_eq!(v["cpu"]["usage"]["total"], 77);
        assert_eq!(v["pids"]["current"], 2);
        assert!(v["pids"].get("limit").is_none());
        assert!(v["blkio"]["ioServiceBytesRecursive"].is_array());
    }
}
