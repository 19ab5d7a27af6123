use docker_plugin_sdk::DriverOptions;

#[derive(Debug)]
struct Mode(u32);

impl std::str::FromStr for Mode {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        u32::from_str_radix(s, 8).map(Mode)
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:o}", self.0)
    }
}

// Its error would read "must be a Mode": the derive asks for words instead.
#[derive(DriverOptions)]
struct Opts {
    mode: Option<Mode>,
}

fn main() {}
