//! One error type for the harness: a sentence saying what did not happen,
//! with whatever it was doing when it happened.

use std::fmt;

/// Why a scenario failed, in words. Every error converts into it (`?`);
/// [`Context::context`] says what was being done.
pub struct Failure(String);

/// The harness's result.
pub type Result<T, E = Failure> = std::result::Result<T, E>;

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    pub fn message(&self) -> &str {
        &self.0
    }
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(error: E) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self(message)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Adds what was being done to an error.
pub trait Context<T> {
    fn context(self, doing: impl fmt::Display) -> Result<T>;
}

impl<T, E: Into<Failure>> Context<T> for Result<T, E> {
    fn context(self, doing: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Failure(format!("{doing}: {}", e.into().0)))
    }
}

/// Returns a [`Failure`] from the enclosing function unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err($crate::Failure::new(format!($($arg)+)));
        }
    };
}

/// Returns a [`Failure`] from the enclosing function.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)+) => {
        return Err($crate::Failure::new(format!($($arg)+)))
    };
}
