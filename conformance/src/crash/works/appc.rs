//! appc works: an import then a render into a new directory (through the tree cache), and the
//! appc GC removing an old image with its remote record and rendered tree.

use oci_store::stores::appc::{AppcGcOptions, AppcStore, ImportOptions, RemoteRecord};
use oci_store::Store;

use super::super::trial::Trial;
use super::Work;
use crate::appc::support::{image_id_of, simple_image};
use crate::check::TestResult;
use crate::{ensure, Context};

const CONTENT: &str = "rendered after a crash";

fn image_path(trial: &Trial, name: &str) -> std::path::PathBuf {
    trial.inputs().join(format!("{name}.aci"))
}

/// Writes the image `name` (with `labels` and a file holding `content`) to
/// `inputs/<file>.aci`; returns its ID.
fn write_image(
    trial: &Trial,
    file: &str,
    name: &str,
    labels: &[(&str, &str)],
    content: &str,
) -> Result<String, String> {
    let tar = simple_image(name, labels, content);
    let path = image_path(trial, file);
    std::fs::write(&path, &tar).context(format!("writing {}", path.display()))?;
    Ok(image_id_of(&tar))
}

fn has_info(store: &Store, id: &str) -> Result<bool, String> {
    match AppcStore::new(store).info(id) {
        Ok(_) => Ok(true),
        Err(_) => Ok(false),
    }
}

/// `appc import` of one image, then `appc render` of it into a new directory.
pub struct AppcRender;

impl AppcRender {
    fn target(trial: &Trial, attempt: u32) -> std::path::PathBuf {
        trial.out().join(format!("rootfs-{attempt}"))
    }
}

impl Work for AppcRender {
    fn name(&self) -> &'static str {
        "appc-render"
    }

    fn setup(&self, trial: &Trial) -> Result<(), String> {
        trial.create_store()?;
        write_image(trial, "app", "crash/app", &[], CONTENT).map(drop)
    }

    fn run(&self, trial: &Trial) -> Result<(), String> {
        let store = trial.open_store()?;
        let appc = AppcStore::new(&store);
        let report = appc
            .import_file(&image_path(trial, "app"), &ImportOptions::default())
            .context("appc import")?;
        trial.ack("imported")?;
        // Each attempt renders into its own new directory (render refuses a non-empty one).
        appc.render(&report.id, Some(&Self::target(trial, trial.attempt)))
            .context("appc render")?;
        trial.ack("rendered")?;
        Ok(())
    }

    fn check(&self, store: &Store, trial: &Trial, completed: bool) -> TestResult {
        let tar = simple_image("crash/app", &[], CONTENT);
        let id = image_id_of(&tar);
        ensure!(
            !(completed || trial.acked("imported")) || has_info(store, &id)?,
            "the acknowledged import is gone"
        );
        let target = Self::target(trial, trial.attempt);
        if target.exists() {
            // A target exists only whole: it was renamed into place after its hash matched.
            let content = std::fs::read_to_string(target.join("etc/content"))
                .context("reading the rendered file")?;
            ensure!(content == CONTENT, "rendered file holds {content:?}");
        } else {
            ensure!(
                !(completed || trial.acked("rendered")),
                "the acknowledged render target {} is missing",
                target.display()
            );
        }
        Ok(())
    }

    fn settle(&self, store: &Store, _trial: &Trial) -> TestResult {
        // An import killed between its commit and its info leaves an appc-held blob without
        // info: the appc GC releases it (and keeps every image used within a day).
        AppcStore::new(store)
            .gc(&AppcGcOptions::default())
            .map(drop)
            .context("appc gc")
    }
}

const REMOTE_URL: &str = "https://example.test/crash/app-1.aci";

/// The appc GC keeping the newest image of each name: the old one goes with its remote
/// record and its rendered tree.
pub struct AppcGc;

struct GcImages {
    old: String,
    new: String,
    other: String,
}

fn gc_images(trial: &Trial) -> Result<GcImages, String> {
    Ok(GcImages {
        old: write_image(trial, "old", "crash/app", &[("version", "1")], "old")?,
        new: write_image(trial, "new", "crash/app", &[("version", "2")], "new")?,
        other: write_image(trial, "other", "crash/other", &[], "other")?,
    })
}

impl Work for AppcGc {
    fn name(&self) -> &'static str {
        "appc-gc"
    }

    fn frees_space(&self) -> bool {
        true
    }

    fn setup(&self, trial: &Trial) -> Result<(), String> {
        let store = trial.create_store()?;
        let appc = AppcStore::new(&store);
        let images = gc_images(trial)?;
        for name in ["old", "new", "other"] {
            appc.import_file(&image_path(trial, name), &ImportOptions::default())
                .context(format!("importing {name}"))?;
            std::thread::sleep(std::time::Duration::from_millis(3));
        }
        // Both rendered (the old one's tree goes with it), the new one last: `keep_per_name`
        // keeps the most recently used.
        appc.render(&images.old, None).context("rendering")?;
        std::thread::sleep(std::time::Duration::from_millis(3));
        appc.render(&images.new, None).context("rendering")?;
        appc.set_remote(&RemoteRecord {
            aci_url: REMOTE_URL.to_string(),
            signature_url: None,
            etag: Some("\"1\"".to_string()),
            max_age_secs: 60,
            download_time_ms: 1,
            image: images.old.clone(),
        })
        .context("recording the remote")?;
        Ok(())
    }

    fn run(&self, trial: &Trial) -> Result<(), String> {
        let store = trial.open_store()?;
        // No grace period: only `keep_per_name` keeps images, the newest of each name.
        AppcStore::new(&store)
            .gc(&AppcGcOptions {
                grace_period_ms: 0,
                keep_per_name: Some(1),
                dry_run: false,
                now_ms: None,
            })
            .map(drop)
            .context("appc gc")
    }

    fn check(&self, store: &Store, trial: &Trial, completed: bool) -> TestResult {
        let images = gc_images(trial)?;
        for kept in [&images.new, &images.other] {
            ensure!(
                has_info(store, kept)?,
                "appc gc removed the kept image {kept}"
            );
        }
        if completed {
            ensure!(!has_info(store, &images.old)?, "appc gc kept the old image");
        }
        Ok(())
    }
}
