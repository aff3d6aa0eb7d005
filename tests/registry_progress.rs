//! Transfer events of a pull and a push, per layer, through the library API: the plan, each
//! layer started, advanced to its size and finished (or skipped), then done; the plan counts
//! every blob that ends finished or skipped. And what a user's terminal shows of them: the
//! transfer's bar and a line per layer, read off a real pseudo-terminal (tmux).

mod cli_support;
mod interop_tools;
mod registry_support;

use std::sync::Mutex;

use cli_support::terminal::{script, words, Terminal};
use cli_support::{pseudo_random_bytes, TestStore};
use interop_tools::{layout_blobs, manifest_layers, path_str, tools_available, umoci_image};
use oci_store::registry::{
    pull, push, ClientOptions, Credentials, PullOptions, PushOptions, Reference, RegistryClient,
};
use oci_store::store::{open_store, BackendChoice, Direction, Progress, SkipReason, TransferEvent};
use oci_store::stores::oci::OciStore;
use registry_support::{Registry, RegistryAuth, REGISTRY_TOOL};

#[derive(Default)]
struct Recorded(Mutex<Vec<TransferEvent>>);

impl Progress for Recorded {
    fn transfer(&self, event: TransferEvent) {
        self.0.lock().unwrap().push(event);
    }
}

impl Recorded {
    fn take(&self) -> Vec<TransferEvent> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

#[test]
fn pulls_and_pushes_report_each_layer() {
    if !tools_available(
        "pulls_and_pushes_report_each_layer",
        &[REGISTRY_TOOL, "umoci"],
    ) {
        return;
    }
    let registry = Registry::start(RegistryAuth::None);
    let source = TestStore::new();
    let built = source.scratch("built");
    let first = pseudo_random_bytes(3 << 20, 1);
    let second = pseudo_random_bytes(1 << 20, 2);
    let digest = umoci_image(&built, "latest", &[("/a", &first), ("/b", &second)]);
    source.ok(&[
        "import",
        "--sref",
        "latest",
        "--dref",
        "app:1",
        path_str(&built),
    ]);
    let layers = manifest_layers(&built, &digest);
    let sizes = layout_blobs(&built);

    let client = RegistryClient::new(
        &registry.address(),
        Credentials::Anonymous,
        ClientOptions::default(),
    )
    .unwrap();
    let reference = Reference::parse(&format!("{}/app:1", registry.address())).unwrap();
    let recorded = Recorded::default();
    let source_store = open_store(&source.path(), &BackendChoice::default()).unwrap();
    push(
        &OciStore::new(&source_store),
        &client,
        "app:1",
        &reference,
        &PushOptions::default(),
        &recorded,
    )
    .unwrap();
    let events = recorded.take();
    assert!(
        matches!(
            events.first(),
            Some(TransferEvent::Planned {
                blobs: 3,
                direction: Direction::Upload,
                ..
            })
        ),
        "{events:?}"
    );
    assert_eq!(events.last(), Some(&TransferEvent::Done));
    let uploaded = events
        .iter()
        .filter(|e| matches!(e, TransferEvent::Finished { .. }))
        .count();
    assert_eq!(uploaded, 3, "config and two layers uploaded: {events:?}");

    let target = TestStore::new();
    let store = open_store(&target.path(), &BackendChoice::default()).unwrap();
    let oci = OciStore::new(&store);
    pull(
        &oci,
        &client,
        &reference,
        &PullOptions::default(),
        &recorded,
    )
    .unwrap();
    let events = recorded.take();
    let layer_bytes: u64 = layers.iter().map(|l| sizes[l].len() as u64).sum();
    assert_eq!(
        events.first(),
        Some(&TransferEvent::Planned {
            blobs: 2,
            bytes: layer_bytes,
            direction: Direction::Download
        }),
        "the plan names the layers to download"
    );
    for layer in &layers {
        let size = sizes[layer].len() as u64;
        let mine = |event: &&TransferEvent| match event {
            TransferEvent::Started { digest, .. }
            | TransferEvent::Advanced { digest, .. }
            | TransferEvent::Finished { digest } => digest.as_str() == layer,
            _ => false,
        };
        let of_layer: Vec<&TransferEvent> = events.iter().filter(mine).collect();
        assert!(
            matches!(of_layer.first(), Some(TransferEvent::Started { size: s, .. }) if *s == size),
            "{of_layer:?}"
        );
        let advanced: u64 = of_layer
            .iter()
            .map(|e| match e {
                TransferEvent::Advanced { delta, .. } => *delta,
                _ => 0,
            })
            .sum();
        assert_eq!(advanced, size, "every byte of {layer} reported");
        let reports = of_layer
            .iter()
            .filter(|e| matches!(e, TransferEvent::Advanced { .. }))
            .count() as u64;
        assert!(
            reports >= size >> 20,
            "a layer of megabytes reports as it goes, about every MiB: {reports} reports"
        );
        assert!(matches!(
            of_layer.last(),
            Some(TransferEvent::Finished { .. })
        ));
    }
    assert_eq!(events.last(), Some(&TransferEvent::Done));
    let ended = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                TransferEvent::Finished { .. } | TransferEvent::Skipped { .. }
            )
        })
        .count();
    assert_eq!(ended, 2, "as many blobs end as were planned: {events:?}");

    // Again: nothing to download, every blob skipped as stored.
    pull(
        &oci,
        &client,
        &reference,
        &PullOptions::default(),
        &recorded,
    )
    .unwrap();
    let events = recorded.take();
    assert!(
        matches!(
            events.first(),
            Some(TransferEvent::Planned {
                blobs: 4,
                bytes: 0,
                ..
            })
        ),
        "four blobs to check, nothing to move: {events:?}"
    );
    let skipped = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                TransferEvent::Skipped {
                    reason: SkipReason::AlreadyStored,
                    ..
                }
            )
        })
        .count();
    assert_eq!(skipped, 4, "manifest, config, two layers: {events:?}");
}

#[test]
fn a_terminal_shows_a_line_per_layer_for_push_and_pull() {
    if !tools_available(
        "a_terminal_shows_a_line_per_layer_for_push_and_pull",
        &[REGISTRY_TOOL, "umoci"],
    ) {
        return;
    }
    let Some(terminal) = Terminal::start() else {
        return;
    };
    let registry = Registry::start(RegistryAuth::None);
    let source = TestStore::new();
    let built = source.scratch("built");
    let first = pseudo_random_bytes(2 << 20, 11);
    let second = pseudo_random_bytes(1 << 20, 12);
    let digest = umoci_image(&built, "latest", &[("/a", &first), ("/b", &second)]);
    let layers = manifest_layers(&built, &digest);
    let remote = format!("{}/app:1", registry.address());
    let layout = path_str(&built);
    let commands = [
        words(&[
            "-q", "import", "--sref", "latest", "--dref", "app:1", layout,
        ]),
        words(&["push", "app:1", &remote]),
    ];
    let pushed = terminal.screen_after("push", &script(&source, "push", &commands));
    let target = TestStore::new();
    let pulled = terminal.screen_after(
        "pull",
        &script(&target, "pull", &[words(&["pull", &remote])]),
    );
    for (what, screen) in [("pushing", &pushed), ("pulling", &pulled)] {
        assert!(!screen.contains("FAILED"), "a command failed:\n{screen}");
        let overall = screen
            .lines()
            .find(|line| line.contains(what))
            .unwrap_or_else(|| panic!("no {what:?} bar on the screen:\n{screen}"));
        assert!(overall.contains("MiB"), "no byte count in {overall}");
        for layer in &layers {
            let short = &layer.trim_start_matches("sha256:")[..12];
            let line = screen
                .lines()
                .find(|line| line.contains(short))
                .unwrap_or_else(|| panic!("no line for layer {short}:\n{screen}"));
            assert!(line.contains("done"), "layer {short} not done: {line}");
        }
    }
}
