//! argv normalisation. Engines call runtimes with argv shapes that a strict parser rejects:
//! single-dash long flags (`-no-subreaper`, accepted by urfave/cli and sent by containerd),
//! `--flag=value`, and flags given twice (podman sends `--leave-running` twice). Normalisation
//! rewrites the first kind; clap handles the others (`args_override_self`).

/// Long flags without a value. With [`VALUE_FLAGS`], the long flags that may arrive with a
/// single dash.
const SWITCH_FLAGS: &[&str] = &[
    "debug",
    "systemd-cgroup",
    "rootless",
    "no-pivot",
    "no-new-keyring",
    "detach",
    "keep",
    "all",
    "force",
    "tty",
    "no-new-privs",
    "stats",
    "leave-running",
    "tcp-established",
    "ext-unix-sk",
    "shell-job",
    "file-locks",
    "pre-dump",
    "auto-dedup",
    "lazy-pages",
    "no-subreaper",
    "no-content",
    "ignore-paused",
    "help",
    "version",
];

/// Long flags that take a value as the next word (when not written `--flag=value`).
const VALUE_FLAGS: &[&str] = &[
    "root",
    "log",
    "log-format",
    "criu",
    "bundle",
    "console-socket",
    "pid-file",
    "preserve-fds",
    "format",
    "process",
    "cwd",
    "env",
    "user",
    "cap",
    "interval",
    "image-path",
    "work-path",
    "parent-path",
    "manage-cgroups-mode",
    "status-fd",
    "page-server",
    "lsm-profile",
    "lsm-mount-context",
    "resources",
    "mount-mismatch",
    "output",
    "pid",
    "target",
    "external",
    "source",
    "additional-gids",
    "process-label",
    "apparmor",
    "pidfd-socket",
    "blkio-weight",
    "cpu-period",
    "cpu-quota",
    "cpu-share",
    "cpu-rt-period",
    "cpu-rt-runtime",
    "cpuset-cpus",
    "cpuset-mems",
    "memory",
    "memory-reservation",
    "memory-swap",
    "pids-limit",
    "l3-cache-schema",
    "mem-bw-schema",
    "kernel-memory",
    "kernel-memory-tcp",
    "empty-ns",
];

/// Short flags that take a value as the next word.
const SHORT_VALUE_FLAGS: &[&str] = &["b", "p", "e", "u", "c", "g", "f", "r", "o"];

/// Commands whose words after the container id belong to a program (`exec ID CMD...`,
/// `ps ID PS-ARGS...`): those words are never rewritten.
const TRAILING_COMMANDS: &[&str] = &["exec", "ps"];

/// Rewrite `-long-flag[=v]` to `--long-flag[=v]` for known long flags, up to a `--` and, for
/// `exec` and `ps`, up to the container id.
pub fn normalise_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = args.into_iter();
    if let Some(prog) = it.next() {
        out.push(prog);
    }
    let mut done = false;
    let mut expect_value = false;
    let mut command: Option<String> = None;
    for a in it {
        if done {
            out.push(a);
            continue;
        }
        if expect_value {
            expect_value = false;
            out.push(a);
            continue;
        }
        if a == "--" {
            done = true;
            out.push(a);
            continue;
        }
        if a.len() == 2 && a.starts_with('-') {
            // Short flags that take a value (`-p FILE`, `-e K=V`, `-f json`, ...).
            expect_value = SHORT_VALUE_FLAGS.contains(&&a[1..]);
            out.push(a);
            continue;
        }
        let long = a
            .strip_prefix("--")
            .or_else(|| a.strip_prefix('-').filter(|r| r.len() > 1));
        match long {
            Some(rest) => {
                let (name, has_value) = match rest.split_once('=') {
                    Some((n, _)) => (n, true),
                    None => (rest, false),
                };
                let takes_value = VALUE_FLAGS.contains(&name);
                if takes_value || SWITCH_FLAGS.contains(&name) {
                    expect_value = !has_value && takes_value;
                    out.push(if a.starts_with("--") {
                        a.clone()
                    } else {
                        format!("-{a}")
                    });
                    continue;
                }
                out.push(a);
            }
            None => {
                // A positional word: first the command, then its operands.
                match &command {
                    None => command = Some(a.clone()),
                    Some(c) if TRAILING_COMMANDS.contains(&c.as_str()) => done = true,
                    Some(_) => {}
                }
                out.push(a);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn single_dash_long_flags_become_double() {
        assert_eq!(
            normalise_args(v(&[
                "ferry",
                "restore",
                "-no-subreaper",
                "-image-path=/x",
                "-d",
                "id"
            ])),
            v(&[
                "ferry",
                "restore",
                "--no-subreaper",
                "--image-path=/x",
                "-d",
                "id"
            ])
        );
    }

    #[test]
    fn program_arguments_after_the_container_id_are_kept() {
        assert_eq!(
            normalise_args(v(&[
                "ferry", "-root", "/r", "exec", "-tty", "id", "ls", "-all"
            ])),
            v(&["ferry", "--root", "/r", "exec", "--tty", "id", "ls", "-all"])
        );
        assert_eq!(
            normalise_args(v(&["ferry", "exec", "-p", "/p.json", "-detach", "id"])),
            v(&["ferry", "exec", "-p", "/p.json", "--detach", "id"])
        );
        assert_eq!(
            normalise_args(v(&["ferry", "exec", "-cwd", "/root", "id", "sh", "-root"])),
            v(&["ferry", "exec", "--cwd", "/root", "id", "sh", "-root"])
        );
    }

    #[test]
    fn unknown_words_and_after_double_dash_are_kept() {
        assert_eq!(
            normalise_args(v(&["ferry", "exec", "id", "ls", "-la", "--", "-root"])),
            v(&["ferry", "exec", "id", "ls", "-la", "--", "-root"])
        );
    }
}
