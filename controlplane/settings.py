"""`DJANGO_SETTINGS_MODULE=controlplane.settings`, the name the contract fixes: the settings
live in config.settings."""

from config.settings import *  # noqa: F403
