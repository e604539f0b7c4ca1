//! runc-style logging: text, or one JSON object per line.

use crate::cli::{GlobalOpts, LogFormat};
use std::io::Write;
use std::sync::Mutex;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

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
        if ferry_runtime::repeated_errors::repeated_by_ferry(event.metadata(), &m.msg) {
            return;
        }
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
    // Follows libcontainer's init through the mounts, so that a rootfs error names its mount.
    let init_report = ferry_runtime::rootfs_mounts::InitReportLayer.with_filter(
        tracing_subscriber::filter::filter_fn(ferry_runtime::rootfs_mounts::InitReportLayer::wants),
    );
    let subscriber = tracing_subscriber::registry().with(layer).with(init_report);
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|e| anyhow::anyhow!("installing the logger: {e}"))?;
    Ok(())
}
