"""Scanbook's domain: tables, rules (statuses, masking, ID numbers, eligibility), settings."""
