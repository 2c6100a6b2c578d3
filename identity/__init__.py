"""Visitors, leads, stitching decisions and how they are applied."""
