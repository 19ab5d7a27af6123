//! How the CLI shows progress and sizes on a terminal (indicatif), and nothing when
//! standard error is not one.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A spinner on a terminal, a hidden bar otherwise.
pub fn spinner() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// `bar` as a byte counter towards `total`.
pub fn bytes_style(bar: &ProgressBar, total: u64) {
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_length(total);
    bar.set_position(0);
}

/// `1.5 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The privileges `docker plugin install` will ask for, as it prints them.
pub fn print_privileges(config: &docker_plugin_sdk::managed::config::PluginConfig) {
    let privileges = config.privileges();
    if privileges.is_empty() {
        println!("privileges: none");
        return;
    }
    println!(
        "Plugin \"{}\" is requesting the following privileges:",
        config.description
    );
    for privilege in privileges {
        println!(" - {privilege}");
    }
}
