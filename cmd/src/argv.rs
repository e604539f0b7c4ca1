//! argv normalisation. Engines call runtimes with argv shapes that a strict parser rejects:
//! single-dash long flags (`-no-subreaper`, accepted by urfave/cli and sent by containerd),
//! `--flag=value`, and flags given twice (podman sends `--leave-running` twice). Normalisation
//! rewrites the first kind; clap handles the others (`args_override_self`).

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

/// The flags of the command line as normalisation needs them, read from clap's definition of
/// it (every command's, the global ones included), so that they cannot drift apart.
#[derive(Debug, Default)]
pub struct Flags {
    /// Long flags without a value (also those whose value is optional: it must come as
    /// `--flag=value`).
    switches: BTreeSet<String>,
    /// Long flags that take a value as the next word (when not written `--flag=value`).
    values: BTreeSet<String>,
    /// Short flags that take a value as the next word.
    short_values: BTreeSet<char>,
    /// Commands whose words after the container id belong to a program (`exec ID CMD...`,
    /// `ps ID PS-ARGS...`): those words are never rewritten.
    trailing: BTreeSet<String>,
}

impl Flags {
    pub fn of(command: &clap::Command) -> Flags {
        let mut command = command.clone();
        // Built, the definition holds what clap adds: --help, --version, global flags
        // propagated to every command.
        command.build();
        let mut flags = Flags::default();
        flags.add(&command);
        // A name that takes a value anywhere is read as taking one: its next word is kept.
        flags.switches = &flags.switches - &flags.values;
        flags
    }

    fn add(&mut self, command: &clap::Command) {
        for arg in command.get_arguments() {
            let takes_value = arg.get_action().takes_values()
                && arg.get_num_args().is_none_or(|n| n.min_values() > 0);
            for long in arg.get_long_and_visible_aliases().into_iter().flatten() {
                if takes_value {
                    self.values.insert(long.to_string());
                } else {
                    self.switches.insert(long.to_string());
                }
            }
            if let (true, Some(short)) = (takes_value, arg.get_short()) {
                self.short_values.insert(short);
            }
        }
        for sub in command.get_subcommands() {
            if sub.get_arguments().any(|a| a.is_trailing_var_arg_set()) {
                self.trailing.insert(sub.get_name().to_string());
            }
            self.add(sub);
        }
    }
}

/// Rewrite `-long-flag[=v]` to `--long-flag[=v]` for known long flags, up to a `--` and, for
/// `exec` and `ps`, up to the container id. Words are taken as the kernel gave them: a path or
/// a value need not be UTF-8 (clap says so for an argument that must be), and a flag name is
/// matched on its bytes.
pub fn normalise_args(flags: &Flags, args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut it = args.into_iter();
    if let Some(prog) = it.next() {
        out.push(prog);
    }
    let mut done = false;
    let mut expect_value = false;
    let mut command: Option<OsString> = None;
    for a in it {
        if done || expect_value {
            expect_value = false;
            out.push(a);
            continue;
        }
        let bytes = a.as_bytes();
        if bytes == b"--" {
            done = true;
            out.push(a);
            continue;
        }
        if bytes.len() == 2 && bytes[0] == b'-' {
            // Short flags that take a value (`-p FILE`, `-e K=V`, `-f json`, ...).
            expect_value = flags.short_values.contains(&char::from(bytes[1]));
            out.push(a);
            continue;
        }
        let long = bytes
            .strip_prefix(b"--")
            .or_else(|| bytes.strip_prefix(b"-").filter(|r| r.len() > 1));
        match long {
            Some(rest) => {
                let (name, has_value) = match rest.iter().position(|&b| b == b'=') {
                    Some(i) => (&rest[..i], true),
                    None => (rest, false),
                };
                let name = std::str::from_utf8(name).unwrap_or_default();
                let takes_value = flags.values.contains(name);
                if takes_value || flags.switches.contains(name) {
                    expect_value = !has_value && takes_value;
                    if !bytes.starts_with(b"--") {
                        let mut long = OsString::from("-");
                        long.push(&a);
                        out.push(long);
                        continue;
                    }
                }
                out.push(a);
            }
            None => {
                // A positional word: first the command, then its operands.
                match &command {
                    None => command = Some(a.clone()),
                    Some(c) if c.to_str().is_some_and(|c| flags.trailing.contains(c)) => {
                        done = true
                    }
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
    use clap::CommandFactory;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    fn normalise_args(args: Vec<String>) -> Vec<String> {
        super::normalise_args(
            &Flags::of(&crate::cli::Cli::command()),
            args.into_iter().map(OsString::from),
        )
        .into_iter()
        .map(|a| a.into_string().expect("UTF-8 in, UTF-8 out"))
        .collect()
    }

    /// Every long flag of every command, written with one dash, is rewritten; a value
    /// flag's value is left alone even when it looks like a flag. Read from clap's
    /// definition: a flag added to a command is covered without a list to keep up.
    #[test]
    fn every_flag_of_every_command_is_normalised() {
        fn check(command: &clap::Command, path: &[String]) -> usize {
            let mut checked = 0;
            for arg in command.get_arguments() {
                let Some(long) = arg.get_long() else {
                    continue;
                };
                if matches!(long, "help" | "version") {
                    continue;
                }
                let takes_value = arg.get_action().takes_values()
                    && arg.get_num_args().is_none_or(|n| n.min_values() > 0);
                let mut argv = vec!["ferry".to_string()];
                argv.extend(path.iter().cloned());
                let mut want = argv.clone();
                argv.push(format!("-{long}"));
                want.push(format!("--{long}"));
                if takes_value {
                    argv.push("-value".into());
                    want.push("-value".into());
                }
                assert_eq!(normalise_args(argv), want, "--{long} of {path:?}");
                checked += 1;
            }
            for sub in command.get_subcommands() {
                let mut p = path.to_vec();
                p.push(sub.get_name().to_string());
                checked += check(sub, &p);
            }
            checked
        }
        let mut cli = crate::cli::Cli::command();
        cli.build();
        assert!(
            check(&cli, &[]) > 50,
            "too few flags seen: the walk is broken"
        );
    }

    /// Flags the hand-kept lists had missed.
    #[test]
    fn list_quiet_and_mounts_flags_are_normalised() {
        assert_eq!(
            normalise_args(v(&["ferry", "list", "-quiet"])),
            v(&["ferry", "list", "--quiet"])
        );
        assert_eq!(
            normalise_args(v(&[
                "ferry",
                "mounts",
                "dump",
                "-exclude",
                "/x",
                "-fd-budget",
                "64"
            ])),
            v(&[
                "ferry",
                "mounts",
                "dump",
                "--exclude",
                "/x",
                "--fd-budget",
                "64"
            ])
        );
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

    /// A word that is not UTF-8 (a path, a value) is passed on byte for byte, and a known
    /// flag whose value is not UTF-8 is still rewritten; before, such a word panicked ferry.
    #[test]
    fn words_that_are_not_utf8_are_kept_byte_for_byte() {
        use std::os::unix::ffi::OsStringExt;
        let raw = |b: &[u8]| OsString::from_vec(b.to_vec());
        let argv = vec![
            raw(b"ferry"),
            raw(b"-root=/r\xff"),
            raw(b"mounts"),
            raw(b"diff"),
            raw(b"pid:1:/tmp/x-\xff"),
        ];
        let out = super::normalise_args(&Flags::of(&crate::cli::Cli::command()), argv);
        assert_eq!(
            out,
            vec![
                raw(b"ferry"),
                raw(b"--root=/r\xff"),
                raw(b"mounts"),
                raw(b"diff"),
                raw(b"pid:1:/tmp/x-\xff"),
            ]
        );
    }
}
