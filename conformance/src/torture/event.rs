//! What a torture worker logs: one [`Event`] per operation, with the operation, when it ran
//! (wall-clock nanoseconds, comparable across the processes of one host) and what the store
//! answered. The checker replays these logs; the workers never judge their own results.

use serde::{Deserialize, Serialize};

/// Which OCI layout an import reads: one of the shared inputs, or the thread's own (whose
/// image nothing but this thread ever names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayoutChoice {
    Shared(usize),
    Own,
}

/// An appc image: one of this thread's own (a name of its own), or one of the shared versions
/// every thread imports, removes and collects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppcImage {
    Own(usize),
    Shared(usize),
}

/// One operation. "Shared" objects are touched by every thread of every process; "own"
/// objects (blob slots, key/value keys, refs `<thread>-r<n>`, appc images of the thread's
/// name) by one thread only, so the checker can predict every answer about them exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// The first event of every thread: what its own inputs are.
    Begin {
        own_image: String,
        own_acis: Vec<String>,
        /// The digest and size of the own image's own layer.
        own_layer: String,
        own_layer_size: u64,
    },
    SharedWrite {
        item: usize,
    },
    SharedRead {
        item: usize,
    },
    /// `Store::delete`: the full cascade.
    SharedDelete {
        item: usize,
    },
    /// `Store::release(d, "base")`: `blob rm`.
    SharedRelease {
        item: usize,
    },
    CounterIncrement {
        counter: usize,
    },
    OwnWrite {
        slot: usize,
    },
    OwnRead {
        slot: usize,
    },
    OwnRelease {
        slot: usize,
    },
    OwnDelete {
        slot: usize,
    },
    KvPut {
        key: usize,
        value: String,
        blob: Option<usize>,
    },
    KvCompareAndSet {
        key: usize,
        value: String,
        expected: Option<u64>,
    },
    KvRemove {
        key: usize,
    },
    KvGet {
        key: usize,
    },
    /// A shared entry referencing a shared blob (another holder of it).
    SharedKvPut {
        key: usize,
        item: usize,
    },
    SharedKvRemove {
        key: usize,
    },
    /// `blob put` of an own appc image's tar: the base store holds it beside the appc flavour.
    AciBlobPut {
        image: usize,
    },
    AciBlobRelease {
        image: usize,
    },
    /// `blob put` of the own OCI image's own layer: the base store holds it beside the OCI
    /// flavour, so no OCI GC may take it.
    LayerBlobPut,
    LayerBlobRelease,
    LayerBlobRead,
    ExtraSet {
        slot: usize,
        value: String,
    },
    ExtraGet {
        slot: usize,
    },
    OciImport {
        layout: LayoutChoice,
        name: usize,
    },
    OciTag {
        from: usize,
        to: usize,
    },
    /// Tags the thread's own image by its manifest digest (the second step of "put now, held
    /// by a lease, tag later").
    OciTagDigest {
        to: usize,
    },
    OciRemoveRef {
        name: usize,
    },
    OciCheck {
        name: usize,
    },
    /// Exports an own ref into the one layout every thread exports into.
    OciExport {
        name: usize,
    },
    OciUnpack {
        name: usize,
    },
    /// A lease on the thread's own image's manifest.
    LeaseCreate,
    LeaseRemove {
        id: String,
    },
    SharedOciImport {
        layout: usize,
        name: usize,
    },
    SharedOciRemoveRef {
        name: usize,
    },
    SharedOciCheck {
        name: usize,
    },
    OciGc,
    /// A prune of the shared refs by age (own refs are out of its filter).
    OciPrune,
    AppcImport {
        image: AppcImage,
    },
    AppcRemove {
        image: AppcImage,
    },
    AppcRender {
        image: AppcImage,
    },
    AppcExport {
        image: AppcImage,
    },
    AppcGc,
    BaseGc,
    Fsck {
        repair: bool,
    },
}

impl Op {
    /// Whether this is the first event of a thread.
    pub fn is_begin(&self) -> bool {
        matches!(self, Op::Begin { .. })
    }

    /// The name latencies and counts are reported under.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Begin { .. } => "begin",
            Op::SharedWrite { .. } => "blob.write.shared",
            Op::SharedRead { .. } => "blob.read.shared",
            Op::SharedDelete { .. } => "blob.delete.shared",
            Op::SharedRelease { .. } => "blob.release.shared",
            Op::CounterIncrement { .. } => "kv.cas.counter",
            Op::OwnWrite { .. } => "blob.write.own",
            Op::OwnRead { .. } => "blob.read.own",
            Op::OwnRelease { .. } => "blob.release.own",
            Op::OwnDelete { .. } => "blob.delete.own",
            Op::KvPut { .. } => "kv.put",
            Op::KvCompareAndSet { .. } => "kv.cas",
            Op::KvRemove { .. } => "kv.remove",
            Op::KvGet { .. } => "kv.get",
            Op::SharedKvPut { .. } => "kv.put.shared",
            Op::SharedKvRemove { .. } => "kv.remove.shared",
            Op::AciBlobPut { .. } => "blob.write.aci",
            Op::AciBlobRelease { .. } => "blob.release.aci",
            Op::LayerBlobPut => "blob.write.layer",
            Op::LayerBlobRelease => "blob.release.layer",
            Op::LayerBlobRead => "blob.read.layer",
            Op::ExtraSet { .. } => "extra.set",
            Op::ExtraGet { .. } => "extra.get",
            Op::OciImport { .. } => "oci.import.own",
            Op::OciTag { .. } => "oci.tag",
            Op::OciTagDigest { .. } => "oci.tag.digest",
            Op::OciRemoveRef { .. } => "oci.rm.own",
            Op::OciCheck { .. } => "oci.check.own",
            Op::OciExport { .. } => "oci.export",
            Op::OciUnpack { .. } => "oci.unpack",
            Op::LeaseCreate => "oci.lease.create",
            Op::LeaseRemove { .. } => "oci.lease.remove",
            Op::SharedOciImport { .. } => "oci.import.shared",
            Op::SharedOciRemoveRef { .. } => "oci.rm.shared",
            Op::SharedOciCheck { .. } => "oci.check.shared",
            Op::OciGc => "oci.gc",
            Op::OciPrune => "oci.prune",
            Op::AppcImport { .. } => "appc.import",
            Op::AppcRemove { .. } => "appc.rm",
            Op::AppcRender { .. } => "appc.render",
            Op::AppcExport { .. } => "appc.export",
            Op::AppcGc => "appc.gc",
            Op::BaseGc => "base.gc",
            Op::Fsck { repair: false } => "fsck",
            Op::Fsck { repair: true } => "fsck.repair",
        }
    }
}

/// A key/value entry as seen by `get`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryView {
    pub value: String,
    pub version: u64,
    /// The blob slot the entry references (own entries reference own slots only).
    pub blob: Option<usize>,
}

/// What a successful operation answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Observed {
    Nothing,
    /// Delete and release: whether the blob went. Read: content found and verified. Check:
    /// the ref is complete. Remove: whether there was something to remove.
    Flag(bool),
    Version(u64),
    Entry(Option<EntryView>),
    Extra(Option<String>),
    /// Import: the digest the ref names afterwards. Lease: its id.
    Text(String),
    /// fsck: its problems, as `kind digest`.
    Problems(Vec<String>),
    /// OCI GC: the blobs it let go of; appc GC: the images it removed.
    Swept(Vec<String>),
}

/// How a failure is classed when it is logged; the checker decides whether it was expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Not found, missing blob, unknown ref, lease or image.
    NotFound,
    /// A compare-and-set lost the race.
    VersionConflict,
    /// A flavour GC waited its bound for running mutations and gave up.
    LockTimeout,
    /// Read content did not hash to its digest or size.
    WrongContent,
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Done(Observed),
    Failed { class: ErrorClass, message: String },
}

impl Outcome {
    pub fn failed(class: ErrorClass, message: impl Into<String>) -> Outcome {
        Outcome::Failed {
            class,
            message: message.into(),
        }
    }
}

/// One line of a worker's log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Event {
    /// `p<process>t<thread>`.
    pub thread: String,
    pub seq: u64,
    pub start_ns: u64,
    pub end_ns: u64,
    #[serde(flatten)]
    pub op: Op,
    pub outcome: Outcome,
}

impl Event {
    pub fn latency_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }
}

/// Nanoseconds since the Unix epoch: comparable between the processes of one host.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
