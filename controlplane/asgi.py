"""`controlplane.asgi:application`, the ASGI entry point the contract names: the application
is built in config.asgi."""

from config.asgi import application

__all__ = ["application"]
