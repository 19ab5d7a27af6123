//! `#[derive(DriverOptions)]`: Docker's `-o key=value` map as a typed struct, with every
//! error message a user can get asserted word for word.
#![cfg(feature = "macros")]

use std::collections::HashMap;
use std::net::IpAddr;

use docker_plugin_sdk::DriverOptions;
use docker_plugin_sdk::options::{OptionInfo, Secret};

#[derive(Debug, DriverOptions)]
struct SshOptions {
    /// The remote, user@host:/path.
    #[opt(rename = "sshcmd")]
    ssh_cmd: String,
    /// The ssh port.
    #[opt(default = "22")]
    port: u16,
    #[opt(secret)]
    password: Option<Secret<String>>,
    #[opt(default)]
    allow_other: bool,
    bind: Option<IpAddr>,
    #[opt(secret, default = "none")]
    token: Secret<String>,
}

fn parse(pairs: &[(&str, &str)]) -> Result<SshOptions, String> {
    SshOptions::from_options(pairs.iter().copied()).map_err(|e| e.to_string())
}

#[test]
fn values_defaults_and_optionals() {
    let o = parse(&[("sshcmd", "me@host:/srv"), ("password", "hunter2")]).unwrap();
    assert_eq!(o.ssh_cmd, "me@host:/srv");
    assert_eq!(o.port, 22);
    assert_eq!(o.password.as_ref().unwrap().expose(), "hunter2");
    assert!(!o.allow_other);
    assert_eq!(o.bind, None);
    assert_eq!(o.token.expose(), "none");

    let o = parse(&[
        ("sshcmd", "h:/"),
        ("port", "2222"),
        ("allow_other", "true"),
        ("bind", "10.0.0.1"),
    ])
    .unwrap();
    assert_eq!((o.port, o.allow_other), (2222, true));
    assert_eq!(o.bind, Some("10.0.0.1".parse().unwrap()));
}

#[test]
fn from_a_request_map() {
    let map = HashMap::from([("sshcmd".to_string(), "h:/x".to_string())]);
    assert_eq!(SshOptions::from_map(&map).unwrap().ssh_cmd, "h:/x");
}

#[test]
fn every_problem_is_listed_at_once() {
    let err = parse(&[
        ("prot", "1"),
        ("port", "ab"),
        ("bind", "nowhere"),
        ("zz", ""),
    ])
    .unwrap_err();
    assert_eq!(
        err,
        "invalid options: \
         unknown option `prot` (valid options: sshcmd, port, password, allow_other, bind, token); \
         unknown option `zz` (valid options: sshcmd, port, password, allow_other, bind, token); \
         missing required option `sshcmd`; \
         option `port` must be a non-negative whole number, got `ab`: invalid digit found in string; \
         option `bind` must be an IP address, got `nowhere`: invalid IP address syntax"
    );
    let err = SshOptions::from_options([("port", "ab"), ("sshcmd", "h:/")]).unwrap_err();
    assert!(err.unknown.is_empty() && err.missing.is_empty());
    let err = SshOptions::from_options([("x", "1")]).unwrap_err();
    assert_eq!(
        (err.unknown, err.missing),
        (vec!["x".to_string()], vec!["sshcmd"])
    );
}

#[test]
fn bad_booleans_and_out_of_range_numbers() {
    assert_eq!(
        parse(&[("sshcmd", "h:/"), ("allow_other", "yes")]).unwrap_err(),
        "invalid options: option `allow_other` must be `true` or `false`, got `yes`: \
         provided string was not `true` or `false`"
    );
    assert_eq!(
        parse(&[("sshcmd", "h:/"), ("port", "70000")]).unwrap_err(),
        "invalid options: option `port` must be a non-negative whole number, got `70000`: \
         number too large to fit in target type"
    );
}

#[test]
fn secrets_are_never_echoed() {
    #[derive(Debug, DriverOptions)]
    struct Key {
        #[opt(secret)]
        pin: Secret<u32>,
    }
    let err = Key::from_options([("pin", "12ab")])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "invalid options: option `pin` must be a non-negative whole number (value not shown: secret)"
    );
    let key = Key::from_options([("pin", "1234")]).unwrap();
    assert_eq!(*key.pin.expose(), 1234);
    assert_eq!(format!("{key:?}"), "Key { pin: Secret(********) }");
    assert!(key.to_status().is_empty());

    let o = parse(&[("sshcmd", "h:/"), ("password", "hunter2")]).unwrap();
    let status = o.to_status();
    assert_eq!(
        status,
        [
            ("sshcmd", "h:/".to_string()),
            ("port", "22".to_string()),
            ("allow_other", "false".to_string())
        ]
    );
    assert!(!format!("{o:?}").contains("hunter2"));
    assert_eq!(o.status_map()["port"], "22");
}

#[test]
fn option_metadata_and_help() {
    assert_eq!(
        SshOptions::OPTIONS[0],
        OptionInfo {
            key: "sshcmd",
            required: true,
            default: None,
            secret: false,
            doc: "The remote, user@host:/path."
        }
    );
    assert_eq!(SshOptions::OPTIONS[1].default, Some("22"));
    assert_eq!(
        SshOptions::help().lines().take(3).collect::<Vec<_>>(),
        [
            "  -o sshcmd=…  (required)  The remote, user@host:/path.",
            "  -o port=…  (default 22)  The ssh port.",
            "  -o password=…  (secret)"
        ]
    );
}

#[test]
fn a_struct_without_options_refuses_any() {
    #[derive(Debug, DriverOptions)]
    struct NoOptions {}
    assert!(NoOptions::from_options([]).is_ok());
    assert_eq!(
        NoOptions::from_options([("a", "1")])
            .unwrap_err()
            .to_string(),
        "invalid options: unknown option `a` (this driver takes no options)"
    );
}

#[test]
fn returned_from_a_driver_it_becomes_the_users_error() {
    fn create(opts: &HashMap<String, String>) -> docker_plugin_sdk::Result<()> {
        SshOptions::from_map(opts)?;
        Ok(())
    }
    let err = create(&HashMap::new()).unwrap_err();
    assert_eq!(
        err.message(),
        "invalid options: missing required option `sshcmd`"
    );
}

#[test]
fn a_secret_type_is_secret_without_the_attribute() {
    #[derive(Debug, DriverOptions)]
    struct Token {
        token: Secret<u64>,
        name: String,
    }
    let err = Token::from_options([("token", "s3cr3t"), ("name", "n")])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "invalid options: option `token` must be a non-negative whole number (value not shown: secret)"
    );
    assert!(!err.contains("s3cr3t"));
    assert!(Token::OPTIONS[0].secret);
    let t = Token::from_options([("token", "7"), ("name", "n")]).unwrap();
    assert_eq!((*t.token.expose(), t.name.as_str()), (7, "n"));
    assert_eq!(t.to_status(), [("name", "n".to_string())]);
}

#[test]
fn a_bad_default_is_blamed_on_the_driver_not_the_user() {
    #[derive(Debug, DriverOptions)]
    struct Bad {
        #[opt(default = "abc")]
        port: u16,
    }
    assert_eq!(
        Bad::from_options([]).unwrap_err().to_string(),
        "invalid options: the driver's default for option `port` is invalid \
         (must be a non-negative whole number): invalid digit found in string; \
         set `-o port=…` explicitly, and report this to the plugin's authors"
    );
    assert_eq!(Bad::from_options([("port", "80")]).unwrap().port, 80);
}

#[test]
fn fields_may_use_any_name() {
    #[derive(Debug, DriverOptions)]
    struct Names {
        parser: String,
        options: Option<String>,
    }
    let n = Names::from_options([("parser", "p"), ("options", "o")]).unwrap();
    assert_eq!((n.parser.as_str(), n.options.as_deref()), ("p", Some("o")));
}

/// Octal permissions, parsed by a function of the driver's own.
fn octal(text: &str) -> Result<u32, String> {
    match u32::from_str_radix(text, 8) {
        Ok(mode) if mode <= 0o7777 => Ok(mode),
        Ok(_) => Err("above 7777".into()),
        Err(_) => Err("digits 0 to 7 only".into()),
    }
}

#[derive(Debug, DriverOptions)]
struct Perms {
    /// Permissions of the volume's directory.
    #[opt(default = "0755", parse_with = octal, expect = "octal permissions such as 0750")]
    mode: u32,
    #[opt(parse_with = octal, expect = "an octal umask such as 022")]
    umask: Option<u32>,
    #[opt(parse_with = self::octal, expect = "an octal owner id")]
    owner: u32,
    #[opt(default, parse_with = octal, expect = "an octal group id")]
    group: u32,
}

#[test]
fn a_custom_parser_gives_values_and_its_own_words() {
    let p = Perms::from_options([("owner", "17")]).unwrap();
    assert_eq!((p.mode, p.umask, p.owner, p.group), (0o755, None, 0o17, 0));
    let p = Perms::from_options([
        ("owner", "0"),
        ("mode", "0750"),
        ("umask", "022"),
        ("group", "7"),
    ])
    .unwrap();
    assert_eq!(
        (p.mode, p.umask, p.owner, p.group),
        (0o750, Some(0o22), 0, 7)
    );

    let err = Perms::from_options([("mode", "0980"), ("umask", "77777"), ("group", "x")])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "invalid options: \
         missing required option `owner`; \
         option `mode` must be octal permissions such as 0750, got `0980`: digits 0 to 7 only; \
         option `umask` must be an octal umask such as 022, got `77777`: above 7777; \
         option `group` must be an octal group id, got `x`: digits 0 to 7 only"
    );
}

#[test]
fn a_custom_parsers_bad_default_is_blamed_on_the_driver_in_its_words() {
    #[derive(Debug, DriverOptions)]
    struct BadDefault {
        #[opt(default = "0999", parse_with = octal, expect = "octal permissions such as 0750")]
        mode: u32,
    }
    assert_eq!(
        BadDefault::from_options([]).unwrap_err().to_string(),
        "invalid options: the driver's default for option `mode` is invalid \
         (must be octal permissions such as 0750): digits 0 to 7 only; \
         set `-o mode=…` explicitly, and report this to the plugin's authors"
    );
}

#[test]
fn a_custom_parser_for_a_secret_never_echoes_it() {
    fn pin(text: &str) -> Result<Secret<u32>, String> {
        match text.parse() {
            Ok(pin) if text.len() == 4 => Ok(Secret::new(pin)),
            _ => Err(format!("{text} is not four digits")),
        }
    }
    #[derive(Debug, DriverOptions)]
    struct Pin {
        #[opt(parse_with = pin, expect = "a four-digit PIN")]
        pin: Secret<u32>,
    }
    assert_eq!(
        *Pin::from_options([("pin", "1234")]).unwrap().pin.expose(),
        1234
    );
    let err = Pin::from_options([("pin", "98765")])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "invalid options: option `pin` must be a four-digit PIN (value not shown: secret)"
    );
    assert!(!err.contains("98765"));
}

#[test]
fn expect_words_a_type_of_the_drivers_own() {
    #[derive(Debug, PartialEq)]
    enum Colour {
        Red,
        Green,
    }
    impl std::str::FromStr for Colour {
        type Err = String;
        fn from_str(s: &str) -> Result<Self, String> {
            match s {
                "red" => Ok(Colour::Red),
                "green" => Ok(Colour::Green),
                _ => Err("unknown colour".into()),
            }
        }
    }
    #[derive(Debug, DriverOptions)]
    struct Paint {
        #[opt(expect = "`red` or `green`", no_status)]
        colour: Colour,
        /// Words override the std type's too.
        #[opt(expect = "a TCP port", default = "22")]
        port: u16,
    }
    assert_eq!(
        Paint::from_options([("colour", "green")]).unwrap().colour,
        Colour::Green
    );
    assert_eq!(
        Paint::from_options([("colour", "blue"), ("port", "ssh")])
            .unwrap_err()
            .to_string(),
        "invalid options: option `colour` must be `red` or `green`, got `blue`: unknown colour; \
         option `port` must be a TCP port, got `ssh`: invalid digit found in string"
    );
}

#[test]
fn every_std_wording_reads_as_words_not_type_names() {
    use std::net::{Ipv4Addr, SocketAddr};
    use std::num::NonZeroU32;
    #[derive(Debug, DriverOptions)]
    struct All {
        a: Option<i32>,
        b: Option<f64>,
        c: Option<char>,
        d: Option<Ipv4Addr>,
        e: Option<SocketAddr>,
        f: Option<NonZeroU32>,
        #[opt(no_status)]
        g: Option<std::path::PathBuf>,
        h: Option<String>,
    }
    let err = All::from_options([
        ("a", "x"),
        ("b", "x"),
        ("c", "xy"),
        ("d", "x"),
        ("e", "x"),
        ("f", "0"),
        ("g", "/any/path"),
        ("h", "any text"),
    ])
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "invalid options: \
         option `a` must be a whole number, got `x`: invalid digit found in string; \
         option `b` must be a number, got `x`: invalid float literal; \
         option `c` must be a single character, got `xy`: too many characters in string; \
         option `d` must be an IP address, got `x`: invalid IPv4 address syntax; \
         option `e` must be an address like 127.0.0.1:22, got `x`: invalid socket address syntax; \
         option `f` must be a positive whole number, got `0`: number would be zero for non-zero type"
    );
    let all = All::from_options([("g", "/any/path")]).unwrap();
    assert_eq!(all.g, Some("/any/path".into()));
}
