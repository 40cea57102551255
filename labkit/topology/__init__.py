"""The lab's shape as pure data: a kind config -> ClusterTopology -> LabPlan.

No kernel knowledge here: the same plan feeds the netns backend (which makes
namespaces and veths) and the simulation (which models them).
"""
