//! A derived DriverOptions used the way a volume driver uses it.
use docker_plugin_sdk::DriverOptions;
use docker_plugin_sdk::options::Secret;
use docker_plugin_sdk::volume::CreateRequest;

#[derive(Debug, DriverOptions)]
struct Opts {
    #[opt(default = "0755")]
    mode: String,
    #[opt(secret)]
    key: Option<Secret<String>>,
}

fn create(req: &CreateRequest) -> docker_plugin_sdk::Result<Opts> {
    Ok(Opts::from_map(&req.opts)?)
}

fn main() {
    let req: CreateRequest = serde_json::from_str(r#"{"Name":"v","Opts":{"key":"k"}}"#).unwrap();
    let opts = create(&req).unwrap();
    assert_eq!(opts.mode, "0755");
    assert_eq!(opts.key.unwrap().expose(), "k");
}
