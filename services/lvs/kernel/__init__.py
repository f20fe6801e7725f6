"""The IO shell of lvs: the kernel IPVS table over generic netlink, and local address watching."""
