#[docker_plugin_sdk::main(flavor = "multi_thread")]
async fn main() {}
