"""Exotel triggers."""
