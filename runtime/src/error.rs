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
    #[error("{what}: {}", chain(.source.as_ref()))]
    Cgroup {
        what: String,
        /// libcgroups' error (of the manager that failed), or why no cgroup could be used.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// CRIU could not be found or run, or broke off the conversation.
    #[error(transparent)]
    Criu(#[from] crate::criu::CriuError),
    #[error("asking CRIU what it supports: {0}")]
    CriuFeatures(#[source] crate::criu::CriuError),
    /// A dump or restore CRIU did not finish: its message and the last errors of its log.
    #[error("CRIU {op} failed: {detail} (log: {})", log.display())]
    CriuFailed {
        op: &'static str,
        detail: String,
        log: PathBuf,
        /// The error talking to CRIU; none when CRIU itself reported the failure. Boxed to
        /// keep every `Result` of the runtime small.
        #[source]
        source: Option<Box<crate::criu::CriuError>>,
    },
    /// A failed checkpoint, and where the container is now.
    #[error("{source}; {whereabouts}")]
    CheckpointFailed {
        #[source]
        source: Box<RuntimeError>,
        whereabouts: String,
    },
    #[error("{} holds no checkpoint (no inventory.img): pass the --image-path a checkpoint wrote", .0.display())]
    NoCheckpoint(PathBuf),
    /// A file of a checkpoint that cannot be read, or is not what it should be.
    #[error("{what}: {source}")]
    CheckpointFile {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The mount tree of a container's namespace could not be scanned.
    #[error("scanning the mounts of process {pid}: {source}")]
    MountScan {
        pid: i32,
        #[source]
        source: mountv2::dump::DumpError,
    },
    /// A restored container whose mount tree is not the checkpointed one.
    #[error("{0}\n(restore aborted; pass --mount-mismatch=warn to keep such a container)")]
    MountMismatch(String),
    #[error("encoding {what}: {source}")]
    Encode {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("container \"{0}\" has no init pid")]
    NoInitPid(String),
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
    pub fn cgroup(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        RuntimeError::Cgroup {
            what: what.into(),
            source: source.into(),
        }
    }
    pub fn encode(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        RuntimeError::Encode {
            what: what.into(),
            source: source.into(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    /// A cgroup error keeps libcgroups' error (here an io::Error) as its source, and says it.
    #[test]
    fn a_cgroup_error_keeps_its_cause() {
        let cause = std::io::Error::from_raw_os_error(libc::EBUSY);
        let err = RuntimeError::cgroup("removing the cgroup of container \"te-c\"", cause);
        let io = err
            .source()
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .expect("the io::Error is the source");
        assert_eq!(io.raw_os_error(), Some(libc::EBUSY));
        let text = err.to_string();
        assert!(
            text.starts_with("removing the cgroup of container \"te-c\": "),
            "{text}"
        );
        assert!(text.contains(&io.to_string()), "{text}");
    }

    /// The mismatch of a restored tree says how to keep such a container.
    #[test]
    fn a_mount_mismatch_names_the_way_out() {
        let err = RuntimeError::MountMismatch("te- differs".into());
        assert_eq!(
            err.to_string(),
            "te- differs\n(restore aborted; pass --mount-mismatch=warn to keep such a container)"
        );
    }
}
