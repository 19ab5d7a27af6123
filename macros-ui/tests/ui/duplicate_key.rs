use docker_plugin_sdk::DriverOptions;

#[derive(DriverOptions)]
struct Opts {
    port: u16,
    #[opt(rename = "port")]
    ssh_port: u16,
}

fn main() {}
