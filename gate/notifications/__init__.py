"""Notifications: webhooks in, the outbox out, commit statuses, signing, sealing, address checks."""
