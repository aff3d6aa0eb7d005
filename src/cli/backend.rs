//! `oci-store backend info|convert`: which backends a store uses, and moving it to others.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde::Serialize;

use super::error::{CliError, CliResult};
use super::output::bytes_with_unit;
use super::{Context, RunCommand};
use crate::store::{convert_store, BackendChoice, StoreConfig, StoreError};
use crate::traits::registry::{find_backend, registered_backends};
use crate::traits::Role;

#[derive(Debug, Subcommand)]
pub enum BackendCommand {
    /// Show the backend of each role of the store, and every registered backend
    Info,
    /// Copy every record and blob into other backends, verify, then switch store.json.
    /// Needs the store alone (no other process may have it open).
    Convert(ConvertArgs),
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Backend for every metadata role (index, extra data, key/value)
    #[arg(long, value_name = "NAME")]
    to: Option<String>,
    /// Backend for blob content
    #[arg(long = "to-blobs", value_name = "NAME")]
    to_blobs: Option<String>,
    /// Backend for the index alone
    #[arg(long = "to-index", value_name = "NAME")]
    to_index: Option<String>,
    /// Backend for extra data alone
    #[arg(long = "to-extra", value_name = "NAME")]
    to_extra: Option<String>,
    /// Backend for key/value entries alone
    #[arg(long = "to-kv", value_name = "NAME")]
    to_kv: Option<String>,
}

#[derive(Serialize)]
struct RegisteredBackend {
    name: &'static str,
    description: &'static str,
    roles: Vec<&'static str>,
}

#[derive(Serialize)]
struct BackendInfo {
    store: String,
    config: StoreConfig,
    registered: Vec<RegisteredBackend>,
}

impl RunCommand for BackendCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        match self {
            BackendCommand::Info => info(context),
            BackendCommand::Convert(args) => convert(context, args),
        }
    }
}

fn info(context: &Context) -> CliResult<ExitCode> {
    let dir = context.store_dir();
    // Without a store: what a new one would be made with (nothing is created).
    let config = if context.store_is_missing() {
        StoreConfig::read(context.open_existing_store()?.dir())?
    } else {
        StoreConfig::read(dir)?
    };
    let config = config.ok_or_else(|| StoreError::Config {
        path: StoreConfig::path(dir),
        reason: "no store here".to_string(),
    })?;
    let registered = registered_backends()
        .into_iter()
        .map(|r| RegisteredBackend {
            name: r.name,
            description: r.description,
            roles: Role::ALL
                .into_iter()
                .filter(|role| r.fills(*role))
                .map(Role::name)
                .collect(),
        })
        .collect();
    let info = BackendInfo {
        store: dir.display().to_string(),
        config,
        registered,
    };
    context.output().value(&info, |out| {
        writeln!(out, "store:  {}", info.store)?;
        for role in Role::ALL {
            writeln!(
                out,
                "{:<7} {}",
                format!("{role}:"),
                info.config.backend(role)
            )?;
        }
        writeln!(out, "registered backends:")?;
        for backend in &info.registered {
            writeln!(
                out,
                "  {:<7} [{}] {}",
                backend.name,
                backend.roles.join(","),
                backend.description
            )?;
        }
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// A target backend that this build does not have for `role` is a usage error of the flag
/// that names it (exit 2), found before the store is opened, as `--backend` is: not a failed
/// conversion.
fn registered_for(flag: &'static str, name: &str, role: Role) -> CliResult<()> {
    find_backend(name, role)
        .map(|_| ())
        .map_err(|error| CliError::Argument {
            argument: flag,
            message: error.to_string(),
        })
}

fn convert(context: &Context, args: ConvertArgs) -> CliResult<ExitCode> {
    let mut target = BackendChoice::default();
    if let Some(name) = &args.to {
        for role in [Role::Index, Role::Extra, Role::Kv] {
            registered_for("--to", name, role)?;
        }
        target = target.metadata(name);
    }
    for (role, flag, name) in [
        (Role::Blobs, "--to-blobs", &args.to_blobs),
        (Role::Index, "--to-index", &args.to_index),
        (Role::Extra, "--to-extra", &args.to_extra),
        (Role::Kv, "--to-kv", &args.to_kv),
    ] {
        if let Some(name) = name {
            registered_for(flag, name, role)?;
            target = target.role(role, name);
        }
    }
    if target.is_empty() {
        return Err(CliError::Argument {
            argument: "--to",
            message: "name a target: --to NAME, --to-blobs, --to-index, --to-extra or --to-kv"
                .to_string(),
        });
    }
    let report = convert_store(context.store_dir(), &target)?;
    context.output().value(&report, |out| {
        for role in Role::ALL {
            let (from, to) = (report.from.backend(role), report.to.backend(role));
            if from != to {
                writeln!(out, "{role}: {from} -> {to}")?;
            }
        }
        writeln!(
            out,
            "copied {} index records, {} blobs ({}), {} extra data items, {} key/value entries; verified",
            report.records,
            report.blobs,
            bytes_with_unit(report.bytes),
            report.extra_data,
            report.data_entries
        )
    })?;
    Ok(ExitCode::SUCCESS)
}
