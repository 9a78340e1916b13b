"""Transports: thin I/O adapters that feed and drain a Session."""
