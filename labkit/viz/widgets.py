"""ipywidgets explorers, for where moving a control teaches more than reading.

    endpoints_slider()            kube-proxy's probability cascade for 1..N endpoints
    label_editor(lab, pod, svc)   change a pod's label, watch the Service's endpoints change
    packet_tracer(lab)            pick a source and a destination, see the verdict and the trace

The render_* functions hold everything but the widgets (text in, text out), so
they are tested without a browser. Results show in an HTML widget (<pre>),
not by printing into an Output widget: printing there needs a browser, and
without one (nbval, nbclient) the text would land in the cell's output. In notebooks, widget cells carry
`# NBVAL_IGNORE_OUTPUT`: a widget's output is its live state.
"""
from __future__ import annotations

from labkit.checks import facts


def _pre(text: str) -> str:
    import html

    return f"<pre>{html.escape(text)}</pre>"


def render_cascade(n: int) -> str:
    """The rules kube-proxy writes for n endpoints, and the share each endpoint gets."""
    chain, rules = facts.render_spread(n)
    probs = [facts.rule_probability(r) for r in rules]
    shares = facts.first_share(probs)
    lines = [f"{chain}: {n} endpoint{'s' if n != 1 else ''}", ""]
    lines.append(f"{'rule':>4}  {'--probability':>13}  {'reached by':>10}  {'share':>6}  endpoint")
    left = 1.0
    for i, (rule, p, share) in enumerate(zip(rules, probs, shares), 1):
        endpoint = rule.split(" -> ", 1)[1].split('"', 1)[0] if " -> " in rule else ""
        shown = p if "--probability" in rule else "(none)"
        lines.append(f"{i:>4}  {shown:>13}  {left:>10.3f}  {share:>6.3f}  {endpoint}")
        left -= share
    return "\n".join(lines)


def endpoints_slider(max_endpoints: int = 8, start: int = 3):
    """A slider for the number of endpoints; below it, the cascade kube-proxy would write."""
    import ipywidgets as w

    slider = w.IntSlider(value=start, min=1, max=max_endpoints, description="endpoints")
    out = w.HTML()

    def show(change=None):
        out.value = _pre(render_cascade(slider.value))

    slider.observe(show, names="value")
    show()
    return w.VBox([slider, out])


def pod_manifest(pod, labels: dict) -> str:
    """YAML for `pod` (a model Pod) with `labels` instead of its own: what `kubectl edit` would save."""
    import yaml

    containers = []
    for c in pod.containers:
        d = {"name": c.name, "image": c.image}
        if c.args:
            d["args"] = list(c.args)
        if c.ports:
            d["ports"] = [{"containerPort": p.container_port, **({"name": p.name} if p.name else {}),
                           "protocol": p.protocol} for p in c.ports]
        containers.append(d)
    doc = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": pod.meta.name, "namespace": pod.meta.namespace, "labels": dict(labels)},
           "spec": {"nodeName": pod.node_name, "containers": containers}}
    return yaml.safe_dump(doc, sort_keys=False)


def render_membership(lab, service: str) -> str:
    """Which pods the Service selects and which addresses its EndpointSlices list."""
    svc = facts.service(lab, service)
    selector = ", ".join(f"{k}={v}" for k, v in (svc.selector or {}).items()) or "(none)"
    lines = [f"Service {service} selects {selector}", "", "pod                                  labels              endpoint?"]
    listed = {a.rsplit(":", 1)[0] for a in facts.endpoint_addresses(lab, svc)}
    for p in sorted(lab.pods(), key=lambda p: p.meta.name):
        if p.meta.namespace != svc.meta.namespace:
            continue
        labels = ",".join(f"{k}={v}" for k, v in sorted(p.meta.labels.items()))
        lines.append(f"{p.meta.name:36} {labels:19} {'yes ' + p.pod_ip if p.pod_ip in listed else 'no'}")
    return "\n".join(lines)


def label_editor(lab, pod: str, service: str = "default/web", key: str = "app"):
    """A text box for one label of `pod`; Apply re-labels the pod and shows the Service's endpoints."""
    import ipywidgets as w

    current = facts.pod(lab, pod)
    box = w.Text(value=current.meta.labels.get(key, ""), description=f"{key}=")
    button = w.Button(description="apply")
    out = w.HTML()

    def show():
        out.value = _pre(render_membership(lab, service))

    def apply(_):
        p = facts.pod(lab, pod)
        labels = dict(p.meta.labels)
        labels[key] = box.value
        lab.apply(pod_manifest(p, labels), f"label editor: {pod}")
        show()

    button.on_click(apply)
    show()
    return w.VBox([w.HBox([box, button]), out])


def render_probe_and_trace(lab, source: str, destination: str) -> str:
    """A probe's one-line result, then the first node's chains as the SYN met them."""
    from labkit.probes import render_result
    from labkit.viz.diagrams import render_trace_text

    result = lab.probe(source, destination)[0]
    lines = [render_result(result)]
    try:
        t = lab.trace(source, destination)
        lines += ["", render_trace_text(t)]
    except Exception as e:  # a destination no node's chains see: say so, keep the widget alive
        lines += ["", f"(no trace: {e})"]
    return "\n".join(lines)


def packet_tracer(lab):
    """Pick a source and type a destination (ADDRESS:PORT); Send shows the verdict and the trace."""
    import ipywidgets as w

    sources = [f"{p.meta.namespace}/{p.meta.name}" for p in sorted(lab.pods(), key=lambda p: p.meta.name)]
    sources += [n for n, _ in facts.nodes(lab)] + [h for h, _ in facts.outside_hosts(lab)]
    svcs = [s for s in lab.services() if s.cluster_ip and s.ports]
    default = f"{svcs[0].cluster_ip}:{svcs[0].ports[0].port}" if svcs else ""
    src = w.Dropdown(options=sources, description="from")
    dst = w.Text(value=default, description="to")
    button = w.Button(description="send")
    out = w.HTML()

    def send(_):
        try:
            out.value = _pre(render_probe_and_trace(lab, src.value, dst.value.strip()))
        except Exception as e:  # a typo in the destination: say so, keep the widget alive
            out.value = _pre(f"could not send: {e}")

    button.on_click(send)
    return w.VBox([w.HBox([src, dst, button]), out])


def render_netpol_toggles(objects, enabled, port: int = 80, protocol: str = "TCP", before=None) -> str:
    """The pod-by-pod NetworkPolicy matrix with only the `enabled` policies ("ns/name") in force,
    the evaluator's answer; with `before` (the previous set), the cells that changed are listed."""
    from labkit.controllers.netpol import build_cluster
    from labkit.controllers.netpol.matrix import compute_matrix, render_matrix
    from labkit.model.objects import NetworkPolicy

    def matrix(on):
        kept = [o for o in objects if not isinstance(o, NetworkPolicy)
                or f"{o.meta.namespace}/{o.meta.name}" in on]
        return compute_matrix(build_cluster(kept), port, protocol)

    now = matrix(set(enabled))
    policies = sorted(f"{o.meta.namespace}/{o.meta.name}" for o in objects if isinstance(o, NetworkPolicy))
    lines = [f"{now.protocol}/{now.port}, policies in force: "
             + (", ".join(p for p in policies if p in enabled) or "none"), "",
             render_matrix(now, "grid")]
    if before is not None:
        was = matrix(set(before))
        changed = [(a, b) for a in now.names for b in now.names if now.allowed(a, b) != was.allowed(a, b)]
        lines += ["", f"{len(changed)} cell{'s' if len(changed) != 1 else ''} changed"
                  + (":" if changed else "")]
        lines += [f"  {a} -> {b}: now {'allowed' if now.allowed(a, b) else 'denied'}" for a, b in changed]
    return "\n".join(lines)


def netpol_explorer(source, port: int = 80, protocol: str = "TCP"):
    """A checkbox per NetworkPolicy: untick one and the matrix shows what the cluster would allow
    without it (the evaluator; the lab is not changed). `source` is a lab, or manifests (YAML text
    or loaded objects); on a lab, "probe" sends real packets between every pair of pods and shows
    the probed matrix beside the prediction (with all of the lab's policies, as they are in force)."""
    import ipywidgets as w

    from labkit.model.objects import NetworkPolicy

    lab = source if hasattr(source, "netpol_matrix") else None
    if lab is not None:
        objects = list(lab.netpol_objects())
    elif isinstance(source, str):
        from labkit.model.load import load_manifests

        objects = load_manifests(source, "netpol explorer")
    else:
        objects = list(source)
    names = sorted(f"{o.meta.namespace}/{o.meta.name}" for o in objects if isinstance(o, NetworkPolicy))
    boxes = [w.Checkbox(value=True, description=n, indent=False) for n in names]
    out = w.HTML()
    state = {"enabled": set(names)}

    def show(change=None):
        enabled = {b.description for b in boxes if b.value}
        before = state["enabled"] if change is not None else None
        out.value = _pre(render_netpol_toggles(objects, enabled, port, protocol, before))
        state["enabled"] = enabled

    for b in boxes:
        b.observe(show, names="value")
    controls = list(boxes)
    if lab is not None:
        from labkit.controllers.netpol.probed import render_probed_matrix

        button = w.Button(description="probe")

        def probe(_):
            try:
                out.value = _pre(render_probed_matrix(lab.netpol_matrix(port, protocol, probe=True)))
            except Exception as e:  # SCTP, a lab gone: say so, keep the widget alive
                out.value = _pre(f"could not probe: {e}")

        button.on_click(probe)
        controls.append(button)
    show()
    return w.VBox([w.HBox(controls), out])
