//! `pause`, `resume`, `update` and `events --stats`: a container's cgroup.

use super::state::status_name;
use super::{oom, Runtime};
use crate::error::{Result, RuntimeError};
use crate::stats::CpuTimeUnits;
use libcgroups::common::{AnyCgroupManager, CgroupManager, ControllerOpt};
use libcontainer::container::{Container, ContainerStatus};
use oci_spec::runtime::LinuxResources;

impl Runtime {
    pub fn pause(&self, id: &str) -> Result<()> {
        let (_lock, mut c) = self.open(id, true)?;
        if c.status() != ContainerStatus::Running {
            return Err(RuntimeError::NotRunning {
                op: "pause",
                id: id.into(),
                status: status_name(c.status()).into(),
            });
        }
        c.pause()
            .map_err(|e| RuntimeError::container(format!("pausing container \"{id}\""), e))
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        let (_lock, mut c) = self.open(id, true)?;
        if c.status() != ContainerStatus::Paused {
            return Err(RuntimeError::WrongState {
                op: "resume",
                id: id.into(),
                status: status_name(c.status()).into(),
                hint: "only a paused container can be resumed",
            });
        }
        c.resume()
            .map_err(|e| RuntimeError::container(format!("resuming container \"{id}\""), e))
    }

    pub(super) fn cgroup_manager(
        &self,
        c: &Container,
    ) -> Result<libcgroups::common::AnyCgroupManager> {
        let id = c.id().to_string();
        let cfg = c.spec().map_err(|e| {
            RuntimeError::container(format!("reading config of container \"{id}\""), e)
        })?;
        libcgroups::common::create_cgroup_manager(libcgroups::common::CgroupConfig {
            cgroup_path: cfg.cgroup_path,
            systemd_cgroup: c.systemd(),
            container_name: id.clone(),
        })
        .map_err(|e| RuntimeError::cgroup(format!("cgroups of container \"{id}\""), e))
    }

    /// `update`: apply new resource limits to a running or paused container.
    pub fn update(&self, id: &str, resources: &LinuxResources) -> Result<()> {
        let (_lock, c) = self.open(id, true)?;
        if !matches!(
            c.status(),
            ContainerStatus::Created | ContainerStatus::Running | ContainerStatus::Paused
        ) {
            return Err(RuntimeError::NotRunning {
                op: "update",
                id: id.into(),
                status: status_name(c.status()).into(),
            });
        }
        let m = self.cgroup_manager(&c)?;
        m.apply(&ControllerOpt {
            resources,
            disable_oom_killer: oom::disable_at_update(resources, c.pid().map(|p| p.as_raw())),
            oom_score_adj: None,
            freezer_state: None,
        })
        .map_err(|e| RuntimeError::cgroup(format!("updating resources of container \"{id}\""), e))
    }

    /// One `events --stats` record, in runc's envelope.
    pub fn stats(&self, id: &str) -> Result<crate::stats::Event> {
        let (_lock, c) = self.open(id, false)?;
        if c.status() != ContainerStatus::Running && c.status() != ContainerStatus::Paused {
            return Err(RuntimeError::NotRunning {
                op: "read events of",
                id: id.into(),
                status: status_name(c.status()).into(),
            });
        }
        let m = self.cgroup_manager(&c)?;
        let what = format!("reading statistics of container \"{id}\"");
        // Only a cgroup v1 manager reads v1 files; the fallback reads cgroup v2's.
        let units = match &m {
            AnyCgroupManager::V1(_) => CpuTimeUnits::V1,
            AnyCgroupManager::V2(_) | AnyCgroupManager::Systemd(_) => CpuTimeUnits::V2,
        };
        let mut stats = match m.stats() {
            Ok(s) => s,
            // libcgroups needs every v2 controller enabled; read what there is, as runc does.
            Err(e) => {
                let dir = c
                    .spec()
                    .ok()
                    .and_then(|cfg| crate::cgroup_paths::unified_dir(&cfg.cgroup_path));
                match dir.map(|d| crate::stats_v2::read(&d)) {
                    Some(Ok(s)) => s,
                    _ => return Err(RuntimeError::cgroup(what, e)),
                }
            }
        };
        crate::stats::cpu_times_in_nanoseconds(&mut stats, units);
        Ok(crate::stats::stats_event(id, &stats))
    }
}
