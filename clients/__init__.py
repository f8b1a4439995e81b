"""Async XMPP clients and readers used by the conformance suites."""
