//! Writing to the terminal: output that never panics on a closed pipe, text made safe to
//! show, JSON, times.

use std::process::ExitCode;
use std::time::Duration;

use crate::EXIT_FAILED;

/// `println!` that never panics: a closed stdout (`run ... | head -1`) drops the rest of the
/// output, and the exit code still says how the executions ended. Any other write error (a
/// full disk) is remembered: the report was lost, and the CLI then exits 1.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        $crate::output::note_write(writeln!(std::io::stdout().lock(), $($arg)*));
    }};
}

/// Set when writing the report to stdout failed, other than by a closed pipe.
pub(crate) static REPORT_LOST: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

pub(crate) fn note_write(written: std::io::Result<()>) {
    if let Err(error) = written
        && error.kind() != std::io::ErrorKind::BrokenPipe
    {
        REPORT_LOST.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// `eprintln!` that never panics, for the same reason.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// `text` as it is safe to print on a terminal: control characters (an escape sequence in a
/// pipeline name or in a step's output, say) are shown escaped, tabs aside.
pub(crate) fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return std::borrow::Cow::Borrowed(text);
    }
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// [`shown`], line by line: for messages that span lines (a TOML error's excerpt).
pub(crate) fn shown_lines(text: &str) -> String {
    text.lines().map(shown).collect::<Vec<_>>().join("\n")
}

/// "1 step", "2 steps".
pub(crate) fn steps(n: usize) -> String {
    format!("{n} {}", if n == 1 { "step" } else { "steps" })
}

/// Prints `value` as pretty JSON on stdout.
pub(crate) fn print_json(value: &impl serde::Serialize) -> ExitCode {
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            outln!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            errln!("error: {error}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// A time in milliseconds since the Unix epoch, as RFC 3339 to the second.
pub(crate) fn when(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}

pub(crate) use errln;
pub(crate) use outln;
