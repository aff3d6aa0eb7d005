//! Import, keys, lookup, image info and last-used time.

use std::io::Read;

use oci_store::stores::appc::{AppcError, SortKey};
use oci_store::traits::BlobStore;

use super::support::*;
use crate::base_store::StoreFixture;
use crate::check::TestResult;
use crate::{ensure, ensure_eq, fail, Context};

pub fn every_compression_is_one_image_stored_once(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let appc = Appc::new(&store);
    let tar = simple_image("example.com/app", &[("version", "1.0.0")], "hello");
    let want = image_id_of(&tar);
    let mut first_import_time = None;
    for (index, (compression, compress)) in compressions().into_iter().enumerate() {
        let report = import(&appc, &compress(&tar), compression)?;
        ensure_eq!(
            report.id,
            want,
            "{compression}: the ID is the sha512 of the uncompressed tar"
        );
        ensure_eq!(
            report.already_present,
            index > 0,
            "{compression}: already present"
        );
        ensure_eq!(report.size, tar.len() as u64, "{compression}: size");
        let info = appc.info(&want).context("info")?;
        let time = *first_import_time.get_or_insert(info.import_time_ms);
        ensure_eq!(
            info.import_time_ms,
            time,
            "{compression}: the first import time stands"
        );
    }
    ensure_eq!(
        store.list(None).context("list")?.len(),
        1,
        "one blob for four imports"
    );
    ensure_eq!(appc.list(SortKey::Id).context("ls")?.len(), 1, "one image");
    // What the store keeps is the tar itself.
    let digest = appc.resolve_key(&want).context("resolve")?;
    let mut stored = Vec::new();
    store
        .read(&digest)
        .context("read")?
        .read_to_end(&mut stored)
        .context("read")?;
    ensure!(stored == tar, "the stored blob is not the uncompressed tar");
    ensure!(
        store
            .extra_types(&digest)
            .context("types")?
            .contains(&"owner.appc".to_string()),
        "the image blob has no appc owner mark"
    );
    Ok(())
}

pub fn keys_full_short_prefix_and_ambiguous(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let appc = Appc::new(&store);
    // Two images whose IDs share their first hex byte (found by trying contents).
    let mut by_first_byte: std::collections::HashMap<String, Vec<u8>> = Default::default();
    let (a, b) = (0..2000)
        .find_map(|n| {
            let tar = simple_image("example.com/app", &[], &format!("content {n}"));
            let id = image_id_of(&tar);
            let key = id[7..9].to_string();
            by_first_byte
                .insert(key, tar.clone())
                .map(|earlier| (earlier, tar))
        })
        .ok_or("no two IDs share a first byte")?;
    let (id_a, id_b) = (import(&appc, &a, "a")?.id, import(&appc, &b, "b")?.id);
    let digest_a = appc.resolve_key(&id_a).context("full ID")?;
    ensure_eq!(digest_a.dashed(), id_a, "full ID");
    ensure_eq!(
        appc.resolve_key(&id_a[..71]).context("71 chars")?,
        digest_a,
        "rkt's 71-char form"
    );
    ensure_eq!(
        appc.resolve_key(&id_a.replacen('-', ":", 1))
            .context("colon")?,
        digest_a,
        "sha512: form"
    );
    let common = id_a
        .chars()
        .zip(id_b.chars())
        .take_while(|(x, y)| x == y)
        .count();
    ensure!(common >= 9, "the IDs share {common} characters");
    ensure_eq!(
        appc.resolve_key(&id_a[..=common])
            .context("unique prefix")?,
        digest_a,
        "unique prefix"
    );
    match appc.resolve_key(&id_a[..9]) {
        Err(AppcError::AmbiguousKey { candidates, .. }) => {
            ensure!(
                candidates.contains(&id_a) && candidates.contains(&id_b),
                "candidates {candidates:?}"
            );
        }
        other => fail!("sha512- and 2 hex: want ambiguous, got {other:?}"),
    }
    for bad in ["sha512-a", "sha512-XY", "sha512-"] {
        ensure!(
            matches!(appc.resolve_key(bad), Err(AppcError::InvalidKey { .. })),
            "{bad} was accepted"
        );
    }
    let absent = format!("sha512-{}", "0".repeat(128));
    ensure!(
        matches!(appc.resolve_key(&absent), Err(AppcError::ImageNotFound(_))),
        "an absent ID resolved"
    );
    Ok(())
}

pub fn lookup_by_name_labels_latest_and_newest(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let appc = Appc::new(&store);
    let labels =
        |version: &'static str| vec![("version", version), ("os", "linux"), ("arch", "amd64")];
    let v1 = import(
        &appc,
        &simple_image("example.com/app", &labels("1.0.0"), "1"),
        "v1",
    )?
    .id;
    let v2 = import_latest(
        &appc,
        &simple_image("example.com/app", &labels("2.0.0"), "2"),
        "v2",
    )?
    .id;
    std::thread::sleep(std::time::Duration::from_millis(5));
    let v3 = import(
        &appc,
        &simple_image("example.com/app", &labels("3.0.0"), "3"),
        "v3",
    )?
    .id;
    let arm = import(
        &appc,
        &simple_image(
            "example.com/app",
            &[("version", "4.0.0"), ("os", "linux"), ("arch", "aarch64")],
            "4",
        ),
        "arm",
    )?
    .id;
    let get = |asked: &[(&str, &str)]| {
        let asked: Vec<(String, String)> = asked
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        appc.find("example.com/app", &asked).map(|info| info.id)
    };
    ensure_eq!(
        get(&[]).context("no labels")?,
        v2,
        "without a version, latest wins"
    );
    ensure_eq!(
        get(&[("version", "3.0.0")]).context("v3")?,
        v3,
        "asked version"
    );
    ensure_eq!(
        get(&[("version", "1.0.0")]).context("v1")?,
        v1,
        "asked version"
    );
    ensure_eq!(
        get(&[("arch", "aarch64")]).context("arm")?,
        arm,
        "every asked label"
    );
    ensure!(
        matches!(
            get(&[("version", "2.0.0"), ("arch", "aarch64")]),
            Err(AppcError::ImageNotFound(_))
        ),
        "labels that no one image has all of matched"
    );
    // Ties (no latest among matches): newest import.
    ensure_eq!(
        get(&[("arch", "amd64"), ("os", "linux")]).context("amd64")?,
        v2,
        "latest among matches"
    );
    let newer = import(
        &appc,
        &simple_image("example.com/other", &[], "a"),
        "other a",
    )?
    .id;
    let _ = newer;
    std::thread::sleep(std::time::Duration::from_millis(5));
    let newest = import(
        &appc,
        &simple_image("example.com/other", &[], "b"),
        "other b",
    )?
    .id;
    ensure_eq!(
        appc.find("example.com/other", &[]).context("other")?.id,
        newest,
        "ties go to the newest import"
    );
    ensure_eq!(
        appc.resolve_key("example.com/app")
            .context("name key")?
            .dashed(),
        v2,
        "a name as key"
    );
    Ok(())
}

pub fn info_ls_and_get_read_no_tars(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let appc = Appc::new(&store);
    let tar = simple_image("example.com/app", &[("version", "1.2.3")], "x");
    let id = import(&appc, &tar, "image")?.id;
    let digest = appc.resolve_key(&id).context("resolve")?;
    // Take the content away behind the index's back: listing and lookup must not need it.
    store
        .blob_store()
        .delete(&digest)
        .context("deleting the content")?;
    let info = appc.info(&id).context("info without content")?;
    ensure_eq!(info.name, "example.com/app", "name");
    ensure_eq!(info.version(), Some("1.2.3"), "version");
    ensure_eq!(info.size, tar.len() as u64, "size");
    ensure_eq!(info.manifest["acKind"], "ImageManifest", "parsed manifest");
    ensure!(info.import_time_ms > 0, "import time");
    let listed = appc.list(SortKey::Name).context("ls without content")?;
    ensure_eq!(listed.len(), 1, "ls");
    ensure_eq!(
        appc.find("example.com/app", &[]).context("get")?.id,
        id,
        "get"
    );
    Ok(())
}

pub fn last_used_follows_export_and_run_not_lookup(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    // Every use written, not one per interval: each is to be seen.
    store.set_last_used_interval(std::time::Duration::ZERO);
    let appc = Appc::new(&store);
    let id = import(&appc, &simple_image("example.com/app", &[], "x"), "image")?.id;
    ensure_eq!(
        appc.info(&id).context("info")?.last_used_ms,
        None,
        "unused after import"
    );
    appc.find("example.com/app", &[]).context("find")?;
    ensure_eq!(
        appc.info(&id).context("info")?.last_used_ms,
        None,
        "a plain lookup is no use"
    );
    let ran = appc
        .get_to_run("example.com/app", &[])
        .context("get to run")?;
    let first = ran
        .last_used_ms
        .ok_or("looking up to run recorded no use")?;
    std::thread::sleep(std::time::Duration::from_millis(5));
    let dir = tempfile::tempdir().context("scratch")?;
    appc.export(&id, &dir.path().join("x.aci"), false)
        .context("export")?;
    let second = appc.info(&id).context("info")?.last_used_ms.unwrap_or(0);
    ensure!(
        second > first,
        "export did not record a use ({second} <= {first})"
    );
    // One small item, not a rewrite of the info.
    let digest = appc.resolve_key(&id).context("resolve")?;
    let item = store
        .get_extra(&digest, oci_store::store::LAST_USED_TYPE)
        .context("last used")?
        .ok_or("no last-used item")?;
    ensure!(
        item.len() < 32,
        "the last-used item is {} bytes",
        item.len()
    );
    Ok(())
}

pub fn export_gives_the_same_bytes_and_id(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let appc = Appc::new(&store);
    let tar = simple_image("example.com/app", &[], "x");
    let id = import(&appc, &gzip(&tar), "gzip image")?.id;
    let dir = tempfile::tempdir().context("scratch")?;
    let plain = dir.path().join("plain.aci");
    appc.export(&id, &plain, false).context("export")?;
    ensure!(
        std::fs::read(&plain).context("read")? == tar,
        "plain export differs from the tar"
    );
    let gz = dir.path().join("image.aci.gz");
    let report = appc.export(&id, &gz, true).context("export --gzip")?;
    ensure_eq!(report.id, id, "report id");
    let mut unpacked = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&gz).context("open")?)
        .read_to_end(&mut unpacked)
        .context("gunzip")?;
    ensure!(
        unpacked == tar,
        "gzip export does not decompress to the tar"
    );
    // Damaged content is caught on the way out, and no file is left. Content is damaged in
    // place where the blob backend keeps files; elsewhere it is taken away.
    let digest = appc.resolve_key(&id).context("resolve")?;
    let blob_file = store.dir().join("blobs/sha512").join(digest.hex());
    let damaged_in_place = blob_file.exists();
    if damaged_in_place {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&blob_file, std::fs::Permissions::from_mode(0o644))
            .context("chmod")?;
        let mut bytes = tar.clone();
        bytes[600] ^= 1;
        std::fs::write(&blob_file, bytes).context("damaging the blob")?;
    } else {
        store
            .blob_store()
            .delete(&digest)
            .context("delete content")?;
    }
    let before = std::fs::read_dir(dir.path()).context("ls")?.count();
    let bad = appc.export(&id, &dir.path().join("bad.aci"), false);
    if damaged_in_place {
        ensure!(
            matches!(bad, Err(AppcError::ContentMismatch { .. })),
            "exporting damaged content: {bad:?}"
        );
    } else {
        ensure!(bad.is_err(), "exporting missing content succeeded");
    }
    ensure_eq!(
        std::fs::read_dir(dir.path()).context("ls")?.count(),
        before,
        "a failed export left a file"
    );
    Ok(())
}

pub fn concurrent_imports_of_one_image_store_it_once(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let tar = simple_image("example.com/app", &[], "shared");
    let forms: Vec<Vec<u8>> = compressions().into_iter().map(|(_, c)| c(&tar)).collect();
    let reports: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = forms
            .iter()
            .chain(forms.iter())
            .map(|bytes| {
                let store = &store;
                scope.spawn(move || {
                    Appc::new(store).import_reader(&bytes[..], "thread", &Default::default())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("no panic"))
            .collect()
    });
    let mut fresh = 0;
    for report in reports {
        let report = report.context("concurrent import")?;
        ensure_eq!(report.id, image_id_of(&tar), "id");
        if !report.already_present {
            fresh += 1;
        }
    }
    ensure_eq!(fresh, 1, "imports that wrote the image info");
    ensure_eq!(store.list(None).context("list")?.len(), 1, "blobs");
    Ok(())
}
