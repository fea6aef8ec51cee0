//! Results: medians and spreads, the table, the JSON and the SVG chart the
//! binary prints.

use std::fmt::Write as _;

/// The unit of a row's two figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Nanoseconds per operation.
    Nanos,
    /// Resident bytes per live thread.
    Bytes,
}

/// A median with its interquartile range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// The median.
    pub mid: f64,
    /// The first quartile.
    pub lo: f64,
    /// The third quartile.
    pub hi: f64,
}

impl Spread {
    /// The median and quartiles of `xs` (linear interpolation between
    /// order statistics, so one sample gives `lo == mid == hi` and two give
    /// the points a quarter of the way in from each end).
    ///
    /// # Panics
    /// If `xs` is empty or holds a NaN.
    ///
    /// ```
    /// use kthread_bench::report::Spread;
    /// let s = Spread::of(&[5.0, 1.0, 3.0, 2.0, 4.0]);
    /// assert_eq!((s.lo, s.mid, s.hi), (2.0, 3.0, 4.0));
    /// assert_eq!(Spread::of(&[7.0]), Spread { lo: 7.0, mid: 7.0, hi: 7.0 });
    /// ```
    pub fn of(xs: &[f64]) -> Spread {
        assert!(!xs.is_empty(), "spread of nothing");
        let mut v = xs.to_vec();
        v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN samples"));
        let at = |q: f64| {
            let pos = q * (v.len() - 1) as f64;
            let (i, frac) = (pos.floor() as usize, pos.fract());
            match v.get(i + 1) {
                Some(next) => v[i] + (next - v[i]) * frac,
                None => v[i],
            }
        };
        Spread {
            mid: at(0.5),
            lo: at(0.25),
            hi: at(0.75),
        }
    }

    /// The spread of the per-round ratios `kthread[i] / peer[i]`: rounds are
    /// interleaved, so each ratio compares two samples taken side by side,
    /// and a drift of the whole machine between rounds cancels out.
    ///
    /// ```
    /// use kthread_bench::report::Spread;
    /// let s = Spread::of_ratios(&[2.0, 4.0, 9.0], &[2.0, 2.0, 3.0]);
    /// assert_eq!((s.lo, s.mid, s.hi), (1.5, 2.0, 2.5));
    /// ```
    ///
    /// # Panics
    /// If the two sides have different or zero lengths.
    pub fn of_ratios(kthread: &[f64], peer: &[f64]) -> Spread {
        assert_eq!(
            kthread.len(),
            peer.len(),
            "one peer sample per kthread sample"
        );
        let ratios: Vec<f64> = kthread.iter().zip(peer).map(|(k, p)| k / p).collect();
        Spread::of(&ratios)
    }
}

/// One line of the table: a pair's two medians, its ratio and its verdict.
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
    /// The per-round ratios kthread / peer: their median and quartiles.
    pub ratios: Spread,
}

impl Row {
    /// A row from the interleaved samples of both sides (one peer sample
    /// per kthread sample, taken right after it).
    ///
    /// ```
    /// use kthread_bench::report::{Row, Unit};
    /// let r = Row::from_samples("x", &[3.0, 3.0, 6.0], &[2.0, 3.0, 2.0], "p", 1.5, Unit::Nanos);
    /// assert_eq!((r.kthread, r.peer), (3.0, 2.0));
    /// assert_eq!(r.ratio(), 1.5);
    /// assert_eq!((r.ratios.lo, r.ratios.hi), (1.25, 2.25));
    /// assert!(r.ok());
    /// ```
    pub fn from_samples(
        name: &str,
        kthread: &[f64],
        peer: &[f64],
        peer_name: &str,
        target: f64,
        unit: Unit,
    ) -> Row {
        Row {
            name: name.to_owned(),
            kthread: Spread::of(kthread).mid,
            peer: Spread::of(peer).mid,
            peer_name: peer_name.to_owned(),
            target,
            unit,
            ratios: Spread::of_ratios(kthread, peer),
        }
    }

    /// The median of the per-round ratios kthread / peer: lower is better.
    pub fn ratio(&self) -> f64 {
        self.ratios.mid
    }

    /// Whether the ratio meets the target.
    pub fn ok(&self) -> bool {
        self.ratio() <= self.target
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

/// The rows as a Markdown table (`name | kthread | peer | peer name | ratio |
/// IQR | target | verdict`).
///
/// ```
/// use kthread_bench::report::{table, Row, Unit};
/// let r = Row::from_samples("x", &[3.0, 3.0], &[2.0, 2.0], "p", 1.0, Unit::Nanos);
/// assert!(table(&[r]).contains("| x | 3.00 ns | 2.00 ns | p | 1.50 | 1.50–1.50 | ≤ 1.0 | MISS |"));
/// ```
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(
        "| name | kthread | peer | peer name | ratio (kthread/peer) | IQR | target | verdict |\n",
    );
    out.push_str("|---|---:|---:|---|---:|---:|---:|---|\n");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.2} | {:.2}–{:.2} | ≤ {} | {} |",
            r.name,
            human(r.kthread, r.unit),
            human(r.peer, r.unit),
            r.peer_name,
            r.ratio(),
            r.ratios.lo,
            r.ratios.hi,
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
/// `peer_ns`, `peer`, `ratio`, `ratio_lo`, `ratio_hi` (the quartiles of the
/// per-round ratios), `target`, `ok` (for `rss_per_thread` the two `_ns`
/// fields hold bytes).
///
/// ```
/// use kthread_bench::report::{json, Row, Unit};
/// let r = Row::from_samples("x", &[3.0], &[2.0], "p", 1.5, Unit::Nanos);
/// assert_eq!(
///     json(&[r]),
///     r#"[{"name":"x","kthread_ns":3.000,"peer_ns":2.000,"peer":"p","ratio":1.500,"ratio_lo":1.500,"ratio_hi":1.500,"target":1.500,"ok":true}]"#
/// );
/// ```
pub fn json(rows: &[Row]) -> String {
    let objects: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                r#"{{"name":{},"kthread_ns":{},"peer_ns":{},"peer":{},"ratio":{},"ratio_lo":{},"ratio_hi":{},"target":{},"ok":{}}}"#,
                json_string(&r.name),
                json_number(r.kthread),
                json_number(r.peer),
                json_string(&r.peer_name),
                json_number(r.ratio()),
                json_number(r.ratios.lo),
                json_number(r.ratios.hi),
                json_number(r.target),
                r.ok()
            )
        })
        .collect();
    format!("[{}]", objects.join(","))
}

/// Text for an SVG or XML document: `&`, `<`, `>` and `"` escaped.
///
/// ```
/// assert_eq!(kthread_bench::report::xml_text("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
/// ```
pub fn xml_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// The rows as an SVG bar chart, one horizontal bar per row: the bar is the
/// median ratio, the whisker its interquartile range, the tick the row's
/// target, and the dashed line 1.0 (as fast as the peer). Bars that meet
/// their target are green, the others orange. `caption` goes under the
/// title (the machine and the command, say).
///
/// Self-contained SVG 1.1 (no script, no external font or style sheet), so
/// it renders the same in a browser, on GitHub and in `rsvg-convert`.
///
/// ```
/// use kthread_bench::report::{svg, Row, Unit};
/// let rows = [
///     Row::from_samples("fast", &[1.0, 1.0], &[2.0, 2.0], "p", 1.0, Unit::Nanos),
///     Row::from_samples("slow", &[3.0, 5.0], &[2.0, 2.0], "p", 1.5, Unit::Nanos),
/// ];
/// let chart = svg(&rows, "run of <today>");
/// assert!(chart.starts_with("<svg "));
/// assert_eq!(chart.matches("class=\"bar ok\"").count(), 1);
/// assert_eq!(chart.matches("class=\"bar miss\"").count(), 1);
/// assert!(chart.contains(">slow</text>") && chart.contains("run of &lt;today&gt;"));
/// ```
pub fn svg(rows: &[Row], caption: &str) -> String {
    const LABEL_W: f64 = 210.0;
    const PLOT_W: f64 = 480.0;
    const VALUE_W: f64 = 120.0;
    const TOP: f64 = 64.0;
    const ROW_H: f64 = 26.0;
    const AXIS_H: f64 = 40.0;
    let width = LABEL_W + PLOT_W + VALUE_W;
    let height = TOP + ROW_H * rows.len() as f64 + AXIS_H;
    // The axis runs from 0 to the next half above every whisker and target.
    let top_value = rows
        .iter()
        .flat_map(|r| [r.ratios.hi, r.ratio(), r.target])
        .filter(|v| v.is_finite())
        .fold(1.0_f64, f64::max);
    let max = (top_value * 2.0).ceil() / 2.0;
    let x = |v: f64| LABEL_W + PLOT_W * (v.clamp(0.0, max) / max);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Verdana, sans-serif" font-size="12">"#
    );
    out.push_str(
        "<style>.bar.ok{fill:#4c9a2a}.bar.miss{fill:#e07b00}.grid{stroke:#ddd}\
         .one{stroke:#555;stroke-dasharray:4 3}.iqr{stroke:#222;stroke-width:1.5}\
         .target{stroke:#c00;stroke-width:2}.label{text-anchor:end}</style>\n",
    );
    let _ = writeln!(
        out,
        r##"<rect width="100%" height="100%" fill="#fff"/><text x="12" y="22" font-size="15" font-weight="bold">kthread / peer, per row (lower is better)</text><text x="12" y="42" fill="#555">{}</text>"##,
        xml_text(caption)
    );
    let plot_bottom = TOP + ROW_H * rows.len() as f64;
    let mut tick = 0.0;
    while tick <= max + 1e-9 {
        let tx = x(tick);
        let _ = writeln!(
            out,
            r#"<line class="grid" x1="{tx:.1}" y1="{:.1}" x2="{tx:.1}" y2="{plot_bottom:.1}"/><text x="{tx:.1}" y="{:.1}" text-anchor="middle">{tick:.1}</text>"#,
            TOP - 6.0,
            plot_bottom + 16.0
        );
        tick += if max > 4.0 { 1.0 } else { 0.5 };
    }
    for (i, r) in rows.iter().enumerate() {
        let y = TOP + ROW_H * i as f64;
        let mid = y + ROW_H / 2.0;
        let class = if r.ok() { "ok" } else { "miss" };
        let _ = writeln!(
            out,
            r#"<text class="label" x="{:.1}" y="{:.1}">{}</text><rect class="bar {class}" x="{LABEL_W:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>{}: {:.2} (IQR {:.2}–{:.2}, target ≤ {})</title></rect>"#,
            LABEL_W - 8.0,
            mid + 4.0,
            xml_text(&r.name),
            y + 5.0,
            x(r.ratio()) - LABEL_W,
            ROW_H - 10.0,
            xml_text(&r.name),
            r.ratio(),
            r.ratios.lo,
            r.ratios.hi,
            target(r.target)
        );
        let _ = writeln!(
            out,
            r#"<line class="iqr" x1="{:.1}" y1="{mid:.1}" x2="{:.1}" y2="{mid:.1}"/><line class="iqr" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/><line class="iqr" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/>"#,
            x(r.ratios.lo),
            x(r.ratios.hi),
            x(r.ratios.lo),
            mid - 4.0,
            x(r.ratios.lo),
            mid + 4.0,
            x(r.ratios.hi),
            mid - 4.0,
            x(r.ratios.hi),
            mid + 4.0
        );
        let _ = writeln!(
            out,
            r#"<line class="target" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/><text x="{:.1}" y="{:.1}">{:.2} ({:.2}–{:.2})</text>"#,
            x(r.target),
            y + 2.0,
            x(r.target),
            y + ROW_H - 2.0,
            LABEL_W + PLOT_W + 8.0,
            mid + 4.0,
            r.ratio(),
            r.ratios.lo,
            r.ratios.hi
        );
    }
    let _ = writeln!(
        out,
        r#"<line class="one" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{plot_bottom:.1}"/>"#,
        x(1.0),
        TOP - 6.0,
        x(1.0)
    );
    let _ = writeln!(
        out,
        r##"<text x="{LABEL_W:.1}" y="{:.1}" fill="#555">bar: median of per-round ratios · whisker: interquartile range · red tick: target · dashed: 1.0</text>"##,
        plot_bottom + 34.0
    );
    out.push_str("</svg>\n");
    out
}
