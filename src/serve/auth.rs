//! Basic authentication against an htpasswd file of bcrypt hashes (as CNCF distribution reads
//! it), with read and write permission apart: every user may read; pushing and deleting is for
//! the users named with `--writer` (every user when none is named). `--anonymous-read` lets
//! reads through without credentials.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use axum::http::StatusCode;
use sha2::{Digest as _, Sha256};

use super::error::{ApiError, ServeError, ServeResult};

/// What a request needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// GET and HEAD.
    Read,
    /// Pushes and deletes.
    Write,
}

/// The users of an htpasswd file and what each may do.
pub struct Users {
    hashes: HashMap<String, String>,
    writers: Option<HashSet<String>>,
    anonymous_read: bool,
    /// Credentials already checked (sha256 of `user:password`): bcrypt is slow on purpose,
    /// and a client sends the same header with every request.
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl Users {
    /// Reads `path` (`user:$2y$...` lines; `#` comments and blank lines ignored).
    pub fn read(path: &Path, writers: &[String], anonymous_read: bool) -> ServeResult<Users> {
        let text = std::fs::read_to_string(path).map_err(|source| ServeError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |line: usize, message: &str| ServeError::Htpasswd {
            path: PathBuf::from(path),
            line,
            message: message.to_string(),
        };
        let mut hashes = HashMap::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| invalid(number + 1, "expected user:hash"))?;
            if !["$2y$", "$2b$", "$2a$"].iter().any(|p| hash.starts_with(p)) {
                return Err(invalid(
                    number + 1,
                    "only bcrypt hashes are accepted (htpasswd -B), as distribution reads them",
                ));
            }
            hashes.insert(user.to_string(), hash.to_string());
        }
        if hashes.is_empty() {
            return Err(invalid(0, "no users"));
        }
        let writers: Option<HashSet<String>> =
            (!writers.is_empty()).then(|| writers.iter().cloned().collect());
        if let Some(writers) = &writers {
            if let Some(unknown) = writers.iter().find(|w: &&String| !hashes.contains_key(*w)) {
                return Err(invalid(
                    0,
                    &format!("--writer {unknown} is not a user of the file"),
                ));
            }
        }
        Ok(Users {
            hashes,
            writers,
            anonymous_read,
            verified: Mutex::new(HashSet::new()),
        })
    }

    /// Allows the request or says why not: 401 with a challenge when it has no valid
    /// credentials, 403 when the user may not write.
    pub fn check(&self, authorization: Option<&str>, access: Access) -> Result<(), ApiError> {
        if access == Access::Read && self.anonymous_read {
            return Ok(());
        }
        let user = self
            .authenticated(authorization)
            .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "authentication required: send Basic credentials of a user of the server's htpasswd file"))?;
        let may_write = self
            .writers
            .as_ref()
            .is_none_or(|writers| writers.contains(&user));
        if access == Access::Write && !may_write {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "DENIED",
                format!("user {user:?} may pull but not push or delete"),
            ));
        }
        Ok(())
    }

    /// The user whose Basic credentials `authorization` carries, if they are right.
    fn authenticated(&self, authorization: Option<&str>) -> Option<String> {
        use base64::Engine as _;
        let encoded = authorization?.strip_prefix("Basic ")?.trim();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, password) = decoded.split_once(':')?;
        let hash = self.hashes.get(user)?;
        let key: [u8; 32] = Sha256::digest(format!("{user}:{password}:{hash}").as_bytes()).into();
        let mut verified = self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if verified.contains(&key) {
            return Some(user.to_string());
        }
        drop(verified);
        if bcrypt::verify(password, hash).unwrap_or(false) {
            verified = self
                .verified
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            verified.insert(key);
            return Some(user.to_string());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn basic(user: &str, password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    }

    fn users(writers: &[&str], anonymous_read: bool) -> Users {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        let text = format!(
            "# users\nalice:{}\nbob:{}\n",
            bcrypt::hash("wonderland", 4).unwrap(),
            bcrypt::hash("builder", 4).unwrap()
        );
        std::fs::write(&path, text).unwrap();
        let writers: Vec<String> = writers.iter().map(ToString::to_string).collect();
        Users::read(&path, &writers, anonymous_read).unwrap()
    }

    #[test]
    fn reads_and_writes_are_allowed_apart() {
        let users = users(&["alice"], false);
        let status = |result: Result<(), ApiError>| result.err().map(|e| e.status.as_u16());
        assert_eq!(status(users.check(None, Access::Read)), Some(401));
        assert_eq!(
            status(users.check(Some(&basic("alice", "wrong")), Access::Read)),
            Some(401)
        );
        assert_eq!(
            status(users.check(Some(&basic("alice", "wonderland")), Access::Write)),
            None
        );
        assert_eq!(
            status(users.check(Some(&basic("bob", "builder")), Access::Read)),
            None
        );
        assert_eq!(
            status(users.check(Some(&basic("bob", "builder")), Access::Write)),
            Some(403)
        );
        // Checked once, remembered: the second check is the same answer.
        assert_eq!(
            status(users.check(Some(&basic("bob", "builder")), Access::Read)),
            None
        );
    }

    #[test]
    fn anonymous_read_lets_reads_through_only() {
        let users = users(&[], true);
        assert!(users.check(None, Access::Read).is_ok());
        assert_eq!(
            users
                .check(None, Access::Write)
                .unwrap_err()
                .status
                .as_u16(),
            401
        );
        assert!(users
            .check(Some(&basic("bob", "builder")), Access::Write)
            .is_ok());
    }

    #[test]
    fn only_bcrypt_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        std::fs::write(&path, "alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n").unwrap();
        let error = Users::read(&path, &[], false).err().unwrap().to_string();
        assert!(
            error.contains("line 1") && error.contains("bcrypt"),
            "{error}"
        );
    }
}
