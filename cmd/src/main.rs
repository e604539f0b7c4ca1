//! ferry: a runc-compatible OCI runtime whose checkpoint/restore keeps the mount tree exact.

mod cli;
mod cr;
mod mounts;

use clap::{Parser, Subcommand};
use cli::GlobalOpts;

#[derive(Parser, Debug)]
#[command(
    name = "ferry",
    version,
    about = "An OCI runtime whose checkpoint and restore keep a container's mount tree exact",
    args_override_self = true
)]
struct Cli {
    #[command(flatten)]
    global: GlobalOpts,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Use the mount-v2 engine on its own: dump, plan, restore and diff mount trees.
    Mounts(mounts::MountsArgs),
}

fn main() {
    let args = cli::normalise_args(std::env::args());
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            // --help and --version exit 0; usage errors exit 1 as runc does.
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    if let Err(e) = cli::init_logging(&cli.global) {
        eprintln!("ferry: {e:#}");
        std::process::exit(1);
    }
    let result = match cli.command {
        Command::Mounts(args) => mounts::run(&cli.global, args),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            let msg = format!("{e:#}");
            tracing::error!("{msg}");
            if cli.global.log.is_some() {
                eprintln!("ferry: {msg}");
            }
            std::process::exit(1);
        }
    }
}
