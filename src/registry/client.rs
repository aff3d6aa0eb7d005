//! The HTTP side of the distribution spec, synchronous, on `ureq` 3 (rustls): one
//! [`RegistryClient`] per registry, shared by the threads of a pull or push.
//!
//! Every request goes through [`RegistryClient::send`], which
//! - answers `401` challenges ([`super::auth`]) once per request and retries;
//! - follows redirects itself (ureq's are off), sending credentials (Basic or Bearer) only to
//!   the registry's own origin, scheme, host and port alike: a redirect to blob storage on
//!   another host, to another port of the same host or from `https` down to `http` gets no
//!   `Authorization` (and a `401` there is not answered with credentials);
//! - retries with exponential backoff on `429`, `5xx` and transport errors (resets, timeouts),
//!   honouring `Retry-After`, for requests whose body can be sent again.

use std::io::Read;
use std::time::Duration;

use ureq::http::{Method, Request, Response};
use ureq::{Body, SendBody};

use super::auth::{AuthState, Challenge, Credentials};
use super::error::{RegistryError, RegistryResult};
use super::reference::is_loopback;
use super::url;

/// How a client connects: scheme policy, retries, parallelism.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Allow plain HTTP to a registry that is not on a loopback address.
    pub insecure: bool,
    /// Retries of a failed request (429, 5xx, reset) before giving up.
    pub retries: u32,
    /// The first backoff; each retry doubles it.
    pub backoff: Duration,
    /// Resumes of one interrupted blob download (Range requests) before giving up.
    pub resumes: u32,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            insecure: false,
            retries: 4,
            backoff: Duration::from_millis(200),
            resumes: 5,
        }
    }
}

/// A request body that can be produced again for a retry.
pub enum Payload<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// Sent once: a failure is not retried here (the caller restarts the upload).
    Reader(&'a mut dyn Read, u64),
}

/// A connection to one registry: HTTP agent, scheme, credentials and cached tokens.
pub struct RegistryClient {
    agent: ureq::Agent,
    /// `host[:port]`.
    registry: String,
    /// `https` or `http`.
    scheme: &'static str,
    /// Where credentials may go: the scheme, host and port of [`RegistryClient::url`].
    origin: url::Origin,
    credentials: Credentials,
    options: ClientOptions,
    pub(crate) auth: AuthState,
}

impl RegistryClient {
    /// A client of `registry` (`host[:port]`). HTTPS, except for loopback hosts and with
    /// `insecure`, where plain HTTP is used.
    pub fn new(
        registry: &str,
        credentials: Credentials,
        options: ClientOptions,
    ) -> RegistryResult<RegistryClient> {
        // Docker Hub's name and the host of its API differ.
        let registry = match registry {
            "docker.io" | "index.docker.io" => "registry-1.docker.io",
            other => other,
        };
        let host = super::reference::host_of(registry).to_ascii_lowercase();
        let scheme = if options.insecure || is_loopback(&host) {
            "http"
        } else {
            "https"
        };
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("oci-store/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .timeout_recv_body(None)
            .timeout_per_read(Some(Duration::from_secs(60)))
            .max_idle_connections_per_host(16)
            .build();
        let origin = url::origin(&format!("{scheme}://{registry}/")).ok_or_else(|| {
            RegistryError::InvalidReference {
                reference: registry.to_string(),
                reason: "the registry's port is not a number from 0 to 65535".to_string(),
            }
        })?;
        Ok(RegistryClient {
            agent: ureq::Agent::new_with_config(config),
            registry: registry.to_string(),
            scheme,
            origin,
            credentials,
            options,
            auth: AuthState::default(),
        })
    }

    /// The registry, `host[:port]`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The options the client was made with.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// `<scheme>://<registry>/v2/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}/v2/{path}", self.scheme, self.registry)
    }

    /// Refuses plain HTTP to a host that is not loopback unless `--insecure` was given (for
    /// URLs the registry hands out: redirects, token realms, upload locations).
    fn check_scheme(&self, target: &str) -> RegistryResult<()> {
        if target.starts_with("https://") || self.options.insecure {
            return Ok(());
        }
        let host = url::host(target).unwrap_or_default();
        if target.starts_with("http://") && is_loopback(&host) {
            return Ok(());
        }
        Err(RegistryError::InsecureRefused { registry: host })
    }

    /// Sends a request, following redirects, answering challenges and retrying as described
    /// in the module doc. `scope` is the token scope the request needs. A status is returned
    /// as a response; callers decide what they expect.
    pub fn send(
        &self,
        method: Method,
        target: &str,
        scope: &str,
        headers: &[(&str, String)],
        mut payload: Payload<'_>,
    ) -> RegistryResult<Response<Body>> {
        let replayable = !matches!(payload, Payload::Reader(..));
        let mut attempt = 0;
        let mut challenged = false;
        let mut current = target.to_string();
        let mut redirects = 0;
        // The authorization a challenge of this request was just answered with: used when the
        // cache has none for it (a token that expires at once still serves this request).
        let mut granted: Option<String> = None;
        loop {
            self.check_scheme(&current)?;
            let own_origin = self.is_own_origin(&current);
            let mut builder = Request::builder().method(method.clone()).uri(&current);
            for (name, value) in headers {
                builder = builder.header(*name, value);
            }
            let sent_authorization = match own_origin {
                true => self
                    .auth
                    .header_for(scope, &self.credentials)
                    .or_else(|| granted.clone()),
                false => None,
            };
            if let Some(authorization) = &sent_authorization {
                builder = builder.header("Authorization", authorization);
            }
            let result = match &mut payload {
                Payload::Empty => self.agent.run(built(builder.body(()), &current)?),
                Payload::Bytes(bytes) => self.agent.run(built(builder.body(*bytes), &current)?),
                Payload::Reader(reader, length) => {
                    let request = builder
                        .header("Content-Length", length.to_string())
                        .body(SendBody::from_reader(*reader));
                    self.agent.run(built(request, &current)?)
                }
            };
            let response = match result {
                Ok(response) => response,
                Err(error) => {
                    if replayable && attempt < self.options.retries && is_transient(&error) {
                        self.pause(attempt, None);
                        attempt += 1;
                        continue;
                    }
                    return Err(RegistryError::Transport {
                        method: method.to_string(),
                        url: current,
                        source: Box::new(error),
                    });
                }
            };
            let status = response.status().as_u16();
            if matches!(status, 301 | 302 | 303 | 307 | 308) && replayable {
                let location =
                    header(&response, "location").ok_or_else(|| RegistryError::Protocol {
                        url: current.clone(),
                        reason: format!("redirect {status} without a Location"),
                    })?;
                redirects += 1;
                if redirects > 10 {
                    return Err(RegistryError::Protocol {
                        url: current,
                        reason: "more than 10 redirects".to_string(),
                    });
                }
                current = url::resolve(&current, &location);
                continue;
            }
            if status == 401 && own_origin && !challenged && replayable {
                let challenge = header(&response, "www-authenticate")
                    .and_then(|h| super::auth::parse_challenge(&h));
                if let Some(challenge) = challenge {
                    challenged = true;
                    granted = self.answer(challenge, scope, sent_authorization.as_deref())?;
                    continue;
                }
            }
            if (status == 429 || (500..600).contains(&status) && status != 501)
                && replayable
                && attempt < self.options.retries
            {
                let retry_after = header(&response, "retry-after")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                self.pause(attempt, retry_after);
                attempt += 1;
                continue;
            }
            return Ok(response);
        }
    }

    fn pause(&self, attempt: u32, retry_after: Option<Duration>) {
        let backoff = self.options.backoff * 2u32.saturating_pow(attempt.min(10));
        let wait = retry_after.unwrap_or(backoff).min(Duration::from_secs(30));
        std::thread::sleep(wait);
    }

    /// Whether `target` is the registry's own origin (scheme, host and port), the only place
    /// its credentials and tokens go.
    fn is_own_origin(&self, target: &str) -> bool {
        url::origin(target).as_ref() == Some(&self.origin)
    }

    /// Meets a challenge: Basic needs credentials; Bearer fetches a token for the request's
    /// scope and the one the registry names (a HEAD of a push asks only `pull`), unless
    /// another thread replaced the token this request was refused with meanwhile. Returns the
    /// `Authorization` to retry with, when it is a token.
    fn answer(
        &self,
        challenge: Challenge,
        scope: &str,
        refused: Option<&str>,
    ) -> RegistryResult<Option<String>> {
        match challenge {
            Challenge::Basic => match &self.credentials {
                Credentials::Basic { .. } => {
                    self.auth.use_basic();
                    Ok(None)
                }
                _ => Err(RegistryError::Auth {
                    registry: self.registry.clone(),
                    reason: "it asks for a user name and password: run `oci-store login` \
                             (or give --username and --password-stdin)"
                        .to_string(),
                }),
            },
            Challenge::Bearer {
                realm,
                service,
                scope: asked,
            } => {
                // Nothing under this turn panics (request building fails with an error, the
                // token's lifetime is capped): a panic here would poison it; see `auth::lock`.
                let _turn = self.auth.fetch_turn();
                let current = self.auth.header_for(scope, &self.credentials);
                if current.is_some() && current.as_deref() != refused {
                    return Ok(current);
                }
                let mut parts: Vec<&str> = scope.split(' ').filter(|p| !p.is_empty()).collect();
                for part in asked.as_deref().unwrap_or_default().split(' ') {
                    if !part.is_empty() && !parts.contains(&part) {
                        parts.push(part);
                    }
                }
                let wanted = parts.join(" ");
                let (token, lifetime) = self.fetch_token(&realm, service.as_deref(), &wanted)?;
                let authorization = format!("Bearer {token}");
                self.auth.store_token(scope, token, lifetime);
                Ok(Some(authorization))
            }
        }
    }

    /// The distribution token protocol: GET the realm with Basic credentials (or none), or
    /// POST an OAuth2 refresh-token grant with an identity token.
    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> RegistryResult<(String, Duration)> {
        self.check_scheme(realm)?;
        let auth_error = |reason: String| RegistryError::Auth {
            registry: self.registry.clone(),
            reason,
        };
        let mut query = String::new();
        if let Some(service) = service {
            query = url::with_query(&query, "service", service);
        }
        for part in scope.split(' ').filter(|s| !s.is_empty()) {
            query = url::with_query(&query, "scope", part);
        }
        let result = match &self.credentials {
            Credentials::IdentityToken(refresh) => {
                let mut form = format!(
                    "grant_type=refresh_token&client_id=oci-store&refresh_token={}",
                    url::encode(refresh)
                );
                if let Some(service) = service {
                    form.push_str(&format!("&service={}", url::encode(service)));
                }
                form.push_str(&format!("&scope={}", url::encode(scope)));
                let request = Request::builder()
                    .method(Method::POST)
                    .uri(realm)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(form);
                self.agent.run(built(request, realm)?)
            }
            credentials => {
                let mut builder = Request::builder()
                    .method(Method::GET)
                    .uri(format!("{realm}{query}"));
                if let Credentials::Basic { username, password } = credentials {
                    builder = builder.header(
                        "Authorization",
                        super::auth::basic_header(username, password),
                    );
                }
                self.agent.run(built(builder.body(()), realm)?)
            }
        };
        let mut response =
            result.map_err(|e| auth_error(format!("asking {realm} for a token: {e}")))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(1024 * 1024)
            .read_to_vec()
            .map_err(|e| auth_error(format!("reading the token from {realm}: {e}")))?;
        if status != 200 {
            return Err(auth_error(format!(
                "the token service {realm} answered {status}{} (check the credentials: \
                 `oci-store login`)",
                error_detail(&body)
            )));
        }
        self.auth
            .tokens_fetched
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        AuthState::parse_token(&self.registry, &body)
    }

    /// The error for an unexpected status: the registry's own message when it sent one.
    pub fn status_error(
        &self,
        method: &str,
        target: &str,
        mut response: Response<Body>,
    ) -> RegistryError {
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_vec()
            .unwrap_or_default();
        let mut detail = error_detail(&body);
        if status == 401 || status == 403 {
            detail.push_str(" (check the credentials: `oci-store login`)");
        }
        RegistryError::Status {
            method: method.to_string(),
            url: target.to_string(),
            status,
            detail,
        }
    }
}

/// A request whose URL or headers came (in part) from a registry or token service: one they
/// made unusable (a space in a realm, a line break in a token) is an error naming the URL,
/// never a panic.
fn built<T>(
    request: Result<Request<T>, ureq::http::Error>,
    url: &str,
) -> RegistryResult<Request<T>> {
    request.map_err(|e| RegistryError::Protocol {
        url: url.to_string(),
        reason: format!("the registry gave a URL or header that cannot be sent: {e}"),
    })
}

/// A response header as text.
pub fn header(response: &Response<Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `: message` from a distribution error body (`{"errors":[{"code","message"}]}`).
fn error_detail(body: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    let messages: Vec<String> = value["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    format!(
                        "{} {}",
                        e["code"].as_str().unwrap_or_default(),
                        e["message"].as_str().unwrap_or_default()
                    )
                    .trim()
                    .to_string()
                })
                .collect()
        })
        .unwrap_or_default();
    if messages.is_empty() {
        String::new()
    } else {
        format!(": {}", messages.join("; "))
    }
}

/// Errors worth a retry: the connection failed or broke, or timed out.
pub fn is_transient(error: &ureq::Error) -> bool {
    matches!(
        error,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::Protocol(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback_or_when_insecure() {
        let client = |registry: &str, insecure| {
            let options = ClientOptions {
                insecure,
                ..ClientOptions::default()
            };
            RegistryClient::new(registry, Credentials::Anonymous, options).unwrap()
        };
        assert_eq!(
            client("127.0.0.1:5000", false).url(""),
            "http://127.0.0.1:5000/v2/"
        );
        assert_eq!(
            client("localhost:5000", false).url("a"),
            "http://localhost:5000/v2/a"
        );
        assert_eq!(
            client("example.com", false).url(""),
            "https://example.com/v2/"
        );
        assert_eq!(
            client("example.com:5000", true).url(""),
            "http://example.com:5000/v2/"
        );
        assert_eq!(
            client("docker.io", false).url(""),
            "https://registry-1.docker.io/v2/"
        );
        let strict = client("example.com", false);
        assert!(strict.check_scheme("http://10.0.0.1/token").is_err());
        assert!(strict.check_scheme("http://127.0.0.1:1/token").is_ok());
        assert!(strict.check_scheme("https://auth.example/token").is_ok());
    }

    #[test]
    fn credentials_go_only_to_the_registrys_own_origin() {
        let tls = RegistryClient::new(
            "registry.example",
            Credentials::Anonymous,
            ClientOptions::default(),
        )
        .unwrap();
        assert!(tls.is_own_origin("https://registry.example/v2/app/blobs/x"));
        assert!(tls.is_own_origin("https://REGISTRY.example:443/v2/"));
        assert!(
            !tls.is_own_origin("http://registry.example/v2/"),
            "never on a downgrade to plain HTTP"
        );
        assert!(!tls.is_own_origin("https://registry.example:8443/v2/"));
        assert!(!tls.is_own_origin("https://cdn.example/blob"));
        let local = RegistryClient::new(
            "127.0.0.1:5000",
            Credentials::Anonymous,
            ClientOptions::default(),
        )
        .unwrap();
        assert!(local.is_own_origin("http://127.0.0.1:5000/v2/"));
        assert!(!local.is_own_origin("http://127.0.0.1:5001/v2/"));
        assert!(!local.is_own_origin("https://127.0.0.1:5000/v2/"));
        assert!(!local.is_own_origin("http://localhost:5000/v2/"));
    }

    #[test]
    fn a_realm_that_is_no_url_is_an_error_not_a_panic() {
        let client = RegistryClient::new(
            "127.0.0.1:1",
            Credentials::Anonymous,
            ClientOptions::default(),
        )
        .unwrap();
        let error = client
            .fetch_token("http://127.0.0.1:1/a realm", None, "repository:a:pull")
            .unwrap_err()
            .to_string();
        assert!(error.contains("cannot be sent"), "{error}");
    }
}
