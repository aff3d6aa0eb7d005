//! Progress bars: on a terminal, import, export, unpack, fsck and gc show their phase with
//! counts (read off a real pseudo-terminal's screen, in tmux); with -q on the same terminal,
//! and whenever stderr is not a terminal, none of it appears.

mod cli_support;

use std::path::PathBuf;

use cli_support::terminal::{script, words, Terminal};
use cli_support::{pseudo_random_bytes, TestStore};
use oci_store::stores::oci::layout_builder::LayoutBuilder;

/// A layout with a layer big enough that byte counts show (1 MiB of incompressible data).
fn layout(store: &TestStore) -> PathBuf {
    let root = store.scratch("layout");
    let mut builder = LayoutBuilder::new(&root).unwrap();
    let data = pseudo_random_bytes(1 << 20, 7);
    let big = layer(&[("data.bin", &data)]);
    let small = layer(&[("hostname", b"demo\n")]);
    let image = builder.image("linux", "amd64", &[big, small]).unwrap();
    builder.add_ref(Some("app:1"), &image);
    builder.finish().unwrap();
    root
}

/// A gzip-compressed layer of regular files with complete ustar headers.
fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, content) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, name, *content).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut encoder, &tar).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn a_terminal_shows_progress_and_quiet_or_a_pipe_shows_none() {
    let store = TestStore::new();
    let layout = layout(&store);
    let layout = layout.to_str().unwrap();
    let exported = store.scratch("exported");
    let rootfs = store.scratch("rootfs");
    let Some(terminal) = Terminal::start() else {
        return;
    };

    let commands = [
        words(&["import", layout]),
        words(&["export", "--sref", "app:1", exported.to_str().unwrap()]),
        words(&["unpack", "app:1", rootfs.to_str().unwrap()]),
        words(&["fsck"]),
        words(&["rm", "app:1"]),
        words(&["gc"]),
    ];
    let screen = terminal.screen_after("shown", &script(&store, "shown", &commands));
    assert!(!screen.contains("FAILED"), "a command failed:\n{screen}");
    // Four blobs in the layout (manifest, config, two layers); two layers to unpack.
    for needed in [
        "importing",
        "items 4/4",
        "exporting",
        "unpacking",
        "items 2/2",
        "checking",
        "marking",
        "sweeping",
        "collecting",
    ] {
        assert!(
            screen.contains(needed),
            "no {needed:?} on the screen:\n{screen}"
        );
    }
    // Bytes and a rate on the import's bar: the big layer is over 1 MiB.
    let import_line = screen
        .lines()
        .find(|line| line.contains("importing"))
        .unwrap();
    assert!(import_line.contains("MiB"), "{import_line}");
    assert!(import_line.contains("/s"), "no rate in {import_line}");

    // The same work with -q on the same terminal: no bars.
    let store = TestStore::new();
    let layout = self::layout(&store);
    let layout = layout.to_str().unwrap();
    let commands = [
        words(&["-q", "import", layout]),
        words(&["-q", "fsck"]),
        words(&["-q", "gc"]),
    ];
    let screen = terminal.screen_after("quiet", &script(&store, "quiet", &commands));
    assert!(!screen.contains("FAILED"), "a command failed:\n{screen}");
    for absent in ["importing", "checking", "marking", "items"] {
        assert!(
            !screen.contains(absent),
            "{absent:?} shown with -q:\n{screen}"
        );
    }
}

#[test]
fn stderr_that_is_not_a_terminal_gets_no_progress() {
    let store = TestStore::new();
    let layout = layout(&store);
    let rootfs = store.scratch("rootfs");
    for args in [
        &["import", layout.to_str().unwrap()][..],
        &["unpack", "app:1", rootfs.to_str().unwrap()],
        &["fsck"],
        &["gc"],
    ] {
        let output = store.run(args, b"");
        cli_support::assert_success(args, &output);
        assert!(
            output.stderr.is_empty(),
            "{args:?} wrote to a pipe's stderr: {:?}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
