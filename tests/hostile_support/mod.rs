//! The hostile corpus (issue 10): generators of bad inputs (one function per input, each
//! returning a [`Hostile`]: where the input is and what its refusal must name) and the harness
//! that feeds one to a store that already holds an OCI image, an ACI, a user's blob with extra
//! data and a key/value entry, then checks that the refusal is clear, came within a bounded
//! time (and, through the CLI, a bounded peak RSS), and that the store is unchanged: its full
//! [`StoreDump`](oci_store::store::StoreDump) and every file of its directory outside the
//! metadata databases, and nothing appeared outside the store.
//!
//! Tar members are written with the archive tests' [`RawTar`], which writes names, links and
//! entry types as given.

#![allow(dead_code)] // each test file uses a different part of this

pub mod acis;
pub mod archives;
pub mod bombs;
pub mod catalogue;
pub mod harness;
pub mod header_bombs;
pub mod layouts;

#[path = "../oci_archive_support/mod.rs"]
pub mod raw_tar;

use std::path::{Path, PathBuf};

pub use raw_tar::RawTar;

/// What kind of input a case is, and so which import runs it.
#[derive(Clone, Debug)]
pub enum Input {
    /// An image layout directory or an `oci-archive` file: `import_layout` / `oci-store import`.
    Oci(PathBuf),
    /// An ACI file: `AppcStore::import_file` / `oci-store appc import`.
    Aci(PathBuf),
    /// An image layout that imports (its layers are not read then) and whose image
    /// `reference` must then be refused by `OciStore::unpack` / `oci-store unpack`.
    Unpack { layout: PathBuf, reference: String },
}

/// One bad input and what its refusal must say.
#[derive(Clone, Debug)]
pub struct Hostile {
    pub input: Input,
    /// Every one of these must appear in the error message.
    pub names: Vec<String>,
    /// Archive limits for the import (`None`: the defaults).
    pub max_archive_entries: Option<u64>,
    pub max_archive_bytes: Option<u64>,
    /// Highest peak RSS through the CLI (`None`: the harness's default).
    pub max_rss_kib: Option<i64>,
}

impl Hostile {
    pub fn oci(path: impl AsRef<Path>, names: &[&str]) -> Hostile {
        Hostile {
            input: Input::Oci(path.as_ref().to_path_buf()),
            names: names.iter().map(std::string::ToString::to_string).collect(),
            max_archive_entries: None,
            max_archive_bytes: None,
            max_rss_kib: None,
        }
    }

    pub fn aci(path: impl AsRef<Path>, names: &[&str]) -> Hostile {
        Hostile {
            input: Input::Aci(path.as_ref().to_path_buf()),
            names: names.iter().map(std::string::ToString::to_string).collect(),
            max_archive_entries: None,
            max_archive_bytes: None,
            max_rss_kib: None,
        }
    }

    pub fn unpack(layout: impl AsRef<Path>, reference: &str, names: &[&str]) -> Hostile {
        Hostile {
            input: Input::Unpack {
                layout: layout.as_ref().to_path_buf(),
                reference: reference.to_string(),
            },
            names: names.iter().map(std::string::ToString::to_string).collect(),
            max_archive_entries: None,
            max_archive_bytes: None,
            max_rss_kib: None,
        }
    }

    pub fn with_max_rss_kib(mut self, limit: i64) -> Hostile {
        self.max_rss_kib = Some(limit);
        self
    }

    pub fn naming(mut self, more: impl ToString) -> Hostile {
        self.names.push(more.to_string());
        self
    }

    pub fn with_entry_limit(mut self, limit: u64) -> Hostile {
        self.max_archive_entries = Some(limit);
        self
    }

    pub fn with_byte_limit(mut self, limit: u64) -> Hostile {
        self.max_archive_bytes = Some(limit);
        self
    }
}

/// A generator: builds its input under the given (empty, existing) directory.
pub type Build = fn(&Path) -> Hostile;
