//! The unit tests of `packager.rs`: the progress messages, where the tarball goes.

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
