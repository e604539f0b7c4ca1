//! One module per command. Argument shapes follow runc 1.1 as podman 4 and containerd 1.6 call
//! it; each command loads the container and lets `ferry_runtime` do the work.

pub mod checkpoint;
pub mod create;
mod criu_args;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod mounts;
pub mod pause;
pub mod ps;
pub mod restore;
pub mod resume;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod update;
mod values;

use crate::cli::GlobalOpts;
use anyhow::Result;
use ferry_runtime::lifecycle::Runtime;
use std::io::Write;

pub fn runtime(global: &GlobalOpts) -> Runtime {
    Runtime {
        root: global.root.clone(),
        systemd_cgroup: global.systemd_cgroup,
    }
}

pub(crate) fn print_json(v: &impl serde::Serialize) -> Result<i32> {
    let mut out = crate::output::stdout();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(0)
}
