//! Rendering: images and dependencies flattened upper first, `pathWhitelist`, the tree cache
//! (reused, verified, removed with its images), and two renders at once doing the work once.

use std::path::Path;

use serde_json::json;

use super::support::*;
use crate::base_store::StoreFixture;
use crate::check::TestResult;
use crate::{ensure, ensure_eq, Context};

/// base: etc/a, etc/b, etc/c, bin/tool; app (depends on base) has etc/a and whitelists
/// /etc/a and /etc/b. Returns (base id, app id).
fn two_layer_images(appc: &Appc<'_>, whitelist: bool) -> Result<(String, String), String> {
    let base = Aci::new(&manifest("example.com/base", &[("version", "1.0.0")]))
        .dir("rootfs/etc")
        .file("rootfs/etc/a", b"from base")
        .file("rootfs/etc/b", b"b from base")
        .file("rootfs/etc/c", b"c from base")
        .dir("rootfs/bin")
        .file("rootfs/bin/tool", b"tool")
        .symlink("rootfs/bin/alias", "tool")
        .hardlink("rootfs/bin/same", "rootfs/bin/tool")
        .tar();
    let base_id = import(appc, &base, "base")?.id;
    let mut m = manifest("example.com/app", &[("version", "1.0.0")]);
    m["dependencies"] = json!([{"imageName": "example.com/base", "imageID": base_id}]);
    if whitelist {
        m["pathWhitelist"] = json!(["/etc/a", "/etc/b"]);
    }
    let app = Aci::new(&m)
        .dir("rootfs/etc")
        .file("rootfs/etc/a", b"from app")
        .tar();
    let app_id = import(appc, &app, "app")?.id;
    Ok((base_id, app_id))
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

pub fn render_flattens_upper_first_and_honours_the_whitelist(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let appc = Appc::new(&store);
    let (base, app) = two_layer_images(&appc, true)?;
    let report = appc.render(&app, None).context("render")?;
    ensure_eq!(
        report.images,
        vec![app.clone(), base.clone()],
        "images, upper first"
    );
    let root = &report.tree.rootfs;
    ensure_eq!(
        read(&root.join("etc/a")).as_deref(),
        Some("from app"),
        "the upper image wins"
    );
    ensure_eq!(
        read(&root.join("etc/b")).as_deref(),
        Some("b from base"),
        "whitelisted from below"
    );
    ensure!(
        !root.join("etc/c").exists(),
        "etc/c is not whitelisted but was rendered"
    );
    ensure!(
        !root.join("bin/tool").exists(),
        "bin/tool is not whitelisted but was rendered"
    );
    ensure!(
        !root.join("manifest").exists(),
        "the manifest was rendered into the rootfs"
    );

    // Without a whitelist everything of the dependency fills in.
    let store2_dir = tempfile::tempdir().context("second store")?;
    let store2 = fixture.open_in(store2_dir.path())?;
    let appc2 = Appc::new(&store2);
    let (_, app2) = two_layer_images(&appc2, false)?;
    let full = appc2.render(&app2, None).context("render")?;
    ensure_eq!(
        read(&full.tree.rootfs.join("etc/c")).as_deref(),
        Some("c from base"),
        "no whitelist"
    );
    ensure_eq!(
        std::fs::read_link(full.tree.rootfs.join("bin/alias")).ok(),
        Some(std::path::PathBuf::from("tool")),
        "symlink"
    );
    use std::os::unix::fs::MetadataExt;
    let inode = |p: &str| {
        std::fs::metadata(full.tree.rootfs.join(p))
            .map(|m| m.ino())
            .ok()
    };
    ensure!(
        inode("bin/same").is_some() && inode("bin/same") == inode("bin/tool"),
        "hard link"
    );
    ensure_eq!(
        appc2.info(&app2).context("info")?.rendered_tree_size,
        Some(full.tree.size),
        "the rendered-tree size is in the image info"
    );
    Ok(())
}

pub fn trees_are_reused_verified_copied_and_go_with_their_images(
    fixture: &StoreFixture,
) -> TestResult {
    let store = fixture.open()?;
    // Every use written, not one per interval: the second render's is to be seen.
    store.set_last_used_interval(std::time::Duration::ZERO);
    let appc = Appc::new(&store);
    let (base, app) = two_layer_images(&appc, false)?;
    let first = appc.render(&app, None).context("render")?;
    ensure!(
        !first.tree.reused && first.applied.is_some(),
        "the first render was not a render"
    );
    let used = appc
        .info(&base)
        .context("info")?
        .last_used_ms
        .ok_or("rendering is a use of each image")?;
    std::thread::sleep(std::time::Duration::from_millis(5));
    let dir = tempfile::tempdir().context("scratch")?;
    let target = dir.path().join("rootfs");
    let second = appc
        .render(&app[..12], Some(&target))
        .context("render again")?;
    ensure!(
        second.tree.reused && second.applied.is_none(),
        "the tree was not reused"
    );
    ensure_eq!(second.tree.hash, first.tree.hash, "hash");
    let used_again = appc.info(&base).context("info")?.last_used_ms.unwrap_or(0);
    ensure!(used_again > used, "a reused tree did not count as a use");
    ensure_eq!(
        read(&target.join("etc/a")).as_deref(),
        Some("from app"),
        "copied tree"
    );
    ensure!(
        appc.render(&app, Some(&target)).is_err(),
        "rendering into a non-empty directory"
    );

    appc.verify_tree(&app).context("verify an intact tree")?;
    std::fs::write(first.tree.rootfs.join("etc/a"), b"tampered").context("tamper")?;
    ensure!(
        appc.verify_tree(&app).is_err(),
        "verify-tree missed a changed file"
    );

    // The tree contains base: removing base removes it.
    let removed = appc.remove(&base).context("rm base")?;
    ensure_eq!(removed.rendered_trees, 1, "trees removed with the image");
    ensure!(!first.tree.dir.exists(), "the tree outlived an image in it");
    Ok(())
}

pub fn render_names_a_missing_dependency(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let appc = Appc::new(&store);
    let mut m = manifest("example.com/app", &[]);
    m["dependencies"] = json!([{"imageName": "example.com/absent"}]);
    let app = import(&appc, &Aci::new(&m).tar(), "app")?.id;
    match appc.render(&app, None) {
        Err(error) => ensure!(
            error.to_string().contains("example.com/absent"),
            "the error does not name the dependency: {error}"
        ),
        Ok(_) => return Err("rendered without its dependency".to_string()),
    }
    Ok(())
}

pub fn two_renders_at_once_render_once(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let appc = Appc::new(&store);
    let (_, app) = two_layer_images(&appc, false)?;
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let store = &store;
                let app = &app;
                scope.spawn(move || Appc::new(store).render(app, None))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("no panic"))
            .collect()
    });
    let mut rendered = 0;
    for result in results {
        if !result.context("concurrent render")?.tree.reused {
            rendered += 1;
        }
    }
    ensure_eq!(rendered, 1, "renders that did the work");
    Ok(())
}

/// An upper image's symlink where a dependency has a directory: the dependency's files are not
/// written through it, wherever it points (here: a directory outside the tree).
pub fn dependencies_never_write_through_an_upper_symlink(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let appc = Appc::new(&store);
    let outside = tempfile::tempdir().context("outside directory")?;
    let outside_path = outside
        .path()
        .to_str()
        .ok_or("UTF-8 temp path")?
        .to_string();
    let base = Aci::new(&manifest("example.com/base", &[]))
        .dir("rootfs/etc")
        .file("rootfs/etc/evil", b"must not escape")
        .tar();
    let base_id = import(&appc, &base, "base")?.id;
    let mut m = manifest("example.com/app", &[]);
    m["dependencies"] = json!([{"imageName": "example.com/base", "imageID": base_id}]);
    let app = Aci::new(&m).symlink("rootfs/etc", &outside_path).tar();
    let app_id = import(&appc, &app, "app")?.id;
    let report = appc.render(&app_id, None).context("render")?;
    ensure!(
        !outside.path().join("evil").exists(),
        "a dependency's file was written through the upper image's symlink"
    );
    ensure_eq!(
        std::fs::read_link(report.tree.rootfs.join("etc")).ok(),
        Some(std::path::PathBuf::from(&outside_path)),
        "the upper image's symlink wins"
    );
    Ok(())
}
