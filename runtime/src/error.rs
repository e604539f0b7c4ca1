//! Errors of runtime operations. Each message names the container or file involved and, where
//! the user can act, what to do. Engines match some words: containerd looks for
//! `does not exist` and `container not running`, so those phrases are kept verbatim.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("container \"{0}\" does not exist")]
    NotFound(String),
    #[error("container \"{0}\" already exists: choose another id or remove it with `ferry delete --force {0}`")]
    Exists(String),
    #[error("invalid container id {0:?}: use letters, digits, '_', '+', '-' and '.' only")]
    InvalidId(String),
    #[error("bundle {path}: {reason}")]
    Bundle { path: PathBuf, reason: String },
    #[error("config.json in bundle {path} is malformed: {reason}")]
    MalformedConfig { path: PathBuf, reason: String },
    #[error("cannot {op} container \"{id}\": container not running (status: {status})")]
    NotRunning {
        op: &'static str,
        id: String,
        status: String,
    },
    #[error("cannot {op} container \"{id}\" in status {status}: {hint}")]
    WrongState {
        op: &'static str,
        id: String,
        status: String,
        hint: &'static str,
    },
    #[error("state of container \"{id}\" ({path}) cannot be read: {}; remove what is left of it with `ferry delete --force {id}`", chain(.source.as_ref()))]
    CorruptState {
        id: String,
        path: PathBuf,
        #[source]
        source: Box<libcontainer::error::LibcontainerError>,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("ferry needs root for {0}: run it as root, or pass --rootless with a user namespace in config.json")]
    Privilege(&'static str),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {}", chain(.source))]
    Container {
        what: String,
        #[source]
        source: libcontainer::error::LibcontainerError,
    },
    #[error("{what}: {detail}")]
    Cgroup { what: String, detail: String },
}

/// libcontainer's errors often carry their cause only as a source; spell out the whole chain
/// so that a log line alone explains the failure.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

impl RuntimeError {
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            what: what.into(),
            source,
        }
    }
    pub fn container(
        what: impl Into<String>,
        source: libcontainer::error::LibcontainerError,
    ) -> Self {
        RuntimeError::Container {
            what: what.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, RuntimeError>;
