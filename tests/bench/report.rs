//! Result rows, the printed table, and docs/performance.md (intro once, a "latest results" table
//! updated row by row, and a log with every run's command and table).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;

use crate::crypto::Rates;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unit {
    PerSec,
    Ms,
    Mb,
    Count,
}

impl Unit {
    fn label(self) -> &'static str {
        match self {
            Self::PerSec => "/s",
            Self::Ms => "ms",
            Self::Mb => "MB",
            Self::Count => "",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    AtLeast(f64),
    AtMost(f64),
}

impl Target {
    fn met(self, v: f64) -> bool {
        match self {
            Self::AtLeast(t) => v >= t,
            Self::AtMost(t) => v <= t,
        }
    }

    fn show(self, unit: Unit) -> String {
        match self {
            Self::AtLeast(t) => format!("≥ {}{}", num(t), unit.label()),
            Self::AtMost(t) => format!("< {}{}", num(t), unit.label()),
        }
    }
}

/// One measured figure.
#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: char,
    pub case: String,
    pub db: &'static str,
    pub metric: String,
    pub value: f64,
    pub unit: Unit,
    pub target: Option<Target>,
    /// A correctness check that failed (the run fails): refused activities accepted, POSTs that
    /// do not match the inboxes, a server that did not come up.
    pub broken: Option<String>,
}

impl Row {
    pub fn new(scenario: char, case: &str, db: &'static str, metric: &str, value: f64, unit: Unit) -> Self {
        Self {
            scenario,
            case: case.to_owned(),
            db,
            metric: metric.to_owned(),
            value,
            unit,
            target: None,
            broken: None,
        }
    }

    pub fn target(mut self, t: Target) -> Self {
        self.target = Some(t);
        self
    }

    pub fn check(mut self, ok: bool, what: impl Into<String>) -> Self {
        if !ok {
            self.broken = Some(what.into());
        }
        self
    }

    fn value_cell(&self) -> String {
        format!("{}{}", num(self.value), self.unit.label())
    }

    /// Ratio to the raw crypto rates: rates divided by the per-core verify and sign rates;
    /// latencies as the number of signatures one core makes in that time.
    fn ratio_cell(&self, c: &Rates) -> String {
        match self.unit {
            Unit::PerSec => format!(
                "{:.3} × verify, {:.3} × sign",
                self.value / c.verify,
                self.value / c.sign
            ),
            Unit::Ms => format!("{:.1} signs", self.value / 1000.0 * c.sign),
            Unit::Mb | Unit::Count => String::new(),
        }
    }

    fn verdict(&self) -> &'static str {
        if self.broken.is_some() {
            return "BROKEN";
        }
        match self.target {
            Some(t) if t.met(self.value) => "met",
            Some(_) => "NOT met",
            None => "",
        }
    }

    pub fn one_line(&self, c: &Rates) -> String {
        format!(
            "{} {} [{}] {}: {} {} {}{}",
            self.scenario,
            self.case,
            self.db,
            self.metric,
            self.value_cell(),
            self.ratio_cell(c),
            self.target
                .map(|t| format!("(target {}) ", t.show(self.unit)))
                .unwrap_or_default(),
            self.verdict()
        )
    }

    fn cells(&self, c: &Rates) -> [String; 8] {
        [
            self.scenario.to_string(),
            self.case.clone(),
            self.db.to_owned(),
            self.metric.clone(),
            self.value_cell(),
            self.ratio_cell(c),
            self.target.map(|t| t.show(self.unit)).unwrap_or_default(),
            match &self.broken {
                Some(b) => format!("BROKEN: {b}"),
                None => self.verdict().to_owned(),
            },
        ]
    }
}

/// A number with sensible precision.
pub fn num(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

const HEAD: [&str; 8] = [
    "id",
    "case",
    "db",
    "metric",
    "value",
    "ratio to raw RSA",
    "target",
    "verdict",
];

fn md_line(cells: &[String]) -> String {
    format!("| {} |", cells.join(" | "))
}

fn md_table(rows: &[Row], c: &Rates) -> String {
    let mut out = md_line(&HEAD.map(str::to_owned)) + "\n";
    out += &md_line(&HEAD.map(|_| "---".to_owned()));
    out.push('\n');
    for r in rows {
        out += &md_line(&r.cells(c));
        out.push('\n');
    }
    out
}

/// The printed table (markdown, so it can be pasted).
pub fn table(rows: &[Row], c: &Rates) -> String {
    format!(
        "raw RSA-2048 per core (aws-lc-rs): sign {:.0}/s, verify {:.0}/s\n\n{}",
        c.sign,
        c.verify,
        md_table(rows, c)
    )
}

/// PostgreSQL ÷ SQLite for every figure measured on both.
pub fn ratios_between_backends(rows: &[Row]) {
    let mut first = true;
    for r in rows.iter().filter(|r| r.db == "sqlite") {
        if let Some(p) = rows.iter().find(|p| {
            p.db == "postgres" && p.scenario == r.scenario && p.case == r.case && p.metric == r.metric
        }) && r.value != 0.0
        {
            if first {
                println!("\nPostgreSQL ÷ SQLite:");
                first = false;
            }
            println!(
                "  {} {} {}: {:.2}",
                r.scenario,
                r.case,
                r.metric,
                p.value / r.value
            );
        }
    }
}

const LATEST_START: &str =
    "<!-- latest:start (rows are replaced by newer runs of the same id, case, db and metric) -->";
const LATEST_END: &str = "<!-- latest:end -->";
const LOG_HEADING: &str = "## Run log";

/// Updates the latest-results table and appends this run to the log.
pub fn write_docs(path: &Path, command: &str, c: &Rates, rows: &[Row]) -> anyhow::Result<()> {
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    let mut doc = if existing.contains(LATEST_START) && existing.contains(LATEST_END) {
        existing
    } else {
        format!("{INTRO}\n{LATEST_START}\n{LATEST_END}\n\n{LOG_HEADING}\n")
    };
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    // Latest: keyed by the first four cells; the RSA rates of the run that measured it.
    let (before, rest) = doc.split_once(LATEST_START).context("marker")?;
    let (table, after) = rest.split_once(LATEST_END).context("marker")?;
    let mut kept: Vec<Vec<String>> = table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| id ") && !l.starts_with("| ---"))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|s| s.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|cells| cells.len() >= 10)
        .collect();
    for r in rows {
        let mut cells: Vec<String> = r.cells(c).to_vec();
        cells.push(format!("sign {:.0}/s, verify {:.0}/s", c.sign, c.verify));
        cells.push(date.clone());
        kept.retain(|k| k[..4] != cells[..4]);
        kept.push(cells);
    }
    kept.sort_by(|a, b| (&a[0], &a[1], &a[3], &a[2]).cmp(&(&b[0], &b[1], &b[3], &b[2])));
    let mut head: Vec<String> = HEAD.map(str::to_owned).to_vec();
    head.push("raw RSA in that run".into());
    head.push("measured".into());
    let mut latest = format!(
        "\n{}\n{}\n",
        md_line(&head),
        md_line(&head.iter().map(|_| "---".to_owned()).collect::<Vec<_>>())
    );
    for k in &kept {
        latest += &md_line(k);
        latest.push('\n');
    }
    doc = format!("{before}{LATEST_START}{latest}{LATEST_END}{after}");
    if !doc.ends_with('\n') {
        doc.push('\n');
    }
    let mut entry = String::new();
    let _ = write!(
        entry,
        "\n### {date}\n\n```sh\n{command}\n```\n\nRaw RSA-2048 per core (aws-lc-rs): sign {:.0}/s, verify {:.0}/s.\n\n{}",
        c.sign,
        c.verify,
        md_table(rows, c)
    );
    doc.push_str(&entry);
    std::fs::write(path, doc).with_context(|| format!("writing {}", path.display()))
}

/// Only used when docs/performance.md is missing or has lost its markers.
pub const INTRO: &str =
    "# Performance\n\nWritten by `cargo bench --bench agora-bench`; see tests/bench/main.rs.\n";
