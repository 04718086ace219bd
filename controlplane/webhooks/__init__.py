"""Signed webhooks per router: endpoints, the events emitted by the services, their deliveries.

Services call `outbox.emit` inside their transaction: the event and one delivery per subscribed
endpoint are rows committed with the change itself, and Celery is asked to deliver them only
after the commit (never from the request path). See docs/webhooks.md.
"""
