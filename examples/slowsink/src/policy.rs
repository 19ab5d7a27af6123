//! The SDK's log-buffering settings as slowsink's flags: how big each container's
//! buffer is, what happens when it is full (`--overflow drop-oldest|drop-newest|spill`)
//! and how long StopLogging waits for a slow receiver.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use docker_plugin_sdk::args::{ArgsError, Flags};
use docker_plugin_sdk::logging::{LogCounters, Options, Overflow};

/// `--overflow`'s values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// `drop-oldest`.
    DropOldest,
    /// `drop-newest`.
    DropNewest,
    /// `spill`: to `--spill-dir`, up to `--spill-max` bytes.
    Spill,
}

impl FromStr for Policy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "drop-oldest" => Ok(Self::DropOldest),
            "drop-newest" => Ok(Self::DropNewest),
            "spill" => Ok(Self::Spill),
            other => Err(format!(
                "`{other}` is not a policy: use drop-oldest, drop-newest or spill"
            )),
        }
    }
}

/// The buffering flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyArgs {
    /// `--overflow`.
    pub policy: Policy,
    /// `--buffer BYTES`: each container's buffer.
    pub buffer: usize,
    /// `--spill-dir DIR`.
    pub spill_dir: PathBuf,
    /// `--spill-max BYTES`.
    pub spill_max: u64,
    /// `--flush-timeout SECONDS`.
    pub flush_timeout: Duration,
}

impl Default for PolicyArgs {
    fn default() -> Self {
        Self {
            policy: Policy::DropOldest,
            buffer: 1 << 20,
            spill_dir: PathBuf::from("/var/lib/slowsink/spill"),
            spill_max: 1 << 30,
            flush_timeout: Duration::from_secs(2),
        }
    }
}

impl PolicyArgs {
    /// The flags' help lines.
    pub const HELP: &str = "  \
        --overflow POLICY     when a container's buffer is full: drop-oldest (default),\n                        \
        drop-newest or spill\n  \
        --buffer BYTES        each container's buffer (default 1048576)\n  \
        --spill-dir DIR       where spill files go (default /var/lib/slowsink/spill)\n  \
        --spill-max BYTES     the most a container spills (default 1073741824)\n  \
        --flush-timeout SECS  how long StopLogging waits for the receiver (default 2)\n";

    /// Reads `flag` if it is one of these; `Ok(false)` if not.
    pub fn parse_flag(&mut self, flag: &str, flags: &mut Flags) -> Result<bool, ArgsError> {
        match flag {
            "--overflow" => {
                self.policy = flags.parse("drop-oldest, drop-newest or spill")?;
            }
            "--buffer" => self.buffer = flags.parse("a number of bytes")?,
            "--spill-dir" => self.spill_dir = flags.value()?.into(),
            "--spill-max" => self.spill_max = flags.parse("a number of bytes")?,
            "--flush-timeout" => {
                self.flush_timeout = Duration::from_secs(flags.parse("a number of seconds")?);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The SDK's options, counting into `counters`.
    pub fn options(&self, counters: &LogCounters) -> Options {
        let overflow = match self.policy {
            Policy::DropOldest => Overflow::DropOldest,
            Policy::DropNewest => Overflow::DropNewest,
            Policy::Spill => Overflow::Spill {
                dir: self.spill_dir.clone(),
                max_bytes: self.spill_max,
            },
        };
        Options::new()
            .buffer(self.buffer)
            .overflow(overflow)
            .flush_timeout(self.flush_timeout)
            .counters(counters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_read_by_name_and_a_wrong_one_says_which_exist() {
        assert_eq!("drop-newest".parse(), Ok(Policy::DropNewest));
        assert_eq!("spill".parse(), Ok(Policy::Spill));
        assert_eq!(
            "drop".parse::<Policy>().unwrap_err(),
            "`drop` is not a policy: use drop-oldest, drop-newest or spill"
        );
    }
}
