//! The third flavour of docs/FLAVOURS.md, `examples/tagged_files.rs`, run by the tests so the
//! guide cannot rot: its library half over every registered backend combination (the file is
//! included as a module), and its binary once, built by cargo as a user would run it.

#[allow(dead_code)] // the example's `main` and CLI glue are not called from here
#[path = "../examples/tagged_files.rs"]
mod tagged_files;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use oci_store::store::{LockGuard, LockMode, WriteOptions, OPERATION_DATA_TYPE};
use oci_store::stores::oci::layout_builder::LayoutBuilder;
use oci_store::stores::oci::{ImportOptions, OciStore};
use oci_store::traits::registry::backends_for;
use oci_store::traits::Role;
use oci_store::{open_store, BackendChoice, Digest, Store};
use tagged_files::{TaggedError, TaggedFiles, GC_LOCK, GC_TURNSTILE, HOLDER};

const WAIT: Duration = Duration::from_secs(30);

/// Every combination of registered backends (blobs × index × extra × kv), as the
/// conformance matrix builds it: no result may depend on the combination.
fn combinations() -> Vec<BackendChoice> {
    let mut all = Vec::new();
    for blobs in backends_for(Role::Blobs) {
        for index in backends_for(Role::Index) {
            for extra in backends_for(Role::Extra) {
                for kv in backends_for(Role::Kv) {
                    all.push(
                        BackendChoice::default()
                            .role(Role::Blobs, blobs)
                            .role(Role::Index, index)
                            .role(Role::Extra, extra)
                            .role(Role::Kv, kv),
                    );
                }
            }
        }
    }
    assert!(all.len() > 1, "registered combinations: {all:?}");
    all
}

/// Runs `test` on a fresh store of every combination, naming the combination on failure.
fn for_every_combination(test: impl Fn(&Store)) {
    for choice in combinations() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path(), &choice).unwrap();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(&store)));
        if let Err(panic) = result {
            eprintln!("failed with backends {choice:?}");
            std::panic::resume_unwind(panic);
        }
    }
}

fn content(store: &Store, tag: &str) -> Vec<u8> {
    let mut out = Vec::new();
    TaggedFiles { store }.get(tag, &mut out).unwrap();
    out
}

fn owners(store: &Store, digest: &Digest) -> Vec<String> {
    let owners = store.holders(digest).unwrap().owners;
    owners
        .iter()
        .map(|owner| owner.name().to_string())
        .collect()
}

#[test]
fn files_survive_gc_while_tagged_and_go_after_untag_and_gc() {
    for_every_combination(|store| {
        let files = TaggedFiles { store };
        let empty = store.dump().unwrap();
        let digest = files
            .put("report", &b"first draft"[..], &["v1", "v2"])
            .unwrap();
        assert_eq!(
            owners(store, &digest),
            ["tagged"],
            "the put's own hold is gone"
        );
        assert_eq!(
            files.gc(WAIT).unwrap(),
            Vec::<Digest>::new(),
            "tagged: kept"
        );
        assert_eq!(content(store, "v1"), b"first draft");

        files.rm("v1").unwrap();
        assert!(files.gc(WAIT).unwrap().is_empty(), "v2 still reaches it");
        assert_eq!(content(store, "v2"), b"first draft");
        files.rm("v2").unwrap();
        assert!(
            store.contains(&digest).unwrap(),
            "untagged, but no GC ran yet"
        );
        assert_eq!(files.gc(WAIT).unwrap(), vec![digest.clone()]);
        assert!(!store.contains(&digest).unwrap());
        assert_eq!(
            store.dump().unwrap(),
            empty,
            "name, mark and content all went"
        );
        assert!(matches!(
            files.tag("report", &["v3"]),
            Err(TaggedError::NotFound(_))
        ));
    });
}

#[test]
fn a_renamed_content_keeps_its_tags_and_the_old_untagged_one_goes() {
    for_every_combination(|store| {
        let files = TaggedFiles { store };
        let old = files.put("notes", &b"old"[..], &["kept"]).unwrap();
        let untagged = files.put("draft", &b"scratch"[..], &[]).unwrap();
        let new = files.put("notes", &b"new"[..], &[]).unwrap();
        files.tag("notes", &["latest"]).unwrap();
        let deleted = files.gc(WAIT).unwrap();
        assert_eq!(deleted, vec![untagged], "only content no tag reaches goes");
        assert_eq!(content(store, "kept"), b"old");
        assert_eq!(content(store, "latest"), b"new");
        assert!(store.contains(&old).unwrap() && store.contains(&new).unwrap());
        assert!(store
            .get_data(tagged_files::FILE_TYPE, "draft")
            .unwrap()
            .is_none());
    });
}

/// A blob held by an OCI image or by a `blob put` survives the example's GC, and a blob the
/// example holds survives the OCI GC: each flavour lets go only of its own hold.
#[test]
fn blobs_shared_with_an_oci_image_or_a_blob_put_survive_the_flavours_gc() {
    for_every_combination(|store| {
        let files = TaggedFiles { store };
        let layout_dir = tempfile::tempdir().unwrap();
        let layout = layout_dir.path().join("layout");
        let layer = LayoutBuilder::layer_tar_gz(&[("etc/motd", b"shared layer\n")]).unwrap();
        let mut builder = LayoutBuilder::new(&layout).unwrap();
        let image = builder
            .image("linux", "amd64", std::slice::from_ref(&layer))
            .unwrap();
        builder.add_ref(Some("app"), &image);
        builder.finish().unwrap();
        let oci = OciStore::new(store);
        oci.import_layout(&layout, &ImportOptions::default())
            .unwrap();

        // The same bytes put as a tagged file: one blob, two holders.
        let digest = files.put("layer", &layer[..], &["t"]).unwrap();
        assert_eq!(owners(store, &digest), ["oci", "tagged"]);
        files.rm("t").unwrap();
        assert!(
            files.gc(WAIT).unwrap().is_empty(),
            "the OCI image still holds it"
        );
        assert_eq!(owners(store, &digest), ["oci"], "only the tagged mark went");
        assert!(oci.check("app", true).unwrap().is_complete());

        // And the other way round: the OCI GC leaves the tagged file alone.
        files.put("layer", &layer[..], &["t2"]).unwrap();
        oci.remove_ref("app").unwrap();
        oci.gc(false).unwrap();
        assert_eq!(owners(store, &digest), ["tagged"]);
        assert_eq!(content(store, "t2"), layer);

        // A user's `blob put` (owner.base) outlives the tagged file made of the same bytes.
        let record = store
            .write_bytes(b"user data", &WriteOptions::default())
            .unwrap();
        files.put("copy", &b"user data"[..], &["u"]).unwrap();
        files.rm("u").unwrap();
        files.gc(WAIT).unwrap();
        assert_eq!(owners(store, &record.digest), ["base"]);
        assert!(store.contains(&record.digest).unwrap());
    });
}

/// A reader that fails part-way, like a file on a failing disk.
struct FailingReader(usize);

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0 == 0 {
            return Err(std::io::Error::other("disk on fire"));
        }
        let n = self.0.min(buf.len());
        buf[..n].fill(b'x');
        self.0 -= n;
        Ok(n)
    }
}

#[test]
fn a_failing_put_or_tag_changes_nothing() {
    for_every_combination(|store| {
        let files = TaggedFiles { store };
        files
            .put("doc", &b"held by the flavour"[..], &["v1"])
            .unwrap();
        store
            .write_bytes(b"held by blob put", &WriteOptions::default())
            .unwrap();
        let before = store.dump().unwrap();
        let refused = |result: Result<(), TaggedError>, what: &str| {
            assert!(result.is_err(), "{what}: accepted");
            assert_eq!(store.dump().unwrap(), before, "{what}: the store changed");
        };
        // The tag is taken after the content was streamed in: the batch fails, and the put
        // lets go of what it wrote, whether new, held by `blob put`, or held by this flavour.
        let put = |name, bytes: &[u8], tags: &[&str]| files.put(name, bytes, tags).map(drop);
        refused(put("new", b"new bytes", &["fresh", "v1"]), "new content");
        refused(
            put("dup", b"held by blob put", &["v1"]),
            "a blob put's content",
        );
        refused(
            put("doc", b"held by the flavour", &["v1"]),
            "the flavour's content",
        );
        refused(put("doc", b"x", &["w", "w"]), "one tag twice");
        let failing_read = files.put("big", FailingReader(3 << 20), &["big"]);
        refused(failing_read.map(drop), "a failing read");
        refused(
            files.tag("doc", &["w1", "v1"]),
            "a batch with one taken tag",
        );
        refused(files.tag("no-such-file", &["w2"]), "tagging a missing file");
        refused(files.rm("no-such-tag"), "removing a missing tag");
        match files.put("new", &b"new bytes"[..], &["v1"]) {
            Err(TaggedError::TagExists(tag)) => assert_eq!(tag, "v1"),
            other => panic!("a taken tag: {other:?}"),
        }
    });
}

/// What a put that crashed leaves (its operation's entry, whose liveness lock nobody holds, and
/// its hold) goes with the next GC.
#[test]
fn the_next_gc_clears_what_a_crashed_put_held() {
    for_every_combination(|store| {
        let before = store.dump().unwrap();
        let holder = HOLDER.operation("4242-1");
        store
            .put_data(OPERATION_DATA_TYPE, holder.name(), b"{}", None)
            .unwrap();
        let options = WriteOptions::default();
        store
            .write(
                &b"half put"[..],
                &WriteOptions {
                    holder: Some(holder.clone()),
                    ..options.clone()
                },
            )
            .unwrap();
        assert_ne!(store.dump().unwrap(), before);
        TaggedFiles { store }.gc(WAIT).unwrap();
        assert_eq!(store.dump().unwrap(), before);
    });
}

/// The GC waits for running mutations a bounded time, and while it waits, new mutations
/// queue behind it at the turnstile.
#[test]
fn gc_waits_a_bounded_time_and_is_not_starved() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path(), &BackendChoice::default()).unwrap();
    let running_put = store.named_lock(GC_LOCK, LockMode::Shared).unwrap();
    let started = Instant::now();
    match (TaggedFiles { store: &store }).gc(Duration::from_millis(200)) {
        Err(TaggedError::GcLockTimeout { lock, .. }) => assert!(lock.ends_with("gc-tagged.lock")),
        other => panic!("a GC behind a running mutation: {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    let turnstile = store.lock_paths().named(GC_TURNSTILE);
    assert!(LockGuard::try_acquire(&turnstile, LockMode::Shared)
        .unwrap()
        .is_some());

    std::thread::scope(|scope| {
        let gc = scope.spawn(|| (TaggedFiles { store: &store }).gc(WAIT));
        // Wait until the GC holds the turnstile: a new mutation cannot enter now.
        let deadline = Instant::now() + WAIT;
        while LockGuard::try_acquire(&turnstile, LockMode::Shared)
            .unwrap()
            .is_some()
        {
            assert!(Instant::now() < deadline, "the GC never took the turnstile");
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(running_put);
        gc.join().unwrap().unwrap();
    });
}

/// Builds the example as a user would (`cargo build --example tagged_files`, into this test's
/// own target directory and profile) and returns the binary cargo reports.
fn example_binary() -> PathBuf {
    let test_binary = std::env::current_exe().unwrap();
    let profile_dir = test_binary.parent().and_then(Path::parent).unwrap(); // <target>/<profile>
    let target_dir = profile_dir.parent().unwrap();
    let profile = match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let output = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--example",
            "tagged_files",
            "--message-format=json",
        ])
        .args(["--profile", profile, "--manifest-path"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["target"]["name"] == "tagged_files")
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .expect("cargo reports the example's executable")
}

#[test]
fn the_example_binary_puts_tags_gets_and_collects() {
    let binary = example_binary();
    let work = tempfile::tempdir().unwrap();
    let store_dir = work.path().join("store");
    let file = work.path().join("hello.txt");
    std::fs::write(&file, b"hello, flavours\n").unwrap();
    let run = |arguments: &[&str]| {
        let output = Command::new(&binary)
            .arg(&store_dir)
            .args(arguments)
            .output()
            .unwrap();
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        (
            output.status.code(),
            text(&output.stdout),
            text(&output.stderr),
        )
    };

    let (code, _, stderr) = run(&["put", "hello"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("usage:"), "{stderr}");
    assert!(!store_dir.exists(), "a usage error created the store");

    let (code, stdout, _) = run(&["put", "hello", file.to_str().unwrap(), "v1"]);
    assert_eq!(code, Some(0));
    let digest = Digest::parse(stdout.trim()).unwrap();
    assert_eq!(run(&["tag", "hello", "stable"]).0, Some(0));
    assert_eq!(run(&["get", "stable"]).1, "hello, flavours\n");
    let (code, _, stderr) = run(&["tag", "hello", "v1"]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("tag \"v1\" exists: rm it first"),
        "{stderr}"
    );

    assert_eq!(run(&["rm", "v1"]).0, Some(0));
    assert_eq!(run(&["gc"]).1, "0 blobs deleted\n", "still tagged stable");
    assert_eq!(run(&["rm", "stable"]).0, Some(0));
    assert_eq!(run(&["gc"]).1, "1 blobs deleted\n");
    let (code, _, stderr) = run(&["get", "stable"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("no tagged.tag \"stable\""), "{stderr}");

    let store = open_store(&store_dir, &BackendChoice::default()).unwrap();
    assert!(!store.contains(&digest).unwrap());
}

/// Every `Type::function` and every repository path docs/FLAVOURS.md cites exists, so the guide
/// does not drift from the code it describes.
#[test]
fn the_guide_cites_only_functions_and_files_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let guide = std::fs::read_to_string(root.join("docs/FLAVOURS.md")).unwrap();
    let mut sources = String::new();
    for dir in ["src", "conformance/src", "examples"] {
        collect_sources(&root.join(dir), &mut sources);
    }
    let cited: Vec<&str> = guide.split('`').skip(1).step_by(2).collect();
    let mut checked = 0;
    for span in cited {
        let span = span.trim_end_matches("()");
        if let Some((_, function)) = span.split_once("::").filter(|(owner, _)| {
            ["Store", "OciStore", "Operation", "TaggedFiles", "LockGuard"].contains(owner)
        }) {
            let function = function.split(['(', '<']).next().unwrap();
            assert!(
                sources.contains(&format!("fn {function}")),
                "no fn {function} ({span})"
            );
            checked += 1;
        } else if ["src/", "conformance/", "examples/", "tests/", "docs/"]
            .iter()
            .any(|prefix| span.starts_with(prefix))
            && !span.contains('<')
        {
            assert!(
                root.join(span).exists(),
                "the guide cites {span}, which does not exist"
            );
            checked += 1;
        }
    }
    assert!(checked > 30, "only {checked} citations checked");
}

fn collect_sources(dir: &Path, into: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_sources(&path, into);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            into.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}
