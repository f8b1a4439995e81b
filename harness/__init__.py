"""The conformance harness: targets, profiles, servers, judges and reports."""
