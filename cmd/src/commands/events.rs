//! `events`: resource statistics of a container, once or at an interval.

use super::runtime;
use super::values::parse_interval;
use crate::cli::GlobalOpts;
use anyhow::Result;
use clap::Args;
use std::io::Write;

#[derive(Args, Debug)]
pub struct EventsArgs {
    pub id: String,
    /// Print one statistics record and exit.
    #[arg(long)]
    pub stats: bool,
    /// Interval between statistics records (e.g. 5s).
    #[arg(long, default_value = "5s")]
    pub interval: String,
}

pub fn events(g: &GlobalOpts, a: EventsArgs) -> Result<i32> {
    let rt = runtime(g);
    let interval = parse_interval(&a.interval)?;
    loop {
        let rec = rt.stats(&a.id)?;
        let mut out = crate::output::stdout();
        serde_json::to_writer(&mut out, &rec)?;
        writeln!(out)?;
        out.flush()?;
        if a.stats {
            return Ok(0);
        }
        std::thread::sleep(interval);
    }
}
