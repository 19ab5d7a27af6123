//! State a plugin can trust (`docker_plugin_sdk::state`): a store that survives SIGKILL
//! at any moment, reports a damaged file by name without touching it, serializes its
//! writers; mount counts per ID that survive a restart and are reconciled at start.
//!
//! The crash test runs this same binary as the child that saves (`STATE_TEST_CHILD`
//! set), so it needs no helper binary: libtest-mimic's `main` picks the role.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use docker_plugin_sdk::state::{MountTable, StateError, Store, VolumeMounts};
use futures_util::FutureExt;
use libtest_mimic::{Arguments, Failed, Trial};
use serde::{Deserialize, Serialize};

/// Set in the child process: the state file it saves to, forever.
const CHILD_ENV: &str = "STATE_TEST_CHILD";

/// What the child saves: a counter and a payload derived from it, large enough
/// (about 200 KiB) that a kill often lands mid-write.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Record {
    n: u64,
    payload: Vec<String>,
}

fn payload(n: u64) -> Vec<String> {
    (0..4000).map(|i| format!("value {n} line {i}")).collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `test` on a fresh runtime, with a fresh directory.
fn in_dir<F>(test: impl FnOnce(PathBuf) -> F) -> Result<(), Failed>
where
    F: Future<Output = Result<(), Failed>>,
{
    let dir = tempfile::tempdir()?;
    runtime().block_on(test(dir.path().to_path_buf()))
}

/// The child: increments the record and saves it, as fast as it can, until killed.
fn child_saves_forever(path: PathBuf) {
    runtime().block_on(async {
        let store: Store<Record> = Store::open(path).await.unwrap();
        loop {
            store
                .update(|r| {
                    r.n += 1;
                    r.payload = payload(r.n);
                })
                .await
                .unwrap();
        }
    });
}

/// A small pseudo-random sequence (xorshift), seeded from the clock.
struct Jitter(u64);

impl Jitter {
    fn new() -> Self {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        Self(u64::from(nanos.subsec_nanos()) | 1)
    }

    fn millis(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

fn a_plugin_killed_at_random_moments_always_finds_an_intact_state() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("state/record.json");
    let tmp = dir.path().join("state/record.json.tmp");
    let mut jitter = Jitter::new();
    let (mut last, mut mid_save) = (0, 0);
    for round in 0..60 {
        let mut child = Command::new(std::env::current_exe()?)
            .env(CHILD_ENV, &path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()?;
        std::thread::sleep(Duration::from_millis(15 + jitter.millis(60)));
        // SIGKILL: no destructor, no flush, no unlock but the kernel's.
        child.kill()?;
        child.wait()?;
        if tmp.exists() {
            mid_save += 1;
        }
        let record = runtime().block_on(async {
            let store: Store<Record> = Store::open(&path).await?;
            Ok::<_, StateError>(store.get())
        });
        let record = record.map_err(|e| format!("round {round}: {e}"))?;
        // One of the values written: whole, and never older than one seen before.
        if record.payload != payload(record.n) && record.n != 0 {
            return Err(format!("round {round}: record {} is not as written", record.n).into());
        }
        if record.n < last {
            return Err(format!("round {round}: went back from {last} to {}", record.n).into());
        }
        last = record.n;
    }
    if last == 0 || mid_save == 0 {
        return Err(format!(
            "the child saved {last} times, and {mid_save} kills landed mid-save: \
             the test did not exercise a crash between write and rename"
        )
        .into());
    }
    Ok(())
}

async fn saved_state(path: &Path) -> Result<(), StateError> {
    let store: Store<BTreeMap<String, u32>> = Store::open(path).await?;
    store
        .update(|m| {
            m.insert("volume-one".into(), 1);
            m.insert("volume-two".into(), 2);
        })
        .await
}

/// Why a store of a map cannot open `path`.
async fn open_error(path: &Path) -> StateError {
    Store::<BTreeMap<String, u32>>::open(path)
        .await
        .unwrap_err()
}

/// What the user reads about a damaged state file.
fn unreadable(path: &Path, problem: &str) -> String {
    format!(
        "state file {} is unreadable ({problem}); it was left untouched: restore it from \
         a backup, or move it away to start from an empty state",
        path.display()
    )
}

fn a_truncated_state_file_is_reported_by_name_and_left_untouched() -> Result<(), Failed> {
    in_dir(|dir| async move {
        let path = dir.join("mounts.json");
        saved_state(&path).await?;
        assert_eq!(
            fs::read_to_string(&path)?,
            "{\n  \"volume-one\": 1,\n  \"volume-two\": 2\n}\n"
        );
        // Half the file, as a copy made by hand and cut short would leave it.
        let half = fs::read(&path)?[..20].to_vec();
        fs::write(&path, &half)?;
        let err = open_error(&path).await;
        assert_eq!(
            err.to_string(),
            unreadable(&path, "EOF while parsing a value at line 2 column 18")
        );
        assert!(matches!(err, StateError::Corrupt { .. }));
        assert_eq!(fs::read(&path)?, half, "never silently replaced");

        fs::write(&path, "")?;
        assert_eq!(
            open_error(&path).await.to_string(),
            unreadable(&path, "the file is empty")
        );
        // The wrong shape is as unreadable as a cut file.
        fs::write(&path, "[1, 2]")?;
        assert_eq!(
            open_error(&path).await.to_string(),
            unreadable(
                &path,
                "invalid type: sequence, expected a map at line 1 column 0"
            )
        );
        Ok(())
    })
}

fn a_second_store_on_the_same_file_is_refused() -> Result<(), Failed> {
    in_dir(|dir| async move {
        let path = dir.join("s.json");
        let first: Store<u32> = Store::open(&path).await?;
        let err = Store::<u32>::open(&path).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "state file {} is in use by another process (its lock {}.lock is held): stop \
                 the other instance of this plugin, or give this one its own state directory",
                path.display(),
                path.display()
            )
        );
        drop(first);
        let again: Store<u32> = Store::open(&path).await?;
        assert_eq!(again.get(), 0, "no file yet: the default");
        Ok(())
    })
}

fn concurrent_writers_are_serialized() -> Result<(), Failed> {
    in_dir(|dir| async move {
        let path = dir.join("count.json");
        let store: Store<u64> = Store::open(&path).await?;
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.update(|n| *n += 1).await })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        assert_eq!(store.get(), 64);
        assert_eq!(fs::read_to_string(&path)?, "64\n");
        Ok(())
    })
}

fn an_update_whose_caller_stops_waiting_still_lands_in_memory_and_on_disk() -> Result<(), Failed> {
    in_dir(|dir| async move {
        let path = dir.join("text.json");
        let store: Store<String> = Store::open(&path).await?;
        // 4 MB to write: the save is still running when the first poll returns.
        let big = "x".repeat(4 << 20);
        // Polled once (the save starts on the blocking pool), then dropped, as hyper
        // drops a handler whose client went away.
        let dropped = store.update(|s| *s = big).now_or_never();
        assert!(dropped.is_none(), "the save takes longer than one poll");
        // The next update waits for that save, then applies on top of it.
        store.update(|s| s.push('!')).await?;
        assert_eq!(store.get().len(), (4 << 20) + 1);
        let on_disk: String = serde_json::from_slice(&fs::read(&path)?)?;
        assert!(on_disk.ends_with("x!") && on_disk.len() == (4 << 20) + 1);
        Ok(())
    })
}

fn a_failed_save_changes_nothing() -> Result<(), Failed> {
    in_dir(|dir| async move {
        let path = dir.join("m.json");
        // JSON objects have string keys: a map keyed by lists cannot be saved.
        let store: Store<HashMap<Vec<u8>, u8>> = Store::open(&path).await?;
        let err = store.update(|m| m.insert(vec![1], 1)).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "encoding the state for {}: key must be a string",
                path.display()
            )
        );
        assert!(store.get().is_empty(), "memory unchanged");
        assert!(!path.exists(), "nothing written");
        Ok(())
    })
}

fn mounts_are_counted_per_id_and_released_only_at_zero() -> Result<(), Failed> {
    in_dir(|dir| async move {
        let path = dir.join(".mounts.json");
        let table = MountTable::open(&path).await?;
        {
            // A container starts (c1), `docker cp` into it (c1 again), a second
            // container starts (c2).
            let mut v1 = table.lock("v1").await;
            assert!(!v1.is_mounted());
            assert_eq!(v1.add("c1").await?, 1);
            assert_eq!(v1.add("c1").await?, 2);
            assert_eq!(v1.add("c2").await?, 3);
            assert_eq!((v1.count("c1"), v1.count("c2"), v1.users()), (2, 1, 3));
            assert!(!v1.is_last("c1")?);
        }
        assert_eq!(table.users("v1"), 3);
        drop(table);

        // The plugin restarts: the counts are still there.
        let table = MountTable::open(&path).await?;
        assert_eq!(
            table.volumes(),
            [VolumeMounts {
                volume: "v1".into(),
                ids: BTreeMap::from([("c1".into(), 2), ("c2".into(), 1)]),
            }]
        );
        let mut v1 = table.lock("v1").await;
        assert_eq!(v1.release("c1").await?, 2);
        assert_eq!(v1.release("c2").await?, 1);
        assert!(v1.is_last("c1")?, "c1's last mount is the volume's last");
        assert_eq!(
            v1.is_last("c2").unwrap_err().to_string(),
            "volume v1 is not mounted with ID c2"
        );
        assert_eq!(
            v1.release("c2").await.unwrap_err().to_string(),
            "volume v1 is not mounted with ID c2"
        );
        assert_eq!(v1.release("c1").await?, 0);
        assert!(!v1.is_mounted());
        drop(v1);
        assert!(table.volumes().is_empty());
        assert_eq!(fs::read_to_string(&path)?, "{}\n");
        Ok(())
    })
}

fn one_volume_is_locked_at_a_time_others_go_on() -> Result<(), Failed> {
    in_dir(|dir| async move {
        let table = std::sync::Arc::new(MountTable::open(dir.join("m.json")).await?);
        let held = table.lock("slow").await;
        // Another volume is not held back by the slow one.
        tokio::time::timeout(Duration::from_secs(1), table.lock("other"))
            .await
            .map_err(|_| "a lock on another volume waited")?;
        let waiter = {
            let table = std::sync::Arc::clone(&table);
            tokio::spawn(async move {
                let mut slow = table.lock("slow").await;
                slow.add("c2").await.map(|_| slow.users())
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "the same volume waits for the lock");
        let mut held = held;
        held.add("c1").await?;
        drop(held);
        assert_eq!(waiter.await??, 2, "it saw the first Mount's count");
        Ok(())
    })
}

fn reconcile_forgets_what_is_no_longer_mounted() -> Result<(), Failed> {
    in_dir(|dir| async move {
        let path = dir.join("m.json");
        let table = MountTable::open(&path).await?;
        for (volume, id) in [("kept", "c1"), ("gone", "c2"), ("gone", "c3")] {
            table.lock(volume).await.add(id).await?;
        }
        drop(table);

        let table = MountTable::open(&path).await?;
        let mut asked = Vec::new();
        let dropped = table
            .reconcile(async |v| {
                asked.push((v.volume.clone(), v.users()));
                v.volume == "kept"
            })
            .await?;
        assert_eq!(asked, [("gone".to_string(), 2), ("kept".to_string(), 1)]);
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].volume, "gone");
        assert_eq!(table.users("gone"), 0);
        drop(table);
        // Forgotten on disk too.
        let table = MountTable::open(&path).await?;
        assert_eq!(table.users("gone"), 0);
        assert_eq!(table.users("kept"), 1);
        Ok(())
    })
}

type Test = fn() -> Result<(), Failed>;

fn main() {
    if let Some(path) = std::env::var_os(CHILD_ENV) {
        child_saves_forever(path.into());
        return;
    }
    let args = Arguments::from_args();
    let tests: Vec<(&str, Test)> = vec![
        (
            "a_plugin_killed_at_random_moments_always_finds_an_intact_state",
            a_plugin_killed_at_random_moments_always_finds_an_intact_state,
        ),
        (
            "a_truncated_state_file_is_reported_by_name_and_left_untouched",
            a_truncated_state_file_is_reported_by_name_and_left_untouched,
        ),
        (
            "a_second_store_on_the_same_file_is_refused",
            a_second_store_on_the_same_file_is_refused,
        ),
        (
            "concurrent_writers_are_serialized",
            concurrent_writers_are_serialized,
        ),
        (
            "an_update_whose_caller_stops_waiting_still_lands_in_memory_and_on_disk",
            an_update_whose_caller_stops_waiting_still_lands_in_memory_and_on_disk,
        ),
        (
            "a_failed_save_changes_nothing",
            a_failed_save_changes_nothing,
        ),
        (
            "mounts_are_counted_per_id_and_released_only_at_zero",
            mounts_are_counted_per_id_and_released_only_at_zero,
        ),
        (
            "one_volume_is_locked_at_a_time_others_go_on",
            one_volume_is_locked_at_a_time_others_go_on,
        ),
        (
            "reconcile_forgets_what_is_no_longer_mounted",
            reconcile_forgets_what_is_no_longer_mounted,
        ),
    ];
    let trials = tests
        .into_iter()
        .map(|(name, test)| Trial::test(name, test))
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
