//! Remote-cache records, dependencies, removal, GC by age, and the appc and OCI flavours in
//! one store.

use oci_store::store::Holder;
use oci_store::store::WriteOptions;
use oci_store::stores::appc::{AppcError, AppcGcOptions, RemoteDecision, RemoteRecord};
use oci_store::stores::oci::OciStore;
use oci_store::traits::Algorithm;
use serde_json::json;

use super::support::*;
use crate::base_store::StoreFixture;
use crate::check::TestResult;
use crate::{ensure, ensure_eq, fail, Context};

const HOUR_MS: i64 = 3600 * 1000;

fn record(
    url: &str,
    image: &str,
    etag: Option<&str>,
    max_age_secs: u64,
    at_ms: i64,
) -> RemoteRecord {
    RemoteRecord {
        aci_url: url.to_string(),
        signature_url: Some(format!("{url}.asc")),
        etag: etag.map(str::to_string),
        max_age_secs,
        download_time_ms: at_ms,
        image: image.to_string(),
    }
}

pub fn remote_records_decide_and_go_with_their_image(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let appc = Appc::new(&store);
    let id = import(&appc, &simple_image("example.com/app", &[], "x"), "image")?.id;
    let now = oci_store::stores::appc::now_unix_ms();
    let url = "https://example.com/app.aci";
    appc.set_remote(&record(url, &id[..20], Some("\"v1\""), 60, now))
        .context("set")?;
    let stored = appc.get_remote(url).context("get")?.ok_or("no record")?;
    ensure_eq!(stored.image, id, "the record names the full image ID");
    ensure_eq!(
        appc.remote_decision(url, now + 1000).context("decide")?,
        RemoteDecision::UseCache { image: id.clone() },
        "within max age"
    );
    ensure_eq!(
        appc.remote_decision(url, now + 61_000).context("decide")?,
        RemoteDecision::Revalidate {
            etag: "\"v1\"".to_string(),
            image: id.clone()
        },
        "past max age, with an ETag"
    );
    // A 304: fresh again from now (rkt kept the old time and revalidated forever).
    let refreshed = appc.remote_not_modified(url, None).context("304")?;
    ensure!(
        refreshed.download_time_ms >= now,
        "the download time was not refreshed"
    );
    let later = refreshed.download_time_ms + 30_000;
    ensure_eq!(
        appc.remote_decision(url, later).context("decide")?,
        RemoteDecision::UseCache { image: id.clone() },
        "after a 304 the cache is fresh again"
    );
    let no_etag = "https://example.com/plain.aci";
    appc.set_remote(&record(no_etag, &id, None, 0, now))
        .context("set")?;
    ensure_eq!(
        appc.remote_decision(no_etag, now).context("decide")?,
        RemoteDecision::Fetch,
        "no ETag, max age 0"
    );
    ensure_eq!(
        appc.remote_decision("https://example.com/unknown.aci", now)
            .context("decide")?,
        RemoteDecision::Fetch,
        "no record"
    );
    ensure_eq!(appc.list_remotes().context("ls")?.len(), 2, "records");
    ensure!(
        appc.remove_remote(no_etag).context("rm")?,
        "rm found nothing"
    );
    ensure!(
        appc.set_remote(&record(
            url,
            &format!("sha512-{}", "0".repeat(128)),
            None,
            1,
            now
        ))
        .is_err(),
        "a record for an absent image was accepted"
    );
    let removed = appc.remove(&id).context("rm image")?;
    ensure_eq!(
        removed.remote_records,
        vec![url.to_string()],
        "records removed with the image"
    );
    ensure_eq!(
        appc.list_remotes().context("ls")?.len(),
        0,
        "records left after the image went"
    );
    Ok(())
}

fn with_dependencies(name: &str, deps: serde_json::Value, content: &str) -> Vec<u8> {
    let mut m = manifest(name, &[("version", "1.0.0")]);
    m["dependencies"] = deps;
    Aci::new(&m)
        .dir("rootfs/etc")
        .file("rootfs/etc/content", content.as_bytes())
        .tar()
}

pub fn dependency_check_is_recursive_cycle_safe_and_names_what_is_missing(
    fixture: &StoreFixture,
) -> TestResult {
    let store = fixture.open()?;
    let appc = Appc::new(&store);
    let base = import(
        &appc,
        &simple_image("example.com/base", &[("version", "1.0.0")], "base"),
        "base",
    )?
    .id;
    let middle = import(
        &appc,
        &with_dependencies(
            "example.com/middle",
            json!([{"imageName": "example.com/base", "imageID": base}]),
            "m",
        ),
        "middle",
    )?
    .id;
    let top = import(
        &appc,
        &with_dependencies(
            "example.com/top",
            json!([{"imageName": "example.com/middle", "labels": [{"name": "version", "value": "1.0.0"}]}]),
            "t",
        ),
        "top",
    )?
    .id;
    let report = appc.check(&top).context("check top")?;
    ensure!(report.is_complete(), "missing: {:?}", report.missing);
    ensure_eq!(
        report.resolved,
        vec![top.clone(), middle, base],
        "resolved, upper first"
    );

    // A cycle: a -> b -> a (by name), ends.
    let a = import(
        &appc,
        &with_dependencies(
            "example.com/a",
            json!([{"imageName": "example.com/b"}]),
            "a",
        ),
        "a",
    )?
    .id;
    import(
        &appc,
        &with_dependencies(
            "example.com/b",
            json!([{"imageName": "example.com/a"}]),
            "b",
        ),
        "b",
    )?;
    let cycle = appc.check(&a).context("check a cycle")?;
    ensure!(
        cycle.is_complete() && cycle.resolved.len() == 2,
        "cycle: {cycle:?}"
    );

    // Missing: by name, by labels that no image has, by an ID not stored.
    let absent_id = format!("sha512-{}", "ab".repeat(64));
    let needy = import(
        &appc,
        &with_dependencies(
            "example.com/needy",
            json!([
                {"imageName": "example.com/nowhere"},
                {"imageName": "example.com/base", "labels": [{"name": "version", "value": "9.9.9"}]},
                {"imageName": "example.com/base", "imageID": absent_id},
                {"imageName": "example.com/base"},
            ]),
            "n",
        ),
        "needy",
    )?
    .id;
    let report = appc.check(&needy).context("check needy")?;
    let missing: Vec<String> = report.missing.iter().map(ToString::to_string).collect();
    ensure_eq!(missing.len(), 3, "missing {missing:?}");
    ensure!(missing[0].starts_with("example.com/nowhere"), "{missing:?}");
    ensure!(missing[1].contains("version=9.9.9"), "{missing:?}");
    ensure!(missing[2].contains(&absent_id), "{missing:?}");
    ensure!(
        missing.iter().all(|m| m.contains("example.com/needy")),
        "{missing:?}"
    );
    Ok(())
}

pub fn remove_leaves_the_store_as_before(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let appc = Appc::new(&store);
    let before = store.dump().context("dump")?;
    let id = import(&appc, &simple_image("example.com/app", &[], "x"), "image")?.id;
    let digest = appc.resolve_key(&id).context("resolve")?;
    appc.touch(&digest).context("touch")?;
    appc.set_remote(&record("https://e.com/a.aci", &id, None, 1, 0))
        .context("set")?;
    let report = appc.remove(&id[..20]).context("rm")?;
    ensure!(report.deleted, "the blob stayed");
    ensure_eq!(
        store.dump().context("dump")?,
        before,
        "rm left something behind"
    );
    ensure!(
        matches!(appc.remove(&id), Err(AppcError::ImageNotFound(_))),
        "a second rm found the image"
    );
    Ok(())
}

pub fn gc_by_age_keeps_recent_per_name_and_dependencies(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let appc = Appc::new(&store);
    let base = import(
        &appc,
        &simple_image("example.com/base", &[], "base"),
        "base",
    )?
    .id;
    let old1 = import(
        &appc,
        &simple_image("example.com/app", &[("version", "1.0.0")], "1"),
        "v1",
    )?
    .id;
    let old2 = import(
        &appc,
        &simple_image("example.com/app", &[("version", "2.0.0")], "2"),
        "v2",
    )?
    .id;
    let user = import(
        &appc,
        &with_dependencies(
            "example.com/user",
            json!([{"imageName": "example.com/base"}]),
            "u",
        ),
        "user",
    )?
    .id;
    let lonely = import(
        &appc,
        &simple_image("example.com/lonely", &[], "l"),
        "lonely",
    )?
    .id;
    appc.set_remote(&record("https://e.com/lonely.aci", &lonely, None, 1, 0))
        .context("set")?;
    // `user` and v2 are used after `between`; everything else was last active before it.
    std::thread::sleep(std::time::Duration::from_millis(5));
    let between = oci_store::stores::appc::now_unix_ms();
    std::thread::sleep(std::time::Duration::from_millis(5));
    for id in [&user, &old2] {
        appc.touch(&appc.resolve_key(id).context("resolve")?)
            .context("touch")?;
    }

    // Nothing is older than a day.
    let report = appc.gc(&AppcGcOptions::default()).context("gc")?;
    ensure!(report.removed.is_empty(), "a recent image went: {report:?}");

    // A dry run an hour later with 1 kept per name changes nothing.
    let later = Some(oci_store::stores::appc::now_unix_ms() + HOUR_MS);
    let options = AppcGcOptions {
        grace_period_ms: HOUR_MS / 2,
        keep_per_name: Some(1),
        dry_run: true,
        now_ms: later,
    };
    let before = store.dump().context("dump")?;
    let dry = appc.gc(&options).context("dry gc")?;
    ensure_eq!(
        store.dump().context("dump")?,
        before,
        "a dry run changed the store"
    );
    let dry_ids: Vec<&str> = dry.removed.iter().map(|r| r.id.as_str()).collect();
    ensure_eq!(dry_ids, vec![old1.as_str()], "dry run: v1 only (v2 is kept per name, base is a dependency of user, user and lonely each kept per name)");
    ensure_eq!(
        dry.kept_as_dependency,
        Vec::<String>::new(),
        "base is kept per name itself"
    );

    // Without keep-per-name, an hour after `between` with an hour's grace: user and v2 (used
    // after `between`) stay, and base as user's dependency; the rest goes.
    let options = AppcGcOptions {
        grace_period_ms: HOUR_MS,
        keep_per_name: None,
        dry_run: false,
        now_ms: Some(between + HOUR_MS),
    };
    let report = appc.gc(&options).context("gc")?;
    let removed: Vec<&str> = report.removed.iter().map(|r| r.id.as_str()).collect();
    ensure_eq!(
        removed,
        vec![old1.as_str(), lonely.as_str()],
        "removed, oldest first"
    );
    ensure_eq!(
        report.kept_as_dependency,
        vec![base.clone()],
        "kept as a dependency"
    );
    let freed: u64 = report.removed.iter().map(|r| r.size).sum();
    ensure_eq!(report.freed_bytes, freed, "freed bytes");
    ensure_eq!(
        report.removed[1].remote_records.len(),
        1,
        "lonely's remote record went with it"
    );
    ensure_eq!(
        appc.list_remotes().context("ls")?.len(),
        0,
        "remote records left"
    );
    for gone in [&old1, &lonely] {
        ensure!(appc.resolve_key(gone).is_err(), "{gone} still resolves");
    }
    for kept in [&base, &old2, &user] {
        appc.resolve_key(kept).context("a kept image")?;
    }
    Ok(())
}

pub fn flavours_share_one_store_and_never_collect_each_other(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let appc = Appc::new(&store);
    let oci = OciStore::new(&store);
    // An OCI blob, held by the OCI flavour, with no ref: the OCI GC's to take, never appc's.
    let oci_blob = store
        .write(
            &b"an oci layer"[..],
            &WriteOptions {
                holder: Some(Holder::flavour("oci").clone()),
                ..Default::default()
            },
        )
        .context("oci blob")?;
    // An appc image whose very tar the OCI flavour also holds (as a sha512 blob).
    let shared_tar = simple_image("example.com/shared", &[], "shared");
    let shared_digest = oci_store::Digest::of_bytes(Algorithm::Sha512, &shared_tar);
    store
        .write(
            &shared_tar[..],
            &WriteOptions {
                holder: Some(Holder::flavour("oci").clone()),
                expected_digest: Some(shared_digest.clone()),
                ..Default::default()
            },
        )
        .context("oci copy of the tar")?;
    let shared = import(&appc, &shared_tar, "shared")?.id;
    let only_appc = import(
        &appc,
        &simple_image("example.com/alone", &[], "alone"),
        "alone",
    )?
    .id;

    // The OCI GC (no refs) keeps both appc images, drops only its own mark on the shared one.
    oci.gc(false).context("oci gc")?;
    for id in [&shared, &only_appc] {
        appc.info(id).context("an appc image after the OCI GC")?;
    }
    ensure!(
        !store.contains(&oci_blob.digest).context("contains")?,
        "the OCI GC kept its own garbage"
    );

    // Again, with the OCI holding: the appc GC releases, the OCI copy stays.
    let oci_blob = store
        .write(
            &b"an oci layer again"[..],
            &WriteOptions {
                holder: Some(Holder::flavour("oci").clone()),
                ..Default::default()
            },
        )
        .context("oci blob")?;
    store
        .write(
            &shared_tar[..],
            &WriteOptions {
                holder: Some(Holder::flavour("oci").clone()),
                expected_digest: Some(shared_digest.clone()),
                ..Default::default()
            },
        )
        .context("oci mark again")?;
    let report = appc
        .gc(&AppcGcOptions {
            grace_period_ms: 0,
            now_ms: Some(oci_store::stores::appc::now_unix_ms() + 1000),
            ..Default::default()
        })
        .context("appc gc")?;
    ensure_eq!(
        report.removed.len(),
        2,
        "appc gc removed {:?}",
        report.removed
    );
    let shared_removal = report
        .removed
        .iter()
        .find(|r| r.id == shared)
        .ok_or("shared not removed")?;
    ensure!(
        !shared_removal.deleted,
        "the appc GC deleted a blob the OCI flavour holds"
    );
    ensure!(
        store.contains(&shared_digest).context("contains")?,
        "the shared tar is gone"
    );
    ensure!(
        store.contains(&oci_blob.digest).context("contains")?,
        "the appc GC removed an OCI blob"
    );
    ensure!(
        matches!(appc.info(&shared), Err(AppcError::ImageNotFound(_))),
        "the released image is still an appc image"
    );
    ensure_eq!(
        report.freed_bytes,
        report
            .removed
            .iter()
            .filter(|r| r.deleted)
            .map(|r| r.size)
            .sum::<u64>(),
        "freed"
    );
    match appc.resolve_key(&only_appc) {
        Err(AppcError::ImageNotFound(_)) => {}
        other => fail!("alone after gc: {other:?}"),
    }
    Ok(())
}

/// Importers and removals race a GC that keeps nothing (grace 0): whatever the interleaving,
/// every image is whole or gone (no blob held by appc without info, no info without its
/// blob), and the base store's fsck finds nothing wrong.
pub fn gc_racing_imports_leaves_whole_images_or_none(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let errors: Vec<String> = std::thread::scope(|scope| {
        let gc = scope.spawn(|| -> Result<u64, String> {
            let appc = Appc::new(&store);
            let mut runs = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                appc.gc(&AppcGcOptions {
                    grace_period_ms: 0,
                    now_ms: Some(oci_store::stores::appc::now_unix_ms() + 1000),
                    ..Default::default()
                })
                .context("gc")?;
                runs += 1;
            }
            Ok(runs)
        });
        let importers: Vec<_> = (0..3)
            .map(|worker| {
                let store = &store;
                scope.spawn(move || -> Result<(), String> {
                    let appc = Appc::new(store);
                    for n in 0..8 {
                        let tar =
                            simple_image("example.com/race", &[], &format!("{worker}-{}", n % 3));
                        let report = import(&appc, &tar, "racing import")?;
                        // Removed by the GC or by another worker since: fine; half there: not.
                        match appc.remove(&report.id) {
                            Ok(_) | Err(AppcError::ImageNotFound(_)) => {}
                            Err(error) => return Err(format!("rm: {error}")),
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        let mut errors: Vec<String> = importers
            .into_iter()
            .filter_map(|h| h.join().expect("no panic").err())
            .collect();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Err(error) = gc.join().expect("no panic") {
            errors.push(error);
        }
        errors
    });
    ensure!(errors.is_empty(), "{errors:?}");
    let appc = Appc::new(&store);
    for digest in store.owned_by(&Holder::flavour("appc")).context("owned")? {
        ensure!(
            appc.read_info(&digest).context("info")?.is_some(),
            "{digest} is held by appc without image info"
        );
    }
    for info in appc
        .list(oci_store::stores::appc::SortKey::Id)
        .context("ls")?
    {
        let digest = info.digest().context("digest")?;
        ensure!(
            store.contains(&digest).context("contains")?,
            "info without its blob: {}",
            info.id
        );
    }
    let fsck = store.fsck(Default::default()).context("fsck")?;
    ensure!(fsck.is_clean(), "fsck: {fsck:?}");
    Ok(())
}

/// One image imported again and again while another thread removes it again and again: each
/// import either finds the image gone and writes it anew, or keeps it; it never fails, and
/// never leaves a blob without info.
pub fn rm_racing_reimports_of_the_same_image(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let tar = simple_image("example.com/same", &[], "same");
    let errors: Vec<String> = std::thread::scope(|scope| {
        let importer = scope.spawn(|| -> Result<(), String> {
            let appc = Appc::new(&store);
            for _ in 0..200 {
                import(&appc, &tar, "reimport")?;
            }
            Ok(())
        });
        let remover = scope.spawn(|| -> Result<(), String> {
            let appc = Appc::new(&store);
            for _ in 0..200 {
                match appc.remove(&image_id_of(&tar)) {
                    Ok(_) | Err(AppcError::ImageNotFound(_)) => {}
                    Err(error) => return Err(format!("rm: {error}")),
                }
            }
            Ok(())
        });
        [importer, remover]
            .into_iter()
            .filter_map(|h| h.join().expect("no panic").err())
            .collect()
    });
    ensure!(errors.is_empty(), "{errors:?}");
    let appc = Appc::new(&store);
    for digest in store.owned_by(&Holder::flavour("appc")).context("owned")? {
        ensure!(
            appc.read_info(&digest).context("info")?.is_some(),
            "{digest} is held by appc without image info"
        );
    }
    Ok(())
}
