use docker_plugin_sdk::DriverOptions;

fn octal(text: &str) -> Result<u64, std::num::ParseIntError> {
    u64::from_str_radix(text, 8)
}

#[derive(DriverOptions)]
struct Opts {
    #[opt(parse_with = octal, expect = "octal permissions such as 0750")]
    mode: u32,
}

fn main() {}
