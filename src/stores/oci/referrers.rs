//! The referrers index: key/value entries `oci.referrer/<subject digest>/<referrer digest>`,
//! written at import for every manifest or index with a `subject`. The value is the referrer's
//! descriptor as the distribution spec's referrers API gives it (media type, digest, size,
//! artifact type, annotations); the entry references the referrer blob, so it goes with it.
//! Looking referrers up is then a key-prefix scan, not a read of every manifest.

use std::collections::HashMap;

use oci_spec::image::{Descriptor, MediaType};

use super::descriptor::{descriptor_json, digest_of, media_type_of, new_descriptor};
use super::error::{OciError, OciResult};
use super::graph::Reached;
use super::{OciStore, REFERRER_DATA_TYPE};
use crate::traits::{Digest, KvOp};

fn referrer_key(subject: &Digest, referrer: &Digest) -> String {
    format!("{subject}/{referrer}")
}

impl OciStore<'_> {
    /// Indexes `reached` as a referrer of its subject, if it has one. The referrer blob must
    /// already be stored.
    pub(super) fn record_referrer(&self, reached: &Reached) -> OciResult<()> {
        if let Some(KvOp::Put {
            data_type,
            key,
            value,
            blob,
        }) = Self::referrer_entry(reached)?
        {
            self.store
                .put_data(&data_type, &key, &value, blob.as_ref())?;
        }
        Ok(())
    }

    /// The referrer-index entry for `reached`, if it has a subject: written in the import's
    /// atomic batch, after the referrer blob is stored.
    pub(crate) fn referrer_entry(reached: &Reached) -> OciResult<Option<KvOp>> {
        let Some(links) = &reached.links else {
            return Ok(None);
        };
        let Some(subject) = &links.subject else {
            return Ok(None);
        };
        let subject_digest = digest_of(subject, &format!("the subject of {}", reached.digest))?;
        let mut descriptor = new_descriptor(
            &media_type_of(&reached.descriptor),
            &reached.digest,
            reached.descriptor.size(),
        );
        descriptor.set_artifact_type(links.artifact_type.as_deref().map(MediaType::from));
        descriptor.set_annotations(links.annotations.clone().filter(|a| !a.is_empty()));
        Ok(Some(KvOp::Put {
            data_type: REFERRER_DATA_TYPE.to_string(),
            key: referrer_key(&subject_digest, &reached.digest),
            value: descriptor_json(&descriptor),
            blob: Some(reached.digest.clone()),
        }))
    }

    /// Every referrer-index entry, by subject (each subject's referrers in digest order): for
    /// a walk that asks about every document it meets (the GC's mark), one scan instead of a
    /// lookup per document.
    pub(crate) fn referrers_by_subject(&self) -> OciResult<HashMap<Digest, Vec<Descriptor>>> {
        let mut by_subject: HashMap<Digest, Vec<Descriptor>> = HashMap::new();
        for (key, entry) in self.store.list_data(REFERRER_DATA_TYPE, "")? {
            let context = format!("referrer index entry {key}");
            let subject = key.split('/').next().unwrap_or_default();
            let subject = Digest::parse(subject).map_err(|source| OciError::InvalidDigest {
                value: subject.to_string(),
                context: context.clone(),
                source,
            })?;
            let descriptor = super::descriptor::parse_descriptor(&entry.value, &context)?;
            by_subject.entry(subject).or_default().push(descriptor);
        }
        Ok(by_subject)
    }

    /// Manifests whose `subject` is `subject`, in digest order; with `artifact_type`, only
    /// those of that artifact type.
    pub fn referrers(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> OciResult<Vec<Descriptor>> {
        let mut found = Vec::new();
        for (key, entry) in self
            .store
            .list_data(REFERRER_DATA_TYPE, &format!("{subject}/"))?
        {
            let descriptor: Descriptor = super::descriptor::parse_descriptor(
                &entry.value,
                &format!("referrer index entry {key}"),
            )?;
            let matches = artifact_type.is_none_or(|wanted| {
                descriptor
                    .artifact_type()
                    .as_ref()
                    .is_some_and(|t| t.to_string() == wanted)
            });
            if matches {
                found.push(descriptor);
            }
        }
        Ok(found)
    }
}
