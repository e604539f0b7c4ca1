//! Global flags, argv normalisation and runc-style logging.
//!
//! Engines call runtimes with argv shapes that a strict parser rejects: single-dash long flags
//! (`-no-subreaper`, accepted by urfave/cli and sent by containerd), `--flag=value`, and flags
//! given twice (podman sends `--leave-running` twice). Normalisation rewrites the first kind;
//! clap handles the others (`args_override_self`).

use clap::{Args, ValueEnum};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Args, Debug, Clone)]
pub struct GlobalOpts {
    /// Root directory for storage of container state.
    #[arg(long, global = true, default_value = "/run/ferry")]
    pub root: PathBuf,
    /// Log file (default: standard error).
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format: text or json (one object per line with level, msg and time).
    #[arg(long = "log-format", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Debug logging.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd for cgroups (not supported here: there is no systemd).
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Path to the criu binary.
    #[arg(long, global = true)]
    pub criu: Option<PathBuf>,
    /// Rootless mode: true, false or auto.
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
}

/// Long flags without a value. With [`VALUE_FLAGS`], the long flags that may arrive with a
/// single dash.
const SWITCH_FLAGS: &[&str] = &[
    "debug",
    "systemd-cgroup",
    "rootless",
    "no-pivot",
    "no-new-keyring",
    "detach",
    "keep",
    "all",
    "force",
    "tty",
    "no-new-privs",
    "stats",
    "leave-running",
    "tcp-established",
    "ext-unix-sk",
    "shell-job",
    "file-locks",
    "pre-dump",
    "auto-dedup",
    "lazy-pages",
    "no-subreaper",
    "no-content",
    "ignore-paused",
    "help",
    "version",
];

/// Long flags that take a value as the next word (when not written `--flag=value`).
const VALUE_FLAGS: &[&str] = &[
    "root",
    "log",
    "log-format",
    "criu",
    "bundle",
    "console-socket",
    "pid-file",
    "preserve-fds",
    "format",
    "process",
    "cwd",
    "env",
    "user",
    "cap",
    "interval",
    "image-path",
    "work-path",
    "parent-path",
    "manage-cgroups-mode",
    "status-fd",
    "page-server",
    "lsm-profile",
    "lsm-mount-context",
    "resources",
    "mount-mismatch",
    "output",
    "pid",
    "target",
    "external",
    "source",
    "additional-gids",
    "process-label",
    "apparmor",
    "pidfd-socket",
    "blkio-weight",
    "cpu-period",
    "cpu-quota",
    "cpu-share",
    "cpu-rt-period",
    "cpu-rt-runtime",
    "cpuset-cpus",
    "cpuset-mems",
    "memory",
    "memory-reservation",
    "memory-swap",
    "pids-limit",
    "l3-cache-schema",
    "mem-bw-schema",
    "kernel-memory",
    "kernel-memory-tcp",
    "empty-ns",
];

/// Short flags that take a value as the next word.
const SHORT_VALUE_FLAGS: &[&str] = &["b", "p", "e", "u", "c", "g", "f", "r", "o"];

/// Commands whose words after the container id belong to a program (`exec ID CMD...`,
/// `ps ID PS-ARGS...`): those words are never rewritten.
const TRAILING_COMMANDS: &[&str] = &["exec", "ps"];

/// Rewrite `-long-flag[=v]` to `--long-flag[=v]` for known long flags, up to a `--` and, for
/// `exec` and `ps`, up to the container id.
pub fn normalise_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = args.into_iter();
    if let Some(prog) = it.next() {
        out.push(prog);
    }
    let mut done = false;
    let mut expect_value = false;
    let mut command: Option<String> = None;
    for a in it {
        if done {
            out.push(a);
            continue;
        }
        if expect_value {
            expect_value = false;
            out.push(a);
            continue;
        }
        if a == "--" {
            done = true;
            out.push(a);
            continue;
        }
        if a.len() == 2 && a.starts_with('-') {
            // Short flags that take a value (`-p FILE`, `-e K=V`, `-f json`, ...).
            expect_value = SHORT_VALUE_FLAGS.contains(&&a[1..]);
            out.push(a);
            continue;
        }
        let long = a
            .strip_prefix("--")
            .or_else(|| a.strip_prefix('-').filter(|r| r.len() > 1));
        match long {
            Some(rest) => {
                let (name, has_value) = match rest.split_once('=') {
                    Some((n, _)) => (n, true),
                    None => (rest, false),
                };
                let takes_value = VALUE_FLAGS.contains(&name);
                if takes_value || SWITCH_FLAGS.contains(&name) {
                    expect_value = !has_value && takes_value;
                    out.push(if a.starts_with("--") {
                        a.clone()
                    } else {
                        format!("-{a}")
                    });
                    continue;
                }
                out.push(a);
            }
            None => {
                // A positional word: first the command, then its operands.
                match &command {
                    None => command = Some(a.clone()),
                    Some(c) if TRAILING_COMMANDS.contains(&c.as_str()) => done = true,
                    Some(_) => {}
                }
                out.push(a);
            }
        }
    }
    out
}

/// A tracing layer that writes runc's log lines: text, or one JSON object per line with
/// `level`, `msg` and `time` (containerd and conmon read the last error line from it).
struct RuncLog {
    out: Mutex<Box<dyn Write + Send>>,
    json: bool,
    /// Set when logging to stderr: the process that installed the logger. libcontainer logs
    /// from the container's init too, after the init's stderr became the container's stdio
    /// (a pty or the engine's pipe); those lines would land in the container's output.
    stderr_of: Option<u32>,
}

#[derive(Default)]
struct Message {
    msg: String,
    fields: Vec<(String, String)>,
}

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.msg = format!("{value:?}");
        } else {
            self.fields
                .push((field.name().to_string(), format!("{value:?}")));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg = value.to_string();
        } else {
            self.fields
                .push((field.name().to_string(), value.to_string()));
        }
    }
}

impl<S: Subscriber> Layer<S> for RuncLog {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if self.stderr_of.is_some_and(|pid| pid != std::process::id()) {
            return;
        }
        let mut m = Message::default();
        event.record(&mut m);
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let line = if self.json {
            let mut obj = serde_json::Map::new();
            obj.insert("level".into(), level.into());
            obj.insert("msg".into(), m.msg.clone().into());
            obj.insert("time".into(), time.into());
            for (k, v) in m.fields {
                obj.insert(k, v.into());
            }
            serde_json::Value::Object(obj).to_string()
        } else {
            let extra: String = m.fields.iter().map(|(k, v)| format!(" {k}={v}")).collect();
            format!("time=\"{time}\" level={level} msg={:?}{extra}", m.msg)
        };
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}

/// Install logging. The log file is created at once, so it exists even when the command fails
/// before logging anything.
pub fn init_logging(global: &GlobalOpts) -> anyhow::Result<()> {
    let out: Box<dyn Write + Send> = match &global.log {
        Some(p) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| anyhow::anyhow!("opening log file {}: {e}", p.display()))?,
        ),
        None => Box::new(std::io::stderr()),
    };
    let level = if global.debug || std::env::var_os("FERRY_DEBUG").is_some() {
        Level::DEBUG
    } else if global.log.is_some() {
        Level::INFO
    } else {
        Level::WARN
    };
    let layer = RuncLog {
        out: Mutex::new(out),
        json: global.log_format == LogFormat::Json,
        stderr_of: global.log.is_none().then(std::process::id),
    }
    .with_filter(tracing_subscriber::filter::filter_fn(move |m| {
        // libcgroups warns about every cgroup v1 controller this kernel lacks, on every
        // command; that is noise unless debugging.
        let noisy = m.target().starts_with("libcgroups") && *m.level() >= Level::WARN;
        *m.level() <= level && (!noisy || level >= Level::DEBUG || *m.level() == Level::ERROR)
    }));
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|e| anyhow::anyhow!("installing the logger: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn single_dash_long_flags_become_double() {
        assert_eq!(
            normalise_args(v(&[
                "ferry",
                "restore",
                "-no-subreaper",
                "-image-path=/x",
                "-d",
                "id"
            ])),
            v(&[
                "ferry",
                "restore",
                "--no-subreaper",
                "--image-path=/x",
                "-d",
                "id"
            ])
        );
    }

    #[test]
    fn program_arguments_after_the_container_id_are_kept() {
        assert_eq!(
            normalise_args(v(&[
                "ferry", "-root", "/r", "exec", "-tty", "id", "ls", "-all"
            ])),
            v(&["ferry", "--root", "/r", "exec", "--tty", "id", "ls", "-all"])
        );
        assert_eq!(
            normalise_args(v(&["ferry", "exec", "-p", "/p.json", "-detach", "id"])),
            v(&["ferry", "exec", "-p", "/p.json", "--detach", "id"])
        );
        assert_eq!(
            normalise_args(v(&["ferry", "exec", "-cwd", "/root", "id", "sh", "-root"])),
            v(&["ferry", "exec", "--cwd", "/root", "id", "sh", "-root"])
        );
    }

    #[test]
    fn unknown_words_and_after_double_dash_are_kept() {
        assert_eq!(
            normalise_args(v(&["ferry", "exec", "id", "ls", "-la", "--", "-root"])),
            v(&["ferry", "exec", "id", "ls", "-la", "--", "-root"])
        );
    }
}
