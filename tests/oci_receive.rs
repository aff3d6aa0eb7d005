//! What a registry push does to the store, through the library calls `serve` makes:
//! `OciStore::begin_upload` and `OciStore::receive_blob` for each upload,
//! `OciStore::receive_manifest` for each manifest. An upload is one operation from its start;
//! an abandoned one leaves the store as it was.
//! A pushed image is a ref that `list` and `check --verify` see; a manifest whose blobs are
//! missing, or that is not a valid document, changes nothing; uploads and manifests pushed by
//! digest only are kept by their leases and reclaimed by the GC once those expire.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use oci_store::oci::{Descriptor, RefName};
use oci_store::store::{open_store, BackendChoice, Store, WriteOptions, OPERATION_DATA_TYPE};
use oci_store::stores::oci::layout_builder::LayoutBuilder;
use oci_store::stores::oci::{OciError, OciStore, HOLDER};
use oci_store::traits::{Algorithm, BlobRecord, Digest};
use serde_json::json;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
const LONG: Duration = Duration::from_secs(3600);

fn new_store() -> (tempfile::TempDir, Store) {
    let temp = tempfile::tempdir().unwrap();
    let store = open_store(&temp.path().join("store"), &BackendChoice::default()).unwrap();
    (temp, store)
}

/// What a client uploads for one image: its config and layers, and its manifest.
struct PushedImage {
    blobs: Vec<Vec<u8>>,
    manifest: Vec<u8>,
    descriptor: Descriptor,
}

impl PushedImage {
    fn digest(&self) -> Digest {
        Digest::parse(self.descriptor.digest().as_ref()).unwrap()
    }

    fn blob_digest(&self, index: usize) -> Digest {
        Digest::of_bytes(Algorithm::Sha256, &self.blobs[index])
    }
}

/// A valid one-layer image for `architecture`, built as a layout would hold it.
fn image(dir: &Path, architecture: &str) -> PushedImage {
    let mut builder = LayoutBuilder::new(dir.join(architecture)).unwrap();
    let layer = LayoutBuilder::layer_tar_gz(&[("etc/arch", architecture.as_bytes())]).unwrap();
    let descriptor = builder.image("linux", architecture, &[layer]).unwrap();
    let read =
        |digest: &str| std::fs::read(builder.blob_path(&Digest::parse(digest).unwrap())).unwrap();
    let manifest = read(descriptor.digest().as_ref());
    let document: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let mut blobs = vec![read(document["config"]["digest"].as_str().unwrap())];
    for layer in document["layers"].as_array().unwrap() {
        blobs.push(read(layer["digest"].as_str().unwrap()));
    }
    PushedImage {
        blobs,
        manifest,
        descriptor,
    }
}

/// An upload as the server makes it: streamed into staging (digest checked), then received.
fn upload(oci: &OciStore<'_>, bytes: &[u8], keep_for: Duration) -> BlobRecord {
    let options = WriteOptions {
        expected_digest: Some(Digest::of_bytes(Algorithm::Sha256, bytes)),
        expected_size: Some(bytes.len() as u64),
        ..WriteOptions::default()
    };
    let operation = oci.begin_upload().unwrap();
    let mut writer = oci.store().writer(&options).unwrap();
    let (first, rest) = bytes.split_at(bytes.len() / 2);
    writer.write_all(first).unwrap();
    writer.write_all(rest).unwrap();
    oci.receive_blob(operation, writer.stage().unwrap(), keep_for)
        .unwrap()
}

fn upload_blobs(oci: &OciStore<'_>, image: &PushedImage) {
    for blob in &image.blobs {
        upload(oci, blob, LONG);
    }
}

fn tag(name: &str) -> RefName {
    RefName::parse(name).unwrap()
}

#[test]
fn a_pushed_image_is_a_ref_that_check_verifies() {
    let (temp, store) = new_store();
    let oci = OciStore::new(&store);
    let image = image(temp.path(), "amd64");
    upload_blobs(&oci, &image);
    let received = oci
        .receive_manifest(&image.manifest, OCI_MANIFEST, Some(&tag("app:v1")), LONG)
        .unwrap();
    assert_eq!(received.digest, image.digest());
    assert_eq!(received.subject, None);

    let refs = oci.list_refs().unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].name, "app:v1");
    assert_eq!(refs[0].digest, image.digest());
    assert_eq!(refs[0].media_type, OCI_MANIFEST);
    assert_eq!(refs[0].platforms, ["linux/amd64"]);
    assert_eq!(oci.refs_naming(&image.digest()).unwrap(), ["app:v1"]);
    let report = oci.check("app:v1", true).unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.blobs_present, 3);
    // Owned by the flavour; the uploads got the media types the manifest gives them.
    for digest in [image.digest(), image.blob_digest(0), image.blob_digest(1)] {
        assert_eq!(store.holders(&digest).unwrap().owners, [HOLDER]);
    }
    let layer = store.info(&image.blob_digest(1)).unwrap();
    assert_eq!(
        layer.media_type,
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    // A tagged manifest needs no lease: only the two uploads have one.
    assert_eq!(oci.lease_list().unwrap().len(), 2);

    let gc = oci.gc(false).unwrap();
    assert!(gc.swept.is_empty(), "{gc:?}");
    assert!(oci.check("app:v1", true).unwrap().is_complete());
}

#[test]
fn pushing_the_same_manifest_under_a_second_tag_adds_the_tag() {
    let (temp, store) = new_store();
    let oci = OciStore::new(&store);
    let image = image(temp.path(), "amd64");
    upload_blobs(&oci, &image);
    for name in ["app:v1", "app:latest"] {
        let received = oci
            .receive_manifest(&image.manifest, OCI_MANIFEST, Some(&tag(name)), LONG)
            .unwrap();
        assert_eq!(received.digest, image.digest());
    }
    assert_eq!(
        oci.refs_naming(&image.digest()).unwrap(),
        ["app:latest", "app:v1"]
    );
}

#[test]
fn a_manifest_whose_layer_is_missing_is_refused_and_changes_nothing() {
    let (temp, store) = new_store();
    let oci = OciStore::new(&store);
    let image = image(temp.path(), "amd64");
    upload(&oci, &image.blobs[0], LONG);
    let before = store.dump().unwrap();

    let error = oci
        .receive_manifest(&image.manifest, OCI_MANIFEST, Some(&tag("app:v1")), LONG)
        .unwrap_err();
    match &error {
        OciError::ManifestBlobUnknown {
            manifest,
            missing,
            media_type,
        } => {
            assert_eq!(manifest, &image.digest());
            assert_eq!(missing, &image.blob_digest(1));
            assert_eq!(media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
        }
        other => panic!("expected ManifestBlobUnknown, got {other:?}"),
    }
    assert!(error.to_string().contains("push the blob first"), "{error}");
    assert_eq!(store.dump().unwrap(), before);

    // Once the layer is there, the same manifest goes in.
    upload(&oci, &image.blobs[1], LONG);
    oci.receive_manifest(&image.manifest, OCI_MANIFEST, Some(&tag("app:v1")), LONG)
        .unwrap();
    assert!(oci.check("app:v1", true).unwrap().is_complete());
}

#[test]
fn an_index_is_received_after_its_platform_manifests_were_pushed_by_digest() {
    let (temp, store) = new_store();
    let oci = OciStore::new(&store);
    let images = [image(temp.path(), "amd64"), image(temp.path(), "arm64")];
    let mut builder = LayoutBuilder::new(temp.path().join("index")).unwrap();
    let index_descriptor = builder
        .index(&[
            (images[0].descriptor.clone(), "linux", "amd64"),
            (images[1].descriptor.clone(), "linux", "arm64"),
        ])
        .unwrap();
    let index_digest = Digest::parse(index_descriptor.digest().as_ref()).unwrap();
    let index = std::fs::read(builder.blob_path(&index_digest)).unwrap();

    for image in &images {
        upload_blobs(&oci, image);
    }
    // The index before its manifests: refused, naming the first one.
    let before = store.dump().unwrap();
    match oci.receive_manifest(&index, OCI_INDEX, Some(&tag("app:multi")), LONG) {
        Err(OciError::ManifestBlobUnknown { missing, .. }) => {
            assert_eq!(missing, images[0].digest());
        }
        other => panic!("expected ManifestBlobUnknown, got {other:?}"),
    }
    assert_eq!(store.dump().unwrap(), before);

    for image in &images {
        let received = oci
            .receive_manifest(&image.manifest, OCI_MANIFEST, None, LONG)
            .unwrap();
        assert_eq!(received.digest, image.digest());
        assert!(oci.refs_naming(&image.digest()).unwrap().is_empty());
    }
    // Pushed by digest: no ref, but a lease on each manifest.
    assert!(oci.list_refs().unwrap().is_empty());
    for image in &images {
        let leased = oci.lease_list().unwrap();
        assert!(
            leased.iter().any(|lease| lease.digests == [image.digest()]),
            "{leased:?}"
        );
    }
    // A GC in between keeps what the leases protect.
    let gc = oci.gc(false).unwrap();
    assert!(gc.swept.is_empty(), "{gc:?}");

    let received = oci
        .receive_manifest(&index, OCI_INDEX, Some(&tag("app:multi")), LONG)
        .unwrap();
    assert_eq!(received.digest, index_digest);
    let refs = oci.list_refs().unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].platforms, ["linux/amd64", "linux/arm64"]);
    let report = oci.check("app:multi", true).unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.blobs_present, 7);
}

#[test]
fn a_referrer_is_found_by_its_subject_and_may_come_before_it() {
    let (temp, store) = new_store();
    let oci = OciStore::new(&store);
    let image = image(temp.path(), "amd64");
    upload_blobs(&oci, &image);
    oci.receive_manifest(&image.manifest, OCI_MANIFEST, Some(&tag("app:v1")), LONG)
        .unwrap();

    let empty = b"{}";
    let signature = b"signature bytes";
    upload(&oci, empty, LONG);
    upload(&oci, signature, LONG);
    let descriptor = |media_type: &str, bytes: &[u8]| {
        json!({
            "mediaType": media_type,
            "digest": Digest::of_bytes(Algorithm::Sha256, bytes).to_string(),
            "size": bytes.len(),
        })
    };
    let referrer = |subject: serde_json::Value| {
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.signature",
            "config": descriptor(OCI_EMPTY, empty),
            "layers": [descriptor("application/vnd.example.signature.v1", signature)],
            "subject": subject,
        }))
        .unwrap()
    };

    let signed = referrer(json!(image.descriptor));
    let received = oci
        .receive_manifest(&signed, OCI_MANIFEST, None, LONG)
        .unwrap();
    assert_eq!(received.subject, Some(image.digest()));
    let found = oci.referrers(&image.digest(), None).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].digest().as_ref(), received.digest.to_string());
    assert_eq!(
        found[0].artifact_type().as_ref().unwrap().to_string(),
        "application/vnd.example.signature"
    );

    // A referrer whose subject the store does not have (yet) is accepted too.
    let absent = image_descriptor_of(b"not pushed");
    let orphan = referrer(absent.clone());
    let received = oci
        .receive_manifest(&orphan, OCI_MANIFEST, None, LONG)
        .unwrap();
    let absent_digest = Digest::parse(absent["digest"].as_str().unwrap()).unwrap();
    assert_eq!(received.subject, Some(absent_digest.clone()));
    assert_eq!(oci.referrers(&absent_digest, None).unwrap().len(), 1);
}

fn image_descriptor_of(bytes: &[u8]) -> serde_json::Value {
    json!({
        "mediaType": OCI_MANIFEST,
        "digest": Digest::of_bytes(Algorithm::Sha256, bytes).to_string(),
        "size": bytes.len(),
    })
}

#[test]
fn an_unclaimed_upload_is_kept_until_its_lease_expires_then_reclaimed() {
    let (temp, store) = new_store();
    let oci = OciStore::new(&store);
    let keep_for = Duration::from_millis(400);
    let unclaimed = upload(&oci, b"uploaded, never claimed", keep_for).digest;
    let image = image(temp.path(), "amd64");
    for blob in &image.blobs {
        upload(&oci, blob, keep_for);
    }
    oci.receive_manifest(&image.manifest, OCI_MANIFEST, Some(&tag("app:v1")), LONG)
        .unwrap();

    let gc = oci.gc(false).unwrap();
    assert!(gc.swept.is_empty(), "{gc:?}");
    assert!(store.contains(&unclaimed).unwrap());

    std::thread::sleep(keep_for + Duration::from_millis(100));
    // A dry run tells the truth: the expired lease goes first, so the blob would be deleted.
    let dry = oci.gc(true).unwrap();
    assert_eq!(dry.swept.len(), 1, "{dry:?}");
    assert_eq!(dry.swept[0].digest, unclaimed);
    assert!(dry.swept[0].deleted, "{dry:?}");

    let gc = oci.gc(false).unwrap();
    assert_eq!(gc.swept.len(), 1, "{gc:?}");
    assert_eq!(gc.swept[0].digest, unclaimed);
    assert!(gc.swept[0].deleted);
    assert_eq!(gc.expired_leases.len(), 3);
    assert!(!store.contains(&unclaimed).unwrap());
    // What the tagged manifest claimed stays.
    assert!(oci.check("app:v1", true).unwrap().is_complete());
    assert!(oci.lease_list().unwrap().is_empty());
}

#[test]
fn a_manifest_pushed_by_digest_and_never_tagged_goes_with_its_blobs_after_expiry() {
    let (temp, store) = new_store();
    let oci = OciStore::new(&store);
    let keep_for = Duration::from_millis(400);
    let image = image(temp.path(), "amd64");
    for blob in &image.blobs {
        upload(&oci, blob, keep_for);
    }
    oci.receive_manifest(&image.manifest, OCI_MANIFEST, None, keep_for)
        .unwrap();
    assert!(oci.gc(false).unwrap().swept.is_empty());

    std::thread::sleep(keep_for + Duration::from_millis(100));
    let gc = oci.gc(false).unwrap();
    assert_eq!(gc.swept.len(), 3, "{gc:?}");
    for digest in [image.digest(), image.blob_digest(0), image.blob_digest(1)] {
        assert!(!store.contains(&digest).unwrap(), "{digest} left");
    }
}

#[test]
fn an_upload_is_one_operation_from_its_start_and_an_abandoned_one_leaves_nothing() {
    let (temp, store) = new_store();
    let oci = OciStore::new(&store);
    let before = store.dump().unwrap();
    let operations = || store.list_data(OPERATION_DATA_TYPE, "").unwrap();
    let ingest = temp.path().join("store").join("ingest");
    let staged_files = || std::fs::read_dir(&ingest).unwrap().count();

    // Begun: recorded before a byte arrives.
    let operation = oci.begin_upload().unwrap();
    let recorded = operations();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0].0, operation.holder().name());
    let mut writer = store.writer(&WriteOptions::default()).unwrap();
    writer.write_all(b"half an upload").unwrap();
    writer.flush().unwrap();
    assert_eq!(staged_files(), 1);

    // Abandoned (cancelled, timed out, its body broken off): nothing is left of it.
    drop(writer);
    drop(operation);
    assert!(operations().is_empty());
    assert_eq!(staged_files(), 0);
    assert_eq!(store.dump().unwrap(), before);

    // Received: the upload's own operation commits the blob, and ends with it.
    let received = upload(&oci, b"a whole upload", LONG);
    assert!(operations().is_empty());
    let holders = store.holders(&received.digest).unwrap();
    assert_eq!(holders.owners, [HOLDER], "{holders:?}");
}

#[test]
fn receiving_a_stored_blob_holds_it_and_renews_its_protection() {
    let (_temp, store) = new_store();
    let oci = OciStore::new(&store);
    let bytes = b"put by the user first";
    let put = store.write_bytes(bytes, &WriteOptions::default()).unwrap();
    let received = upload(&oci, bytes, LONG);
    assert_eq!(received.digest, put.digest);
    let holders = store.holders(&put.digest).unwrap();
    assert!(holders.owners.contains(&HOLDER), "{holders:?}");
    assert_eq!(holders.owners.len(), 2, "{holders:?}");

    upload(&oci, bytes, LONG);
    let leases = oci.lease_list().unwrap();
    assert_eq!(leases.len(), 2);
    assert!(leases
        .iter()
        .all(|lease| lease.digests == [put.digest.clone()]));
}

#[test]
fn invalid_manifests_are_refused_and_change_nothing() {
    let (temp, store) = new_store();
    let oci = OciStore::new(&store);
    let image = image(temp.path(), "amd64");
    upload_blobs(&oci, &image);
    let before = store.dump().unwrap();
    let name = tag("app:v1");
    let receive = |bytes: &[u8], media_type: &str| {
        oci.receive_manifest(bytes, media_type, Some(&name), LONG)
            .unwrap_err()
    };

    let error = receive(b"{not json", OCI_MANIFEST);
    assert!(
        matches!(&error, OciError::SpecViolation { rule, .. } if rule.contains("not JSON")),
        "{error:?}"
    );
    // The document says it is a manifest; it is received as an index.
    let error = receive(&image.manifest, OCI_INDEX);
    assert!(
        matches!(
            error,
            OciError::SpecViolation { .. } | OciError::InvalidDocument { .. }
        ),
        "{error:?}"
    );
    let error = receive(&image.manifest, "application/json");
    assert!(
        matches!(&error, OciError::UnsupportedManifestMediaType { media_type, .. } if media_type == "application/json"),
        "{error:?}"
    );
    let huge = vec![b' '; 4 * 1024 * 1024 + 1];
    let error = receive(&huge, OCI_MANIFEST);
    assert!(
        matches!(error, OciError::DocumentTooLarge { .. }),
        "{error:?}"
    );
    // A layer descriptor whose size is not the stored blob's.
    let mut document: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap();
    document["layers"][0]["size"] = json!(image.blobs[1].len() + 1);
    let error = receive(&serde_json::to_vec(&document).unwrap(), OCI_MANIFEST);
    assert!(
        matches!(&error, OciError::ManifestBlobMismatch { blob, .. } if blob == &image.blob_digest(1)),
        "{error:?}"
    );
    // A manifest breaking the image-spec (no config).
    let error = receive(
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#,
        OCI_MANIFEST,
    );
    assert!(matches!(error, OciError::SpecViolation { .. }), "{error:?}");

    assert_eq!(store.dump().unwrap(), before);
    assert!(oci.list_refs().unwrap().is_empty());
}
