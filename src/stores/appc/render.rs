//! Rendering an image with its dependencies into a root file system, through the shared safe
//! renderer (`stores::rootfs`): the upper image first and winning (lower images only fill in
//! what is not there), only `rootfs/` of each ACI, each blob verified against its image ID as
//! it streams.
//!
//! `pathWhitelist`: an image's own non-directory entries are kept only if its whitelist (when
//! it has one) lists them, and the entries of a dependency only if the whitelist of every
//! image above it in its branch that has one lists them (rkt applied the topmost one; taking
//! all of them is the same when only one declares a list, and never lets through what an upper
//! image excluded). Directories are always kept: they hold what is listed.
//!
//! Trees are cached in the store directory (`trees/appc/`), keyed by the resolved image list,
//! so a render of the same images again reuses the tree (and counts as a use of each image),
//! and two renders at once do the work once. A tree goes when any image in it is removed.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::error::{AppcError, AppcResult};
use super::manifest::parse_image_id;
use super::{AppcStore, FLAVOUR};
use crate::stores::rootfs::{
    ApplyOptions, ApplyReport, EntryKind, Existing, Ownership, Render, RenderedTree, TreeStore,
    TreeSummary, VerifyingReader,
};
use crate::traits::Digest;

/// Tree-cache keys start with this, then the image IDs in render order, space-separated.
const TREE_KEY_PREFIX: &str = "appc-render-v1";

/// What [`AppcStore::render`] did.
#[derive(Clone, Debug, Serialize)]
pub struct RenderReport {
    /// The image rendered (its ID).
    pub image: String,
    /// The images rendered, upper first.
    pub images: Vec<String>,
    /// The cached tree.
    pub tree: RenderedTree,
    /// Where it was copied (and verified), when a target was given.
    pub target: Option<PathBuf>,
    /// What applying the images did; `None` when the cached tree was reused.
    pub applied: Option<ApplyReport>,
}

/// One image to apply and the whitelists its non-directory entries must pass.
struct Layer {
    digest: Digest,
    whitelists: Vec<Arc<BTreeSet<PathBuf>>>,
}

impl AppcStore<'_> {
    pub(crate) fn trees(&self) -> AppcResult<TreeStore> {
        Ok(TreeStore::open(self.store, FLAVOUR)?)
    }

    /// Renders (or reuses) the tree of the image `key` names with its dependencies; copies it
    /// to `target` (which must not exist, or be an empty directory) when given, verifying the
    /// copy's hash.
    pub fn render(&self, key: &str, target: Option<&Path>) -> AppcResult<RenderReport> {
        // Shared GC lock: the images and their tree stay while we render and copy.
        let _mutation = self.mutation_lock()?;
        let root = self.resolve_key(key)?;
        let layers = self.render_plan(&root)?;
        let tree_key = tree_key(&layers);
        let trees = self.trees()?;
        let mut applied = None;
        let tree = trees.get_or_render(&tree_key, |rootfs: &Path| -> AppcResult<()> {
            let mut total = ApplyReport::default();
            // One render for all the images: directories get their modes after the last.
            let mut render = Render::begin(rootfs)?;
            let progress = self.progress;
            progress.start(
                "rendering",
                crate::store::Totals::items(layers.len() as u64),
            );
            for layer in &layers {
                total.add(&self.apply_image(layer, &mut render)?);
                progress.item_done();
            }
            render.finish()?;
            progress.finish();
            applied = Some(total);
            Ok(())
        })?;
        crate::crash_point!("appc.render.after-tree");
        for layer in &layers {
            self.touch(&layer.digest)?;
        }
        crate::crash_point!("appc.render.after-touch");
        self.record_tree_size(&root, tree.size)?;
        let target = match target {
            Some(target) => {
                // One verified pass, under the tree's shared lock; nothing is left at `target`
                // unless the copy hashes as the tree did.
                let ownership = if rustix::process::geteuid().is_root() {
                    Ownership::FromArchive
                } else {
                    Ownership::CurrentUser
                };
                crate::crash_point!("appc.render.before-copy-out");
                trees.copy_out(&tree_key, target, ownership)?;
                Some(target.to_path_buf())
            }
            None => None,
        };
        Ok(RenderReport {
            image: root.dashed(),
            images: layers.iter().map(|l| l.digest.dashed()).collect(),
            tree,
            target,
            applied,
        })
    }

    /// Recomputes the hash of the image's cached tree and compares it with the recorded one.
    pub fn verify_tree(&self, key: &str) -> AppcResult<(RenderedTree, TreeSummary)> {
        let root = self.resolve_key(key)?;
        let tree_key = tree_key(&self.render_plan(&root)?);
        let trees = self.trees()?;
        let tree = trees.get(&tree_key)?.ok_or_else(|| AppcError::Render {
            image: root.dashed(),
            reason: "it has no rendered tree; run `oci-store appc render` first".to_string(),
        })?;
        let summary = trees.verify(&tree_key)?;
        Ok((tree, summary))
    }

    /// Every cached tree that contains the image; called when it goes.
    pub(crate) fn remove_trees_of(&self, digest: &Digest) -> AppcResult<u64> {
        let trees = self.trees()?;
        let id = digest.dashed();
        let mut removed = 0;
        for tree in trees.list()? {
            let contains = tree
                .key
                .strip_prefix(TREE_KEY_PREFIX)
                .is_some_and(|ids| ids.split(' ').any(|i| i == id));
            if contains && trees.remove(&tree.key)? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn record_tree_size(&self, root: &Digest, size: u64) -> AppcResult<()> {
        let _image = self.image_lock(root)?;
        if let Some(mut info) = self.read_info(root)? {
            if info.rendered_tree_size != Some(size) {
                info.rendered_tree_size = Some(size);
                self.write_info(root, &info)?;
            }
        }
        Ok(())
    }

    /// The images to apply, upper first, each once, with the whitelists above it; a missing
    /// dependency stops the render, naming it.
    fn render_plan(&self, root: &Digest) -> AppcResult<Vec<Layer>> {
        let report = self.dependency_closure(root)?;
        if let Some(missing) = report.missing.first() {
            return Err(AppcError::Render {
                image: root.dashed(),
                reason: format!(
                    "dependency {missing} is not stored ({} missing; see `oci-store appc check`)",
                    report.missing.len()
                ),
            });
        }
        let mut layers = Vec::new();
        let mut visited = HashSet::new();
        self.plan(root, Vec::new(), &mut visited, &mut layers)?;
        Ok(layers)
    }

    fn plan(
        &self,
        image: &Digest,
        above: Vec<Arc<BTreeSet<PathBuf>>>,
        visited: &mut HashSet<Digest>,
        layers: &mut Vec<Layer>,
    ) -> AppcResult<()> {
        if !visited.insert(image.clone()) {
            return Ok(());
        }
        let info = self
            .read_info(image)?
            .ok_or_else(|| AppcError::MissingInfo {
                image: image.clone(),
            })?;
        let manifest = info.image_manifest()?;
        let mut whitelists = above.clone();
        if !manifest.path_whitelist.is_empty() {
            let own: BTreeSet<PathBuf> = manifest
                .path_whitelist
                .iter()
                .map(|p| PathBuf::from(p.trim_start_matches('/')))
                .collect();
            whitelists.push(Arc::new(own));
        }
        layers.push(Layer {
            digest: image.clone(),
            whitelists: whitelists.clone(),
        });
        for dependency in &manifest.dependencies {
            let found = match dependency.image_id.as_deref().and_then(parse_image_id) {
                Some(digest) => digest,
                None => {
                    let labels: Vec<(String, String)> = dependency
                        .labels
                        .iter()
                        .map(|l| (l.name.clone(), l.value.clone()))
                        .collect();
                    self.find(&dependency.image_name, &labels)?.digest()?
                }
            };
            self.plan(&found, whitelists.clone(), visited, layers)?;
        }
        Ok(())
    }

    fn apply_image(&self, layer: &Layer, render: &mut Render) -> AppcResult<ApplyReport> {
        let record = self.store.info(&layer.digest)?;
        let reader = self.store.read(&layer.digest)?;
        let mut verifying = VerifyingReader::new(
            reader,
            layer.digest.clone(),
            Some(record.size),
            format!("appc image {}", layer.digest.dashed()),
        );
        let mut options = ApplyOptions::for_current_user()
            .with_strip_prefix("rootfs")
            .with_whiteouts(false)
            .with_existing(Existing::KeepExisting);
        if !layer.whitelists.is_empty() {
            let whitelists = layer.whitelists.clone();
            options = options.with_path_filter(move |path: &Path, kind: EntryKind| {
                kind == EntryKind::Directory
                    || path.as_os_str().is_empty()
                    || whitelists.iter().all(|list| list.contains(path))
            });
        }
        let report =
            render
                .apply_layer(&mut verifying, &options)
                .map_err(|e| AppcError::Render {
                    image: layer.digest.dashed(),
                    reason: e.to_string(),
                })?;
        verifying.finish()?;
        Ok(report)
    }
}

fn tree_key(layers: &[Layer]) -> String {
    let mut key = TREE_KEY_PREFIX.to_string();
    for layer in layers {
        key.push(' ');
        key.push_str(&layer.digest.dashed());
    }
    // Owners and device nodes depend on who renders.
    if !rustix::process::geteuid().is_root() {
        key.push_str(" rootless");
    }
    key
}
