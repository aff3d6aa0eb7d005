//! The corpus of invalid ACIs: each breaks exactly one rule, is refused naming that rule, and
//! leaves the store's full dump byte-identical (DESIGN.md invariant 7).

use serde_json::{json, Value};

use super::support::*;
use crate::base_store::StoreFixture;
use crate::check::TestResult;
use crate::{ensure, ensure_eq, fail, Context};

/// A valid manifest changed by `change`.
fn changed(change: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut m = manifest(
        "example.com/app",
        &[("version", "1.0.0"), ("os", "linux"), ("arch", "amd64")],
    );
    m["app"] = json!({"exec": ["/bin/app"], "user": "0", "group": "0"});
    change(&mut m);
    Aci::new(&m)
        .dir("rootfs/bin")
        .file("rootfs/bin/app", b"#!")
        .tar()
}

/// The tar with the uid field of its `index`th header blanked (checksum fixed up).
fn blank_uid(mut tar: Vec<u8>, index: usize) -> Vec<u8> {
    let start = index * 512;
    tar[start + 108..start + 116].fill(b' ');
    tar[start + 148..start + 156].fill(b' ');
    let sum: u32 = tar[start..start + 512].iter().map(|b| u32::from(*b)).sum();
    let field = format!("{sum:06o}\0 ");
    tar[start + 148..start + 156].copy_from_slice(field.as_bytes());
    tar
}

fn base() -> Aci {
    Aci::new(&manifest("example.com/app", &[])).dir("rootfs/etc")
}

/// Every invalid ACI: (rule it breaks, what it is, its bytes).
pub fn corpus() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let mut big = manifest("example.com/app", &[]);
    big["annotations"] = json!([{"name": "padding", "value": "x".repeat(1 << 20)}]);
    let valid_gzip = gzip(&base().tar());
    vec![
        (
            "archive.corrupt",
            "not a tar at all",
            b"this is not an archive".repeat(40),
        ),
        (
            "archive.corrupt",
            "truncated gzip",
            valid_gzip[..valid_gzip.len() / 2].to_vec(),
        ),
        (
            "archive.path",
            "absolute member",
            base().file("/etc/evil", b"x").tar(),
        ),
        (
            "archive.path",
            "`..` member",
            base().file("rootfs/../evil", b"x").tar(),
        ),
        (
            "archive.path",
            "empty component",
            base().file("rootfs//evil", b"x").tar(),
        ),
        (
            "archive.top-level",
            "rootfsevil/x",
            base().dir("rootfsevil").file("rootfsevil/x", b"x").tar(),
        ),
        (
            "archive.top-level",
            "extra top-level file",
            base().file("README", b"x").tar(),
        ),
        (
            "archive.top-level",
            "member under manifest",
            base().file("manifest/x", b"x").tar(),
        ),
        (
            "archive.duplicate-entry",
            "a file twice",
            base()
                .file("rootfs/etc/a", b"1")
                .file("rootfs/etc/a", b"2")
                .tar(),
        ),
        (
            "archive.duplicate-entry",
            "manifest twice",
            base().file("manifest", b"{}").tar(),
        ),
        (
            "archive.manifest-regular",
            "manifest is a symlink",
            Aci {
                members: Vec::new(),
            }
            .dir("rootfs")
            .file("rootfs/m", b"{}")
            .symlink("manifest", "rootfs/m")
            .tar(),
        ),
        (
            "archive.manifest-missing",
            "no manifest",
            base().without("manifest").tar(),
        ),
        (
            "archive.rootfs-missing",
            "no rootfs",
            Aci::new(&manifest("a", &[])).without("rootfs").tar(),
        ),
        (
            "archive.rootfs-directory",
            "rootfs is a file",
            Aci::new(&manifest("a", &[]))
                .without("rootfs")
                .file("rootfs", b"x")
                .tar(),
        ),
        (
            "archive.symlink-escape",
            "relative symlink out",
            base().symlink("rootfs/etc/up", "../../../etc/passwd").tar(),
        ),
        (
            "archive.through-symlink",
            "file under a symlink",
            base()
                .symlink("rootfs/lib", "/etc")
                .file("rootfs/lib/passwd", b"x")
                .tar(),
        ),
        (
            "archive.hardlink-manifest",
            "hard link to manifest",
            base().hardlink("rootfs/m", "manifest").tar(),
        ),
        (
            "archive.hardlink-target",
            "hard link to nothing",
            base().hardlink("rootfs/h", "rootfs/absent").tar(),
        ),
        (
            "archive.hardlink-target",
            "hard link to a directory",
            base().hardlink("rootfs/h", "rootfs/etc").tar(),
        ),
        (
            "archive.entry-type",
            "unknown entry type",
            base()
                .member("rootfs/v", tar::EntryType::new(b'Z'), None, b"")
                .tar(),
        ),
        (
            "archive.header",
            "blank uid field",
            blank_uid(base().tar(), 2),
        ),
        (
            "archive.manifest-size",
            "manifest over 1 MiB",
            Aci::new(&big).tar(),
        ),
        (
            "manifest.json",
            "manifest not JSON",
            Aci::with_manifest_bytes(b"{not json".to_vec()).tar(),
        ),
        (
            "manifest.json",
            "manifest a JSON array",
            Aci::with_manifest_bytes(b"[]".to_vec()).tar(),
        ),
        (
            "manifest.schema",
            "labels not a list",
            changed(|m| m["labels"] = json!("os=linux")),
        ),
        (
            "manifest.acKind",
            "PodManifest",
            changed(|m| m["acKind"] = json!("PodManifest")),
        ),
        (
            "manifest.acVersion",
            "zero version",
            changed(|m| m["acVersion"] = json!("0.0.0")),
        ),
        (
            "manifest.acVersion",
            "not semver",
            changed(|m| m["acVersion"] = json!("1.0")),
        ),
        (
            "manifest.name",
            "a..b",
            changed(|m| m["name"] = json!("example.com/a..b")),
        ),
        (
            "manifest.name",
            "a//b",
            changed(|m| m["name"] = json!("example.com//b")),
        ),
        (
            "manifest.name",
            "upper case",
            changed(|m| m["name"] = json!("Example.com/app")),
        ),
        (
            "labels.name",
            "bad label name",
            changed(|m| m["labels"] = json!([{"name": "Bad", "value": "x"}])),
        ),
        (
            "labels.unique",
            "label twice",
            changed(|m| {
                m["labels"] = json!([{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]);
            }),
        ),
        (
            "labels.reserved",
            "label called name",
            changed(|m| m["labels"] = json!([{"name": "name", "value": "x"}])),
        ),
        (
            "labels.os",
            "unknown os",
            changed(|m| m["labels"] = json!([{"name": "os", "value": "plan9"}])),
        ),
        (
            "labels.arch",
            "arch of another os",
            changed(|m| {
                m["labels"] =
                    json!([{"name": "os", "value": "linux"}, {"name": "arch", "value": "x86_64"}]);
            }),
        ),
        (
            "annotations.name",
            "bad annotation name",
            changed(|m| m["annotations"] = json!([{"name": "A B", "value": "x"}])),
        ),
        (
            "annotations.unique",
            "annotation twice",
            changed(|m| {
                m["annotations"] =
                    json!([{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]);
            }),
        ),
        (
            "annotations.created",
            "created not RFC 3339",
            changed(|m| m["annotations"] = json!([{"name": "created", "value": "yesterday"}])),
        ),
        (
            "annotations.url",
            "homepage not http",
            changed(|m| {
                m["annotations"] = json!([{"name": "homepage", "value": "ftp://example.com"}]);
            }),
        ),
        (
            "dependencies.imageName",
            "dependency without name",
            changed(|m| m["dependencies"] = json!([{"labels": []}])),
        ),
        (
            "dependencies.imageID",
            "short image id",
            changed(|m| {
                m["dependencies"] = json!([{"imageName": "dep", "imageID": "sha512-abcd"}]);
            }),
        ),
        (
            "labels.os",
            "dependency label os",
            changed(|m| {
                m["dependencies"] =
                    json!([{"imageName": "dep", "labels": [{"name": "os", "value": "beos"}]}]);
            }),
        ),
        (
            "manifest.pathWhitelist",
            "relative whitelist",
            changed(|m| m["pathWhitelist"] = json!(["etc/hosts"])),
        ),
        (
            "app.exec",
            "relative exec",
            changed(|m| m["app"]["exec"] = json!(["bin/app"])),
        ),
        (
            "app.user",
            "no user",
            changed(|m| {
                if let Some(app) = m["app"].as_object_mut() {
                    app.remove("user");
                }
            }),
        ),
        (
            "app.group",
            "empty group",
            changed(|m| m["app"]["group"] = json!("")),
        ),
        (
            "app.workingDirectory",
            "relative working directory",
            changed(|m| m["app"]["workingDirectory"] = json!("tmp")),
        ),
        (
            "app.eventHandlers",
            "unknown event",
            changed(|m| m["app"]["eventHandlers"] = json!([{"name": "on-start", "exec": ["/x"]}])),
        ),
        (
            "app.environment",
            "bad variable name",
            changed(|m| m["app"]["environment"] = json!([{"name": "1BAD", "value": "x"}])),
        ),
        (
            "app.ports",
            "port zero",
            changed(|m| {
                m["app"]["ports"] = json!([{"name": "http", "protocol": "tcp", "port": 0}]);
            }),
        ),
        (
            "app.mountPoints",
            "relative mount path",
            changed(|m| m["app"]["mountPoints"] = json!([{"name": "data", "path": "data"}])),
        ),
        (
            "app.isolators",
            "unknown isolator",
            changed(|m| m["app"]["isolators"] = json!([{"name": "resource/gpu", "value": {}}])),
        ),
    ]
}

pub fn invalid_acis_are_refused_naming_their_rule(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let appc = Appc::new(&store);
    // Something already stored, which must stay exactly as it is.
    import(
        &appc,
        &simple_image("example.com/kept", &[], "kept"),
        "kept image",
    )?;
    let corpus = corpus();
    ensure!(
        corpus.len() >= 30,
        "the corpus has only {} ACIs",
        corpus.len()
    );
    let before = store.dump().context("dumping the store")?;
    let files_before = crate::content::files_under(store.dir());
    for (rule, what, bytes) in corpus {
        // Every compression must be refused alike.
        for (compression, compress) in compressions() {
            let result = appc.import_reader(&compress(&bytes)[..], what, &Default::default());
            match result {
                Err(error) if error.rule() == Some(rule) => {
                    ensure!(
                        error.to_string().contains(rule),
                        "{what} ({compression}): the message does not name the rule: {error}"
                    );
                }
                Err(error) => fail!("{what} ({compression}): want rule {rule}, got: {error}"),
                Ok(report) => fail!("{what} ({compression}): imported as {}", report.id),
            }
        }
        ensure_eq!(
            store.dump().context("dumping the store")?,
            before,
            "{what}: the store changed after a refused import"
        );
        ensure_eq!(
            crate::content::files_under(store.dir()),
            files_before,
            "{what}: a refused import left files in the store directory"
        );
    }
    Ok(())
}

/// What actool lets through and we refuse, with the valid neighbour of each accepted (so the
/// refusal is about the rule, not the image).
pub fn stricter_than_actool_but_valid_neighbours_pass(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let appc = Appc::new(&store);
    for (good, bad) in [
        ("example.com/a.b", "example.com/a..b"),
        ("example.com/b", "example.com//b"),
    ] {
        let ok = changed(|m| m["name"] = json!(good));
        import(&appc, &ok, good)?;
        let refused = appc.import_reader(
            &changed(|m| m["name"] = json!(bad))[..],
            bad,
            &Default::default(),
        );
        ensure!(
            refused.as_ref().err().and_then(oci_store::AppcError::rule) == Some("manifest.name"),
            "{bad}: {refused:?}"
        );
    }
    let rich = changed(|m| {
        m["annotations"] = json!([
            {"name": "created", "value": "2016-02-29T12:00:00+01:00"},
            {"name": "homepage", "value": "https://example.com"},
        ]);
        m["pathWhitelist"] = json!(["/etc/hosts"]);
        m["app"]["workingDirectory"] = json!("/srv");
        m["app"]["eventHandlers"] = json!([{"name": "pre-start", "exec": ["/bin/prep"]}]);
        m["app"]["environment"] = json!([{"name": "PATH", "value": "/bin"}]);
        m["app"]["ports"] = json!([{"name": "http", "protocol": "tcp", "port": 80}]);
        m["app"]["mountPoints"] = json!([{"name": "data", "path": "/data"}]);
        m["app"]["isolators"] = json!([{"name": "resource/memory", "value": {"limit": "1G"}}]);
        m["dependencies"] = json!([{"imageName": "example.com/base", "labels": [{"name": "os", "value": "linux"}]}]);
    });
    import(&appc, &rich, "a manifest using every checked field")?;
    // Links that stay inside rootfs are fine.
    let links = base()
        .file("rootfs/etc/hosts", b"127.0.0.1")
        .symlink("rootfs/etc/abs", "/etc/hosts")
        .symlink("rootfs/etc/rel", "../etc/hosts")
        .hardlink("rootfs/etc/hard", "rootfs/etc/hosts")
        .tar();
    import(&appc, &links, "links inside rootfs")?;
    Ok(())
}

pub fn a_fifo_where_the_aci_belongs_is_refused(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let appc = Appc::new(&store);
    let dir = tempfile::tempdir().context("scratch")?;
    let fifo = dir.path().join("image.aci");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .context("running mkfifo")?;
    ensure!(status.success(), "mkfifo failed");
    let before = store.dump().context("dump")?;
    let result = appc.import_file(&fifo, &Default::default());
    ensure!(
        result.as_ref().err().and_then(oci_store::AppcError::rule) == Some("archive.regular-file"),
        "{result:?}"
    );
    ensure_eq!(store.dump().context("dump")?, before, "the store changed");
    Ok(())
}
