use docker_plugin_sdk::DriverOptions;

#[derive(DriverOptions)]
enum Mode {
    Fast,
    Slow,
}

fn main() {}
