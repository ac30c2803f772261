"""Downstream events: the table's effective changes published on an EventBridge bus, once each."""
