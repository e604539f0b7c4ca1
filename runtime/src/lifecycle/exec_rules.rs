//! How `exec`'s options change the process, as runc 1.1 changes it: `--user UID` keeps the
//! spec's group, supplementary groups and umask; `--additional-gids` adds to the spec's;
//! `--cap` adds to the bounding, effective and permitted sets, never to the inheritable set,
//! and to the ambient set only where the inheritable set already holds the capability (an
//! ambient capability needs it there); `--apparmor` and `--process-label` are applied, and
//! refused when the host has no AppArmor or SELinux; `--ignore-paused` lets a process into a
//! paused container, to start when it is resumed.

use super::ExecOptions;
use crate::error::{Result, RuntimeError};
use libcontainer::container::ContainerStatus;
use serde_json::{Map, Value};

/// runc refuses to exec in a paused container unless told to ignore it (`--ignore-paused`);
/// told so, the new process joins the frozen cgroup and starts once the container is
/// resumed, and exec waits for it meanwhile.
pub(super) fn check_paused(id: &str, status: ContainerStatus, ignore_paused: bool) -> Result<()> {
    if status != ContainerStatus::Paused || ignore_paused {
        return Ok(());
    }
    Err(RuntimeError::WrongState {
        op: "exec in",
        id: id.into(),
        status: "paused".into(),
        hint: "run `ferry resume` first, or pass --ignore-paused to start the process when it is resumed",
    })
}

fn numeric(user: &str, v: &str) -> Result<u32> {
    v.parse().map_err(|_| {
        RuntimeError::Invalid(format!(
            "--user {user:?}: give a numeric UID[:GID] (names are not looked up)"
        ))
    })
}

fn cap_name(cap: &str) -> String {
    let cap = cap.to_ascii_uppercase();
    if cap.starts_with("CAP_") {
        cap
    } else {
        format!("CAP_{cap}")
    }
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(|l| serde_json::from_value(l.clone()).ok())
        .unwrap_or_default()
}

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|v| v.trim() == "Y")
}

fn selinux_enabled() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

/// Apply the command-line options of `exec` to the process object `obj`.
pub(super) fn apply(obj: &mut Map<String, Value>, opts: &ExecOptions) -> Result<()> {
    if let Some(user) = &opts.user {
        let (u, g) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user.as_str(), None),
        };
        let uid = numeric(user, u)?;
        let gid = g.map(|g| numeric(user, g)).transpose()?;
        let entry = obj
            .entry("user")
            .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
        if !entry.is_object() {
            *entry = serde_json::json!({"uid": 0, "gid": 0});
        }
        if let Some(u) = entry.as_object_mut() {
            u.insert("uid".into(), uid.into());
            if let Some(gid) = gid {
                u.insert("gid".into(), gid.into());
            }
        }
    }
    if !opts.additional_gids.is_empty() {
        let entry = obj
            .entry("user")
            .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
        if let Some(u) = entry.as_object_mut() {
            let mut gids: Vec<u32> = u
                .get("additionalGids")
                .and_then(|l| serde_json::from_value(l.clone()).ok())
                .unwrap_or_default();
            gids.extend(&opts.additional_gids);
            u.insert("additionalGids".into(), serde_json::json!(gids));
        }
    }
    if !opts.caps.is_empty() {
        let caps = obj
            .entry("capabilities")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(caps) = caps.as_object_mut() {
            let inheritable = caps
                .get("inheritable")
                .filter(|v| !v.is_null())
                .map(|v| string_list(Some(v)));
            for set in ["bounding", "effective", "permitted", "ambient"] {
                let mut list = string_list(caps.get(set));
                for cap in opts.caps.iter().map(|c| cap_name(c)) {
                    let wanted =
                        set != "ambient" || inheritable.as_ref().is_some_and(|i| i.contains(&cap));
                    if wanted && !list.contains(&cap) {
                        list.push(cap);
                    }
                }
                if set != "ambient" || caps.contains_key(set) || !list.is_empty() {
                    caps.insert(set.into(), serde_json::json!(list));
                }
            }
        }
    }
    if let Some(profile) = &opts.apparmor {
        if !apparmor_enabled() {
            return Err(RuntimeError::Invalid(format!(
                "--apparmor {profile:?}: AppArmor is not enabled on this host; run without --apparmor"
            )));
        }
        obj.insert("apparmorProfile".into(), profile.clone().into());
    }
    if let Some(label) = &opts.process_label {
        if !selinux_enabled() {
            return Err(RuntimeError::Invalid(format!(
                "--process-label {label:?}: SELinux is not enabled on this host; run without --process-label"
            )));
        }
        obj.insert("selinuxLabel".into(), label.clone().into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::SpawnOptions;

    fn opts() -> ExecOptions {
        ExecOptions {
            process: None,
            args: vec!["true".into()],
            tty: false,
            spawn: SpawnOptions::default(),
            detach: false,
            cwd: None,
            env: vec![],
            user: None,
            additional_gids: vec![],
            caps: vec![],
            no_new_privs: false,
            apparmor: None,
            process_label: None,
            ignore_paused: false,
        }
    }

    fn process() -> Map<String, Value> {
        match serde_json::json!({
            "user": {"uid": 0, "gid": 7, "umask": 63, "additionalGids": [11, 12]},
            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
                             "permitted": ["CAP_KILL"], "inheritable": ["CAP_KILL"]}
        }) {
            Value::Object(m) => m,
            _ => unreachable!("a JSON object literal"),
        }
    }

    #[test]
    fn user_keeps_group_groups_and_umask() {
        let mut p = process();
        let o = ExecOptions {
            user: Some("1000".into()),
            additional_gids: vec![30],
            ..opts()
        };
        assert!(apply(&mut p, &o).is_ok());
        assert_eq!(
            p["user"],
            serde_json::json!({"uid": 1000, "gid": 7, "umask": 63, "additionalGids": [11, 12, 30]})
        );
        let o = ExecOptions {
            user: Some("1000:5".into()),
            ..opts()
        };
        assert!(apply(&mut p, &o).is_ok());
        assert_eq!(p["user"]["gid"], 5);
        let o = ExecOptions {
            user: Some("bob".into()),
            ..opts()
        };
        assert!(apply(&mut p, &o).is_err());
    }

    #[test]
    fn caps_never_inheritable_and_ambient_only_when_inheritable() {
        let mut p = process();
        let o = ExecOptions {
            caps: vec!["sys_admin".into(), "CAP_KILL".into()],
            ..opts()
        };
        assert!(apply(&mut p, &o).is_ok());
        let caps = &p["capabilities"];
        assert_eq!(
            caps["bounding"],
            serde_json::json!(["CAP_KILL", "CAP_SYS_ADMIN"])
        );
        assert_eq!(caps["inheritable"], serde_json::json!(["CAP_KILL"]));
        assert_eq!(caps["ambient"], serde_json::json!(["CAP_KILL"]));
    }

    #[test]
    fn paused_is_refused_unless_ignored() {
        assert!(check_paused("c", ContainerStatus::Running, false).is_ok());
        match check_paused("c", ContainerStatus::Paused, false) {
            Err(e) => assert!(e.to_string().contains("--ignore-paused"), "{e}"),
            Ok(()) => panic!("exec in a paused container must be refused without --ignore-paused"),
        }
        assert!(check_paused("c", ContainerStatus::Paused, true).is_ok());
    }
}
