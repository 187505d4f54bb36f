"""Transports reach a host and run shell commands on it: local and SSH share one interface."""

from installer.transport.base import Result, Transport
from installer.transport.local import LocalTransport

__all__ = ["LocalTransport", "Result", "Transport"]
