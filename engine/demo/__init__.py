"""Toy demo model."""
