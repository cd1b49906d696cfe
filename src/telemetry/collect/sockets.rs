//! The console's own open TCP connections per remote endpoint, read from `/proc`: the sockets
//! among this process's file descriptors, matched against the kernel's TCP tables. What every
//! pool, probe and client holds open to each target, as the operating system sees it.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Established connections of this process, counted by remote address.
pub fn established() -> Result<HashMap<SocketAddr, u32>, String> {
    let inodes: HashSet<u64> = std::fs::read_dir("/proc/self/fd")
        .map_err(|e| format!("/proc/self/fd: {e}"))?
        .filter_map(|entry| {
            let link = std::fs::read_link(entry.ok()?.path()).ok()?;
            let link = link.to_str()?;
            link.strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect();
    let mut counts = HashMap::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        // tcp6 is missing when IPv6 is off; that is no error.
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for (remote, inode) in text.lines().skip(1).filter_map(established_line) {
            if inodes.contains(&inode) {
                *counts.entry(remote).or_insert(0) += 1;
            }
        }
    }
    Ok(counts)
}

/// The remote address and inode of an established connection's line in `/proc/net/tcp[6]`.
fn established_line(line: &str) -> Option<(SocketAddr, u64)> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
    if fields.len() < 10 || fields[3] != "01" {
        return None;
    }
    let (ip, port) = fields[2].split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(ip, 16).ok()?.swap_bytes(),
        )),
        32 => {
            // Four 32-bit words, each in host (little-endian) order.
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                let word = u32::from_str_radix(&ip[i * 8..i * 8 + 8], 16).ok()?;
                chunk.copy_from_slice(&word.swap_bytes().to_be_bytes());
            }
            let v6 = Ipv6Addr::from(bytes);
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
        _ => return None,
    };
    Some((SocketAddr::new(ip, port), fields[9].parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tcp_table_lines() {
        let v4 = "   3: 0100007F:A1B2 0100007F:1538 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000 20 4 30 10 -1";
        assert_eq!(
            established_line(v4),
            Some(("127.0.0.1:5432".parse().unwrap(), 4242))
        );
        let listening = v4.replace(" 01 ", " 0A ");
        assert_eq!(established_line(&listening), None);
        let v6 = "   0: 00000000000000000000000001000000:C350 0000000000000000FFFF00000100007F:18EB 01 00000000:00000000 00:00000000 00000000     0        0 77 1";
        assert_eq!(
            established_line(v6),
            Some(("127.0.0.1:6379".parse().unwrap(), 77))
        );
    }

    #[test]
    fn counts_this_process_connections() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let _a = std::net::TcpStream::connect(addr).unwrap();
        let _b = std::net::TcpStream::connect(addr).unwrap();
        let counts = established().unwrap();
        assert_eq!(counts.get(&addr), Some(&2), "{counts:?}");
    }
}
