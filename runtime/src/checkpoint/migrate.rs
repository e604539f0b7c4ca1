//! Live migration with runc's flags: `checkpoint --page-server ADDR:PORT` (memory streamed to
//! a CRIU page server on the other node, no page images here), `checkpoint --lazy-pages
//! --page-server ADDR:PORT --status-fd FD` (post-copy: CRIU dumps everything but the memory,
//! then serves the memory from a page server on this node until the restored container has
//! fetched all of it; FD gets a zero byte once that server listens) and `restore
//! --lazy-pages` (memory comes from a CRIU lazy-pages daemon over userfaultfd). ferry's own
//! files (mount image, boundary, descriptors) are written to the image directory as always
//! and travel with CRIU's other images.
//!
//! A failed dump leaves the container where it can still run: CRIU resumes its tasks when
//! the dump (or, with lazy pages, the transfer) fails, and ferry says where the container is.

use super::options::{CheckpointOptions, CriuOptions};
use crate::criu::Criu;
use crate::error::{Result, RuntimeError};
use rust_criu::rust_criu_protobuf::rpc::{
    Criu_features, Criu_opts, Criu_page_server_info, Criu_req, Criu_req_type,
};
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};

/// The socket a CRIU lazy-pages daemon listens on, in its work directory (CRIU's name).
pub(super) const LAZY_PAGES_SOCKET: &str = "lazy-pages.socket";

/// What CRIU and the kernel support, from CRIU's own feature check.
struct Features {
    mem_track: bool,
    lazy_pages: bool,
}

fn features(criu: &Criu) -> Result<Features> {
    let mut req = Criu_req::new();
    req.set_type(Criu_req_type::FEATURE_CHECK);
    let mut f = Criu_features::new();
    f.set_mem_track(true);
    f.set_lazy_pages(true);
    req.features = protobuf::MessageField::some(f);
    let resp = criu
        .call(req, &mut |_| Ok(()), None)
        .map_err(RuntimeError::CriuFeatures)?;
    let f = resp.features.as_ref();
    Ok(Features {
        mem_track: f.map(|f| f.mem_track()).unwrap_or(false),
        lazy_pages: f.map(|f| f.lazy_pages()).unwrap_or(false),
    })
}

/// `--page-server ADDRESS:PORT`, checked.
fn page_server(ps: &str) -> Result<Criu_page_server_info> {
    let bad = |why: &str| {
        RuntimeError::Invalid(format!(
            "--page-server {ps:?}: {why}; give ADDRESS:PORT (e.g. 10.0.0.2:27)"
        ))
    };
    let (addr, port) = ps.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    if addr.is_empty() {
        return Err(bad("no address"));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| bad("the port is not a number up to 65535"))?;
    let mut info = Criu_page_server_info::new();
    info.set_address(addr.into());
    info.set_port(i32::from(port));
    Ok(info)
}

/// The user's `--status-fd`, taken over by ferry: it gets the zero byte once the lazy page
/// server listens (runc's contract), written by ferry when CRIU reports it ready. ferry does
/// not hand the number to CRIU, whose RPC socket is fd 3 in its process.
pub(super) struct StatusFd(Option<OwnedFd>);

impl StatusFd {
    /// The zero byte, once; then the descriptor is closed, as a reader waiting for the end
    /// of the stream expects.
    pub(super) fn ready(&mut self) -> std::result::Result<(), String> {
        if let Some(fd) = self.0.take() {
            let mut f = std::fs::File::from(fd);
            f.write_all(&[0])
                .map_err(|e| format!("writing to --status-fd: {e}"))?;
        }
        Ok(())
    }
}

/// The migration flags of a checkpoint, checked before anything is written.
pub(super) struct DumpMigration {
    page_server: Option<Criu_page_server_info>,
    lazy: bool,
    pub(super) status: StatusFd,
    /// CRIU said its lazy page server was ready: a restore elsewhere may have started.
    pub(super) served: bool,
}

impl DumpMigration {
    /// CRIU's options for these flags.
    pub(super) fn apply(&self, o: &mut Criu_opts) {
        if let Some(ps) = &self.page_server {
            o.ps = protobuf::MessageField::some(ps.clone());
        }
        if self.lazy {
            o.set_lazy_pages(true);
        }
    }

    /// Answer one of CRIU's notifications: `status-ready` comes once the lazy page server
    /// listens.
    pub(super) fn notified(&mut self, script: &str) -> std::result::Result<(), String> {
        if script == "status-ready" && self.lazy {
            self.served = true;
            self.status.ready()?;
        }
        Ok(())
    }

    /// A failed dump's error, with where the container is now. A container that runs here
    /// again gets its network back: CRIU locks the network namespace of a dump with
    /// established TCP connections, and does not always unlock it when it resumes the tasks
    /// (a failed lazy transfer leaves the lock), which would leave the container running but
    /// cut off.
    pub(super) fn failed(&self, e: RuntimeError, pid: i32, tcp: bool) -> RuntimeError {
        let mut whereabouts = where_after_failure(pid, self.served);
        if tcp && alive(pid) {
            if let Err(why) = unlock_network(pid) {
                whereabouts.push_str(&format!(
                    "; its network stays locked by CRIU ({why}): remove the CRIU chain of iptables in its network namespace"
                ));
            }
        }
        RuntimeError::CheckpointFailed {
            source: Box::new(e),
            whereabouts,
        }
    }
}

/// Check the migration flags of a checkpoint.
pub(super) fn prepare_dump(criu: &Criu, opts: &CheckpointOptions) -> Result<DumpMigration> {
    let lazy = opts.common.lazy_pages;
    if lazy && opts.pre_dump {
        return Err(RuntimeError::Invalid(
            "--lazy-pages and --pre-dump exclude each other: a pre-dump leaves the container running and serves no pages; use one".into(),
        ));
    }
    if lazy || opts.pre_dump {
        let f = features(criu)?;
        if lazy && !f.lazy_pages {
            return Err(RuntimeError::Invalid(format!(
                "--lazy-pages needs userfaultfd, and CRIU ({}) reports this kernel cannot serve it (see `criu check --feature uffd-noncoop`): checkpoint without --lazy-pages",
                criu.path.display()
            )));
        }
        if opts.pre_dump && !f.mem_track {
            return Err(RuntimeError::Invalid(format!(
                "--pre-dump needs the kernel to track dirty memory, and CRIU ({}) reports dirty tracking off on this kernel (see `criu check --feature mem_dirty_track`): checkpoint without --pre-dump",
                criu.path.display()
            )));
        }
    }
    let ps = opts.page_server.as_deref().map(page_server).transpose()?;
    if ps.is_none() && lazy {
        return Err(RuntimeError::Invalid(
            "--lazy-pages serves the memory from a page server on this node: give --page-server ADDRESS:PORT for it to listen on".into(),
        ));
    }
    #[allow(unsafe_code)]
    let status = match opts.status_fd {
        None => None,
        Some(fd) if !lazy => {
            return Err(RuntimeError::Invalid(format!(
                "--status-fd {fd} says when lazy pages are served: use it with --lazy-pages"
            )))
        }
        Some(fd) => {
            // SAFETY: F_GETFD only reads the descriptor's flags.
            if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
                return Err(RuntimeError::Invalid(format!(
                    "--status-fd {fd} is not an open file descriptor of ferry: open it for writing (e.g. `--status-fd 3 3>FIFO`)"
                )));
            }
            // SAFETY: the caller gave ferry this open descriptor to write to and close.
            Some(unsafe { OwnedFd::from_raw_fd(fd) })
        }
    };
    Ok(DumpMigration {
        page_server: ps,
        lazy,
        status: StatusFd(status),
        served: false,
    })
}

/// Check `restore --lazy-pages` before anything is made: a lazy-pages daemon must serve the
/// work directory, or CRIU fails after making half the container.
pub(super) fn check_restore(common: &CriuOptions) -> Result<()> {
    if !common.lazy_pages {
        return Ok(());
    }
    let work = common.work_path();
    if !work.join(LAZY_PAGES_SOCKET).exists() {
        return Err(RuntimeError::Invalid(format!(
            "--lazy-pages: no CRIU lazy-pages daemon serves {} (no {LAZY_PAGES_SOCKET} there): start `criu lazy-pages --page-server --address SOURCE --port PORT --images-dir {} --work-dir {}` first",
            work.display(),
            common.image_path.display(),
            work.display()
        )));
    }
    Ok(())
}

/// CRIU's restore options for the migration flags.
pub(super) fn apply_restore(common: &CriuOptions, o: &mut Criu_opts) {
    if common.lazy_pages {
        o.set_lazy_pages(true);
    }
}

/// Whether task `pid` lives (a zombie does not).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// The name of CRIU's iptables chain that drops a locked namespace's traffic.
const CRIU_CHAIN: &str = "CRIU";

/// Remove CRIU's network lock (its iptables chain, hooked into INPUT and OUTPUT) from the
/// network namespace of `pid`, as CRIU's own unlock does; nothing when there is none.
fn unlock_network(pid: i32) -> std::result::Result<(), String> {
    let ns = format!("--net=/proc/{pid}/ns/net");
    let iptables = |args: &[&str]| {
        std::process::Command::new("nsenter")
            .arg(&ns)
            .arg("iptables")
            .args(["-w", "-t", "filter"])
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
    };
    match iptables(&["-S", CRIU_CHAIN]) {
        Ok(s) if s.success() => {}
        // No chain (or no iptables): nothing locked this way.
        _ => return Ok(()),
    }
    // A hook that is not there fails to be deleted, harmlessly; a chain still hooked in or
    // not emptied makes the `-X` below fail, and that is reported.
    for hook in ["INPUT", "OUTPUT"] {
        let _ = iptables(&["-D", hook, "-j", CRIU_CHAIN]);
    }
    let _ = iptables(&["-F", CRIU_CHAIN]);
    match iptables(&["-X", CRIU_CHAIN]) {
        Ok(s) if s.success() => {
            tracing::info!("removed CRIU's network lock from the container's namespace");
            Ok(())
        }
        Ok(s) => Err(format!("iptables -X {CRIU_CHAIN}: {s}")),
        Err(e) => Err(format!("running iptables: {e}")),
    }
}

/// Where the container is after a failed dump of `pid`, for the error message: CRIU resumes
/// the tasks of a dump that fails, also when a lazy transfer breaks off.
pub(super) fn where_after_failure(pid: i32, lazy_served: bool) -> String {
    match (alive(pid), lazy_served) {
        (true, false) => "the container still runs on this node".into(),
        (true, true) => "the container runs on this node again (CRIU resumed it when the lazy transfer failed); a copy restored on the other node before the failure lacks memory: remove it there".into(),
        (false, _) => "the container's tasks are gone from this node: it runs on the node that restored it, if any".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_server_addresses() {
        let i = page_server("10.0.0.2:27").expect("valid");
        assert_eq!((i.address(), i.port()), ("10.0.0.2", 27));
        let i = page_server("[fd00::2]:27").expect("v6");
        assert_eq!(i.address(), "fd00::2");
        for bad in ["10.0.0.2", ":27", "10.0.0.2:x", "10.0.0.2:70000"] {
            let e = page_server(bad).expect_err(bad).to_string();
            assert!(
                e.contains("--page-server") && e.contains("ADDRESS:PORT"),
                "{e}"
            );
        }
    }

    #[test]
    fn status_fd_gets_one_zero_byte_then_closes() {
        let (r, w) = rustix::pipe::pipe().expect("pipe");
        let mut s = StatusFd(Some(w));
        s.ready().expect("ready");
        s.ready().expect("second call is a no-op");
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut std::fs::File::from(r), &mut out).expect("read");
        assert_eq!(out, vec![0]);
    }

    /// A failed dump's error keeps CRIU's failure as its source and says where the
    /// container is.
    #[test]
    fn a_failed_dump_keeps_its_cause() {
        use std::error::Error as _;
        let migration = DumpMigration {
            page_server: None,
            lazy: false,
            status: StatusFd(None),
            served: false,
        };
        let cause = RuntimeError::CriuFailed {
            op: "dump",
            detail: "te- cause".into(),
            log: "/te-log".into(),
            source: None,
        };
        let err = migration.failed(cause, std::process::id() as i32, false);
        let text = err.to_string();
        assert!(
            text.contains("CRIU dump failed: te- cause")
                && text.contains("still runs on this node"),
            "{text}"
        );
        // The cause is boxed (the error is recursive), and the box is the source.
        let source = err
            .source()
            .and_then(|s| s.downcast_ref::<Box<RuntimeError>>());
        assert!(
            matches!(
                source.map(|b| &**b),
                Some(RuntimeError::CriuFailed { op: "dump", .. })
            ),
            "{err:?}"
        );
    }

    #[test]
    fn a_live_task_is_reported_here() {
        let me = std::process::id() as i32;
        assert!(where_after_failure(me, false).contains("still runs on this node"));
        assert!(where_after_failure(i32::MAX, false).contains("gone from this node"));
    }
}
