"""chatalot-db: provision PostgreSQL for the Chatalot chat server."""

__version__ = "0.1.0"
