//! The opaauthz binary as dockerd meets it: on its socket, asked AuthZReq by the SDK's
//! client (which sends what dockerd sends), reloading its policy on SIGHUP and when
//! the file changes, keeping the previous one when the new one does not compile, and
//! writing its decision log; and `--check`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use docker_plugin_sdk::authz::{AuthZReq, AuthZRequest, AuthZResponse};
use docker_plugin_sdk::client::Client;
use docker_plugin_sdk::harness::PluginProcess;

const GET_ONLY: &str = "package docker.authz\n\nallow if input.Method == \"GET\"\n";
const POST_ONLY: &str = "package docker.authz\n\nallow if input.Method == \"POST\"\n";
const BROKEN: &str = "package docker.authz\n\nallow if {\n";

/// opaauthz on `dir/authz.rego`, its socket and decision log in `dir`.
struct Opaauthz {
    dir: PathBuf,
    process: PluginProcess,
    client: Client,
}

impl Opaauthz {
    fn start(dir: &Path, extra: &[&str]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_opaauthz"));
        command
            .args(["--name", "opaauthz-test", "--socket-dir"])
            .arg(dir)
            .arg("--policy-file")
            .arg(dir.join("authz.rego"))
            .arg("--decision-log")
            .arg(dir.join("decisions.log"))
            .args(extra);
        let socket = dir.join("opaauthz-test.sock");
        let process = PluginProcess::start(command, &socket, dir.join("opaauthz.log")).unwrap();
        Self {
            dir: dir.to_owned(),
            process,
            client: Client::unix(socket),
        }
    }

    async fn ask(&self, method: &str) -> AuthZResponse {
        let request = AuthZRequest {
            request_method: method.into(),
            request_uri: "/v1.41/volumes".into(),
            ..Default::default()
        };
        self.client.call::<AuthZReq>(&request).await.unwrap()
    }

    /// Waits until `method` is allowed (the reload happened).
    async fn until_allowed(&self, method: &str) {
        for _ in 0..500 {
            if self.ask(method).await.allow {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{method} never allowed; log:\n{}", self.process.log_text());
    }

    fn write_policy(&self, text: &str) {
        std::fs::write(self.dir.join("authz.rego"), text).unwrap();
    }

    fn hangup(&self) {
        let pid = self.process.pid().unwrap().to_string();
        let status = Command::new("kill").args(["-HUP", &pid]).status().unwrap();
        assert!(status.success());
    }

    /// Waits until the plugin's log has `text`.
    async fn until_logged(&self, text: &str) -> String {
        for _ in 0..500 {
            let log = self.process.log_text();
            if log.contains(text) {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("never logged {text:?}; log:\n{}", self.process.log_text());
    }
}

#[tokio::test]
async fn sighup_reloads_the_policy_and_a_broken_one_keeps_the_previous() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("authz.rego"), GET_ONLY).unwrap();
    // Polling too slowly to matter: only SIGHUP reloads here.
    let plugin = Opaauthz::start(dir.path(), &["--poll-interval", "3600000"]);
    assert!(plugin.ask("GET").await.allow);
    let denied = plugin.ask("POST").await;
    assert_eq!(
        (denied.allow, denied.msg.as_str()),
        (false, "request rejected by administrative policy")
    );

    plugin.write_policy(POST_ONLY);
    assert!(plugin.ask("GET").await.allow, "reloaded without SIGHUP");
    plugin.hangup();
    plugin.until_allowed("POST").await;
    assert!(!plugin.ask("GET").await.allow);

    plugin.write_policy(BROKEN);
    plugin.hangup();
    let log = plugin.until_logged("; keeping the previous policy").await;
    let policy = dir.path().join("authz.rego");
    assert!(
        log.contains(&format!("policy {} does not compile: ", policy.display())),
        "{log}"
    );
    assert!(plugin.ask("POST").await.allow);
}

#[tokio::test]
async fn a_changed_file_is_reloaded_without_a_signal() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("authz.rego"), GET_ONLY).unwrap();
    let plugin = Opaauthz::start(dir.path(), &["--poll-interval", "20"]);
    assert!(!plugin.ask("POST").await.allow);
    plugin.write_policy(POST_ONLY);
    plugin.until_allowed("POST").await;
    plugin.write_policy(BROKEN);
    plugin.until_logged("; keeping the previous policy").await;
    assert!(plugin.ask("POST").await.allow);
}

#[tokio::test]
async fn it_starts_without_a_policy_and_denies_until_one_compiles() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = Opaauthz::start(dir.path(), &["--poll-interval", "20"]);
    let activated = plugin.client.activate().await.unwrap();
    assert_eq!(activated.implements, ["authz"]);
    let denied = plugin.ask("GET").await;
    assert_eq!(
        denied.msg,
        format!(
            "request rejected by administrative policy: no policy in force: cannot read policy {}: No such file or directory (os error 2)",
            dir.path().join("authz.rego").display()
        )
    );
    plugin.write_policy(GET_ONLY);
    plugin.until_allowed("GET").await;
}

#[tokio::test]
async fn each_decision_is_one_json_line_of_the_decision_log() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("authz.rego"), GET_ONLY).unwrap();
    let plugin = Opaauthz::start(dir.path(), &[]);
    plugin.ask("GET").await;
    plugin.ask("DELETE").await;
    let path = dir.path().join("decisions.log");
    let mut lines = Vec::new();
    for _ in 0..500 {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        lines = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect();
        if lines.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let seen: Vec<_> = lines
        .iter()
        .map(|l| {
            (
                l["method"].as_str().unwrap(),
                l["path"].as_str().unwrap(),
                l["allow"].as_bool().unwrap(),
                l["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                "GET",
                "/v1.41/volumes",
                true,
                "data.docker.authz.allow is true"
            ),
            (
                "DELETE",
                "/v1.41/volumes",
                false,
                "data.docker.authz.allow is undefined"
            )
        ]
    );
}

#[test]
fn check_says_whether_the_policy_compiles() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("authz.rego");
    let check = || {
        Command::new(env!("CARGO_BIN_EXE_opaauthz"))
            .arg("--check")
            .arg("--policy-file")
            .arg(&policy)
            .output()
            .unwrap()
    };
    std::fs::write(&policy, GET_ONLY).unwrap();
    let out = check();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("policy {} compiles\n", policy.display())
    );
    std::fs::write(&policy, BROKEN).unwrap();
    let out = check();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "opaauthz: policy {} does not compile: --> {}:4:1",
            policy.display(),
            policy.display()
        )),
        "{stderr}"
    );
}
