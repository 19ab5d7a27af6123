#[docker_plugin_sdk::main]
fn main() {}
