//! The one io error of every layer: what was being done (`context`), to which `path`, and the
//! io error itself. Each layer's error enum wraps it transparently, so its message (and its
//! `source()`, the io error) is the same in every layer.

use std::path::{Path, PathBuf};

/// An io error with what was being done and the path it was done to:
/// `reading: /x/y: No such file or directory`.
#[derive(Debug, thiserror::Error)]
#[error("{context}{}{path}: {source}", .style.separator())]
pub struct IoContext {
    context: String,
    path: PathBuf,
    style: Style,
    #[source]
    source: std::io::Error,
}

/// How the context and the path are joined in the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    /// `reading: /x: …`
    Colon,
    /// `opening the auth file /x: …`: the context is a phrase the path completes.
    Phrase,
}

impl Style {
    fn separator(self) -> &'static str {
        match self {
            Style::Colon => ": ",
            Style::Phrase => " ",
        }
    }
}

impl IoContext {
    /// `{context}: {path}: {source}`.
    pub fn new(
        context: impl Into<String>,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        IoContext {
            context: context.into(),
            path: path.into(),
            style: Style::Colon,
            source,
        }
    }

    /// `{context} {path}: {source}`, for a context the path completes ("opening the auth file").
    pub fn phrase(
        context: impl Into<String>,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        IoContext {
            style: Style::Phrase,
            ..IoContext::new(context, path, source)
        }
    }

    /// What was being done: "reading", "syncing directory", …
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The path it was done to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The io error itself.
    /// The io error itself.
    pub fn io_error(&self) -> &std::io::Error {
        &self.source
    }

    /// The io error itself, by value.
    pub fn into_io_error(self) -> std::io::Error {
        self.source
    }
}

/// `.io_context("reading", path)?` on any result whose error is (or converts into) an io
/// error; `?` then turns the [`IoContext`] into the layer's error. The context and path are
/// only converted when there is an error.
pub trait IoResultExt<T> {
    /// The error, if any, as an [`IoContext`] naming what was done (`context`) to `path`.
    fn io_context(self, context: impl Into<String>, path: impl AsRef<Path>)
        -> Result<T, IoContext>;
}

impl<T, E: Into<std::io::Error>> IoResultExt<T> for Result<T, E> {
    fn io_context(
        self,
        context: impl Into<String>,
        path: impl AsRef<Path>,
    ) -> Result<T, IoContext> {
        self.map_err(|error| IoContext::new(context, path.as_ref(), error.into()))
    }
}

/// An io error's message without the `(os error N)` suffix the standard library adds, for
/// messages people read.
pub fn plain_io_message(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_string(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gone() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::NotFound, "gone")
    }

    #[test]
    fn the_message_names_context_and_path() {
        assert_eq!(
            IoContext::new("reading", "/x", gone()).to_string(),
            "reading: /x: gone"
        );
        assert_eq!(
            IoContext::phrase("opening the auth file", "/x", gone()).to_string(),
            "opening the auth file /x: gone"
        );
    }

    #[test]
    fn the_source_is_the_io_error() {
        let error: Result<(), _> = Err(gone()).io_context("listing", "/d");
        let error = error.unwrap_err();
        let source = std::error::Error::source(&error).expect("a source");
        assert_eq!(source.to_string(), "gone");
        assert_eq!(error.path(), Path::new("/d"));
        assert_eq!(error.context(), "listing");
        assert_eq!(error.into_io_error().kind(), std::io::ErrorKind::NotFound);
    }
}
