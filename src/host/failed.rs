//! A failed change and what it left on the host, as a type: the caller that
//! reports it says "nothing changed" exactly when that is true, and once,
//! without reading its own messages.

use crate::error::Error;

/// What a failed change left, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Left {
    /// Refused before anything was touched; the error does not say so (a
    /// caller with more to undo adds it once everything is known).
    Untouched,
    /// Touched, and all of it put back: `undone` says how.
    PutBack,
    /// Something stays changed (a device off its driver, a record kept for
    /// recover); the error says what and what to do.
    Changed,
}

/// A failed change: its error, what it left, and how what it touched was put back.
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) error: Error,
    pub(crate) left: Left,
    /// One clause per device put back ("X went back to Y", "X stays bound to Y").
    pub(crate) undone: Vec<String>,
}

impl Failed {
    pub(crate) fn untouched(error: Error) -> Failed {
        Failed { error, left: Left::Untouched, undone: Vec::new() }
    }

    pub(crate) fn put_back(error: Error, how: String) -> Failed {
        Failed { error, left: Left::PutBack, undone: vec![how] }
    }

    pub(crate) fn changed(error: Error) -> Failed {
        Failed { error, left: Left::Changed, undone: Vec::new() }
    }

    /// Failures of devices changed at once, as one: the error of the one
    /// that left the most (the others that left something changed follow
    /// it), every clause of what was put back.
    pub(crate) fn merge(failures: Vec<Failed>) -> Option<Failed> {
        let worst = failures.iter().map(|f| f.left).max()?;
        let mut main: Option<Error> = None;
        let mut also = Vec::new();
        let mut undone = Vec::new();
        for f in failures {
            undone.extend(f.undone);
            if main.is_none() && f.left == worst {
                main = Some(f.error);
            } else if f.left == Left::Changed {
                also.push(f.error.to_string());
            }
        }
        let mut error = main?;
        for other in also {
            error = error.context_after(format_args!("also: {other}"));
        }
        Some(Failed { error, left: worst, undone })
    }

    /// Prefix the error, keeping what was left.
    pub(crate) fn context(mut self, what: impl std::fmt::Display) -> Failed {
        self.error = self.error.context(what);
        self
    }

    /// The error as a caller reads it, ending with what was put back.
    pub(crate) fn into_error(self) -> Error {
        match self.left {
            Left::PutBack => self.error.context_after(format_args!("nothing changed: {}", self.undone.join(", "))),
            Left::Changed if !self.undone.is_empty() => {
                self.error.context_after(format_args!("undone for the others: {}", self.undone.join(", ")))
            }
            Left::Untouched | Left::Changed => self.error,
        }
    }
}

impl From<Failed> for Error {
    fn from(f: Failed) -> Error {
        f.into_error()
    }
}
