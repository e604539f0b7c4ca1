//! `features`: what this runtime supports (OCI features JSON).

use super::print_json;
use anyhow::{Context, Result};
use serde_json::Value;

pub fn features() -> Result<i32> {
    let features =
        ferry_runtime::features::features().context("describing this runtime's features")?;
    let value = serde_json::to_value(features).context("encoding the features")?;
    print_json(&without_nulls(value))
}

/// oci-spec writes a field it does not know as `null`; the format reads an absent field the
/// same way ("unknown"), and runc leaves such fields out, so ferry does too.
fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unknown fields are left out, at every depth, and what is known is kept.
    #[test]
    fn features_leave_unknown_fields_out() {
        let features = ferry_runtime::features::features().expect("features build");
        let value = without_nulls(serde_json::to_value(features).expect("features encode"));
        let text = value.to_string();
        assert!(!text.contains("null"), "{text}");
        assert_eq!(value["linux"]["cgroup"]["v2"], Value::Bool(true));
        assert_eq!(value["linux"]["mountExtensions"]["idmap"]["enabled"], true);
        assert!(value["linux"]["namespaces"]
            .as_array()
            .is_some_and(|ns| ns.contains(&Value::from("network"))));
        assert!(value["linux"]["seccomp"]["archs"]
            .as_array()
            .is_some_and(|a| a.contains(&Value::from("SCMP_ARCH_X86_64"))));
    }
}
