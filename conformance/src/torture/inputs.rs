//! The inputs of a torture run, made once by the orchestrator before any worker starts (shared
//! OCI layouts and appc images, the shared export layout) and, per thread, by each worker
//! thread (its own layout, its own ACIs, its own blob contents). Own inputs are derived from
//! the thread's name, so no two threads share one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::layouts::shared_layouts;
use crate::appc::support::{compressions, image_id_of, simple_image};
use crate::content::content;
use crate::Context;

/// How many shared OCI layouts, shared appc versions, own blob slots, own keys, own refs and
/// own appc images there are.
pub const SHARED_LAYOUTS: usize = 3;
pub const SHARED_ACIS: usize = 3;
pub const OWN_SLOTS: usize = 6;
pub const OWN_KEYS: usize = 4;
pub const OWN_REFS: usize = 3;
pub const SHARED_REFS: usize = 2;
pub const SHARED_KEYS: usize = 3;
/// Shared blobs: the first twenty workload contents' first twelve. Shared key/value entries
/// reference only the last four, so that removing or rewriting an entry (which may delete
/// the blob it referenced, if it was its last holder) is a possible removal of those four
/// only, and the first eight keep the tightest check.
pub const SHARED_ITEMS: std::ops::Range<usize> = 0..12;
pub const REFERENCED_ITEMS: std::ops::Range<usize> = 8..12;
pub const OWN_ACIS: usize = 2;
pub const COUNTERS: usize = 2;

/// The kv data type of own entries and of the shared counters.
pub const OWN_KV_TYPE: &str = "torture.own";
pub const COUNTER_TYPE: &str = "torture.counter";
pub const SHARED_KV_TYPE: &str = "torture.shared";
/// The extra data type attached to own blobs (not an owner mark: it holds nothing).
pub const NOTE_TYPE: &str = "torture.note";
pub const SHARED_ACI_NAME: &str = "example.com/torture/shared";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SharedLayout {
    pub source: PathBuf,
    pub ref_name: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SharedAci {
    pub path: PathBuf,
    pub id: String,
}

/// What every worker reads from `inputs.json` in the work directory.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Inputs {
    pub layouts: Vec<SharedLayout>,
    pub acis: Vec<SharedAci>,
    /// The layout every thread exports into.
    pub export_layout: PathBuf,
    /// Where threads build their own inputs and unpack, render and export to.
    pub scratch: PathBuf,
}

impl Inputs {
    pub const FILE: &'static str = "inputs.json";

    /// Makes the shared inputs under `work` and writes `inputs.json`.
    pub fn prepare(work: &Path) -> Result<Inputs, String> {
        let layouts_dir = work.join("layouts");
        std::fs::create_dir_all(&layouts_dir).context("creating the layouts directory")?;
        let layouts = shared_layouts(&layouts_dir, SHARED_LAYOUTS)?
            .into_iter()
            .map(|(source, ref_name)| SharedLayout { source, ref_name })
            .collect();
        let forms = compressions();
        let mut acis = Vec::new();
        for version in 0..SHARED_ACIS {
            let tar = simple_image(
                SHARED_ACI_NAME,
                &[("version", &format!("{}", version + 1))],
                &format!("shared image, version {}", version + 1),
            );
            let (form, compress) = &forms[version % forms.len()];
            let path = work.join(format!("shared-{version}.aci.{form}"));
            std::fs::write(&path, compress(&tar)).context(format!("writing {}", path.display()))?;
            acis.push(SharedAci {
                path,
                id: image_id_of(&tar),
            });
        }
        let inputs = Inputs {
            layouts,
            acis,
            export_layout: work.join("exported-layout"),
            scratch: work.join("scratch"),
        };
        std::fs::create_dir_all(&inputs.scratch).context("creating the scratch directory")?;
        let json = serde_json::to_vec_pretty(&inputs).expect("inputs serialize");
        std::fs::write(work.join(Inputs::FILE), json).context("writing inputs.json")?;
        Ok(inputs)
    }

    pub fn read(work: &Path) -> Result<Inputs, String> {
        let path = work.join(Inputs::FILE);
        let bytes = std::fs::read(&path).context(format!("reading {}", path.display()))?;
        serde_json::from_slice(&bytes).context(format!("parsing {}", path.display()))
    }
}

/// Content of an own blob slot: unique to the thread; slot 0 is over 1 MiB (chunk
/// boundaries of the database blob stores), the others small.
pub fn own_blob(thread: &str, slot: usize) -> Vec<u8> {
    let size = if slot == 0 {
        (1 << 20) + 4099
    } else {
        200 + 7919 * slot * slot
    };
    content(seed_of(thread) ^ (slot as u64 + 1) << 40, size)
}

/// The tar of an own appc image: a name of the thread's own.
pub fn own_aci(thread: &str, index: usize) -> Vec<u8> {
    simple_image(
        &own_aci_name(thread, index),
        &[("version", "1")],
        &format!("{thread} image {index}"),
    )
}

pub fn own_aci_name(thread: &str, index: usize) -> String {
    format!("example.com/torture/{thread}-{index}")
}

pub fn own_ref(thread: &str, name: usize) -> String {
    format!("{thread}-r{name}")
}

pub fn shared_ref(name: usize) -> String {
    format!("shared-r{name}")
}

/// A prune filter matching every shared ref and no own ref.
pub fn shared_ref_pattern() -> String {
    "shared-r*".to_string()
}

pub fn own_key(key: usize) -> String {
    format!("k{key}")
}

/// The ref the thread's own layout names its image by.
pub fn own_layout_ref(thread: &str) -> String {
    format!("own-{thread}")
}

pub fn own_kv_key(thread: &str, key: usize) -> String {
    format!("{thread}/{}", own_key(key))
}

pub fn seed_of(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
