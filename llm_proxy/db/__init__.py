"""Connections: plain DBAPI drivers, SQLAlchemy engines and the migration lock."""
