"""Exotel sensors."""
