//! The model of one thread's own objects: blob slots with their holders, key/value entries,
//! extra data, refs, the lease, appc images. Only that thread touches them, and nothing any
//! other thread does may change them (the flavour GCs keep what a ref, a lease or a holder
//! keeps; the appc GC keeps the newest image of each name, and own images each have a name),
//! so every answer about them is predicted exactly: the checker replays the thread's log
//! through [`OwnModel::judge`], which compares each answer with the prediction and then
//! applies the operation. The worker uses the same model to choose sensible arguments.

use std::collections::BTreeMap;

use super::event::{AppcImage, EntryView, ErrorClass, LayoutChoice, Observed, Op, Outcome};
use super::inputs::{OWN_ACIS, OWN_SLOTS};
use super::verdict::Verdict;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnBlob {
    pub present: bool,
    /// `owner.base`, from a write through the base store.
    pub base_held: bool,
    pub note: Option<String>,
}

#[derive(Clone, Debug)]
pub struct OwnModel {
    pub own_image: String,
    /// The own image's own layer: digest and size.
    pub own_layer: (String, u64),
    pub own_acis: Vec<String>,
    pub blobs: Vec<OwnBlob>,
    pub entries: BTreeMap<usize, EntryView>,
    /// Ref number -> manifest digest.
    pub refs: BTreeMap<usize, String>,
    /// Ref number -> digest last exported under its name into the shared layout.
    pub exported: BTreeMap<usize, String>,
    pub lease: Option<String>,
    /// Whether the own image is known to be whole in the store: set when an import or a tag
    /// by digest put it there, cleared as soon as nothing protects it (a GC may then sweep
    /// it, and a lease created later protects only what is still there).
    pub own_image_kept: bool,
    pub acis: Vec<bool>,
    /// `blob put` of each own appc image's tar (the base store's hold).
    pub aci_base_held: Vec<bool>,
    /// `blob put` of the own image's own layer.
    pub layer_base_held: bool,
}

/// What the model predicts for an operation.
enum Expect {
    Answer(Observed),
    Fails(ErrorClass),
    /// Either outcome is right (the thread's own image when nothing protects it: a GC may
    /// have swept it or not).
    Either,
}

impl Default for OwnModel {
    fn default() -> Self {
        OwnModel::new()
    }
}

impl OwnModel {
    pub fn new() -> Self {
        OwnModel {
            own_image: String::new(),
            own_layer: (String::new(), 0),
            own_acis: Vec::new(),
            blobs: vec![OwnBlob::default(); OWN_SLOTS],
            entries: BTreeMap::new(),
            refs: BTreeMap::new(),
            exported: BTreeMap::new(),
            lease: None,
            own_image_kept: false,
            acis: vec![false; OWN_ACIS],
            aci_base_held: vec![false; OWN_ACIS],
            layer_base_held: false,
        }
    }

    /// Whether the thread's own image is kept by something: an own ref or the lease.
    pub fn own_image_protected(&self) -> bool {
        self.lease.is_some() || self.refs.values().any(|d| *d == self.own_image)
    }

    /// Whether the own image must be whole in the store: put there and protected ever since.
    pub fn own_image_must_be_whole(&self) -> bool {
        self.own_image_kept && self.own_image_protected()
    }

    /// Whether the own image's own layer must be in the store: the base store holds it, or
    /// the image is whole and protected.
    pub fn own_layer_must_be_there(&self) -> bool {
        self.layer_base_held || self.own_image_must_be_whole()
    }

    /// Whether an own appc image's tar is in the store: the flavour or the base store holds it.
    pub fn aci_blob_present(&self, index: usize) -> bool {
        self.acis[index] || self.aci_base_held[index]
    }

    fn references_to(&self, slot: usize) -> usize {
        self.entries
            .values()
            .filter(|entry| entry.blob == Some(slot))
            .count()
    }

    /// A holder of `slot` let go: the blob goes when nothing else holds it.
    fn decide(&mut self, slot: usize) {
        let blob = &self.blobs[slot];
        if blob.present && !blob.base_held && self.references_to(slot) == 0 {
            self.vanish(slot);
        }
    }

    /// The delete cascade: record, extra data, entries referencing it, content.
    fn vanish(&mut self, slot: usize) {
        self.blobs[slot] = OwnBlob::default();
        self.entries.retain(|_, entry| entry.blob != Some(slot));
    }

    fn next_version(&self, key: usize) -> u64 {
        self.entries.get(&key).map_or(1, |entry| entry.version + 1)
    }

    fn set_entry(&mut self, key: usize, value: &str, blob: Option<usize>) {
        let version = self.next_version(key);
        let replaced = self.entries.get(&key).and_then(|e| e.blob);
        self.entries.insert(
            key,
            EntryView {
                value: value.to_string(),
                version,
                blob,
            },
        );
        if let Some(old) = replaced.filter(|old| Some(*old) != blob) {
            self.decide(old);
        }
    }

    fn ref_answer(&self, name: usize, answer: Observed) -> Expect {
        if self.refs.contains_key(&name) {
            Expect::Answer(answer)
        } else {
            Expect::Fails(ErrorClass::NotFound)
        }
    }

    fn image_answer(&self, image: AppcImage, answer: Observed) -> Expect {
        match image {
            AppcImage::Own(index) if self.acis[index] => Expect::Answer(answer),
            AppcImage::Own(_) => Expect::Fails(ErrorClass::NotFound),
            AppcImage::Shared(_) => Expect::Either,
        }
    }

    /// The prediction for `op`, before it is applied. Answers that carry data the model
    /// cannot know in advance (the digest an import of a shared layout names) are predicted
    /// as the answer seen, and recorded by [`OwnModel::apply`].
    fn expect(&self, op: &Op, seen: &Outcome) -> Expect {
        let seen_answer = match seen {
            Outcome::Done(observed) => observed.clone(),
            Outcome::Failed { .. } => Observed::Nothing,
        };
        match op {
            Op::OwnWrite { .. } | Op::Begin { .. } => Expect::Answer(Observed::Nothing),
            Op::OwnRead { slot } => {
                if self.blobs[*slot].present {
                    Expect::Answer(Observed::Flag(true))
                } else {
                    Expect::Fails(ErrorClass::NotFound)
                }
            }
            Op::OwnRelease { slot } => {
                let blob = &self.blobs[*slot];
                Expect::Answer(Observed::Flag(
                    blob.present && self.references_to(*slot) == 0,
                ))
            }
            Op::OwnDelete { slot } => Expect::Answer(Observed::Flag(self.blobs[*slot].present)),
            Op::KvPut { key, blob, .. } => match blob {
                Some(slot) if !self.blobs[*slot].present => Expect::Fails(ErrorClass::NotFound),
                _ => Expect::Answer(Observed::Version(self.next_version(*key))),
            },
            Op::KvCompareAndSet { key, expected, .. } => {
                if self.entries.get(key).map(|e| e.version) == *expected {
                    Expect::Answer(Observed::Version(self.next_version(*key)))
                } else {
                    Expect::Fails(ErrorClass::VersionConflict)
                }
            }
            Op::KvRemove { key } => Expect::Answer(Observed::Flag(self.entries.contains_key(key))),
            Op::KvGet { key } => Expect::Answer(Observed::Entry(self.entries.get(key).cloned())),
            Op::ExtraSet { slot, .. } => {
                if self.blobs[*slot].present {
                    Expect::Answer(Observed::Nothing)
                } else {
                    Expect::Fails(ErrorClass::NotFound)
                }
            }
            Op::ExtraGet { slot } => {
                Expect::Answer(Observed::Extra(self.blobs[*slot].note.clone()))
            }
            Op::OciImport { layout, .. } => match (layout, &seen_answer) {
                (LayoutChoice::Own, _) => Expect::Answer(Observed::Text(self.own_image.clone())),
                (LayoutChoice::Shared(_), Observed::Text(_)) => Expect::Answer(seen_answer),
                (LayoutChoice::Shared(_), _) => Expect::Answer(Observed::Text("a digest".into())),
            },
            Op::OciTag { from, .. } => self.ref_answer(*from, Observed::Nothing),
            Op::OciTagDigest { .. } => {
                if self.own_image_must_be_whole() {
                    Expect::Answer(Observed::Nothing)
                } else {
                    Expect::Either
                }
            }
            Op::OciRemoveRef { name } => self.ref_answer(*name, Observed::Nothing),
            Op::OciCheck { name } => self.ref_answer(*name, Observed::Flag(true)),
            Op::OciExport { name } | Op::OciUnpack { name } => match self.refs.get(name) {
                Some(digest) if matches!(op, Op::OciExport { .. }) => {
                    Expect::Answer(Observed::Text(digest.clone()))
                }
                // Unpack names the manifest, which is the ref's digest for these images.
                Some(digest) => Expect::Answer(Observed::Text(digest.clone())),
                None => Expect::Fails(ErrorClass::NotFound),
            },
            Op::LeaseCreate => match &seen_answer {
                Observed::Text(_) => Expect::Answer(seen_answer),
                _ => Expect::Answer(Observed::Text("a lease id".into())),
            },
            Op::LeaseRemove { id } => {
                if self.lease.as_deref() == Some(id) {
                    Expect::Answer(Observed::Nothing)
                } else {
                    Expect::Fails(ErrorClass::NotFound)
                }
            }
            Op::AppcImport { image } => match image {
                AppcImage::Own(index) => {
                    Expect::Answer(Observed::Text(self.own_acis[*index].clone()))
                }
                AppcImage::Shared(_) => Expect::Either,
            },
            // Whether the blob went: unless the base store holds it too.
            Op::AppcRemove { image } => {
                let kept = matches!(image, AppcImage::Own(index) if self.aci_base_held[*index]);
                self.image_answer(*image, Observed::Flag(!kept))
            }
            Op::AciBlobPut { .. } | Op::LayerBlobPut => Expect::Answer(Observed::Nothing),
            Op::AciBlobRelease { image } => Expect::Answer(Observed::Flag(
                self.aci_base_held[*image] && !self.acis[*image],
            )),
            // Whether the OCI flavour still holds the layer depends on the GCs, unless the
            // image is protected.
            Op::LayerBlobRelease if self.own_image_must_be_whole() => {
                Expect::Answer(Observed::Flag(false))
            }
            Op::LayerBlobRead if self.own_layer_must_be_there() => {
                Expect::Answer(Observed::Flag(true))
            }
            Op::LayerBlobRelease | Op::LayerBlobRead => Expect::Either,
            Op::AppcRender { image } => match image {
                AppcImage::Own(index) => {
                    self.image_answer(*image, Observed::Text(self.own_acis[*index].clone()))
                }
                AppcImage::Shared(_) => Expect::Either,
            },
            Op::AppcExport { image } => self.image_answer(*image, Observed::Nothing),
            // Shared objects are judged by the shared history.
            _ => Expect::Either,
        }
    }

    /// Applies an operation's effect, as answered.
    fn apply(&mut self, op: &Op, outcome: &Outcome) {
        let done = matches!(outcome, Outcome::Done(_));
        let answer = match outcome {
            Outcome::Done(observed) => Some(observed),
            Outcome::Failed { .. } => None,
        };
        match op {
            Op::Begin {
                own_image,
                own_acis,
                own_layer,
                own_layer_size,
            } => {
                self.own_layer = (own_layer.clone(), *own_layer_size);
                self.own_image = own_image.clone();
                self.own_acis = own_acis.clone();
            }
            Op::OwnWrite { slot } if done => {
                let blob = &mut self.blobs[*slot];
                blob.present = true;
                blob.base_held = true;
            }
            Op::OwnRelease { slot } if done => {
                self.blobs[*slot].base_held = false;
                self.decide(*slot);
            }
            Op::OwnDelete { slot } if done => self.vanish(*slot),
            Op::KvPut { key, value, blob } if done => self.set_entry(*key, value, *blob),
            Op::KvCompareAndSet { key, value, .. } if done => self.set_entry(*key, value, None),
            Op::KvRemove { key } if done => {
                if let Some(entry) = self.entries.remove(key) {
                    if let Some(slot) = entry.blob {
                        self.decide(slot);
                    }
                }
            }
            Op::ExtraSet { slot, value } if done => self.blobs[*slot].note = Some(value.clone()),
            Op::OciImport { name, .. } => {
                if let Some(Observed::Text(digest)) = answer {
                    self.refs.insert(*name, digest.clone());
                    if *digest == self.own_image {
                        self.own_image_kept = true;
                    }
                }
            }
            Op::OciTag { from, to } if done => {
                if let Some(digest) = self.refs.get(from).cloned() {
                    self.refs.insert(*to, digest);
                }
            }
            Op::OciTagDigest { to } if done => {
                self.refs.insert(*to, self.own_image.clone());
                self.own_image_kept = true;
            }
            Op::OciRemoveRef { name } if done => {
                self.refs.remove(name);
            }
            Op::OciExport { name } if done => {
                if let Some(digest) = self.refs.get(name).cloned() {
                    self.exported.insert(*name, digest);
                }
            }
            Op::LeaseCreate => {
                if let Some(Observed::Text(id)) = answer {
                    self.lease = Some(id.clone());
                }
            }
            Op::LeaseRemove { .. } if done => self.lease = None,
            Op::AppcImport {
                image: AppcImage::Own(index),
            } if done => self.acis[*index] = true,
            Op::AciBlobPut { image } if done => self.aci_base_held[*image] = true,
            Op::AciBlobRelease { image } if done => self.aci_base_held[*image] = false,
            Op::LayerBlobPut if done => self.layer_base_held = true,
            Op::LayerBlobRelease if done => self.layer_base_held = false,
            Op::AppcRemove {
                image: AppcImage::Own(index),
            } if done => self.acis[*index] = false,
            _ => {}
        }
        if !self.own_image_protected() {
            self.own_image_kept = false;
        }
    }

    /// Compares what the store answered with the prediction, then applies the operation.
    pub fn judge(&mut self, op: &Op, outcome: &Outcome) -> Verdict {
        let verdict = match (self.expect(op, outcome), outcome) {
            (Expect::Either, Outcome::Failed { class, message }) => match class {
                ErrorClass::NotFound => {
                    Verdict::Expected("own OCI image or layer swept while unprotected")
                }
                ErrorClass::LockTimeout => Verdict::Expected("gc lock wait timed out"),
                _ => Verdict::Unexpected(message.clone()),
            },
            (Expect::Either, Outcome::Done(_)) => Verdict::Fine,
            (Expect::Answer(want), Outcome::Done(got)) if *got == want => Verdict::Fine,
            (Expect::Answer(want), Outcome::Done(got)) => {
                Verdict::Violation(format!("answered {got:?}, the model says {want:?}"))
            }
            (Expect::Fails(want), Outcome::Failed { class, .. }) if *class == want => {
                Verdict::Expected(match want {
                    ErrorClass::NotFound => "own object absent, as the model says",
                    _ => "own compare-and-set with a stale version, as the model says",
                })
            }
            (Expect::Fails(want), Outcome::Done(got)) => Verdict::Violation(format!(
                "answered {got:?}, the model says it fails ({want:?})"
            )),
            (_, Outcome::Failed { class, message }) => match class {
                ErrorClass::NotFound => Verdict::Violation(format!(
                    "not found, but the model says it is there: {message}"
                )),
                ErrorClass::WrongContent => Verdict::Violation(message.clone()),
                ErrorClass::LockTimeout => Verdict::Expected("gc lock wait timed out"),
                _ => Verdict::Unexpected(message.clone()),
            },
        };
        self.apply(op, outcome);
        verdict
    }
}
