//! The user's config file (TOML): where it is, and reading it into values that remember the
//! line they came from. A bad file is an error naming the file, the line and the key.
//!
//! ```toml
//! store = "~/containers/store"   # default store directory
//! lock_wait = "10s"              # how long to wait for a store another process has alone
//! default_registry = "docker.io" # registry of a short name (`pull alpine`); "" for none
//!
//! [backends]                     # for new stores; an existing store keeps its store.json
//! metadata = "lmdb"              # index, extra and kv at once
//! blobs = "fs"
//! # index = "sqlite"             # one role, over `metadata`
//!
//! [gc]
//! lock_wait = "60s"              # how long `gc` waits for running imports
//! appc_grace_period = "24h"      # `appc gc` keeps images used this recently
//!
//! [serve]                        # `oci-store serve`; its flags win
//! listen = "127.0.0.1:5000"
//! push = false                   # accept pushes and deletes
//! upload_timeout = "1h"          # idle uploads and unclaimed pushed blobs expire after this
//! tag_ttl = "5m"                 # a mirrored tag is checked upstream again after this
//!
//! [prune]                        # retention: `prune`, and `serve` and `pull` when they prune
//! last_used_interval = "5m"      # a ref's last use is written at most this often ("0s": every use)
//! until = "30d"                  # policies as `prune`'s flags (see src/cli/prune_policy.rs)
//! max_size = "50GiB"
//! after_pull = false             # `pull` prunes after a pull that succeeded
//! interval = "10m"               # `serve` prunes this often
//!
//! [[serve.mirror]]               # a pull-through mirror; repeat for several
//! host = "docker.io"
//! # url = "https://mirror.example.com"
//! ```

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::duration::parse_duration;
use super::error::{CliError, CliResult};
use super::prune_policy::{PolicyText, POLICY_KEYS};
use crate::traits::registry::find_backend;
use crate::traits::Role;

/// Environment variable naming the config file (over the XDG place, under `--config`).
pub const CONFIG_ENV: &str = "OCI_STORE_CONFIG";

/// The file as written, every value with its place in the text.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    store: Option<Spanned<String>>,
    lock_wait: Option<Spanned<toml::Value>>,
    default_registry: Option<Spanned<String>>,
    #[serde(default)]
    backends: RawBackends,
    #[serde(default)]
    gc: RawGc,
    #[serde(default)]
    serve: RawServe,
    #[serde(default)]
    prune: RawPrune,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrune {
    last_used_interval: Option<Spanned<toml::Value>>,
    until: Option<Spanned<toml::Value>>,
    keep_last: Option<Spanned<toml::Value>>,
    max_size: Option<Spanned<toml::Value>>,
    min_free: Option<Spanned<toml::Value>>,
    high_watermark: Option<Spanned<toml::Value>>,
    low_watermark: Option<Spanned<toml::Value>>,
    filter: Option<Spanned<toml::Value>>,
    after_pull: Option<Spanned<bool>>,
    interval: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServe {
    listen: Option<Spanned<String>>,
    push: Option<Spanned<bool>>,
    upload_timeout: Option<Spanned<toml::Value>>,
    tag_ttl: Option<Spanned<toml::Value>>,
    #[serde(default)]
    mirror: Vec<Spanned<RawMirror>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMirror {
    host: String,
    url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackends {
    metadata: Option<Spanned<String>>,
    blobs: Option<Spanned<String>>,
    index: Option<Spanned<String>>,
    extra: Option<Spanned<String>>,
    kv: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGc {
    lock_wait: Option<Spanned<toml::Value>>,
    appc_grace_period: Option<Spanned<toml::Value>>,
}

/// A value from the file and the line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileValue<T> {
    pub value: T,
    pub line: usize,
}

/// What a config file sets; what it leaves out is `None`.
#[derive(Debug, Default, Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub store: Option<FileValue<PathBuf>>,
    pub lock_wait_ms: Option<FileValue<i64>>,
    /// Registry of a short image name; empty: none (names must then be fully qualified).
    pub default_registry: Option<FileValue<String>>,
    /// Backend per role for new stores: `metadata` spread over index, extra and kv, with a
    /// role of its own winning.
    pub backends: Vec<(Role, FileValue<String>)>,
    pub gc_lock_wait_ms: Option<FileValue<i64>>,
    pub appc_grace_period_ms: Option<FileValue<i64>>,
    pub serve_listen: Option<FileValue<SocketAddr>>,
    pub serve_push: Option<FileValue<bool>>,
    pub serve_upload_timeout_ms: Option<FileValue<i64>>,
    pub serve_tag_ttl_ms: Option<FileValue<i64>>,
    pub last_used_interval_ms: Option<FileValue<i64>>,
    /// `[prune]` policies, each as written (checked by the same parser as `prune`'s flags),
    /// in [`POLICY_KEYS`] order.
    pub prune_policy: Vec<(&'static str, FileValue<String>)>,
    pub prune_after_pull: Option<FileValue<bool>>,
    pub prune_interval_ms: Option<FileValue<i64>>,
    /// `[[serve.mirror]]` tables, in order, each with its line.
    pub serve_mirrors: Vec<FileValue<crate::serve::MirrorSpec>>,
}

impl ConfigFile {
    /// Reads and checks the file at `path`.
    pub fn read(path: &Path) -> CliResult<ConfigFile> {
        let text = std::fs::read_to_string(path).map_err(|source| CliError::Input {
            context: "reading the config file",
            path: path.to_path_buf(),
            source,
        })?;
        ConfigFile::parse(path, &text)
    }

    /// Checks `text` (the content of `path`): syntax, known keys, types, backend names and
    /// durations.
    pub fn parse(path: &Path, text: &str) -> CliResult<ConfigFile> {
        let raw: RawConfig = toml::from_str(text).map_err(|error| {
            let span = error.span().unwrap_or(0..0);
            config_error(path, text, span, None, error.message().to_string())
        })?;
        let mut file = ConfigFile {
            path: path.to_path_buf(),
            ..ConfigFile::default()
        };
        if let Some(store) = raw.store {
            let line = line_of(text, store.span().start);
            let dir = expand_path(path, store.get_ref());
            file.store = Some(FileValue { value: dir, line });
        }
        if let Some(registry) = &raw.default_registry {
            let value = registry.get_ref();
            if !value.is_empty() && !crate::registry::is_registry_host(value) {
                return Err(config_error(
                    path,
                    text,
                    registry.span(),
                    Some("default_registry"),
                    format!(
                        "{value:?} is not a registry host[:port] (with a '.' or ':', or \
                         localhost), e.g. \"docker.io\"; \"\" for none"
                    ),
                ));
            }
            file.default_registry = Some(FileValue {
                value: value.clone(),
                line: line_of(text, registry.span().start),
            });
        }
        let backends = &raw.backends;
        let per_role = [
            (Role::Blobs, &backends.blobs, "backends.blobs"),
            (Role::Index, &backends.index, "backends.index"),
            (Role::Extra, &backends.extra, "backends.extra"),
            (Role::Kv, &backends.kv, "backends.kv"),
        ];
        for (role, own, key) in per_role {
            let (value, key) = match (own, &backends.metadata) {
                (Some(value), _) => (value, key),
                (None, Some(metadata)) if role != Role::Blobs => (metadata, "backends.metadata"),
                _ => continue,
            };
            if let Err(error) = find_backend(value.get_ref(), role) {
                return Err(config_error(
                    path,
                    text,
                    value.span(),
                    Some(key),
                    error.to_string(),
                ));
            }
            let line = line_of(text, value.span().start);
            let value = value.get_ref().clone();
            file.backends.push((role, FileValue { value, line }));
        }
        file.lock_wait_ms = duration_value(path, text, &raw.lock_wait, "lock_wait")?;
        file.gc_lock_wait_ms = duration_value(path, text, &raw.gc.lock_wait, "gc.lock_wait")?;
        file.appc_grace_period_ms = duration_value(
            path,
            text,
            &raw.gc.appc_grace_period,
            "gc.appc_grace_period",
        )?;
        if let Some(listen) = &raw.serve.listen {
            let address = listen.get_ref().parse::<SocketAddr>().map_err(|_| {
                config_error(
                    path,
                    text,
                    listen.span(),
                    Some("serve.listen"),
                    format!(
                        "expected an address and port such as \"127.0.0.1:5000\", found {:?}",
                        listen.get_ref()
                    ),
                )
            })?;
            let line = line_of(text, listen.span().start);
            file.serve_listen = Some(FileValue {
                value: address,
                line,
            });
        }
        file.serve_push = raw.serve.push.as_ref().map(|push| FileValue {
            value: *push.get_ref(),
            line: line_of(text, push.span().start),
        });
        file.serve_upload_timeout_ms = duration_value(
            path,
            text,
            &raw.serve.upload_timeout,
            "serve.upload_timeout",
        )?;
        file.serve_tag_ttl_ms = duration_value(path, text, &raw.serve.tag_ttl, "serve.tag_ttl")?;
        file.last_used_interval_ms = match &raw.prune.last_used_interval {
            // Recording off: the largest interval.
            Some(value) if value.get_ref().as_str() == Some("off") => Some(FileValue {
                value: i64::MAX,
                line: line_of(text, value.span().start),
            }),
            value => duration_value(path, text, value, "prune.last_used_interval")?,
        };
        read_prune_policy(path, text, &raw.prune, &mut file)?;
        file.prune_after_pull = raw.prune.after_pull.as_ref().map(|value| FileValue {
            value: *value.get_ref(),
            line: line_of(text, value.span().start),
        });
        file.prune_interval_ms = duration_value(path, text, &raw.prune.interval, "prune.interval")?;
        for mirror in &raw.serve.mirror {
            let spec_text = match &mirror.get_ref().url {
                Some(url) => format!("{}={url}", mirror.get_ref().host),
                None => mirror.get_ref().host.clone(),
            };
            let spec = crate::serve::MirrorSpec::parse(&spec_text).map_err(|message| {
                config_error(path, text, mirror.span(), Some("serve.mirror"), message)
            })?;
            file.serve_mirrors.push(FileValue {
                value: spec,
                line: line_of(text, mirror.span().start),
            });
        }
        Ok(file)
    }
}

/// The `[prune]` policies: each value read as its flag would be, then all of them together
/// (the watermarks are checked as a pair).
fn read_prune_policy(
    path: &Path,
    text: &str,
    raw: &RawPrune,
    file: &mut ConfigFile,
) -> CliResult<()> {
    let values = [
        &raw.until,
        &raw.keep_last,
        &raw.max_size,
        &raw.min_free,
        &raw.high_watermark,
        &raw.low_watermark,
        &raw.filter,
    ];
    let mut policy = PolicyText::default();
    let mut last_span = None;
    for (key, value) in POLICY_KEYS.into_iter().zip(values) {
        let Some(value) = value else { continue };
        let full_key = format!("prune.{key}");
        let written = match value.get_ref() {
            toml::Value::String(text) => Ok(text.clone()),
            toml::Value::Integer(number) => Ok(number.to_string()),
            toml::Value::Float(number) => Ok(number.to_string()),
            toml::Value::Array(items) if key == "filter" => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| "expected patterns as strings".to_string())
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|patterns| patterns.join(",")),
            other => Err(format!("expected a string, found {}", other.type_str())),
        };
        let written = written
            .and_then(|written| policy.set(key, &written).map(|()| written))
            .map_err(|message| config_error(path, text, value.span(), Some(&full_key), message))?;
        last_span = Some(value.span());
        file.prune_policy.push((
            key,
            FileValue {
                value: written,
                line: line_of(text, value.span().start),
            },
        ));
    }
    if let (Err(message), Some(span)) = (policy.build(), last_span) {
        return Err(config_error(path, text, span, Some("prune"), message));
    }
    Ok(())
}

/// A duration written as `"90s"`/`"15m"`/`"24h"`/`"7d"` or as a number of seconds.
fn duration_value(
    path: &Path,
    text: &str,
    value: &Option<Spanned<toml::Value>>,
    key: &str,
) -> CliResult<Option<FileValue<i64>>> {
    let Some(value) = value else {
        return Ok(None);
    };
    let parsed = match value.get_ref() {
        toml::Value::String(text) => parse_duration(text),
        toml::Value::Integer(seconds) if *seconds >= 0 => Ok(seconds.saturating_mul(1000)),
        other => Err(format!(
            "expected a duration such as \"90s\", \"24h\" or a number of seconds, found {}",
            other.type_str()
        )),
    };
    match parsed {
        Ok(ms) => Ok(Some(FileValue {
            value: ms,
            line: line_of(text, value.span().start),
        })),
        Err(message) => Err(config_error(path, text, value.span(), Some(key), message)),
    }
}

/// `~/x` is under `$HOME`; a relative path is relative to the config file's directory, so
/// the file means the same wherever the tool is run from.
fn expand_path(config_path: &Path, text: &str) -> PathBuf {
    if let Some(rest) = text.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    let path = PathBuf::from(text);
    if path.is_relative() {
        if let Some(dir) = config_path.parent() {
            return dir.join(path);
        }
    }
    path
}

/// An error at `span` of the file: its line, and the key (given, or read off the line).
fn config_error(
    path: &Path,
    text: &str,
    span: Range<usize>,
    key: Option<&str>,
    message: String,
) -> CliError {
    let line = line_of(text, span.start);
    let key = key
        .map(str::to_string)
        .or_else(|| key_on_line(text, line))
        .unwrap_or_else(|| "-".to_string());
    CliError::Config {
        path: path.to_path_buf(),
        line,
        key,
        message,
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The dotted key a line sets (`gc.lock_wait` for `lock_wait = 3` under `[gc]`), or the
/// table a header line opens.
fn key_on_line(text: &str, line: usize) -> Option<String> {
    let mut table: Option<String> = None;
    for (number, content) in text.lines().enumerate() {
        let content = content.trim();
        let header = content
            .strip_prefix('[')
            .and_then(|rest| rest.split(']').next())
            .map(|name| name.trim().to_string());
        if number + 1 == line {
            if let Some(header) = header {
                return Some(header);
            }
            let (key, _) = content.split_once('=')?;
            let key = key.trim().trim_matches('"');
            return Some(match &table {
                Some(table) => format!("{table}.{key}"),
                None => key.to_string(),
            });
        }
        if header.is_some() {
            table = header;
        }
    }
    None
}

/// `$XDG_CONFIG_HOME/oci-store/config.toml`, else `~/.config/oci-store/config.toml`.
/// `env` reads an environment variable (empty counts as unset).
pub fn default_config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(dir) = env("XDG_CONFIG_HOME") {
        return Some(PathBuf::from(dir).join("oci-store/config.toml"));
    }
    let home = env("HOME")?;
    Some(PathBuf::from(home).join(".config/oci-store/config.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> CliResult<ConfigFile> {
        ConfigFile::parse(Path::new("/etc/x/config.toml"), text)
    }

    fn error_of(text: &str) -> (usize, String, String) {
        match parse(text) {
            Err(CliError::Config {
                line, key, message, ..
            }) => (line, key, message),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn every_key_is_read_with_its_line() {
        let file = parse(
            "store = \"rel/store\"\n[backends]\nmetadata = \"lmdb\"\nkv = \"sqlite\"\n\
             [gc]\nlock_wait = 5\nappc_grace_period = \"7d\"\n",
        )
        .expect("parses");
        assert_eq!(
            file.store,
            Some(FileValue {
                value: PathBuf::from("/etc/x/rel/store"),
                line: 1
            })
        );
        let backends: Vec<(Role, &str, usize)> = file
            .backends
            .iter()
            .map(|(role, value)| (*role, value.value.as_str(), value.line))
            .collect();
        assert_eq!(
            backends,
            [
                (Role::Index, "lmdb", 3),
                (Role::Extra, "lmdb", 3),
                (Role::Kv, "sqlite", 4)
            ]
        );
        assert_eq!(
            file.gc_lock_wait_ms.map(|v| (v.value, v.line)),
            Some((5000, 6))
        );
        assert_eq!(
            file.appc_grace_period_ms.map(|v| v.value),
            Some(7 * 86_400_000)
        );
    }

    #[test]
    fn an_unknown_key_names_its_line_and_key() {
        let (line, key, message) = error_of("[backends]\nblobs = \"fs\"\nmetdata = \"lmdb\"\n");
        assert_eq!((line, key.as_str()), (3, "backends.metdata"));
        assert!(message.contains("metdata"), "{message}");
    }

    #[test]
    fn a_wrong_type_names_its_line_and_key() {
        let (line, key, _) = error_of("\n\nstore = 3\n");
        assert_eq!((line, key.as_str()), (3, "store"));
        let (line, key, _) = error_of("[gc]\nlock_wait = true\n");
        assert_eq!((line, key.as_str()), (2, "gc.lock_wait"));
    }

    #[test]
    fn an_unknown_backend_or_bad_duration_is_refused_with_its_line() {
        let (line, key, message) = error_of("[backends]\n\nblobs = \"s3\"\n");
        assert_eq!((line, key.as_str()), (3, "backends.blobs"));
        assert!(message.contains("s3"), "{message}");
        let (line, key, message) = error_of("[gc]\nappc_grace_period = \"soon\"\n");
        assert_eq!((line, key.as_str()), (2, "gc.appc_grace_period"));
        assert!(message.contains("soon"), "{message}");
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let (line, _, _) = error_of("store = \"a\"\n[gc\n");
        assert_eq!(line, 2);
    }

    #[test]
    fn serve_settings_are_read_with_their_lines() {
        let file =
            parse("[serve]\nlisten = \"127.0.0.1:5001\"\npush = true\nupload_timeout = \"30m\"\n")
                .unwrap();
        let listen = file.serve_listen.unwrap();
        assert_eq!(
            (listen.value.to_string().as_str(), listen.line),
            ("127.0.0.1:5001", 2)
        );
        assert_eq!(file.serve_push.map(|v| (v.value, v.line)), Some((true, 3)));
        assert_eq!(
            file.serve_upload_timeout_ms.map(|v| (v.value, v.line)),
            Some((30 * 60 * 1000, 4))
        );
        let (line, key, message) = error_of("[serve]\nlisten = \"localhost\"\n");
        assert_eq!((line, key.as_str()), (2, "serve.listen"));
        assert!(message.contains("127.0.0.1:5000"), "{message}");
        let (line, key, _) = error_of("[serve]\npush = \"yes\"\n");
        assert_eq!((line, key.as_str()), (2, "serve.push"));
        let mirrors = parse(
            "[serve]\ntag_ttl = \"1m\"\n[[serve.mirror]]\nhost = \"docker.io\"\n[[serve.mirror]]\nhost = \"local\"\nurl = \"http://127.0.0.1:5000\"\n",
        )
        .unwrap();
        assert_eq!(mirrors.serve_tag_ttl_ms.map(|v| v.value), Some(60_000));
        let specs: Vec<String> = mirrors
            .serve_mirrors
            .iter()
            .map(|m| format!("{}={:?}@{}", m.value.host, m.value.url, m.line))
            .collect();
        assert_eq!(
            specs,
            [
                "docker.io=None@3",
                "local=Some(\"http://127.0.0.1:5000\")@5"
            ]
        );
        let (_, key, message) = error_of("[[serve.mirror]]\nhost = \"x\"\nurl = \"ftp://y\"\n");
        assert_eq!(key, "serve.mirror");
        assert!(message.contains("http://"), "{message}");
    }
}
