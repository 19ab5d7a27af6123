//! The few rtnetlink requests a sandbox needs, over a raw `NETLINK_ROUTE` socket
//! (libc; the harness has no netlink crate): move a link to another network namespace,
//! rename it, set its MAC address and bring it up or down, add an address, add a route.
//! Each request is acknowledged (`NLM_F_ACK`) and its error returned as an
//! [`io::Error`].
//!
//! A netlink socket talks to the network namespace of the thread that opened it:
//! [`sandbox`](super::sandbox) opens one on a thread that entered the container's
//! namespace.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::network::Cidr;

const NLMSG_HDRLEN: usize = 16;
const RTA_HDRLEN: usize = 4;

fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// One request being built: header, fixed part, attributes.
struct Message {
    buf: Vec<u8>,
}

impl Message {
    fn new(kind: u16, flags: u16, fixed: &[u8]) -> Self {
        let mut buf = vec![0u8; NLMSG_HDRLEN];
        buf[4..6].copy_from_slice(&kind.to_ne_bytes());
        let flags = flags | (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
        buf[6..8].copy_from_slice(&flags.to_ne_bytes());
        buf[8..12].copy_from_slice(&1u32.to_ne_bytes());
        buf.extend_from_slice(fixed);
        buf.resize(align(buf.len()), 0);
        Self { buf }
    }

    fn attr(mut self, kind: u16, data: &[u8]) -> Self {
        let len = RTA_HDRLEN + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(align(self.buf.len()), 0);
        self
    }

    fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// `struct ifinfomsg` for link `index`, with `flags` changed where `change` says.
fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; 16] {
    let mut m = [0u8; 16];
    m[0] = libc::AF_UNSPEC as u8;
    m[4..8].copy_from_slice(&(index as i32).to_ne_bytes());
    m[8..12].copy_from_slice(&flags.to_ne_bytes());
    m[12..16].copy_from_slice(&change.to_ne_bytes());
    m
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

fn family(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    }
}

/// A `NETLINK_ROUTE` socket of the calling thread's network namespace.
pub(super) struct Netlink {
    fd: OwnedFd,
}

impl Netlink {
    pub(super) fn open() -> io::Result<Self> {
        // SAFETY: plain socket(2); the fd is owned right away.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a new, valid descriptor nobody else owns.
        Ok(Self {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Sends `message` and waits for its acknowledgement.
    fn request(&self, message: Message) -> io::Result<()> {
        let buf = message.finish();
        // SAFETY: buf is a valid buffer of buf.len() bytes; the kernel is the peer
        // (a zeroed sockaddr_nl with nl_family set).
        let sent = unsafe {
            let mut addr: libc::sockaddr_nl = std::mem::zeroed();
            addr.nl_family = libc::AF_NETLINK as u16;
            libc::sendto(
                self.fd.as_raw_fd(),
                buf.as_ptr().cast(),
                buf.len(),
                0,
                (&raw const addr).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut reply = vec![0u8; 8192];
        loop {
            // SAFETY: reply is a valid, writable buffer of reply.len() bytes.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    reply.as_mut_ptr().cast(),
                    reply.len(),
                    0,
                )
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut at = 0;
            let n = n as usize;
            while at + NLMSG_HDRLEN <= n {
                let len =
                    u32::from_ne_bytes([reply[at], reply[at + 1], reply[at + 2], reply[at + 3]])
                        as usize;
                let kind = u16::from_ne_bytes([reply[at + 4], reply[at + 5]]);
                if kind == libc::NLMSG_ERROR as u16 && at + NLMSG_HDRLEN + 4 <= n {
                    let b = &reply[at + NLMSG_HDRLEN..at + NLMSG_HDRLEN + 4];
                    let code = i32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
                    return if code == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::from_raw_os_error(-code))
                    };
                }
                if len < NLMSG_HDRLEN {
                    break;
                }
                at += align(len);
            }
        }
    }

    /// Moves link `index` into the network namespace `netns_fd`.
    pub(super) fn move_to_netns(&self, index: u32, netns_fd: RawFd) -> io::Result<()> {
        let fd = netns_fd as u32;
        self.request(
            Message::new(libc::RTM_NEWLINK, 0, &ifinfomsg(index, 0, 0))
                .attr(libc::IFLA_NET_NS_FD, &fd.to_ne_bytes()),
        )
    }

    /// Renames link `index` (it must be down).
    pub(super) fn rename(&self, index: u32, name: &str) -> io::Result<()> {
        let mut bytes = name.as_bytes().to_vec();
        bytes.push(0);
        self.request(
            Message::new(libc::RTM_NEWLINK, 0, &ifinfomsg(index, 0, 0))
                .attr(libc::IFLA_IFNAME, &bytes),
        )
    }

    /// Sets link `index`'s MAC address.
    pub(super) fn set_mac(&self, index: u32, mac: [u8; 6]) -> io::Result<()> {
        self.request(
            Message::new(libc::RTM_NEWLINK, 0, &ifinfomsg(index, 0, 0))
                .attr(libc::IFLA_ADDRESS, &mac),
        )
    }

    /// Brings link `index` up or down.
    pub(super) fn set_up(&self, index: u32, up: bool) -> io::Result<()> {
        let flags = if up { libc::IFF_UP as u32 } else { 0 };
        self.request(Message::new(
            libc::RTM_NEWLINK,
            0,
            &ifinfomsg(index, flags, libc::IFF_UP as u32),
        ))
    }

    /// Adds `address` (with its prefix length) to link `index`.
    pub(super) fn add_address(&self, index: u32, address: Cidr) -> io::Result<()> {
        let ip = address.addr();
        let mut m = [0u8; 8];
        m[0] = family(ip);
        m[1] = address.prefix_len();
        m[4..8].copy_from_slice(&index.to_ne_bytes());
        let bytes = ip_bytes(ip);
        self.request(
            Message::new(
                libc::RTM_NEWADDR,
                (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16,
                &m,
            )
            .attr(libc::IFA_LOCAL, &bytes)
            .attr(libc::IFA_ADDRESS, &bytes),
        )
    }

    /// Adds a route to `destination` through link `index`: via `next_hop`, or
    /// directly connected (scope link) without one.
    pub(super) fn add_route(
        &self,
        index: u32,
        destination: Cidr,
        next_hop: Option<IpAddr>,
    ) -> io::Result<()> {
        let dst = destination.network();
        let mut m = [0u8; 12];
        m[0] = family(dst.addr());
        m[1] = dst.prefix_len();
        m[4] = libc::RT_TABLE_MAIN;
        m[5] = libc::RTPROT_BOOT;
        m[6] = if next_hop.is_some() {
            libc::RT_SCOPE_UNIVERSE
        } else {
            libc::RT_SCOPE_LINK
        };
        m[7] = libc::RTN_UNICAST;
        let mut message = Message::new(
            libc::RTM_NEWROUTE,
            (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16,
            &m,
        );
        if dst.prefix_len() > 0 {
            message = message.attr(libc::RTA_DST, &ip_bytes(dst.addr()));
        }
        if let Some(hop) = next_hop {
            message = message.attr(libc::RTA_GATEWAY, &ip_bytes(hop));
        }
        self.request(message.attr(libc::RTA_OIF, &index.to_ne_bytes()))
    }
}

/// The index of link `name` in the calling thread's network namespace.
pub(super) fn link_index(name: &str) -> io::Result<u32> {
    let c_name = std::ffi::CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a link name"))?;
    // SAFETY: c_name is a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    if index == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(index)
    }
}
