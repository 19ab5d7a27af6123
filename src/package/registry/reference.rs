//! Image references as `docker plugin install` and `docker push` take them:
//! `[registry/]repository[:tag]`, with Docker Hub's normalization (no registry or
//! one of its aliases means `registry-1.docker.io`; a one-part name gets `library/`).
//!
//! This follows the docker CLI's reference parsing (`ParseNormalizedNamed` in
//! `github.com/docker/distribution/reference`, vendored by moby v20.10.24 in
//! `vendor/github.com/docker/distribution/reference/normalize.go`): the first part is
//! a registry when it has a `.` or a `:` or is `localhost`. Only what a push needs is
//! accepted: a tag, never a digest.

use std::fmt;
use std::str::FromStr;

use crate::package::PackageError;

/// Docker Hub's registry host, for references without one.
pub const DOCKER_HUB: &str = "registry-1.docker.io";

/// The names a reference may give Docker Hub by; all mean [`DOCKER_HUB`].
pub const DOCKER_HUB_ALIASES: &[&str] = &["docker.io", "index.docker.io", DOCKER_HUB];

/// `[registry/]repository[:tag]`, as `docker plugin install` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]`; [`DOCKER_HUB`] for Docker Hub, whichever of
    /// [`DOCKER_HUB_ALIASES`] the reference named it by (or none).
    pub registry: String,
    /// `path/name` (Docker Hub names without a `/` get `library/`).
    pub repository: String,
    /// The tag (default `latest`).
    pub tag: String,
}

impl FromStr for Reference {
    type Err = PackageError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| PackageError::Reference {
            reference: s.to_owned(),
            reason: reason.to_owned(),
        };
        if s.contains('@') {
            return Err(bad("push takes a tag, not a digest: write host/repo:tag"));
        }
        let (registry, rest) = match s.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                // docker.io/me/p is Docker Hub, spoken to at registry-1.docker.io.
                let registry = if DOCKER_HUB_ALIASES.contains(&first) {
                    DOCKER_HUB
                } else {
                    first
                };
                (registry.to_owned(), rest.to_owned())
            }
            _ => (DOCKER_HUB.to_owned(), s.to_owned()),
        };
        let (repository, tag) = match rest.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo.to_owned(), tag.to_owned()),
            _ => (rest, "latest".to_owned()),
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        let valid_repo = !repository.is_empty()
            && repository.split('/').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
            });
        if !valid_repo {
            return Err(bad(
                "the repository must be lower-case letters, digits, `.`, `_`, `-` and `/`, e.g. 127.0.0.1:5000/me/plugin:1",
            ));
        }
        let valid_tag = !tag.is_empty()
            && tag.len() <= 128
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !valid_tag {
            return Err(bad(
                "the tag must be letters, digits, `.`, `_` and `-`, at most 128",
            ));
        }
        Ok(Self {
            registry,
            repository,
            tag,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.registry, self.repository, self.tag)
    }
}

impl Reference {
    /// The host part of [`registry`](Self::registry), without port or brackets.
    pub fn host(&self) -> &str {
        let host = match self.registry.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
            _ => self.registry.as_str(),
        };
        host.trim_start_matches('[').trim_end_matches(']')
    }

    /// Whether dockerd treats the registry as insecure by default: its host is, or
    /// resolves to, an address in `127.0.0.0/8`, the one insecure range dockerd
    /// always adds (moby v20.10.24 `registry/config.go`, `LoadInsecureRegistries` and
    /// `isSecureIndex`). dockerd then tries HTTPS without verifying the certificate,
    /// and plain HTTP after it; so does `push` (see [`super::Connect`]).
    pub fn is_insecure_by_default(&self) -> bool {
        use std::net::{IpAddr, ToSocketAddrs};
        let in_range = |ip: IpAddr| matches!(ip, IpAddr::V4(v4) if v4.octets()[0] == 127);
        if let Ok(ip) = self.host().parse::<IpAddr>() {
            return in_range(ip);
        }
        (self.host(), 0)
            .to_socket_addrs()
            .is_ok_and(|mut addrs| addrs.any(|a| in_range(a.ip())))
    }

    /// The same repository with another tag.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, PackageError> {
        format!("{}/{}:{tag}", self.registry, self.repository).parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_like_docker() {
        let r: Reference = "127.0.0.1:5000/test/localvol:1".parse().expect("ref");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_str()),
            ("127.0.0.1:5000", "test/localvol", "1")
        );
        assert!(r.is_insecure_by_default());
        assert_eq!(r.to_string(), "127.0.0.1:5000/test/localvol:1");
        assert_eq!(
            r.with_tag("1-arm64").expect("tag").to_string(),
            "127.0.0.1:5000/test/localvol:1-arm64"
        );
        let r: Reference = "me/plugin".parse().expect("hub");
        assert_eq!(r.registry, DOCKER_HUB);
        assert_eq!(r.repository, "me/plugin");
        assert_eq!(r.tag, "latest");
        let r: Reference = "localvol".parse().expect("official");
        assert_eq!(r.repository, "library/localvol");
        // All of 127.0.0.0/8, and names resolving there, as dockerd; not ::1.
        for insecure in ["localhost:5000/x", "127.1.2.3:5000/x", "127.0.0.1/x"] {
            let r: Reference = insecure.parse().expect(insecure);
            assert!(r.is_insecure_by_default(), "{insecure}");
        }
        for secure in ["192.0.2.1:5000/x", "[::1]:5000/x", "10.0.0.1/x"] {
            let r: Reference = secure.parse().expect(secure);
            assert!(!r.is_insecure_by_default(), "{secure}");
        }
        let r: Reference = "[::1]:5000/x".parse().expect("v6");
        assert_eq!(r.host(), "::1");
        for bad in ["Me/Plugin", "r.io/a@sha256:00", "r.io/a:b c", "r.io//a"] {
            assert!(bad.parse::<Reference>().is_err(), "{bad}");
        }
    }

    #[test]
    fn docker_hub_names_all_mean_docker_hub() {
        for (reference, repository) in [
            ("docker.io/me/p:1", "me/p"),
            ("index.docker.io/me/p:1", "me/p"),
            ("registry-1.docker.io/me/p:1", "me/p"),
            ("me/p:1", "me/p"),
            ("docker.io/p:1", "library/p"),
            ("index.docker.io/p:1", "library/p"),
            ("registry-1.docker.io/p:1", "library/p"),
            ("p:1", "library/p"),
        ] {
            let r: Reference = reference.parse().expect(reference);
            assert_eq!(
                (r.registry.as_str(), r.repository.as_str(), r.tag.as_str()),
                (DOCKER_HUB, repository, "1"),
                "{reference}"
            );
        }
        // Other registries keep their name and get no library/.
        let r: Reference = "ghcr.io/p:1".parse().expect("ghcr");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("ghcr.io", "p")
        );
        let r: Reference = "docker.io.example/p".parse().expect("lookalike");
        assert_eq!(r.registry, "docker.io.example");
    }
}
