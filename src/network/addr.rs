//! The address types of libnetwork's wire: CIDRs that keep their host bits, MAC
//! addresses, and the rule that an empty string means "none".
//!
//! libnetwork writes an address with its prefix as Go's `net.IPNet.String()` does and
//! reads it back with `types.ParseCIDR` (moby v20.10.24
//! `vendor/github.com/docker/libnetwork/types/types.go`), which, unlike
//! `net.ParseCIDR`, **keeps the host bits**: `10.0.0.2/24` is the address `10.0.0.2`
//! on a `/24`, not the network `10.0.0.0/24`. [`Cidr`] is that pair. MAC addresses
//! travel as Go's `net.HardwareAddr.String()`: six lower-case hex bytes joined by `:`.
//! Where Go sends a string that may be empty (`"Address": ""` when there is no IPv4
//! address), the SDK's field is an `Option`, `None` written as `""`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An address that is not what libnetwork sends or accepts; the message says what was
/// expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Not `ADDRESS/PREFIX`.
    #[error("invalid CIDR {0:?}: expected an address and a prefix length, such as 10.0.0.2/24")]
    Cidr(String),
    /// A prefix longer than the address.
    #[error("prefix length {len} is too long for {addr}: at most 32 for IPv4, 128 for IPv6")]
    PrefixTooLong {
        /// The address.
        addr: IpAddr,
        /// The prefix length asked for.
        len: u8,
    },
    /// Not six hex bytes.
    #[error(
        "invalid MAC address {0:?}: expected six hex bytes separated by ':' or '-', such as 02:42:ac:11:00:02"
    )]
    Mac(String),
}

/// An IP address with a prefix length, as libnetwork sends it (`10.0.0.2/24`): the
/// address keeps its host bits, [`Cidr::network`] clears them.
///
/// ```
/// use docker_plugin_sdk::network::Cidr;
///
/// let gateway: Cidr = "10.99.0.1/24".parse().unwrap();
/// assert_eq!(gateway.addr().to_string(), "10.99.0.1");
/// assert_eq!(gateway.prefix_len(), 24);
/// assert_eq!(gateway.network().to_string(), "10.99.0.0/24");
/// assert!(gateway.contains("10.99.0.200".parse().unwrap()));
/// assert!("10.99.0.1".parse::<Cidr>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    addr: IpAddr,
    prefix_len: u8,
}

impl Cidr {
    /// `addr/prefix_len`; the prefix must fit the address (32 bits for IPv4, 128 for
    /// IPv6).
    ///
    /// ```
    /// use docker_plugin_sdk::network::Cidr;
    /// let addr = Cidr::new("10.0.0.7".parse().unwrap(), 16).unwrap();
    /// assert_eq!(addr.to_string(), "10.0.0.7/16");
    /// ```
    pub fn new(addr: IpAddr, prefix_len: u8) -> Result<Self, AddressError> {
        if prefix_len > max_prefix(addr) {
            return Err(AddressError::PrefixTooLong {
                addr,
                len: prefix_len,
            });
        }
        Ok(Self { addr, prefix_len })
    }

    /// The address, host bits included.
    pub const fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub const fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Whether this is an IPv6 address.
    pub const fn is_ipv6(&self) -> bool {
        self.addr.is_ipv6()
    }

    /// The network: the address with its host bits cleared.
    pub fn network(&self) -> Self {
        let addr = match self.addr {
            IpAddr::V4(v4) => IpAddr::from((u32::from(v4) & self.mask() as u32).to_be_bytes()),
            IpAddr::V6(v6) => IpAddr::from((u128::from(v6) & self.mask()).to_be_bytes()),
        };
        Self {
            addr,
            prefix_len: self.prefix_len,
        }
    }

    /// Whether `ip` is in this network (of the same family, the prefix bits equal).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = self.mask() as u32;
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = self.mask();
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }

    /// `ip` with this network's prefix length: what an IPAM driver answers for an
    /// address it picked in a pool.
    ///
    /// ```
    /// use docker_plugin_sdk::network::Cidr;
    /// let pool: Cidr = "10.99.0.0/24".parse().unwrap();
    /// let picked = pool.with_addr("10.99.0.2".parse().unwrap()).unwrap();
    /// assert_eq!(picked.to_string(), "10.99.0.2/24");
    /// ```
    pub fn with_addr(&self, ip: IpAddr) -> Result<Self, AddressError> {
        Self::new(ip, self.prefix_len)
    }

    /// The prefix as a mask of the address's width (the low bits for IPv4).
    fn mask(&self) -> u128 {
        let width = u32::from(max_prefix(self.addr));
        let host_bits = width - u32::from(self.prefix_len);
        let all = if width == 128 {
            u128::MAX
        } else {
            (1u128 << width) - 1
        };
        all.checked_shl(host_bits).unwrap_or(0) & all
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl FromStr for Cidr {
    type Err = AddressError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || AddressError::Cidr(text.to_owned());
        let (addr, len) = text.split_once('/').ok_or_else(bad)?;
        // Go's dtoi takes decimal digits only: no sign, no spaces.
        if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let addr = addr.parse().map_err(|_| bad())?;
        let len = len.parse().map_err(|_| bad())?;
        Self::new(addr, len)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parsed(deserializer)
    }
}

/// A JSON string parsed with `FromStr`, its error the message.
fn parsed<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr<Err = AddressError>,
{
    String::deserialize(deserializer)?
        .parse()
        .map_err(serde::de::Error::custom)
}

/// A MAC address (Go's `net.HardwareAddr` of six bytes), written `02:42:ac:11:00:02`.
///
/// ```
/// use docker_plugin_sdk::network::MacAddress;
///
/// let mac: MacAddress = "02:42:AC:11:00:02".parse().unwrap();
/// assert_eq!(mac.to_string(), "02:42:ac:11:00:02");
/// assert_eq!(mac.octets(), [0x02, 0x42, 0xac, 0x11, 0x00, 0x02]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddress([u8; 6]);

impl MacAddress {
    /// The address of these six bytes.
    pub const fn new(octets: [u8; 6]) -> Self {
        Self(octets)
    }

    /// Its six bytes.
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }
}

impl From<[u8; 6]> for MacAddress {
    fn from(octets: [u8; 6]) -> Self {
        Self(octets)
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for MacAddress {
    type Err = AddressError;

    /// Six hex bytes separated by `:` or `-` (two of the forms Go's `net.ParseMAC`
    /// reads; dockerd writes the first).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || AddressError::Mac(text.to_owned());
        let separator = if text.contains('-') { '-' } else { ':' };
        let mut octets = [0u8; 6];
        let mut parts = text.split(separator);
        for octet in &mut octets {
            let part = parts.next().ok_or_else(bad)?;
            if part.len() != 2 {
                return Err(bad());
            }
            *octet = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        match parts.next() {
            Some(_) => Err(bad()),
            None => Ok(Self(octets)),
        }
    }
}

impl Serialize for MacAddress {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parsed(deserializer)
    }
}

/// `Option<T>` as Go's plain string field: `None` is `""`, and `""`, `null` or a
/// missing key read as `None` (use with `#[serde(default, with = "empty_is_none")]`).
pub(crate) mod empty_is_none {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S, T>(value: &Option<T>, serializer: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        T: Display,
    {
        match value {
            Some(value) => serializer.collect_str(value),
            None => serializer.serialize_str(""),
        }
    }

    pub(crate) fn deserialize<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: FromStr,
        T::Err: Display,
    {
        match Option::<String>::deserialize(deserializer)?.as_deref() {
            None | Some("") => Ok(None),
            Some(text) => text.parse().map(Some).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_keep_their_host_bits_as_libnetwork_parses_them() {
        let cidr: Cidr = "10.99.0.2/24".parse().unwrap();
        assert_eq!(cidr.to_string(), "10.99.0.2/24");
        assert_eq!(cidr.network().to_string(), "10.99.0.0/24");
        let v6: Cidr = "fd00::1/64".parse().unwrap();
        assert_eq!(v6.network().to_string(), "fd00::/64");
        assert!(v6.contains("fd00::ffff".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        assert_eq!(
            "0.0.0.0/0".parse::<Cidr>().unwrap().network().to_string(),
            "0.0.0.0/0"
        );
        assert_eq!(
            "::/0".parse::<Cidr>().unwrap().network().to_string(),
            "::/0"
        );
        assert_eq!(
            "10.1.2.3/32".parse::<Cidr>().unwrap().network().to_string(),
            "10.1.2.3/32"
        );
    }

    #[test]
    fn bad_cidrs_say_what_was_expected() {
        for bad in [
            "10.0.0.1",
            "10.0.0.1/",
            "10.0.0.1/+8",
            "x/8",
            "10.0.0.1/300",
        ] {
            let err = bad.parse::<Cidr>().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "invalid CIDR {bad:?}: expected an address and a prefix length, such as 10.0.0.2/24"
                )
            );
        }
        assert_eq!(
            "10.0.0.1/33".parse::<Cidr>().unwrap_err().to_string(),
            "prefix length 33 is too long for 10.0.0.1: at most 32 for IPv4, 128 for IPv6"
        );
    }

    #[test]
    fn mac_addresses_read_colons_or_dashes_and_write_colons() {
        let mac: MacAddress = "02-42-ac-11-00-02".parse().unwrap();
        assert_eq!(mac.to_string(), "02:42:ac:11:00:02");
        for bad in [
            "02:42:ac:11:00",
            "02:42:ac:11:00:02:03",
            "2:42:ac:11:00:02",
            "zz:42:ac:11:00:02",
        ] {
            assert_eq!(
                bad.parse::<MacAddress>().unwrap_err().to_string(),
                format!(
                    "invalid MAC address {bad:?}: expected six hex bytes separated by ':' or '-', such as 02:42:ac:11:00:02"
                )
            );
        }
    }
}
