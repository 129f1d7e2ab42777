//! Printing for every command: JSON with one stable shape per command,
//! and the helpers of the human tables.

use std::io::Write;

use serde::Serialize;

pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// At most `n` characters, control characters shown as spaces.
pub fn clip(s: &str, n: usize) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.chars().count() <= n {
        clean
    } else {
        let mut cut: String = clean.chars().take(n.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

pub fn candidate_name(first: &str, last: &str) -> String {
    let name = format!("{first} {last}");
    let name = name.trim();
    if name.is_empty() {
        "(no name)".to_string()
    } else {
        name.to_string()
    }
}
