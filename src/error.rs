//! One error type for the whole crate: every failure a user can cause comes back as a value.

use std::path::PathBuf;

/// Everything that can go wrong in likely.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A data file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A data file was read but its content is not usable; `location` names row and column.
    #[error("{path}: {location}{message}")]
    Data {
        path: PathBuf,
        location: String,
        message: String,
    },
    /// Data handed to the library directly (not through a file) is invalid.
    #[error("invalid data: {0}")]
    InvalidData(String),
    /// A user-supplied option or argument is invalid.
    #[error("{0}")]
    Usage(String),
    /// No GPU adapter is available, or the requested one was not found.
    #[error("no usable GPU adapter: {0}")]
    NoAdapter(String),
    /// The GPU device rejected something (shader, pipeline, buffer, mapping).
    #[error("GPU error in {context}: {message}")]
    Gpu { context: String, message: String },
    /// The problem is too large for the chosen engine.
    #[error("{0}")]
    Capacity(String),
}

/// `Result` with likely's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn data(
        path: impl Into<PathBuf>,
        location: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let location = location.into();
        Error::Data {
            path: path.into(),
            location: if location.is_empty() {
                location
            } else {
                format!("{location}: ")
            },
            message: message.into(),
        }
    }

    pub(crate) fn gpu(context: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Error::Gpu {
            context: context.into(),
            message: message.to_string(),
        }
    }
}
