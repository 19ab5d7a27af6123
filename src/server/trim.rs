//! Gives the memory a burst of connections used back to the system once they have all
//! closed. glibc's malloc keeps what is freed in its arenas unless it lies at the top
//! of a heap, and the buffers of hundreds of connections, freed in any order, mostly
//! do not: 10,000 calls over 256 connections left poolipam 3.2 MiB above its idle RSS
//! (7.9 MiB), free memory that `malloc_trim(0)` returns: 0.4 to 0.7 MiB above with it
//! (`tests/faults.rs`).
//! Trimming walks every arena and hands pages back (which the next allocations fault in
//! again), so it runs only after a burst: when the last connection closes and at least
//! [`BURST`] were open at once since the last trim, not after each call of a client
//! that opens a connection per call. And it runs [`DELAY`] later, off the call path
//! ([`trim_after_bursts`], polled by the server's own task), once however many bursts
//! ended meanwhile: 16 clients that each open a connection per call end a "burst" many
//! times a second, and trimming each time cost about a tenth of the server's CPU per
//! call (faulting the pages back in, and the TLB shootdowns of giving them back: 46.8 µs
//! per call, 41.5 µs with the delay, 35.9 µs for the bare hyper server of
//! `benches/serve/`, on a loaded machine).

use std::sync::Arc;
use std::time::Duration;

use super::drain::Drain;

/// How many connections open at once make a burst worth trimming after.
pub(super) const BURST: usize = 16;

/// How long after a burst's last connection closed the memory is trimmed.
pub(super) const DELAY: Duration = Duration::from_millis(200);

/// Trims [`DELAY`] after the end of a burst, at most once per [`DELAY`]: polled by the
/// server's task until the server drops it.
pub(super) async fn trim_after_bursts(drain: Arc<Drain>) {
    loop {
        drain.burst_ended().await;
        tokio::time::sleep(DELAY).await;
        release_free_memory();
    }
}

/// Returns the free memory of glibc's arenas to the system (a no-op elsewhere).
pub(super) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            // glibc's `int malloc_trim(size_t pad)` (malloc.h).
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: takes no pointer; glibc walks its own arenas under their locks.
        unsafe {
            malloc_trim(0);
        }
    }
}
