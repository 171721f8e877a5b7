"""SSRF-safe outbound HTTP: the one way Aurum code fetches a URL that a tenant (or anyone) supplied.

Scheduled pulls, webhooks and actions all send requests to URLs typed in by stewards. A
plain HTTP client would let such a URL reach what only the server can reach: the cloud
metadata service (credentials), the database, Redis, the admin of a sidecar. `fetch()`
closes that door:

* Only `http` and `https`, no `user:password@` in the URL (credentials belong in a header,
  where they are not logged with the URL and cannot hide the real host: `http://a@b/`).
* The host is resolved exactly once, every address of the answer is checked (one bad
  address refuses the whole answer, so a mixed public/private DNS answer cannot win a
  race), and the socket connects to the checked address itself. There is no second
  lookup between check and connect, so DNS rebinding has no gap to use. For https the TLS
  layer still verifies the certificate against the *hostname* (SNI and hostname check),
  while the TCP connection goes to the checked IP.
* Refused addresses: loopback, private (RFC 1918, fc00::/7), link-local, shared (100.64/10),
  multicast, broadcast, unspecified, reserved and documentation ranges, the IPv6 forms
  that embed one of these (IPv4-mapped, IPv4-translated, NAT64, 6to4, Teredo), and the
  cloud metadata services. The list is explicit here rather than taken from
  `ipaddress.is_global`, whose answers differ between Python releases (3.11 calls
  224.0.0.1 and 64:ff9b::a00:1 global); `is_global` is still consulted as a backstop.
* A platform admin may let one host through for one tenant (or all) with an
  `OutboundAllowRule`, e.g. a receiver on the private network. Cloud metadata addresses
  are never let through, whatever the rules say.
* Every redirect is a new destination: it is parsed, resolved and checked again, at most
  `max_redirects` times; credentials headers are dropped when the origin changes.
  `follow_redirects=False` returns a 3xx as it came (Standard Webhooks requires that).
* One deadline covers the whole call (connect, TLS, request, headers, body, redirects):
  per-operation socket timeouts shrink with it and a watchdog shuts the socket at the
  deadline, so a server dripping one byte a second cannot hold a worker. The body is read
  in chunks and capped at `max_bytes`; no compression is asked for (no zip bombs).

Limits: DNS resolution itself is bounded by the system resolver's own timeout, not by
`timeout`. No proxy is ever used (a proxy would resolve the name again, after the check).
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import ipaddress
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from typing import Any, Literal
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

__all__ = [
    "OutboundBlocked",
    "OutboundConnectionError",
    "OutboundError",
    "OutboundResponse",
    "OutboundTimeout",
    "OutboundTooLarge",
    "OutboundTooManyRedirects",
    "address_block_reason",
    "check_url",
    "fetch",
    "is_cloud_metadata",
    "normalize_host",
]

DEFAULT_PORTS = {"http": 80, "https": 443}
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Dropped when a redirect leaves the origin, as browsers and requests do.
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
# Set by fetch itself: a caller's Host could point the request at another virtual host than
# the one checked, and hand-made framing headers invite request smuggling.
RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
USER_AGENT = "Aurum-Outbound/1.0"
CHUNK_BYTES = 64 * 1024

# Never reachable, not even through an allow rule: they hand out the machine's credentials.
CLOUD_METADATA: dict[IPAddress, str] = {
    ipaddress.ip_address("169.254.169.254"): "the cloud metadata service (AWS, GCP, Azure, OCI, DigitalOcean…)",
    ipaddress.ip_address("169.254.170.2"): "the AWS ECS task metadata/credentials endpoint",
    ipaddress.ip_address("fd00:ec2::254"): "the AWS IPv6 metadata service",
    ipaddress.ip_address("100.100.100.200"): "the Alibaba Cloud metadata service",
    ipaddress.ip_address("168.63.129.16"): "the Azure WireServer (host agent)",
}

_NETWORKS_V4: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "an unspecified/'this network' address"),
    ("10.0.0.0/8", "a private address (RFC 1918)"),
    ("100.64.0.0/10", "a shared carrier-grade NAT address (RFC 6598)"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address"),
    ("172.16.0.0/12", "a private address (RFC 1918)"),
    ("192.0.0.0/24", "an IETF protocol assignment (reserved)"),
    ("192.0.2.0/24", "a documentation address (reserved)"),
    ("192.88.99.0/24", "a 6to4 relay anycast address (reserved)"),
    ("192.168.0.0/16", "a private address (RFC 1918)"),
    ("198.18.0.0/15", "a benchmarking address (reserved)"),
    ("198.51.100.0/24", "a documentation address (reserved)"),
    ("203.0.113.0/24", "a documentation address (reserved)"),
    ("224.0.0.0/4", "a multicast address"),
    ("255.255.255.255/32", "the broadcast address"),
    ("240.0.0.0/4", "a reserved address (240/4)"),
)
_NETWORKS_V6: tuple[tuple[str, str], ...] = (
    ("::/128", "the unspecified address"),
    ("::1/128", "a loopback address"),
    ("::/8", "a reserved address (::/8, incl. IPv4-compatible)"),
    ("64:ff9b:1::/48", "a local-use NAT64 address"),
    ("100::/64", "a discard-only address"),
    ("2001::/23", "an IETF protocol assignment (reserved, incl. Teredo)"),
    ("2001:db8::/32", "a documentation address (reserved)"),
    ("fc00::/7", "a unique local (private) address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address (deprecated, private)"),
    ("ff00::/8", "a multicast address"),
)
BLOCKED_NETWORKS: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.ip_network(network), reason) for network, reason in (*_NETWORKS_V4, *_NETWORKS_V6)
)
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # RFC 2765 (SIIT)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 well-known prefix
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$"
)


# --- errors ---------------------------------------------------------------------------------------


class OutboundError(Exception):
    """The request could not be made or completed.

    `url` (and the message) name the URL being fetched when it failed, without credentials
    and query string, so that the error can be logged and stored with a delivery attempt.
    """

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__(message)
        self.url = url


class OutboundBlocked(OutboundError):
    """Refused before any byte was sent: scheme, credentials in the URL, or a forbidden address.

    `address` and `reason` name the offending address and why, when an address was the cause.
    """

    def __init__(self, message: str, *, url: str = "", address: str = "", reason: str = "") -> None:
        super().__init__(message, url=url)
        self.address = address
        self.reason = reason


class OutboundTimeout(OutboundError):
    """The deadline passed (connect, TLS, waiting for or reading the response)."""


class OutboundTooLarge(OutboundError):
    """The response body exceeded `max_bytes` (only with `on_too_large="raise"`)."""


class OutboundTooManyRedirects(OutboundError):
    """More than `max_redirects` redirects."""


class OutboundConnectionError(OutboundError):
    """Name not resolved, connection refused or reset, TLS failure, malformed HTTP."""


# --- the response ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboundResponse:
    """What came back. `headers` is case-insensitive (`headers["content-type"]`, `get_all`)."""

    status: int
    headers: Message
    body: bytes
    url: str  # the final URL, after redirects
    elapsed_ms: int  # the whole call, redirects included
    remote_ip: str  # the checked address the last response came from
    truncated: bool = False  # body cut at max_bytes (on_too_large="truncate")
    redirects: tuple[str, ...] = ()  # URLs that answered with a followed redirect, in order
    reason: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def text(self, encoding: str | None = None) -> str:
        charset = encoding or self.headers.get_content_charset() or "utf-8"
        return self.body.decode(charset, errors="replace")


# --- address policy -------------------------------------------------------------------------------


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 address stands for, and the form's name, if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "IPv4-mapped"
    if ip in _IPV4_TRANSLATED:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "IPv4-translated"
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64"
    if ip.sixtofour is not None:
        return ip.sixtofour, "6to4"
    if ip.teredo is not None:
        return ip.teredo[1], "Teredo"
    return None


def _plain(ip: IPAddress) -> IPAddress:
    # A scope id (fe80::1%eth0) would make equal addresses compare unequal.
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        return ipaddress.IPv6Address(str(ip).split("%", 1)[0])
    return ip


def is_cloud_metadata(ip: IPAddress) -> bool:
    """True for a cloud metadata address, also when written in an IPv6 form that embeds it."""
    ip = _plain(ip)
    if ip in CLOUD_METADATA:
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        return embedded is not None and embedded[0] in CLOUD_METADATA
    return False


def address_block_reason(ip: IPAddress) -> str | None:
    """Why `fetch` refuses to connect to `ip` ("a loopback address", …), or None if it may.

    IPv4-mapped, IPv4-translated and NAT64 (64:ff9b::/96) addresses are judged entirely by
    the IPv4 address inside, which is where the packets end up (DNS64 networks hand out
    NAT64 addresses for every public IPv4 site); 6to4 and Teredo are refused when the IPv4
    address inside is, and otherwise judged as IPv6 addresses.
    """
    ip = _plain(ip)
    if ip in CLOUD_METADATA:
        return CLOUD_METADATA[ip]
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            inner, form = embedded
            inner_reason = address_block_reason(inner)
            if inner_reason:
                return f"the {form} form of {inner}, {inner_reason}"
            if form in ("IPv4-mapped", "IPv4-translated", "NAT64"):
                return None
    for network, reason in BLOCKED_NETWORKS:
        if ip.version == network.version and ip in network:
            return reason
    if not ip.is_global:  # backstop: whatever Python's registry knows and the table missed
        return "not a globally routable address"
    return None


def normalize_host(host: str) -> str:
    """The canonical form of a hostname or IP literal, as rules store it and fetch compares it.

    Lower case, no trailing dot, no IPv6 brackets, IDNA (punycode) for international names,
    compressed IPv6. Raises ValueError for anything that is not a hostname or an IP.
    """
    value = (host or "").strip().lower()
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    value = value.rstrip(".")
    try:
        value = value.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(f"{host!r} is not a valid hostname: {exc}") from None
    if not _HOSTNAME.match(value):
        raise ValueError(f"{host!r} is not a hostname or an IP address.")
    return value


# --- destinations ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    url: str
    scheme: str
    host: str  # normalized
    port: int
    path: str  # path and query, as sent in the request line

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)

    @property
    def shown(self) -> str:
        return _redact(self.url)

    @property
    def where(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def _redact(url: str) -> str:
    """The URL for messages and logs: without user:password, and without the query (tokens hide there)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an unparseable URL)"
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "…" if parts.query else "", ""))


@dataclass(frozen=True)
class _Address:
    family: int
    sockaddr: tuple[Any, ...]
    ip: IPAddress


def _parse(url: str) -> _Target:
    if not isinstance(url, str) or not url:
        raise OutboundBlocked("Refused: no URL given.", url=str(url or ""))
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
        raise OutboundBlocked("Refused: the URL contains whitespace or control characters.")
    shown = _redact(url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        named = f"'{scheme}'" if scheme else "none"
        raise OutboundBlocked(f"Refused {shown}: only http and https URLs may be fetched (scheme: {named}).", url=shown)
    if "@" in parts.netloc or "\\" in parts.netloc:
        raise OutboundBlocked(
            f"Refused {shown}: credentials in the URL are not accepted; send them in a header.", url=shown
        )
    if not parts.hostname:
        raise OutboundBlocked(f"Refused {shown}: the URL names no host.", url=shown)
    try:
        port = parts.port
    except ValueError:
        raise OutboundBlocked(f"Refused {shown}: the port is not a number from 1 to 65535.", url=shown) from None
    if port is None:
        port = DEFAULT_PORTS[scheme]
    if port == 0:
        raise OutboundBlocked(f"Refused {shown}: port 0 is not a destination.", url=shown)
    try:
        host = normalize_host(parts.hostname)
    except ValueError as exc:
        raise OutboundBlocked(f"Refused {shown}: {exc}", url=shown) from None
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    # http.client sends the request line as ASCII; percent-encode anything else.
    path = "".join(ch if ord(ch) < 0x80 else quote(ch) for ch in path)
    return _Target(url=url, scheme=scheme, host=host, port=port, path=path)


def _resolve(target: _Target) -> list[_Address]:
    """The host's addresses, from ONE lookup: these exact addresses are checked and connected to."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise OutboundConnectionError(f"Cannot resolve {target.host}: {exc}", url=target.shown) from None
    addresses: list[_Address] = []
    seen: set[tuple[Any, ...]] = set()
    for family, _type, _proto, _canonname, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6) or sockaddr in seen:
            continue
        seen.add(sockaddr)
        addresses.append(_Address(family=family, sockaddr=sockaddr, ip=ipaddress.ip_address(sockaddr[0])))
    if not addresses:
        raise OutboundConnectionError(f"Cannot resolve {target.host}: no IPv4 or IPv6 address.", url=target.shown)
    return addresses


def _allow_rule_matches(target: _Target, tenant: Any) -> bool:
    # Imported here so that this module stays importable before Django's app registry is ready.
    from apps.security.selectors import outbound_allow_rule_match

    rule = outbound_allow_rule_match(host=target.host, port=target.port, tenant=tenant)
    if rule is not None:
        logger.info("outbound: %s let through by allow rule %s", target.where, rule.pk)
    return rule is not None


def _check(target: _Target, addresses: list[_Address], tenant: Any) -> None:
    """Refuse the destination if ANY address is forbidden, unless an allow rule lets the host through."""
    refusals = [(a.ip, reason) for a in addresses if (reason := address_block_reason(a.ip))]
    if not refusals:
        return
    metadata = [(ip, reason) for ip, reason in refusals if is_cloud_metadata(ip)]
    if not metadata and _allow_rule_matches(target, tenant):
        return
    ip, reason = (metadata or refusals)[0]
    literal = target.host == str(_plain(ip))
    subject = f"{ip} is" if literal else f"{target.host} resolves to {ip},"
    if metadata:
        advice = "It is never allowed."
    else:
        advice = "A platform admin can allow this host for a tenant with an outbound allow rule."
    logger.warning("outbound: refused %s (%s: %s)", target.where, ip, reason)
    raise OutboundBlocked(
        f"Refused {target.shown}: {subject} {reason}. {advice}", url=target.shown, address=str(ip), reason=reason
    )


def check_url(url: str, *, tenant: Any = None) -> str:
    """Refuse (OutboundBlocked) a URL `fetch` would refuse now; return it unchanged otherwise.

    For forms and serializers that store a URL (a webhook endpoint, a pull source), so the
    steward hears "no" when saving rather than at the first delivery. DNS can change, so
    `fetch` checks again every time; this is a courtesy, not the guard.
    """
    target = _parse(url)
    _check(target, _resolve(target), tenant)
    return target.url


# --- connections ----------------------------------------------------------------------------------


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def remaining(self, url: str) -> float:  # url: redacted, for the message
        left = self.at - time.monotonic()
        if left <= 0:
            raise OutboundTimeout(f"Timed out after {self.seconds:g} s fetching {url}.", url=url)
        return left


def _open_socket(address: _Address, timeout: float) -> socket.socket:
    """A TCP socket connected to exactly this (checked) address; never resolves a name."""
    sock = socket.socket(address.family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.settimeout(timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.connect(address.sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


class _PinnedMixin:
    """Connects to checked addresses in order instead of resolving `self.host` again.

    `self.host` stays the hostname, so http.client writes it into the Host header (with
    the port when not the default) and, for https, TLS uses it for SNI and verification.
    """

    host: str
    timeout: Any
    sock: Any

    def _pin(self, addresses: list[_Address]) -> None:
        self.addresses = addresses
        self.connected: _Address | None = None
        self.pinned_sock: socket.socket | None = None  # kept: http.client drops `sock` on Connection: close
        self.aborted = False  # set by the watchdog: an end of stream after it is a timeout, not the end

    def _connect_pinned(self) -> socket.socket:
        error: OSError | None = None
        for address in self.addresses:
            try:
                sock = _open_socket(address, self.timeout)
            except OSError as exc:
                error = exc
                continue
            self.connected = address
            self.pinned_sock = sock
            return sock
        assert error is not None
        raise error


class _PinnedHTTPConnection(_PinnedMixin, http.client.HTTPConnection):
    def __init__(self, host: str, port: int, *, addresses: list[_Address], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._pin(addresses)

    def connect(self) -> None:
        self.sock = self._connect_pinned()


class _PinnedHTTPSConnection(_PinnedMixin, http.client.HTTPSConnection):
    def __init__(
        self, host: str, port: int, *, addresses: list[_Address], timeout: float, context: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._pin(addresses)

    def connect(self) -> None:
        raw = self._connect_pinned()
        try:
            # server_hostname: SNI and certificate verification use the name, not the IP.
            tls = self._context.wrap_socket(  # type: ignore[attr-defined]
                raw, server_hostname=self.host, do_handshake_on_connect=False
            )
        except BaseException:
            raw.close()
            raise
        self.pinned_sock = tls  # before the handshake, so the watchdog can cut a stalled one
        tls.do_handshake()
        self.sock = tls


def _abort(connection: _PinnedMixin) -> None:
    """Watchdog: shut the socket at the deadline, waking any blocked read.

    The plain socket's shutdown (not SSLSocket's, which tears down TLS state another thread
    may be using) makes a blocked recv return at once.
    """
    connection.aborted = True
    sock = connection.pinned_sock
    if sock is None:
        return
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


@functools.lru_cache(maxsize=1)
def _default_ssl_context() -> ssl.SSLContext:
    # Built once: loading the system CA bundle costs milliseconds; contexts are thread-safe.
    return ssl.create_default_context()


def _request_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    result = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    for name, value in (headers or {}).items():
        if name.lower() in RESERVED_HEADERS:
            raise ValueError(f"fetch sets the {name} header itself; put the host in the URL.")
        result = {k: v for k, v in result.items() if k.lower() != name.lower()}
        result[name] = value
    return result


@dataclass
class _Hop:
    status: int
    reason: str
    headers: Message
    body: bytes
    truncated: bool
    remote_ip: str


def _exchange(
    target: _Target,
    addresses: list[_Address],
    *,
    method: str,
    headers: dict[str, str],
    body: bytes | None,
    deadline: _Deadline,
    context: ssl.SSLContext,
    max_bytes: int,
    on_too_large: str,
    follow_redirects: bool,
) -> _Hop:
    """One request/response on a fresh connection to the checked addresses.

    The body of a redirect that will be followed is not read: it is thrown away anyway.
    """
    timeout = deadline.remaining(target.shown)
    connection: _PinnedHTTPConnection | _PinnedHTTPSConnection
    if target.scheme == "https":
        connection = _PinnedHTTPSConnection(
            target.host, target.port, addresses=addresses, timeout=timeout, context=context
        )
    else:
        connection = _PinnedHTTPConnection(target.host, target.port, addresses=addresses, timeout=timeout)
    watchdog = threading.Timer(timeout, _abort, args=(connection,))
    watchdog.daemon = True
    watchdog.start()

    def shrink() -> None:
        # Each blocking operation gets at most what is left of the one deadline.
        if connection.pinned_sock is not None:
            connection.pinned_sock.settimeout(deadline.remaining(target.shown))

    try:
        connection.request(method, target.path, body=body, headers=headers)
        shrink()
        response = connection.getresponse()
        chunks: list[bytes] = []
        size = 0
        truncated = False
        followed = follow_redirects and response.status in REDIRECT_STATUSES and response.getheader("Location")
        if not followed:
            declared = response.getheader("Content-Length")
            if on_too_large == "raise" and declared and declared.isdigit() and int(declared) > max_bytes:
                raise OutboundTooLarge(
                    f"{target.shown} announced {declared} bytes; the limit is {max_bytes}.", url=target.shown
                )
            while True:
                shrink()
                # read1: whatever one recv brings, so the deadline is checked between small reads.
                chunk = response.read1(min(CHUNK_BYTES, max_bytes + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > max_bytes:
                    if on_too_large == "raise":
                        raise OutboundTooLarge(
                            f"{target.shown} sent more than {max_bytes} bytes; the limit is {max_bytes}.",
                            url=target.shown,
                        )
                    truncated = True
                    break
        if connection.aborted:
            # The watchdog's shutdown reads as an ordinary end of stream: never return that as the body.
            raise OutboundTimeout(f"Timed out after {deadline.seconds:g} s fetching {target.shown}.", url=target.shown)
        data = b"".join(chunks)[:max_bytes]
        assert connection.connected is not None
        return _Hop(
            status=response.status,
            reason=response.reason,
            headers=response.headers,
            body=data,
            truncated=truncated,
            remote_ip=str(connection.connected.ip),
        )
    except OutboundError:
        raise
    except ssl.SSLError as exc:
        if connection.aborted or deadline.expired:
            raise OutboundTimeout(
                f"Timed out after {deadline.seconds:g} s fetching {target.shown}.", url=target.shown
            ) from None
        detail = getattr(exc, "verify_message", None) or exc.reason or str(exc)
        raise OutboundConnectionError(f"TLS with {target.host} failed: {detail}.", url=target.shown) from None
    except (OSError, http.client.HTTPException) as exc:
        # Includes TimeoutError, and whatever a read fails with once the watchdog shut the socket.
        if isinstance(exc, TimeoutError) or connection.aborted or deadline.expired:
            raise OutboundTimeout(
                f"Timed out after {deadline.seconds:g} s fetching {target.shown}.", url=target.shown
            ) from None
        raise OutboundConnectionError(
            f"Request to {target.where} failed: {type(exc).__name__}: {exc}", url=target.shown
        ) from None
    finally:
        watchdog.cancel()
        connection.close()
        if connection.pinned_sock is not None:
            connection.pinned_sock.close()


# --- the public call ------------------------------------------------------------------------------


def fetch(
    url: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    tenant: Any = None,
    timeout: float = 15.0,
    max_bytes: int = 10 * 1024 * 1024,
    max_redirects: int = 3,
    follow_redirects: bool = True,
    on_too_large: Literal["raise", "truncate"] = "raise",
    ssl_context: ssl.SSLContext | None = None,
) -> OutboundResponse:
    """Make one HTTP(S) request to a URL that may come from a tenant, refusing internal destinations.

    `tenant` (a Tenant or its id) selects the allow rules that may let a refused host
    through; without it only platform-wide rules apply. `timeout` bounds the whole call,
    redirects included. A body larger than `max_bytes` raises OutboundTooLarge, or with
    `on_too_large="truncate"` is cut and flagged `truncated=True` (for keeping an excerpt
    of a webhook receiver's answer). `ssl_context` replaces the system trust store (a
    private CA, client certificates) but must still verify certificates and hostnames.

    Raises OutboundBlocked (before anything is sent), OutboundTimeout, OutboundTooLarge,
    OutboundTooManyRedirects, OutboundConnectionError: all OutboundError. HTTP error
    statuses (4xx, 5xx) are returned, not raised.
    """
    if on_too_large not in ("raise", "truncate"):
        raise ValueError("on_too_large is 'raise' or 'truncate'.")
    if timeout <= 0 or max_bytes < 0 or max_redirects < 0:
        raise ValueError("timeout must be positive; max_bytes and max_redirects must not be negative.")
    if body is not None and not isinstance(body, bytes | bytearray):
        raise TypeError("body is bytes; encode text and JSON before sending.")
    context = ssl_context or _default_ssl_context()
    if context.verify_mode != ssl.CERT_REQUIRED or not context.check_hostname:
        raise ValueError("ssl_context must verify certificates and check hostnames.")

    started = time.monotonic()
    deadline = _Deadline(timeout)
    method = method.upper()
    request_headers = _request_headers(headers)
    target = _parse(url)
    redirects: list[str] = []
    while True:
        addresses = _resolve(target)
        _check(target, addresses, tenant)
        deadline.remaining(target.shown)
        hop = _exchange(
            target,
            addresses,
            method=method,
            headers=request_headers,
            body=body,
            deadline=deadline,
            context=context,
            max_bytes=max_bytes,
            on_too_large=on_too_large,
            follow_redirects=follow_redirects,
        )
        location = hop.headers.get("Location")
        if not (follow_redirects and hop.status in REDIRECT_STATUSES and location):
            break
        if len(redirects) >= max_redirects:
            raise OutboundTooManyRedirects(
                f"{_redact(url)} redirected more than {max_redirects} time(s) (last to {_redact(location)}).",
                url=target.shown,
            )
        redirects.append(target.url)
        next_target = _parse(urljoin(target.url, location))
        if (hop.status == 303 and method != "HEAD") or (hop.status in (301, 302) and method == "POST"):
            method, body = "GET", None
            request_headers = {k: v for k, v in request_headers.items() if k.lower() != "content-type"}
        if next_target.origin != target.origin:
            request_headers = {k: v for k, v in request_headers.items() if k.lower() not in CREDENTIAL_HEADERS}
        target = next_target

    elapsed_ms = int((time.monotonic() - started) * 1000)
    logger.info("outbound: %s %s -> %s in %d ms", method, target.where, hop.status, elapsed_ms)
    return OutboundResponse(
        status=hop.status,
        reason=hop.reason,
        headers=hop.headers,
        body=hop.body,
        url=target.url,
        elapsed_ms=elapsed_ms,
        remote_ip=hop.remote_ip,
        truncated=hop.truncated,
        redirects=tuple(redirects),
    )
