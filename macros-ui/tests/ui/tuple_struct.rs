use docker_plugin_sdk::DriverOptions;

#[derive(DriverOptions)]
struct Opts(String, u16);

fn main() {}
