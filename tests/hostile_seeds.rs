//! Seed corpora for the fuzz targets (`fuzz/`), made from the hostile corpus's generators and
//! a few valid inputs, so fuzzing starts from inputs that reach deep into each parser. The
//! test checks that every valid seed passes its target's entry point and every hostile ACI is
//! refused by it, and that each generator is registered and is a test case. With
//! `HOSTILE_SEED_DIR` set it also writes the seeds there, one directory per target
//! (`fuzz/run-all.sh` does that); nothing binary is committed.

mod hostile_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hostile_support::acis::{gzip, valid_aci};
use hostile_support::catalogue::{ACIS, ARCHIVES, BOMBS, HEADER_BOMBS, LAYOUTS};
use hostile_support::layouts::{read_json, OCI_INDEX, OCI_MANIFEST};
use hostile_support::{Build, Input, RawTar};
use oci_store::stores::appc::fuzzing::check_aci;
use oci_store::stores::oci::fuzzing::{read_oci_archive, walk, ArchiveLimits};
use oci_store::stores::oci::layout_builder::LayoutBuilder;
use oci_store::stores::rootfs::fuzzing::compare_bounded_and_plain;

/// Largest seed kept: libFuzzer's `-max_len` for the file targets is 256 KiB.
const MAX_SEED: usize = 256 * 1024;
const SEPARATOR: u8 = 0xFF;

type Seeds = BTreeMap<String, Vec<u8>>;

/// A layout whose blobs are text (no 0xFF, the seeds' part separator): an image, an index
/// over it, and a referrer of it.
fn text_layout(root: &Path) -> (PathBuf, Vec<u8>, Vec<u8>) {
    let mut builder = LayoutBuilder::new(root).unwrap();
    let image = builder
        .image(
            "linux",
            "amd64",
            &[b"layer one".to_vec(), b"layer two".to_vec()],
        )
        .unwrap();
    let index = builder.index(&[(image.clone(), "linux", "amd64")]).unwrap();
    builder.add_ref(Some("seed:1"), &index);
    builder.finish().unwrap();
    let blob = |d: &oci_store::stores::oci::Descriptor| {
        std::fs::read(builder.blob_path(&d.digest().to_string().parse().unwrap())).unwrap()
    };
    (root.to_path_buf(), blob(&image), blob(&index))
}

/// Every file of a layout under `blobs/` without the separator byte, largest last.
fn text_blobs(layout: &Path) -> Vec<Vec<u8>> {
    let mut blobs = Vec::new();
    let dir = layout.join("blobs/sha256");
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if let Some(bytes) = regular(&path) {
                if !bytes.contains(&SEPARATOR) && bytes.len() < 64 * 1024 {
                    blobs.push(bytes);
                }
            }
        }
    }
    blobs.sort_by_key(|b| (b.len(), b.clone()));
    blobs
}

/// A file's bytes when it is a regular file (a case may leave a FIFO, which would block).
fn regular(path: &Path) -> Option<Vec<u8>> {
    let is_file = path.symlink_metadata().is_ok_and(|m| m.is_file());
    is_file.then(|| std::fs::read(path).ok()).flatten()
}

fn joined(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.join(&[SEPARATOR][..])
}

fn built(build: Build) -> (tempfile::TempDir, hostile_support::Hostile) {
    let temp = tempfile::tempdir().unwrap();
    let case = build(temp.path());
    (temp, case)
}

fn digest_seeds() -> Seeds {
    let sha256 = format!("sha256:{}", "a".repeat(64));
    let sha512 = format!("sha512:{}", "b".repeat(128));
    [
        sha256.clone(),
        sha512,
        sha256.replace(':', "-"),
        sha256.to_uppercase(),
        "md5:d41d8cd98f00b204e9800998ecf8427e".into(),
        "sha256:abcdef".into(),
        "sha256:../../etc/passwd".into(),
        "latest".into(),
        "example.com/app@v2".into(),
        "nginx:1.25--alpine".into(),
        "../../etc".into(),
        "a//b".into(),
        "-x".into(),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, text)| (format!("text-{i}"), text.into_bytes()))
    .collect()
}

fn document_seeds(dir: &Path) -> Seeds {
    let (layout, image, index) = text_layout(&dir.join("text"));
    let rest = text_blobs(&layout);
    let mut seeds = Seeds::new();
    // Selector 0 is the OCI manifest, 1 the OCI index (the target's table).
    let mut parts = vec![image];
    parts.extend(rest.iter().cloned());
    seeds.insert(
        "valid-manifest".into(),
        [&[0u8][..], &joined(&parts)].concat(),
    );
    let mut parts = vec![index];
    parts.extend(rest.iter().cloned());
    seeds.insert("valid-index".into(), [&[1u8][..], &joined(&parts)].concat());
    for (name, build) in LAYOUTS {
        let (_temp, case) = built(*build);
        let Input::Oci(layout) = &case.input else {
            continue;
        };
        let Some(root) = root_blob(layout) else {
            continue;
        };
        let mut parts = vec![root.1];
        parts.extend(text_blobs(layout));
        let seed = [&[root.0][..], &joined(&parts)].concat();
        if seed.len() <= 64 * 1024 {
            seeds.insert(name.to_string(), seed);
        }
    }
    seeds
}

/// The selector and bytes of the blob a layout's `index.json` names first, when it is there.
fn root_blob(layout: &Path) -> Option<(u8, Vec<u8>)> {
    let index = regular(&layout.join("index.json"))?;
    let index: serde_json::Value = serde_json::from_slice(&index).ok()?;
    let entry = &index["manifests"][0];
    let (algorithm, hex) = entry["digest"].as_str()?.split_once(':')?;
    let path = layout.join("blobs").join(algorithm).join(hex);
    let bytes = regular(&path).filter(|b| !b.contains(&SEPARATOR))?;
    let selector = if entry["mediaType"] == OCI_INDEX {
        1
    } else {
        0
    };
    Some((selector, bytes))
}

fn layout_seeds(dir: &Path) -> Seeds {
    let mut seeds = Seeds::new();
    let mut add = |name: &str, layout: &Path| {
        let read = |file: &str| regular(&layout.join(file)).unwrap_or_default();
        let mut parts = vec![read("index.json"), read("oci-layout")];
        parts.extend(text_blobs(layout));
        let seed = joined(&parts);
        if seed.len() <= 64 * 1024 && !parts[0].contains(&SEPARATOR) {
            seeds.insert(name.to_string(), seed);
        }
    };
    let (layout, _, _) = text_layout(&dir.join("text"));
    add("valid", &layout);
    for (name, build) in LAYOUTS {
        let (_temp, case) = built(*build);
        if let Input::Oci(layout) = &case.input {
            add(name, layout);
        }
    }
    seeds
}

fn file_seeds(catalogue: &[(&str, Build)], valid: Vec<(&str, Vec<u8>)>) -> Seeds {
    let mut seeds: Seeds = valid
        .into_iter()
        .map(|(name, bytes)| (name.to_string(), bytes))
        .collect();
    for (name, build) in catalogue {
        let (_temp, case) = built(*build);
        let (Input::Oci(path) | Input::Aci(path) | Input::Unpack { layout: path, .. }) =
            &case.input;
        if let Some(bytes) = regular(path).filter(|b| b.len() <= MAX_SEED) {
            seeds.insert(name.to_string(), bytes);
        }
    }
    seeds
}

fn valid_archive(dir: &Path) -> Vec<u8> {
    let (layout, _, _) = text_layout(&dir.join("archive"));
    let mut tar = RawTar::new();
    tar.layout(&layout);
    tar.finish()
}

#[test]
fn seeds_pass_or_fail_as_their_kind_says_and_are_written_when_asked() {
    let temp = tempfile::tempdir().unwrap();
    let archive = valid_archive(temp.path());
    let mut archive_gz = RawTar::new();
    archive_gz.layout(&text_layout(&temp.path().join("gz")).0);
    let corpora: Vec<(&str, Seeds)> = vec![
        ("digest_and_ref", digest_seeds()),
        ("document_walk", document_seeds(temp.path())),
        ("layout_import", layout_seeds(temp.path())),
        (
            "oci_archive",
            file_seeds(
                &[ARCHIVES, BOMBS, HEADER_BOMBS].concat(),
                vec![
                    ("valid", archive.clone()),
                    ("valid-gz", archive_gz.finish_gzip()),
                ],
            ),
        ),
        (
            "bounded_tar",
            file_seeds(
                &[ARCHIVES, ACIS].concat(),
                vec![
                    ("valid", archive.clone()),
                    ("valid-aci", valid_aci("example.com/seed")),
                ],
            )
            .into_iter()
            .filter(|(_, bytes)| bytes.len() <= 64 * 1024)
            .collect(),
        ),
        (
            "aci",
            file_seeds(
                &[ACIS, HEADER_BOMBS].concat(),
                vec![
                    ("valid", valid_aci("example.com/seed")),
                    ("valid-gz", gzip(&valid_aci("example.com/seed"))),
                ],
            ),
        ),
    ];

    // The valid seeds pass each entry point, so the targets start from inputs that go deep.
    let documents = &corpora[1].1;
    // A manifest reaches itself, its config and two layers; the index, one more.
    for (name, media_type, reached) in [
        ("valid-manifest", OCI_MANIFEST, 4),
        ("valid-index", OCI_INDEX, 5),
    ] {
        let blobs: Vec<Vec<u8>> = documents[name][1..]
            .split(|b| *b == SEPARATOR)
            .map(<[u8]>::to_vec)
            .collect();
        assert_eq!(walk(media_type, &blobs, true).unwrap(), reached, "{name}");
    }
    let archive_file = temp.path().join("valid.tar");
    std::fs::write(&archive_file, &archive).unwrap();
    let limits = ArchiveLimits {
        max_entries: 10_000,
        max_bytes: 64 << 20,
    };
    assert_eq!(read_oci_archive(&archive_file, limits).unwrap(), 5);
    let acis = &corpora[5].1;
    assert_eq!(check_aci(&acis["valid"][..]).unwrap(), "example.com/seed");
    assert_eq!(
        check_aci(&acis["valid-gz"][..]).unwrap(),
        "example.com/seed"
    );
    // Every hostile ACI that is a file is refused by the fuzz entry point as by the import.
    for (name, bytes) in acis.iter().filter(|(name, _)| !name.starts_with("valid")) {
        assert!(check_aci(&bytes[..]).is_err(), "{name} passed check_aci");
    }
    // The bounded tar reader reads every seed as the tar crate does (it panics otherwise).
    for (name, bytes) in &corpora[4].1 {
        if let Err(refused) = compare_bounded_and_plain(bytes) {
            panic!("{name}: refused by the bounded tar reader: {refused}");
        }
    }
    for (_, seeds) in &corpora {
        assert!(seeds.len() >= 10, "too few seeds: {:?}", seeds.keys());
    }

    if let Some(dir) = std::env::var_os("HOSTILE_SEED_DIR") {
        for (target, seeds) in &corpora {
            let target_dir = Path::new(&dir).join(target);
            std::fs::create_dir_all(&target_dir).unwrap();
            for (name, bytes) in seeds {
                std::fs::write(target_dir.join(name), bytes).unwrap();
            }
        }
    }
}

/// Each generator is in the catalogue and is a case of its test file, so none is left out of
/// the corpus or the seeds.
#[test]
fn every_generator_is_registered_and_tested() {
    for (source, test_file, catalogue) in [
        (
            include_str!("hostile_support/layouts.rs"),
            include_str!("hostile_layouts.rs"),
            LAYOUTS,
        ),
        (
            include_str!("hostile_support/archives.rs"),
            include_str!("hostile_archives.rs"),
            ARCHIVES,
        ),
        (
            include_str!("hostile_support/acis.rs"),
            include_str!("hostile_acis.rs"),
            ACIS,
        ),
        (
            include_str!("hostile_support/bombs.rs"),
            include_str!("hostile_bombs.rs"),
            BOMBS,
        ),
        (
            include_str!("hostile_support/header_bombs.rs"),
            include_str!("hostile_bombs.rs"),
            HEADER_BOMBS,
        ),
    ] {
        let generators: Vec<&str> = source
            .lines()
            .filter(|line| line.starts_with("pub fn ") && line.ends_with("-> Hostile {"))
            .map(|line| line["pub fn ".len()..].split('(').next().unwrap())
            .collect();
        let registered: Vec<&str> = catalogue.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            generators, registered,
            "the catalogue is not the generators"
        );
        for name in generators {
            assert!(
                test_file.contains(&format!("#[case::{name}(")),
                "{name} is not a test case"
            );
        }
    }
    let total = LAYOUTS.len() + ARCHIVES.len() + ACIS.len() + BOMBS.len() + HEADER_BOMBS.len();
    assert!(total >= 100, "the corpus has {total} inputs");
    let _ = read_json;
}
