//! Dependencies: each resolved by image ID, or by name and labels (as `get` chooses),
//! recursively, each image visited once (so cycles end).

use std::collections::HashSet;

use serde::Serialize;

use super::error::{AppcError, AppcResult};
use super::manifest::{parse_image_id, Dependency};
use super::AppcStore;
use crate::traits::Digest;

/// A dependency a manifest names that no stored image satisfies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MissingDependency {
    /// The image whose manifest names the dependency.
    pub required_by: String,
    /// The dependency's image name.
    pub image_name: String,
    /// The image ID it asks for, if it names one.
    pub image_id: Option<String>,
    /// The labels it asks for (name, value).
    pub labels: Vec<(String, String)>,
}

impl std::fmt::Display for MissingDependency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.image_name)?;
        if let Some(id) = &self.image_id {
            write!(f, " (imageID {id})")?;
        }
        for (k, v) in &self.labels {
            write!(f, " {k}={v}")?;
        }
        write!(f, ", required by {}", self.required_by)
    }
}

/// What [`AppcStore::dependency_closure`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DependencyReport {
    /// The image whose dependencies were resolved (its ID).
    pub image: String,
    /// The image and every dependency found, upper image first, depth first in manifest
    /// order, each once: the order a render applies them in (reversed).
    pub resolved: Vec<String>,
    /// Dependencies no stored image satisfies; a render of the image fails while any remain.
    pub missing: Vec<MissingDependency>,
}

impl DependencyReport {
    /// Whether every dependency was found.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }
}

impl AppcStore<'_> {
    /// Resolves every dependency of the image `key` names, recursively.
    pub fn check(&self, key: &str) -> AppcResult<DependencyReport> {
        let root = self.resolve_key(key)?;
        self.dependency_closure(&root)
    }

    /// The image and its dependencies, upper first; what could not be resolved is listed.
    pub fn dependency_closure(&self, root: &Digest) -> AppcResult<DependencyReport> {
        let mut report = DependencyReport {
            image: root.dashed(),
            ..DependencyReport::default()
        };
        let mut visited: HashSet<Digest> = HashSet::new();
        self.visit(root, &mut visited, &mut report)?;
        Ok(report)
    }

    fn visit(
        &self,
        image: &Digest,
        visited: &mut HashSet<Digest>,
        report: &mut DependencyReport,
    ) -> AppcResult<()> {
        if !visited.insert(image.clone()) {
            return Ok(());
        }
        let Some(info) = self.read_info(image)? else {
            return Err(AppcError::MissingInfo {
                image: image.clone(),
            });
        };
        report.resolved.push(image.dashed());
        for dependency in info.image_manifest()?.dependencies {
            match self.resolve_dependency(&dependency)? {
                Some(found) => self.visit(&found, visited, report)?,
                None => report.missing.push(MissingDependency {
                    required_by: format!("{} ({})", info.name, info.id),
                    image_name: dependency.image_name.clone(),
                    image_id: dependency.image_id.clone(),
                    labels: dependency
                        .labels
                        .iter()
                        .map(|l| (l.name.clone(), l.value.clone()))
                        .collect(),
                }),
            }
        }
        Ok(())
    }

    /// The stored image a dependency names: by ID when it gives one (the name must agree),
    /// else by name and labels.
    fn resolve_dependency(&self, dependency: &Dependency) -> AppcResult<Option<Digest>> {
        if let Some(id) = &dependency.image_id {
            let Some(digest) = parse_image_id(id) else {
                return Ok(None);
            };
            return Ok(match self.read_info(&digest)? {
                Some(info) if info.name == dependency.image_name => Some(digest),
                _ => None,
            });
        }
        let labels: Vec<(String, String)> = dependency
            .labels
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect();
        match self.find(&dependency.image_name, &labels) {
            Ok(info) => Ok(Some(info.digest()?)),
            Err(AppcError::ImageNotFound(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }
}
