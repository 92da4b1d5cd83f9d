"""Shared fixtures for gofer's own tests (the gofer pytest plugin is loaded via pyproject)."""
