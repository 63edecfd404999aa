"""Adapters at the edge: settings, logging, the event store, the streams and brokers."""
