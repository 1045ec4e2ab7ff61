//! Errors of the app loader. Every message names the file (as given), the
//! line and/or field, and what is wrong.

use std::fmt;
use std::path::PathBuf;

/// Where in a file a problem is: a field path (`tasks[2].children[0]`),
/// a line, a column, each optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    pub field: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl Location {
    pub fn field(field: impl Into<String>, line: Option<usize>) -> Self {
        Location {
            field: Some(field.into()),
            line,
            column: None,
        }
    }
    pub fn line(line: usize) -> Self {
        Location {
            field: None,
            line: Some(line),
            column: None,
        }
    }
}

/// `line 4 column 3: tasks[1]` / `tasks[1].children[0]` / `line 3`; the
/// line goes last in parentheses when a field is named, first otherwise.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.field, self.line, self.column) {
            (None, None, _) => Ok(()),
            (None, Some(l), None) => write!(f, "line {l}: "),
            (None, Some(l), Some(c)) => write!(f, "line {l} column {c}: "),
            (Some(field), _, _) => write!(f, "{field}: "),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{}: app folder not found", path.display())]
    DirNotFound { path: PathBuf },

    #[error("{}: not a folder (an app is a folder holding app.yaml or configuration.txt)", path.display())]
    NotADir { path: PathBuf },

    #[error("{} is not a Jupiter app: neither app.yaml nor configuration.txt found", dir.display())]
    NotAnApp { dir: PathBuf },

    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A syntax or type error reported by the YAML parser.
    #[error("{}: {}{message}", file.display(), Location { field: None, line: *line, column: *column })]
    Syntax {
        file: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },

    /// A semantic error at a field (and, where it could be found, a line).
    #[error("{}: {}{message}{}", file.display(), at, line_suffix(at))]
    Invalid {
        file: PathBuf,
        at: Location,
        message: String,
    },

    /// The tasks' edges form a cycle; `tasks` is the cycle, first task repeated last.
    #[error("{}: tasks form a cycle: {}", file.display(), tasks.join(" -> "))]
    Cycle { file: PathBuf, tasks: Vec<String> },
}

fn line_suffix(at: &Location) -> String {
    match (&at.field, at.line) {
        (Some(_), Some(l)) => format!(" (line {l})"),
        _ => String::new(),
    }
}

impl AppError {
    pub(crate) fn invalid(file: &std::path::Path, at: Location, message: impl Into<String>) -> Self {
        AppError::Invalid {
            file: file.to_path_buf(),
            at,
            message: message.into(),
        }
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        AppError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The file the error is about (the app folder for folder-level errors).
    pub fn file(&self) -> &std::path::Path {
        match self {
            AppError::DirNotFound { path } | AppError::NotADir { path } | AppError::Io { path, .. } => path,
            AppError::NotAnApp { dir } => dir,
            AppError::Syntax { file, .. } | AppError::Invalid { file, .. } | AppError::Cycle { file, .. } => {
                file
            }
        }
    }
}
