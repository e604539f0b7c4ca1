//! A driver for CRIU's RPC (`criu swrk`): one request over a SEQPACKET socket, the
//! notifications CRIU sends while it works (each answered before CRIU goes on), and the final
//! response. The protobuf types come from rust-criu; the conversation is ours, because restore
//! needs options and notification handling that crate's wrapper does not offer.

use protobuf::Message;
use rust_criu::rust_criu_protobuf::rpc::{Criu_notify, Criu_req, Criu_req_type, Criu_resp};
use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The CRIU version ferry needs: 4.1 handles this kernel's vdso layout.
pub const MIN_VERSION: u32 = 40100;

/// How long one CRIU call may take, in seconds, unless [`TIMEOUT_ENV`] says otherwise. A CRIU
/// that never finishes (a restored task spinning on a damaged image) must not hold ferry, and
/// an engine waiting on it, forever; restoring even tens of gigabytes of memory takes far less.
pub const DEFAULT_TIMEOUT_SECS: u64 = 300;
/// The environment variable that sets the limit: whole seconds, 0 for none.
pub const TIMEOUT_ENV: &str = "FERRY_CRIU_TIMEOUT";

#[derive(Debug, thiserror::Error)]
pub enum CriuError {
    #[error("CRIU was not found ({0}): install CRIU 4.1 or newer (hack/setup does) or name it with --criu PATH")]
    NotFound(String),
    #[error("CRIU at {path} is version {found}, ferry needs 4.1 or newer: install a newer CRIU (hack/setup does) or name it with --criu PATH")]
    TooOld { path: PathBuf, found: String },
    #[error("talking to CRIU: {0}")]
    Rpc(String),
    #[error("{TIMEOUT_ENV}={0:?}: give whole seconds (0: no limit)")]
    BadTimeout(String),
    #[error("CRIU did not finish within {0} s; ferry killed it and every process it started (set {TIMEOUT_ENV}=SECONDS to allow longer, 0 for no limit)")]
    Timeout(u64),
    #[error("CRIU {op} failed: {msg} (see {log})")]
    Failed {
        op: &'static str,
        msg: String,
        log: String,
    },
}

/// A notification CRIU sends during a dump or restore, with the fd it may carry.
pub struct Notification {
    pub script: String,
    pub pid: i32,
    pub fd: Option<OwnedFd>,
}

#[derive(Debug, Clone)]
pub struct Criu {
    pub path: PathBuf,
    /// The longest one call may take ([`TIMEOUT_ENV`]); `None`: no limit.
    pub timeout: Option<Duration>,
}

/// Work to do in CRIU's process between fork and exec (for restore: a private mount
/// namespace). Runs in the forked child: it must only make syscalls.
pub type PreExec = Box<dyn FnMut() -> std::io::Result<()> + Send + Sync>;

impl Criu {
    /// `--criu PATH`, else `criu` on PATH; the time limit from [`TIMEOUT_ENV`].
    pub fn find(explicit: Option<&Path>) -> Result<Criu, CriuError> {
        let timeout = timeout_from_env(std::env::var(TIMEOUT_ENV).ok().as_deref())?;
        if let Some(p) = explicit {
            if p.is_file() {
                return Ok(Criu {
                    path: p.into(),
                    timeout,
                });
            }
            return Err(CriuError::NotFound(format!(
                "{} does not exist",
                p.display()
            )));
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        for dir in std::env::split_paths(&path) {
            let c = dir.join("criu");
            if c.is_file() {
                return Ok(Criu { path: c, timeout });
            }
        }
        Err(CriuError::NotFound("no criu on PATH".into()))
    }

    /// CRIU's version as major*10000 + minor*100 + sublevel.
    pub fn version(&self) -> Result<u32, CriuError> {
        let mut req = Criu_req::new();
        req.set_type(Criu_req_type::VERSION);
        let resp = self.call(req, &mut |_| Ok(()), None)?;
        let v = resp
            .version
            .as_ref()
            .ok_or_else(|| CriuError::Rpc("no version in reply".into()))?;
        Ok(v.major_number() as u32 * 10000 + v.minor_number() as u32 * 100 + v.sublevel() as u32)
    }

    /// Fail unless CRIU is at least [`MIN_VERSION`].
    pub fn check_version(&self) -> Result<u32, CriuError> {
        let v = self.version()?;
        if v < MIN_VERSION {
            return Err(CriuError::TooOld {
                path: self.path.clone(),
                found: format!("{}.{}.{}", v / 10000, v / 100 % 100, v % 100),
            });
        }
        Ok(v)
    }

    /// Send one request and run the conversation to its end. `notify` answers each
    /// notification: an error there makes CRIU abort the operation. When the conversation
    /// breaks or outlasts the time limit, CRIU and every process it started are killed.
    #[allow(unsafe_code)]
    pub fn call(
        &self,
        req: Criu_req,
        notify: &mut dyn FnMut(Notification) -> Result<(), String>,
        pre_exec: Option<PreExec>,
    ) -> Result<Criu_resp, CriuError> {
        let (ours, theirs) =
            seqpacket_pair().map_err(|e| CriuError::Rpc(format!("socketpair: {e}")))?;
        let their_fd: RawFd = theirs.as_raw_fd();
        let mut cmd = Command::new(&self.path);
        cmd.arg("swrk").arg("3");
        let mut extra = pre_exec;
        // SAFETY: the closure only makes async-signal-safe syscalls (dup2, and the caller's
        // mount-namespace setup, documented to do the same).
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(their_fd, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if let Some(f) = extra.as_mut() {
                    f()?;
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| CriuError::NotFound(format!("running {}: {e}", self.path.display())))?;
        drop(theirs);
        let deadline = self.timeout.map(|t| Instant::now() + t);
        let result = converse(
            &ours,
            req,
            notify,
            &mut Waiting {
                criu: &mut child,
                deadline,
                limit: self.timeout,
            },
        );
        drop(ours);
        match &result {
            // CRIU exits after its reply; a CRIU that does not is ended like a hung one.
            Ok(_) => {
                if !wait_until(&mut child, deadline) {
                    end(&mut child);
                }
            }
            Err(_) => end(&mut child),
        }
        result
    }
}

/// The time limit [`TIMEOUT_ENV`] sets (`value`), else the default.
fn timeout_from_env(value: Option<&str>) -> Result<Option<Duration>, CriuError> {
    let secs = match value.map(str::trim) {
        None | Some("") => DEFAULT_TIMEOUT_SECS,
        Some(v) => v
            .parse::<u64>()
            .map_err(|_| CriuError::BadTimeout(v.to_string()))?,
    };
    Ok((secs > 0).then(|| Duration::from_secs(secs)))
}

/// Wait for `child` until `deadline`; false when it still runs then.
fn wait_until(child: &mut Child, deadline: Option<Instant>) -> bool {
    let Some(deadline) = deadline else {
        return child.wait().is_ok();
    };
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return true,
            Ok(None) if Instant::now() >= deadline => return false,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Kill CRIU and everything it started (helpers, action scripts, tasks it was restoring that
/// are still its children), then reap it. A CRIU already reaped is not looked for by its pid,
/// which may name another process by now (its orphans went to a subreaper or init).
fn end(child: &mut Child) {
    if let (Ok(None), Ok(pid)) = (child.try_wait(), i32::try_from(child.id())) {
        let killed = crate::cleanup::kill_tree(pid, false);
        tracing::debug!("killed CRIU ({pid}) and its processes: {killed:?}");
    }
    // Reaps CRIU; it fails only when the child was reaped already, which is the goal.
    let _ = child.wait();
}

/// The connected pair of sockets ferry and CRIU talk over: one message per request or reply.
fn seqpacket_pair() -> rustix::io::Result<(OwnedFd, OwnedFd)> {
    rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::SEQPACKET,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
}

fn send(sock: &OwnedFd, msg: &Criu_req) -> Result<(), CriuError> {
    let bytes = msg
        .write_to_bytes()
        .map_err(|e| CriuError::Rpc(format!("encoding request: {e}")))?;
    rustix::net::send(
        sock,
        &bytes,
        // A CRIU that died is an error to report, not a SIGPIPE that kills ferry mid-restore.
        rustix::net::SendFlags::NOSIGNAL,
    )
    .map_err(|e| CriuError::Rpc(format!("sending request: {e}")))?;
    Ok(())
}

/// How the conversation waits: for CRIU's process and until the deadline.
struct Waiting<'a> {
    criu: &'a mut Child,
    deadline: Option<Instant>,
    /// The configured limit, for the message.
    limit: Option<Duration>,
}

/// How often a wait for CRIU's reply looks whether CRIU still runs: its socket can outlive
/// it, held open by tasks it forked, so a dead CRIU does not always close the connection.
const LIVENESS_POLL: Duration = Duration::from_millis(200);

fn receive(
    sock: &OwnedFd,
    waiting: &mut Waiting<'_>,
) -> Result<(Criu_resp, Option<OwnedFd>), CriuError> {
    use rustix::io::Errno;
    use rustix::net::sockopt::{set_socket_timeout, Timeout};
    loop {
        let slice = match waiting.deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(CriuError::Timeout(
                        waiting.limit.map(|l| l.as_secs()).unwrap_or_default(),
                    ));
                }
                left.min(LIVENESS_POLL)
            }
            None => LIVENESS_POLL,
        };
        // A receive timeout of zero would mean none: `slice` is never zero, and rustix
        // rounds one below a microsecond up to one.
        set_socket_timeout(sock, Timeout::Recv, Some(slice))
            .map_err(|e| CriuError::Rpc(format!("setting the reply timeout: {e}")))?;
        match receive_once(sock) {
            Ok(r) => return r,
            Err(Errno::AGAIN) | Err(Errno::INTR) => {
                if let Ok(Some(status)) = waiting.criu.try_wait() {
                    return Err(CriuError::Rpc(format!(
                        "CRIU exited ({status}) without a reply (it crashed or was killed; see its log)"
                    )));
                }
            }
            Err(e) => return Err(CriuError::Rpc(format!("receiving reply: {e}"))),
        }
    }
}

/// One message from CRIU, with the descriptor it may carry (any further ones are closed).
fn receive_once(
    sock: &OwnedFd,
) -> rustix::io::Result<Result<(Criu_resp, Option<OwnedFd>), CriuError>> {
    use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut buf = vec![0u8; 1 << 20];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut cmsg = RecvAncillaryBuffer::new(&mut space);
    let msg = recvmsg(
        sock,
        &mut [IoSliceMut::new(&mut buf)],
        &mut cmsg,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut fd = None;
    for c in cmsg.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = c {
            for owned in fds {
                if fd.is_none() {
                    fd = Some(owned);
                }
            }
        }
    }
    let n = msg.bytes;
    if n == 0 {
        return Ok(Err(CriuError::Rpc(
            "CRIU closed the connection without a reply (it crashed or was killed; see its log)"
                .into(),
        )));
    }
    Ok(Criu_resp::parse_from_bytes(&buf[..n])
        .map(|resp| (resp, fd))
        .map_err(|e| CriuError::Rpc(format!("decoding reply: {e}"))))
}

fn converse(
    sock: &OwnedFd,
    req: Criu_req,
    notify: &mut dyn FnMut(Notification) -> Result<(), String>,
    waiting: &mut Waiting<'_>,
) -> Result<Criu_resp, CriuError> {
    send(sock, &req)?;
    loop {
        let (resp, fd) = receive(sock, waiting)?;
        if resp.type_() != Criu_req_type::NOTIFY {
            return Ok(resp);
        }
        let n: &Criu_notify = resp
            .notify
            .as_ref()
            .unwrap_or_else(|| Criu_notify::default_instance());
        let outcome = notify(Notification {
            script: n.script().to_string(),
            pid: n.pid(),
            fd,
        });
        let mut ack = Criu_req::new();
        ack.set_type(Criu_req_type::NOTIFY);
        ack.set_notify_success(outcome.is_ok());
        if let Err(e) = &outcome {
            tracing::error!("CRIU notification {:?}: {e}", n.script());
        }
        send(sock, &ack)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_from_the_environment() {
        assert_eq!(
            timeout_from_env(None).expect("default"),
            Some(Duration::from_secs(DEFAULT_TIMEOUT_SECS))
        );
        assert_eq!(
            timeout_from_env(Some("5")).expect("5"),
            Some(Duration::from_secs(5))
        );
        assert_eq!(timeout_from_env(Some("0")).expect("0"), None);
        assert!(timeout_from_env(Some("5s")).is_err());
        assert!(timeout_from_env(Some("-1")).is_err());
    }

    /// A CRIU that never answers is killed at the deadline, with whatever it started.
    #[test]
    fn a_silent_criu_is_killed_at_the_deadline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = dir.path().join("criu");
        let pidfile = dir.path().join("child");
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\nsleep 600 &\necho $! > {}\nwait\n",
                pidfile.display()
            ),
        )
        .expect("write");
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let criu = Criu {
            path: fake,
            timeout: Some(Duration::from_secs(1)),
        };
        let start = Instant::now();
        let mut req = Criu_req::new();
        req.set_type(Criu_req_type::VERSION);
        let err = criu.call(req, &mut |_| Ok(()), None).expect_err("no reply");
        assert!(matches!(err, CriuError::Timeout(1)), "{err}");
        assert!(start.elapsed() < Duration::from_secs(10));
        let child: i32 = std::fs::read_to_string(&pidfile)
            .expect("child pid")
            .trim()
            .parse()
            .expect("pid");
        assert!(crate::cleanup::dies(child), "CRIU's child lives on");
    }

    /// The conversation's framing against a fake CRIU on a socketpair: each notification
    /// (one carrying a descriptor) reaches the callback and is acknowledged with its outcome;
    /// the reply that is not a notification ends the call.
    #[test]
    fn notifications_are_acknowledged_then_the_reply_returned() {
        let (ours, theirs) = seqpacket_pair().expect("socketpair");
        let peer = fake_criu(theirs);
        // The conversation watches CRIU's process; a sleeping one stands in for it.
        let mut stand_in = Command::new("sleep").arg("30").spawn().expect("sleep");
        let mut seen = Vec::new();
        let mut req = Criu_req::new();
        req.set_type(Criu_req_type::RESTORE);
        let result = converse(
            &ours,
            req,
            &mut |n| {
                seen.push((n.script.clone(), n.pid, n.fd.is_some()));
                if n.script == "setup-namespaces" {
                    Err("refused".into())
                } else {
                    Ok(())
                }
            },
            &mut Waiting {
                criu: &mut stand_in,
                deadline: Some(Instant::now() + Duration::from_secs(20)),
                limit: Some(Duration::from_secs(20)),
            },
        );
        end(&mut stand_in);
        let reply = result.expect("the reply");
        assert_eq!(reply.type_(), Criu_req_type::RESTORE);
        assert!(reply.success());
        assert_eq!(
            seen,
            vec![
                ("setup-namespaces".to_string(), 7, false),
                ("orphan-pts-master".to_string(), 8, true)
            ]
        );
        let got = peer.join().expect("the fake CRIU");
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0].type_(), Criu_req_type::RESTORE);
        assert_eq!(got[1].type_(), Criu_req_type::NOTIFY);
        assert!(
            !got[1].notify_success(),
            "a refused notification acknowledged as done"
        );
        assert_eq!(got[2].type_(), Criu_req_type::NOTIFY);
        assert!(got[2].notify_success());
    }
    /// A fake CRIU on its end of the socket: reads the request, sends a notification without
    /// a descriptor and one with, reading the acknowledgement of each, then the reply.
    /// Returns what it read.
    fn fake_criu(theirs: OwnedFd) -> std::thread::JoinHandle<Vec<Criu_req>> {
        use rustix::net::{
            recv, send, sendmsg, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
        };
        use std::os::fd::AsFd;
        std::thread::spawn(move || -> Vec<Criu_req> {
            let mut got = Vec::new();
            let mut buf = vec![0u8; 4096];
            let mut read = |got: &mut Vec<Criu_req>| {
                let (n, _) = recv(&theirs, &mut buf[..], RecvFlags::empty()).expect("recv");
                got.push(Criu_req::parse_from_bytes(&buf[..n]).expect("decode a request"));
            };
            read(&mut got);
            let devnull = std::fs::File::open("/dev/null").expect("/dev/null");
            for (script, pid, fd) in [
                ("setup-namespaces", 7, None),
                ("orphan-pts-master", 8, Some(&devnull)),
            ] {
                let mut n = Criu_notify::new();
                n.set_script(script.into());
                n.set_pid(pid);
                let mut resp = Criu_resp::new();
                resp.set_type(Criu_req_type::NOTIFY);
                resp.set_success(true);
                resp.notify = protobuf::MessageField::some(n);
                let bytes = resp.write_to_bytes().expect("encode");
                let fds: Vec<_> = fd.iter().map(|f| f.as_fd()).collect();
                let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
                let mut cmsg = SendAncillaryBuffer::new(&mut space);
                if !fds.is_empty() {
                    assert!(
                        cmsg.push(SendAncillaryMessage::ScmRights(&fds)),
                        "cmsg space"
                    );
                }
                sendmsg(
                    &theirs,
                    &[std::io::IoSlice::new(&bytes)],
                    &mut cmsg,
                    SendFlags::empty(),
                )
                .expect("send a notification");
                read(&mut got);
            }
            let mut reply = Criu_resp::new();
            reply.set_type(Criu_req_type::RESTORE);
            reply.set_success(true);
            let bytes = reply.write_to_bytes().expect("encode");
            send(&theirs, &bytes, SendFlags::empty()).expect("send the reply");
            got
        })
    }
}
