"""Parsers: one typed model per event source, each with a standalone ``parse()``.

Each parser turns a decoded JSON payload into normalised ``Alert`` objects or
raises ``ValidationError`` naming the offending field.
"""
