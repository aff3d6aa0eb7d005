//! Small durable-file helpers shared by the store layer: atomic replacement of files that other
//! tools read, and hashing while reading.

use std::fs::{File, Permissions};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::error::StoreResult;
use crate::traits::{Algorithm, Digest, Hasher};
use crate::util::fsync::fsync_dir;
use crate::util::io_context::{IoContext, IoResultExt};

/// The mode a new file for other tools is opened with, as `cp` and `touch` use: the kernel
/// masks it with the process umask (passed to `open`, never by calling `umask`, which is
/// process-global and racy between threads).
const NEW_FILE_MODE: u32 = 0o666;

/// A file being written in place of `path`, for other tools to read (`store.json`, an exported
/// layout's `index.json`, `oci-layout` and blobs, an archive): a temp file beside `path`,
/// created `0666 & !umask` like a file `cp` creates; [`AtomicFile::commit`] gives it the mode
/// of the file it replaces, if any (a layout's `index.json` made `0640` by its owner stays
/// `0640`), then fsyncs and renames it over. Dropped without a commit, the temp file is
/// removed and `path` is untouched.
pub struct AtomicFile {
    temp: tempfile::NamedTempFile,
    path: PathBuf,
}

impl AtomicFile {
    pub fn new(path: &Path) -> StoreResult<AtomicFile> {
        let dir = parent_of(path);
        let temp = tempfile::Builder::new()
            .prefix(".tmp-")
            .permissions(Permissions::from_mode(NEW_FILE_MODE))
            .tempfile_in(dir)
            .io_context("creating a temp file", dir)?;
        Ok(AtomicFile {
            temp,
            path: path.to_path_buf(),
        })
    }

    #[cfg(any(test, feature = "test-support"))]
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file_mut(&mut self) -> &mut File {
        self.temp.as_file_mut()
    }

    /// Keeps the replaced file's mode, fsyncs and renames over `path`. The directory is not
    /// fsynced: callers that replace several files in one directory sync it once, with
    /// [`fsync_dir`](crate::util::fsync::fsync_dir); [`AtomicFile::commit`] does both.
    pub fn persist(self) -> StoreResult<()> {
        let path = self.path;
        // The replaced file itself, not what a symlink there points to: the rename replaces
        // the link, so its target's mode is not the one being kept.
        if let Ok(existing) = path.symlink_metadata() {
            if existing.is_file() {
                let mode = existing.permissions().mode() & 0o7777;
                self.temp
                    .as_file()
                    .set_permissions(Permissions::from_mode(mode))
                    .io_context("keeping the mode of", &path)?;
            }
        }
        self.temp
            .as_file()
            .sync_all()
            .io_context("syncing", &path)?;
        crate::crash_point!("fsutil.atomic-file.before-rename");
        self.temp
            .persist(&path)
            .map_err(|e| IoContext::new("replacing", &path, e.error))?;
        Ok(())
    }

    /// [`AtomicFile::persist`], then fsync the directory: the new file survives a crash.
    pub fn commit(self) -> StoreResult<()> {
        let dir = parent_of(&self.path).to_path_buf();
        self.persist()?;
        crate::crash_point!("fsutil.atomic-file.before-dir-sync");
        fsync_dir(&dir).io_context("syncing directory", &dir)?;
        Ok(())
    }
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Writes `path` durably as a file for other tools (see [`AtomicFile`]): readers see the old
/// or the new file, never a half-written one.
pub fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> StoreResult<()> {
    let mut file = AtomicFile::new(path)?;
    fill(file.file_mut()).io_context("writing", path)?;
    file.commit()
}

/// Streams `reader` through a hash of `algorithm`; returns the digest and the byte count.
pub fn hash_reader(
    algorithm: Algorithm,
    reader: &mut dyn std::io::Read,
) -> std::io::Result<(Digest, u64)> {
    let mut hasher = Hasher::new(algorithm);
    let mut buffer = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    Ok((hasher.finish(), size))
}

/// Content that is not what its digest and size say, found by a [`VerifyingReader`]. Travels
/// inside the `std::io::Error` the reader returns (kind `InvalidData`), so it passes through
/// `io::copy` and writers like `tar::Builder` unchanged; [`ContentMismatch::find`] gets it back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("content of {digest} {reason}")]
pub struct ContentMismatch {
    pub digest: Digest,
    pub reason: String,
}

impl ContentMismatch {
    /// The mismatch an I/O error carries, if it came from a [`VerifyingReader`].
    pub fn find(error: &std::io::Error) -> Option<&ContentMismatch> {
        error.get_ref()?.downcast_ref::<ContentMismatch>()
    }

    fn into_io(self) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, self)
    }
}

/// Passes `inner` through while hashing and counting it, and makes its end an error unless
/// exactly `size` bytes hashing to `digest` came through: a short read is an error at the end
/// (never padding), a long one as soon as the first byte too many arrives (it is not passed
/// on). Whatever the reader feeds has seen every byte before the error, so a copy through it
/// must be discarded on error — write into a temp file, rename only after a clean end. The one
/// verifying reader of the project: export, unpack and render all read through it.
pub struct VerifyingReader<R> {
    inner: R,
    digest: Digest,
    /// `None`: any size (content known by digest alone, such as an uncompressed layer).
    size: Option<u64>,
    hasher: Option<Hasher>,
    count: u64,
}

impl<R: Read> VerifyingReader<R> {
    pub fn new(inner: R, digest: &Digest, size: u64) -> VerifyingReader<R> {
        Self::with_size(inner, digest, Some(size))
    }

    /// A reader that checks the digest only.
    pub fn of_any_size(inner: R, digest: &Digest) -> VerifyingReader<R> {
        Self::with_size(inner, digest, None)
    }

    fn with_size(inner: R, digest: &Digest, size: Option<u64>) -> VerifyingReader<R> {
        VerifyingReader {
            inner,
            digest: digest.clone(),
            size,
            hasher: Some(Hasher::new(digest.algorithm())),
            count: 0,
        }
    }

    /// Reads what the consumer left unread (a tar reader stops at its end-of-archive blocks;
    /// the padding after them belongs to the blob too) and checks the whole; returns the size.
    pub fn finish(mut self) -> std::io::Result<u64> {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match self.read(&mut buffer) {
                Ok(0) => return Ok(self.count),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn mismatch(&self, reason: String) -> std::io::Error {
        ContentMismatch {
            digest: self.digest.clone(),
            reason,
        }
        .into_io()
    }

    /// At the end of `inner`: the count and the hash must match.
    fn check_end(&mut self) -> std::io::Result<()> {
        if let Some(size) = self.size.filter(|size| *size != self.count) {
            return Err(self.mismatch(format!("ends after {} bytes, {size} expected", self.count)));
        }
        // Taken once: a second read at the end after a success returns end again.
        if let Some(hasher) = self.hasher.take() {
            let actual = hasher.finish();
            if actual != self.digest {
                return Err(self.mismatch(format!("hashes to {actual}")));
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        if buffer.is_empty() {
            return Ok(0);
        }
        // At most one byte past the expected size, so an overlong blob is caught without
        // reading (or passing on) more of it.
        let limit = match self.size {
            Some(size) => {
                let room = (size - self.count.min(size)).saturating_add(1);
                buffer
                    .len()
                    .min(usize::try_from(room).unwrap_or(usize::MAX))
            }
            None => buffer.len(),
        };
        let read = self.inner.read(&mut buffer[..limit])?;
        if read == 0 {
            self.check_end()?;
            return Ok(0);
        }
        self.count += read as u64;
        if let Some(size) = self.size.filter(|size| self.count > *size) {
            return Err(self.mismatch(format!("is longer than the {size} bytes expected")));
        }
        if let Some(hasher) = self.hasher.as_mut() {
            hasher.update(&buffer[..read]);
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn copy(content: &[u8], digest: &Digest, size: u64) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        std::io::copy(&mut VerifyingReader::new(content, digest, size), &mut out)?;
        Ok(out)
    }

    #[test]
    fn verifying_reader_passes_exact_content_and_refuses_any_other() {
        let content = b"some layer content".as_slice();
        let digest = Digest::of_bytes(Algorithm::Sha256, content);
        let size = content.len() as u64;
        assert_eq!(copy(content, &digest, size).unwrap(), content);

        let mut flipped = content.to_vec();
        flipped[3] ^= 1;
        let error = copy(&flipped, &digest, size).unwrap_err();
        let mismatch = ContentMismatch::find(&error).expect("a mismatch");
        assert_eq!(mismatch.digest, digest);
        assert!(mismatch.reason.contains("hashes to"), "{mismatch}");

        let error = copy(&content[..5], &digest, size).unwrap_err();
        let mismatch = ContentMismatch::find(&error).expect("a mismatch");
        assert!(mismatch.reason.contains("ends after 5 bytes"), "{mismatch}");

        let longer = [content, b"!"].concat();
        let error = copy(&longer, &digest, size).unwrap_err();
        assert!(ContentMismatch::find(&error).is_some(), "{error}");
        let empty = Digest::of_bytes(Algorithm::Sha256, b"");
        assert!(copy(b"x", &empty, 0).is_err(), "a byte past an empty blob");
        assert_eq!(copy(b"", &empty, 0).unwrap(), b"");
    }

    #[test]
    fn atomic_file_keeps_the_mode_of_the_file_it_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.json");
        std::fs::write(&path, b"old").unwrap();
        std::fs::set_permissions(&path, Permissions::from_mode(0o640)).unwrap();
        write_atomically(&path, |file| std::io::Write::write_all(file, b"new")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let mode = path.metadata().unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file left");
    }
}
