"""Exotel operators."""
