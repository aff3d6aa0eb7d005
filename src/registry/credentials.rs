//! Where credentials come from, in order: what the command line gave (flags, stdin), then the
//! Docker config (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`: `auths`,
//! `credHelpers`, `credsStore`, through `docker_credential`), then Podman's `auth.json`
//! (`$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`); else anonymous.
//!
//! A helper that answers `get` with "credentials not found" means anonymous, as for Docker.
//!
//! `login` and `logout` store where Docker would: when the config names a credential helper
//! for the registry (`credHelpers.<registry>`, else `credsStore`), through that helper
//! ([`super::credential_helper`]), and the config file then holds no secret for the registry
//! (a plain-text one left from before is removed); a helper that is not installed refuses the
//! login, naming it, and nothing is written. Otherwise they edit the config the way
//! `skopeo login`/`docker login` write it (`{"auths": {"<registry>": {"auth":
//! base64(user:password)}}}`). The file keeps every other field and is replaced through a
//! temporary file that is synced and renamed, with mode 0600.

use std::io::Write;
use std::path::{Path, PathBuf};

use docker_credential::{CredentialRetrievalError, DockerCredential};

use super::auth::Credentials;
use super::credential_helper::{self, Helper};
use super::error::{RegistryError, RegistryResult};
use crate::util::fsync::fsync_dir;
use crate::util::io_context::IoContext;

/// The key of `registry` in a Docker config (`auths`, `credHelpers`) and the server URL
/// given to helpers: `host[:port]`, except Docker Hub's, which Docker keeps under its v1
/// index URL.
pub fn config_key(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "https://index.docker.io/v1/",
        other => other,
    }
}

fn from_docker(credential: DockerCredential) -> Credentials {
    match credential {
        DockerCredential::IdentityToken(token) => Credentials::IdentityToken(token),
        DockerCredential::UsernamePassword(username, password) => {
            Credentials::Basic { username, password }
        }
    }
}

/// The credentials for `registry` (`host[:port]`): `explicit` if given, else the config files'.
pub fn resolve(registry: &str, explicit: Option<Credentials>) -> RegistryResult<Credentials> {
    if let Some(credentials) = explicit {
        return Ok(credentials);
    }
    let registry = config_key(registry);
    for lookup in [
        docker_credential::get_credential,
        docker_credential::get_podman_credential,
    ] {
        match lookup(registry) {
            Ok(credential) => return Ok(from_docker(credential)),
            Err(
                CredentialRetrievalError::ConfigNotFound
                | CredentialRetrievalError::ConfigReadError
                | CredentialRetrievalError::NoCredentialConfigured,
            ) => continue,
            // A `credsStore` applies to every registry; one never logged in to is not an error.
            Err(CredentialRetrievalError::HelperFailure { stdout, .. })
                if credential_helper::is_not_found(&stdout) =>
            {
                continue
            }
            Err(error) => {
                return Err(RegistryError::Credentials {
                    registry: registry.to_string(),
                    reason: error.to_string(),
                })
            }
        }
    }
    Ok(Credentials::Anonymous)
}

/// The credentials for `registry` in one auth file (`--authfile`), anonymous if it has none.
pub fn from_file(path: &Path, registry: &str) -> RegistryResult<Credentials> {
    let file = std::fs::File::open(path)
        .map_err(|source| IoContext::phrase("opening the auth file", path, source))?;
    match docker_credential::get_credential_from_reader(std::io::BufReader::new(file), registry) {
        Ok(credential) => Ok(from_docker(credential)),
        Err(CredentialRetrievalError::NoCredentialConfigured) => Ok(Credentials::Anonymous),
        Err(error) => Err(RegistryError::Credentials {
            registry: registry.to_string(),
            reason: format!("{}: {error}", path.display()),
        }),
    }
}

/// The Docker config file `login` writes: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`.
pub fn docker_config_path() -> RegistryResult<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Ok(PathBuf::from(dir).join("config.json"));
    }
    let home = std::env::var_os("HOME").ok_or_else(|| RegistryError::Credentials {
        registry: String::new(),
        reason: "neither DOCKER_CONFIG nor HOME is set: no Docker config to write".to_string(),
    })?;
    Ok(PathBuf::from(home).join(".docker").join("config.json"))
}

fn read_config(path: &Path) -> RegistryResult<serde_json::Value> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| RegistryError::Credentials {
            registry: String::new(),
            reason: format!("{} is not JSON: {e}", path.display()),
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(serde_json::json!({})),
        Err(source) => Err(IoContext::phrase("reading", path, source).into()),
    }
}

fn write_config(path: &Path, value: &serde_json::Value) -> RegistryResult<()> {
    let io_error = |context, source| IoContext::phrase(context, path, source);
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io_error("creating the directory of", e))?;
    // tempfile creates 0600 files: right for a file of passwords.
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(|e| io_error("writing", e))?;
    let mut bytes = serde_json::to_vec_pretty(value).expect("JSON values serialize");
    bytes.push(b'\n');
    temp.write_all(&bytes).map_err(|e| io_error("writing", e))?;
    temp.as_file()
        .sync_all()
        .map_err(|e| io_error("syncing", e))?;
    temp.persist(path)
        .map_err(|e| io_error("replacing", e.error))?;
    // Best effort: the file itself is synced and in place.
    let _ = fsync_dir(dir);
    Ok(())
}

/// The credential helper the Docker config at `path` names for `registry`, as Docker picks
/// it: `credHelpers.<registry>` first, then `credsStore`; an empty name is no helper.
pub fn helper_for(path: &Path, registry: &str) -> RegistryResult<Option<Helper>> {
    Ok(helper_in(&read_config(path)?, path, registry))
}

fn helper_in(config: &serde_json::Value, path: &Path, registry: &str) -> Option<Helper> {
    let named = |value: &serde_json::Value| {
        value
            .as_str()
            .filter(|name| !name.is_empty())
            .map(str::to_string)
    };
    let (name, setting) = match named(&config["credHelpers"][config_key(registry)]) {
        Some(name) => (name, "credHelpers"),
        None => (named(&config["credsStore"])?, "credsStore"),
    };
    Some(Helper {
        name,
        setting,
        config: path.to_path_buf(),
    })
}

/// Where `login` will keep the credentials of `registry` given the config at `path`: a
/// helper (which must be installed: else the error says which and what to do), or the file
/// (`None`). Called before the credentials are checked, so a login that cannot be stored
/// fails before it sends anything.
pub fn login_destination(path: &Path, registry: &str) -> RegistryResult<Option<Helper>> {
    let helper = helper_for(path, registry)?;
    if let Some(helper) = &helper {
        helper.require_installed(registry)?;
    }
    Ok(helper)
}

/// Records `username`/`password` for `registry`: through the credential helper the Docker
/// config at `path` names for it (returned), else in that file. With a helper, the file keeps
/// no secret for the registry.
pub fn login(
    path: &Path,
    registry: &str,
    username: &str,
    password: &str,
) -> RegistryResult<Option<Helper>> {
    let mut config = read_config(path)?;
    if !config.is_object() {
        config = serde_json::json!({});
    }
    let key = config_key(registry);
    if let Some(helper) = helper_in(&config, path, registry) {
        helper.store(registry, key, username, password)?;
        if remove_secrets(&mut config, registry) {
            write_config(path, &config)?;
        }
        return Ok(Some(helper));
    }
    if !config["auths"].is_object() {
        config["auths"] = serde_json::json!({});
    }
    config["auths"][key] = serde_json::json!({
        "auth": super::auth::basic_token(username, password),
    });
    write_config(path, &config)?;
    Ok(None)
}

/// The secrets of `registry` in `config.auths` (under its key, or the name as given by
/// earlier versions), keeping whatever else the entries hold; whether any was there.
fn remove_secrets(config: &mut serde_json::Value, registry: &str) -> bool {
    let Some(auths) = config["auths"].as_object_mut() else {
        return false;
    };
    let mut removed = false;
    for key in [config_key(registry), registry] {
        if let Some(entry) = auths.get_mut(key).and_then(|e| e.as_object_mut()) {
            for field in [
                "auth",
                "username",
                "password",
                "identitytoken",
                "registrytoken",
            ] {
                removed |= entry.remove(field).is_some();
            }
        }
    }
    removed
}

/// Forgets `registry`: erases it from the credential helper the Docker config at `path`
/// names for it, and removes its entry from the file; false if neither had it.
pub fn logout(path: &Path, registry: &str) -> RegistryResult<bool> {
    let mut config = read_config(path)?;
    let erased = match helper_in(&config, path, registry) {
        Some(helper) => helper.erase(registry, config_key(registry))?,
        None => false,
    };
    let removed = config["auths"].as_object_mut().is_some_and(|auths| {
        let under_key = auths.remove(config_key(registry)).is_some();
        let as_given = auths.remove(registry).is_some();
        under_key || as_given
    });
    if removed {
        write_config(path, &config)?;
    }
    Ok(erased || removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_and_logout_keep_other_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker").join("config.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            r#"{"auths":{"other.example":{"auth":"eDp5"}},"credsStore":""}"#,
        )
        .unwrap();
        login(&path, "127.0.0.1:5000", "user", "secret").unwrap();
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            config["auths"]["127.0.0.1:5000"]["auth"],
            "dXNlcjpzZWNyZXQ="
        );
        assert_eq!(config["auths"]["other.example"]["auth"], "eDp5");
        let credential = docker_credential::get_credential_from_reader(
            std::fs::File::open(&path).unwrap(),
            "127.0.0.1:5000",
        )
        .unwrap();
        assert_eq!(
            credential,
            DockerCredential::UsernamePassword("user".into(), "secret".into())
        );
        assert!(logout(&path, "127.0.0.1:5000").unwrap());
        assert!(!logout(&path, "127.0.0.1:5000").unwrap());
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert!(config["auths"].get("127.0.0.1:5000").is_none());
        assert_eq!(config["auths"]["other.example"]["auth"], "eDp5");
    }
}
