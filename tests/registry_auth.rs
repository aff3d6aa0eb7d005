//! Authentication against a real distribution 2.8 registry: htpasswd Basic, and token auth
//! with a token service the test runs (ES256 JWTs signed with a key it generated); credentials
//! from flags and stdin, the Docker config (`login`/`logout`, read by skopeo too), credential
//! helpers and identity tokens; tokens cached per scope until they expire, never sent on a
//! redirect to another host; plain HTTP refused off loopback.

mod cli_support;
mod interop_tools;
mod registry_support;

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use cli_support::TestStore;
use interop_tools::{
    layout_blobs, manifest_layers, path_str, run_tool, tools_available, umoci_image,
};
use oci_store::registry::{get_manifest, ClientOptions, Credentials, Reference, RegistryClient};
use registry_support::proxy::{Action, Logged, Proxy};
use registry_support::token::{TokenService, ISSUER, SERVICE};
use registry_support::{Registry, RegistryAuth, REGISTRY_TOOL};

const USER: &str = "tester";
const PASSWORD: &str = "s3cret-pass";

fn tools(test: &str) -> bool {
    tools_available(test, &[REGISTRY_TOOL, "umoci", "skopeo"])
}

/// Runs the tool with the Docker config in `docker_config` (and no other auth file), `stdin`
/// fed to it.
fn run(store: &TestStore, docker_config: &Path, args: &[&str], stdin: &str) -> Output {
    run_with_env(store, docker_config, args, stdin, &[])
}

/// [`run`] with more environment variables.
fn run_with_env(
    store: &TestStore,
    docker_config: &Path,
    args: &[&str],
    stdin: &str,
    env: &[(&str, String)],
) -> Output {
    let mut command = store.command(args);
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command
        .env("DOCKER_CONFIG", docker_config)
        .env(
            "REGISTRY_AUTH_FILE",
            docker_config.join("no-podman-auth.json"),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting oci-store");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("feeding stdin");
    child.wait_with_output().expect("oci-store")
}

fn ok(store: &TestStore, docker_config: &Path, args: &[&str], stdin: &str) -> serde_json::Value {
    let mut with_json = vec!["--json"];
    with_json.extend_from_slice(args);
    let output = run(store, docker_config, &with_json, stdin);
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON output")
}

fn fails(store: &TestStore, docker_config: &Path, args: &[&str], stdin: &str) -> String {
    let output = run(store, docker_config, args, stdin);
    assert!(!output.status.success(), "{args:?} succeeded");
    String::from_utf8_lossy(&output.stderr).to_string()
}

fn store_with_image(store: &TestStore) -> String {
    let built = store.scratch("built");
    let digest = umoci_image(&built, "latest", &[("/etc/secret", b"only for testers\n")]);
    store.ok(&[
        "import",
        "--sref",
        "latest",
        "--dref",
        "app:1",
        path_str(&built),
    ]);
    digest
}

#[test]
fn basic_auth_takes_credentials_from_flags_the_docker_config_and_helpers() {
    if !tools("basic_auth_takes_credentials_from_flags_the_docker_config_and_helpers") {
        return;
    }
    let registry = Registry::start(RegistryAuth::Basic {
        username: USER.into(),
        password: PASSWORD.into(),
    });
    let store = TestStore::new();
    let digest = store_with_image(&store);
    let config = store.scratch("docker");
    let remote = format!("{}/private/app:1", registry.address());

    let anonymous = fails(&store, &config, &["push", "app:1", &remote], "");
    assert!(anonymous.contains("oci-store login"), "{anonymous}");
    // From the flags and stdin.
    let pushed = ok(
        &store,
        &config,
        &["push", "-u", USER, "--password-stdin", "app:1", &remote],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(pushed["digest"], digest.as_str());

    // login checks the credentials before it writes anything.
    let wrong = fails(
        &store,
        &config,
        &["login", "-u", USER, "--password-stdin", &registry.address()],
        "wrong",
    );
    assert!(wrong.contains("401"), "{wrong}");
    assert!(
        !config.join("config.json").exists(),
        "a failed login writes nothing"
    );
    ok(
        &store,
        &config,
        &["login", "-u", USER, "--password-stdin", &registry.address()],
        PASSWORD,
    );
    // The config is the one skopeo reads.
    let inspected = run_tool(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--authfile",
            path_str(&config.join("config.json")),
            &format!("docker://{remote}"),
        ],
    );
    assert!(inspected.contains(&digest), "{inspected}");
    let other = TestStore::new();
    let pulled = ok(&other, &config, &["pull", &remote], "");
    assert_eq!(pulled["digest"], digest.as_str());

    ok(&store, &config, &["logout", &registry.address()], "");
    let after_logout = fails(&TestStore::new(), &config, &["pull", &remote], "");
    assert!(after_logout.contains("oci-store login"), "{after_logout}");

    // A credential helper named in credHelpers.
    let helpers = store.scratch("helpers");
    std::fs::create_dir_all(&helpers).unwrap();
    let helper = helpers.join("docker-credential-oci-store-test");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread server\necho '{{\"ServerURL\":\"'$server'\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}'\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        config.join("config.json"),
        serde_json::json!({"credHelpers": {registry.address(): "oci-store-test"}}).to_string(),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        helpers.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let helped = TestStore::new();
    let output = helped
        .command(&["--json", "pull", &remote])
        .env("DOCKER_CONFIG", &config)
        .env("REGISTRY_AUTH_FILE", config.join("none.json"))
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "pull with a credential helper: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A registry with token auth and its token service (tokens living `lifetime_secs`).
fn token_registry(lifetime_secs: u64) -> (TokenService, Registry, tempfile::TempDir) {
    token_registry_advertising(lifetime_secs, None)
}

/// [`token_registry`] whose token service says `expires_in: advertised` in its answers.
fn token_registry_advertising(
    lifetime_secs: u64,
    advertised: Option<u64>,
) -> (TokenService, Registry, tempfile::TempDir) {
    let keys = tempfile::tempdir().unwrap();
    let service =
        TokenService::start_advertising(keys.path(), USER, PASSWORD, lifetime_secs, advertised);
    let registry = Registry::start(RegistryAuth::Token {
        realm: service.realm(),
        service: SERVICE.into(),
        issuer: ISSUER.into(),
        certificate: service.certificate.clone(),
    });
    (service, registry, keys)
}

#[test]
fn bearer_tokens_are_fetched_per_scope_and_reused() {
    if !tools("bearer_tokens_are_fetched_per_scope_and_reused") {
        return;
    }
    let (service, registry, _keys) = token_registry(3600);
    let store = TestStore::new();
    let digest = store_with_image(&store);
    let config = store.scratch("docker");
    let remote = format!("{}/tokened/app:1", registry.address());

    let anonymous = fails(&store, &config, &["push", "app:1", &remote], "");
    assert!(anonymous.contains("token"), "{anonymous}");
    let before = service.issued();
    let pushed = ok(
        &store,
        &config,
        &["push", "-u", USER, "--password-stdin", "app:1", &remote],
        PASSWORD,
    );
    assert_eq!(pushed["blobs_uploaded"], 2, "{pushed}");
    assert_eq!(
        service.issued() - before,
        1,
        "one push scope, one token for every request of the push"
    );
    ok(
        &store,
        &config,
        &["login", "-u", USER, "--password-stdin", &registry.address()],
        PASSWORD,
    );
    let other = TestStore::new();
    let pulled = ok(&other, &config, &["pull", &remote], "");
    assert_eq!(pulled["digest"], digest.as_str());

    // An identity token (OAuth2 refresh token) in the Docker config.
    std::fs::write(
        config.join("config.json"),
        serde_json::json!({"auths": {registry.address(): {"identitytoken": format!("refresh-{PASSWORD}")}}})
            .to_string(),
    )
    .unwrap();
    let refreshed = ok(&TestStore::new(), &config, &["pull", &remote], "");
    assert_eq!(refreshed["digest"], digest.as_str());

    // In one client, the token of a scope is reused until it expires.
    let reference = Reference::parse(&remote).unwrap();
    let credentials = Credentials::Basic {
        username: USER.into(),
        password: PASSWORD.into(),
    };
    let client = RegistryClient::new(
        &registry.address(),
        credentials.clone(),
        ClientOptions::default(),
    )
    .unwrap();
    for _ in 0..3 {
        get_manifest(&client, &reference)
            .unwrap()
            .expect("the manifest");
    }
    assert_eq!(client.tokens_fetched(), 1);
    let other_repository =
        Reference::parse(&format!("{}/elsewhere:1", registry.address())).unwrap();
    assert!(get_manifest(&client, &other_repository).unwrap().is_none());
    assert_eq!(
        client.tokens_fetched(),
        2,
        "another repository, another scope"
    );
}

#[test]
fn an_expired_token_is_fetched_again() {
    if !tools("an_expired_token_is_fetched_again") {
        return;
    }
    // Renewed 5 s before it expires: a 7 s token is used for 2 s.
    let (_service, registry, _keys) = token_registry(7);
    let store = TestStore::new();
    store_with_image(&store);
    let remote = format!("{}/short/app:1", registry.address());
    let config = store.scratch("docker");
    ok(
        &store,
        &config,
        &["push", "-u", USER, "--password-stdin", "app:1", &remote],
        PASSWORD,
    );
    let credentials = Credentials::Basic {
        username: USER.into(),
        password: PASSWORD.into(),
    };
    let client =
        RegistryClient::new(&registry.address(), credentials, ClientOptions::default()).unwrap();
    let reference = Reference::parse(&remote).unwrap();
    get_manifest(&client, &reference)
        .unwrap()
        .expect("the manifest");
    get_manifest(&client, &reference)
        .unwrap()
        .expect("the manifest");
    assert_eq!(client.tokens_fetched(), 1);
    std::thread::sleep(Duration::from_millis(2500));
    get_manifest(&client, &reference)
        .unwrap()
        .expect("the manifest");
    assert_eq!(client.tokens_fetched(), 2, "the expired token was replaced");
}

#[test]
fn tokens_are_never_sent_on_a_redirect_to_another_host() {
    if !tools("tokens_are_never_sent_on_a_redirect_to_another_host") {
        return;
    }
    let (_service, registry, _keys) = token_registry(3600);
    let store = TestStore::new();
    let digest = store_with_image(&store);
    let config = store.scratch("docker");
    let remote = format!("{}/redirected/app:1", registry.address());
    ok(
        &store,
        &config,
        &["push", "-u", USER, "--password-stdin", "app:1", &remote],
        PASSWORD,
    );
    let blobs = layout_blobs(&store.scratch("built"));
    let layer = manifest_layers(&store.scratch("built"), &digest)[0].clone();
    let layer_bytes = blobs[&layer].clone();
    // "Blob storage" on another host name (localhost, not 127.0.0.1) that serves the layer.
    let (storage, front) =
        layer_redirected(&registry.address(), &layer, layer_bytes, |port, layer| {
            format!("http://localhost:{port}/storage/{layer}")
        });
    let pulled = ok(
        &TestStore::new(),
        &config,
        &[
            "pull",
            "-u",
            USER,
            "--password-stdin",
            &format!("{}/redirected/app:1", front.address()),
        ],
        PASSWORD,
    );
    assert_eq!(pulled["digest"], digest.as_str());
    let front_log = front.log();
    let asked = front_log
        .iter()
        .find(|l| l.path.ends_with(&layer))
        .expect("the layer was asked of the registry");
    assert!(
        asked
            .authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Bearer ")),
        "the registry got the token: {asked:?}"
    );
    let storage_log = storage.log();
    assert_eq!(storage_log.len(), 1, "{storage_log:?}");
    assert_eq!(
        storage_log[0].authorization, None,
        "the other host got no Authorization"
    );
}

#[test]
fn plain_http_off_loopback_is_refused_without_insecure() {
    if !tools("plain_http_off_loopback_is_refused_without_insecure") {
        return;
    }
    let registry = Registry::start(RegistryAuth::None);
    // A registry that sends its token realm, then its blobs, to a plain-HTTP address that is
    // not loopback (TEST-NET-1: nothing answers there).
    let challenge = Proxy::start(
        registry.address(),
        Box::new(|_, _| Action::Respond {
            status: 401,
            headers: vec![(
                "WWW-Authenticate".into(),
                r#"Bearer realm="http://192.0.2.1/token",service="x""#.into(),
            )],
            body: Vec::new(),
        }),
    );
    let store = TestStore::new();
    let error = store.fails(&["pull", &format!("{}/app:1", challenge.address())]);
    assert!(
        error.contains("--insecure") && error.contains("192.0.2.1"),
        "{error}"
    );
    let redirect = Proxy::start(
        registry.address(),
        Box::new(|_, _| Action::Respond {
            status: 307,
            headers: vec![(
                "Location".into(),
                "http://192.0.2.1/v2/app/manifests/1".into(),
            )],
            body: Vec::new(),
        }),
    );
    let error = store.fails(&["pull", &format!("{}/app:1", redirect.address())]);
    assert!(
        error.contains("--insecure") && error.contains("192.0.2.1"),
        "{error}"
    );
}

#[test]
fn an_upload_whose_token_expires_before_its_put_starts_again() {
    if !tools("an_upload_whose_token_expires_before_its_put_starts_again") {
        return;
    }
    // Renewed 5 s before it expires: a 6 s token is used for 1 s.
    let (_service, registry, _keys) = token_registry(6);
    let proxy = Proxy::start(
        registry.address(),
        Box::new(|request, log| {
            let posts = log.iter().filter(|l| l.method == "POST").count();
            if request.method == "POST" && posts == 1 {
                // The first upload session opens slowly: the token is stale by its PUT.
                Action::Delay(Duration::from_millis(1500))
            } else {
                Action::Forward
            }
        }),
    );
    let store = TestStore::new();
    let digest = store_with_image(&store);
    let config = store.scratch("docker");
    let pushed = ok(
        &store,
        &config,
        &[
            "push",
            "--jobs",
            "1",
            "-u",
            USER,
            "--password-stdin",
            "app:1",
            &format!("{}/slow/app:1", proxy.address()),
        ],
        PASSWORD,
    );
    assert_eq!(pushed["digest"], digest.as_str());
    let posts = proxy.log().iter().filter(|l| l.method == "POST").count();
    let log: Vec<String> = proxy
        .log()
        .iter()
        .map(|l| {
            format!(
                "{} {} {}",
                l.method,
                l.path.split('?').next().unwrap_or_default(),
                l.authorization.is_some()
            )
        })
        .collect();
    assert!(
        posts >= 3,
        "the first upload started again: {posts} POSTs for 2 blobs: {log:#?}"
    );
}

/// Runs `call` `times` times on one client, each in `catch_unwind`: what each returned, or
/// the message it panicked with.
fn calls_on_one_client<T>(
    times: usize,
    call: impl Fn() -> Result<T, oci_store::registry::RegistryError>,
) -> Vec<Result<T, String>> {
    (0..times)
        .map(
            |_| match std::panic::catch_unwind(std::panic::AssertUnwindSafe(&call)) {
                Ok(result) => result.map_err(|e| format!("error: {e}")),
                Err(panic) => Err(format!(
                    "panicked: {}",
                    panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic
                            .downcast_ref::<&str>()
                            .map(std::string::ToString::to_string))
                        .unwrap_or_default()
                )),
            },
        )
        .collect()
}

#[test]
fn a_token_service_cannot_crash_the_client_with_a_huge_expiry() {
    if !tools("a_token_service_cannot_crash_the_client_with_a_huge_expiry") {
        return;
    }
    // The tokens really live an hour; the service says they live u64::MAX seconds.
    let (service, registry, _keys) = token_registry_advertising(3600, Some(u64::MAX));
    let store = TestStore::new();
    let digest = store_with_image(&store);
    let config = store.scratch("docker");
    let remote = format!("{}/forever/app:1", registry.address());

    // The CLI: push and pull work, and each fetches one token for its scope.
    let output = run(
        &store,
        &config,
        &[
            "--json",
            "push",
            "-u",
            USER,
            "--password-stdin",
            "app:1",
            &remote,
        ],
        PASSWORD,
    );
    assert!(
        output.status.success(),
        "push with a token of u64::MAX seconds: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let pulled = ok(
        &TestStore::new(),
        &config,
        &["pull", "-u", USER, "--password-stdin", &remote],
        PASSWORD,
    );
    assert_eq!(pulled["digest"], digest.as_str());

    // The library: one client, several fetches; none panics, the token is cached (for at
    // most the capped lifetime) and reused.
    let client = RegistryClient::new(
        &registry.address(),
        Credentials::Basic {
            username: USER.into(),
            password: PASSWORD.into(),
        },
        ClientOptions::default(),
    )
    .unwrap();
    let reference = Reference::parse(&remote).unwrap();
    let before = service.issued();
    let results = calls_on_one_client(3, || get_manifest(&client, &reference));
    let outcomes: Vec<String> = results
        .iter()
        .map(|r| match r {
            Ok(Some(fetched)) => format!("ok {}", fetched.digest),
            Ok(None) => "no manifest".to_string(),
            Err(message) => message.clone(),
        })
        .collect();
    assert_eq!(
        outcomes,
        vec![format!("ok {digest}"); 3],
        "three fetches on one client"
    );
    assert_eq!(client.tokens_fetched(), 1, "the token was cached");
    assert_eq!(service.issued() - before, 1);
}

#[test]
fn a_token_that_expires_at_once_still_serves_the_pull_it_was_fetched_for() {
    if !tools("a_token_that_expires_at_once_still_serves_the_pull_it_was_fetched_for") {
        return;
    }
    let (service, registry, _keys) = token_registry(3600);
    let store = TestStore::new();
    let digest = store_with_image(&store);
    let config = store.scratch("docker");
    let remote = format!("{}/instant/app:1", registry.address());
    ok(
        &store,
        &config,
        &["push", "-u", USER, "--password-stdin", "app:1", &remote],
        PASSWORD,
    );
    // From now on `expires_in: 0`: nothing to cache, but each challenged request gets
    // through with the token fetched for it.
    service.advertise(Some(0));
    let pulled = ok(
        &TestStore::new(),
        &config,
        &["pull", "-u", USER, "--password-stdin", &remote],
        PASSWORD,
    );
    assert_eq!(pulled["digest"], digest.as_str());
    let client = RegistryClient::new(
        &registry.address(),
        Credentials::Basic {
            username: USER.into(),
            password: PASSWORD.into(),
        },
        ClientOptions::default(),
    )
    .unwrap();
    let reference = Reference::parse(&remote).unwrap();
    let fetched = get_manifest(&client, &reference)
        .expect("the manifest with a token of 0 seconds")
        .expect("the manifest");
    assert_eq!(fetched.digest.to_string(), digest);
}

/// Pulls `app:1` (pushed to `registry` with the test's credentials) through a front on
/// 127.0.0.1 that redirects the first layer's GET to another port of 127.0.0.1, where a
/// recorder serves it. Returns what the front and the recorder saw of the layer's GETs.
fn pull_through_a_redirect_to_another_port(
    registry: &Registry,
    repository: &str,
) -> (Vec<Logged>, Vec<Logged>) {
    let store = TestStore::new();
    let digest = store_with_image(&store);
    let config = store.scratch("docker");
    let remote = format!("{}/{repository}/app:1", registry.address());
    ok(
        &store,
        &config,
        &["push", "-u", USER, "--password-stdin", "app:1", &remote],
        PASSWORD,
    );
    let built = store.scratch("built");
    let layer = manifest_layers(&built, &digest)[0].clone();
    let layer_bytes = layout_blobs(&built)[&layer].clone();
    // Same host, another port (from the OS): another program, for all the client knows.
    let (recorder, front) =
        layer_redirected(&registry.address(), &layer, layer_bytes, |port, layer| {
            format!("http://127.0.0.1:{port}/v2/{layer}")
        });
    let pulled = ok(
        &TestStore::new(),
        &config,
        &[
            "pull",
            "-u",
            USER,
            "--password-stdin",
            &format!("{}/{repository}/app:1", front.address()),
        ],
        PASSWORD,
    );
    assert_eq!(pulled["digest"], digest.as_str());
    let layer_gets = |log: Vec<Logged>| -> Vec<Logged> {
        log.into_iter()
            .filter(|l| l.path.ends_with(&layer))
            .collect()
    };
    (layer_gets(front.log()), layer_gets(recorder.log()))
}

#[test]
fn credentials_never_follow_a_redirect_to_another_port_of_the_same_host() {
    if !tools("credentials_never_follow_a_redirect_to_another_port_of_the_same_host") {
        return;
    }
    let basic = Registry::start(RegistryAuth::Basic {
        username: USER.into(),
        password: PASSWORD.into(),
    });
    let (front, recorder) = pull_through_a_redirect_to_another_port(&basic, "basic");
    assert!(
        front.iter().any(|l| l
            .authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Basic "))),
        "the registry got the password: {front:?}"
    );
    assert_eq!(recorder.len(), 1, "{recorder:?}");
    assert_eq!(
        recorder[0].authorization, None,
        "another port of the registry's host got the registry's Basic credentials"
    );

    let (_service, tokened, _keys) = token_registry(3600);
    let (front, recorder) = pull_through_a_redirect_to_another_port(&tokened, "bearer");
    assert!(
        front.iter().any(|l| l
            .authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Bearer "))),
        "the registry got the token: {front:?}"
    );
    assert_eq!(recorder.len(), 1, "{recorder:?}");
    assert_eq!(
        recorder[0].authorization, None,
        "another port of the registry's host got the registry's token"
    );
}

/// A credential helper `docker-credential-fake` in `dir` that keeps one credential in
/// `dir/stored.json` and appends each call (`<action> <stdin>`) to `dir/calls.log`; and the
/// PATH that finds it first.
fn fake_credential_helper(dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let helper = dir.join("docker-credential-fake");
    std::fs::write(
        &helper,
        r#"#!/bin/sh
dir=$(dirname "$0")
action=$1
input=$(cat)
printf '%s %s\n' "$action" "$input" >> "$dir/calls.log"
case "$action" in
  store) printf '%s' "$input" > "$dir/stored.json" ;;
  get)
    if [ -f "$dir/stored.json" ]; then cat "$dir/stored.json"
    else echo "credentials not found in native keychain"; exit 1; fi ;;
  erase)
    if [ -f "$dir/stored.json" ]; then rm "$dir/stored.json"
    else echo "credentials not found in native keychain"; exit 1; fi ;;
  *) echo "unknown action $action"; exit 1 ;;
esac
"#,
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn helper_calls(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("calls.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn login_hands_the_password_to_the_configured_credential_helper() {
    if !tools("login_hands_the_password_to_the_configured_credential_helper") {
        return;
    }
    let registry = Registry::start(RegistryAuth::Basic {
        username: USER.into(),
        password: PASSWORD.into(),
    });
    let store = TestStore::new();
    let digest = store_with_image(&store);
    let config = store.scratch("docker");
    std::fs::create_dir_all(&config).unwrap();
    let remote = format!("{}/helped/app:1", registry.address());
    ok(
        &store,
        &config,
        &["push", "-u", USER, "--password-stdin", "app:1", &remote],
        PASSWORD,
    );
    let helpers = store.scratch("helpers");
    let env = [("PATH", fake_credential_helper(&helpers))];
    let config_file = config.join("config.json");
    let secrets = [PASSWORD.to_string(), basic_token_of(USER, PASSWORD)];

    // credsStore: login stores through docker-credential-fake, config.json keeps no secret.
    std::fs::write(
        &config_file,
        serde_json::json!({"credsStore": "fake", "detachKeys": "ctrl-q"}).to_string(),
    )
    .unwrap();
    let output = run_with_env(
        &store,
        &config,
        &["login", "-u", USER, "--password-stdin", &registry.address()],
        PASSWORD,
        &env,
    );
    assert!(
        output.status.success(),
        "login: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let written = std::fs::read_to_string(&config_file).unwrap();
    for secret in &secrets {
        assert!(
            !written.contains(secret.as_str()),
            "config.json holds the password in plain text: {written}"
        );
    }
    let config_json: serde_json::Value = serde_json::from_str(&written).unwrap();
    assert_eq!(config_json["credsStore"], "fake", "{written}");
    assert_eq!(config_json["detachKeys"], "ctrl-q", "{written}");
    let calls = helper_calls(&helpers);
    assert_eq!(calls.len(), 1, "{calls:?}");
    let stored: serde_json::Value = serde_json::from_str(
        calls[0]
            .strip_prefix("store ")
            .unwrap_or_else(|| panic!("not a store: {calls:?}")),
    )
    .unwrap();
    assert_eq!(
        stored,
        serde_json::json!({"ServerURL": registry.address(), "Username": USER, "Secret": PASSWORD})
    );

    // Reading goes through the helper (`get`).
    let pulled = ok_with_env(&TestStore::new(), &config, &["pull", &remote], &env);
    assert_eq!(pulled["digest"], digest.as_str());
    assert!(
        helper_calls(&helpers).contains(&format!("get {}", registry.address())),
        "{:?}",
        helper_calls(&helpers)
    );

    // logout erases through the helper; then nothing is found and the pull is anonymous.
    let output = run_with_env(&store, &config, &["logout", &registry.address()], "", &env);
    assert!(
        output.status.success(),
        "logout: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        helper_calls(&helpers).contains(&format!("erase {}", registry.address())),
        "{:?}",
        helper_calls(&helpers)
    );
    assert!(!helpers.join("stored.json").exists());
    let output = run_with_env(&TestStore::new(), &config, &["pull", &remote], "", &env);
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("oci-store login"), "{error}");

    // credHelpers for the registry comes before credsStore (which names no helper here); a
    // plain-text entry left from an earlier login loses its secret.
    std::fs::remove_file(helpers.join("calls.log")).unwrap();
    std::fs::write(
        &config_file,
        serde_json::json!({
            "credsStore": "absent",
            "credHelpers": {registry.address(): "fake"},
            "auths": {registry.address(): {"auth": secrets[1]}, "other.example": {"auth": "eDp5"}},
        })
        .to_string(),
    )
    .unwrap();
    let output = run_with_env(
        &store,
        &config,
        &["login", "-u", USER, "--password-stdin", &registry.address()],
        PASSWORD,
        &env,
    );
    assert!(
        output.status.success(),
        "login with credHelpers: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        helper_calls(&helpers)[0].starts_with("store "),
        "{:?}",
        helper_calls(&helpers)
    );
    let written = std::fs::read_to_string(&config_file).unwrap();
    for secret in &secrets {
        assert!(!written.contains(secret.as_str()), "{written}");
    }
    assert!(
        written.contains("eDp5"),
        "other registries are kept: {written}"
    );
    let pulled = ok_with_env(&TestStore::new(), &config, &["pull", &remote], &env);
    assert_eq!(pulled["digest"], digest.as_str());
}

#[test]
fn login_refuses_when_the_configured_credential_helper_is_missing() {
    if !tools("login_refuses_when_the_configured_credential_helper_is_missing") {
        return;
    }
    let registry = Registry::start(RegistryAuth::Basic {
        username: USER.into(),
        password: PASSWORD.into(),
    });
    let store = TestStore::new();
    let config = store.scratch("docker");
    std::fs::create_dir_all(&config).unwrap();
    let config_file = config.join("config.json");
    let before = serde_json::json!({"credsStore": "absent"}).to_string();
    std::fs::write(&config_file, &before).unwrap();
    let output = run(
        &store,
        &config,
        &["login", "-u", USER, "--password-stdin", &registry.address()],
        PASSWORD,
    );
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "login succeeded: {error}");
    assert!(
        error.contains("docker-credential-absent") && error.contains("credsStore"),
        "the error names the helper and what to change: {error}"
    );
    assert_eq!(
        std::fs::read_to_string(&config_file).unwrap(),
        before,
        "a refused login writes nothing"
    );
}

/// `base64(user:password)`, as Docker's config keeps it under `auth`.
fn basic_token_of(username: &str, password: &str) -> String {
    let encoded = run_tool(
        "sh",
        &[
            "-c",
            &format!("printf '%s' '{username}:{password}' | base64 -w0"),
        ],
    );
    encoded.trim().to_string()
}

fn ok_with_env(
    store: &TestStore,
    docker_config: &Path,
    args: &[&str],
    env: &[(&str, String)],
) -> serde_json::Value {
    let mut with_json = vec!["--json"];
    with_json.extend_from_slice(args);
    let output = run_with_env(store, docker_config, &with_json, "", env);
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON output")
}

/// Two servers for a redirected layer: one that answers every request with `layer_bytes`
/// (blob storage, or a recorder of what reaches it), and a front to `registry` that answers
/// GETs of `layer` with a 307 to `location(storage port, layer)` and forwards the rest.
fn layer_redirected(
    registry: &str,
    layer: &str,
    layer_bytes: Vec<u8>,
    location: fn(u16, &str) -> String,
) -> (Proxy, Proxy) {
    let storage = Proxy::start(
        registry.to_string(),
        Box::new(move |_, _| Action::Respond {
            status: 200,
            headers: vec![],
            body: layer_bytes.clone(),
        }),
    );
    let target = location(storage.port, layer);
    let layer = layer.to_string();
    let front = Proxy::start(
        registry.to_string(),
        Box::new(move |request, _| {
            if request.method == "GET" && request.path.ends_with(&layer) {
                Action::Respond {
                    status: 307,
                    headers: vec![("Location".into(), target.clone())],
                    body: Vec::new(),
                }
            } else {
                Action::Forward
            }
        }),
    );
    (storage, front)
}
