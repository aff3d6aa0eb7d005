//! A PNG line plot drawn by gnuplot (Debian `gnuplot-nox`, no display or network needed):
//! the bench writes the data and the script beside the PNG, so the plot can be redrawn or
//! drawn elsewhere when gnuplot is missing here.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::measure::BenchResult;
use super::process::{self, on_path};

/// One line: its label and a value per x (None: not measured).
pub struct Series {
    pub label: String,
    pub values: Vec<Option<f64>>,
}

/// Writes `<stem>.dat`, `<stem>.gp` and, when gnuplot is installed, `<stem>.png` in `dir`.
/// Returns the PNG's path, or None (and says why) when gnuplot is missing.
pub fn line_plot(
    dir: &Path,
    stem: &str,
    title: &str,
    x_label: &str,
    y_label: &str,
    xs: &[f64],
    series: &[Series],
) -> BenchResult<Option<PathBuf>> {
    let data = dir.join(format!("{stem}.dat"));
    let script = dir.join(format!("{stem}.gp"));
    let png = dir.join(format!("{stem}.png"));
    let mut text = String::from("# x");
    for line in series {
        write!(text, "\t\"{}\"", line.label)?;
    }
    text.push('\n');
    for (row, x) in xs.iter().enumerate() {
        write!(text, "{x}")?;
        for line in series {
            match line.values.get(row).copied().flatten() {
                Some(value) => write!(text, "\t{value:.4}")?,
                None => text.push_str("\tNaN"),
            }
        }
        text.push('\n');
    }
    std::fs::write(&data, text)?;
    let mut plots = Vec::new();
    for (column, line) in series.iter().enumerate() {
        plots.push(format!(
            "'{}' using 1:{} with linespoints linewidth 2 pointsize 1.3 title \"{}\"",
            data.display(),
            column + 2,
            line.label.replace('"', "'")
        ));
    }
    let gp = format!(
        "set terminal pngcairo size 1000,640 font \"DejaVu Sans,11\"\n\
         set output '{png}'\n\
         set title \"{title}\"\n\
         set xlabel \"{x_label}\"\nset ylabel \"{y_label}\"\n\
         set key top left box opaque\nset grid\nset datafile missing 'NaN'\n\
         set xrange [0:*]\nset yrange [0:*]\n\
         plot {plots}\n",
        png = png.display(),
        plots = plots.join(", \\\n     ")
    );
    std::fs::write(&script, gp)?;
    if !on_path("gnuplot") {
        println!(
            "  gnuplot not installed: plot skipped (data {}, script {}; scripts/bench-setup.sh \
             installs gnuplot-nox)",
            data.display(),
            script.display()
        );
        return Ok(None);
    }
    process::run(Command::new("gnuplot").arg(&script))?;
    Ok(Some(png))
}
