//! Replaying a recorded logging action (`logging_*` fixtures: a legacy recorder with
//! `--logging`) through the harness's logging service: `docker run --log-driver` is
//! `engine.logging().start`, the container's output (the fixture's script, known
//! here: [`output`]) written as dockerd's copier writes it, then `stop`; `docker logs`
//! is a running container's `read` or a stopped one's `engine.logging().read`. Per
//! command, the recorder must receive the calls dockerd made (method and body, byte
//! for byte, IDs and the creation time masked, with dockerd's headers), and `docker
//! logs` must print what the CLI printed.

use std::collections::HashMap;

use docker_plugin_sdk::harness::{ContainerLog, LogContainer};
use docker_plugin_sdk::logging::ReadConfig;
use serde_json::Value;

use super::replay::Replay;
use super::{header_problem, masked_text};

/// Whether the fixture's plugin is a log driver.
pub fn is_logging(fixture: &Value) -> bool {
    fixture["plugins"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|p| p["logging"] == true)
}

/// What the fixtures' scripts print, in the pieces the replay writes: the first piece
/// at the start, the rest when the container exits (the recorded `sleep`).
fn output(script: &str) -> (String, String) {
    if script.contains("head -c 20000") {
        let long = "x".repeat(20_000);
        (format!("line-one\nline-two\n{long}\n"), String::new())
    } else if script == "echo one; sleep 3; echo two" {
        ("one\n".into(), "two\n".into())
    } else {
        panic!("the replay does not know what {script:?} prints")
    }
}

/// A body as compared: IDs masked, and the container's creation time (each run's
/// own) as `<time>`.
fn masked_body(body: &str) -> String {
    let mut text = masked_text(body);
    const KEY: &str = "\"ContainerCreated\":\"";
    if let Some(at) = text.find(KEY)
        && let Some(len) = text[at + KEY.len()..].find('"')
    {
        text.replace_range(at + KEY.len()..at + KEY.len() + len, "<time>");
    }
    text
}

/// The words of a recorded command: `docker run … sh -c 'SCRIPT'` keeps its script
/// whole (the recorder quoted it for a shell).
fn words(command: &str) -> (Vec<String>, Option<String>) {
    match command.split_once(" -c '") {
        Some((head, script)) => {
            let script = script.strip_suffix('\'').unwrap().replace("'\\''", "'");
            (head.split(' ').map(str::to_owned).collect(), Some(script))
        }
        None => (command.split(' ').map(str::to_owned).collect(), None),
    }
}

/// A container of the fixture: its Info as dockerd built it, its driver, its logger
/// while it runs, what it prints when it exits.
struct Replayed {
    container: LogContainer,
    driver: String,
    running: Option<ContainerLog>,
    rest: String,
}

pub async fn replay_logging_fixture(fixture: &Value) -> Vec<String> {
    let mut replay = Replay::new(fixture.clone());
    let engine = replay.engine.clone();
    let mut containers: HashMap<String, Replayed> = HashMap::new();
    let mut problems = Vec::new();
    for (i, command) in fixture["commands"].as_array().unwrap().iter().enumerate() {
        let command = command.as_str().unwrap();
        let result = &fixture["results"][i];
        // The recorder left one quiet second after each command: the driver has
        // consumed what the container printed before the next one.
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let (words, script) = words(command);
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let mut stdout = None;
        match &words[..] {
            ["docker", "run", flags @ .., "busybox", "sh"] => {
                let flag = |name: &str| {
                    flags
                        .iter()
                        .position(|f| *f == name)
                        .map(|at| flags[at + 1])
                };
                let (name, driver) = (flag("--name").unwrap(), flag("--log-driver").unwrap());
                let script = script.unwrap();
                let mut container = LogContainer::new(name, "busybox");
                // What dockerd puts in Info: the command, the image's environment.
                container.info.container_args = vec!["-c".into(), script.clone()];
                container.info.container_env = vec!["PATH=/bin".into()];
                let (first, rest) = output(&script);
                let mut running = engine.logging().start(driver, &container).await.unwrap();
                running.write("stdout", first.as_bytes()).await.unwrap();
                let mut replayed = Replayed {
                    container,
                    driver: driver.to_owned(),
                    running: Some(running),
                    rest,
                };
                if !flags.contains(&"-d") {
                    exit(&mut replayed).await;
                }
                containers.insert(name.to_owned(), replayed);
            }
            ["docker", "logs", flags @ .., name] => {
                let replayed = containers.get_mut(*name).unwrap();
                let mut config = ReadConfig::default();
                let mut it = flags.iter();
                while let Some(flag) = it.next() {
                    match *flag {
                        "--tail" => config.tail = it.next().unwrap().parse().unwrap(),
                        "--since" => config.since = it.next().unwrap().parse().unwrap(),
                        "-f" => config.follow = true,
                        other => panic!("the replay does not know docker logs {other}"),
                    }
                }
                let text = match &replayed.running {
                    Some(running) => {
                        let read = running.read(config);
                        if config.follow {
                            // The container prints the rest and exits while `docker
                            // logs -f` waits: StopLogging ends the stream.
                            let reading = tokio::spawn(async move {
                                read.await.unwrap().collect_text().await.unwrap()
                            });
                            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                            exit(replayed).await;
                            reading.await.unwrap()
                        } else {
                            read.await.unwrap().collect_text().await.unwrap()
                        }
                    }
                    None => {
                        let logs = engine.logging();
                        let reader = logs.read(&replayed.driver, &replayed.container, config);
                        reader.await.unwrap().collect_text().await.unwrap()
                    }
                };
                stdout = Some(text);
            }
            ["docker", "rm", name] => {
                containers.remove(*name);
            }
            _ => panic!("the replay does not know {command:?}"),
        }
        if let Some(text) = stdout {
            let want = result["stdout"].as_str().unwrap();
            if text.trim_end() != want.trim_end() {
                problems.push(format!(
                    "`{command}` printed {} bytes, dockerd {} ({:?}…)",
                    text.len(),
                    want.len(),
                    &text[..text.len().min(40)]
                ));
            }
        }
        let expected: Vec<String> = fixture["calls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["command"].as_u64() == Some(i as u64))
            .filter(|c| c["method"] != "Plugin.Activate")
            .map(|c| {
                let body = masked_body(c["request_body"].as_str().unwrap());
                format!("{} {} {body}", c["method"].as_str().unwrap(), c["status"])
            })
            .collect();
        let received = replay.received();
        // A legacy plugin's FIFOs: the host's /run/docker/logging for dockerd, the
        // engine's <root>/run/docker/logging standing for it in the harness.
        let host_dir = replay.root.path().display().to_string();
        let got: Vec<String> = received
            .iter()
            .map(|(_, c)| c)
            .filter(|c| c["method"] != "Plugin.Activate")
            .map(|c| {
                let body = c["request_body"].as_str().unwrap().replace(&host_dir, "");
                let body = masked_body(&body);
                format!("{} {} {body}", c["method"].as_str().unwrap(), c["status"])
            })
            .collect();
        if got != expected {
            problems.push(format!(
                "`{command}`:\n  dockerd: {expected:#?}\n  harness: {got:#?}"
            ));
        }
        for (_, c) in &received {
            if let Some(p) = header_problem(c, &fixture["request_headers"]) {
                problems.push(format!("`{command}`: {p}"));
            }
        }
    }
    problems
}

/// The container prints the rest of its output and exits: its logger stops.
async fn exit(replayed: &mut Replayed) {
    let mut running = replayed.running.take().unwrap();
    running
        .write("stdout", replayed.rest.as_bytes())
        .await
        .unwrap();
    running.stop().await.unwrap();
}
