"""The simulated dataplane: it runs the same rule text the kernel gets."""
