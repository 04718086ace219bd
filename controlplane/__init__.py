"""Routeplane control plane: routers, revisions, flags, API keys, the flags fast path."""
