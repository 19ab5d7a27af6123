//! The `LogDriver` types. Go's are moby v20.10.24 `daemon/logger/plugin.go` and
//! `daemon/logger/loginfo.go` (requests), `daemon/logger/adapter.go` (`Cap`), and
//! `api/types/plugins/logdriver/entry.pb.go` for `LogEntry`, which travels as a
//! length-prefixed protobuf frame: those frames go through `FrameDecoder` whole,
//! back to back, and split at every byte boundary.

use docker_plugin_sdk::logging::{
    CapabilitiesResponse, Capability, FrameDecoder, Info, LogEntry, PartialLogEntryMetadata,
    ReadConfig, ReadLogsRequest, StartLoggingRequest, StopLoggingRequest, encode_frame,
};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::Wire;
use super::strategies::{base64, bytes, object, sorted_map, strings, text, timestamp};

fn info() -> impl Strategy<Value = (Info, String)> {
    (
        (
            sorted_map(),
            prop_oneof![text(), "[0-9a-f]{64}"],
            text(),
            text(),
        ),
        (strings(), text(), text(), timestamp()),
        (strings(), sorted_map(), text(), text()),
    )
        .prop_map(
            |(
                (config, container_id, container_name, container_entrypoint),
                (container_args, container_image_id, container_image_name, (created, text)),
                (container_env, container_labels, log_path, daemon_name),
            )| {
                let info = Info {
                    config,
                    container_id,
                    container_name,
                    container_entrypoint,
                    container_args,
                    container_image_id,
                    container_image_name,
                    container_created: created,
                    container_env,
                    container_labels,
                    log_path,
                    daemon_name,
                };
                (info, text)
            },
        )
}

/// `logger.Info` as dockerd encodes it: every field, nil slices as `null` (dockerd
/// always makes the two maps).
fn go_info(info: &Info) -> Value {
    let list = |items: &Vec<String>| {
        if items.is_empty() {
            Value::Null
        } else {
            json!(items)
        }
    };
    json!({
        "Config": object(&info.config),
        "ContainerID": info.container_id,
        "ContainerName": info.container_name,
        "ContainerEntrypoint": info.container_entrypoint,
        "ContainerArgs": list(&info.container_args),
        "ContainerImageID": info.container_image_id,
        "ContainerImageName": info.container_image_name,
        "ContainerCreated": info.container_created.to_string(),
        "ContainerEnv": list(&info.container_env),
        "ContainerLabels": object(&info.container_labels),
        "LogPath": info.log_path,
        "DaemonName": info.daemon_name,
    })
}

impl Wire for StartLoggingRequest {
    fn strategy() -> BoxedStrategy<Self> {
        (
            prop_oneof![text(), "/run/docker/logging/[0-9a-f]{64}"],
            info(),
        )
            .prop_map(|(file, (info, _))| StartLoggingRequest { file, info })
            .boxed()
    }
    fn go(&self) -> Value {
        json!({"File": self.file, "Info": go_info(&self.info)})
    }
}

impl Wire for StopLoggingRequest {
    fn strategy() -> BoxedStrategy<Self> {
        text().prop_map(|file| StopLoggingRequest { file }).boxed()
    }
    fn go(&self) -> Value {
        json!({"File": self.file})
    }
}

impl Wire for CapabilitiesResponse {
    fn strategy() -> BoxedStrategy<Self> {
        any::<bool>()
            .prop_map(|read_logs| CapabilitiesResponse {
                cap: Capability { read_logs },
            })
            .boxed()
    }
    fn go(&self) -> Value {
        json!({"Cap": {"ReadLogs": self.cap.read_logs}})
    }
}

impl Wire for ReadLogsRequest {
    fn strategy() -> BoxedStrategy<Self> {
        (
            info(),
            timestamp(),
            timestamp(),
            prop_oneof![Just(-1i64), 0i64..1000, any::<i64>()],
            any::<bool>(),
        )
            .prop_map(
                |((info, _), (since, _), (until, _), tail, follow)| ReadLogsRequest {
                    info,
                    config: ReadConfig {
                        since,
                        until,
                        tail,
                        follow,
                    },
                },
            )
            .boxed()
    }
    fn go(&self) -> Value {
        json!({
            "Info": go_info(&self.info),
            "Config": {
                "Since": self.config.since.to_string(),
                "Until": self.config.until.to_string(),
                "Tail": self.config.tail,
                "Follow": self.config.follow,
            },
        })
    }
}

fn entry() -> impl Strategy<Value = LogEntry> {
    (
        prop_oneof![Just("stdout".to_owned()), Just("stderr".to_owned()), text()],
        prop_oneof![Just(0i64), any::<i64>()],
        bytes(),
        any::<bool>(),
        prop::option::of(
            (
                any::<bool>(),
                prop_oneof![text(), "[0-9a-f]{64}"],
                any::<i32>(),
            )
                .prop_map(|(last, id, ordinal)| PartialLogEntryMetadata {
                    last,
                    id,
                    ordinal,
                }),
        ),
    )
        .prop_map(
            |(source, time_nano, line, partial, partial_log_metadata)| LogEntry {
                source,
                time_nano,
                line,
                partial,
                partial_log_metadata,
            },
        )
}

impl Wire for LogEntry {
    fn strategy() -> BoxedStrategy<Self> {
        entry().boxed()
    }
    /// entry.pb.go's struct through `encoding/json`: snake-case, `omitempty`.
    fn go(&self) -> Value {
        let mut go = json!({});
        if !self.source.is_empty() {
            go["source"] = json!(self.source);
        }
        if self.time_nano != 0 {
            go["time_nano"] = json!(self.time_nano);
        }
        if !self.line.is_empty() {
            go["line"] = base64(&self.line);
        }
        if self.partial {
            go["partial"] = json!(true);
        }
        if let Some(meta) = &self.partial_log_metadata {
            let mut m = json!({});
            if meta.last {
                m["last"] = json!(true);
            }
            if !meta.id.is_empty() {
                m["id"] = json!(meta.id);
            }
            if meta.ordinal != 0 {
                m["ordinal"] = json!(meta.ordinal);
            }
            go["partial_log_metadata"] = m;
        }
        go
    }
}

/// Every entry the decoder yields from `bytes` fed in pieces cut at `cuts`.
fn decode_in_pieces(bytes: &[u8], cuts: &[usize]) -> Vec<LogEntry> {
    let mut decoder = FrameDecoder::new();
    let mut entries = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&bytes.len())) {
        decoder.extend(&bytes[start..end]);
        start = end;
        while let Some(entry) = decoder.decode().expect("a valid frame") {
            entries.push(entry);
        }
    }
    decoder.finish().expect("nothing left over");
    entries
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// One frame, cut once at every byte boundary: the decoder waits for the rest and
    /// yields the entry once.
    #[test]
    fn a_frame_split_at_every_byte_decodes_once(entry in entry()) {
        let frame = encode_frame(&entry);
        for cut in 0..=frame.len() {
            let entries = decode_in_pieces(&frame, &[cut]);
            prop_assert_eq!(&entries, &vec![entry.clone()], "cut at {}", cut);
        }
        // And fed one byte at a time.
        let every: Vec<usize> = (1..frame.len()).collect();
        prop_assert_eq!(decode_in_pieces(&frame, &every), vec![entry]);
    }

    /// Frames back to back, cut anywhere, come out all and in order.
    #[test]
    fn a_stream_of_frames_cut_anywhere_decodes_in_order(
        entries in prop::collection::vec(entry(), 0..6),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let stream: Vec<u8> = entries.iter().flat_map(|e| encode_frame(e).to_vec()).collect();
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        cuts.sort_unstable();
        prop_assert_eq!(decode_in_pieces(&stream, &cuts), entries);
    }
}
