"""The htmx dashboard: every HTML page, its forms, template tags and static files."""
