//! The `Options` map of network requests, with typed accessors for the keys dockerd
//! itself fills in, and the port types those keys carry.
//!
//! libnetwork sends its `generic` option maps as `map[string]interface{}` (moby
//! v20.10.24 `vendor/github.com/docker/libnetwork/drivers/remote/api/api.go`): the
//! keys are the labels of `netlabel/labels.go`, the values whatever Go's encoder
//! made of them. What arrives (`libnetwork/network.go`, `endpoint.go`,
//! `daemon/container_operations.go`):
//!
//! - CreateNetwork: [`GENERIC`] (the `-o` options, `map[string]string`),
//!   [`ENABLE_IPV6`] (a bool, always), [`INTERNAL`] (`true` with `--internal`);
//! - CreateEndpoint: [`EXPOSED_PORTS`] (`[]types.TransportPort`), [`PORT_MAP`]
//!   (`[]types.PortBinding`), [`DNS_SERVERS`] (`[]string`), [`MAC_ADDRESS`] (Go's
//!   `net.HardwareAddr`, a byte slice, hence **base64** of its six bytes), and the
//!   endpoint's `--driver-opt`s;
//! - Join and ProgramExternalConnectivity: the sandbox's labels ([`PORT_MAP`],
//!   [`EXPOSED_PORTS`]).
//!
//! Every other key is kept as JSON ([`Options::get`], [`Options::decode`]).

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::addr::{MacAddress, empty_is_none};

/// `com.docker.network.generic`: the network's `-o key=value` options.
pub const GENERIC: &str = "com.docker.network.generic";
/// `com.docker.network.enable_ipv6`: whether the network has IPv6 (`--ipv6`).
pub const ENABLE_IPV6: &str = "com.docker.network.enable_ipv6";
/// `com.docker.network.internal`: `docker network create --internal`.
pub const INTERNAL: &str = "com.docker.network.internal";
/// `com.docker.network.portmap`: the container's published ports.
pub const PORT_MAP: &str = "com.docker.network.portmap";
/// `com.docker.network.endpoint.exposedports`: the container's exposed ports.
pub const EXPOSED_PORTS: &str = "com.docker.network.endpoint.exposedports";
/// `com.docker.network.endpoint.macaddress`: `docker run --mac-address`, base64.
pub const MAC_ADDRESS: &str = "com.docker.network.endpoint.macaddress";
/// `com.docker.network.endpoint.dnsservers`: `docker run --dns`.
pub const DNS_SERVERS: &str = "com.docker.network.endpoint.dnsservers";

/// A value of the `Options` map that is not what dockerd puts under its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("option {key}: expected {expected}, got {got}")]
pub struct OptionError {
    /// The key.
    pub key: String,
    /// What dockerd sends under it.
    pub expected: &'static str,
    /// The JSON that came instead.
    pub got: String,
}

/// The `Options` of a network request: every key dockerd sent, as JSON, with typed
/// accessors for the keys dockerd fills in itself. A missing key (or Go's `null`)
/// reads as the empty value.
///
/// ```
/// use docker_plugin_sdk::network::{Options, Protocol};
///
/// let options: Options = serde_json::from_str(r#"{
///     "com.docker.network.enable_ipv6": false,
///     "com.docker.network.generic": {"mtu": "1400"},
///     "com.docker.network.endpoint.macaddress": "AkKsEQAC",
///     "com.docker.network.endpoint.exposedports": [{"Proto": 6, "Port": 80}]
/// }"#).unwrap();
/// assert_eq!(options.generic().unwrap()["mtu"], "1400");
/// assert!(!options.enable_ipv6().unwrap());
/// assert_eq!(options.mac_address().unwrap().unwrap().to_string(), "02:42:ac:11:00:02");
/// assert_eq!(options.exposed_ports().unwrap()[0].proto, Protocol::TCP);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Options(pub Map<String, Value>);

impl Options {
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }

    /// These options with `key` set to `value` (for tests and tools that build
    /// requests).
    ///
    /// ```
    /// use docker_plugin_sdk::network::{Options, INTERNAL};
    /// assert!(Options::new().with(INTERNAL, true).internal().unwrap());
    /// ```
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }

    /// The raw JSON under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// Whether no option was sent.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value under `key` decoded as `T`; `None` when missing or `null`.
    pub fn decode<T: DeserializeOwned>(
        &self,
        key: &str,
        expected: &'static str,
    ) -> Result<Option<T>, OptionError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => T::deserialize(value).map(Some).map_err(|_| OptionError {
                key: key.to_owned(),
                expected,
                got: value.to_string(),
            }),
        }
    }

    /// The network's `-o key=value` options ([`GENERIC`]); empty without any.
    pub fn generic(&self) -> Result<HashMap<String, String>, OptionError> {
        Ok(self
            .decode(GENERIC, "an object of strings")?
            .unwrap_or_default())
    }

    /// Whether the network has IPv6 ([`ENABLE_IPV6`]); `false` when not said.
    pub fn enable_ipv6(&self) -> Result<bool, OptionError> {
        Ok(self.decode(ENABLE_IPV6, "a bool")?.unwrap_or(false))
    }

    /// Whether the network is `--internal` ([`INTERNAL`]): no external connectivity,
    /// no gateway service.
    pub fn internal(&self) -> Result<bool, OptionError> {
        Ok(self.decode(INTERNAL, "a bool")?.unwrap_or(false))
    }

    /// The container's exposed ports ([`EXPOSED_PORTS`]).
    pub fn exposed_ports(&self) -> Result<Vec<TransportPort>, OptionError> {
        Ok(self
            .decode(EXPOSED_PORTS, "a list of {Proto, Port}")?
            .unwrap_or_default())
    }

    /// The container's published ports ([`PORT_MAP`]).
    pub fn port_map(&self) -> Result<Vec<PortBinding>, OptionError> {
        Ok(self
            .decode(PORT_MAP, "a list of port bindings")?
            .unwrap_or_default())
    }

    /// The DNS servers given with `docker run --dns` ([`DNS_SERVERS`]).
    pub fn dns_servers(&self) -> Result<Vec<IpAddr>, OptionError> {
        Ok(self
            .decode(DNS_SERVERS, "a list of IP addresses")?
            .unwrap_or_default())
    }

    /// The MAC address of `docker run --mac-address` ([`MAC_ADDRESS`]), which Go
    /// sends as the base64 of its six bytes (`"AkKsEQAC"`).
    pub fn mac_address(&self) -> Result<Option<MacAddress>, OptionError> {
        let Some(text) = self.decode::<String>(MAC_ADDRESS, "the base64 of six bytes")? else {
            return Ok(None);
        };
        match base64_decode(&text).map(<[u8; 6]>::try_from) {
            Some(Ok(octets)) => Ok(Some(MacAddress::new(octets))),
            _ => Err(OptionError {
                key: MAC_ADDRESS.to_owned(),
                expected: "the base64 of six bytes",
                got: Value::String(text).to_string(),
            }),
        }
    }
}

/// Standard base64 with padding, as Go's `encoding/json` writes a `[]byte`; `None`
/// when `text` is not that.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    }
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (index, group) in bytes.chunks(4).enumerate() {
        let last = index + 1 == bytes.len() / 4;
        let padding = group.iter().rev().take_while(|&&c| c == b'=').count();
        if padding > 2 || (padding > 0 && !last) {
            return None;
        }
        let mut bits = 0u32;
        for &c in &group[..4 - padding] {
            bits = bits << 6 | value(c)?;
        }
        bits <<= 6 * padding as u32;
        let decoded = bits.to_be_bytes();
        out.extend_from_slice(&decoded[1..4 - padding]);
    }
    Some(out)
}

/// An IP protocol number, as libnetwork's `types.Protocol` sends it (a number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Protocol(pub u8);

impl Protocol {
    /// ICMP (1).
    pub const ICMP: Self = Self(1);
    /// TCP (6).
    pub const TCP: Self = Self(6);
    /// UDP (17).
    pub const UDP: Self = Self(17);
    /// SCTP (132).
    pub const SCTP: Self = Self(132);
}

impl fmt::Display for Protocol {
    /// `tcp`, `udp`, `sctp`, `icmp`, or the number (as libnetwork prints it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::ICMP => f.write_str("icmp"),
            Self::TCP => f.write_str("tcp"),
            Self::UDP => f.write_str("udp"),
            Self::SCTP => f.write_str("sctp"),
            Self(other) => write!(f, "{other}"),
        }
    }
}

/// An exposed port (libnetwork's `types.TransportPort`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportPort {
    /// The protocol.
    #[serde(rename = "Proto")]
    pub proto: Protocol,
    /// The port.
    #[serde(rename = "Port")]
    pub port: u16,
}

/// A published port (libnetwork's `types.PortBinding`, `-p HOSTIP:HOSTPORT:PORT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    /// The protocol.
    #[serde(rename = "Proto")]
    pub proto: Protocol,
    /// The container's address, when known (`""` on the wire otherwise).
    #[serde(rename = "IP", default, with = "empty_is_none")]
    pub ip: Option<IpAddr>,
    /// The container's port.
    #[serde(rename = "Port")]
    pub port: u16,
    /// The host address to bind (`""`: every address).
    #[serde(rename = "HostIP", default, with = "empty_is_none")]
    pub host_ip: Option<IpAddr>,
    /// The first host port (0: any).
    #[serde(rename = "HostPort")]
    pub host_port: u16,
    /// The last host port of a range (0: just `host_port`).
    #[serde(rename = "HostPortEnd")]
    pub host_port_end: u16,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_reads_what_go_writes_for_byte_slices() {
        assert_eq!(
            base64_decode("AkKsEQAC").unwrap(),
            [2, 0x42, 0xac, 0x11, 0, 2]
        );
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(base64_decode("Zg==").unwrap(), b"f");
        assert_eq!(base64_decode("Zm8=").unwrap(), b"fo");
        assert_eq!(base64_decode("Zm9v").unwrap(), b"foo");
        assert!(base64_decode("Zg=").is_none());
        assert!(base64_decode("Zg==Zm9v").is_none());
        assert!(base64_decode("Z===").is_none());
        assert!(base64_decode("Zm9*").is_none());
    }

    #[test]
    fn a_wrong_value_names_its_key_and_what_dockerd_sends() {
        let options = Options::new()
            .with(ENABLE_IPV6, "yes")
            .with(MAC_ADDRESS, "02:42:ac:11:00:02");
        assert_eq!(
            options.enable_ipv6().unwrap_err().to_string(),
            r#"option com.docker.network.enable_ipv6: expected a bool, got "yes""#
        );
        assert_eq!(
            options.mac_address().unwrap_err().to_string(),
            r#"option com.docker.network.endpoint.macaddress: expected the base64 of six bytes, got "02:42:ac:11:00:02""#
        );
    }

    #[test]
    fn null_values_read_as_empty() {
        let options: Options = serde_json::from_str(&format!(
            r#"{{"{GENERIC}": null, "{PORT_MAP}": null, "{EXPOSED_PORTS}": null, "{MAC_ADDRESS}": null}}"#
        ))
        .unwrap();
        assert!(options.generic().unwrap().is_empty());
        assert!(options.port_map().unwrap().is_empty());
        assert!(options.exposed_ports().unwrap().is_empty());
        assert_eq!(options.mac_address().unwrap(), None);
    }
}
