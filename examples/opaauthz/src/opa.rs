//! The authorization plugin: each AuthZReq becomes opa-docker-authz's input document,
//! the policy in force decides, the decision is logged. Replies (AuthZRes) are allowed,
//! as opa-docker-authz allows them.
//!
//! What the client reads on a deny (`authorization denied by plugin NAME: <msg>`):
//! opa-docker-authz's "request rejected by administrative policy" when the policy says
//! no; the same followed by the reason when it could not decide (no policy compiled
//! yet, a failed evaluation, a body that is not a JSON object). opa-docker-authz
//! answers those with an `Err` in a 200, which dockerd ignores (a deny with an empty
//! message): here the user learns why. `--skip-ping` (the default, as opa-docker-authz's
//! `-skip-ping`) allows `HEAD /_ping` without asking the policy, so that the CLI's
//! version negotiation works whatever the policy; it is still logged.

use std::sync::Arc;

use docker_plugin_sdk::authz::{self, Decision, Request};
use docker_plugin_sdk::{Result, async_trait};

use crate::decisions::DecisionLog;
use crate::input;
use crate::policy::{REJECTED, Verdict};
use crate::reload::Policies;

/// The plugin: the policies, the decision log, and whether pings skip the policy.
pub struct OpaAuthz {
    policies: Arc<Policies>,
    log: DecisionLog,
    skip_ping: bool,
}

impl OpaAuthz {
    /// The plugin deciding with `policies`, logging to `log`.
    pub fn new(policies: Arc<Policies>, log: DecisionLog, skip_ping: bool) -> Self {
        Self {
            policies,
            log,
            skip_ping,
        }
    }

    /// The decision on `req`, and why.
    async fn decide(&self, req: &Request) -> (Decision, String) {
        // opa-docker-authz compares the method and the URI as sent.
        if self.skip_ping && req.method.as_str() == "HEAD" && req.uri == "/_ping" {
            return (
                Decision::allow(),
                "HEAD /_ping is not evaluated (--skip-ping)".into(),
            );
        }
        let policy = match self.policies.current() {
            Ok(policy) => policy,
            Err(why) => return refuse(&why),
        };
        let query = policy.query().to_owned();
        let owned = req.clone();
        // Building the input resolves bind mounts on disk; evaluating is CPU work:
        // neither belongs on the runtime's threads.
        let evaluated = tokio::task::spawn_blocking(move || {
            input::document(&owned).map(|doc| policy.evaluate(doc))
        })
        .await;
        match evaluated {
            Ok(Ok(Verdict::Allow)) => (Decision::allow(), format!("{query} is true")),
            Ok(Ok(Verdict::False)) => (Decision::deny(REJECTED), format!("{query} is false")),
            Ok(Ok(Verdict::Undefined)) => {
                (Decision::deny(REJECTED), format!("{query} is undefined"))
            }
            Ok(Ok(Verdict::Error(e))) => refuse(&format!("{query} failed: {e}")),
            Ok(Err(e)) => refuse(&e.to_string()),
            Err(e) => refuse(&format!("evaluating {query} failed: {e}")),
        }
    }
}

/// A deny when the policy could not decide: the reason is in the message.
fn refuse(why: &str) -> (Decision, String) {
    (Decision::deny(format!("{REJECTED}: {why}")), why.to_owned())
}

#[async_trait]
impl authz::Plugin for OpaAuthz {
    async fn authorize_request(&self, req: &Request) -> Result<Decision> {
        let (decision, reason) = self.decide(req).await;
        self.log.record(req, decision.allow, &reason).await;
        Ok(decision)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::decisions::Target;
    use crate::input::tests::request;
    use crate::policy::Options;

    const JSON: (&str, &str) = ("Content-Type", "application/json");

    /// The plugin on policy `rego` (skipping pings), logging to `dir/log`.
    async fn plugin(dir: &Path, rego: Option<&str>, skip_ping: bool) -> OpaAuthz {
        let path = dir.join("authz.rego");
        if let Some(rego) = rego {
            std::fs::write(&path, rego).unwrap();
        }
        let policies = Arc::new(Policies::load(path, Options::default()));
        let log = DecisionLog::start(&Target::File(dir.join("log")), false)
            .await
            .unwrap();
        OpaAuthz::new(policies, log, skip_ping)
    }

    async fn ask(plugin: &OpaAuthz, req: &Request) -> Decision {
        authz::Plugin::authorize_request(plugin, req).await.unwrap()
    }

    /// The log's lines, once there are `n`.
    async fn log_lines(dir: &Path, n: usize) -> Vec<serde_json::Value> {
        for _ in 0..500 {
            let text = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
            if text.lines().count() >= n {
                return text
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the decision log never had {n} lines");
    }

    const NO_PRIVILEGED: &str = "package docker.authz\n\ndefault allow := false\n\n\
        allow if not input.Body.HostConfig.Privileged\n";

    #[tokio::test]
    async fn the_policy_decides_and_each_decision_is_logged() {
        let dir = tempfile::tempdir().unwrap();
        let plugin = plugin(dir.path(), Some(NO_PRIVILEGED), true).await;
        let create = "/v1.41/containers/create";
        let privileged = r#"{"Image": "busybox", "HostConfig": {"Privileged": true}}"#;
        assert_eq!(
            ask(&plugin, &request("POST", create, &[JSON], privileged)).await,
            Decision::deny("request rejected by administrative policy")
        );
        let plain = r#"{"Image": "busybox", "HostConfig": {}}"#;
        assert_eq!(
            ask(&plugin, &request("POST", create, &[JSON], plain)).await,
            Decision::allow()
        );
        let lines = log_lines(dir.path(), 2).await;
        assert_eq!(
            (&lines[0]["allow"], &lines[0]["reason"]),
            (&false.into(), &"data.docker.authz.allow is false".into())
        );
        assert_eq!(
            (&lines[1]["allow"], &lines[1]["reason"], &lines[1]["path"]),
            (
                &true.into(),
                &"data.docker.authz.allow is true".into(),
                &create.into()
            )
        );
    }

    #[tokio::test]
    async fn pings_skip_the_policy_unless_told_otherwise_and_are_logged() {
        let dir = tempfile::tempdir().unwrap();
        let deny_all = "package docker.authz\n\ndefault allow := false\n";
        let skipping = plugin(dir.path(), Some(deny_all), true).await;
        let ping = request("HEAD", "/_ping", &[], "");
        assert_eq!(ask(&skipping, &ping).await, Decision::allow());
        // Only HEAD, only the unversioned path, as opa-docker-authz.
        for other in [
            request("GET", "/_ping", &[], ""),
            request("HEAD", "/v1.41/_ping", &[], ""),
        ] {
            assert!(!ask(&skipping, &other).await.allow, "{}", other.uri);
        }
        let lines = log_lines(dir.path(), 3).await;
        assert_eq!(
            (
                &lines[0]["method"],
                &lines[0]["path"],
                &lines[0]["allow"],
                &lines[0]["reason"]
            ),
            (
                &"HEAD".into(),
                &"/_ping".into(),
                &true.into(),
                &"HEAD /_ping is not evaluated (--skip-ping)".into()
            )
        );
        let evaluating = plugin(dir.path(), Some(deny_all), false).await;
        assert!(!ask(&evaluating, &ping).await.allow);
    }

    #[tokio::test]
    async fn without_a_compiled_policy_everything_is_denied_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let plugin = plugin(dir.path(), None, true).await;
        let decision = ask(&plugin, &request("GET", "/v1.41/info", &[], "")).await;
        assert_eq!(
            decision.msg,
            format!(
                "request rejected by administrative policy: no policy in force: cannot read policy {}/authz.rego: No such file or directory (os error 2)",
                dir.path().display()
            )
        );
        assert!(!decision.allow);
    }

    #[tokio::test]
    async fn a_failed_evaluation_or_a_bad_body_denies_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let plugin = plugin(
            dir.path(),
            Some("package docker.authz\n\nallow := 3\n"),
            true,
        )
        .await;
        let decision = ask(&plugin, &request("GET", "/v1.41/info", &[], "")).await;
        assert_eq!(
            decision,
            Decision::deny(
                "request rejected by administrative policy: data.docker.authz.allow failed: administrative policy decision invalid"
            )
        );
        let decision = ask(&plugin, &request("POST", "/v1.41/build", &[JSON], "[]")).await;
        assert_eq!(
            decision,
            Decision::deny(
                "request rejected by administrative policy: the request body is not a JSON object: invalid type: sequence, expected a map at line 1 column 0"
            )
        );
    }

    #[tokio::test]
    async fn replies_are_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let plugin = plugin(dir.path(), Some("package docker.authz\n"), true).await;
        let req = request("GET", "/v1.41/info", &[], "");
        let decision = authz::Plugin::authorize_response(&plugin, &req, &Default::default())
            .await
            .unwrap();
        assert_eq!(decision, Decision::allow());
    }
}
