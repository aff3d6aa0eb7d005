//! Several `oci-store appc import` processes at once, of one image in several compressions:
//! every process succeeds, the image is stored once, and exactly one of them wrote its info.

mod cli_support;

use std::io::Write;
use std::process::Stdio;

use cli_support::TestStore;
use serde_json::json;

fn tar_of_image() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let manifest = serde_json::to_vec(&json!({
        "acKind": "ImageManifest", "acVersion": "0.8.11", "name": "example.com/many",
    }))
    .unwrap();
    for (path, kind, bytes) in [
        ("manifest", tar::EntryType::Regular, &manifest[..]),
        ("rootfs", tar::EntryType::Directory, &b""[..]),
        ("rootfs/data", tar::EntryType::Regular, &[7u8; 200_000][..]),
    ] {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_500_000_000);
        builder.append_data(&mut header, path, bytes).unwrap();
    }
    builder.into_inner().unwrap()
}

#[test]
fn processes_importing_one_image_store_it_once() {
    let store = TestStore::new();
    let tar = tar_of_image();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
    xz.write_all(&tar).unwrap();
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    bz.write_all(&tar).unwrap();
    let forms = [
        tar.clone(),
        gz.finish().unwrap(),
        xz.finish().unwrap(),
        bz.finish().unwrap(),
    ];
    // Create the store first, so the processes race on the image, not on store creation.
    store.ok(&["stats"]);
    let mut children = Vec::new();
    for (n, bytes) in forms.iter().chain(forms.iter()).enumerate() {
        let path = store.scratch(&format!("image-{n}.aci"));
        std::fs::write(&path, bytes).unwrap();
        children.push(
            store
                .command(&["--json", "appc", "import", path.to_str().unwrap()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    let mut fresh = 0;
    let want = oci_store::Digest::of_bytes(oci_store::traits::Algorithm::Sha512, &tar).dashed();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report[0]["id"], want.as_str());
        if report[0]["already_present"] == false {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1, "exactly one process wrote the image info");
    assert_eq!(store.json(&["stats"])["blobs"], 1);
    assert_eq!(store.json(&["appc", "ls"]).as_array().unwrap().len(), 1);
}
