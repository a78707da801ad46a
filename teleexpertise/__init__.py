"""Tele-expertise platform: a health professional asks an expert for a remote opinion on one patient."""
