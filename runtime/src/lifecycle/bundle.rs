//! The bundle a container comes from: reading and checking config.json, the user's bundle path
//! recorded beside the state, and the private rewritten copy of a config libcontainer reads.

use super::Runtime;
use crate::error::{Result, RuntimeError};
use libcontainer::container::Container;
use oci_spec::runtime::Spec;
use std::path::{Path, PathBuf};

/// ferry's own files that belong to no single container's state directory live in this
/// directory of the state root. Its name holds a ':', which ids cannot, so no container can be
/// called like it and deleting a container can never reach it.
const INTERNAL_DIR: &str = "ferry:internal";

/// In a container's state directory whose config libcontainer reads from ferry's rewritten
/// copy: the bundle the user gave, which `state` reports.
const USER_BUNDLE: &str = "ferry-bundle";

/// Write a file only root can read (state, rewritten configs), replacing it whole: a crash
/// leaves the old file or the new one.
pub(super) fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| RuntimeError::io(format!("writing {}", tmp.display()), e))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| RuntimeError::io(format!("writing {}", path.display()), e))
}

pub(crate) fn record_user_bundle(dir: &Path, bundle: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    write_private(&dir.join(USER_BUNDLE), bundle.as_os_str().as_bytes())
}

/// The bundle the user created (or restored) the container from.
pub(crate) fn user_bundle(c: &Container) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    match std::fs::read(c.root.join(USER_BUNDLE)) {
        Ok(b) if !b.is_empty() => PathBuf::from(std::ffi::OsString::from_vec(b)),
        _ => c.bundle().clone(),
    }
}

/// Read and check a bundle's config.json before libcontainer sees it, so that a missing or
/// malformed file gets a message naming the file, the field and the fix.
pub fn load_bundle_spec(bundle: &Path) -> Result<Spec> {
    let meta = std::fs::metadata(bundle).map_err(|e| RuntimeError::Bundle {
        path: bundle.to_path_buf(),
        reason: format!("{e}: pass an existing OCI bundle directory with --bundle"),
    })?;
    if !meta.is_dir() {
        return Err(RuntimeError::Bundle {
            path: bundle.to_path_buf(),
            reason: "not a directory: --bundle names the directory holding config.json".into(),
        });
    }
    let cfg = bundle.join("config.json");
    let text = std::fs::read(&cfg).map_err(|e| RuntimeError::Bundle {
        path: bundle.to_path_buf(),
        reason: if e.kind() == std::io::ErrorKind::NotFound {
            "config.json does not exist in it: create one with `ferry spec` in the bundle".into()
        } else {
            format!("reading config.json: {e}")
        },
    })?;
    // As runc reads it: unknown capabilities and an ociVersion other than 1.x are let pass.
    let (spec, _) =
        crate::spec_check::parse(&text).map_err(|reason| RuntimeError::MalformedConfig {
            path: bundle.to_path_buf(),
            reason,
        })?;
    let Some(root) = spec.root() else {
        return Err(RuntimeError::MalformedConfig {
            path: bundle.to_path_buf(),
            reason: "missing field `root`: set root.path to the container's root filesystem".into(),
        });
    };
    let rootfs = bundle.join(root.path());
    if !rootfs.is_dir() {
        return Err(RuntimeError::MalformedConfig {
            path: bundle.to_path_buf(),
            reason: format!(
                "root.path {} does not exist or is not a directory",
                rootfs.display()
            ),
        });
    }
    if spec
        .process()
        .as_ref()
        .is_none_or(|p| p.args().as_ref().is_none_or(|a| a.is_empty()))
    {
        return Err(RuntimeError::MalformedConfig {
            path: bundle.to_path_buf(),
            reason: "process.args is missing or empty: name the program the container runs".into(),
        });
    }
    Ok(spec)
}

impl Runtime {
    /// Where libcontainer reads a config that needs runc's spellings translated: runc accepts
    /// `rshared`, `rslave`, `rprivate` and `runbindable` as rootfsPropagation (libcontainer
    /// applies the recursive form for the plain names anyway). Such a config is rewritten
    /// into a private copy of the bundle's config.json with an absolute root; `None` when the
    /// bundle can be used as it is.
    pub(crate) fn compatible_bundle(&self, id: &str, bundle: &Path) -> Result<Option<PathBuf>> {
        let path = bundle.join("config.json");
        let text = std::fs::read(&path)
            .map_err(|e| RuntimeError::io(format!("reading {}", path.display()), e))?;
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| RuntimeError::MalformedConfig {
                path: bundle.to_path_buf(),
                reason: e.to_string(),
            })?;
        let plain = match cfg["linux"]["rootfsPropagation"].as_str() {
            Some("rshared") => Some("shared"),
            Some("rslave") => Some("slave"),
            Some("rprivate") => Some("private"),
            Some("runbindable") => Some("unbindable"),
            _ => None,
        };
        // libcontainer names a container without an absolute cgroupsPath `:youki:<id>` at
        // the hierarchies' roots; runc's place is the id (or the relative path) below the
        // caller's cgroup.
        let cgroups = cfg["linux"].is_object() && !self.systemd_cgroup && {
            let given = cfg["linux"]["cgroupsPath"].as_str().map(PathBuf::from);
            let path = crate::cgroup_paths::container_cgroup(given.as_deref(), id);
            let changed = given.as_deref() != Some(Path::new(&path));
            cfg["linux"]["cgroupsPath"] = path.into();
            changed
        };
        let relaxed = crate::spec_check::relax(&mut cfg);
        relaxed.warn_once();
        if plain.is_none() && !cgroups && !relaxed.changed() {
            return Ok(None);
        }
        if let Some(plain) = plain {
            cfg["linux"]["rootfsPropagation"] = plain.into();
        }
        if let Some(root) = cfg["root"]["path"].as_str() {
            let abs = bundle.join(root);
            cfg["root"]["path"] = abs.display().to_string().into();
        }
        // Relative mount sources are relative to the bundle, which the copy is not beside.
        if let Some(mounts) = cfg["mounts"].as_array_mut() {
            for m in mounts {
                if let Some(src) = m["source"].as_str().filter(|s| !s.starts_with('/')) {
                    let is_bind = m["type"].as_str() == Some("bind")
                        || m["options"].as_array().is_some_and(|o| {
                            o.iter()
                                .any(|o| matches!(o.as_str(), Some("bind" | "rbind")))
                        });
                    if is_bind {
                        m["source"] = bundle.join(src).display().to_string().into();
                    }
                }
            }
        }
        let dir = self.shadow_bundle(id);
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&dir)
            .map_err(|e| RuntimeError::io(format!("creating {}", dir.display()), e))?;
        let text = serde_json::to_vec(&cfg).map_err(|e| RuntimeError::encode("config.json", e))?;
        write_private(&dir.join("config.json"), &text)?;
        Ok(Some(dir))
    }

    pub(crate) fn shadow_bundle(&self, id: &str) -> PathBuf {
        self.root.join(INTERNAL_DIR).join("config").join(id)
    }

    /// Remove the shadow bundle of `id`, also where older versions of ferry put it
    /// (`.config-ID` beside the containers), there only when it is one (a directory holding
    /// config.json alone) and never the state of a container that happens to be called so.
    pub(crate) fn remove_shadow_bundle(&self, id: &str) {
        let shadow = self.shadow_bundle(id);
        match std::fs::remove_dir_all(&shadow) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!("leaving shadow bundle {}: {e}", shadow.display());
            }
            _ => {}
        }
        let old = self.root.join(format!(".config-{id}"));
        let names: Vec<_> = match std::fs::read_dir(&old) {
            Ok(d) => d.flatten().map(|e| e.file_name()).collect(),
            Err(_) => return,
        };
        if names.len() == 1 && names[0] == "config.json" {
            let removed = std::fs::remove_file(old.join("config.json"))
                .and_then(|()| std::fs::remove_dir(&old));
            if let Err(e) = removed {
                tracing::warn!("leaving shadow bundle {}: {e}", old.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::validate_id;

    #[test]
    fn shadow_bundles_are_out_of_the_id_namespace() {
        let root = tempfile::tempdir().expect("state root");
        let rt = Runtime {
            root: root.path().to_path_buf(),
            systemd_cgroup: false,
        };
        let shadow = rt.shadow_bundle("foo");
        let name = shadow
            .strip_prefix(root.path())
            .ok()
            .and_then(|p| p.components().next())
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        assert!(
            validate_id(&name).is_err(),
            "{name} could be a container id"
        );
        // The old layout: `.config-ID` is removed only when it is a shadow bundle.
        let old = root.path().join(".config-foo");
        std::fs::create_dir(&old).expect("mkdir");
        std::fs::write(old.join("config.json"), "{}").expect("write");
        std::fs::write(old.join("state.json"), "{}").expect("write");
        rt.remove_shadow_bundle("foo");
        assert!(
            old.join("state.json").exists(),
            "a container's state was removed"
        );
        std::fs::remove_file(old.join("state.json")).expect("rm");
        rt.remove_shadow_bundle("foo");
        assert!(!old.exists(), "an old shadow bundle was left");
    }
}
