"""What a host should be, computed from its facts and its variables: no I/O here."""
