//! `oci-store data …`: key/value entries. An entry may reference a blob; deleting the blob
//! deletes the entry.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde::Serialize;

use super::error::{CliError, CliResult};
use super::output::{value_on_one_line, Output, ValueJson};
use super::{Context, RunCommand};
use crate::traits::{Digest, KvEntry};

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Create or replace an entry; prints its new version
    Set {
        /// Key of the entry within its data type
        key: String,
        /// Value to store (text)
        value: String,
        #[command(flatten)]
        data_type: DataType,
        /// Blob the entry references (digest or unique prefix); it must be in the store
        #[arg(long, value_name = "REF")]
        blob: Option<String>,
    },
    /// Print an entry's value (with --json: the entry with its version and blob)
    Get {
        /// Key of the entry within its data type
        key: String,
        #[command(flatten)]
        data_type: DataType,
    },
    /// List the entries of a data type, one line each: key version blob value
    #[command(visible_alias = "list")]
    Ls {
        #[command(flatten)]
        data_type: DataType,
        /// Only keys starting with this
        #[arg(long, value_name = "PREFIX", default_value = "")]
        prefix: String,
    },
    /// Remove an entry
    Rm {
        /// Key of the entry within its data type
        key: String,
        #[command(flatten)]
        data_type: DataType,
    },
}

/// The namespace of an entry, such as `oci.ref`.
#[derive(Debug, Args)]
pub struct DataType {
    /// Data type (namespace) of the entry
    #[arg(long = "type", value_name = "TYPE")]
    name: String,
}

/// One entry in JSON.
#[derive(Debug, Serialize)]
struct EntryJson<'a> {
    data_type: &'a str,
    key: &'a str,
    #[serde(flatten)]
    value: ValueJson,
    blob: Option<&'a Digest>,
    version: u64,
}

impl<'a> EntryJson<'a> {
    fn new(data_type: &'a str, key: &'a str, entry: &'a KvEntry) -> Self {
        EntryJson {
            data_type,
            key,
            value: ValueJson::new(&entry.value),
            blob: entry.blob.as_ref(),
            version: entry.version,
        }
    }
}

impl RunCommand for DataCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        match self {
            DataCommand::Set {
                key,
                value,
                data_type,
                blob,
            } => set(context, &data_type.name, &key, &value, blob.as_deref())?,
            DataCommand::Get { key, data_type } => get(context, &data_type.name, &key)?,
            DataCommand::Ls { data_type, prefix } => list(context, &data_type.name, &prefix)?,
            DataCommand::Rm { key, data_type } => remove(context, &data_type.name, &key)?,
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn set(
    context: &Context,
    data_type: &str,
    key: &str,
    value: &str,
    blob: Option<&str>,
) -> CliResult<()> {
    let store = context.open_store()?;
    let blob = blob.map(|reference| store.resolve(reference)).transpose()?;
    let version = store.put_data(data_type, key, value.as_bytes(), blob.as_ref())?;
    let entry = KvEntry {
        value: value.as_bytes().to_vec(),
        blob,
        version,
    };
    let json = EntryJson::new(data_type, key, &entry);
    context.output().value(&json, |out| {
        writeln!(out, "{data_type}/{key}: version {version}")
    })
}

fn get(context: &Context, data_type: &str, key: &str) -> CliResult<()> {
    let store = context.open_existing_store()?;
    let entry = store
        .get_data(data_type, key)?
        .ok_or_else(|| CliError::DataNotFound {
            data_type: data_type.to_string(),
            key: key.to_string(),
        })?;
    let json = EntryJson::new(data_type, key, &entry);
    context
        .output()
        .value(&json, |out| Output::write_value_bytes(out, &entry.value))
}

fn list(context: &Context, data_type: &str, prefix: &str) -> CliResult<()> {
    let store = context.open_existing_store()?;
    let entries = store.list_data(data_type, prefix)?;
    context.output().list(
        entries
            .iter()
            .map(|(key, entry)| Ok(EntryJson::new(data_type, key, entry))),
        |out, entry| {
            let blob = entry.blob.map_or("-".to_string(), Digest::to_string);
            let value = match (&entry.value.value, &entry.value.value_hex) {
                (Some(text), _) => value_on_one_line(text.as_bytes()),
                (None, Some(hex)) => format!("hex:{hex}"),
                (None, None) => String::new(),
            };
            writeln!(out, "{}\t{}\t{blob}\t{value}", entry.key, entry.version)
        },
    )
}

/// `data rm` in JSON.
#[derive(Debug, Serialize)]
struct Removed<'a> {
    data_type: &'a str,
    key: &'a str,
    removed: bool,
}

fn remove(context: &Context, data_type: &str, key: &str) -> CliResult<()> {
    let store = context.open_existing_store()?;
    if !store.remove_data(data_type, key)? {
        return Err(CliError::DataNotFound {
            data_type: data_type.to_string(),
            key: key.to_string(),
        });
    }
    let json = Removed {
        data_type,
        key,
        removed: true,
    };
    context
        .output()
        .value(&json, |out| writeln!(out, "removed {data_type}/{key}"))
}
