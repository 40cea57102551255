"""The simulation backend: the lab's plan and rules, interpreted in pure Python."""
