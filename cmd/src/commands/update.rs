//! `update`: a container's resource limits.

use super::runtime;
use super::values::parse_bytes;
use crate::cli::GlobalOpts;
use anyhow::{Context, Result};
use clap::Args;
use oci_spec::runtime::LinuxResources;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct UpdateArgs {
    pub id: String,
    /// A JSON file with the new LinuxResources ('-' for standard input).
    #[arg(short = 'r', long)]
    pub resources: Option<PathBuf>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Memory limit in bytes (suffixes k, m, g accepted).
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    #[arg(long = "kernel-memory")]
    pub kernel_memory: Option<String>,
    #[arg(long = "kernel-memory-tcp")]
    pub kernel_memory_tcp: Option<String>,
}

pub fn update(g: &GlobalOpts, a: UpdateArgs) -> Result<i32> {
    let mut res: serde_json::Value = match &a.resources {
        Some(p) if p.as_os_str() == "-" => serde_json::from_reader(std::io::stdin().lock())
            .context("reading resources from standard input")?,
        Some(p) => {
            let text =
                std::fs::read(p).with_context(|| format!("reading resources {}", p.display()))?;
            serde_json::from_slice(&text)
                .with_context(|| format!("resources file {} is malformed", p.display()))?
        }
        None => serde_json::json!({}),
    };
    let set = |res: &mut serde_json::Value, group: &str, key: &str, v: serde_json::Value| {
        if !res[group].is_object() {
            res[group] = serde_json::json!({});
        }
        res[group][key] = v;
    };
    if let Some(v) = a.blkio_weight {
        set(&mut res, "blockIO", "weight", v.into());
    }
    if let Some(v) = a.cpu_period {
        set(&mut res, "cpu", "period", v.into());
    }
    if let Some(v) = a.cpu_quota {
        set(&mut res, "cpu", "quota", v.into());
    }
    if let Some(v) = a.cpu_share {
        set(&mut res, "cpu", "shares", v.into());
    }
    if let Some(v) = a.cpu_rt_period {
        set(&mut res, "cpu", "realtimePeriod", v.into());
    }
    if let Some(v) = a.cpu_rt_runtime {
        set(&mut res, "cpu", "realtimeRuntime", v.into());
    }
    if let Some(v) = &a.cpuset_cpus {
        set(&mut res, "cpu", "cpus", v.clone().into());
    }
    if let Some(v) = &a.cpuset_mems {
        set(&mut res, "cpu", "mems", v.clone().into());
    }
    if let Some(v) = &a.memory {
        set(&mut res, "memory", "limit", parse_bytes(v)?.into());
    }
    if let Some(v) = &a.memory_reservation {
        set(&mut res, "memory", "reservation", parse_bytes(v)?.into());
    }
    if let Some(v) = &a.memory_swap {
        set(&mut res, "memory", "swap", parse_bytes(v)?.into());
    }
    if let Some(v) = a.pids_limit {
        set(&mut res, "pids", "limit", v.into());
    }
    if a.kernel_memory.is_some() || a.kernel_memory_tcp.is_some() {
        tracing::warn!("kernel memory limits are deprecated by the kernel and ignored");
    }
    let resources: LinuxResources =
        serde_json::from_value(res).context("the resources are not valid LinuxResources")?;
    runtime(g).update(&a.id, &resources)?;
    Ok(0)
}
