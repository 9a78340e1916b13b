"""The contract gateways and publishers share: protocol, channels, settings, brokers."""
