//! The harness's secrets service against an in-process provider: what swarm's
//! dispatcher asks for each task (moby v20.10.24 `swarmkit/manager/dispatcher/
//! assignments.go`): every field of the task, once per task, `DoNotReuse` honoured
//! (a per-task value is the task's own, a reusable one is replaced on the node by
//! the next task's), an error or a refused size leaves the secret out with the
//! worker's words, and the call log holds no value.

use std::sync::{Arc, Mutex};

use docker_plugin_sdk::harness::{Engine, SecretTask};
use docker_plugin_sdk::secrets::{self, GetSecretRequest, GetSecretResponse};
use docker_plugin_sdk::transport::UnixSocket;
use docker_plugin_sdk::{CancellationToken, Error, Plugin, Result, async_trait};

/// Counts the calls per secret; the value of `counter` is the call's number.
#[derive(Default)]
struct Provider {
    requests: Mutex<Vec<GetSecretRequest>>,
}

struct Shared(Arc<Provider>);

#[async_trait]
impl secrets::Provider for Shared {
    async fn get_secret(&self, req: GetSecretRequest) -> Result<GetSecretResponse> {
        let mut requests = self.0.requests.lock().unwrap();
        requests.push(req.clone());
        let n = requests.len();
        match req.secret_name.as_str() {
            "shared" => Ok(GetSecretResponse::new(format!("shared-{n}"))),
            "own" => Ok(GetSecretResponse::new(format!("own-{}", req.task_id)).do_not_reuse()),
            "empty" => Ok(GetSecretResponse::new("")),
            _ => Err(Error::new("vault sealed")),
        }
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    engine: Engine,
    provider: Arc<Provider>,
    stop: CancellationToken,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::for_tests(dir.path());
    let sockets = engine.discovery().socket_dir.clone();
    std::fs::create_dir_all(&sockets).unwrap();
    let provider = Arc::new(Provider::default());
    let listener = UnixSocket::new("vault").dir(&sockets).bind().unwrap();
    let stop = CancellationToken::new();
    let server = Plugin::new()
        .secrets(Shared(Arc::clone(&provider)))
        .server(listener)
        .shutdown_on(stop.clone());
    tokio::spawn(server.run());
    for name in ["shared", "own", "empty", "sealed"] {
        engine
            .secrets()
            .create(name, "vault", [("env", "test")])
            .await
            .unwrap();
    }
    Setup {
        _dir: dir,
        engine,
        provider,
        stop,
    }
}

fn asked(p: &Provider) -> Vec<(String, String)> {
    p.requests
        .lock()
        .unwrap()
        .iter()
        .map(|r| (r.secret_name.clone(), r.task_id.clone()))
        .collect()
}

#[tokio::test]
async fn secret_create_only_looks_the_provider_up() {
    let s = setup().await;
    assert!(asked(&s.provider).is_empty());
    assert_eq!(s.engine.calls().take_methods(), ["Plugin.Activate"]);
    let err = s
        .engine
        .secrets()
        .create("x", "nosuch", [("a", "b")])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nosuch"), "{err}");
    s.stop.cancel();
}

#[tokio::test]
async fn each_task_is_asked_once_with_its_fields_and_do_not_reuse_is_honoured() {
    let s = setup().await;
    let secrets = s.engine.secrets();
    let t1 = SecretTask::new("web", "busybox:test")
        .secret("shared")
        .secret("own");
    let a1 = secrets.assign(&t1).await;
    // Assigned again in the same session: not asked again.
    let again = secrets.assign(&t1).await;
    let t2 = t1.next(2);
    let a2 = secrets.assign(&t2).await;
    assert_eq!(
        asked(&s.provider),
        [
            ("shared".into(), t1.id.clone()),
            ("own".into(), t1.id.clone()),
            ("shared".into(), t2.id.clone()),
            ("own".into(), t2.id.clone()),
        ]
    );
    // The request carries the task's every field.
    let first = s.provider.requests.lock().unwrap()[0].clone();
    assert_eq!(first.task_name, format!("web.1.{}", t1.id));
    assert_eq!(first.service_id, t1.service_id);
    assert_eq!(first.task_image, "busybox:test");
    assert_eq!(first.node_id, secrets.node_id());
    assert_eq!(first.secret_labels["env"], "test");
    // A per-task value is the task's own; a reusable one is replaced on the node by
    // the next task's (what a container started now would read).
    assert_eq!(
        a1.read("own").unwrap().expose(),
        format!("own-{}", t1.id).as_bytes()
    );
    assert_eq!(
        a2.read("own").unwrap().expose(),
        format!("own-{}", t2.id).as_bytes()
    );
    assert_eq!(a1.read("shared").unwrap().expose(), b"shared-1");
    assert_eq!(again.read("shared").unwrap().expose(), b"shared-1");
    assert_eq!(a2.read("shared").unwrap().expose(), b"shared-3");
    // A new session asks for every task again.
    secrets.new_session();
    secrets.assign(&t1).await;
    assert_eq!(asked(&s.provider).len(), 6);
    s.stop.cancel();
}

#[tokio::test]
async fn a_failure_leaves_the_secret_out_with_the_workers_words_and_no_value_is_logged() {
    let s = setup().await;
    let secrets = s.engine.secrets();
    let task = SecretTask::new("db", "busybox:test")
        .secret("sealed")
        .secret("empty")
        .secret("own");
    let assigned = secrets.assign(&task).await;
    for name in ["sealed", "empty"] {
        let err = assigned.read(name).unwrap_err().to_string();
        assert!(
            err.starts_with("unable to get secret from secret store: secret ")
                && err.ends_with(" not found"),
            "{err}"
        );
    }
    assert!(assigned.read("own").is_ok());
    let err = assigned.read("undeclared").unwrap_err();
    assert_eq!(
        err.to_string(),
        "task not authorized to access secret undeclared"
    );
    // The call log keeps the requests and statuses, never a value.
    let calls = s.engine.calls().records();
    let own = calls
        .iter()
        .find(|c| c.request["SecretName"] == "own")
        .unwrap();
    assert_eq!(
        (own.status, own.response.clone()),
        (Some(200), "<redacted>".into())
    );
    let text = serde_json::to_string(&calls).unwrap();
    assert!(!text.contains(&format!("own-{}", task.id)), "{text}");
    // Released: the task's own value leaves the node; asked again on a new assignment.
    secrets.release(&task);
    secrets.assign(&task).await;
    assert_eq!(
        asked(&s.provider)
            .iter()
            .filter(|(name, _)| name == "own")
            .count(),
        2
    );
    s.stop.cancel();
}
