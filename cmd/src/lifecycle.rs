//! runc's lifecycle commands. Argument shapes follow runc 1.1 as podman 4 and containerd 1.6
//! call it; the work is done by `ferry_runtime::lifecycle` over libcontainer.

use crate::cli::GlobalOpts;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use ferry_runtime::lifecycle::{
    parse_signal_number, wait_foreground, CreateOptions, ExecOptions, RuncState, Runtime,
};
use oci_spec::runtime::LinuxResources;
use std::io::Write;
use std::path::PathBuf;

pub fn runtime(global: &GlobalOpts) -> Runtime {
    Runtime {
        root: global.root.clone(),
        systemd_cgroup: global.systemd_cgroup,
    }
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    pub id: String,
    /// Path to the bundle directory (holding config.json).
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master of a container with a terminal.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// File to write the init's pid to (digits only).
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Use MS_MOVE instead of pivot_root (for a ramdisk root).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass this many extra file descriptors (3 and up) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: i32,
}

impl CreateArgs {
    fn options(&self) -> CreateOptions {
        CreateOptions {
            bundle: self.bundle.clone(),
            console_socket: self.console_socket.clone(),
            pid_file: self.pid_file.clone(),
            no_pivot: self.no_pivot,
            preserve_fds: self.preserve_fds,
            foreground: false,
        }
    }
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Detach from the container's process.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep the container's state after it exits.
    #[arg(long)]
    pub keep: bool,
    /// Accepted for compatibility; ferry waits for its own children only.
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
}

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

#[derive(Args, Debug)]
pub struct KillArgs {
    pub id: String,
    /// Signal name or number (default SIGTERM).
    pub signal: Option<String>,
    /// Signal every process of the container, not just its init.
    #[arg(short = 'a', long)]
    pub all: bool,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    pub id: String,
    /// Kill a running container first; succeed when it does not exist.
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    pub id: String,
    /// The command and its arguments (unless --process is given).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// A process.json describing the process to run.
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    #[arg(short = 't', long)]
    pub tty: bool,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// KEY=VALUE (repeatable).
    #[arg(short = 'e', long)]
    pub env: Vec<String>,
    /// UID[:GID].
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Add a capability (repeatable).
    #[arg(short = 'c', long)]
    pub cap: Vec<String>,
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: i32,
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    #[arg(long)]
    pub apparmor: Option<String>,
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    pub id: String,
    /// Arguments passed to ps(1) in table format.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
    #[arg(short = 'f', long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    pub id: String,
    /// A JSON file with the new LinuxResources ('-' for standard input).
    #[arg(short = 'r', long)]
    pub resources: Option<PathBuf>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Memory limit in bytes (suffixes k, m, g accepted).
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    #[arg(long = "kernel-memory")]
    pub kernel_memory: Option<String>,
    #[arg(long = "kernel-memory-tcp")]
    pub kernel_memory_tcp: Option<String>,
}

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

#[derive(Args, Debug)]
pub struct SpecArgs {
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    // `--rootless` is read from the global flag of the same name.
}

fn print_json(v: &impl serde::Serialize) -> Result<i32> {
    let mut out = crate::output::stdout();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(0)
}

pub fn create(g: &GlobalOpts, a: CreateArgs) -> Result<i32> {
    runtime(g).create(&a.id, &a.options())?;
    Ok(0)
}

pub fn start(g: &GlobalOpts, id: String) -> Result<i32> {
    runtime(g).start(&id)?;
    Ok(0)
}

pub fn run(g: &GlobalOpts, a: RunArgs) -> Result<i32> {
    let rt = runtime(g);
    let id = a.create.id.clone();
    let mut opts = a.create.options();
    opts.foreground = !a.detach;
    let pid = rt.create(&id, &opts)?;
    if let Err(e) = rt.start(&id) {
        let _ = rt.delete(&id, true);
        return Err(e.into());
    }
    if a.detach {
        return Ok(0);
    }
    let code = wait_foreground(pid);
    if !a.keep {
        if let Err(e) = rt.delete(&id, true) {
            tracing::warn!("removing container \"{id}\" after it exited: {e}");
        }
    }
    Ok(code?)
}

pub fn state(g: &GlobalOpts, id: String) -> Result<i32> {
    print_json(&runtime(g).state(&id)?)
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

pub fn kill(g: &GlobalOpts, a: KillArgs) -> Result<i32> {
    let signo = parse_signal_number(a.signal.as_deref().unwrap_or("SIGTERM"))?;
    runtime(g).kill_number(&a.id, signo, a.all)?;
    Ok(0)
}

pub fn delete(g: &GlobalOpts, a: DeleteArgs) -> Result<i32> {
    runtime(g).delete(&a.id, a.force)?;
    Ok(0)
}

pub fn pause(g: &GlobalOpts, id: String) -> Result<i32> {
    runtime(g).pause(&id)?;
    Ok(0)
}

pub fn resume(g: &GlobalOpts, id: String) -> Result<i32> {
    runtime(g).resume(&id)?;
    Ok(0)
}

pub fn exec(g: &GlobalOpts, a: ExecArgs) -> Result<i32> {
    let opts = ExecOptions {
        process: a.process,
        args: a.command,
        tty: a.tty,
        console_socket: a.console_socket,
        pid_file: a.pid_file,
        detach: a.detach,
        cwd: a.cwd,
        env: a.env,
        user: a.user,
        additional_gids: a.additional_gids,
        caps: a.cap,
        no_new_privs: a.no_new_privs,
        preserve_fds: a.preserve_fds,
        apparmor: a.apparmor,
        process_label: a.process_label,
        ignore_paused: a.ignore_paused,
    };
    let pid = runtime(g).exec(&a.id, &opts)?;
    if a.detach {
        return Ok(0);
    }
    Ok(wait_foreground(pid)?)
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

/// A size as runc reads it: a number (decimals allowed) with an optional binary suffix k, m,
/// g, t or p, then optionally `i` and `b`, any case (`512k`, `1.5g`, `64MiB`); `-1` means
/// unlimited. A size beyond what the kernel can take (2^63 - 1 bytes) is refused, not wrapped.
fn parse_bytes(s: &str) -> Result<i64> {
    let invalid = |why: &str| {
        anyhow::anyhow!(
            "invalid size {s:?}: {why}; use bytes or a number with k, m, g, t or p (e.g. 512m), or -1 for unlimited"
        )
    };
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let t = t.strip_suffix('i').unwrap_or(t);
    let (num, shift) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 10),
        Some('m') => (&t[..t.len() - 1], 20),
        Some('g') => (&t[..t.len() - 1], 30),
        Some('t') => (&t[..t.len() - 1], 40),
        Some('p') => (&t[..t.len() - 1], 50),
        _ => (t, 0),
    };
    let num = num.trim_end();
    let digits_ok = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    let too_large = || invalid("it is larger than 2^63 - 1 bytes");
    match num.split_once('.') {
        None if digits_ok(num) => {
            let n: i64 = num.parse().map_err(|_| too_large())?;
            n.checked_mul(1i64 << shift).ok_or_else(too_large)
        }
        Some((whole, frac)) if digits_ok(whole) && digits_ok(frac) => {
            let n: f64 = num.parse().map_err(|_| invalid("not a number"))?;
            let bytes = n * (1u64 << shift) as f64;
            // i64::MAX as f64 rounds up to 2^63, which does not fit.
            if !(bytes.is_finite() && bytes < i64::MAX as f64) {
                return Err(too_large());
            }
            Ok(bytes as i64)
        }
        _ => Err(invalid("not a number")),
    }
}

pub fn update(g: &GlobalOpts, a: UpdateArgs) -> Result<i32> {
    let mut res: serde_json::Value = match &a.resources {
        Some(p) if p.as_os_str() == "-" => serde_json::from_reader(std::io::stdin().lock())
            .context("reading resources from standard input")?,
        Some(p) => {
            let text =
                std::fs::read(p).with_context(|| format!("reading resources {}", p.display()))?;
            serde_json::from_slice(&text)
                .with_context(|| format!("resources file {} is malformed", p.display()))?
        }
        None => serde_json::json!({}),
    };
    let set = |res: &mut serde_json::Value, group: &str, key: &str, v: serde_json::Value| {
        if !res[group].is_object() {
            res[group] = serde_json::json!({});
        }
        res[group][key] = v;
    };
    if let Some(v) = a.blkio_weight {
        set(&mut res, "blockIO", "weight", v.into());
    }
    if let Some(v) = a.cpu_period {
        set(&mut res, "cpu", "period", v.into());
    }
    if let Some(v) = a.cpu_quota {
        set(&mut res, "cpu", "quota", v.into());
    }
    if let Some(v) = a.cpu_share {
        set(&mut res, "cpu", "shares", v.into());
    }
    if let Some(v) = a.cpu_rt_period {
        set(&mut res, "cpu", "realtimePeriod", v.into());
    }
    if let Some(v) = a.cpu_rt_runtime {
        set(&mut res, "cpu", "realtimeRuntime", v.into());
    }
    if let Some(v) = &a.cpuset_cpus {
        set(&mut res, "cpu", "cpus", v.clone().into());
    }
    if let Some(v) = &a.cpuset_mems {
        set(&mut res, "cpu", "mems", v.clone().into());
    }
    if let Some(v) = &a.memory {
        set(&mut res, "memory", "limit", parse_bytes(v)?.into());
    }
    if let Some(v) = &a.memory_reservation {
        set(&mut res, "memory", "reservation", parse_bytes(v)?.into());
    }
    if let Some(v) = &a.memory_swap {
        set(&mut res, "memory", "swap", parse_bytes(v)?.into());
    }
    if let Some(v) = a.pids_limit {
        set(&mut res, "pids", "limit", v.into());
    }
    if a.kernel_memory.is_some() || a.kernel_memory_tcp.is_some() {
        tracing::warn!("kernel memory limits are deprecated by the kernel and ignored");
    }
    let resources: LinuxResources =
        serde_json::from_value(res).context("the resources are not valid LinuxResources")?;
    runtime(g).update(&a.id, &resources)?;
    Ok(0)
}

/// An interval as Go's durations (which runc takes) spell it: numbers with units ns, us, µs,
/// ms, s, m or h, one after the other (`5s`, `1.5s`, `1m30s`); a bare number means seconds.
/// It must be positive and at most `u64::MAX` nanoseconds; beyond that it is refused, not
/// wrapped.
fn parse_interval(s: &str) -> Result<std::time::Duration> {
    let invalid =
        |why: &str| anyhow::anyhow!("invalid interval {s:?}: {why}; use e.g. 5s, 500ms or 1m30s");
    let t = s.trim();
    if t.is_empty() {
        return Err(invalid("it is empty"));
    }
    let too_long = || invalid("it is longer than about 584 years");
    let mut rest = t;
    let mut total_ns: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let unit_ns: u128 = match unit {
            "" if num_len == t.len() => 1_000_000_000,
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(invalid("a number has no unit")),
            _ => return Err(invalid(&format!("unknown unit {unit:?}"))),
        };
        let (whole, frac) = num.split_once('.').unwrap_or((num, ""));
        if whole.is_empty() && frac.is_empty() || frac.contains('.') {
            return Err(invalid("not a number"));
        }
        // Whole part exactly in integers; the fraction to nanosecond precision.
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| too_long())?
        };
        let mut frac_ns: u128 = 0;
        let mut scale = unit_ns;
        for d in frac.bytes() {
            scale /= 10;
            frac_ns += u128::from(d - b'0') * scale;
        }
        total_ns = whole
            .checked_mul(unit_ns)
            .and_then(|w| w.checked_add(frac_ns))
            .and_then(|v| v.checked_add(total_ns))
            .ok_or_else(too_long)?;
        rest = next;
    }
    if total_ns == 0 {
        return Err(invalid("it must be greater than 0"));
    }
    let ns = u64::try_from(total_ns).map_err(|_| too_long())?;
    Ok(std::time::Duration::from_nanos(ns))
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

pub fn features() -> Result<i32> {
    print_json(&ferry_runtime::features::features())
}

pub fn spec(g: &GlobalOpts, a: SpecArgs) -> Result<i32> {
    let path = a.bundle.join("config.json");
    if path.exists() {
        bail!(
            "{} exists: remove it first, or choose another directory with --bundle",
            path.display()
        );
    }
    let rootless = g.rootless.as_deref() == Some("true");
    let text = default_spec_text(rootless)?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(0)
}

/// The host name of the default config: the runtime's name, as runc's is `runc`.
const DEFAULT_HOSTNAME: &str = "ferry";

/// config.json as `spec` writes it: runc 1.1's default content, indented with tabs and no
/// final newline as runc writes it, so that people can read and edit it.
fn default_spec_text(rootless: bool) -> Result<Vec<u8>> {
    let spec = if rootless {
        // SAFETY: getuid/getgid have no preconditions.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        runc_default_spec(oci_spec::runtime::Spec::rootless(uid, gid))
    } else {
        runc_default_spec(oci_spec::runtime::Spec::default())
    };
    let mut text = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut text, fmt);
    serde::Serialize::serialize(&spec, &mut ser).context("encoding the default config")?;
    // runc ends the file at the closing brace; so does ferry, to write the same bytes.
    Ok(text)
}

/// runc 1.1's default content from oci-spec's defaults: a terminal, no cgroup namespace, the
/// runtime's host name, every device denied (the default devices are allowed by the runtime
/// anyway), no inheritable capabilities (runc dropped them: an inheritable set lets a
/// program with file capabilities gain them), no empty annotations.
fn runc_default_spec(mut spec: oci_spec::runtime::Spec) -> oci_spec::runtime::Spec {
    use oci_spec::runtime::{LinuxDeviceCgroupBuilder, LinuxNamespaceType};
    spec.set_hostname(Some(DEFAULT_HOSTNAME.to_string()));
    if spec.annotations().as_ref().is_some_and(|a| a.is_empty()) {
        spec.set_annotations(None);
    }
    if let Some(mut process) = spec.process().clone() {
        process.set_terminal(Some(true));
        if let Some(mut caps) = process.capabilities().clone() {
            caps.set_inheritable(None);
            process.set_capabilities(Some(caps));
        }
        spec.set_process(Some(process));
    }
    if let Some(mut linux) = spec.linux().clone() {
        if let Some(ns) = linux.namespaces().clone() {
            let kept = ns
                .into_iter()
                .filter(|n| n.typ() != LinuxNamespaceType::Cgroup)
                .collect();
            linux.set_namespaces(Some(kept));
        }
        if let Some(mut res) = linux.resources().clone() {
            let deny_all = LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .access("rwm")
                .build();
            if let Ok(deny_all) = deny_all {
                res.set_devices(Some(vec![deny_all]));
            }
            linux.set_resources(Some(res));
        }
        spec.set_linux(Some(linux));
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_intervals() {
        assert_eq!(parse_bytes("512k").ok(), Some(512 * 1024));
        assert_eq!(parse_bytes("64M").ok(), Some(64 << 20));
        assert_eq!(parse_bytes("64MiB").ok(), Some(64 << 20));
        assert_eq!(parse_bytes("1.5g").ok(), Some(3 << 29));
        assert_eq!(parse_bytes("8589934591g").ok(), Some(8589934591 << 30));
        assert_eq!(parse_bytes("-1").ok(), Some(-1));
        for bad in [
            "lots",
            "99999999999g",
            "8589934592g",
            "9999999999999999999",
            "-2",
            "1.g",
            ".5g",
            "1..5g",
            "",
            "k",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad:?} must be refused");
        }
        let d = std::time::Duration::from_millis;
        assert_eq!(parse_interval("500ms").ok(), Some(d(500)));
        assert_eq!(parse_interval("5").ok(), Some(d(5000)));
        assert_eq!(parse_interval("1.5s").ok(), Some(d(1500)));
        assert_eq!(parse_interval("1m30s").ok(), Some(d(90_000)));
        assert_eq!(parse_interval("1h").ok(), Some(d(3_600_000)));
        assert_eq!(
            parse_interval("250us").ok(),
            Some(std::time::Duration::from_micros(250))
        );
        for bad in [
            "0s",
            "5 parsecs",
            "99999999999999999999999s",
            "6000000h",
            "1.2.3s",
            ".s",
            "1m30",
            "",
            "-5s",
        ] {
            assert!(parse_interval(bad).is_err(), "{bad:?} must be refused");
        }
    }

    /// Random strings of digits, dots, units, signs and spaces, long and short: the parsers
    /// answer every one without panicking, and what they accept is in range.
    #[test]
    fn parsers_never_panic() {
        const PIECES: &[&str] = &[
            "0",
            "1",
            "5",
            "9",
            "99999999999",
            ".",
            "k",
            "m",
            "g",
            "t",
            "p",
            "i",
            "b",
            "K",
            "G",
            "ns",
            "us",
            "µs",
            "ms",
            "s",
            "h",
            "-",
            "+",
            " ",
            "e",
            "x",
            "\u{0}",
            "é",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 12) as usize;
            let input: String = (0..len)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            let bytes = std::panic::catch_unwind(|| parse_bytes(&input));
            match bytes {
                Ok(Ok(n)) => assert!(n >= -1, "{input:?} gave {n}"),
                Ok(Err(_)) => {}
                Err(_) => panic!("parse_bytes panicked on {input:?}"),
            }
            let interval = std::panic::catch_unwind(|| parse_interval(&input));
            match interval {
                Ok(Ok(d)) => assert!(!d.is_zero(), "{input:?} gave zero"),
                Ok(Err(_)) => {}
                Err(_) => panic!("parse_interval panicked on {input:?}"),
            }
        }
    }
}
