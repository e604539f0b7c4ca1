//! ferry: a runc-compatible OCI runtime whose checkpoint/restore keeps the mount tree exact.
#![deny(unsafe_code)]

mod argv;
mod cli;
mod commands;
mod logging;
mod output;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command};

fn main() {
    // A pipe nobody reads fails the write instead of killing ferry (a hook that ignores its
    // stdin must not end `create` half-way); output::stdout still ends ferry quietly when
    // the reader of its own output goes away (`ferry list | head`), as runc does.
    output::catch_sigpipe();
    let args = argv::normalise_args(&argv::Flags::of(&Cli::command()), std::env::args_os());
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            // --help and --version exit 0; usage errors exit 1 as runc does.
            let code = if e.use_stderr() { 1 } else { 0 };
            // urfave/cli's wording for a flag without its value: podman probes for it.
            if matches!(
                e.kind(),
                clap::error::ErrorKind::InvalidValue | clap::error::ErrorKind::NoEquals
            ) && e.to_string().contains("a value is required")
            {
                if let Some(clap::error::ContextValue::String(arg)) =
                    e.get(clap::error::ContextKind::InvalidArg)
                {
                    let flag = arg.split_whitespace().next().unwrap_or(arg);
                    eprintln!("flag needs an argument: {flag}");
                    std::process::exit(1);
                }
            }
            let _ = e.print();
            std::process::exit(code);
        }
    };
    if let Err(e) = logging::init_logging(&cli.global) {
        eprintln!("ferry: {e:#}");
        std::process::exit(1);
    }
    if cli.command.enters_container() {
        if let Err(e) = ferry_runtime::sealed::ensure_sealed() {
            tracing::error!("re-executing from a sealed copy of the ferry binary: {e}");
            std::process::exit(1);
        }
    }
    let g = &cli.global;
    // runc's exec fails with 255, so its own errors never look like the process's exit code.
    let error_code = if matches!(cli.command, Command::Exec(_)) {
        255
    } else {
        1
    };
    let result = match cli.command {
        Command::Create(a) => commands::create::create(g, a),
        Command::Start { id } => commands::start::start(g, id),
        Command::Run(a) => commands::run::run(g, a),
        Command::State { id } => commands::state::state(g, id),
        Command::List(a) => commands::list::list(g, a),
        Command::Kill(a) => commands::kill::kill(g, a),
        Command::Delete(a) => commands::delete::delete(g, a),
        Command::Exec(a) => commands::exec::exec(g, a),
        Command::Ps(a) => commands::ps::ps(g, a),
        Command::Pause { id } => commands::pause::pause(g, id),
        Command::Resume { id } => commands::resume::resume(g, id),
        Command::Update(a) => commands::update::update(g, a),
        Command::Events(a) => commands::events::events(g, a),
        Command::Features => commands::features::features(),
        Command::Spec(a) => commands::spec::spec(g, a),
        Command::Checkpoint(a) => commands::checkpoint::checkpoint(g, a),
        Command::Restore(a) => commands::restore::restore(g, a),
        Command::Mounts(args) => commands::mounts::run(g, args),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            let msg = error_message(&e);
            tracing::error!("{msg}");
            if cli.global.log.is_some() {
                eprintln!("ferry: {msg}");
            }
            std::process::exit(error_code);
        }
    }
}

/// An error and its causes on one line, each said once: ferry's runtime errors already spell
/// out their causes, which anyhow's `{:#}` would repeat. libcontainer's texts that name
/// their runtime `youki` are said of ferry.
fn error_message(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if msg.contains(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    msg.replace("if youki will", "if ferry will")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Inner;
    impl std::fmt::Display for Inner {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("inner failure")
        }
    }
    impl std::error::Error for Inner {}

    /// An error whose text already holds its cause's, as ferry's runtime errors do.
    #[derive(Debug)]
    struct Outer(Inner);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "doing it: {}", self.0)
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn causes_are_said_once() {
        let e = anyhow::Error::new(Outer(Inner)).context("deleting \"c\"");
        assert_eq!(error_message(&e), "deleting \"c\": doing it: inner failure");
        let e = anyhow::anyhow!("cannot allocate tty if youki will detach");
        assert_eq!(
            error_message(&e),
            "cannot allocate tty if ferry will detach"
        );
    }
}
