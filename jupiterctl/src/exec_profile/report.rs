//! The execution profile in words: a warning per guess (a failed task
//! with its error, the list of estimated ones), a one-line summary for
//! `up`, and the table `jupiterctl exec-profile` prints.

use super::{ExecProfile, Source};
use std::fmt::Write;

/// The warnings a profile deserves, one string each (empty: none).
pub fn guesses(profile: &ExecProfile) -> Vec<String> {
    let sample = profile.sample_input.as_deref().unwrap_or("(none)");
    let mut warnings: Vec<String> = profile
        .tasks
        .iter()
        .filter(|(_, t)| t.source == Source::Failed)
        .map(|(name, t)| {
            format!(
                "warning: task {name} failed while profiling on sample input {sample}: {}; \
                 it counts as an estimated {:.1} s",
                t.note.as_deref().unwrap_or("(no error)").trim_end(),
                t.cost_secs
            )
        })
        .collect();
    let estimated: Vec<String> = profile
        .tasks
        .iter()
        .filter(|(_, t)| t.source == Source::Estimated)
        .map(|(name, t)| {
            format!(
                "  {name}: {:.1} s, {} bytes ({})",
                t.cost_secs,
                t.output_bytes,
                t.note.as_deref().unwrap_or("not measured")
            )
        })
        .collect();
    if !estimated.is_empty() {
        warnings.push(format!(
            "warning: {} task{} not profiled; the scheduler uses estimates for {}:\n{}",
            estimated.len(),
            if estimated.len() == 1 { " was" } else { "s were" },
            if estimated.len() == 1 { "it" } else { "them" },
            estimated.join("\n")
        ));
    }
    warnings
}

/// Prints [`guesses`] on stderr.
pub fn print_guesses(profile: &ExecProfile) {
    for warning in guesses(profile) {
        eprintln!("{warning}");
    }
}

/// One line: how many tasks of each source, how long, where.
pub fn summary(profile: &ExecProfile) -> String {
    let counts: Vec<String> = [
        Source::Measured,
        Source::Cached,
        Source::Declared,
        Source::Estimated,
        Source::Failed,
    ]
    .into_iter()
    .filter_map(|s| match profile.count(s) {
        0 => None,
        n => Some(format!("{n} {s}")),
    })
    .collect();
    format!(
        "execution profile: {} in {:.1} s on {} (speed {:.2}, {} task{} at once)",
        counts.join(", "),
        profile.elapsed_secs,
        profile.place,
        profile.speed,
        profile.slots,
        if profile.slots == 1 { "" } else { "s" }
    )
}

/// The table: task, seconds here, normalised cost, output bytes, source.
pub fn table(profile: &ExecProfile) -> String {
    let width = profile.tasks.keys().map(String::len).max().unwrap_or(4).max(4);
    let mut out = format!(
        "{:<width$}  {:>9}  {:>10}  {:>12}  {}\n",
        "task", "seconds", "cost (s@1)", "output bytes", "source"
    );
    for (name, t) in &profile.tasks {
        let seconds = t.seconds.map_or("-".to_string(), secs);
        let source = match &t.note {
            Some(note) if t.source.is_guess() => format!("{} ({})", t.source, first_line(note)),
            _ => t.source.to_string(),
        };
        let _ = writeln!(
            out,
            "{name:<width$}  {seconds:>9}  {:>10}  {:>12}  {source}",
            secs(t.cost_secs),
            t.output_bytes
        );
    }
    out
}

/// Seconds readable at any scale: a task of microseconds is not 0.000.
fn secs(value: f64) -> String {
    if value == 0.0 || value >= 0.001 {
        format!("{value:.3}")
    } else {
        format!("{value:.2e}")
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}
