//! `ferry mounts ...`: the mountv2 engine on its own (dump, restore, plan, diff).

use crate::cli::{GlobalOpts, LogFormat};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use mountv2::apply::{ApplyOptions, RestoreError};
use mountv2::dump::{dump, DumpOptions};
use mountv2::image::MountImage;
use mountv2::model::MountTree;
use mountv2::policy::RestorePolicy;
use mountv2::scan::ScanSource;
use serde::Serialize;
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
#[command(about = "Dump, plan, restore and compare mount trees (the mountv2 engine)")]
pub struct MountsArgs {
    #[command(subcommand)]
    pub command: MountsCommand,
}

#[derive(Subcommand, Debug)]
pub enum MountsCommand {
    /// Write the mount tree at PATH of PID's namespace as a versioned JSON image.
    Dump(DumpArgs),
    /// Recreate an image's tree at DIR in this mount namespace.
    Restore(RestoreArgs),
    /// Print the ordered kernel steps a restore would run, without running them.
    Plan(PlanArgs),
    /// Compare two trees (image files or live trees written pid:PID:PATH) up to ids.
    Diff { a: OsString, b: OsString },
}

#[derive(Args, Debug)]
pub struct DumpArgs {
    /// Process whose mount namespace is dumped (default: this one).
    #[arg(long)]
    pub pid: Option<u32>,
    /// The mount at this path is the image's root.
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    /// Output file (default: standard output).
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// Kernel interface to read the mount table through.
    #[arg(long, value_enum, default_value_t = Source::Auto)]
    pub source: Source,
    /// Do not capture tmpfs file content.
    #[arg(long)]
    pub no_content: bool,
    /// Leave out the mount at this path (relative to --root) and everything below it;
    /// repeatable. Peer groups only those mounts had become external.
    #[arg(long = "exclude", value_name = "PATH")]
    pub exclude: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    pub image: PathBuf,
    #[arg(long)]
    pub target: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Keep at most this many mounts' fds open (default: what the open-file limit
    /// allows); below one per mount, attached mounts are reopened by path when needed.
    #[arg(long)]
    pub fd_budget: Option<u64>,
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    pub image: PathBuf,
    #[arg(long)]
    pub target: Option<PathBuf>,
    #[command(flatten)]
    pub trust: TrustArgs,
}

/// What a restore may take from this host on the image's word. By default an image gets
/// nothing outside the target: each flag names one kind of reach it allows.
#[derive(Args, Debug, Clone, Default)]
pub struct TrustArgs {
    /// Where an external filesystem is on this host: KEY=PATH (repeatable).
    #[arg(long = "external", value_name = "KEY=PATH")]
    pub externals: Vec<OsString>,
    /// Bind external filesystems not given with --external from the host paths the image
    /// suggests.
    #[arg(long)]
    pub allow_image_hints: bool,
    /// Join peer groups outside the tree at the host paths the image names (mounts then
    /// propagate between the host and the restored tree).
    #[arg(long)]
    pub allow_outside_groups: bool,
    /// Create new superblocks of this filesystem type too (repeatable); without it only
    /// tmpfs, ramfs, proc, sysfs, devpts, mqueue, cgroup and cgroup2.
    #[arg(long = "allow-fstype", value_name = "TYPE")]
    pub allow_fstypes: Vec<String>,
    /// Create the device nodes the image's content holds.
    #[arg(long)]
    pub allow_devices: bool,
    /// Create the setuid and setgid files the image's content holds.
    #[arg(long)]
    pub allow_setid: bool,
}

impl TrustArgs {
    /// The `--external` map and the engine's policy.
    fn parse(&self) -> Result<(HashMap<String, PathBuf>, RestorePolicy)> {
        let mut map = HashMap::new();
        for e in &self.externals {
            // The key is the image's text; the path is this host's, any bytes.
            let bytes = e.as_bytes();
            let eq = bytes
                .iter()
                .position(|b| *b == b'=')
                .with_context(|| format!("--external {e:?}: expected KEY=PATH"))?;
            let (k, v) = (&bytes[..eq], &bytes[eq + 1..]);
            if k.is_empty() || v.is_empty() {
                bail!("--external {e:?}: expected KEY=PATH with both parts non-empty");
            }
            let k = std::str::from_utf8(k)
                .with_context(|| format!("--external {e:?}: the KEY is not UTF-8"))?;
            map.insert(k.to_string(), PathBuf::from(OsStr::from_bytes(v)));
        }
        let policy = RestorePolicy {
            externals: map.keys().cloned().collect(),
            image_hints: self.allow_image_hints,
            outside_groups: self.allow_outside_groups,
            fstypes: self.allow_fstypes.iter().cloned().collect(),
            devices: self.allow_devices,
            setid: self.allow_setid,
        };
        Ok((map, policy))
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Source {
    Auto,
    Mountinfo,
    Statmount,
}

impl From<Source> for ScanSource {
    fn from(s: Source) -> Self {
        match s {
            Source::Auto => ScanSource::Auto,
            Source::Mountinfo => ScanSource::Mountinfo,
            Source::Statmount => ScanSource::Statmount,
        }
    }
}

pub fn run(global: &GlobalOpts, args: MountsArgs) -> Result<i32> {
    let json = matches!(global.log_format, LogFormat::Json);
    match args.command {
        MountsCommand::Dump(a) => dump_tree(a),
        MountsCommand::Restore(a) => restore_tree(a, json),
        MountsCommand::Plan(a) => print_plan(a, json),
        MountsCommand::Diff { a, b } => diff_trees(&a, &b, json),
    }
}

/// `mounts dump`.
fn dump_tree(a: DumpArgs) -> Result<i32> {
    let DumpArgs {
        pid,
        root,
        output,
        source,
        no_content,
        exclude,
    } = a;
    // Open the output before entering another namespace: the path is the caller's.
    let mut out: Box<dyn Write> = match &output {
        Some(p) => Box::new(File::create(p).with_context(|| format!("creating {}", p.display()))?),
        None => Box::new(crate::output::stdout()),
    };
    let opts = DumpOptions {
        root: root.clone(),
        source: source.into(),
        content: !no_content,
        ..Default::default()
    };
    let mut image = in_namespace(pid, || dump(&opts).map_err(anyhow::Error::from))
        .with_context(|| format!("dumping the mount tree at {}", root.display()))?;
    if !exclude.is_empty() {
        // The tree names mount points in the image's escaped form.
        let points: Vec<String> = exclude
            .iter()
            .map(|p| mountv2::content::escape_path(p))
            .collect();
        image.tree.exclude(&points);
        image
            .tree
            .validate()
            .context("the tree left after --exclude")?;
    }
    let text = image.to_json()?;
    out.write_all(text.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()?;
    tracing::info!(
        mounts = image.tree.mounts.len(),
        superblocks = image.tree.superblocks.len(),
        groups = image.tree.groups.len(),
        "dumped"
    );
    Ok(0)
}

/// What `mounts restore` prints in JSON. The fields are in alphabetical order, the order
/// the line has always had.
#[derive(Serialize)]
struct RestoreLine<'a> {
    /// Seconds spent making the mounts.
    build_seconds: f64,
    /// Seconds spent setting their propagation.
    propagation_seconds: f64,
    /// How many mounts the image's tree has, all now made.
    restored: usize,
    /// The kernel steps run.
    steps: usize,
    target: &'a Path,
}

/// `mounts restore`.
fn restore_tree(a: RestoreArgs, json: bool) -> Result<i32> {
    let RestoreArgs {
        image,
        target,
        trust,
        fd_budget,
    } = a;
    let (map, policy) = trust.parse()?;
    let img = load(&image)?;
    let opts = ApplyOptions {
        target: target.clone(),
        externals: map,
        fd_budget,
    };
    // The errors go on as the cause, so that their sources (the kernel's errno) stay in
    // the chain main prints.
    let report = mountv2::apply::restore(&img, &opts, &policy).map_err(|e| match e {
        RestoreError::Plan(p) => {
            anyhow::Error::new(p).context(format!("planning {}", image.display()))
        }
        RestoreError::Apply(a) => anyhow::Error::new(a).context(format!(
            "restoring {} at {}",
            image.display(),
            target.display()
        )),
    })?;
    if json {
        let line = RestoreLine {
            build_seconds: report.build.as_secs_f64(),
            propagation_seconds: report.propagation.as_secs_f64(),
            restored: img.tree.mounts.len(),
            steps: report.steps,
            target: &target,
        };
        crate::outln!("{}", serde_json::to_string(&line)?)?;
    } else {
        crate::outln!(
            "restored {} mounts at {} ({} steps, {:.3}s)",
            img.tree.mounts.len(),
            target.display(),
            report.steps,
            (report.build + report.propagation).as_secs_f64()
        )?;
    }
    Ok(0)
}

/// `mounts plan`.
fn print_plan(a: PlanArgs, json: bool) -> Result<i32> {
    let PlanArgs {
        image,
        target,
        trust,
    } = a;
    let (_, policy) = trust.parse()?;
    let img = load(&image)?;
    let plan = mountv2::plan::plan(&img, &policy)
        .with_context(|| format!("planning {}", image.display()))?;
    let mut out = crate::output::stdout();
    if let Some(t) = &target {
        if !json {
            writeln!(out, "# target {}", t.display())?;
        }
    }
    for (i, step) in plan.steps.iter().enumerate() {
        if json {
            writeln!(
                out,
                "{}",
                serde_json::json!({"index": i, "step": step.to_string()})
            )?;
        } else {
            writeln!(out, "{i:>5} {step}")?;
        }
    }
    Ok(0)
}

/// `mounts diff`: exit status 1 when the trees differ. In JSON each difference names its mount
/// point, its `kind` (snake case of [`mountv2::diff::DifferenceKind`]) and the text printed
/// otherwise, `what`.
fn diff_trees(a: &OsStr, b: &OsStr, json: bool) -> Result<i32> {
    let ta = operand_tree(a)?;
    let tb = operand_tree(b)?;
    let diffs = mountv2::diff::diff(&ta, &tb);
    if json {
        crate::outln!(
            "{}",
            serde_json::json!({"equal": diffs.is_empty(), "differences": diffs})
        )?;
    } else if diffs.is_empty() {
        crate::outln!("equal: {} mounts, same up to ids", ta.mounts.len())?;
    } else {
        for d in &diffs {
            crate::outln!("{d}")?;
        }
    }
    Ok(if diffs.is_empty() { 0 } else { 1 })
}

fn load(path: &Path) -> Result<MountImage> {
    MountImage::load(path).with_context(|| format!("loading mount image {}", path.display()))
}

/// An image file, or a live tree `pid:PID:PATH` (dumped without content). PATH is bytes.
fn operand_tree(spec: &OsStr) -> Result<MountTree> {
    if let Some(rest) = spec.as_bytes().strip_prefix(b"pid:") {
        let colon = rest
            .iter()
            .position(|b| *b == b':')
            .with_context(|| format!("{spec:?}: expected pid:PID:PATH"))?;
        let (pid, path) = (&rest[..colon], &rest[colon + 1..]);
        let pid: u32 = std::str::from_utf8(pid)
            .ok()
            .and_then(|p| p.parse().ok())
            .with_context(|| {
                format!("{spec:?}: {:?} is not a pid", String::from_utf8_lossy(pid))
            })?;
        let opts = DumpOptions {
            root: PathBuf::from(OsStr::from_bytes(path)),
            content: false,
            ..Default::default()
        };
        let image = in_namespace(Some(pid), || dump(&opts).map_err(anyhow::Error::from))
            .with_context(|| format!("scanning {}", spec.to_string_lossy()))?;
        Ok(image.tree)
    } else {
        Ok(load(Path::new(spec))?.tree)
    }
}

/// Run `f` inside `pid`'s mount namespace (none: this one) and come back.
fn in_namespace<T>(pid: Option<u32>, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let Some(pid) = pid else { return f() };
    let theirs = File::open(format!("/proc/{pid}/ns/mnt"))
        .with_context(|| format!("process {pid}: opening its mount namespace"))?;
    ferry_runtime::mntns::in_namespace(theirs.as_fd(), &format!("process {pid}'s"), f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_line_keeps_its_keys_and_their_order() {
        let line = RestoreLine {
            build_seconds: 0.5,
            propagation_seconds: 0.25,
            restored: 2,
            steps: 10,
            target: Path::new("/tmp/t"),
        };
        assert_eq!(
            serde_json::to_string(&line).expect("serialise"),
            r#"{"build_seconds":0.5,"propagation_seconds":0.25,"restored":2,"steps":10,"target":"/tmp/t"}"#
        );
    }
}
