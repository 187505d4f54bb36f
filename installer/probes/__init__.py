"""Probes read a host, changing nothing; each is one round trip."""
