//! Property tests of docker-plugin-sdk's wire formats (the tests are in `tests/`).
//!
//! They live in this workspace member rather than in the SDK's own tests because a
//! dev-dependency of the SDK is built, with its features unified, into every example
//! the SDK's package builds: proptest's `std` feature turns on regex-syntax's Unicode
//! tables, which the log filter's regex engine then carries, and the stripped example
//! plugin `benches/serve.rs` sizes grew by half a megabyte. This crate has no code of
//! its own.
