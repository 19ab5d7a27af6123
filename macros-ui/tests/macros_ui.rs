//! The macros' compile errors: each bad use in `tests/ui/*.rs` must fail with the
//! readable message in the `.stderr` next to it (`TRYBUILD=overwrite` regenerates them;
//! review the diff), and each use in `tests/ui-pass/*.rs` must compile and run.

#[test]
fn compile_errors_are_readable() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui-pass/*.rs");
}
