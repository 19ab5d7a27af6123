//! `cargo docker-plugin package`: the flags, cargo's among them, and the summary.

use std::path::PathBuf;
use std::time::Duration;

use docker_plugin_sdk::package::packager::{CargoFlags, Packager, Step, Target};
use docker_plugin_sdk::package::verify::verify;

use crate::output::{bytes_style, human_size, print_privileges, spinner};

#[derive(clap::Args)]
pub struct PackageArgs {
    /// The binary to package.
    #[arg(long, conflicts_with = "example")]
    bin: Option<String>,
    /// The example to package (metadata: [package.metadata.docker-plugin.examples.NAME]).
    #[arg(long)]
    example: Option<String>,
    /// Package this executable, already built (e.g. by an earlier cargo build, a CI
    /// step or a cross build), instead of running cargo build; the metadata is still
    /// the package's.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["features", "all_features", "no_default_features", "profile"])]
    binary: Option<PathBuf>,
    /// Read the plugin metadata from this TOML file instead of Cargo.toml.
    #[arg(long)]
    metadata: Option<PathBuf>,
    /// The bundle directory (default: TARGET-DIR/docker-plugin/NAME).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write the bundle as DIR.tar.gz.
    #[arg(long)]
    tar: bool,
    /// Run each packaged program (the plugin binary and `binaries`) inside the rootfs
    /// with its version flag, as the harness runs the plugin (needs root); always
    /// done when the metadata says `verify = true`.
    #[arg(long)]
    verify: bool,
    #[command(flatten)]
    cargo: CargoArgs,
}

/// The flags passed on to `cargo build`, as cargo subcommands take them.
#[derive(clap::Args)]
#[command(next_help_heading = "Cargo options (passed to cargo build)")]
struct CargoArgs {
    /// Package to build (a workspace member).
    #[arg(short = 'p', long = "package", value_name = "SPEC")]
    package: Option<String>,
    /// Build for this target triple: the plugin's architecture (e.g.
    /// aarch64-unknown-linux-gnu); libraries are looked up for it and every ELF file
    /// of the rootfs must be built for it.
    #[arg(long, value_name = "TRIPLE")]
    target: Option<String>,
    /// Directory for all generated artifacts.
    #[arg(long, value_name = "DIRECTORY")]
    target_dir: Option<PathBuf>,
    /// Path to Cargo.toml.
    #[arg(long, value_name = "PATH")]
    manifest_path: Option<PathBuf>,
    /// The cargo profile.
    #[arg(long, default_value = "release", value_name = "PROFILE-NAME")]
    profile: String,
    /// Features to enable.
    #[arg(long, short = 'F', value_delimiter = ',')]
    features: Vec<String>,
    /// Enable all features.
    #[arg(long)]
    all_features: bool,
    /// Disable the default features.
    #[arg(long)]
    no_default_features: bool,
    /// Assert that Cargo.lock will remain unchanged.
    #[arg(long)]
    locked: bool,
    /// Equivalent to specifying both --locked and --offline.
    #[arg(long)]
    frozen: bool,
    /// Run without accessing the network.
    #[arg(long)]
    offline: bool,
    /// Use verbose output (-vv very verbose).
    #[arg(short = 'v', long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Do not print cargo log messages.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Coloring: auto, always, never.
    #[arg(long, value_name = "WHEN")]
    color: Option<String>,
}

pub fn package(args: PackageArgs) -> Result<(), String> {
    let target = match (args.bin, args.example) {
        (Some(bin), _) => Target::Bin(bin),
        (None, Some(example)) => Target::Example(example),
        (None, None) => Target::Default,
    };
    let cargo = args.cargo;
    let mut packager = Packager::new()
        .target(target)
        .profile(cargo.profile)
        .features(
            cargo.features,
            cargo.all_features,
            cargo.no_default_features,
        )
        .cargo_flags(CargoFlags {
            package: cargo.package,
            target: cargo.target.clone(),
            target_dir: cargo.target_dir,
            locked: cargo.locked,
            frozen: cargo.frozen,
            offline: cargo.offline,
            verbose: cargo.verbose,
            quiet: cargo.quiet,
            color: cargo.color,
        })
        .tarball(args.tar);
    if let Some(path) = cargo.manifest_path {
        packager = packager.manifest_path(path);
    }
    if let Some(path) = args.metadata {
        packager = packager.metadata_file(path);
    }
    if let Some(dir) = args.out {
        packager = packager.out_dir(dir);
    }
    if let Some(path) = args.binary {
        packager = packager.binary(path);
    }
    let bar = spinner();
    let result = packager.run(&mut |step: Step| match step {
        // cargo prints its own progress: no spinner over it.
        Step::Building => bar.disable_steady_tick(),
        Step::Assembling(_) => {
            bar.enable_steady_tick(Duration::from_millis(120));
            bar.set_message(step.to_string());
        }
        Step::Archiving(_, total) => {
            bytes_style(&bar, total);
            bar.set_message(step.to_string());
        }
        Step::Archived(done) => bar.set_position(done),
    });
    bar.finish_and_clear();
    let packaged = result.map_err(|e| e.to_string())?;
    for warning in &packaged.warnings {
        eprintln!("warning: {warning}");
    }
    let config = packaged.bundle.config();
    println!("bundle   {}", packaged.bundle.dir().display());
    println!(
        "arch     {} ({})",
        packaged.arch,
        cargo
            .target
            .as_deref()
            .unwrap_or(packaged.arch.rust_target())
    );
    println!(
        "rootfs   {} files, {}",
        packaged.files,
        human_size(packaged.size)
    );
    if let Some((path, archive)) = &packaged.tarball {
        println!(
            "tarball  {} ({}, {})",
            path.display(),
            human_size(archive.gz.len() as u64),
            archive.digest
        );
    }
    // `--verify`, or the metadata's `verify = true`.
    if args.verify || packaged.verify {
        for ran in verify(&packaged.bundle, &packaged.programs).map_err(|e| e.to_string())? {
            println!("verified {} {}: {}", ran.program, ran.flag, ran.first_line);
        }
    }
    print_privileges(config);
    for warning in config.warnings() {
        println!("warning: {warning}");
    }
    println!(
        "next     docker plugin create NAME {}",
        packaged.bundle.dir().display()
    );
    Ok(())
}
