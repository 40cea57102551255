"""Address and port allocation, the way the cluster's allocators do it.

Three allocators, three behaviours a learner can observe on a real cluster:

- Node pod CIDRs (kube-controller-manager's range allocator): node i gets
  the i-th /24 of the pod CIDR, in order of creation, skipping taken ones.
- Pod IPs (kindnet's host-local IPAM): sequential from .2 of the node's
  /24 (.1 is the node side of the pod routes, the last is broadcast).
- ClusterIPs and NodePorts (the API server's bitmap allocators): random, in
  the upper part of the range first, so that the lower part stays free for
  addresses people choose by hand (KEP-3070, KEP-3668). The scan is the real
  one: a random start, then forward with wrap-around.

The allocators are small mutable objects used inside one pure call; nothing
here reads a clock or a global random source: the caller passes the rng.
"""
from __future__ import annotations

import ipaddress
import random
from typing import Optional


def parse_ip(text: str) -> Optional[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The address, or None when `text` is not one."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def nth_subnet(cidr: str, prefix_len: int, index: int) -> str:
    """The index-th subnet of size /prefix_len inside cidr ("10.244.1.0/24")."""
    net = ipaddress.ip_network(cidr)
    size = 1 << (net.max_prefixlen - prefix_len)
    return str(ipaddress.ip_network((int(net.network_address) + index * size, prefix_len)))


def subnet_count(cidr: str, prefix_len: int) -> int:
    net = ipaddress.ip_network(cidr)
    return 1 << max(0, prefix_len - net.prefixlen)


class NodeCIDRAllocator:
    """Hands out the node /24s of the pod CIDR, lowest free first."""

    def __init__(self, pod_cidr: str, mask_size: int):
        self.pod_cidr = pod_cidr
        self.mask_size = mask_size
        self.taken: set[str] = set()

    def reserve(self, cidr: str) -> None:
        self.taken.add(str(ipaddress.ip_network(cidr, strict=False)))

    def allocate(self) -> Optional[str]:
        for i in range(subnet_count(self.pod_cidr, self.mask_size)):
            cidr = nth_subnet(self.pod_cidr, self.mask_size, i)
            if cidr not in self.taken:
                self.taken.add(cidr)
                return cidr
        return None


class SequentialIPAllocator:
    """host-local style: the next free address after the last one handed out.

    For a node's 10.244.1.0/24 that is 10.244.1.2, .3, ... up to .254, then
    round again from .2; the network address, .1 (the gateway) and the
    broadcast address are never handed out. Like host-local's
    last_reserved_ip file, `last` remembers where the previous allocation
    stopped, so a pod that replaces another gets a new address rather than
    the one just freed (what a learner sees on a real kind node).
    """

    def __init__(self, cidr: str, first_offset: int = 2, last: str = ""):
        self.net = ipaddress.ip_network(cidr, strict=False)
        self.first_offset = first_offset
        self.taken: set[str] = set()
        self.last = last if self.contains(last) else ""

    def contains(self, ip: str) -> bool:
        addr = parse_ip(ip)
        return addr is not None and addr in self.net

    def reserve(self, ip: str) -> None:
        self.taken.add(str(ipaddress.ip_address(ip)))

    def capacity(self) -> int:
        last = self.net.num_addresses - (2 if self.net.version == 4 else 1)
        return max(0, last - self.first_offset + 1)

    def allocate(self) -> Optional[str]:
        base = int(self.net.network_address)
        n = self.capacity()
        start = 0
        if self.last:
            start = (int(ipaddress.ip_address(self.last)) - base - self.first_offset + 1) % max(n, 1)
        for i in range(n):
            ip = str(ipaddress.ip_address(base + self.first_offset + (start + i) % n))
            if ip not in self.taken:
                self.taken.add(ip)
                self.last = ip
                return ip
        return None


def _band_offset(range_size: int, lo: int, hi: int, step: int) -> int:
    """Size of the lower ("static") band: range_size/step clamped to [lo, hi].

    As calculateRangeOffset: 0 (no static band) for ranges of `lo` or fewer.
    """
    if range_size <= lo:
        return 0
    return min(max(lo, range_size // step), hi)


class BitmapAllocator:
    """The API server's allocator over `size` slots, numbered 0..size-1.

    Dynamic allocation picks a random slot in [offset, size) and scans forward
    with wrap-around for a free one; only when that upper band is full does
    it look in [0, offset) the same way.
    """

    def __init__(self, size: int, offset: int):
        self.size = size
        self.offset = offset
        self.taken: set[int] = set()

    def reserve(self, slot: int) -> None:
        self.taken.add(slot)

    def free(self) -> int:
        return self.size - len(self.taken)

    def _scan(self, lo: int, hi: int, rng: random.Random) -> Optional[int]:
        n = hi - lo
        if n <= 0:
            return None
        start = rng.randrange(n)
        for i in range(n):
            slot = lo + (start + i) % n
            if slot not in self.taken:
                return slot
        return None

    def allocate(self, rng: random.Random) -> Optional[int]:
        slot = self._scan(self.offset, self.size, rng)
        if slot is None:
            slot = self._scan(0, self.offset, rng)
        if slot is not None:
            self.taken.add(slot)
        return slot


class ServiceIPAllocator:
    """ClusterIPs from the service CIDR (pkg/registry/core/service/ipallocator).

    Slot 0 is the first address after the network address (10.96.0.1); for
    IPv4 the broadcast address is excluded. The static band is
    min(max(16, size/16), 256) addresses, so on a /16 dynamic ClusterIPs start
    at 10.96.1.1.
    """

    def __init__(self, cidr: str):
        self.cidr = cidr
        self.net = ipaddress.ip_network(cidr, strict=False)
        size = self.net.num_addresses - (2 if self.net.version == 4 else 1)
        if self.net.version == 6:
            size = min(size, 65536 - 1)
        offset = _band_offset(self.net.num_addresses, 16, 256, 16)
        self.bitmap = BitmapAllocator(max(0, size), min(offset, max(0, size)))

    @property
    def size(self) -> int:
        return self.bitmap.size

    def slot_of(self, ip: str) -> Optional[int]:
        """The slot of an address, or None if it is not allocatable here."""
        addr = parse_ip(ip)
        if addr is None or addr.version != self.net.version or addr not in self.net:
            return None
        slot = int(addr) - int(self.net.network_address) - 1
        return slot if 0 <= slot < self.size else None

    def ip_of(self, slot: int) -> str:
        return str(ipaddress.ip_address(int(self.net.network_address) + 1 + slot))

    def is_taken(self, ip: str) -> bool:
        slot = self.slot_of(ip)
        return slot is not None and slot in self.bitmap.taken

    def reserve(self, ip: str) -> bool:
        """Mark a given address used; False if it is not in this range."""
        slot = self.slot_of(ip)
        if slot is None:
            return False
        self.bitmap.reserve(slot)
        return True

    def allocate(self, rng: random.Random) -> Optional[str]:
        slot = self.bitmap.allocate(rng)
        return None if slot is None else self.ip_of(slot)


class NodePortAllocator:
    """NodePorts from the range (pkg/registry/core/service/portallocator).

    The static band is min(max(16, size/32), 128) ports: with the default
    30000-32767 range dynamic NodePorts come from 30086-32767.
    """

    def __init__(self, port_range: tuple[int, int]):
        self.first, self.last = port_range
        size = self.last - self.first + 1
        self.bitmap = BitmapAllocator(size, _band_offset(size, 16, 128, 32))

    def contains(self, port: int) -> bool:
        return self.first <= port <= self.last

    def is_taken(self, port: int) -> bool:
        return (port - self.first) in self.bitmap.taken

    def reserve(self, port: int) -> bool:
        if not self.contains(port):
            return False
        self.bitmap.reserve(port - self.first)
        return True

    def allocate(self, rng: random.Random) -> Optional[int]:
        slot = self.bitmap.allocate(rng)
        return None if slot is None else self.first + slot

