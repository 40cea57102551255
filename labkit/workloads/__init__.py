"""Workloads the lab runs inside pods."""
