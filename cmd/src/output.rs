//! ferry's standard output. SIGPIPE is caught (see `main`), so writing to a pipe nobody reads
//! returns EPIPE instead of killing ferry; that keeps a hook that ignores the state on its
//! stdin from killing `ferry create` half-way. Only ferry's own output may still end it
//! quietly, as SIGPIPE ends runc when the reader of `runc list | head` goes away.

use std::io::Write;

/// Standard output that ends ferry as SIGPIPE would once its reader has gone.
pub struct Stdout(std::io::StdoutLock<'static>);

pub fn stdout() -> Stdout {
    Stdout(std::io::stdout().lock())
}

fn check<T>(r: std::io::Result<T>) -> std::io::Result<T> {
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => die_of_sigpipe(),
        r => r,
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        check(self.0.write(buf))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        check(self.0.flush())
    }
}

/// End ferry with SIGPIPE's default action, so that the shell sees what it sees of any
/// program whose reader went away (status 141, no message).
#[allow(unsafe_code)]
pub fn die_of_sigpipe() -> ! {
    // SAFETY: restoring a default disposition and raising a signal have no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    std::process::exit(128 + libc::SIGPIPE)
}

/// A handler that does nothing: unlike SIG_IGN, which a container's process would inherit
/// across exec, a handler is reset to the default by exec, so the container's processes
/// start with SIGPIPE at its default as under runc.
extern "C" fn sigpipe_noop(_: libc::c_int) {}

/// Catch SIGPIPE with a handler that does nothing, so that writes to a closed pipe fail with
/// EPIPE. Called first thing in `main`.
#[allow(unsafe_code)]
pub fn catch_sigpipe() {
    // SAFETY: the handler is async-signal-safe (it does nothing); sigaction is given a
    // zeroed, fully initialised struct.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = sigpipe_noop as *const () as libc::sighandler_t;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGPIPE, &sa, std::ptr::null_mut());
    }
}

/// `println!` to [`stdout`], returning the write's result.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!($crate::output::stdout(), $($arg)*)
    }};
}
