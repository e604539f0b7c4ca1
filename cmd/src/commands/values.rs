//! Values of flags as runc reads them: sizes and intervals.

use anyhow::Result;

/// A size as runc reads it: a number (decimals allowed) with an optional binary suffix k, m,
/// g, t or p, then optionally `i` and `b`, any case (`512k`, `1.5g`, `64MiB`); `-1` means
/// unlimited. A size beyond what the kernel can take (2^63 - 1 bytes) is refused, not wrapped.
pub(super) fn parse_bytes(s: &str) -> Result<i64> {
    let invalid = |why: &str| {
        anyhow::anyhow!(
            "invalid size {s:?}: {why}; use bytes or a number with k, m, g, t or p (e.g. 512m), or -1 for unlimited"
        )
    };
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let t = t.strip_suffix('i').unwrap_or(t);
    let (num, shift) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 10),
        Some('m') => (&t[..t.len() - 1], 20),
        Some('g') => (&t[..t.len() - 1], 30),
        Some('t') => (&t[..t.len() - 1], 40),
        Some('p') => (&t[..t.len() - 1], 50),
        _ => (t, 0),
    };
    let num = num.trim_end();
    let digits_ok = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    let too_large = || invalid("it is larger than 2^63 - 1 bytes");
    match num.split_once('.') {
        None if digits_ok(num) => {
            let n: i64 = num.parse().map_err(|_| too_large())?;
            n.checked_mul(1i64 << shift).ok_or_else(too_large)
        }
        Some((whole, frac)) if digits_ok(whole) && digits_ok(frac) => {
            let n: f64 = num.parse().map_err(|_| invalid("not a number"))?;
            let bytes = n * (1u64 << shift) as f64;
            // i64::MAX as f64 rounds up to 2^63, which does not fit.
            if !(bytes.is_finite() && bytes < i64::MAX as f64) {
                return Err(too_large());
            }
            Ok(bytes as i64)
        }
        _ => Err(invalid("not a number")),
    }
}

/// An interval as Go's durations (which runc takes) spell it: numbers with units ns, us, µs,
/// ms, s, m or h, one after the other (`5s`, `1.5s`, `1m30s`); a bare number means seconds.
/// It must be positive and at most `u64::MAX` nanoseconds; beyond that it is refused, not
/// wrapped.
pub(super) fn parse_interval(s: &str) -> Result<std::time::Duration> {
    let invalid =
        |why: &str| anyhow::anyhow!("invalid interval {s:?}: {why}; use e.g. 5s, 500ms or 1m30s");
    let t = s.trim();
    if t.is_empty() {
        return Err(invalid("it is empty"));
    }
    let too_long = || invalid("it is longer than about 584 years");
    let mut rest = t;
    let mut total_ns: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let unit_ns: u128 = match unit {
            "" if num_len == t.len() => 1_000_000_000,
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(invalid("a number has no unit")),
            _ => return Err(invalid(&format!("unknown unit {unit:?}"))),
        };
        let (whole, frac) = num.split_once('.').unwrap_or((num, ""));
        if whole.is_empty() && frac.is_empty() || frac.contains('.') {
            return Err(invalid("not a number"));
        }
        // Whole part exactly in integers; the fraction to nanosecond precision.
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| too_long())?
        };
        let mut frac_ns: u128 = 0;
        let mut scale = unit_ns;
        for d in frac.bytes() {
            scale /= 10;
            frac_ns += u128::from(d - b'0') * scale;
        }
        total_ns = whole
            .checked_mul(unit_ns)
            .and_then(|w| w.checked_add(frac_ns))
            .and_then(|v| v.checked_add(total_ns))
            .ok_or_else(too_long)?;
        rest = next;
    }
    if total_ns == 0 {
        return Err(invalid("it must be greater than 0"));
    }
    let ns = u64::try_from(total_ns).map_err(|_| too_long())?;
    Ok(std::time::Duration::from_nanos(ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_intervals() {
        assert_eq!(parse_bytes("512k").ok(), Some(512 * 1024));
        assert_eq!(parse_bytes("64M").ok(), Some(64 << 20));
        assert_eq!(parse_bytes("64MiB").ok(), Some(64 << 20));
        assert_eq!(parse_bytes("1.5g").ok(), Some(3 << 29));
        assert_eq!(parse_bytes("8589934591g").ok(), Some(8589934591 << 30));
        assert_eq!(parse_bytes("-1").ok(), Some(-1));
        for bad in [
            "lots",
            "99999999999g",
            "8589934592g",
            "9999999999999999999",
            "-2",
            "1.g",
            ".5g",
            "1..5g",
            "",
            "k",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad:?} must be refused");
        }
        let d = std::time::Duration::from_millis;
        assert_eq!(parse_interval("500ms").ok(), Some(d(500)));
        assert_eq!(parse_interval("5").ok(), Some(d(5000)));
        assert_eq!(parse_interval("1.5s").ok(), Some(d(1500)));
        assert_eq!(parse_interval("1m30s").ok(), Some(d(90_000)));
        assert_eq!(parse_interval("1h").ok(), Some(d(3_600_000)));
        assert_eq!(
            parse_interval("250us").ok(),
            Some(std::time::Duration::from_micros(250))
        );
        for bad in [
            "0s",
            "5 parsecs",
            "99999999999999999999999s",
            "6000000h",
            "1.2.3s",
            ".s",
            "1m30",
            "",
            "-5s",
        ] {
            assert!(parse_interval(bad).is_err(), "{bad:?} must be refused");
        }
    }

    /// Random strings of digits, dots, units, signs and spaces, long and short: the parsers
    /// answer every one without panicking, and what they accept is in range.
    #[test]
    fn parsers_never_panic() {
        const PIECES: &[&str] = &[
            "0",
            "1",
            "5",
            "9",
            "99999999999",
            ".",
            "k",
            "m",
            "g",
            "t",
            "p",
            "i",
            "b",
            "K",
            "G",
            "ns",
            "us",
            "µs",
            "ms",
            "s",
            "h",
            "-",
            "+",
            " ",
            "e",
            "x",
            "\u{0}",
            "é",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 12) as usize;
            let input: String = (0..len)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            let bytes = std::panic::catch_unwind(|| parse_bytes(&input));
            match bytes {
                Ok(Ok(n)) => assert!(n >= -1, "{input:?} gave {n}"),
                Ok(Err(_)) => {}
                Err(_) => panic!("parse_bytes panicked on {input:?}"),
            }
            let interval = std::panic::catch_unwind(|| parse_interval(&input));
            match interval {
                Ok(Ok(d)) => assert!(!d.is_zero(), "{input:?} gave zero"),
                Ok(Err(_)) => {}
                Err(_) => panic!("parse_interval panicked on {input:?}"),
            }
        }
    }
}
