//! Compile-error tests of docker-plugin-sdk's macros, `#[derive(DriverOptions)]` and
//! `#[docker_plugin_sdk::main]` (the tests are in `tests/`).
//!
//! They live in this workspace member rather than in the SDK's own tests because
//! trybuild builds a crate of its own, in a target directory of its own, from every
//! dependency and dev-dependency of the package under test, with the features its test
//! binary was built with: as an SDK test under `cargo test --all-features` that meant
//! the whole SDK (TLS, packager, CLI) and its dev-dependencies (rcgen, ring, …), built
//! from scratch for a dozen small programs. Here it is the SDK with `macros` only. This
//! crate has no code of its own.
