//! Error kinds that decide the exit code. Everything else is an `anyhow` chain (exit 1).

use crate::exit_codes;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag, config file or name the user gave is wrong; the message says the fix.
    #[error("{0}")]
    BadInput(String),
    /// Something the machine lacks; the message names the setup command.
    #[error("{0}")]
    Environment(String),
    /// A check the user asked for failed (validate, gate); the report was already printed.
    #[error("{0}")]
    CheckFailed(String, i32),
    #[error("interrupted: {0}")]
    Interrupted(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::BadInput(_) => exit_codes::BAD_INPUT,
            Error::Environment(_) => exit_codes::ENVIRONMENT,
            Error::CheckFailed(_, code) => *code,
            Error::Interrupted(_) => exit_codes::INTERRUPTED,
        }
    }
}

/// The exit code for an error chain: the first typed `Error` in it, else a harness failure.
pub fn exit_code_for(err: &anyhow::Error) -> i32 {
    err.chain().find_map(|e| e.downcast_ref::<Error>()).map(Error::exit_code).unwrap_or(exit_codes::HARNESS_FAILURE)
}
