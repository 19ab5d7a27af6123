use docker_plugin_sdk::DriverOptions;

fn octal(text: &str) -> Result<u32, std::num::ParseIntError> {
    u32::from_str_radix(text, 8)
}

// The type's wording ("a non-negative whole number") would not say what `octal` takes.
#[derive(DriverOptions)]
struct Opts {
    #[opt(parse_with = octal)]
    mode: u32,
}

fn main() {}
