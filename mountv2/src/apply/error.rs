//! Errors of an apply. Each keeps the kernel's error as its source, so that a caller can
//! match on the errno, and says in its text what was being done where, so that one log line
//! explains the failure.

use std::io;
use std::path::PathBuf;

/// Why an apply failed: before anything was touched (the kernel, the fd limit, the target),
/// or in one step of the plan.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("step {index} ({step}): {source}")]
    Step {
        index: usize,
        /// The step as the plan prints it (`attach mount[3] on mount[0] at "a"`).
        step: String,
        #[source]
        source: StepError,
    },
    #[error(
        "this kernel cannot restore mount trees the mount-v2 way: {call} failed: {source}; \
         ferry needs Linux 6.15 or newer (fsopen, open_tree on detached mounts, \
         MOVE_MOUNT_SET_GROUP)"
    )]
    Kernel {
        call: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("raising the open-file limit: {0}")]
    FdLimit(#[source] io::Error),
    #[error(
        "restoring {mounts} mounts keeps at least {needed} fds open but the open-file limit is \
         {limit}; raise it (ulimit -n)"
    )]
    TooFewFds {
        mounts: usize,
        needed: u64,
        limit: u64,
    },
    #[error("target {}: {source}", path.display())]
    Target {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("target {} is not a directory", .0.display())]
    TargetNotDirectory(PathBuf),
}

/// Why one step of a plan failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A system call failed: what the step was doing, on which mount point or path, the
    /// kernel's error, and what that error means here when the errno alone does not say.
    #[error(
        "{what}{}: {source}{}",
        at.as_ref().map(|a| format!(" at {a}")).unwrap_or_default(),
        hint.as_deref().unwrap_or_default()
    )]
    Sys {
        what: String,
        at: Option<String>,
        #[source]
        source: io::Error,
        hint: Option<String>,
    },
    /// A superblock's recorded contents could not be written.
    #[error(transparent)]
    Content(#[from] crate::content::ContentError),
    /// A path of the image does not decode to bytes (validation should have refused it).
    #[error("{what} {path:?}: {reason}")]
    BadPath {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error(
        "external filesystem {key:?} has no path on this host; \
         pass --external {key}=PATH naming a mount of its root"
    )]
    NoExternal { key: String },
    /// Short of fds, a mount is opened again by path; another mount was found there.
    #[error("reopening mount[{mount}] at {at:?} found another mount there")]
    Replaced { mount: u32, at: String },
    /// The step needs what an earlier step should have made (a fault of the plan).
    #[error("{0}")]
    NotMade(String),
}

impl StepError {
    /// A failed system call of a step doing `what`.
    pub(super) fn sys(what: impl Into<String>, source: impl Into<io::Error>) -> Self {
        StepError::Sys {
            what: what.into(),
            at: None,
            source: source.into(),
            hint: None,
        }
    }

    /// A failed system call of a step doing `what` on the mount point or path `at`.
    pub(super) fn sys_at(
        what: impl Into<String>,
        at: impl Into<String>,
        source: impl Into<io::Error>,
    ) -> Self {
        StepError::Sys {
            what: what.into(),
            at: Some(at.into()),
            source: source.into(),
            hint: None,
        }
    }

    /// The same error with `hint` (text that reads on from the errno: `; pass ...`).
    pub(super) fn hint(mut self, text: impl Into<String>) -> Self {
        if let StepError::Sys { hint, .. } = &mut self {
            *hint = Some(text.into());
        }
        self
    }
}
