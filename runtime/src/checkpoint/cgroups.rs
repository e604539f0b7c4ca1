//! cgroups of a checkpoint and a restored container: the cgroup v1 mounts of an image, and
//! the cgroups outside libcontainer's care that delete must remove.

use std::path::Path;

/// The cgroup v1 mounts of an image: absolute mount point, index, root.
pub(super) fn cgroup_mounts(image: &mountv2::image::MountImage) -> Vec<(String, usize, String)> {
    let t = &image.tree;
    t.mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| {
            t.superblocks
                .get(m.superblock.0 as usize)
                .is_some_and(|sb| sb.fstype == "cgroup")
        })
        .map(|(i, m)| (format!("/{}", m.mountpoint), i, m.root.clone()))
        .collect()
}

/// Note the restored init's cgroups in the hierarchies libcontainer leaves alone (named v1
/// ones, the unified one of a hybrid host), so that delete removes them.
pub(super) fn record_extra_cgroups(pid: i32, dir: &Path) {
    let dirs: Vec<String> = crate::cgroup_paths::unmanaged_of(pid)
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    add_extra_cgroups(dir, &dirs);
}

/// Add cgroup directories to the container's list of those delete removes.
pub(super) fn add_extra_cgroups(dir: &Path, dirs: &[String]) {
    let file = dir.join(crate::lifecycle::EXTRA_CGROUPS);
    let mut all: Vec<String> = std::fs::read_to_string(&file)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    for d in dirs {
        if !all.contains(d) {
            all.push(d.clone());
        }
    }
    if !all.is_empty() {
        if let Err(e) = std::fs::write(&file, all.join("\n")) {
            tracing::warn!("noting the cgroups of the restored container: {e}");
        }
    }
}
