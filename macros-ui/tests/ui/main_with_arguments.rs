#[docker_plugin_sdk::main]
async fn main(name: String) {}
