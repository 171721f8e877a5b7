"""Ingestion: spooling pushed or uploaded payloads and reading them back as a stream of records."""
