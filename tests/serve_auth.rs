//! `serve --htpasswd` (read and write permission apart) and `serve --tls-cert/--tls-key`,
//! through HTTP and through skopeo.

mod cli_support;
mod interop_tools;
mod serve_support;

use std::sync::Arc;

use base64::Engine as _;
use cli_support::TestStore;
use interop_tools::{path_str, tools_available};
use oci_store::stores::oci::layout_builder::LayoutBuilder;
use serve_support::{send, Server};

fn basic(user: &str, password: &str) -> String {
    let pair = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// `alice` (may push) and `bob` (may only pull).
fn htpasswd(store: &TestStore) -> String {
    let path = store.scratch("htpasswd");
    let text = format!(
        "alice:{}\nbob:{}\n",
        bcrypt::hash("wonderland", 4).unwrap(),
        bcrypt::hash("builder", 4).unwrap()
    );
    std::fs::write(&path, text).unwrap();
    path_str(&path).to_string()
}

fn store_with_image(store: &TestStore) {
    let layout = store.scratch("layout");
    LayoutBuilder::simple_image(&layout, "demo:v1").unwrap();
    store.ok(&["import", path_str(&layout)]);
}

#[test]
fn htpasswd_users_read_and_only_writers_push() {
    let store = TestStore::new();
    store_with_image(&store);
    let file = htpasswd(&store);
    let server = Server::start(
        &store,
        &["--push", "--htpasswd", &file, "--writer", "alice"],
    );
    let url = server.url("/v2/demo/manifests/v1");

    let anonymous = send("GET", &url, &[], b"");
    assert_eq!(
        (anonymous.status, anonymous.error_code().as_str()),
        (401, "UNAUTHORIZED")
    );
    assert_eq!(
        anonymous.header("WWW-Authenticate"),
        Some("Basic realm=\"oci-store\"")
    );
    let wrong = send(
        "GET",
        &url,
        &[("Authorization", &basic("bob", "nope"))],
        b"",
    );
    assert_eq!(wrong.status, 401);
    let bob = basic("bob", "builder");
    assert_eq!(
        send("GET", &url, &[("Authorization", &bob)], b"").status,
        200
    );
    let denied = send(
        "POST",
        &server.url("/v2/demo/blobs/uploads/"),
        &[("Authorization", &bob)],
        b"",
    );
    assert_eq!(
        (denied.status, denied.error_code().as_str()),
        (403, "DENIED")
    );
    let alice = basic("alice", "wonderland");
    let allowed = send(
        "POST",
        &server.url("/v2/demo/blobs/uploads/"),
        &[("Authorization", &alice)],
        b"",
    );
    assert_eq!(allowed.status, 202);

    if tools_available("htpasswd_users_read_and_only_writers_push", &["skopeo"]) {
        let remote = format!("docker://{}/demo:v1", server.address);
        let inspected = std::process::Command::new("skopeo")
            .args([
                "inspect",
                "--tls-verify=false",
                "--creds",
                "bob:builder",
                &remote,
            ])
            .output()
            .unwrap();
        assert!(
            inspected.status.success(),
            "{}",
            String::from_utf8_lossy(&inspected.stderr)
        );
        let refused = std::process::Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", &remote])
            .output()
            .unwrap();
        assert!(!refused.status.success(), "skopeo read without credentials");
    }
}

#[test]
fn anonymous_read_needs_credentials_only_to_push() {
    let store = TestStore::new();
    store_with_image(&store);
    let file = htpasswd(&store);
    let server = Server::start(&store, &["--push", "--htpasswd", &file, "--anonymous-read"]);
    assert_eq!(
        send("GET", &server.url("/v2/demo/manifests/v1"), &[], b"").status,
        200
    );
    assert_eq!(
        send("POST", &server.url("/v2/demo/blobs/uploads/"), &[], b"").status,
        401
    );
    let bob = basic("bob", "builder");
    assert_eq!(
        send(
            "POST",
            &server.url("/v2/demo/blobs/uploads/"),
            &[("Authorization", &bob)],
            b""
        )
        .status,
        202
    );
}

#[test]
fn a_bad_htpasswd_file_stops_the_server_with_its_line() {
    let store = TestStore::new();
    store.ok(&["stats"]);
    let path = store.scratch("htpasswd");
    std::fs::write(&path, "alice:plaintext\n").unwrap();
    let message = store.fails(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--htpasswd",
        path_str(&path),
    ]);
    assert!(
        message.contains("line 1") && message.contains("bcrypt"),
        "{message}"
    );
}

#[test]
fn tls_serves_https_with_the_given_certificate() {
    let store = TestStore::new();
    store_with_image(&store);
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let (cert, key) = (store.scratch("cert.pem"), store.scratch("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let server = Server::start(
        &store,
        &["--tls-cert", path_str(&cert), "--tls-key", path_str(&key)],
    );

    let root = ureq::tls::Certificate::from_der(certified.cert.der()).to_owned();
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![root])))
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .build()
        .into();
    let response = agent
        .get(&format!("https://{}/v2/demo/manifests/v1", server.address))
        .call()
        .expect("an HTTPS answer");
    assert_eq!(response.status().as_u16(), 200);
    // Plain HTTP on the TLS port gets no registry answer.
    let plain = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(5)))
        .build()
        .new_agent()
        .get(&format!("http://{}/v2/", server.address))
        .call();
    assert!(plain.is_err() || plain.unwrap().status().as_u16() != 200);

    if tools_available("tls_serves_https_with_the_given_certificate", &["skopeo"]) {
        let certs = store.scratch("certs.d");
        std::fs::create_dir_all(&certs).unwrap();
        std::fs::write(certs.join("ca.crt"), certified.cert.pem()).unwrap();
        let inspected = std::process::Command::new("skopeo")
            .args([
                "inspect",
                "--cert-dir",
                path_str(&certs),
                &format!("docker://{}/demo:v1", server.address),
            ])
            .output()
            .unwrap();
        assert!(
            inspected.status.success(),
            "{}",
            String::from_utf8_lossy(&inspected.stderr)
        );
    }
}
