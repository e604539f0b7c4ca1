//! `list`: every container, as a table or JSON.

use super::runtime;
use crate::cli::GlobalOpts;
use anyhow::Result;
use clap::{Args, ValueEnum};
use ferry_runtime::lifecycle::RuncState;
use std::io::Write;

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[arg(short = 'f', long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Print container ids only.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

pub fn list(g: &GlobalOpts, a: ListArgs) -> Result<i32> {
    let all = runtime(g).list()?;
    if a.quiet {
        for s in &all {
            crate::outln!("{}", s.id)?;
        }
        return Ok(0);
    }
    match a.format {
        Format::Json => {
            let mut out = crate::output::stdout();
            serde_json::to_writer(&mut out, &all)?;
            writeln!(out)?;
            Ok(0)
        }
        Format::Table => {
            print_table(&all)?;
            Ok(0)
        }
    }
}

fn print_table(all: &[RuncState]) -> std::io::Result<()> {
    let rows: Vec<[String; 6]> = all
        .iter()
        .map(|s| {
            [
                s.id.clone(),
                s.pid.to_string(),
                s.status.clone(),
                s.bundle.display().to_string(),
                s.created.clone(),
                s.owner.clone(),
            ]
        })
        .collect();
    let head = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from);
    let mut width = [0usize; 6];
    for r in std::iter::once(&head).chain(rows.iter()) {
        for (w, c) in width.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.len());
        }
    }
    for r in std::iter::once(&head).chain(rows.iter()) {
        let line: Vec<String> = r
            .iter()
            .zip(width.iter())
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        crate::outln!("{}", line.join("   ").trim_end())?;
    }
    Ok(())
}
