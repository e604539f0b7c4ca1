//! `ps`: the processes of a container.

use super::list::Format;
use super::{print_json, runtime};
use crate::cli::GlobalOpts;
use anyhow::{bail, Context, Result};
use clap::Args;

#[derive(Args, Debug)]
pub struct PsArgs {
    pub id: String,
    /// Arguments passed to ps(1) in table format.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
    #[arg(short = 'f', long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub fn ps(g: &GlobalOpts, a: PsArgs) -> Result<i32> {
    let pids = runtime(g).pids(&a.id)?;
    if a.format == Format::Json {
        return print_json(&pids);
    }
    let ps_args = if a.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        a.ps_args
    };
    let out = std::process::Command::new("ps")
        .args(&ps_args)
        .output()
        .context("running ps(1)")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            ps_args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Ok(0);
    };
    let Some(pid_col) = header.split_whitespace().position(|c| c == "PID") else {
        bail!("ps output has no PID column: pass ps arguments that print one");
    };
    crate::outln!("{header}")?;
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            crate::outln!("{line}")?;
        }
    }
    Ok(0)
}
