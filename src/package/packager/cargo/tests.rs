//! The unit tests of `packager/cargo.rs`: which artifact is packaged.

use std::path::Path;

use super::*;

const OUTPUT: &str = r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"x"},"executable":null,"manifest_path":"/p/Cargo.toml"}
{"reason":"compiler-artifact","target":{"kind":["bin"],"name":"a"},"executable":"/p/target/release/a","manifest_path":"/p/Cargo.toml"}
{"reason":"compiler-artifact","target":{"kind":["bin"],"name":"b"},"executable":"/p/target/release/b","manifest_path":"/p/Cargo.toml"}
{"reason":"compiler-artifact","target":{"kind":["example"],"name":"a"},"executable":"/p/target/release/examples/a","manifest_path":"/p/Cargo.toml"}
{"reason":"build-finished","success":true}
"#;

#[test]
fn the_named_artifact_is_picked() {
    let artifacts = parse_artifacts(OUTPUT.as_bytes()).expect("parse");
    assert_eq!(artifacts.len(), 3);
    let bin = pick_artifact(artifacts.clone(), &Target::Bin("a".into())).expect("bin");
    assert_eq!(bin.executable, Path::new("/p/target/release/a"));
    let example = pick_artifact(artifacts.clone(), &Target::Example("a".into())).expect("example");
    assert_eq!(
        example.executable,
        Path::new("/p/target/release/examples/a")
    );
    let err = pick_artifact(artifacts.clone(), &Target::Default)
        .expect_err("two bins")
        .to_string();
    assert!(err.contains("several binaries (a, b)"), "{err}");
    let err = pick_artifact(artifacts, &Target::Bin("c".into()))
        .expect_err("none")
        .to_string();
    assert!(err.contains("--bin"), "{err}");
}
