"""The gateway: holds client connections and relays channels from the broker."""
