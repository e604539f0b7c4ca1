//! `kill`: a signal to a container's init, or to all its processes.

use super::runtime;
use crate::cli::GlobalOpts;
use anyhow::Result;
use clap::Args;
use ferry_runtime::lifecycle::parse_signal_number;

#[derive(Args, Debug)]
pub struct KillArgs {
    pub id: String,
    /// Signal name or number (default SIGTERM).
    pub signal: Option<String>,
    /// Signal every process of the container, not just its init.
    #[arg(short = 'a', long)]
    pub all: bool,
}

pub fn kill(g: &GlobalOpts, a: KillArgs) -> Result<i32> {
    let signo = parse_signal_number(a.signal.as_deref().unwrap_or("SIGTERM"))?;
    runtime(g).kill_number(&a.id, signo, a.all)?;
    Ok(0)
}
