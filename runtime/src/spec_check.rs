//! config.json read as runc 1.1 reads it, where libcontainer (and oci-spec) would refuse it.
//!
//! - A capability name this runtime does not know (`CAP_FOO`, or one newer than oci-spec's
//!   list) is dropped with a warning naming it; runc warns "ignoring unknown or unavailable
//!   capabilities" and runs. A typo in a capability list thus costs the container that
//!   capability, not its start, as with runc.
//!   The same holds for exec's process (`--cap`, `--process`).
//! - An `ociVersion` that is not 1.x (2.0.0, 0.9, empty) is read as runtime-spec 1.x with a
//!   warning: runc does not look at it. There is no runtime-spec 2 to misread, so refusing
//!   such a bundle would only break bundles runc runs.

use oci_spec::runtime::{Capability, Spec};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};

/// The version a config that is not 1.x is read as (libcontainer refuses anything else).
const READ_AS_VERSION: &str = "1.0.2";

/// The capability sets of `process.capabilities`.
const CAPABILITY_SETS: [&str; 5] = [
    "bounding",
    "effective",
    "inheritable",
    "permitted",
    "ambient",
];

/// What [`relax`] changed in a config.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Relaxed {
    /// Capability names dropped, sorted, each once.
    pub unknown_capabilities: Vec<String>,
    /// The config's own `ociVersion` when it is not 1.x.
    pub other_version: Option<String>,
}

impl Relaxed {
    pub fn changed(&self) -> bool {
        !self.unknown_capabilities.is_empty() || self.other_version.is_some()
    }

    /// Warn about what was changed, once per ferry process (a command reads config.json more
    /// than once).
    pub fn warn_once(&self) {
        static WARNED: AtomicBool = AtomicBool::new(false);
        if !self.changed() || WARNED.swap(true, Ordering::SeqCst) {
            return;
        }
        if !self.unknown_capabilities.is_empty() {
            tracing::warn!(
                "ignoring unknown or unavailable capabilities in config.json: {}",
                self.unknown_capabilities.join(", ")
            );
        }
        if let Some(v) = &self.other_version {
            tracing::warn!(
                "config.json has ociVersion {v:?}, not 1.x: ferry reads it as runtime-spec 1.x"
            );
        }
    }
}

fn known_capability(name: &str) -> bool {
    serde_json::from_value::<Capability>(Value::String(name.to_string())).is_ok()
}

/// Drop the capability names this runtime does not know from a process object (config.json's
/// `process`, or exec's); returns them, sorted, each once.
pub fn drop_unknown_capabilities(process: &mut Value) -> Vec<String> {
    let mut dropped = Vec::new();
    if let Some(caps) = process.get_mut("capabilities") {
        for set in CAPABILITY_SETS {
            if let Some(list) = caps.get_mut(set).and_then(Value::as_array_mut) {
                list.retain(|c| match c.as_str() {
                    Some(name) if !known_capability(name) => {
                        dropped.push(name.to_string());
                        false
                    }
                    _ => true,
                });
            }
        }
    }
    dropped.sort();
    dropped.dedup();
    dropped
}

/// Rewrite a parsed config.json as runc reads it (see the module's comment).
pub fn relax(cfg: &mut Value) -> Relaxed {
    let mut out = Relaxed::default();
    if let Some(process) = cfg.get_mut("process") {
        out.unknown_capabilities = drop_unknown_capabilities(process);
    }
    if let Some(obj) = cfg.as_object_mut() {
        let version = obj
            .get("ociVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if !version.starts_with("1.") {
            out.other_version = Some(version);
            obj.insert("ociVersion".into(), READ_AS_VERSION.into());
        }
    }
    out
}

/// Parse config.json text as runc would (see the module's comment). The error names the
/// offending field (`field process.args: ...`).
pub fn parse(text: &[u8]) -> std::result::Result<(Spec, Relaxed), String> {
    let describe =
        |e: serde_path_to_error::Error<serde_json::Error>| match e.path().to_string().as_str() {
            "." => e.inner().to_string(),
            field => format!("field {field}: {}", e.inner()),
        };
    let mut value: Value = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    let relaxed = relax(&mut value);
    let spec = if relaxed.changed() {
        serde_path_to_error::deserialize(value).map_err(describe)?
    } else {
        // From the text, so that errors also give the line and column.
        let mut de = serde_json::Deserializer::from_slice(text);
        serde_path_to_error::deserialize(&mut de).map_err(describe)?
    };
    Ok((spec, relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_capabilities_and_other_versions_are_read_as_runc_reads_them() {
        let mut cfg = json!({
            "ociVersion": "2.0.0",
            "process": {"capabilities": {
                "bounding": ["CAP_CHOWN", "CAP_FOO"],
                "effective": ["CAP_FOO", "CAP_BAR", "CAP_KILL"]
            }}
        });
        let r = relax(&mut cfg);
        assert_eq!(r.unknown_capabilities, vec!["CAP_BAR", "CAP_FOO"]);
        assert_eq!(r.other_version.as_deref(), Some("2.0.0"));
        assert_eq!(
            cfg["process"]["capabilities"]["bounding"],
            json!(["CAP_CHOWN"])
        );
        assert_eq!(
            cfg["process"]["capabilities"]["effective"],
            json!(["CAP_KILL"])
        );
        assert_eq!(cfg["ociVersion"], json!(READ_AS_VERSION));

        let mut plain =
            json!({"ociVersion": "1.2.1", "process": {"capabilities": {"bounding": ["CAP_KILL"]}}});
        assert!(!relax(&mut plain).changed());
        let mut none = json!({});
        assert_eq!(relax(&mut none).other_version.as_deref(), Some(""));
    }
}
