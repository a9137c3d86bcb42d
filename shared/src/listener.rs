//! Binding a TCP port with room for a crowd of connections arriving at once.
//!
//! `tokio::net::TcpListener::bind` listens with a backlog of 128, as the standard library
//! does. A flash sale opens with thousands of clients connecting in the same instant: once 128
//! connections wait to be accepted, Linux drops the next SYNs and those clients try again only
//! after their 1 s retransmission timeout. A second of silence at the opening of a sale is the
//! worst moment for it; the perf tools saw it as rates cut by two thirds when 256 connections
//! opened together (`TcpExtListenOverflows` counted the drops). These listeners ask for
//! [`BACKLOG`]; the kernel caps it at `net.core.somaxconn` (4096 by default since Linux 5.4).

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

/// Connections that may wait to be accepted.
pub const BACKLOG: u32 = 4096;

/// Binds `addr` (reusing an address in TIME_WAIT, as `TcpListener::bind` does) and listens
/// with [`BACKLOG`].
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}
