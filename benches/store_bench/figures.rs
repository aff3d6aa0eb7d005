//! The figures: ours next to the reference of the same run, their ratio, the target
//! and whether it was met, printed as one table per section.

use super::measure::Table;

/// What a figure must reach.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// ours / reference ≤ x (e.g. `cp` + `sync`: ≤ 1.0×).
    RatioAtMost(f64),
    /// reference / ours ≥ x (e.g. `skopeo copy`: ≥ 3× faster).
    FasterBy(f64),
    /// ours / reference ≥ x (e.g. throughput of 4 processes ≥ 1.5× that of one).
    RatioAtLeast(f64),
    /// ours ≤ x in the figure's unit (e.g. ≤ 30 ms, ≤ 32 MiB).
    AtMost(f64),
    /// Shown for information.
    None,
}

impl Target {
    fn describe(self, unit: &str) -> String {
        match self {
            Target::RatioAtMost(x) => format!("<= {x}x ref"),
            Target::FasterBy(x) => format!(">= {x}x faster"),
            Target::RatioAtLeast(x) => format!(">= {x}x ref"),
            Target::AtMost(x) => format!("<= {x} {unit}"),
            Target::None => "-".to_string(),
        }
    }

    fn met(self, ours: f64, reference: Option<f64>) -> Option<bool> {
        match (self, reference) {
            (Target::RatioAtMost(x), Some(r)) => Some(ours / r <= x),
            (Target::FasterBy(x), Some(r)) => Some(r / ours >= x),
            (Target::RatioAtLeast(x), Some(r)) => Some(ours / r >= x),
            (Target::AtMost(x), _) => Some(ours <= x),
            _ => None,
        }
    }
}

/// One figure: ours, the reference (None when its tool is missing), in `unit`.
pub struct Figure {
    pub config: String,
    pub work: String,
    pub ours: f64,
    pub reference_name: String,
    pub reference: Option<f64>,
    /// The reference was stopped at its time limit: the value is a lower bound.
    pub reference_lower_bound: bool,
    pub unit: &'static str,
    pub target: Target,
    /// Peak RSS of our process, MiB, when measured.
    pub rss_mib: Option<f64>,
}

/// Collects figures and prints them with MET/MISSED.
#[derive(Default)]
pub struct Figures {
    rows: Vec<Figure>,
}

impl Figures {
    pub fn push(&mut self, figure: Figure) {
        self.rows.push(figure);
    }

    pub fn print(&self) {
        let mut table = Table::new(&[
            "config",
            "work",
            "ours",
            "peak RSS",
            "reference",
            "ref",
            "ours/ref",
            "target",
            "verdict",
        ]);
        for f in &self.rows {
            let verdict = match f.target.met(f.ours, f.reference) {
                // NaN: our side could not run (a missing option, a failed process).
                Some(false) if f.ours.is_nan() => "MISSED (n/a)",
                // Against a lower bound only a pass proves anything.
                Some(false) if f.reference_lower_bound => "open (ref stopped)",
                Some(true) => "MET",
                Some(false) => "MISSED",
                None if f.reference.is_none() && !matches!(f.target, Target::None) => {
                    "no reference"
                }
                None => "-",
            };
            table.row(vec![
                f.config.clone(),
                f.work.clone(),
                value(f.ours, f.unit),
                f.rss_mib.map_or("-".to_string(), |m| format!("{m:.1} MiB")),
                f.reference_name.clone(),
                match f.reference {
                    Some(r) if f.reference_lower_bound => format!(">= {}", value(r, f.unit)),
                    Some(r) => value(r, f.unit),
                    None if f.reference_name == "-" => "-".to_string(),
                    None => "missing".to_string(),
                },
                f.reference
                    .filter(|_| !f.ours.is_nan())
                    .map_or("-".to_string(), |r| format!("{:.2}", f.ours / r)),
                f.target.describe(f.unit),
                verdict.to_string(),
            ]);
        }
        table.print();
    }
}

/// `0.652 s`, `57.1 ms`, `31.2 MiB`, `1.83 x`.
pub fn value(amount: f64, unit: &str) -> String {
    if amount.is_nan() {
        return "n/a".to_string();
    }
    match unit {
        "s" if amount < 1.0 => format!("{:.1} ms", amount * 1e3),
        "s" => format!("{amount:.3} s"),
        "ms" => format!("{amount:.1} ms"),
        "x" => format!("{amount:.2} x"),
        other => format!("{amount:.1} {other}"),
    }
}

/// A size in MB (10^6 bytes): `202`, or `4.3` below 10.
pub fn megabytes(bytes: u64) -> String {
    let mb = bytes as f64 / 1e6;
    if mb < 10.0 {
        format!("{mb:.1}")
    } else {
        format!("{mb:.0}")
    }
}
