//! The log frame decoder (what dockerd writes into a log driver's FIFO: a 4-byte
//! big-endian length, then a protobuf `LogEntry`), fed in two chunks as a FIFO read
//! may split it: never a panic, what it decodes encodes to a frame that decodes to
//! the same entry, and the reassembly of split lines never panics either.
#![no_main]

use docker_plugin_sdk::logging::{FrameDecoder, Reassembler, encode_frame};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let split = data
        .first()
        .map_or(0, |b| usize::from(*b) % (data.len() + 1));
    let (head, tail) = data.split_at(split);
    let mut decoder = FrameDecoder::new();
    let mut lines = Reassembler::new(64 * 1024);
    decoder.extend(head);
    let mut tail = Some(tail);
    loop {
        match decoder.decode() {
            Ok(Some(entry)) => {
                let mut again = FrameDecoder::new();
                again.extend(&encode_frame(&entry));
                match again.decode() {
                    Ok(Some(decoded)) => assert_eq!(decoded, entry),
                    other => panic!("an encoded frame does not decode: {other:?}"),
                }
                let _ = lines.push(entry);
            }
            Ok(None) => match tail.take() {
                Some(rest) => decoder.extend(rest),
                None => break,
            },
            Err(_) => break,
        }
    }
    let _ = decoder.finish();
    let _ = lines.finish();
});
