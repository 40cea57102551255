"""Cluster DNS as a pod sees it: resolv.conf, the stub resolver, the server.

controllers/dns.py computes the records; this package resolves names the way
a pod's C library does (resolver.py), configures a real DNS server with the
same records for the kernel lab (server_conf.py), and builds and reads DNS
packets for probes (query.py).
"""
