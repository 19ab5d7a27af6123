//! Managed ("v2") plugin packaging: what `docker plugin create`, `install`, `set` and
//! `push` work with.
//!
//! A managed plugin is a bundle: `config.json` next to a `rootfs/` directory. dockerd
//! reads `config.json` when the plugin is created, shows the privileges it asks for
//! when it is installed, applies `docker plugin set` to it while it is disabled, and
//! ships it as the config blob (`application/vnd.docker.plugin.v1+json`) of the
//! plugin's registry manifest.
//!
//! - [`config`]: [`PluginConfig`](config::PluginConfig), the one typed `config.json`
//!   (Docker's exact field names, decoded the way dockerd's Go decoder does), with
//!   its validation rules, the privileges `docker plugin install` asks for, and
//!   `docker plugin set`.
//! - [`bundle`]: [`Bundle`](bundle::Bundle), a bundle directory (`config.json` +
//!   `rootfs/`) as the packager writes it and the harness and `push` read it.

pub mod bundle;
pub mod config;
