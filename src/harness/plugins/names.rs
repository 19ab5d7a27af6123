//! How dockerd names and finds managed plugins (moby v20.10.24 `plugin/store.go`
//! `resolvePluginID`, with `github.com/docker/distribution/reference`): a full 64-hex
//! ID; else a reference, normalized (`localvol` is `localvol:latest`,
//! `docker.io/library/x` is `x:latest`) and matched by name; else an ID prefix, which
//! must match one plugin only. A digest reference (`name@sha256:…`) is never resolved.

use crate::harness::error::HarnessError;

/// The familiar, tagged form of a plugin reference, as dockerd names plugins:
/// `localvol` → `localvol:latest`; a tag already given is kept, and
/// `docker.io/library/` is dropped. References dockerd would not parse (upper case in
/// the path, empty components) are returned as given.
///
/// ```
/// use docker_plugin_sdk::harness::normalize_name;
///
/// assert_eq!(normalize_name("localvol"), "localvol:latest");
/// assert_eq!(normalize_name("docker.io/library/localvol:2"), "localvol:2");
/// assert_eq!(normalize_name("127.0.0.1:5000/test/localvol"), "127.0.0.1:5000/test/localvol:latest");
/// ```
pub fn normalize_name(name: &str) -> String {
    parse(name).unwrap_or_else(|| name.to_owned())
}

/// The familiar tagged name of `reference`, or `None` when dockerd's reference
/// parser refuses it or it has a digest.
fn parse(reference: &str) -> Option<String> {
    if reference.contains('@') || reference.is_empty() {
        return None;
    }
    let (path, tag) = match reference.rsplit_once(':') {
        Some((path, tag)) if !tag.contains('/') => (path, Some(tag)),
        _ => (reference, None),
    };
    if let Some(tag) = tag
        && (tag.is_empty()
            || tag.len() > 128
            || !tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
            || tag.starts_with(['.', '-']))
    {
        return None;
    }
    let mut parts: Vec<&str> = path.split('/').collect();
    let has_domain = parts.len() > 1
        && (parts[0].contains(['.', ':']) || parts[0] == "localhost")
        && parts[0].chars().any(|c| c != '.');
    let first_path = usize::from(has_domain);
    let valid_component = |c: &str| {
        !c.is_empty()
            && c.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
            && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
            && c.ends_with(|ch: char| ch.is_ascii_alphanumeric())
    };
    if parts.len() == first_path || !parts[first_path..].iter().all(|c| valid_component(c)) {
        return None;
    }
    let docker_hub = !has_domain || parts[0] == "docker.io" || parts[0] == "index.docker.io";
    if has_domain && docker_hub {
        parts.remove(0);
    }
    if docker_hub && parts.len() == 2 && parts[0] == "library" {
        parts.remove(0);
    }
    Some(format!("{}:{}", parts.join("/"), tag.unwrap_or("latest")))
}

fn is_full_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Which plugin `ref_or_id` means among `plugins` (`(id, name)` pairs), as moby's
/// `resolvePluginID`: the index of the one found, or dockerd's error (`plugin "x" not
/// found`, `multiple plugins found for "x"`).
pub(crate) fn resolve<'a>(
    ref_or_id: &str,
    plugins: impl Iterator<Item = (&'a str, &'a str)> + Clone,
) -> Result<usize, HarnessError> {
    let not_found = || HarnessError::NoSuchPlugin {
        name: ref_or_id.to_owned(),
    };
    if is_full_id(ref_or_id) {
        return plugins
            .clone()
            .position(|(id, _)| id == ref_or_id)
            .ok_or_else(not_found);
    }
    let name = parse(ref_or_id).ok_or_else(not_found)?;
    if let Some(i) = plugins.clone().position(|(_, n)| n == name) {
        return Ok(i);
    }
    let mut found = None;
    for (i, (id, _)) in plugins.enumerate() {
        if id.starts_with(ref_or_id) {
            if found.is_some() {
                return Err(HarnessError::AmbiguousPlugin {
                    name: ref_or_id.to_owned(),
                });
            }
            found = Some(i);
        }
    }
    found.ok_or_else(not_found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized_like_references() {
        assert_eq!(normalize_name("localvol"), "localvol:latest");
        assert_eq!(normalize_name("localvol:1"), "localvol:1");
        assert_eq!(normalize_name("library/localvol"), "localvol:latest");
        assert_eq!(
            normalize_name("docker.io/me/localvol"),
            "me/localvol:latest"
        );
        assert_eq!(
            normalize_name("127.0.0.1:5000/test/localvol"),
            "127.0.0.1:5000/test/localvol:latest"
        );
        assert_eq!(
            normalize_name("127.0.0.1:5000/test/localvol:2"),
            "127.0.0.1:5000/test/localvol:2"
        );
        assert_eq!(normalize_name("Upper"), "Upper");
    }

    #[test]
    fn ids_names_and_prefixes_resolve_as_in_dockerd() {
        let a = "a".repeat(64);
        let ab = format!("ab{}", "0".repeat(62));
        let plugins = [(a.as_str(), "one:latest"), (ab.as_str(), "two:1")];
        let find = |s: &str| resolve(s, plugins.iter().copied()).map_err(|e| e.to_string());
        assert_eq!(find(&a), Ok(0));
        assert_eq!(find("one"), Ok(0));
        assert_eq!(find("one:latest"), Ok(0));
        assert_eq!(find("two:1"), Ok(1));
        assert_eq!(find("ab"), Ok(1));
        assert_eq!(find("a"), Err(r#"multiple plugins found for "a""#.into()));
        assert_eq!(find("two"), Err(r#"plugin "two" not found"#.into()));
        assert_eq!(
            find(&"b".repeat(64)),
            Err(format!(r#"plugin "{}" not found"#, "b".repeat(64)))
        );
        assert_eq!(
            find("one@sha256:00"),
            Err(r#"plugin "one@sha256:00" not found"#.into())
        );
    }
}
