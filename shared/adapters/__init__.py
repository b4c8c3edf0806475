"""Adapters between the domain and Azure services.

``shared.adapters.clients`` builds the real SDK clients from ``Settings``;
it imports no Azure SDK until a client is asked for.
"""
