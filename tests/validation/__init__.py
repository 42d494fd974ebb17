"""Validation checks against a real local PostgreSQL."""
