//! Registry authentication as dockerd does it for plugins: the `WWW-Authenticate`
//! challenge of a `401`, then either HTTP basic or a bearer token from the token
//! service.
//!
//! The token is asked for the scope `repository(plugin):NAME:ACTIONS`: a plugin
//! repository has the `plugin` class, and some registries refuse a plugin push
//! without it (moby v20.10.24 `plugin/registry.go`, `scope`: push asks
//! `pull,push`, install `pull`). The scopes the challenge names are asked for too,
//! as containerd's authorizer merges them (`remotes/docker/authorizer.go`, vendored
//! by moby v20.10.24). A user name and password go to the token service with basic
//! authentication (`GET`); an identity token is exchanged with the OAuth2
//! `refresh_token` grant (`POST`), as the docker CLI does after an OAuth2 login.

use super::credentials::Credentials;
use crate::package::PackageError;

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Challenge {
    /// `basic` or `bearer`, lower case.
    pub scheme: String,
    /// Its parameters (`realm`, `service`, `scope`, …), keys lower case.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub(super) fn parse(header: &str) -> Self {
        let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        Self {
            scheme: scheme.to_ascii_lowercase(),
            params: challenge_params(params),
        }
    }

    pub(super) fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// `realm="…",service="…",scope="…"` as pairs.
fn challenge_params(params: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = params.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.split_once('"') {
                Some((value, next)) => (value, next),
                None => (quoted, ""),
            }
        } else {
            after.split_once(',').unwrap_or((after, ""))
        };
        out.push((key, value.to_owned()));
        rest = next.trim_start_matches(',').trim();
    }
    out
}

/// The scope a plugin push (`pull,push`) or install (`pull`) asks for.
pub fn plugin_scope(repository: &str, actions: &str) -> String {
    format!("repository(plugin):{repository}:{actions}")
}

/// Ours first, then the challenge's (space separated there), without repeats.
pub(super) fn merged_scopes(ours: &str, challenge: &Challenge) -> Vec<String> {
    let mut scopes = vec![ours.to_owned()];
    for scope in challenge.param("scope").unwrap_or_default().split(' ') {
        if !scope.is_empty() && !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_owned());
        }
    }
    scopes
}

/// `application/x-www-form-urlencoded` escaping.
pub(super) fn form_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The client id sent with the `refresh_token` grant.
pub const CLIENT_ID: &str = "docker-plugin-sdk";

/// How to ask the token service named by a bearer challenge: method, URL, headers
/// and body.
pub(super) struct TokenRequest {
    pub method: &'static str,
    pub url: String,
    pub authorization: Option<String>,
    pub form: Option<String>,
}

/// The request for a token with `scopes` from the `realm` of `challenge`.
pub(super) fn token_request(
    challenge: &Challenge,
    scopes: &[String],
    credentials: Option<&Credentials>,
) -> Result<TokenRequest, PackageError> {
    let realm = challenge.param("realm").ok_or_else(|| {
        PackageError::Registry(format!(
            "bearer challenge without realm: {:?}",
            challenge.params
        ))
    })?;
    let service = challenge.param("service");
    match credentials {
        Some(Credentials::IdentityToken(token)) => {
            let mut form = vec![
                ("grant_type", "refresh_token".to_owned()),
                ("client_id", CLIENT_ID.to_owned()),
                ("refresh_token", token.clone()),
                ("scope", scopes.join(" ")),
            ];
            if let Some(service) = service {
                form.push(("service", service.to_owned()));
            }
            Ok(TokenRequest {
                method: "POST",
                url: realm.to_owned(),
                authorization: None,
                form: Some(
                    form.iter()
                        .map(|(k, v)| format!("{k}={}", form_escape(v)))
                        .collect::<Vec<_>>()
                        .join("&"),
                ),
            })
        }
        _ => {
            let mut url = realm.to_owned();
            let mut sep = if url.contains('?') { '&' } else { '?' };
            let mut add = |key: &str, value: &str| {
                url.push(sep);
                url.push_str(key);
                url.push('=');
                url.push_str(&form_escape(value));
                sep = '&';
            };
            for scope in scopes {
                add("scope", scope);
            }
            if let Some(service) = service {
                add("service", service);
            }
            Ok(TokenRequest {
                method: "GET",
                url,
                authorization: credentials.and_then(Credentials::basic),
                form: None,
            })
        }
    }
}

/// The token of a token service's JSON answer (`token`, or OAuth2's
/// `access_token`).
pub(super) fn token_from(body: &str, realm: &str) -> Result<String, PackageError> {
    let value: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| PackageError::Registry(format!("token service {realm}: {e}")))?;
    value
        .get("token")
        .or_else(|| value.get("access_token"))
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| PackageError::Registry(format!("token service {realm} gave no token")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_are_split() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull""#,
        );
        assert_eq!(c.scheme, "bearer");
        assert_eq!(
            c.params,
            [
                ("realm".to_owned(), "https://auth.example/token".to_owned()),
                ("service".to_owned(), "registry.example".to_owned()),
                ("scope".to_owned(), "repository:a:pull".to_owned()),
            ]
        );
    }

    #[test]
    fn the_plugin_scope_comes_first_and_the_challenges_is_kept() {
        let c = Challenge::parse(
            r#"Bearer realm="http://127.0.0.1:1/token",service="reg",scope="repository:test/p:pull,push""#,
        );
        let scopes = merged_scopes(&plugin_scope("test/p", "pull,push"), &c);
        assert_eq!(
            scopes,
            [
                "repository(plugin):test/p:pull,push",
                "repository:test/p:pull,push"
            ]
        );
        let get = token_request(&c, &scopes, Some(&Credentials::password("u", "p"))).expect("get");
        assert_eq!(get.method, "GET");
        assert_eq!(
            get.url,
            "http://127.0.0.1:1/token?scope=repository%28plugin%29%3Atest%2Fp%3Apull%2Cpush\
             &scope=repository%3Atest%2Fp%3Apull%2Cpush&service=reg"
        );
        assert_eq!(get.authorization.as_deref(), Some("Basic dTpw"));
        let post = token_request(&c, &scopes, Some(&Credentials::IdentityToken("r t".into())))
            .expect("post");
        assert_eq!(post.method, "POST");
        assert_eq!(post.url, "http://127.0.0.1:1/token");
        assert_eq!(
            post.form.as_deref(),
            Some(
                "grant_type=refresh_token&client_id=docker-plugin-sdk&refresh_token=r%20t\
                 &scope=repository%28plugin%29%3Atest%2Fp%3Apull%2Cpush%20repository%3Atest%2Fp%3Apull%2Cpush&service=reg"
            )
        );
        // Without a scope in the challenge, ours alone.
        let bare = Challenge::parse(r#"Bearer realm="http://x/t""#);
        assert_eq!(merged_scopes("s", &bare), ["s"]);
    }
}
