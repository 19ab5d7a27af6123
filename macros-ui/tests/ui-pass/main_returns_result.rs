//! `#[docker_plugin_sdk::main]` on an async main returning a Result: runs on the SDK's
//! runtime (timers work) and exits 0 on Ok.
#[docker_plugin_sdk::main]
async fn main() -> Result<(), std::io::Error> {
    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    tracing::info!("logging is set up");
    Ok(())
}
