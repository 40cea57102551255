"""L7 routing: networking.k8s.io/v1 Ingress and Gateway API HTTPRoute.

routing.py    Ingress objects -> a routing table -> the answer for one request
gateway.py    Gateway + HTTPRoute -> the answer for one request (weights seeded)
nginx_conf.py the routing table -> the nginx.conf the lab's ingress controller runs

Why Gateway API succeeds Ingress is told in gateway.py's module docstring.
"""
