use docker_plugin_sdk::DriverOptions;

struct Remote {
    host: String,
}

#[derive(DriverOptions)]
struct Opts {
    #[opt(expect = "user@host:/path")]
    remote: Remote,
}

fn main() {}
