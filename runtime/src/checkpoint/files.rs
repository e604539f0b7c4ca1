//! Files of a checkpoint and of a restored container: the image directory, ferry's image
//! files, the pid file and the console socket.

use crate::error::{Result, RuntimeError};
use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

/// Open the image or work directory, creating it (and missing parents) readable by root
/// only, as runc does: it holds the container's memory.
pub(super) fn open_dir(path: &Path, what: &str) -> Result<File> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| RuntimeError::io(format!("creating {what} {}", path.display()), e))?;
    File::open(path).map_err(|e| RuntimeError::io(format!("opening {what} {}", path.display()), e))
}

/// Write one of ferry's image files, readable by its owner only (also when it existed).
pub(super) fn write_image_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)
}

pub(super) fn load_mount_image(path: &Path) -> Result<mountv2::image::MountImage> {
    mountv2::image::MountImage::load(path).map_err(|e| RuntimeError::CheckpointFile {
        what: format!("mount image {}", path.display()),
        source: e.into(),
    })
}

pub(super) fn write_pid_file(path: &Path, pid: i32) -> std::io::Result<()> {
    // Digits only, written atomically (containerd rejects a trailing newline).
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .map(|f| f.to_string_lossy())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, pid.to_string())?;
    std::fs::rename(&tmp, path)
}

pub(super) fn send_console(socket: &Path, fd: std::os::fd::OwnedFd) -> std::io::Result<()> {
    use rustix::net::{sendmsg, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let stream = std::os::unix::net::UnixStream::connect(socket)?;
    let name = b"/dev/ptmx";
    let iov = [std::io::IoSlice::new(name)];
    let fds = [fd.as_fd()];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut cmsg = SendAncillaryBuffer::new(&mut space);
    if !cmsg.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(std::io::Error::other(
            "no room for the terminal's descriptor in the console message",
        ));
    }
    sendmsg(&stream, &iov, &mut cmsg, SendFlags::empty())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The console socket gets the name runc sends and, over SCM_RIGHTS, the very file it was
    /// given (the same inode, not a copy).
    #[test]
    fn the_console_socket_receives_the_descriptor() {
        use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("console.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        let sent = tempfile::tempfile().expect("a file to send");
        let sent_stat = rustix::fs::fstat(&sent).expect("fstat");
        let sender = std::thread::spawn(move || send_console(&path, sent.into()));
        let (conn, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 64];
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut cmsg = RecvAncillaryBuffer::new(&mut space);
        let msg = recvmsg(
            &conn,
            &mut [std::io::IoSliceMut::new(&mut buf)],
            &mut cmsg,
            RecvFlags::empty(),
        )
        .expect("recvmsg");
        sender.join().expect("sender").expect("send_console");
        assert_eq!(&buf[..msg.bytes], b"/dev/ptmx");
        let mut got = Vec::new();
        for m in cmsg.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = m {
                got.extend(fds);
            }
        }
        assert_eq!(got.len(), 1, "one descriptor");
        let got_stat = rustix::fs::fstat(&got[0]).expect("fstat");
        assert_eq!(
            (got_stat.st_dev, got_stat.st_ino),
            (sent_stat.st_dev, sent_stat.st_ino)
        );
    }
}
