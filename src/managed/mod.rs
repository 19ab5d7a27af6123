//! Managed ("v2") plugins as dockerd sees them: the typed `config.json` and the bundle
//! directory that holds it.
//!
//! A managed plugin is a bundle: `config.json` next to a `rootfs/` directory. dockerd
//! reads `config.json` when the plugin is created, shows the privileges it asks for
//! when it is installed, applies `docker plugin set` to it while it is disabled, and
//! ships it as the config blob (`application/vnd.docker.plugin.v1+json`) of the
//! plugin's registry manifest.
//!
//! This module is always compiled: the packager (feature `packager`) writes and
//! validates this model, the harness (feature `harness`) reads bundles and computes
//! privileges from it, and `push` sends it as the registry config blob, all through
//! the same types (design principle 5).
//!
//! - [`config`]: [`PluginConfig`](config::PluginConfig), the one typed `config.json`
//!   (Docker's exact field names, decoded the way dockerd's Go decoder does), with
//!   its validation rules, the privileges `docker plugin install` asks for, and
//!   `docker plugin set`.
//! - [`bundle`]: [`Bundle`](bundle::Bundle), a bundle directory (`config.json` +
//!   `rootfs/`) as the packager writes it and the harness and `push` read it.
//! - [`settings`]: [`Settings`](settings::Settings), what `docker plugin set`
//!   changes, kept beside the config as dockerd keeps it.

pub mod bundle;
pub mod config;
pub mod settings;
