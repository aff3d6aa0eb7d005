//! The next step after an error, where there is an obvious one: a ref that looks like the one
//! mistyped, the command that repairs a damaged store, how to reach a store one may not write.

use std::error::Error;
use std::io::ErrorKind;

use super::error::CliError;
use super::Context;
use crate::store::StoreError;
use crate::stores::oci::{OciError, OciStore};
use crate::traits::StorageError;

/// What to do next about `error`, or `None` when its message says all there is.
pub fn next_step(error: &CliError, context: Option<&Context>) -> Option<String> {
    // A ref not found, also through the registry client (`push`).
    if let Some(OciError::RefNotFound(name)) = error.oci_error() {
        return Some(context.map_or_else(
            || "`oci-store list` shows the refs".to_string(),
            |context| ref_suggestion(context, name),
        ));
    }
    match error {
        CliError::Appc(appc) => match &**appc {
            crate::stores::appc::AppcError::ImageNotFound(key) => Some(context.map_or_else(
                || "`oci-store appc ls` lists the images".to_string(),
                |context| image_suggestion(context, key),
            )),
            _ => from_causes(error, context),
        },
        CliError::Config { .. } => Some(
            "fix that line, or point --config or $OCI_STORE_CONFIG at another file; \
             `oci-store config show` shows what is in force"
                .to_string(),
        ),
        CliError::ContentMissing { .. } => Some(damaged_store_step()),
        CliError::StoreLocked { .. } => Some(
            "retry when that process finishes, or wait longer with lock_wait in the config \
             file or $OCI_STORE_LOCK_WAIT (e.g. 5m)"
                .to_string(),
        ),
        CliError::Oci(OciError::LeaseNotFound(_)) => {
            Some("`oci-store lease ls` lists the leases".to_string())
        }
        CliError::Oci(OciError::GcLockTimeout { .. }) => Some(
            "wait for the running import or export, or give gc more time with --lock-wait \
             SECONDS"
                .to_string(),
        ),
        _ => from_causes(error, context),
    }
}

/// Hints that depend on a cause deep in the chain (store errors wrapped by a flavour, I/O).
fn from_causes(error: &CliError, context: Option<&Context>) -> Option<String> {
    let mut cause: Option<&(dyn Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(store_error) = current.downcast_ref::<StoreError>() {
            match store_error {
                StoreError::NotFound(_) => {
                    return Some("`oci-store blob ls` lists the stored blobs".to_string())
                }
                StoreError::Storage(
                    StorageError::BlobNotFound(_)
                    | StorageError::DigestMismatch { .. }
                    | StorageError::SizeMismatch { .. },
                ) => return Some(damaged_store_step()),
                _ => {}
            }
        }
        if let Some(storage_error) = current.downcast_ref::<StorageError>() {
            if matches!(storage_error, StorageError::BlobNotFound(_)) {
                return Some(damaged_store_step());
            }
        }
        if let Some(io_error) = current.downcast_ref::<std::io::Error>() {
            match io_error.kind() {
                ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => {
                    let dir = context.map_or_else(
                        || "the store directory".to_string(),
                        |c| c.store_dir().display().to_string(),
                    );
                    return Some(format!(
                        "this user may not write {dir}: give a store you own with --store DIR, \
                         or ask its owner for write access (every command, even a read, takes \
                         the store's locks)"
                    ));
                }
                ErrorKind::StorageFull => {
                    return Some(
                        "free some space: `oci-store gc` removes what no ref reaches, \
                         `oci-store du` shows where the space goes"
                            .to_string(),
                    )
                }
                _ => {}
            }
        }
        cause = current.source();
    }
    None
}

fn damaged_store_step() -> String {
    "the store's content does not match its index: run `oci-store fsck` to see what is \
     damaged, then `oci-store fsck --repair` to drop it"
        .to_string()
}

/// "did you mean `nginx:latest`?" when a stored ref is close to `wanted`; else where to look.
fn ref_suggestion(context: &Context, wanted: &str) -> String {
    let names: Vec<String> = context
        .open_existing_store()
        .ok()
        .and_then(|store| OciStore::new(&store).list_refs().ok())
        .map(|refs| refs.into_iter().map(|info| info.name).collect())
        .unwrap_or_default();
    match closest(wanted, names.iter().map(String::as_str)) {
        Some(name) => format!("did you mean `{name}`?"),
        None if names.is_empty() => "the store has no refs: `oci-store import` adds some".into(),
        None => "`oci-store list` shows the refs".to_string(),
    }
}

/// "did you mean `example.com/app`?" when a stored appc image's name is close to `wanted`
/// (what was asked may carry labels after the name: `NAME with k=v`).
fn image_suggestion(context: &Context, wanted: &str) -> String {
    let wanted = wanted.split(" with ").next().unwrap_or(wanted);
    let mut names: Vec<String> = context
        .open_existing_store()
        .ok()
        .and_then(|store| crate::stores::appc::AppcStore::new(&store).all_infos().ok())
        .map(|infos| infos.into_iter().map(|info| info.name).collect())
        .unwrap_or_default();
    names.sort();
    names.dedup();
    match closest(wanted, names.iter().map(String::as_str)) {
        Some(name) if name != wanted => format!("did you mean `{name}`?"),
        _ if names.is_empty() => {
            "the store has no appc images: `oci-store appc import` adds some".into()
        }
        _ => "`oci-store appc ls` lists the images".to_string(),
    }
}

/// The candidate most like `wanted`, when it is like it at all: the same name with a tag
/// added (`nginx` for `nginx:latest`), or a Jaro-Winkler similarity of 0.85 or more
/// (typos, a wrong tag of the right repository).
pub fn closest<'a>(wanted: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(f64, &str)> = None;
    for candidate in candidates {
        let repository = candidate.split(':').next().unwrap_or(candidate);
        let score = if repository == wanted {
            // `nginx` asked for, `nginx:latest` stored: the likeliest meaning of all.
            2.0 + f64::from(u8::from(candidate.ends_with(":latest")))
        } else {
            strsim::jaro_winkler(wanted, candidate)
        };
        if score >= 0.85 && best.is_none_or(|(best_score, _)| score > best_score) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn suggests_the_close_ref_and_nothing_for_a_stranger() {
        let refs = ["nginx:latest", "nginx:1.25", "alpine:3.19", "busybox"];
        assert_eq!(closest("nginx", refs.into_iter()), Some("nginx:latest"));
        assert_eq!(
            closest("ngnix:latest", refs.into_iter()),
            Some("nginx:latest")
        );
        assert_eq!(
            closest("alpine:3.18", refs.into_iter()),
            Some("alpine:3.19")
        );
        assert_eq!(closest("postgres", refs.into_iter()), None);
    }
}
