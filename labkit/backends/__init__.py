"""Backends: one interface (base.Backend), several ways to run the lab."""
