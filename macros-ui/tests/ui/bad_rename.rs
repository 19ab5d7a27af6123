use docker_plugin_sdk::DriverOptions;

#[derive(DriverOptions)]
struct Opts {
    #[opt(rename = "a=b")]
    port: u16,
}

fn main() {}
