//! Numbers formatted for people: thousands separated, sizes in binary units, percentages with
//! a sign and one decimal.

/// `12345.6` -> `"12,346"`.
pub fn count(value: f64) -> String {
    if !value.is_finite() {
        return "n/a".into();
    }
    let rounded = value.round().abs() as u64;
    let digits = rounded.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0.0 && rounded > 0 {
        out.insert(0, '-');
    }
    out
}

/// A size given in kB (as /proc reports it, 1024 bytes) -> `"20.2 MiB"`.
pub fn kib(kb: f64) -> String {
    if !kb.is_finite() {
        return "n/a".into();
    }
    if kb.abs() >= 1024.0 {
        format!("{:.1} MiB", kb / 1024.0)
    } else {
        format!("{kb:.0} KiB")
    }
}

/// `1.7626548696958473` -> `"+1.8%"`.
pub fn percent(value: f64) -> String {
    if !value.is_finite() {
        return "n/a".into();
    }
    format!("{value:+.1}%")
}

/// Milliseconds with precision that fits their size: `"0.163 ms"`, `"33.1 ms"`.
pub fn ms(value: f64) -> String {
    if !value.is_finite() {
        return "n/a".into();
    }
    if value < 10.0 {
        format!("{value:.3} ms")
    } else {
        format!("{value:.1} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_for_people() {
        assert_eq!(count(0.0), "0");
        assert_eq!(count(999.4), "999");
        assert_eq!(count(1949.0), "1,949");
        assert_eq!(count(1_234_567.8), "1,234,568");
        assert_eq!(count(-1200.0), "-1,200");
        assert_eq!(count(f64::NAN), "n/a");
        assert_eq!(kib(20732.0), "20.2 MiB");
        assert_eq!(kib(512.0), "512 KiB");
        assert_eq!(percent(1.7626548696958473), "+1.8%");
        assert_eq!(percent(-0.04), "-0.0%");
        assert_eq!(ms(0.16345), "0.163 ms");
        assert_eq!(ms(33.11), "33.1 ms");
    }
}
