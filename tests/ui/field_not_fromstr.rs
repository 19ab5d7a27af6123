use docker_plugin_sdk::DriverOptions;

struct Remote {
    host: String,
}

#[derive(DriverOptions)]
struct Opts {
    remote: Remote,
}

fn main() {}
