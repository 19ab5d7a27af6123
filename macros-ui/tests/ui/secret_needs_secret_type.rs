use docker_plugin_sdk::DriverOptions;

#[derive(DriverOptions)]
struct Opts {
    #[opt(secret)]
    password: String,
}

fn main() {}
