//! Results: medians, the table and the JSON the binary prints.

use std::fmt::Write as _;

/// The unit of a row's two figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Nanoseconds per operation.
    Nanos,
    /// Resident bytes per live thread.
    Bytes,
}

/// One line of the table: a pair's two medians and its verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Row name (a pair's name, `_samecpu` appended for the same-CPU variant).
    pub name: String,
    /// The kthread side's median (ns, or bytes for [`Unit::Bytes`]).
    pub kthread: f64,
    /// The peer's median, same unit.
    pub peer: f64,
    /// What the peer does.
    pub peer_name: String,
    /// The ratio to stay at or under.
    pub target: f64,
    /// The unit of `kthread` and `peer`.
    pub unit: Unit,
}

impl Row {
    /// kthread / peer: lower is better.
    ///
    /// ```
    /// use kthread_bench::report::{Row, Unit};
    /// let r = Row { name: "x".into(), kthread: 3.0, peer: 2.0, peer_name: "p".into(), target: 1.5, unit: Unit::Nanos };
    /// assert_eq!(r.ratio(), 1.5);
    /// assert!(r.ok());
    /// ```
    pub fn ratio(&self) -> f64 {
        self.kthread / self.peer
    }

    /// Whether the ratio meets the target.
    pub fn ok(&self) -> bool {
        self.ratio() <= self.target
    }
}

/// The median of `xs` (the mean of the middle two for an even count).
///
/// # Panics
/// If `xs` is empty or holds a NaN.
///
/// ```
/// assert_eq!(kthread_bench::report::median(&mut [3.0, 1.0, 2.0]), 2.0);
/// assert_eq!(kthread_bench::report::median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
/// ```
pub fn median(xs: &mut [f64]) -> f64 {
    assert!(!xs.is_empty(), "median of nothing");
    xs.sort_by(|a, b| a.partial_cmp(b).expect("no NaN samples"));
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// A figure with a readable unit: `0.41 ns`, `43.2 µs`, `10.1 KiB`.
///
/// ```
/// use kthread_bench::report::{human, Unit};
/// assert_eq!(human(43_210.0, Unit::Nanos), "43.2 µs");
/// assert_eq!(human(10_342.0, Unit::Bytes), "10.1 KiB");
/// ```
pub fn human(x: f64, unit: Unit) -> String {
    let sig = |v: f64| {
        if v.abs() >= 100.0 {
            format!("{v:.0}")
        } else if v.abs() >= 10.0 {
            format!("{v:.1}")
        } else {
            format!("{v:.2}")
        }
    };
    match unit {
        Unit::Nanos if x.abs() >= 1e9 => format!("{} s", sig(x / 1e9)),
        Unit::Nanos if x.abs() >= 1e6 => format!("{} ms", sig(x / 1e6)),
        Unit::Nanos if x.abs() >= 1e3 => format!("{} µs", sig(x / 1e3)),
        Unit::Nanos => format!("{} ns", sig(x)),
        Unit::Bytes if x.abs() >= 1024.0 * 1024.0 => format!("{} MiB", sig(x / 1048576.0)),
        Unit::Bytes if x.abs() >= 1024.0 => format!("{} KiB", sig(x / 1024.0)),
        Unit::Bytes => format!("{} B", sig(x)),
    }
}

/// A target ratio as the table shows it: `1.5`, `1.0`, `0.75`.
///
/// ```
/// assert_eq!(kthread_bench::report::target(1.0), "1.0");
/// assert_eq!(kthread_bench::report::target(0.75), "0.75");
/// ```
pub fn target(t: f64) -> String {
    if (t * 10.0).fract() == 0.0 {
        format!("{t:.1}")
    } else {
        format!("{t:.2}")
    }
}

/// The rows as a Markdown table (`name | kthread | peer | peer name | ratio | target | verdict`).
///
/// ```
/// use kthread_bench::report::{table, Row, Unit};
/// let r = Row { name: "x".into(), kthread: 3.0, peer: 2.0, peer_name: "p".into(), target: 1.0, unit: Unit::Nanos };
/// assert!(table(&[r]).contains("| x | 3.00 ns | 2.00 ns | p | 1.50 | ≤ 1.0 | MISS |"));
/// ```
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(
        "| name | kthread | peer | peer name | ratio (kthread/peer) | target | verdict |\n",
    );
    out.push_str("|---|---:|---:|---|---:|---:|---|\n");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.2} | ≤ {} | {} |",
            r.name,
            human(r.kthread, r.unit),
            human(r.peer, r.unit),
            r.peer_name,
            r.ratio(),
            target(r.target),
            if r.ok() { "ok" } else { "MISS" }
        );
    }
    out
}

/// A JSON string literal for `s` (quotes, backslashes and control characters escaped).
///
/// ```
/// assert_eq!(kthread_bench::report::json_string("a\"b\\c\n"), r#""a\"b\\c\n""#);
/// ```
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON number; JSON has no NaN or infinity, so those become `null`.
fn json_number(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "null".to_owned()
    }
}

/// The rows as a JSON array of objects with keys `name`, `kthread_ns`,
/// `peer_ns`, `peer`, `ratio`, `target`, `ok` (for `rss_per_thread` the two
/// `_ns` fields hold bytes).
///
/// ```
/// use kthread_bench::report::{json, Row, Unit};
/// let r = Row { name: "x".into(), kthread: 3.0, peer: 2.0, peer_name: "p".into(), target: 1.5, unit: Unit::Nanos };
/// assert_eq!(
///     json(&[r]),
///     r#"[{"name":"x","kthread_ns":3.000,"peer_ns":2.000,"peer":"p","ratio":1.500,"target":1.500,"ok":true}]"#
/// );
/// ```
pub fn json(rows: &[Row]) -> String {
    let objects: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                r#"{{"name":{},"kthread_ns":{},"peer_ns":{},"peer":{},"ratio":{},"target":{},"ok":{}}}"#,
                json_string(&r.name),
                json_number(r.kthread),
                json_number(r.peer),
                json_string(&r.peer_name),
                json_number(r.ratio()),
                json_number(r.target),
                r.ok()
            )
        })
        .collect();
    format!("[{}]", objects.join(","))
}
