"""S3 endpoint URLs: the part that may be shown, the part a client may use, and which ones a deployment allows.

An ``endpoint_url`` may carry user info (``https://user:password@host``): that part is a secret. It is shown
masked, and never reaches the HTTP client: :func:`client_endpoint` rebuilds the URL from the parsed scheme, host,
port and path, so the host an :class:`AccessPolicy` checked is the host that is contacted, whatever another URL
parser would make of a backslash, ``@`` or user info.

:class:`AccessPolicy` is what a process running configurations it did not write (the workspace service) lets a
broker reach: endpoints matching an allow-list, and its own ambient identity (the AWS credential chain) only if it
opts in. Without a policy (the library, the CLI: the user's configuration, the user's identity) nothing is
restricted.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

__all__ = ["AccessPolicy", "Endpoint", "client_endpoint", "parse_endpoint", "safe_endpoint", "split_userinfo",
           "url_host"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}")
_PATTERN = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<host>\[[^\]/]*\]|[^/:@\[\]]*)(?::(?P<port>[^/]*))?/?")


def split_userinfo(url: str) -> tuple[str, str | None, str]:
    """Split ``scheme://userinfo@rest`` into ``("scheme://", "userinfo", "rest")`` (``None``: no user info).

    The split is the one :func:`urllib.parse.urlsplit` makes (the last ``@`` of the authority).
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "", None, url
    end = len(rest)
    for stop in "/?#":
        found = rest.find(stop)
        if found != -1:
            end = min(end, found)
    userinfo, at, host = rest[:end].rpartition("@")
    if not at:
        return scheme + sep, None, rest
    return scheme + sep, userinfo, host + rest[end:]


def safe_endpoint(url: str | None) -> str | None:
    """Return an endpoint URL without its ``user:password@`` part, for messages."""
    if not url:
        return url
    scheme, userinfo, rest = split_userinfo(url)
    return url if userinfo is None else scheme + rest


def url_host(host: str) -> str:
    """Write a host as a URL or ``host:path`` needs it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class Endpoint:
    """A parsed, checked ``http(s)://host[:port][/path]`` URL (user info, query and fragment dropped)."""

    scheme: str
    host: str
    port: int
    path: str = ""
    explicit_port: bool = False

    @property
    def url(self) -> str:
        """The URL rebuilt from its checked parts: what an HTTP client is given."""
        port = f":{self.port}" if self.explicit_port else ""
        return f"{self.scheme}://{url_host(self.host)}{port}{self.path}"

    @property
    def origin(self) -> str:
        """``scheme://host:port``: where a client connects (for messages)."""
        return f"{self.scheme}://{url_host(self.host)}:{self.port}"


def _host(text: str) -> str | None:
    """Return a host name or IP address in canonical form (lower case, IPv6 compressed), or None if invalid."""
    text = text.lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        try:
            return ipaddress.IPv6Address(text).compressed
        except ValueError:
            return None
    text = text.removesuffix(".")
    return text if _HOST_NAME.fullmatch(text) else None


def parse_endpoint(url: str) -> Endpoint:
    """Parse an endpoint URL the one way both the allow-list and the client use.

    Raises:
        ValueError: Not an ``http://`` or ``https://`` URL with a valid host and port (the message names the
            URL without its user info).
    """
    shown = safe_endpoint(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{shown!r} is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"{shown!r} is not an http:// or https:// URL")
    netloc = parts.netloc.rpartition("@")[2]
    host_part = netloc.rsplit(":", 1)[0] if port is not None or netloc.endswith(":") else netloc
    host = _host(host_part) if host_part else None
    if host is None:
        raise ValueError(f"{shown!r} has no valid host name or IP address")
    return Endpoint(scheme=scheme, host=host, port=_DEFAULT_PORTS[scheme] if port is None else port,
                    path=parts.path, explicit_port=port is not None)


def client_endpoint(url: str | None) -> str | None:
    """Return the URL an HTTP client may be given for ``endpoint_url`` (None: the store's default endpoint).

    Raises:
        ValueError: The URL cannot be parsed (see :func:`parse_endpoint`).
    """
    return parse_endpoint(url).url if url else None


@dataclass(frozen=True)
class _Pattern:
    scheme: str
    host: str  # "*", "*.suffix", a host name or a canonical IP address
    port: int | None  # None: any port

    def matches(self, endpoint: Endpoint) -> bool:
        if endpoint.scheme != self.scheme or (self.port is not None and endpoint.port != self.port):
            return False
        if self.host == "*":
            return True
        if self.host.startswith("*."):
            return endpoint.host.endswith(self.host[1:])
        return endpoint.host == self.host


def _pattern(text: str) -> _Pattern:
    hint = "expected scheme://host[:port], e.g. https://*.example.com, http://10.0.0.5:9000 or http://127.0.0.1:*"
    match = _PATTERN.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"endpoint pattern {text!r} is not valid: {hint}")
    scheme, host_text, port_text = match["scheme"], match["host"], match["port"]
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"endpoint pattern {text!r}: the scheme must be http or https")
    host: str | None = host_text
    if host_text.startswith("*."):
        suffix = _host(host_text[2:])
        host = f"*.{suffix}" if suffix and ":" not in suffix else None
    elif host_text != "*":
        host = _host(host_text)
    if not host:
        raise ValueError(f"endpoint pattern {text!r}: {host_text!r} is not a host name, an IP address, * or "
                         f"*.domain; {hint}")
    if port_text is None:
        return _Pattern(scheme, host, _DEFAULT_PORTS[scheme])
    if port_text == "*":
        return _Pattern(scheme, host, None)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"endpoint pattern {text!r}: the port must be a number from 1 to 65535 or *")
    return _Pattern(scheme, host, int(port_text))


def _server_pattern(text: str) -> str:
    """Check one NFS server pattern (a host name, an IP address, ``*.domain`` or ``*``); return it canonical."""
    text = text.strip().lower()
    if text == "*":
        return text
    if text.startswith("*."):
        suffix = _host(text[2:])
        if suffix and ":" not in suffix:
            return f"*.{suffix}"
    elif (host := _host(text)) is not None:
        return host
    raise ValueError(f"NFS server pattern {text!r} is not valid: expected a host name, an IP address, *.domain "
                     "or *")


@dataclass(frozen=True)
class AccessPolicy:
    """What a broker may reach beyond its configuration's own keys and endpoint.

    Args:
        endpoint_allow: Patterns of the custom ``endpoint_url`` values a broker may contact, matched on scheme,
            host and port: ``scheme://host[:port]`` where ``host`` is a name, an IP address (IPv6 in brackets),
            ``*.domain`` (any name under ``domain``, not ``domain`` itself) or ``*``, and ``port`` a number or
            ``*`` (omitted: the scheme's default, 80 or 443). Names compare case-insensitively; nothing is
            resolved (a pattern names what the URL says). ``None``: any endpoint. A configuration without
            ``endpoint_url`` (the store's own endpoint, AWS) is always allowed.
        ambient_credentials: Sign requests of configurations without credentials with this process's own
            identity (the AWS credential chain: environment, profile, instance role). False: such requests go
            unsigned (anonymous), and the chain is never consulted.
        nfs_server_allow: The NFS servers a broker may connect to with its userspace client (direct mode,
            which speaks as this process's uid and gid): host names, IP addresses, ``*.domain`` or ``*``, compared
            as written (nothing is resolved). ``None``: any server. An export mounted on this machine (mounted
            mode) is always allowed: the operator mounted it.

    Raises:
        ValueError: A pattern is not valid (the message shows the expected form).
    """

    endpoint_allow: tuple[str, ...] | None = None
    ambient_credentials: bool = True
    nfs_server_allow: tuple[str, ...] | None = None
    _patterns: tuple[_Pattern, ...] = field(init=False, repr=False, compare=False, default=())
    _servers: tuple[str, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        if self.endpoint_allow is not None:
            object.__setattr__(self, "endpoint_allow", tuple(self.endpoint_allow))
            object.__setattr__(self, "_patterns", tuple(_pattern(p) for p in self.endpoint_allow))
        if self.nfs_server_allow is not None:
            object.__setattr__(self, "nfs_server_allow", tuple(self.nfs_server_allow))
            object.__setattr__(self, "_servers", tuple(_server_pattern(p) for p in self.nfs_server_allow))

    @property
    def restricted(self) -> bool:
        """True when something is refused (an allow-list is set, or ambient credentials are off)."""
        return self.endpoint_allow is not None or self.nfs_server_allow is not None or not self.ambient_credentials

    def nfs_server_allowed(self, server: str) -> bool:
        """Return True if a broker may connect to the NFS server ``server`` itself (its userspace client).

        A kernel mount of the export on this machine is the operator's own doing and needs no permission.
        """
        if self.nfs_server_allow is None:
            return True
        host = _host(server)
        if host is None:
            return False
        return any(p == "*" or (p.startswith("*.") and host.endswith(p[1:])) or host == p for p in self._servers)

    def endpoint_allowed(self, url: str | None) -> bool:
        """Return True if a broker may contact ``url`` (None: the store's default endpoint, always allowed)."""
        if not url or self.endpoint_allow is None:
            return True
        try:
            endpoint = parse_endpoint(url)
        except ValueError:
            return False
        return any(p.matches(endpoint) for p in self._patterns)
