use docker_plugin_sdk::DriverOptions;

#[derive(DriverOptions)]
struct Opts {
    #[opt(renam = "sshcmd")]
    ssh_cmd: String,
}

fn main() {}
