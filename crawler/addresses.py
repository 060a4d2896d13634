"""Which IP addresses outgoing requests may reach (the SSRF policy), pure.

Public unicast addresses are always allowed. Loopback, private, link-local,
multicast, reserved and unspecified addresses are refused unless the
operator allows them all (`true`) or lists them (addresses or CIDR ranges).
IPv4-mapped and 6to4/Teredo-embedded IPv6 addresses are judged by the IPv4
address they carry, so `::ffff:127.0.0.1` is loopback.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class AddressPolicyError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    allow_all: bool = False
    allowed: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, value: str | bool | None) -> AddressPolicy:
        """`true`/`false`, or a comma-separated list of addresses and CIDR ranges."""
        if value is None or value is False:
            return cls()
        if value is True:
            return cls(allow_all=True)
        text = value.strip()
        if text.lower() in ("", "false", "0", "no", "off"):
            return cls()
        if text.lower() in ("true", "1", "yes", "on"):
            return cls(allow_all=True)
        nets: list[IPNetwork] = []
        for part in text.split(","):
            part = part.strip().strip("[]")
            if not part:
                continue
            try:
                nets.append(ipaddress.ip_network(part, strict=False))
            except ValueError as e:
                raise AddressPolicyError(
                    f"NEWSWATCH_ALLOW_PRIVATE_ADDRESSES: {part!r} is not an address or CIDR range"
                ) from e
        return cls(allowed=tuple(nets))

    def permits(self, ip: IPAddress) -> bool:
        ip = embedded_ipv4(ip)
        if is_public(ip) or self.allow_all:
            return True
        return any(ip.version == net.version and ip in net for net in self.allowed)

    def describe(self) -> str:
        if self.allow_all:
            return "true"
        return ",".join(str(n) for n in self.allowed) or "false"


def embedded_ipv4(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip.teredo is not None:
            return ip.teredo[1]
        # IPv4-compatible (deprecated) ::a.b.c.d
        if int(ip) >> 32 == 0 and int(ip) > 1:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def is_public(ip: IPAddress) -> bool:
    ip = embedded_ipv4(ip)
    return bool(
        ip.is_global
        and not ip.is_multicast
        and not ip.is_reserved
        and not ip.is_unspecified
        and not ip.is_loopback
        and not ip.is_link_local
        and not ip.is_private
    )
