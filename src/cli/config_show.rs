//! `oci-store config show`: every setting in force and where it came from.

use std::io::Write;
use std::process::ExitCode;

use clap::Subcommand;
use serde::Serialize;

use super::duration::format_duration;
use super::error::CliResult;
use super::settings::{Settings, Source};
use super::{Context, RunCommand};
use crate::store::StoreConfig;
use crate::traits::Role;

/// Version of `config show --json`'s document.
pub const SCHEMA: &str = "oci-store.config.v1";

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print every setting in force and where it came from (flag, environment, config file
    /// line, or default)
    Show,
}

#[derive(Debug, Serialize)]
struct ConfigJson<'a> {
    schema: &'static str,
    config_file: ConfigFileJson<'a>,
    settings: Vec<SettingJson>,
    /// The backends an existing store records in its store.json (they decide, not the
    /// settings); absent when there is no store yet.
    store_backends: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Serialize)]
struct ConfigFileJson<'a> {
    path: Option<&'a std::path::Path>,
    source: &'a Source,
    loaded: bool,
}

#[derive(Debug, Serialize)]
struct SettingJson {
    key: String,
    value: String,
    source: Source,
}

/// The settings as `key = value` rows, in the config file's own key names.
fn rows(settings: &Settings) -> Vec<SettingJson> {
    let mut rows = vec![SettingJson {
        key: "store".to_string(),
        value: settings.store.value.display().to_string(),
        source: settings.store.source.clone(),
    }];
    for (role, setting) in &settings.backends {
        rows.push(SettingJson {
            key: format!("backends.{}", role_key(*role)),
            value: setting.value.clone(),
            source: setting.source.clone(),
        });
    }
    rows.push(SettingJson {
        key: "default_registry".to_string(),
        value: settings.default_registry.value.clone(),
        source: settings.default_registry.source.clone(),
    });
    for (key, setting) in [
        ("lock_wait", &settings.lock_wait_ms),
        ("gc.lock_wait", &settings.gc_lock_wait_ms),
        ("gc.appc_grace_period", &settings.appc_grace_period_ms),
        ("prune.last_used_interval", &settings.last_used_interval_ms),
    ] {
        rows.push(SettingJson {
            key: key.to_string(),
            value: format_duration(setting.value),
            source: setting.source.clone(),
        });
    }
    rows.push(SettingJson {
        key: "serve.listen".to_string(),
        value: settings.serve_listen.value.to_string(),
        source: settings.serve_listen.source.clone(),
    });
    rows.push(SettingJson {
        key: "serve.push".to_string(),
        value: settings.serve_push.value.to_string(),
        source: settings.serve_push.source.clone(),
    });
    rows.push(SettingJson {
        key: "serve.upload_timeout".to_string(),
        value: format_duration(settings.serve_upload_timeout_ms.value),
        source: settings.serve_upload_timeout_ms.source.clone(),
    });
    rows.push(SettingJson {
        key: "serve.tag_ttl".to_string(),
        value: format_duration(settings.serve_tag_ttl_ms.value),
        source: settings.serve_tag_ttl_ms.source.clone(),
    });
    let mirrors: Vec<String> = settings
        .serve_mirrors
        .value
        .iter()
        .map(|m| match &m.url {
            Some(url) => format!("{}={url}", m.host),
            None => m.host.clone(),
        })
        .collect();
    rows.push(SettingJson {
        key: "serve.mirror".to_string(),
        value: mirrors.join(", "),
        source: settings.serve_mirrors.source.clone(),
    });
    for (key, setting) in &settings.prune_policy {
        rows.push(SettingJson {
            key: format!("prune.{key}"),
            value: setting.value.clone(),
            source: setting.source.clone(),
        });
    }
    rows.push(SettingJson {
        key: "prune.after_pull".to_string(),
        value: settings.prune_after_pull.value.to_string(),
        source: settings.prune_after_pull.source.clone(),
    });
    rows.push(SettingJson {
        key: "prune.interval".to_string(),
        value: format_duration(settings.prune_interval_ms.value),
        source: settings.prune_interval_ms.source.clone(),
    });
    rows
}

fn role_key(role: Role) -> &'static str {
    role.name()
}

impl RunCommand for ConfigCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        match self {
            ConfigCommand::Show => show(context),
        }
    }
}

fn show(context: &Context) -> CliResult<ExitCode> {
    let settings = context.settings();
    let store_backends = StoreConfig::read(settings.store_dir())
        .ok()
        .flatten()
        .map(|config| config.backends);
    let json = ConfigJson {
        schema: SCHEMA,
        config_file: ConfigFileJson {
            path: settings.config.path.as_deref(),
            source: &settings.config.source,
            loaded: settings.config.loaded,
        },
        settings: rows(settings),
        store_backends,
    };
    context
        .output()
        .value(&json, |out| print_text(out, &json))?;
    Ok(ExitCode::SUCCESS)
}

fn print_text(out: &mut dyn Write, json: &ConfigJson) -> std::io::Result<()> {
    let file = &json.config_file;
    match file.path {
        Some(path) => {
            let state = if file.loaded { "read" } else { "not present" };
            writeln!(
                out,
                "config file: {} ({}, {state})",
                path.display(),
                describe_choice(file.source)
            )?;
        }
        None => writeln!(out, "config file: none (no $HOME or $XDG_CONFIG_HOME)")?,
    }
    let width = json
        .settings
        .iter()
        .map(|row| row.key.len())
        .max()
        .unwrap_or(0);
    let value_width = json
        .settings
        .iter()
        .map(|row| row.value.len())
        .max()
        .unwrap_or(0);
    for row in &json.settings {
        writeln!(
            out,
            "{:<width$}  {:<value_width$}  ({})",
            row.key, row.value, row.source
        )?;
    }
    if let Some(backends) = &json.store_backends {
        let recorded: Vec<String> = backends
            .iter()
            .map(|(role, name)| format!("{role}={name}"))
            .collect();
        writeln!(
            out,
            "the store exists: its store.json decides its backends: {}",
            recorded.join(" ")
        )?;
    }
    Ok(())
}

fn describe_choice(source: &Source) -> String {
    match source {
        Source::Default => "default place".to_string(),
        other => other.to_string(),
    }
}
