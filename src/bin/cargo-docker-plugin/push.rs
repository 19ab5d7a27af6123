//! `cargo docker-plugin push BUNDLE… REF`: the flags, per-blob progress on a
//! terminal (a line per blob otherwise), and the summary.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::ValueEnum;
use docker_plugin_sdk::package::archive::OpenedBundle;
use docker_plugin_sdk::package::push::{DiffIds, Pusher};
use docker_plugin_sdk::package::registry::{Connect, Credentials, Reference, Transfer};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget};

use crate::output::{bytes_style, human_size};

#[derive(Clone, Copy, ValueEnum)]
enum DiffIdArg {
    /// The uncompressed tar's digest (the image spec's diff_id).
    Uncompressed,
    /// The compressed layer's digest (what dockerd's own push writes).
    Compressed,
}

#[derive(clap::Args)]
pub struct PushArgs {
    /// The bundle directories (or .tar.gz files from `package --tar`), then the
    /// reference to push to, e.g. 127.0.0.1:5000/me/plugin:1. Several bundles need
    /// --arch-tags.
    #[arg(value_name = "BUNDLE... REF", num_args = 2.., required = true)]
    args: Vec<String>,
    /// Push each bundle to TAG-ARCH (e.g. 1.0-amd64, 1.0-arm64), its architecture
    /// read from its entrypoint: Docker cannot install a manifest list, so plugins
    /// have one tag per architecture.
    #[arg(long)]
    arch_tags: bool,
    /// Registry user name (default: `docker login`'s stored credentials, helpers
    /// and identity tokens included).
    #[arg(long, requires = "password_stdin")]
    username: Option<String>,
    /// Read the password from standard input.
    #[arg(long, requires = "username")]
    password_stdin: bool,
    /// Speak plain HTTP to the registry (registries in 127.0.0.0/8 get HTTPS
    /// without verification, then HTTP, as dockerd does, without this flag).
    #[arg(long)]
    plain_http: bool,
    /// HTTPS without checking the registry's certificate (a registry's own CA
    /// belongs in /etc/docker/certs.d/HOST:PORT/ca.crt instead).
    #[arg(long)]
    insecure_skip_tls_verify: bool,
    /// Which digest goes into the config's rootfs.diff_ids.
    #[arg(long, value_enum, default_value = "uncompressed")]
    diff_ids: DiffIdArg,
}

/// Shows each blob: a byte bar on a terminal, a line when done otherwise.
struct Progress {
    multi: Option<MultiProgress>,
    bars: BTreeMap<String, ProgressBar>,
}

impl Progress {
    fn new() -> Self {
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        Self {
            multi: terminal.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            bars: BTreeMap::new(),
        }
    }

    fn short(digest: &str) -> &str {
        digest.get(..19).unwrap_or(digest)
    }

    fn line(&self, text: String) {
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(text);
            }
            None => eprintln!("{text}"),
        }
    }

    fn event(&mut self, event: Transfer) {
        match event {
            Transfer::Exists { digest, size } => {
                self.line(format!(
                    "{}  exists ({})",
                    Self::short(&digest),
                    human_size(size)
                ));
            }
            Transfer::Bytes {
                digest,
                done,
                total,
            } => {
                if let Some(multi) = &self.multi {
                    let bar = self.bars.entry(digest.clone()).or_insert_with(|| {
                        let bar = multi.add(ProgressBar::new(total));
                        bytes_style(&bar, total);
                        bar.set_message(format!("{}  uploading", Self::short(&digest)));
                        bar
                    });
                    bar.set_position(done);
                }
            }
            Transfer::Done { digest } => {
                if let Some(bar) = self.bars.remove(&digest) {
                    bar.finish_and_clear();
                }
                self.line(format!("{}  pushed", Self::short(&digest)));
            }
            Transfer::Retry {
                what,
                attempt,
                error,
            } => self.line(format!("retrying {what} (attempt {attempt}): {error}")),
            _ => {}
        }
    }
}

pub fn push(args: PushArgs) -> Result<(), String> {
    let mut paths = args.args;
    let reference = paths.pop().unwrap_or_default();
    let reference: Reference = reference
        .parse()
        .map_err(|e: docker_plugin_sdk::package::PackageError| e.to_string())?;
    let opened: Vec<OpenedBundle> = paths
        .iter()
        .map(|p| OpenedBundle::open(&PathBuf::from(p)).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let bundles: Vec<_> = opened.iter().map(|o| o.bundle.clone()).collect();
    let mut connect = Connect {
        plain_http: args.plain_http,
        insecure_skip_tls_verify: args.insecure_skip_tls_verify,
        ..Connect::default()
    };
    if let Some(username) = args.username {
        connect.credentials = Some(
            Credentials::with_password_from(username, std::io::stdin())
                .map_err(|e| format!("reading the password from standard input: {e}"))?,
        );
    }
    let pusher = Pusher::new()
        .connect(connect)
        .arch_tags(args.arch_tags)
        .diff_ids(match args.diff_ids {
            DiffIdArg::Uncompressed => DiffIds::Uncompressed,
            DiffIdArg::Compressed => DiffIds::Compressed,
        });
    let mut progress = Progress::new();
    let pushed = pusher
        .push_all(&bundles, &reference, &mut |event| progress.event(event))
        .map_err(|e| e.to_string())?;
    for pushed in pushed {
        println!("pushed   {} ({})", pushed.reference, pushed.arch);
        println!("digest   {}", pushed.manifest_digest);
        println!(
            "layer    {} ({})",
            pushed.layer_digest,
            human_size(pushed.layer_size)
        );
        println!("install  docker plugin install {}", pushed.reference);
    }
    Ok(())
}
