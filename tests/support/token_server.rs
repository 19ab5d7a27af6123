//! A token service as distribution's token authentication expects one, for the
//! push tests: an axum server on `127.0.0.1` that checks the login (HTTP basic on
//! `GET`, the OAuth2 `password` and `refresh_token` grants on `POST`, as dockerd's
//! containerd resolver and `push` send them) and grants only scopes of the
//! `repository(plugin)` class, signing ES256 tokens (with the `x5c` header) that
//! the registry checks against the signing certificate (its `rootcertbundle`). It
//! records every scope asked for.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use libtest_mimic::Failed;

/// A token service as distribution's token auth expects one.
pub struct TokenServer {
    port: u16,
    /// The signing certificate (the registry's `rootcertbundle`).
    pub cert_pem: String,
    /// Every `scope` asked for, in order, with the grant used (`basic`,
    /// `password`, `refresh_token`).
    pub asked: Arc<Mutex<Vec<(String, String)>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

struct TokenState {
    user: String,
    password: String,
    refresh_token: String,
    key: ring::signature::EcdsaKeyPair,
    cert_der: Vec<u8>,
    asked: Arc<Mutex<Vec<(String, String)>>>,
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl TokenServer {
    pub const SERVICE: &'static str = "dps-registry";
    pub const ISSUER: &'static str = "dps-token-issuer";

    /// Serves on a free loopback port; logs in `user`/`password`, or the OAuth2
    /// `refresh_token`.
    pub fn start(user: &str, password: &str, refresh_token: &str) -> Result<Self, Failed> {
        use axum::routing::get;
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "dps token signer");
        let cert = params.self_signed(&key)?;
        let ring_key = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
            &ring::rand::SystemRandom::new(),
        )
        .map_err(|e| format!("signing key: {e}"))?;
        let asked = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(TokenState {
            user: user.into(),
            password: password.into(),
            refresh_token: refresh_token.into(),
            key: ring_key,
            cert_der: cert.der().to_vec(),
            asked: Arc::clone(&asked),
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let port = listener.local_addr()?.port();
        let app = axum::Router::new()
            .route("/token", get(token_get).post(token_post))
            .with_state(state);
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            port,
            cert_pem: cert.pem(),
            asked,
            runtime: Some(runtime),
        })
    }

    /// Its URL, the registry's `realm`.
    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// The scopes asked for so far.
    pub fn asked(&self) -> Vec<(String, String)> {
        self.asked.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// `TYPE:NAME:ACTIONS` granted when TYPE is `repository(plugin)`: the registry
/// itself checks `repository` access, so the class is the token server's rule.
fn grants(scopes: &[String]) -> Vec<serde_json::Value> {
    let mut access = Vec::new();
    for scope in scopes.iter().flat_map(|s| s.split(' ')) {
        let (Some((kind, rest)), true) = (scope.split_once(':'), scope.matches(':').count() >= 2)
        else {
            continue;
        };
        let Some((name, actions)) = rest.rsplit_once(':') else {
            continue;
        };
        if kind == "repository(plugin)" {
            access.push(serde_json::json!({
                "type": "repository",
                "class": "plugin",
                "name": name,
                "actions": actions.split(',').collect::<Vec<_>>(),
            }));
        }
    }
    access
}

fn issue(state: &TokenState, subject: &str, scopes: &[String]) -> axum::response::Response {
    use axum::response::IntoResponse;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let header = serde_json::json!({
        "typ": "JWT",
        "alg": "ES256",
        "x5c": [base64::engine::general_purpose::STANDARD.encode(&state.cert_der)],
    });
    let claims = serde_json::json!({
        "iss": TokenServer::ISSUER,
        "sub": subject,
        "aud": TokenServer::SERVICE,
        "exp": now + 600,
        "nbf": now - 60,
        "iat": now,
        "jti": format!("{now}-{}", scopes.len()),
        "access": grants(scopes),
    });
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let Ok(signature) = state
        .key
        .sign(&ring::rand::SystemRandom::new(), signing_input.as_bytes())
    else {
        return (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "signing failed",
        )
            .into_response();
    };
    let token = format!("{signing_input}.{}", b64url(signature.as_ref()));
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        serde_json::json!({
            "token": token,
            "access_token": token,
            "expires_in": 600,
        })
        .to_string(),
    )
        .into_response()
}

fn record(state: &TokenState, grant: &str, scopes: &[String]) {
    let mut asked = state.asked.lock().unwrap_or_else(|p| p.into_inner());
    for scope in scopes {
        asked.push((grant.to_owned(), scope.clone()));
    }
}

/// `GET /token?scope=…&service=…` with HTTP basic authentication.
async fn token_get(
    axum::extract::State(state): axum::extract::State<Arc<TokenState>>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let scopes: Vec<String> = form_pairs(query.as_deref().unwrap_or_default())
        .into_iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v)
        .collect();
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", state.user, state.password))
    );
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if auth != expected {
        return (axum::http::StatusCode::UNAUTHORIZED, "bad login").into_response();
    }
    record(&state, "basic", &scopes);
    issue(&state, &state.user, &scopes)
}

/// `POST /token`, OAuth2 form: the `password` and `refresh_token` grants.
async fn token_post(
    axum::extract::State(state): axum::extract::State<Arc<TokenState>>,
    body: String,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let form = form_pairs(&body);
    let field = |key: &str| {
        form.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let scopes: Vec<String> = field("scope").split(' ').map(str::to_owned).collect();
    let grant = field("grant_type");
    let ok = match grant.as_str() {
        "password" => field("username") == state.user && field("password") == state.password,
        "refresh_token" => field("refresh_token") == state.refresh_token,
        _ => false,
    };
    if !ok {
        return (axum::http::StatusCode::UNAUTHORIZED, "bad login").into_response();
    }
    record(&state, &grant, &scopes);
    issue(&state, &state.user, &scopes)
}

/// `a=b&c=d`, percent- and `+`-decoded.
fn form_pairs(text: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%'
                && i + 2 < bytes.len()
                && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
            {
                out.push(b);
                i += 3;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}
