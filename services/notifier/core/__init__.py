"""The notifier core: keepalived's notify arguments, FIFO lines and mail texts; which target gets what."""
