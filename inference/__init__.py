"""Engines, the OpenAI-compatible gateway, the router, the event publisher (SDK) and the load generator."""
