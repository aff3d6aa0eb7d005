//! What the applier reads from a tar header: kind, mode, time, owner, link name, device
//! numbers and (when asked) extended attributes. Entry types a layer may not hold are refused
//! here, before anything is written.

use std::io::{self, Read};

use super::error::{RootfsError, RootfsResult};
use super::options::EntryKind;

/// The per-entry metadata the applier uses.
pub struct EntryMeta {
    pub kind: EntryKind,
    pub mode: u32,
    pub mtime: u64,
    pub uid: u64,
    pub gid: u64,
    pub link_name: Option<Vec<u8>>,
    pub device: (u32, u32),
    pub xattrs: Vec<(String, Vec<u8>)>,
}

/// Reads what the applier needs from a header; `None` for entries that are not files.
pub fn read_meta<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    name: &str,
    with_xattrs: bool,
) -> RootfsResult<Option<EntryMeta>> {
    use tar::EntryType;
    let header = entry.header();
    let kind = match header.entry_type() {
        EntryType::Regular | EntryType::Continuous => EntryKind::File,
        EntryType::Directory => EntryKind::Directory,
        EntryType::Symlink => EntryKind::Symlink,
        EntryType::Link => EntryKind::HardLink,
        EntryType::Fifo => EntryKind::Fifo,
        EntryType::Char => EntryKind::CharDevice,
        EntryType::Block => EntryKind::BlockDevice,
        EntryType::XGlobalHeader => return Ok(None),
        other => {
            return Err(RootfsError::refused(
                name,
                format!(
                    "entry type {:?} is not one a layer may hold",
                    other.as_byte() as char
                ),
            ))
        }
    };
    let bad_header =
        |field: &str, e: io::Error| RootfsError::entry(name, format!("header {field}"), e);
    let mode = header.mode().map_err(|e| bad_header("mode", e))? & 0o7777;
    let mtime = header.mtime().map_err(|e| bad_header("mtime", e))?;
    let uid = header.uid().map_err(|e| bad_header("uid", e))?;
    let gid = header.gid().map_err(|e| bad_header("gid", e))?;
    let device = match kind {
        EntryKind::CharDevice | EntryKind::BlockDevice => (
            header
                .device_major()
                .map_err(|e| bad_header("device major", e))?
                .unwrap_or(0),
            header
                .device_minor()
                .map_err(|e| bad_header("device minor", e))?
                .unwrap_or(0),
        ),
        _ => (0, 0),
    };
    let link_name = entry.link_name_bytes().map(|name| name.into_owned());
    let mut xattrs = Vec::new();
    if with_xattrs {
        if let Some(extensions) = entry.pax_extensions().map_err(|e| bad_header("PAX", e))? {
            for extension in extensions {
                let extension = extension.map_err(|e| bad_header("PAX", e))?;
                if let Ok(Some(key)) = extension.key().map(|k| k.strip_prefix("SCHILY.xattr.")) {
                    xattrs.push((key.to_string(), extension.value_bytes().to_vec()));
                }
            }
        }
    }
    Ok(Some(EntryMeta {
        kind,
        mode,
        mtime,
        uid,
        gid,
        link_name,
        device,
        xattrs,
    }))
}
