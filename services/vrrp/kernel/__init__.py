"""The IO shell of vrrp: raw sockets, receivers, netlink (VIPs, routes, VMACs), nftables, GARP/NA."""
