//! The call log: every call the engine made to a plugin, in order, with what was sent
//! and answered, so a test asserts on the exact sequence dockerd would produce.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

/// One call to a plugin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallRecord {
    /// The plugin name.
    pub plugin: String,
    /// The method, e.g. `VolumeDriver.Mount`.
    pub method: String,
    /// The request body as sent (`null` for an empty body).
    pub request: Value,
    /// The HTTP status, or `None` when no answer came (transport error).
    pub status: Option<u16>,
    /// The reply body (JSON when it parsed, else a string), `null` without an answer.
    pub response: Value,
    /// The transport error, when the attempt got no answer.
    pub error: Option<String>,
    /// How long the attempt took.
    #[serde(skip)]
    pub duration: Duration,
}

/// A shared, append-only log of [`CallRecord`]s.
#[derive(Debug, Clone, Default)]
pub struct CallLog {
    records: Arc<Mutex<Vec<CallRecord>>>,
}

impl CallLog {
    pub(crate) fn push(&self, record: CallRecord) {
        self.lock().push(record);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<CallRecord>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every call so far.
    pub fn records(&self) -> Vec<CallRecord> {
        self.lock().clone()
    }

    /// The methods called so far, in order (`["Plugin.Activate", "VolumeDriver.Get", …]`).
    pub fn methods(&self) -> Vec<String> {
        self.lock().iter().map(|r| r.method.clone()).collect()
    }

    /// Takes the calls so far, leaving the log empty: handy to assert one action at a
    /// time.
    pub fn take(&self) -> Vec<CallRecord> {
        std::mem::take(&mut *self.lock())
    }

    /// Takes the methods called so far (see [`CallLog::take`]).
    pub fn take_methods(&self) -> Vec<String> {
        self.take().into_iter().map(|r| r.method).collect()
    }
}
