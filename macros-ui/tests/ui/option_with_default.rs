use docker_plugin_sdk::DriverOptions;

#[derive(DriverOptions)]
struct Opts {
    #[opt(default = "22")]
    port: Option<u16>,
}

fn main() {}
