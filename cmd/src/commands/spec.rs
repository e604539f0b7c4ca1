//! `spec`: write a default config.json.

use crate::cli::{GlobalOpts, Rootless};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct SpecArgs {
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    // `--rootless` is read from the global flag of the same name.
}

pub fn spec(g: &GlobalOpts, a: SpecArgs) -> Result<i32> {
    let path = a.bundle.join("config.json");
    if path.exists() {
        bail!(
            "{} exists: remove it first, or choose another directory with --bundle",
            path.display()
        );
    }
    let rootless = g.rootless == Some(Rootless::True);
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
        let (uid, gid) = (
            rustix::process::getuid().as_raw(),
            rustix::process::getgid().as_raw(),
        );
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
