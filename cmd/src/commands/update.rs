//! `update`: a container's resource limits.

use super::runtime;
use super::values::parse_bytes;
use crate::cli::GlobalOpts;
use anyhow::{Context, Result};
use clap::Args;
use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxResources};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct UpdateArgs {
    pub id: String,
    /// A JSON file with the new LinuxResources ('-' for standard input); the flags below
    /// amend it.
    #[arg(short = 'r', long)]
    pub resources: Option<PathBuf>,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// The limits `update` takes as flags, each a field of oci-spec's LinuxResources. Signed
/// ones take `-1` (unlimited) as the next word, as runc does.
#[derive(Args, Debug, Default)]
pub struct LimitArgs {
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-quota", allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    #[arg(long = "cpu-rt-runtime", allow_negative_numbers = true)]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Memory limit in bytes (suffixes k, m, g accepted).
    #[arg(long, value_parser = parse_bytes, allow_negative_numbers = true)]
    pub memory: Option<i64>,
    #[arg(long = "memory-reservation", value_parser = parse_bytes, allow_negative_numbers = true)]
    pub memory_reservation: Option<i64>,
    #[arg(long = "memory-swap", value_parser = parse_bytes, allow_negative_numbers = true)]
    pub memory_swap: Option<i64>,
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Ignored: the kernel deprecated kernel memory limits.
    #[arg(long = "kernel-memory", value_parser = parse_bytes, allow_negative_numbers = true)]
    pub kernel_memory: Option<i64>,
    /// Ignored: the kernel deprecated kernel memory limits.
    #[arg(long = "kernel-memory-tcp", value_parser = parse_bytes, allow_negative_numbers = true)]
    pub kernel_memory_tcp: Option<i64>,
}

impl LimitArgs {
    /// `resources` with the limits these flags give set; every other field (those of a
    /// `-r` file) is kept. A group (memory, cpu, ...) is added only when a flag sets a field
    /// of it, so that an update touches only the controllers it names.
    fn amend(&self, mut resources: LinuxResources) -> LinuxResources {
        fn cpu(r: &mut LinuxResources) -> &mut LinuxCpu {
            r.cpu_mut().get_or_insert_with(Default::default)
        }
        fn memory(r: &mut LinuxResources) -> &mut LinuxMemory {
            r.memory_mut().get_or_insert_with(Default::default)
        }
        let r = &mut resources;
        if let Some(v) = self.blkio_weight {
            r.block_io_mut()
                .get_or_insert_with(Default::default)
                .set_weight(Some(v));
        }
        if let Some(v) = self.cpu_period {
            cpu(r).set_period(Some(v));
        }
        if let Some(v) = self.cpu_quota {
            cpu(r).set_quota(Some(v));
        }
        if let Some(v) = self.cpu_share {
            cpu(r).set_shares(Some(v));
        }
        if let Some(v) = self.cpu_rt_period {
            cpu(r).set_realtime_period(Some(v));
        }
        if let Some(v) = self.cpu_rt_runtime {
            cpu(r).set_realtime_runtime(Some(v));
        }
        if let Some(v) = &self.cpuset_cpus {
            cpu(r).set_cpus(Some(v.clone()));
        }
        if let Some(v) = &self.cpuset_mems {
            cpu(r).set_mems(Some(v.clone()));
        }
        if let Some(v) = self.memory {
            memory(r).set_limit(Some(v));
        }
        if let Some(v) = self.memory_reservation {
            memory(r).set_reservation(Some(v));
        }
        if let Some(v) = self.memory_swap {
            memory(r).set_swap(Some(v));
        }
        if let Some(v) = self.pids_limit {
            r.pids_mut()
                .get_or_insert_with(Default::default)
                .set_limit(v);
        }
        resources
    }
}

/// The resources of a `-r` file ('-': standard input), or none.
fn read_resources(path: Option<&PathBuf>) -> Result<LinuxResources> {
    match path {
        None => Ok(LinuxResources::default()),
        Some(p) if p.as_os_str() == "-" => serde_json::from_reader(std::io::stdin().lock())
            .context("the resources on standard input are not valid LinuxResources JSON"),
        Some(p) => {
            let text =
                std::fs::read(p).with_context(|| format!("reading resources {}", p.display()))?;
            serde_json::from_slice(&text).with_context(|| {
                format!(
                    "resources file {} is malformed: it must hold LinuxResources JSON",
                    p.display()
                )
            })
        }
    }
}

pub fn update(g: &GlobalOpts, a: UpdateArgs) -> Result<i32> {
    let resources = a.limits.amend(read_resources(a.resources.as_ref())?);
    if a.limits.kernel_memory.is_some() || a.limits.kernel_memory_tcp.is_some() {
        tracing::warn!("kernel memory limits are deprecated by the kernel and ignored");
    }
    runtime(g).update(&a.id, &resources)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;
    use oci_spec::runtime::{
        LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder,
        LinuxResourcesBuilder,
    };

    fn limits(args: &[&str]) -> LimitArgs {
        let argv = ["ferry", "update"].iter().chain(args).chain(&["cl-c1"]);
        match Cli::try_parse_from(argv) {
            Ok(Cli {
                command: Command::Update(a),
                ..
            }) => a.limits,
            Ok(other) => panic!("{args:?} parsed as {:?}", other.command),
            Err(e) => panic!("{args:?}: {e}"),
        }
    }

    /// `--memory 10M` sets the memory limit and nothing else: no other controller is named.
    #[test]
    fn memory_flag_sets_the_memory_limit_only() {
        let got = limits(&["--memory", "10M"]).amend(LinuxResources::default());
        let want = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(10 * 1024 * 1024)
                    .build()
                    .expect("memory"),
            )
            .build()
            .expect("resources");
        assert_eq!(got, want);
        assert_eq!(
            serde_json::to_value(&got).expect("encode"),
            serde_json::json!({"memory": {"limit": 10485760}})
        );
    }

    /// Flags land in their groups and amend a `-r` file's resources without dropping the
    /// file's other fields.
    #[test]
    fn flags_amend_the_resources_file() {
        let file: LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 1048576, "reservation": 524288},
            "cpu": {"shares": 512, "cpus": "0"},
            "unified": {"io.weight": "100"}
        }))
        .expect("resources");
        let got = limits(&[
            "--memory=2m",
            "--memory-swap",
            "-1",
            "--cpu-quota",
            "20000",
            "--cpu-period=100000",
            "--cpuset-mems",
            "0",
            "--pids-limit",
            "64",
            "--blkio-weight",
            "300",
        ])
        .amend(file);
        let want = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(2 * 1024 * 1024)
                    .reservation(524288)
                    .swap(-1)
                    .build()
                    .expect("memory"),
            )
            .cpu(
                LinuxCpuBuilder::default()
                    .shares(512u64)
                    .quota(20000)
                    .period(100000u64)
                    .cpus("0")
                    .mems("0")
                    .build()
                    .expect("cpu"),
            )
            .pids(LinuxPidsBuilder::default().limit(64).build().expect("pids"))
            .block_io(
                LinuxBlockIoBuilder::default()
                    .weight(300u16)
                    .build()
                    .expect("blkio"),
            )
            .unified(std::collections::HashMap::from([(
                "io.weight".to_string(),
                "100".to_string(),
            )]))
            .build()
            .expect("resources");
        assert_eq!(got, want);
    }

    /// A size the kernel cannot take is refused while parsing, naming the flag.
    #[test]
    fn bad_sizes_are_refused_naming_the_flag() {
        let argv = ["ferry", "update", "--memory", "99999999999g", "cl-c1"];
        let err = Cli::try_parse_from(argv).expect_err("too large");
        let text = err.to_string();
        assert!(text.contains("--memory") && text.contains("2^63"), "{text}");
    }
}
