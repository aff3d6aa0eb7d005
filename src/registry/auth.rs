//! Answering a registry's `WWW-Authenticate` challenges (parsed with `http-auth`): `Basic`
//! with the user's credentials, and `Bearer` (the distribution token protocol) with a token
//! fetched from the challenge's realm for the scope asked, cached until it expires (at most
//! [`MAX_TOKEN_LIFETIME`]).
//!
//! Tokens are per scope (`repository:<name>:pull[,push]`): a token for one repository is
//! never sent for another. The client never sends a registry's `Authorization` outside its
//! origin, scheme, host and port (see [`super::client`]).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::error::{RegistryError, RegistryResult};

/// What the user gave (or the config files had) for one registry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Credentials {
    /// No credentials: only anonymous tokens are asked for.
    #[default]
    Anonymous,
    /// A user name and password, sent as HTTP Basic or exchanged for a bearer token.
    Basic {
        /// The user name.
        username: String,
        /// The password (or a personal access token).
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken` in Docker's config).
    IdentityToken(String),
}

/// A parsed challenge we know how to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        /// The scope the registry says the request needs, when it says.
        scope: Option<String>,
    },
}

/// Picks the challenge to answer from a `WWW-Authenticate` header: Bearer first, then Basic.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let challenges = http_auth::parse_challenges(header).ok()?;
    let param = |challenge: &http_auth::ChallengeRef, name: &str| {
        challenge
            .params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.to_unescaped())
    };
    if let Some(bearer) = challenges
        .iter()
        .find(|c| c.scheme.eq_ignore_ascii_case("bearer"))
    {
        return Some(Challenge::Bearer {
            realm: param(bearer, "realm")?,
            service: param(bearer, "service"),
            scope: param(bearer, "scope"),
        });
    }
    challenges
        .iter()
        .any(|c| c.scheme.eq_ignore_ascii_case("basic"))
        .then_some(Challenge::Basic)
}

/// The `Authorization` value of HTTP Basic (`Basic <base64(user:password)>`).
pub fn basic_header(username: &str, password: &str) -> String {
    http_auth::basic::encode_credentials(username, password)
}

/// `base64(user:password)`, as Docker's config stores it under `auth`.
pub fn basic_token(username: &str, password: &str) -> String {
    let header = basic_header(username, password);
    header.strip_prefix("Basic ").unwrap_or(&header).to_string()
}

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

/// The distribution spec's default lifetime of a token that does not say.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// The longest a token is cached, whatever `expires_in` says: the token service is not
/// trusted with the client's clock (a huge `expires_in` once overflowed `Instant` and
/// panicked), and a token kept past this is fetched again, which costs one request.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// Tokens are renewed this long before they expire, so none expires in flight.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5);

/// Locks `mutex` even if a thread panicked while holding it. What these mutexes guard stays
/// consistent at every point (the token map changes by single inserts; the fetch lock guards
/// nothing but its turn), so a poisoned lock must not turn one failure into a panic of every
/// later request on the client.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Bearer tokens by scope, and whether the registry asked for Basic.
#[derive(Default)]
pub struct AuthState {
    tokens: Mutex<HashMap<String, (String, Instant)>>,
    basic: std::sync::atomic::AtomicBool,
    /// How many tokens were fetched (tests check the cache through it).
    pub tokens_fetched: std::sync::atomic::AtomicU64,
    /// Held while a token is fetched: threads challenged at once wait for the first one's
    /// token instead of each fetching their own.
    fetching: Mutex<()>,
}

impl AuthState {
    /// The header to send for `scope` before any challenge: a cached live token, else Basic if
    /// the registry asked for it before.
    pub fn header_for(&self, scope: &str, credentials: &Credentials) -> Option<String> {
        let tokens = lock(&self.tokens);
        if let Some((token, expires)) = tokens.get(scope) {
            if Instant::now() < *expires {
                return Some(format!("Bearer {token}"));
            }
        }
        drop(tokens);
        match credentials {
            Credentials::Basic { username, password }
                if self.basic.load(std::sync::atomic::Ordering::Relaxed) =>
            {
                Some(basic_header(username, password))
            }
            _ => None,
        }
    }

    pub fn use_basic(&self) {
        self.basic.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The turn to fetch a token, held across the fetch: threads challenged at once wait for
    /// the first one's token.
    pub fn fetch_turn(&self) -> MutexGuard<'_, ()> {
        lock(&self.fetching)
    }

    /// Caches `token` for `scope` for `lifetime` (at most [`MAX_TOKEN_LIFETIME`]) less the
    /// renewal margin. Computed before the cache is locked, and without a way to panic.
    pub fn store_token(&self, scope: &str, token: String, lifetime: Duration) {
        let now = Instant::now();
        let usable = lifetime
            .min(MAX_TOKEN_LIFETIME)
            .saturating_sub(EXPIRY_MARGIN);
        let expires = now.checked_add(usable).unwrap_or(now);
        lock(&self.tokens).insert(scope.to_string(), (token, expires));
    }

    /// Parses a token endpoint's answer: the token and how long it lives.
    pub fn parse_token(registry: &str, body: &[u8]) -> RegistryResult<(String, Duration)> {
        let parsed: TokenResponse =
            serde_json::from_slice(body).map_err(|e| RegistryError::Auth {
                registry: registry.to_string(),
                reason: format!("the token service's answer is not a token: {e}"),
            })?;
        let token = parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| RegistryError::Auth {
                registry: registry.to_string(),
                reason: "the token service sent no token".to_string(),
            })?;
        // It goes into an `Authorization` header: visible ASCII only (no line breaks, no
        // control characters), or building the request would fail later.
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(RegistryError::Auth {
                registry: registry.to_string(),
                reason: "the token service sent a token with characters a header cannot carry \
                         (only visible ASCII is allowed)"
                    .to_string(),
            });
        }
        let lifetime = parsed
            .expires_in
            .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs)
            .min(MAX_TOKEN_LIFETIME);
        Ok((token, lifetime))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let header = r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:app:pull""#;
        assert_eq!(
            parse_challenge(header),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:app:pull".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn basic_is_encoded_once() {
        assert_eq!(basic_header("user", "secret"), "Basic dXNlcjpzZWNyZXQ=");
        assert_eq!(basic_token("user", "secret"), "dXNlcjpzZWNyZXQ=");
    }

    #[test]
    fn cached_tokens_expire() {
        let state = AuthState::default();
        state.store_token("s", "t".into(), Duration::from_secs(3600));
        assert_eq!(
            state.header_for("s", &Credentials::Anonymous).as_deref(),
            Some("Bearer t")
        );
        assert_eq!(state.header_for("other", &Credentials::Anonymous), None);
        state.store_token("s", "t".into(), Duration::from_secs(1));
        assert_eq!(state.header_for("s", &Credentials::Anonymous), None);
    }

    #[test]
    fn huge_lifetimes_neither_overflow_nor_outlive_the_cap() {
        let body = br#"{"token":"t","expires_in":18446744073709551615}"#;
        let (token, lifetime) = AuthState::parse_token("r", body).unwrap();
        assert_eq!(token, "t");
        let state = AuthState::default();
        state.store_token("s", token, lifetime);
        state.store_token("max", "m".into(), Duration::MAX);
        assert_eq!(
            state.header_for("max", &Credentials::Anonymous).as_deref(),
            Some("Bearer m")
        );
        let expires = state.tokens.lock().unwrap()["s"].1;
        assert!(
            expires <= Instant::now() + Duration::from_secs(24 * 3600),
            "a token is cached for at most a day"
        );
    }

    #[test]
    fn a_poisoned_token_cache_still_answers() {
        let state = std::sync::Arc::new(AuthState::default());
        state.store_token("s", "t".into(), Duration::from_secs(3600));
        let poisoner = std::sync::Arc::clone(&state);
        let _ = std::thread::spawn(move || {
            let _held = poisoner.tokens.lock();
            panic!("a panic while the token cache is held");
        })
        .join();
        assert!(state.tokens.is_poisoned());
        assert_eq!(
            state.header_for("s", &Credentials::Anonymous).as_deref(),
            Some("Bearer t")
        );
        state.store_token("other", "u".into(), Duration::from_secs(3600));
        assert_eq!(
            state
                .header_for("other", &Credentials::Anonymous)
                .as_deref(),
            Some("Bearer u")
        );
    }

    #[test]
    fn tokens_that_cannot_be_a_header_are_refused() {
        for body in [
            &br#"{"token":"a\nb"}"#[..],
            br#"{"token":"a\u0000b"}"#,
            br#"{"token":"caf\u00e9"}"#,
        ] {
            let error = AuthState::parse_token("r", body)
                .expect_err(std::str::from_utf8(body).unwrap())
                .to_string();
            assert!(error.contains("token"), "{error}");
        }
    }
}
