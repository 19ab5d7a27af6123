//! The parser `#[derive(DriverOptions)]` writes, on any `-o key=value` list (keys
//! repeated, unknown, empty, any text): it parses or reports every problem, never
//! panics, and a secret is neither in the `Status` nor printed.
#![no_main]

use docker_plugin_sdk::DriverOptions;
use docker_plugin_sdk::options::Secret;

/// One field of each kind the derive handles.
#[derive(Debug, DriverOptions)]
#[allow(dead_code)]
struct Opts {
    #[opt(rename = "sshcmd")]
    ssh_cmd: String,
    #[opt(default = "22")]
    port: u16,
    #[opt(secret)]
    password: Option<Secret<String>>,
    #[opt(parse_with = octal, expect = "octal permissions such as 0750")]
    mode: Option<u32>,
    ratio: Option<f64>,
    #[opt(default = "false")]
    readonly: bool,
    address: Option<std::net::IpAddr>,
}

fn octal(text: &str) -> Result<u32, std::num::ParseIntError> {
    u32::from_str_radix(text, 8)
}

libfuzzer_sys::fuzz_target!(|options: Vec<(String, String)>| {
    let pairs = options.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    match Opts::from_options(pairs) {
        Ok(opts) => {
            let status = opts.to_status();
            assert!(
                status.iter().all(|(key, _)| *key != "password"),
                "the secret is in the status {status:?}"
            );
            if let Some(password) = &opts.password {
                assert_eq!(
                    format!("{password:?} {password}"),
                    "Secret(********) ********"
                );
            }
        }
        Err(e) => {
            let message = e.to_string();
            assert!(message.starts_with("invalid options: "), "{message}");
        }
    }
});
