//! [`ExitReason`]: why a process ended, mirroring Erlang's exit reasons.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// A boxed error, as returned by callbacks that use `?`.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a process ended. Mirrors Erlang's `normal | shutdown | {shutdown, Term} | killed | Other`.
///
/// | Erlang | otp-core | produced by |
/// |---|---|---|
/// | `normal` | [`Normal`](Self::Normal) | a server stopping itself normally, a task returning |
/// | `shutdown` | [`Shutdown`](Self::Shutdown) | a supervisor stopping its child |
/// | `{shutdown, T}` | [`ShutdownWith`](Self::ShutdownWith) | a server stopping itself "cleanly, with a note" |
/// | `killed` | [`Killed`](Self::Killed) | a brutal kill, or a kill after a shutdown timeout |
/// | `{Reason, Stack}` | [`Error`](Self::Error) | a callback returning `Err` (usually via `?`) |
/// | `{Reason, Stack}` | [`Panic`](Self::Panic) | a panic inside a callback, caught at the process boundary |
/// | `noproc` | [`NoProc`](Self::NoProc) | monitoring a process that was already gone |
///
/// The first three are *clean* ([`is_clean`](Self::is_clean)): a transient child that exits with
/// one of them is not restarted, and no crash is reported.
///
/// Two reasons compare equal when they have the same variant and the same payload. An
/// [`Error`](Self::Error) equals only itself and its clones (the same error value): two
/// different errors are different reasons even when their messages read alike, since an
/// `io::Error` and a parse error can both say "not found". To check an error's message,
/// compare its `Display` text (`reason.to_string() == "error: boom"`).
#[derive(Clone)]
pub enum ExitReason {
    /// The process finished its work (Erlang `normal`).
    Normal,
    /// The process was asked to shut down, usually by its supervisor (Erlang `shutdown`).
    Shutdown,
    /// A clean shutdown that carries a note (Erlang `{shutdown, Term}`).
    ShutdownWith(Arc<str>),
    /// The process was killed without running any cleanup (Erlang `killed`).
    Killed,
    /// A callback returned an error (Erlang `{Reason, Stacktrace}` from an `error` exception).
    Error(Arc<dyn StdError + Send + Sync + 'static>),
    /// A callback panicked; the panic message, caught at the process boundary.
    Panic(Arc<str>),
    /// The process did not exist when it was monitored or addressed (Erlang `noproc`).
    NoProc,
}

impl ExitReason {
    /// A clean shutdown with a note: Erlang's `{shutdown, Note}`.
    pub fn shutdown_with(note: impl Into<Arc<str>>) -> ExitReason {
        ExitReason::ShutdownWith(note.into())
    }

    /// An abnormal exit caused by `error`, as if a callback had returned `Err(error)`.
    pub fn error(error: impl Into<BoxError>) -> ExitReason {
        ExitReason::Error(Arc::from(error.into()))
    }

    /// Whether this is one of the clean reasons `Normal`, `Shutdown` or `ShutdownWith`.
    ///
    /// A transient child is restarted only when its exit reason is *not* clean
    /// (`supervisor.erl`: "restarted only if it terminates abnormally, that is, with another exit
    /// reason than `normal`, `shutdown`, or `{shutdown,Term}`").
    pub fn is_clean(&self) -> bool {
        matches!(
            self,
            ExitReason::Normal | ExitReason::Shutdown | ExitReason::ShutdownWith(_)
        )
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Normal => f.write_str("normal"),
            ExitReason::Shutdown => f.write_str("shutdown"),
            ExitReason::ShutdownWith(note) => write!(f, "shutdown: {note}"),
            ExitReason::Killed => f.write_str("killed"),
            ExitReason::Error(error) => write!(f, "error: {error}"),
            ExitReason::Panic(message) => write!(f, "panic: {message}"),
            ExitReason::NoProc => f.write_str("noproc"),
        }
    }
}

impl fmt::Debug for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Normal => f.write_str("Normal"),
            ExitReason::Shutdown => f.write_str("Shutdown"),
            ExitReason::ShutdownWith(note) => f.debug_tuple("ShutdownWith").field(note).finish(),
            ExitReason::Killed => f.write_str("Killed"),
            ExitReason::Error(error) => f.debug_tuple("Error").field(&error.to_string()).finish(),
            ExitReason::Panic(message) => f.debug_tuple("Panic").field(message).finish(),
            ExitReason::NoProc => f.write_str("NoProc"),
        }
    }
}

impl PartialEq for ExitReason {
    fn eq(&self, other: &ExitReason) -> bool {
        match (self, other) {
            (ExitReason::Normal, ExitReason::Normal)
            | (ExitReason::Shutdown, ExitReason::Shutdown)
            | (ExitReason::Killed, ExitReason::Killed)
            | (ExitReason::NoProc, ExitReason::NoProc) => true,
            (ExitReason::ShutdownWith(a), ExitReason::ShutdownWith(b)) => a == b,
            (ExitReason::Panic(a), ExitReason::Panic(b)) => a == b,
            (ExitReason::Error(a), ExitReason::Error(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for ExitReason {}

/// Turns a panic payload into the message it carried (`&str` or `String`), as the default
/// panic hook does.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> Arc<str> {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        Arc::from(*s)
    } else if let Some(s) = payload.downcast_ref::<String>() {
        Arc::from(s.as_str())
    } else {
        Arc::from("Box<dyn Any>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_reasons_are_exactly_normal_and_the_shutdowns() {
        assert!(ExitReason::Normal.is_clean());
        assert!(ExitReason::Shutdown.is_clean());
        assert!(ExitReason::shutdown_with("x").is_clean());
        assert!(!ExitReason::Killed.is_clean());
        assert!(!ExitReason::error("boom").is_clean());
        assert!(!ExitReason::Panic(Arc::from("boom")).is_clean());
        assert!(!ExitReason::NoProc.is_clean());
    }

    #[test]
    fn display_is_lowercase_and_carries_the_payload() {
        assert_eq!(
            ExitReason::shutdown_with("bye").to_string(),
            "shutdown: bye"
        );
        assert_eq!(ExitReason::error("boom").to_string(), "error: boom");
        assert_ne!(
            ExitReason::error("boom"),
            ExitReason::Panic(Arc::from("boom"))
        );
    }

    #[test]
    fn an_error_reason_equals_its_clones_only_not_another_error_with_the_same_text() {
        let reason = ExitReason::error("boom");
        assert_eq!(reason, reason.clone());
        assert_ne!(reason, ExitReason::error("boom"));
        let not_found = std::io::Error::new(std::io::ErrorKind::NotFound, "not found");
        assert_ne!(ExitReason::error(not_found), ExitReason::error("not found"));
    }
}
