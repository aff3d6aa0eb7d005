//! Every setting in force and where it came from: flags over environment over the config file
//! over built-in defaults. Backends from the environment or the file only choose those of a
//! new store; `--backend`/`--blobs` must also agree with an existing store's `store.json`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::config_file::{default_config_path, ConfigFile, CONFIG_ENV};
use super::duration::parse_duration;
use super::error::{CliError, CliResult};
use super::GlobalOptions;
use crate::store::{default_store_dir, BackendChoice, StoreConfig};
use crate::stores::oci::DEFAULT_GC_LOCK_WAIT;
use crate::traits::Role;

/// Built-in grace period of `appc gc`.
pub const DEFAULT_APPC_GRACE_PERIOD_MS: i64 = 86_400_000;

/// Built-in wait for a store another process has alone.
pub const DEFAULT_LOCK_WAIT_MS: i64 = 10_000;

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    Flag { flag: &'static str },
    Env { variable: &'static str },
    File { path: PathBuf, line: usize },
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag { flag } => write!(f, "flag {flag}"),
            Source::Env { variable } => write!(f, "environment {variable}"),
            Source::File { path, line } => write!(f, "{}:{line}", path.display()),
            Source::Default => f.write_str("default"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    pub source: Source,
}

impl<T> Setting<T> {
    fn new(value: T, source: Source) -> Setting<T> {
        Setting { value, source }
    }
}

/// The config file in use, if any, and why that one.
#[derive(Debug, Clone)]
pub struct ConfigLocation {
    pub path: Option<PathBuf>,
    pub source: Source,
    pub loaded: bool,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub config: ConfigLocation,
    pub store: Setting<PathBuf>,
    /// Every role, in [`Role::ALL`] order.
    pub backends: Vec<(Role, Setting<String>)>,
    /// How long to wait for a store that another process has alone (a backend conversion).
    pub lock_wait_ms: Setting<i64>,
    /// Registry of a short image name (`pull alpine`); empty: none.
    pub default_registry: Setting<String>,
    pub gc_lock_wait_ms: Setting<i64>,
    pub appc_grace_period_ms: Setting<i64>,
    /// `serve`: where to listen, whether to accept pushes, how long uploads may idle.
    pub serve_listen: Setting<std::net::SocketAddr>,
    pub serve_push: Setting<bool>,
    pub serve_upload_timeout_ms: Setting<i64>,
    pub serve_tag_ttl_ms: Setting<i64>,
    pub serve_mirrors: Setting<Vec<crate::serve::MirrorSpec>>,
    /// How often one ref's last use is written at most.
    pub last_used_interval_ms: Setting<i64>,
    /// `[prune]` policies as written, in the file's key names (none by default).
    pub prune_policy: Vec<(&'static str, Setting<String>)>,
    /// Whether `pull` prunes after a pull that succeeded.
    pub prune_after_pull: Setting<bool>,
    /// How often `serve` prunes by the configured policy.
    pub prune_interval_ms: Setting<i64>,
}

/// How often `serve` prunes when the config file has policies and says nothing of when.
pub const DEFAULT_PRUNE_INTERVAL_MS: i64 = 10 * 60 * 1000;

/// Environment variables read here (besides [`CONFIG_ENV`]).
const STORE_ENV: &str = "OCI_STORE_DIR";
const BACKEND_ENV: &str = "OCI_STORE_BACKEND";
const BLOBS_ENV: &str = "OCI_STORE_BLOBS";
const LOCK_WAIT_ENV: &str = "OCI_STORE_LOCK_WAIT";
const DEFAULT_REGISTRY_ENV: &str = "OCI_STORE_DEFAULT_REGISTRY";

/// Registry of a short image name unless configured, as Docker's.
pub const DEFAULT_REGISTRY: &str = "docker.io";
const GC_LOCK_WAIT_ENV: &str = "OCI_STORE_GC_LOCK_WAIT";
const APPC_GRACE_ENV: &str = "OCI_STORE_APPC_GRACE_PERIOD";
const LAST_USED_INTERVAL_ENV: &str = "OCI_STORE_LAST_USED_INTERVAL";

impl Settings {
    /// Resolves every setting from the global flags, the process environment and the file.
    pub fn resolve(options: &GlobalOptions) -> CliResult<Settings> {
        Settings::resolve_with(options, &|name| {
            std::env::var(name).ok().filter(|value| !value.is_empty())
        })
    }

    /// [`Settings::resolve`] with the environment given (tests).
    pub fn resolve_with(
        options: &GlobalOptions,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> CliResult<Settings> {
        let (config, file) = locate_and_read(options, env)?;
        let file = file.unwrap_or_default();
        let from_file = |line: usize| Source::File {
            path: file.path.clone(),
            line,
        };

        let store = if let Some(dir) = &options.store {
            Setting::new(dir.clone(), Source::Flag { flag: "--store" })
        } else if let Some(dir) = env(STORE_ENV) {
            Setting::new(
                PathBuf::from(dir),
                Source::Env {
                    variable: STORE_ENV,
                },
            )
        } else if let Some(dir) = &file.store {
            Setting::new(dir.value.clone(), from_file(dir.line))
        } else {
            // The library's default, computed without `$OCI_STORE_DIR` (handled above).
            Setting::new(default_store_dir(), Source::Default)
        };

        let defaults = StoreConfig::default();
        let mut backends = Vec::new();
        for role in Role::ALL {
            let (flag, flag_name, env_name) = if role == Role::Blobs {
                (&options.blobs, "--blobs", BLOBS_ENV)
            } else {
                (&options.backend, "--backend", BACKEND_ENV)
            };
            let setting = if let Some(name) = flag {
                Setting::new(name.clone(), Source::Flag { flag: flag_name })
            } else if let Some(name) = env(env_name) {
                Setting::new(name, Source::Env { variable: env_name })
            } else if let Some((_, value)) = file.backends.iter().find(|(r, _)| *r == role) {
                Setting::new(value.value.clone(), from_file(value.line))
            } else {
                Setting::new(defaults.backend(role).to_string(), Source::Default)
            };
            // A backend that does not exist is a usage error of where it was given, before
            // any store is opened (not a mismatch with the store, which `backend convert`
            // would resolve).
            if let Err(error) = crate::traits::registry::find_backend(&setting.value, role) {
                match &setting.source {
                    Source::Flag { flag } => {
                        return Err(CliError::Argument {
                            argument: flag,
                            message: error.to_string(),
                        })
                    }
                    Source::Env { variable } => {
                        return Err(CliError::Environment {
                            variable,
                            message: error.to_string(),
                        })
                    }
                    Source::File { .. } | Source::Default => {}
                }
            }
            backends.push((role, setting));
        }

        let lock_wait_ms = duration_setting(
            env,
            LOCK_WAIT_ENV,
            file.lock_wait_ms
                .as_ref()
                .map(|v| (v.value, from_file(v.line))),
            DEFAULT_LOCK_WAIT_MS,
        )?;
        let default_registry = if let Some(value) = env(DEFAULT_REGISTRY_ENV) {
            if !crate::registry::is_registry_host(&value) {
                return Err(CliError::Environment {
                    variable: DEFAULT_REGISTRY_ENV,
                    message: format!(
                        "{value:?} is not a registry host[:port] (with a '.' or ':', or \
                         localhost), e.g. docker.io"
                    ),
                });
            }
            Setting::new(
                value,
                Source::Env {
                    variable: DEFAULT_REGISTRY_ENV,
                },
            )
        } else if let Some(value) = &file.default_registry {
            Setting::new(value.value.clone(), from_file(value.line))
        } else {
            Setting::new(DEFAULT_REGISTRY.to_string(), Source::Default)
        };
        let gc_lock_wait_ms = duration_setting(
            env,
            GC_LOCK_WAIT_ENV,
            file.gc_lock_wait_ms
                .as_ref()
                .map(|v| (v.value, from_file(v.line))),
            DEFAULT_GC_LOCK_WAIT.as_millis() as i64,
        )?;
        let appc_grace_period_ms = duration_setting(
            env,
            APPC_GRACE_ENV,
            file.appc_grace_period_ms
                .as_ref()
                .map(|v| (v.value, from_file(v.line))),
            DEFAULT_APPC_GRACE_PERIOD_MS,
        )?;
        let serve_defaults = crate::serve::ServeOptions::default();
        let serve_listen = match &file.serve_listen {
            Some(listen) => Setting::new(listen.value, from_file(listen.line)),
            None => Setting::new(serve_defaults.listen, Source::Default),
        };
        let serve_push = match &file.serve_push {
            Some(push) => Setting::new(push.value, from_file(push.line)),
            None => Setting::new(serve_defaults.push, Source::Default),
        };
        let serve_upload_timeout_ms = match &file.serve_upload_timeout_ms {
            Some(timeout) => Setting::new(timeout.value, from_file(timeout.line)),
            None => Setting::new(
                i64::try_from(serve_defaults.upload_timeout.as_millis()).unwrap_or(i64::MAX),
                Source::Default,
            ),
        };
        let serve_tag_ttl_ms = match &file.serve_tag_ttl_ms {
            Some(ttl) => Setting::new(ttl.value, from_file(ttl.line)),
            None => Setting::new(
                i64::try_from(serve_defaults.tag_ttl.as_millis()).unwrap_or(i64::MAX),
                Source::Default,
            ),
        };
        let serve_mirrors = match file.serve_mirrors.first() {
            Some(first) => Setting::new(
                file.serve_mirrors.iter().map(|m| m.value.clone()).collect(),
                from_file(first.line),
            ),
            None => Setting::new(Vec::new(), Source::Default),
        };
        // "off" turns recording off (for measuring what it costs): the largest interval.
        let last_used_interval_ms = if env(LAST_USED_INTERVAL_ENV).as_deref() == Some("off") {
            Setting::new(
                i64::MAX,
                Source::Env {
                    variable: LAST_USED_INTERVAL_ENV,
                },
            )
        } else {
            duration_setting(
                env,
                LAST_USED_INTERVAL_ENV,
                file.last_used_interval_ms
                    .as_ref()
                    .map(|v| (v.value, from_file(v.line))),
                crate::store::DEFAULT_LAST_USED_INTERVAL.as_millis() as i64,
            )?
        };
        let prune_policy = file
            .prune_policy
            .iter()
            .map(|(key, value)| {
                (
                    *key,
                    Setting::new(value.value.clone(), from_file(value.line)),
                )
            })
            .collect();
        let prune_after_pull = match &file.prune_after_pull {
            Some(value) => Setting::new(value.value, from_file(value.line)),
            None => Setting::new(false, Source::Default),
        };
        let prune_interval_ms = match &file.prune_interval_ms {
            Some(value) => Setting::new(value.value, from_file(value.line)),
            None => Setting::new(DEFAULT_PRUNE_INTERVAL_MS, Source::Default),
        };
        Ok(Settings {
            config,
            store,
            backends,
            lock_wait_ms,
            default_registry,
            gc_lock_wait_ms,
            appc_grace_period_ms,
            serve_listen,
            serve_push,
            serve_upload_timeout_ms,
            serve_tag_ttl_ms,
            serve_mirrors,
            last_used_interval_ms,
            prune_policy,
            prune_after_pull,
            prune_interval_ms,
        })
    }

    /// The retention policy of `[prune]` (empty when the file sets none).
    pub fn prune_policy(&self) -> CliResult<crate::store::retention::RetentionPolicy> {
        let mut text = super::prune_policy::PolicyText::default();
        for (key, setting) in &self.prune_policy {
            // Checked when the file was read: an error here would be a bug, reported as bad
            // config all the same.
            text.set(key, &setting.value)
                .map_err(|message| self.prune_config_error(key, message))?;
        }
        let mut policy = text
            .build()
            .map_err(|message| self.prune_config_error("prune", message))?;
        policy.recent =
            std::time::Duration::from_millis(self.last_used_interval_ms.value.unsigned_abs());
        Ok(policy)
    }

    fn prune_config_error(&self, key: &str, message: String) -> CliError {
        CliError::Config {
            path: self.config.path.clone().unwrap_or_default(),
            line: 0,
            key: format!("prune.{key}"),
            message,
        }
    }

    /// What to ask of the store: flag-chosen backends must match an existing store; the
    /// environment's and the file's only choose those of a new one.
    pub fn backend_choice(&self) -> BackendChoice {
        let mut choice = BackendChoice::default();
        for (role, setting) in &self.backends {
            choice = match setting.source {
                Source::Flag { .. } => choice.role(*role, &setting.value),
                Source::Env { .. } | Source::File { .. } => {
                    choice.new_store_default(*role, &setting.value)
                }
                Source::Default => choice,
            };
        }
        choice
    }

    /// Parses an image reference a user typed: a short name takes the default registry.
    pub fn image_reference(&self, text: &str) -> CliResult<crate::registry::Reference> {
        let default = Some(self.default_registry.value.as_str()).filter(|r| !r.is_empty());
        crate::registry::Reference::parse_with_default(text, default).map_err(CliError::usage)
    }

    pub fn store_dir(&self) -> &Path {
        &self.store.value
    }
}

fn duration_setting(
    env: &dyn Fn(&str) -> Option<String>,
    variable: &'static str,
    file: Option<(i64, Source)>,
    default_ms: i64,
) -> CliResult<Setting<i64>> {
    if let Some(text) = env(variable) {
        let ms =
            parse_duration(&text).map_err(|message| CliError::Environment { variable, message })?;
        return Ok(Setting::new(ms, Source::Env { variable }));
    }
    Ok(match file {
        Some((ms, source)) => Setting::new(ms, source),
        None => Setting::new(default_ms, Source::Default),
    })
}

/// `--config FILE`, else `$OCI_STORE_CONFIG`, else the XDG place. A file named by the flag or
/// the variable must exist; the XDG one is optional.
fn locate_and_read(
    options: &GlobalOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> CliResult<(ConfigLocation, Option<ConfigFile>)> {
    let (path, source, required) = if let Some(path) = &options.config {
        (Some(path.clone()), Source::Flag { flag: "--config" }, true)
    } else if let Some(path) = env(CONFIG_ENV) {
        let source = Source::Env {
            variable: CONFIG_ENV,
        };
        (Some(PathBuf::from(path)), source, true)
    } else {
        (default_config_path(env), Source::Default, false)
    };
    let Some(path) = path else {
        let location = ConfigLocation {
            path: None,
            source,
            loaded: false,
        };
        return Ok((location, None));
    };
    let file = if required || path.exists() {
        // A config file named by flag or environment that cannot be read is a usage error.
        Some(ConfigFile::read(&path).map_err(CliError::usage)?)
    } else {
        None
    };
    let location = ConfigLocation {
        path: Some(path),
        source,
        loaded: file.is_some(),
    };
    Ok((location, file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::collections::HashMap;

    fn settings(args: &[&str], env: &[(&str, &str)], file: &str) -> Settings {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, file).unwrap();
        let mut argv = vec!["oci-store", "--config", path.to_str().unwrap()];
        argv.extend_from_slice(args);
        argv.push("stats");
        let cli = super::super::Cli::try_parse_from(argv).unwrap();
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::resolve_with(&cli.global, &|name| env.get(name).cloned()).unwrap()
    }

    fn backend(settings: &Settings, role: Role) -> &Setting<String> {
        &settings
            .backends
            .iter()
            .find(|(r, _)| *r == role)
            .unwrap()
            .1
    }

    #[test]
    fn flags_beat_environment_beat_file_beat_defaults() {
        let file = "store = \"/from/file\"\n[backends]\nmetadata = \"lmdb\"\n[gc]\nlock_wait = 7\n";
        let only_file = settings(&[], &[], file);
        assert_eq!(only_file.store.value, PathBuf::from("/from/file"));
        assert!(matches!(
            only_file.store.source,
            Source::File { line: 1, .. }
        ));
        assert_eq!(backend(&only_file, Role::Kv).value, "lmdb");
        assert_eq!(backend(&only_file, Role::Blobs).source, Source::Default);
        assert_eq!(only_file.gc_lock_wait_ms.value, 7000);
        assert_eq!(only_file.appc_grace_period_ms.source, Source::Default);

        let env = [
            ("OCI_STORE_DIR", "/from/env"),
            ("OCI_STORE_BACKEND", "sqlite"),
            ("OCI_STORE_GC_LOCK_WAIT", "2m"),
        ];
        let with_env = settings(&[], &env, file);
        assert_eq!(with_env.store.value, PathBuf::from("/from/env"));
        assert_eq!(backend(&with_env, Role::Kv).value, "sqlite");
        assert_eq!(with_env.gc_lock_wait_ms.value, 120_000);

        let with_flags = settings(&["--store", "/from/flag", "--backend", "lmdb"], &env, file);
        assert_eq!(with_flags.store.value, PathBuf::from("/from/flag"));
        assert_eq!(
            backend(&with_flags, Role::Index).source,
            Source::Flag { flag: "--backend" }
        );
    }

    #[test]
    fn only_flag_backends_must_match_an_existing_store() {
        let from_file = settings(&["--blobs", "fs"], &[], "[backends]\nmetadata = \"lmdb\"\n");
        let choice = from_file.backend_choice();
        assert_eq!(choice.roles.len(), 1);
        assert_eq!(
            choice.roles.get(&Role::Blobs).map(String::as_str),
            Some("fs")
        );
        assert_eq!(
            choice
                .new_store_defaults
                .get(&Role::Index)
                .map(String::as_str),
            Some("lmdb")
        );
    }
}
