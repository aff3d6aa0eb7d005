//! A small token service for distribution's token auth: it checks Basic credentials, grants
//! the scopes asked for (to the right user only), and signs ES256 JWTs with a key it generated,
//! whose self-signed certificate the registry trusts (`rootcertbundle`) and which travels in
//! the token's `x5c` header. It counts the tokens it issued.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

pub const SERVICE: &str = "oci-store-test-registry";
pub const ISSUER: &str = "oci-store-test-issuer";

pub struct TokenService {
    pub port: u16,
    pub certificate: PathBuf,
    issued: Arc<AtomicU64>,
    advertised: Arc<Mutex<Option<u64>>>,
}

struct Signer {
    key: EcdsaKeyPair,
    certificate_der: Vec<u8>,
    username: String,
    password: String,
    lifetime_secs: u64,
    /// The `expires_in` the answers give, when it is not the tokens' real lifetime (a
    /// hostile or broken service).
    advertised_expires_in: Arc<Mutex<Option<u64>>>,
}

impl TokenService {
    /// Starts the service; tokens live `lifetime_secs`.
    pub fn start(dir: &Path, username: &str, password: &str, lifetime_secs: u64) -> TokenService {
        TokenService::start_advertising(dir, username, password, lifetime_secs, None)
    }

    /// Like [`TokenService::start`], but the answers say `expires_in: advertised` (when given)
    /// whatever the tokens' real lifetime.
    pub fn start_advertising(
        dir: &Path,
        username: &str,
        password: &str,
        lifetime_secs: u64,
        advertised: Option<u64>,
    ) -> TokenService {
        let certified = rcgen::generate_simple_self_signed(vec![ISSUER.to_string()])
            .expect("generating a certificate");
        let certificate = dir.join("token-cert.pem");
        std::fs::write(&certificate, certified.cert.pem()).expect("writing the certificate");
        let pkcs8 = certified.signing_key.serialize_der();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &pkcs8,
            &SystemRandom::new(),
        )
        .expect("the generated key");
        let advertised = Arc::new(Mutex::new(advertised));
        let signer = Arc::new(Signer {
            key,
            certificate_der: certified.cert.der().to_vec(),
            username: username.to_string(),
            password: password.to_string(),
            lifetime_secs,
            advertised_expires_in: Arc::clone(&advertised),
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the token service");
        let port = listener.local_addr().expect("address").port();
        let issued = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&issued);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (signer, counter) = (Arc::clone(&signer), Arc::clone(&counter));
                std::thread::spawn(move || {
                    let _ = answer(stream, &signer, &counter);
                });
            }
        });
        TokenService {
            port,
            certificate,
            issued,
            advertised,
        }
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// From now on, answers say `expires_in: advertised` (`None`: the real lifetime).
    pub fn advertise(&self, advertised: Option<u64>) {
        *self.advertised.lock().expect("advertised lifetime") = advertised;
    }

    pub fn issued(&self) -> u64 {
        self.issued.load(Ordering::SeqCst)
    }
}

fn base64(bytes: &[u8], url: bool) -> String {
    let alphabet: &[u8] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = u32::from(chunk[0]) << 16
            | u32::from(*chunk.get(1).unwrap_or(&0)) << 8
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for position in 0..=chunk.len() {
            out.push(alphabet[(n >> (18 - 6 * position) & 63) as usize] as char);
        }
        if !url {
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

fn decode_query(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

fn answer(stream: TcpStream, signer: &Signer, issued: &AtomicU64) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    let mut authorization = None;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                authorization = Some(value.trim().to_string());
            }
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let target = first.split(' ').nth(1).unwrap_or_default();
    let form = |text: &str, wanted: &str| -> Vec<String> {
        text.split('&')
            .filter_map(|pair| pair.split_once('='))
            .filter(|(name, _)| *name == wanted)
            .map(|(_, value)| decode_query(value))
            .collect()
    };
    let expected = format!(
        "Basic {}",
        base64(
            format!("{}:{}", signer.username, signer.password).as_bytes(),
            false
        )
    );
    // GET with Basic credentials, or an OAuth2 refresh-token grant (POST) with the identity
    // token `refresh-<password>`.
    let (authorized, scopes) = if first.starts_with("POST") {
        let body = String::from_utf8_lossy(&body).to_string();
        let refresh = form(&body, "refresh_token");
        let granted = form(&body, "grant_type") == ["refresh_token"]
            && refresh == [format!("refresh-{}", signer.password)];
        let scopes = form(&body, "scope")
            .iter()
            .flat_map(|s| s.split(' ').map(str::to_string).collect::<Vec<_>>())
            .collect();
        (granted, scopes)
    } else {
        let query = target.split_once('?').map(|(_, q)| q).unwrap_or_default();
        (
            authorization.as_deref() == Some(expected.as_str()),
            form(query, "scope"),
        )
    };
    let (status, response) = if authorized {
        issued.fetch_add(1, Ordering::SeqCst);
        let token = sign(signer, &scopes);
        (
            200,
            serde_json::json!({
                "token": token,
                "expires_in": signer
                    .advertised_expires_in
                    .lock()
                    .expect("advertised lifetime")
                    .unwrap_or(signer.lifetime_secs),
            })
            .to_string(),
        )
    } else {
        (
            401,
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"wrong user name or password"}]}"#
                .to_string(),
        )
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{response}",
        response.len()
    )?;
    stream.flush()
}

fn sign(signer: &Signer, scopes: &[String]) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|scope| {
            let mut parts = scope.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            Some(serde_json::json!({
                "type": kind,
                "name": name,
                "actions": actions.split(',').collect::<Vec<_>>(),
            }))
        })
        .collect();
    let header = serde_json::json!({
        "typ": "JWT",
        "alg": "ES256",
        "x5c": [base64(&signer.certificate_der, false)],
    });
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": signer.username,
        "aud": SERVICE,
        "exp": now + signer.lifetime_secs,
        "nbf": now - 10,
        "iat": now,
        "jti": format!("{now}-{}", rand_suffix()),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        base64(header.to_string().as_bytes(), true),
        base64(claims.to_string().as_bytes(), true)
    );
    let signature = signer
        .key
        .sign(&SystemRandom::new(), signing_input.as_bytes())
        .expect("signing");
    format!("{signing_input}.{}", base64(signature.as_ref(), true))
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0);
    hasher.finish()
}
