//! The unit tests of `packager.rs`: the executable `--binary` names, the progress messages, where the tarball goes.

use super::*;

#[test]
fn steps_read_as_progress_messages() {
    assert_eq!(Step::Building.to_string(), "building with cargo");
    assert_eq!(
        Step::Archiving(PathBuf::from("/o.tar.gz"), 10).to_string(),
        "archiving into /o.tar.gz"
    );
}

#[test]
fn the_tarball_is_next_to_the_bundle_not_inside() {
    for (dir, tarball) in [
        ("dist/lv/", "dist/lv.tar.gz"),
        ("dist/lv//", "dist/lv.tar.gz"),
        ("dist/lv", "dist/lv.tar.gz"),
        ("dist/lv/.", "dist/lv.tar.gz"),
        ("lv/", "lv.tar.gz"),
        ("/abs/lv.d/", "/abs/lv.d.tar.gz"),
    ] {
        assert_eq!(
            tarball_path(Path::new(dir)).expect(dir),
            Path::new(tarball),
            "{dir}"
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = dir.path().join("lv");
    std::fs::create_dir(&bundle).expect("mkdir");
    let dotdot = bundle.join("sub/..");
    std::fs::create_dir(bundle.join("sub")).expect("mkdir");
    let canonical = std::fs::canonicalize(dir.path()).expect("canonical");
    assert_eq!(
        tarball_path(&dotdot).expect(".."),
        canonical.join("lv.tar.gz")
    );
    assert!(tarball_path(Path::new("/")).is_err());
}

#[test]
fn a_prebuilt_binary_is_named_after_bin_example_or_its_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("netbridge");
    std::fs::write(&file, b"\x7fELF").expect("write");
    let manifest = Path::new("/p/Cargo.toml");
    let named = |target: Target| prebuilt_artifact(&file, &target, manifest).expect("artifact");
    let default = named(Target::Default);
    assert_eq!(
        default,
        Artifact {
            name: "netbridge".into(),
            executable: file.clone(),
            manifest_path: manifest.to_path_buf(),
            example: false,
        }
    );
    assert_eq!(named(Target::Bin("nb".into())).name, "nb");
    let example = named(Target::Example("localvol".into()));
    assert_eq!((example.name.as_str(), example.example), ("localvol", true));
}

#[test]
fn a_missing_prebuilt_binary_says_how_to_get_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nothing");
    let err = prebuilt_artifact(&missing, &Target::Default, Path::new("/p/Cargo.toml"))
        .expect_err("missing")
        .to_string();
    assert_eq!(
        err,
        format!(
            "{}: --binary: No such file or directory (os error 2): build the plugin first (cargo build), or give the path of its executable",
            missing.display()
        )
    );
    let err = prebuilt_artifact(dir.path(), &Target::Default, Path::new("/p/Cargo.toml"))
        .expect_err("a directory")
        .to_string();
    assert_eq!(
        err,
        format!(
            "{}: --binary: not a file: build the plugin first (cargo build), or give the path of its executable",
            dir.path().display()
        )
    );
}
