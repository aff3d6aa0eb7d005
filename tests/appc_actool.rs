//! Interop with the appc reference tool: ACIs made by `actool build` from real directories
//! (with dependencies between them) are imported in every compression through the CLI, their
//! dependencies check out, and our exports pass `actool validate` with the same image ID.
//!
//! actool comes from `$ACTOOL`, else `target/tools/actool`, else it is built there from
//! Debian's `golang-github-appc-spec-dev` with `golang-go` (scripts/test.sh installs both).
//! Without it the test fails under `CI=true` and is skipped otherwise.

mod cli_support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use cli_support::TestStore;
use oci_store::traits::{Algorithm, Digest};
use serde_json::{json, Value};

const APPC_SOURCE: &str = "/usr/share/gocode/src/github.com/appc/spec/actool";

fn actool() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ACTOOL") {
        return Some(PathBuf::from(path));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    );
    let built = target.join("tools/actool");
    if built.is_file() {
        return Some(built);
    }
    if !Path::new(APPC_SOURCE).is_dir() {
        return None;
    }
    let cache = target.join("tools/gocache");
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&built)
        .arg("github.com/appc/spec/actool")
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOCACHE", &cache)
        .current_dir("/")
        .status()
        .ok()?;
    status.success().then_some(built)
}

fn actool_or_skip(test: &str) -> Option<PathBuf> {
    let found = actool();
    if found.is_none() {
        let message = format!(
            "{test}: actool not found (install golang-go and golang-github-appc-spec-dev, or set ACTOOL)"
        );
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{message}; CI=true, so this is a failure, not a skip");
        }
        eprintln!("skipping {message}");
    }
    found
}

fn run(program: &Path, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
    assert!(
        output.status.success(),
        "{} {args:?} failed:\n{}{}",
        program.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 paths")
}

/// An image layout directory (`manifest` and `rootfs/`) from real files.
fn image_dir(root: &Path, manifest: &Value, files: &[(&str, &str)]) -> PathBuf {
    let dir = root.join(manifest["name"].as_str().unwrap().replace('/', "_"));
    std::fs::create_dir_all(dir.join("rootfs")).unwrap();
    for (path, content) in files {
        let file = dir.join("rootfs").join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, content).unwrap();
    }
    std::os::unix::fs::symlink("/etc/hostname", dir.join("rootfs/link")).unwrap();
    std::fs::write(dir.join("manifest"), serde_json::to_vec(manifest).unwrap()).unwrap();
    dir
}

fn manifest(name: &str, version: &str, dependencies: Value) -> Value {
    json!({
        "acKind": "ImageManifest",
        "acVersion": "0.8.11",
        "name": name,
        "labels": [
            {"name": "version", "value": version},
            {"name": "os", "value": "linux"},
            {"name": "arch", "value": "amd64"},
        ],
        "app": {"exec": ["/bin/app"], "user": "0", "group": "0"},
        "dependencies": dependencies,
    })
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn compressed_forms(tar: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(tar).unwrap();
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    bz.write_all(tar).unwrap();
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
    xz.write_all(tar).unwrap();
    vec![
        ("tar", tar.to_vec()),
        ("gz", gz.finish().unwrap()),
        ("bz2", bz.finish().unwrap()),
        ("xz", xz.finish().unwrap()),
    ]
}

#[test]
fn actool_images_import_in_every_compression_and_exports_validate() {
    let Some(actool) = actool_or_skip("actool interop") else {
        return;
    };
    let store = TestStore::new();
    let work = store.scratch("work");
    std::fs::create_dir_all(&work).unwrap();

    // base <- middle (by ID) <- app (by name and labels)
    let base_dir = image_dir(
        &work,
        &manifest("example.com/base", "1.0.0", json!([])),
        &[("etc/os-release", "ID=test\n"), ("bin/sh", "#!\n")],
    );
    let base_aci = work.join("base.aci");
    run(
        &actool,
        &["build", "--overwrite", s(&base_dir), s(&base_aci)],
    );
    let base_tar = gunzip(&std::fs::read(&base_aci).unwrap());
    let base_id = Digest::of_bytes(Algorithm::Sha512, &base_tar).dashed();

    let middle_dir = image_dir(
        &work,
        &manifest(
            "example.com/middle",
            "2.0.0",
            json!([{"imageName": "example.com/base", "imageID": base_id}]),
        ),
        &[("usr/lib/libmiddle.so", "lib")],
    );
    let middle_aci = work.join("middle.aci");
    run(
        &actool,
        &["build", "--overwrite", s(&middle_dir), s(&middle_aci)],
    );

    let app_dir = image_dir(
        &work,
        &manifest(
            "example.com/app",
            "3.0.0",
            json!([{"imageName": "example.com/middle", "labels": [{"name": "version", "value": "2.0.0"}]}]),
        ),
        &[("bin/app", "#!/bin/sh\necho app\n")],
    );
    let app_aci = work.join("app.aci");
    run(&actool, &["build", "--overwrite", s(&app_dir), s(&app_aci)]);

    let mut ids = Vec::new();
    for aci in [&base_aci, &middle_aci, &app_aci] {
        let tar = gunzip(&std::fs::read(aci).unwrap());
        let want = Digest::of_bytes(Algorithm::Sha512, &tar).dashed();
        for (index, (suffix, bytes)) in compressed_forms(&tar).into_iter().enumerate() {
            let file = work.join(format!(
                "{}.{suffix}",
                aci.file_name().unwrap().to_string_lossy()
            ));
            std::fs::write(&file, bytes).unwrap();
            let report = store.json(&["appc", "import", s(&file)]);
            assert_eq!(report[0]["id"], want.as_str(), "{suffix}");
            assert_eq!(report[0]["already_present"], index > 0, "{suffix}");
        }
        ids.push(want);
    }
    assert_eq!(ids[0], base_id);
    let listed = store.json(&["appc", "ls"]);
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");

    // Dependencies: app -> middle (labels) -> base (ID).
    let check = store.json(&["appc", "check", "example.com/app"]);
    assert_eq!(
        check["resolved"],
        json!([ids[2], ids[1], ids[0]]),
        "{check}"
    );
    assert_eq!(check["missing"], json!([]));

    // The real images render: each layer's file, the upper image's winning.
    let rootfs = work.join("rendered");
    store.ok(&["appc", "render", "example.com/app", s(&rootfs)]);
    for file in [
        "etc/os-release",
        "bin/sh",
        "usr/lib/libmiddle.so",
        "bin/app",
    ] {
        assert!(rootfs.join(file).is_file(), "{file} was not rendered");
    }
    assert_eq!(
        std::fs::read_link(rootfs.join("link")).unwrap(),
        Path::new("/etc/hostname")
    );

    // Exports pass actool validate and have the same ID.
    for (index, id) in ids.iter().enumerate() {
        for gzip in [false, true] {
            let out = work.join(format!("export-{index}-{gzip}.aci"));
            let mut args = vec!["appc", "export", &id[..20], s(&out)];
            if gzip {
                args.push("--gzip");
            }
            store.ok(&args);
            run(&actool, &["validate", s(&out)]);
            let bytes = std::fs::read(&out).unwrap();
            let tar = if gzip { gunzip(&bytes) } else { bytes };
            assert_eq!(&Digest::of_bytes(Algorithm::Sha512, &tar).dashed(), id);
        }
    }
}

#[test]
fn actool_accepts_names_we_refuse() {
    let Some(actool) = actool_or_skip("actool strictness") else {
        return;
    };
    let store = TestStore::new();
    let work = store.scratch("work");
    std::fs::create_dir_all(&work).unwrap();
    for name in ["example.com/a..b", "example.com//b"] {
        let mut m = manifest("example.com/x", "1.0.0", json!([]));
        m["name"] = json!(name);
        let dir = work.join("bad");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("rootfs")).unwrap();
        std::fs::write(dir.join("manifest"), serde_json::to_vec(&m).unwrap()).unwrap();
        let aci = work.join("bad.aci");
        run(&actool, &["build", "--overwrite", s(&dir), s(&aci)]);
        run(&actool, &["validate", s(&aci)]);
        let message = store.fails(&["appc", "import", s(&aci)]);
        assert!(message.contains("manifest.name"), "{name}: {message}");
    }
    assert_eq!(store.json(&["appc", "ls"]), json!([]));
}
