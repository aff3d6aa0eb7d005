//! Writing through a Docker credential helper (the docker-credential-helpers protocol), for
//! `login` and `logout` when the Docker config names one (`credHelpers`, `credsStore`):
//! `docker-credential-<name> store` with `{"ServerURL","Username","Secret"}` on stdin, and
//! `erase` with the server URL on stdin. The secret travels on stdin only, never in arguments
//! or the environment. Reading (`get`) goes through `docker_credential` (see
//! [`super::credentials`]).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::error::{RegistryError, RegistryResult};

/// What a helper answers when it has nothing for a server (the protocol's
/// `ErrCredentialsNotFound`); on stdout, with a non-zero exit.
const NOT_FOUND: &str = "credentials not found";
/// The most of a helper's own message quoted in an error.
const MESSAGE_LIMIT: usize = 512;

/// A credential helper the Docker config names, and which setting named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Helper {
    /// `<name>` of `docker-credential-<name>`.
    pub name: String,
    /// `credHelpers` (for this registry) or `credsStore` (for all).
    pub setting: &'static str,
    /// The Docker config that names it.
    pub config: PathBuf,
}

impl Helper {
    pub fn program(&self) -> String {
        format!("docker-credential-{}", self.name)
    }

    /// Fails, naming the helper and the way out, unless its program is on `PATH`.
    pub fn require_installed(&self, registry: &str) -> RegistryResult<()> {
        let program = self.program();
        let found = std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|dir| is_executable(&dir.join(&program)))
        });
        if found {
            Ok(())
        } else {
            Err(self.missing(registry))
        }
    }

    fn missing(&self, registry: &str) -> RegistryError {
        RegistryError::Credentials {
            registry: registry.to_string(),
            reason: format!(
                "{} names the credential helper {:?} ({}), but {} is not on PATH, so the \
                 password has nowhere safe to go and nothing was written: install {}, or \
                 remove {} from {} to keep credentials in that file, or give --authfile PATH",
                self.config.display(),
                self.name,
                self.setting,
                self.program(),
                self.program(),
                self.setting,
                self.config.display(),
            ),
        }
    }

    /// `store`: keeps `username`/`secret` for `server` in the helper.
    pub fn store(
        &self,
        registry: &str,
        server: &str,
        username: &str,
        secret: &str,
    ) -> RegistryResult<()> {
        let input = serde_json::json!({
            "ServerURL": server,
            "Username": username,
            "Secret": secret,
        });
        let (success, message) = self.run(registry, "store", input.to_string().as_bytes())?;
        if success {
            return Ok(());
        }
        Err(self.failed(registry, "store", &message))
    }

    /// `erase`: forgets `server`; false when the helper had nothing for it.
    pub fn erase(&self, registry: &str, server: &str) -> RegistryResult<bool> {
        let (success, message) = self.run(registry, "erase", server.as_bytes())?;
        if success {
            return Ok(true);
        }
        if message.contains(NOT_FOUND) {
            return Ok(false);
        }
        Err(self.failed(registry, "erase", &message))
    }

    /// Runs `docker-credential-<name> <action>` with `input` on stdin: whether it succeeded,
    /// and its message (stdout, else stderr).
    fn run(&self, registry: &str, action: &str, input: &[u8]) -> RegistryResult<(bool, String)> {
        let spawned = Command::new(self.program())
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(self.missing(registry))
            }
            Err(error) => {
                return Err(RegistryError::Credentials {
                    registry: registry.to_string(),
                    reason: format!("starting {} {action}: {error}", self.program()),
                })
            }
        };
        // A helper that exits without reading closes the pipe: its exit status says why.
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(input);
        }
        let output = child
            .wait_with_output()
            .map_err(|error| RegistryError::Credentials {
                registry: registry.to_string(),
                reason: format!("waiting for {} {action}: {error}", self.program()),
            })?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let message = if stdout.trim().is_empty() {
            stderr.trim()
        } else {
            stdout.trim()
        };
        Ok((output.status.success(), short(message)))
    }

    fn failed(&self, registry: &str, action: &str, message: &str) -> RegistryError {
        RegistryError::Credentials {
            registry: registry.to_string(),
            reason: format!(
                "{} {action} failed ({}, named by {} in {}): {message}",
                self.program(),
                self.name,
                self.setting,
                self.config.display()
            ),
        }
    }
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// At most [`MESSAGE_LIMIT`] bytes of a helper's message, cut on a character boundary.
fn short(message: &str) -> String {
    if message.len() <= MESSAGE_LIMIT {
        return message.to_string();
    }
    let mut end = MESSAGE_LIMIT;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &message[..end])
}

/// Whether a helper's failed `get` means "nothing stored for this server".
pub fn is_not_found(helper_output: &str) -> bool {
    helper_output.contains(NOT_FOUND)
}
