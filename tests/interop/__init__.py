"""Differential tests against the real Debian keepalived."""
