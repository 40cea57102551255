"""kube-proxy: Services and EndpointSlices in, the node's rules out."""
