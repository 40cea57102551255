"""What the cluster's controllers compute, as pure functions."""
