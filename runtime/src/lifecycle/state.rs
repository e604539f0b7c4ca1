//! `state`, `list` and `ps`: what runc prints about containers.

use super::{load_bundle_spec, user_bundle, validate_id, Runtime};
use crate::error::{Result, RuntimeError};
use libcgroups::common::CgroupManager;
use libcontainer::container::{Container, ContainerStatus};
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;

/// runc's `state` output (also the elements of `list --format json`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuncState {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<HashMap<String, String>>,
}

pub(super) fn status_name(s: ContainerStatus) -> &'static str {
    match s {
        ContainerStatus::Creating => "creating",
        ContainerStatus::Created => "created",
        ContainerStatus::Running => "running",
        ContainerStatus::Stopped => "stopped",
        ContainerStatus::Paused => "paused",
    }
}

impl Runtime {
    /// The state runc prints.
    pub fn state(&self, id: &str) -> Result<RuncState> {
        let (_lock, c) = self.open(id, false)?;
        Ok(self.runc_state(&c))
    }

    fn runc_state(&self, c: &Container) -> RuncState {
        let status = c.status();
        let pid = match status {
            ContainerStatus::Stopped => 0,
            _ => c.pid().map(|p| p.as_raw()).unwrap_or(0),
        };
        let bundle = user_bundle(c);
        let rootfs = load_bundle_spec(c.bundle())
            .ok()
            .and_then(|s| s.root().as_ref().map(|r| c.bundle().join(r.path())))
            .unwrap_or_else(|| bundle.join("rootfs"));
        let owner = c
            .creator()
            .map(|o| o.to_string_lossy().into_owned())
            .unwrap_or_default();
        RuncState {
            oci_version: "1.0.2".into(),
            id: c.id().to_string(),
            pid,
            status: status_name(status).into(),
            bundle,
            rootfs,
            created: c
                .created()
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
                .unwrap_or_default(),
            owner,
            annotations: c.state.annotations.clone(),
        }
    }

    /// Every container under the state root, sorted by id.
    pub fn list(&self) -> Result<Vec<RuncState>> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(RuntimeError::io(
                    format!("reading {}", self.root.display()),
                    e,
                ))
            }
        };
        let mut out = Vec::new();
        for e in entries.flatten() {
            let Some(id) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if validate_id(&id).is_err() || !e.path().is_dir() {
                continue;
            }
            // As runc: a container whose state cannot be read is reported, not listed. One
            // deleted meanwhile, or one a running create has not recorded yet, is left out.
            match self.open(&id, false) {
                Ok((_l, c)) => out.push(self.runc_state(&c)),
                Err(_) if !self.container_dir(&id).exists() => {}
                Err(RuntimeError::NotFound(_)) if crate::lock::create_in_progress(&self.root) => {}
                Err(RuntimeError::NotFound(_)) => tracing::warn!(
                    "container \"{id}\" has a state directory but no state: remove what is left of it with `ferry delete --force {id}`"
                ),
                Err(e) => tracing::warn!("{e}"),
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Pids of every process in the container's cgroup.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let (_lock, c) = self.open(id, false)?;
        let m = self.cgroup_manager(&c)?;
        let mut pids: Vec<i32> = m
            .get_all_pids()
            .map_err(|e| {
                RuntimeError::cgroup(format!("listing processes of container \"{id}\""), e)
            })?
            .into_iter()
            .map(|p| p.as_raw())
            .collect();
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }
}
