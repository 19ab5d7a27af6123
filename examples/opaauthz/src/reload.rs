//! The policy in force, and its reloading: on SIGHUP, and when the file changes (its
//! modification time, size or inode, polled: this works the same for a file edited in
//! place, replaced by a rename, or swapped behind a symlink as a Kubernetes ConfigMap
//! is, and on a bind mount of a managed plugin, where no inotify event arrives from
//! the host's edits).
//!
//! A policy that does not compile never replaces one that does: the previous policy
//! stays in force and the error is logged, with the file, line and column. Before any
//! policy has compiled (the file is missing or broken at start), every request is
//! denied with the reason, never allowed: opa-docker-authz allows everything when its
//! policy file is missing (it fails open); this plugin fails closed, and starts
//! anyway, so that dockerd, which will not start without its authorization plugins,
//! does, and the policy can be fixed in place.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tokio::signal::unix::{SignalKind, signal};

use crate::policy::{CompileError, Options, Policy};

/// What answers requests: a compiled policy, or why there is none yet.
pub type Current = Result<Arc<Policy>, Arc<str>>;

/// The policy file, its compiled form and how to compile it again.
#[derive(Debug)]
pub struct Policies {
    path: PathBuf,
    options: Options,
    current: RwLock<Current>,
    /// What the file looked like when last read.
    seen: RwLock<Option<Fingerprint>>,
}

/// What tells a changed file: modification time, size, device and inode.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint(Option<SystemTime>, u64, u64, u64);

impl Policies {
    /// Compiles `path` (blocking); when it does not compile, requests are denied
    /// until it does.
    pub fn load(path: PathBuf, options: Options) -> Self {
        let this = Self {
            path,
            options,
            current: RwLock::new(Err("no policy loaded yet".into())),
            seen: RwLock::new(None),
        };
        if let Err(e) = this.reload() {
            tracing::error!("{e}; every request is denied until it compiles");
        }
        this
    }

    /// The policy in force, or why there is none.
    pub fn current(&self) -> Current {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reads and compiles the file again (blocking). On success the new policy is in
    /// force; on failure the previous one stays (or, if none ever compiled, requests
    /// stay denied with this error as the reason).
    pub fn reload(&self) -> Result<(), CompileError> {
        let before = self.fingerprint();
        let loaded = Policy::load(&self.path, &self.options);
        *self.seen.write().unwrap_or_else(|p| p.into_inner()) = before;
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        match loaded {
            Ok(policy) => {
                tracing::info!(
                    "policy {} in force ({})",
                    self.path.display(),
                    policy.query()
                );
                *current = Ok(Arc::new(policy));
                Ok(())
            }
            Err(e) => {
                if current.is_err() {
                    *current = Err(format!("no policy in force: {e}").into());
                }
                Err(e)
            }
        }
    }

    /// Whether the file differs from when it was last read.
    pub fn changed(&self) -> bool {
        *self.seen.read().unwrap_or_else(|p| p.into_inner()) != self.fingerprint()
    }

    fn fingerprint(&self) -> Option<Fingerprint> {
        let meta = std::fs::metadata(&self.path).ok()?;
        Some(Fingerprint(
            meta.modified().ok(),
            meta.len(),
            meta.dev(),
            meta.ino(),
        ))
    }

    /// Reloads on SIGHUP and whenever a poll every `interval` sees the file changed,
    /// for as long as the process runs. Call it once, from the runtime.
    pub fn watch(self: Arc<Self>, interval: Duration) -> std::io::Result<()> {
        let mut hangups = signal(SignalKind::hangup())?;
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let why = tokio::select! {
                    _ = hangups.recv() => "SIGHUP",
                    _ = ticks.tick() => {
                        if !self.changed() {
                            continue;
                        }
                        "the file changed"
                    }
                };
                let policies = Arc::clone(&self);
                let reloaded = tokio::task::spawn_blocking(move || policies.reload()).await;
                match reloaded {
                    Ok(Ok(())) => tracing::info!("reloaded the policy ({why})"),
                    Ok(Err(e)) => tracing::error!("{e}; keeping the previous policy"),
                    Err(e) => tracing::error!("reloading the policy failed: {e}"),
                }
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Verdict;
    use serde_json::json;

    const GET_ONLY: &str = "package docker.authz\n\nallow if input.Method == \"GET\"\n";
    const POST_ONLY: &str = "package docker.authz\n\nallow if input.Method == \"POST\"\n";
    const BROKEN: &str = "package docker.authz\n\nallow if {\n";

    fn verdict(policies: &Policies, method: &str) -> Verdict {
        policies
            .current()
            .unwrap()
            .evaluate(json!({"Method": method}))
    }

    #[test]
    fn a_policy_that_fails_to_compile_keeps_the_previous_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authz.rego");
        std::fs::write(&path, GET_ONLY).unwrap();
        let policies = Policies::load(path.clone(), Options::default());
        assert_eq!(verdict(&policies, "GET"), Verdict::Allow);

        std::fs::write(&path, BROKEN).unwrap();
        let err = policies.reload().unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("policy {} does not compile: ", path.display())),
            "{err}"
        );
        assert_eq!(verdict(&policies, "GET"), Verdict::Allow);
        assert_eq!(verdict(&policies, "POST"), Verdict::Undefined);

        std::fs::write(&path, POST_ONLY).unwrap();
        policies.reload().unwrap();
        assert_eq!(verdict(&policies, "POST"), Verdict::Allow);
        assert_eq!(verdict(&policies, "GET"), Verdict::Undefined);
    }

    #[test]
    fn without_a_policy_that_compiled_requests_have_a_reason_to_be_denied() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authz.rego");
        let policies = Policies::load(path.clone(), Options::default());
        assert_eq!(
            &*policies.current().unwrap_err(),
            format!(
                "no policy in force: cannot read policy {}: No such file or directory (os error 2)",
                path.display()
            )
        );
        std::fs::write(&path, BROKEN).unwrap();
        policies.reload().unwrap_err();
        let reason = policies.current().unwrap_err();
        assert!(
            reason.starts_with(&format!(
                "no policy in force: policy {} does not compile: ",
                path.display()
            )),
            "{reason}"
        );
        std::fs::write(&path, GET_ONLY).unwrap();
        policies.reload().unwrap();
        assert_eq!(verdict(&policies, "GET"), Verdict::Allow);
    }

    #[test]
    fn a_change_is_seen_by_size_time_or_inode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authz.rego");
        std::fs::write(&path, GET_ONLY).unwrap();
        let policies = Policies::load(path.clone(), Options::default());
        assert!(!policies.changed());
        // Same size, new inode: a replacement by rename.
        let other = dir.path().join("new.rego");
        std::fs::write(&other, POST_ONLY.replace("POST", "HEAD")).unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert!(policies.changed());
        policies.reload().unwrap();
        assert!(!policies.changed());
        std::fs::remove_file(&path).unwrap();
        assert!(policies.changed());
    }

    #[tokio::test]
    async fn the_watcher_reloads_a_changed_file_and_keeps_the_last_good_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authz.rego");
        std::fs::write(&path, GET_ONLY).unwrap();
        let policies = Arc::new(Policies::load(path.clone(), Options::default()));
        Arc::clone(&policies)
            .watch(Duration::from_millis(20))
            .unwrap();
        let wait_for = |method: &'static str| {
            let policies = Arc::clone(&policies);
            async move {
                for _ in 0..500 {
                    if verdict(&policies, method) == Verdict::Allow {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                panic!("the policy allowing {method} never came into force");
            }
        };
        std::fs::write(&path, POST_ONLY).unwrap();
        wait_for("POST").await;
        std::fs::write(&path, BROKEN).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(verdict(&policies, "POST"), Verdict::Allow);
        std::fs::write(&path, GET_ONLY).unwrap();
        wait_for("GET").await;
    }
}
