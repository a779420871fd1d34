"""Shared test support: fakes, fixtures and helpers reused across the suite."""
