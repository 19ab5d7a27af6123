use docker_plugin_sdk::DriverOptions;

#[derive(DriverOptions)]
struct Opts {
    #[opt(expect = " ")]
    port: u16,
}

fn main() {}
