"""Diagrams of the live lab (graphviz SVG) and ipywidgets explorers.

    labkit.viz.topology(lab)            nodes, pods and their addresses, the node network, outside hosts
    labkit.viz.packet_path(lab, result) one probe's path across namespaces, with each address change
    labkit.viz.trace_walk(trace)        the chain-by-chain walk of a traced packet
    labkit.viz.nat_path(lab, result)    a connection through every NAT it met (node, NAT gateway,
                                        load balancer), there and back

Each returns a Diagram: its `.dot` is the DOT source (what tests compare), and
in a notebook it shows as a small SVG (graphviz's `dot` draws it). The
render_*_dot functions are the pure parts: data in, DOT text out.
Widgets live in labkit.viz.widgets (imported on use: it needs ipywidgets).
"""
from labkit.viz.diagrams import (
    Diagram,
    packet_path,
    path_hops,
    render_path_dot,
    render_topology_dot,
    render_trace_dot,
    topology,
    trace_walk,
)
from labkit.viz.nat import nat_hops, nat_path

__all__ = ["Diagram", "packet_path", "path_hops", "render_path_dot", "render_topology_dot",
           "render_trace_dot", "topology", "trace_walk", "nat_hops", "nat_path"]
