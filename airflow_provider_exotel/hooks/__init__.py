"""Exotel hooks."""
