//! The macros' compile errors: each bad use in `tests/ui/*.rs` must fail with the
//! readable message in the `.stderr` next to it (`TRYBUILD=overwrite` regenerates them;
//! review the diff). The uses that must compile and run, `tests/ui-pass/*.rs`, are test
//! programs of their own (Cargo.toml), so that trybuild only checks: no code generation
//! for the SDK and its dependencies in trybuild's own target directory.

#[test]
fn compile_errors_are_readable() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
