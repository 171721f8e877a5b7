"""The SSRF-safe outbound client, against real HTTP and HTTPS servers on 127.0.0.1.

The receivers are loopback servers, so the guard refuses them until an OutboundAllowRule
lets them through for a tenant: every happy-path test here also exercises the allow list.
Name resolution is faked per test where a hostname must point somewhere on purpose; the
fake counts its calls, which is how "resolved once, connected to what was checked" is shown.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from apps.kernel.errors import ForbiddenError
from apps.kernel.roles import RoleChoices
from apps.security import outbound, selectors, services
from apps.security.models import OutboundAllowRule
from apps.security.outbound import (
    OutboundBlocked,
    OutboundConnectionError,
    OutboundTimeout,
    OutboundTooLarge,
    OutboundTooManyRedirects,
    address_block_reason,
    check_url,
    fetch,
)
from tests.factories import OutboundAllowRuleFactory

pytestmark = pytest.mark.django_db

LOCAL = "127.0.0.1"


# --- local receivers -------------------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Handler(BaseHTTPRequestHandler):
    """Routes: /echo, /redirect?to=…&status=…, /loop, /big?n=…&length=no, /slow?s=…, /drip, /drip_headers."""

    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))
        route = getattr(self, f"route_{parts.path.strip('/') or 'echo'}", None)
        if route is None:
            self.send_error(404)
        else:
            route(query, body)

    do_POST = do_PUT = do_HEAD = do_GET

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if "Content-Length" not in (headers or {}) and (headers or {}).get("X-No-Length") is None:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def route_echo(self, query: dict[str, str], body: bytes) -> None:
        echo = {"method": self.command, "path": self.path, "host": self.headers.get("Host"), "body": body.decode()}
        self._send(200, json.dumps(echo).encode(), {"Content-Type": "application/json", "X-Receiver": "yes"})

    def route_redirect(self, query: dict[str, str], body: bytes) -> None:
        self._send(int(query.get("status", "302")), b"moved", {"Location": query["to"]})

    def route_loop(self, query: dict[str, str], body: bytes) -> None:
        self._send(302, b"", {"Location": "/loop"})

    def route_big(self, query: dict[str, str], body: bytes) -> None:
        payload = b"x" * int(query["n"])
        if query.get("length") == "no":  # close-delimited: the client cannot know the size up front
            self.send_response(200)
            self.end_headers()
            self.wfile.write(payload)
        else:
            self._send(200, payload)

    def route_slow(self, query: dict[str, str], body: bytes) -> None:
        time.sleep(float(query["s"]))
        self._send(200, b"late")

    def route_drip(self, query: dict[str, str], body: bytes) -> None:
        self.send_response(200)
        self.end_headers()
        for _ in range(200):  # one byte every 50 ms: each read is quick, the whole is not
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(0.05)

    def route_drip_headers(self, query: dict[str, str], body: bytes) -> None:
        self.wfile.write(b"HTTP/1.0 200 OK\r\nX-Slow: ")
        for _ in range(200):  # a header that never ends, one byte every 50 ms
            self.wfile.write(b"a")
            self.wfile.flush()
            time.sleep(0.05)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__((LOCAL, 0), _Handler)
        self.seen: list[Seen] = []

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that time out or hang up leave broken pipes behind; expected here


@dataclass
class Receiver:
    server: _Server
    scheme: str = "http"
    sni: list[str | None] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def seen(self) -> list[Seen]:
        return self.server.seen

    def url(self, path: str = "/echo", host: str = LOCAL) -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"


def _serve(server: _Server) -> Iterator[None]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def _receiver() -> Iterator[Receiver]:
    server = _Server()
    yield from (Receiver(server) for _ in _serve(server))


@pytest.fixture(scope="module")
def _other_receiver() -> Iterator[Receiver]:
    server = _Server()
    yield from (Receiver(server) for _ in _serve(server))


@pytest.fixture
def receiver(_receiver: Receiver) -> Receiver:
    _receiver.seen.clear()
    return _receiver


@pytest.fixture
def other_receiver(_other_receiver: Receiver) -> Receiver:
    _other_receiver.seen.clear()
    return _other_receiver


@pytest.fixture
def allowed(receiver: Receiver, tenant_a: Any) -> OutboundAllowRule:
    """The receiver (127.0.0.1, its port only) allowed for tenant A."""
    return OutboundAllowRuleFactory(tenant_scope=tenant_a, host=LOCAL, port=receiver.port)


class FakeDNS:
    """Stands in for socket.getaddrinfo: answers for named hosts, counts every call.

    An answer may be a list of addresses, or a list of such lists served one per call
    (a rebinding resolver that answers differently the second time).
    """

    def __init__(self, real: Any) -> None:
        self.real = real
        self.answers: dict[str, Any] = {}
        self.calls: list[str] = []

    def __call__(self, host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        self.calls.append(host)
        if host not in self.answers:
            return self.real(host, port, *args, **kwargs)
        answer = self.answers[host]
        ips = answer.pop(0) if isinstance(answer[0], list) else answer
        result = []
        for ip in ips:
            if ipaddress.ip_address(ip).version == 6:
                result.append((socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, port, 0, 0)))
            else:
                result.append((socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, port)))
        return result


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    fake = FakeDNS(socket.getaddrinfo)
    monkeypatch.setattr(outbound.socket, "getaddrinfo", fake)
    return fake


# --- refused destinations -------------------------------------------------------------------------

BLOCKED_URLS = {
    "loopback": "http://127.0.0.1/",
    "loopback, other /8 address": "http://127.8.9.10/",
    "rfc1918 10/8": "http://10.0.0.1/",
    "rfc1918 172.16/12": "http://172.16.5.4/",
    "rfc1918 192.168/16": "http://192.168.1.1/",
    "aws metadata": "http://169.254.169.254/latest/meta-data/",
    "link-local": "http://169.254.1.1/",
    "shared cgnat": "http://100.64.0.1/",
    "alibaba metadata": "http://100.100.100.200/latest/meta-data/",
    "unspecified": "http://0.0.0.0/",
    "multicast": "http://224.0.0.1/",
    "broadcast": "http://255.255.255.255/",
    "reserved 240/4": "http://240.0.0.1/",
    "documentation": "http://192.0.2.10/",
    "ipv6 loopback": "http://[::1]/",
    "ipv6 unspecified": "http://[::]/",
    "ipv6 unique local": "http://[fc00::1]/",
    "ipv6 link-local": "http://[fe80::1]/",
    "ipv6 multicast": "http://[ff02::1]/",
    "aws ipv6 metadata": "http://[fd00:ec2::254]/",
    "ipv4-mapped loopback": "http://[::ffff:127.0.0.1]/",
    "ipv4-mapped private": "http://[::ffff:10.0.0.1]/",
    "ipv4-mapped metadata": "http://[::ffff:169.254.169.254]/",
    "ipv4-mapped, hex notation": "http://[::ffff:7f00:1]/",
    "ipv4-translated private": "http://[::ffff:0:10.0.0.1]/",
    "ipv4-compatible loopback": "http://[::127.0.0.1]/",
    "nat64 of private": "http://[64:ff9b::10.0.0.1]/",
    "6to4 of loopback": "http://[2002:7f00:1::]/",
    "teredo of private": "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/",
    "decimal ipv4 (resolver parses it)": "http://2130706433/",
    "hex ipv4 (resolver parses it)": "http://0x7f000001/",
    "short ipv4 (resolver parses it)": "http://127.1/",
    "localhost": "http://localhost/",
}


@pytest.mark.parametrize("url", BLOCKED_URLS.values(), ids=BLOCKED_URLS.keys())
def test_it_refuses_internal_destinations(url):
    with pytest.raises(OutboundBlocked) as refused:
        fetch(url, timeout=2)

    assert refused.value.address, "the refusal names the address"
    assert refused.value.address in str(refused.value)
    assert refused.value.reason in str(refused.value)


def test_the_refusal_says_what_the_address_is():
    with pytest.raises(OutboundBlocked, match=r"169\.254\.169\.254 is the cloud metadata service"):
        fetch("http://169.254.169.254/latest/meta-data/iam/")
    with pytest.raises(OutboundBlocked, match=r"the IPv4-mapped form of 10\.0\.0\.1, a private address"):
        fetch("http://[::ffff:10.0.0.1]/")
    with pytest.raises(OutboundBlocked, match=r"127\.0\.0\.1 is a loopback address"):
        fetch("http://127.0.0.1/")


def test_a_listening_loopback_server_is_refused_before_anything_is_sent(receiver):
    with pytest.raises(OutboundBlocked):
        fetch(receiver.url())

    assert receiver.seen == []


@pytest.mark.parametrize(
    "ip",
    [
        "93.184.216.34",
        "1.1.1.1",
        "2606:4700:4700::1111",
        "::ffff:93.184.216.34",
        "64:ff9b::5db8:d822",
        "2002:5db8:d822::",
    ],
)
def test_public_addresses_pass_the_address_check(ip):
    assert address_block_reason(ipaddress.ip_address(ip)) is None


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_INFO",
        "ftp://example.com/file",
        "dict://example.com:11211/stat",
        "javascript:alert(1)",
        "//example.com/",
        "example.com/path",
        "",
    ],
)
def test_it_refuses_schemes_other_than_http_and_https(url, dns):
    with pytest.raises(OutboundBlocked, match=r"only http and https|no URL") as refused:
        fetch(url)
    assert dns.calls == []
    if url:
        assert str(refused.value).startswith(f"Refused {url}: only http and https URLs may be fetched (scheme: ")


@pytest.mark.parametrize(
    "url",
    [
        "http://user:secret@example.com/",
        "http://user@example.com/",
        "http://:secret@example.com/",
        "http://example.com@127.0.0.1/",
        "http://example.com\\@127.0.0.1/",
        "https://token@receiver.test/",
    ],
)
def test_it_refuses_credentials_in_the_url(url, dns):
    with pytest.raises(OutboundBlocked, match="credentials in the URL"):
        fetch(url)
    assert dns.calls == [], "refused before any name was resolved"


def test_refusals_do_not_repeat_secrets_from_the_url(dns):
    dns.answers["intranet.example"] = ["10.0.0.1"]

    for url in ("http://user:s3cret@example.com/", "http://intranet.example/hook?token=s3cret"):
        with pytest.raises(OutboundBlocked) as refused:
            fetch(url)
        assert "s3cret" not in str(refused.value)
        assert "s3cret" not in refused.value.url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://example.com:0/", "port 0"),
        ("http://example.com:99999/", "port"),
        ("http://example.com:http/", "port"),
        ("http:///path", "no host"),
        ("http://exa mple.com/", "whitespace"),
        ("http://example.com/\r\nX-Injected: 1", "control characters"),
        ("http://bad_host!/", "not a hostname"),
    ],
)
def test_it_refuses_malformed_urls(url, message, dns):
    with pytest.raises(OutboundBlocked, match=message):
        fetch(url)
    assert dns.calls == []


# --- one resolution, pinned connection ------------------------------------------------------------


def test_a_hostname_resolving_to_loopback_is_refused_after_one_lookup(receiver, dns):
    dns.answers["evil.example"] = [LOCAL]

    with pytest.raises(OutboundBlocked, match=r"evil\.example resolves to 127\.0\.0\.1, a loopback address"):
        fetch(f"http://evil.example:{receiver.port}/echo")

    assert dns.calls == ["evil.example"]
    assert receiver.seen == []


@pytest.mark.parametrize("bad", ["10.1.2.3", "169.254.169.254", "::1", "::ffff:127.0.0.1"])
def test_a_mixed_answer_is_refused_when_any_address_is_internal(bad, dns):
    dns.answers["mixed.example"] = ["93.184.216.34", bad]

    with pytest.raises(OutboundBlocked) as refused:
        fetch("http://mixed.example/")

    assert refused.value.address == str(ipaddress.ip_address(bad))
    assert dns.calls == ["mixed.example"]


def test_it_connects_to_the_address_it_checked_without_a_second_lookup(receiver, dns, monkeypatch):
    """A rebinding resolver answers a public address first and loopback after: only one lookup happens."""
    dns.answers["rebind.example"] = [["93.184.216.34"], [LOCAL], [LOCAL]]
    connected_to: list[str] = []
    real_open_socket = outbound._open_socket

    def open_socket(address: Any, timeout: float) -> socket.socket:
        # The sandbox cannot reach the public address: record what fetch asked for, then
        # carry the bytes to the local receiver so the exchange completes.
        connected_to.append(str(address.ip))
        stand_in = outbound._Address(family=socket.AF_INET, sockaddr=(LOCAL, receiver.port), ip=address.ip)
        return real_open_socket(stand_in, timeout)

    monkeypatch.setattr(outbound, "_open_socket", open_socket)

    response = fetch(f"http://rebind.example:{receiver.port}/echo")

    assert response.status == 200
    assert dns.calls == ["rebind.example"], "resolved exactly once"
    assert connected_to == ["93.184.216.34"], "connected to the checked address"
    assert response.remote_ip == "93.184.216.34"
    assert json.loads(response.body)["host"] == f"rebind.example:{receiver.port}", "Host names the hostname"


def test_check_url_refuses_what_fetch_would_refuse(dns):
    dns.answers["intranet.example"] = ["192.168.0.10"]
    dns.answers["public.example"] = ["93.184.216.34"]

    with pytest.raises(OutboundBlocked):
        check_url("http://intranet.example/hook")
    assert check_url("https://public.example/hook") == "https://public.example/hook"


# --- the allow list --------------------------------------------------------------------------------


def test_an_allow_rule_lets_the_local_receiver_through_for_its_tenant(receiver, allowed, tenant_a):
    response = fetch(receiver.url("/echo?x=1"), tenant=tenant_a)

    assert response.status == 200
    assert response.ok
    assert response.remote_ip == LOCAL
    assert response.url == receiver.url("/echo?x=1")
    assert response.headers["content-type"] == "application/json"
    assert response.elapsed_ms >= 0
    assert response.truncated is False
    echo = json.loads(response.body)
    assert echo == {"method": "GET", "path": "/echo?x=1", "host": f"{LOCAL}:{receiver.port}", "body": ""}
    assert receiver.seen[0].headers["User-Agent"].startswith("Aurum-Outbound/")


def test_the_allow_rule_of_one_tenant_does_not_help_another(receiver, allowed, tenant_b):
    with pytest.raises(OutboundBlocked):
        fetch(receiver.url(), tenant=tenant_b)
    with pytest.raises(OutboundBlocked):
        fetch(receiver.url())  # platform requests use platform-wide rules only

    assert receiver.seen == []


def test_an_allow_rule_is_for_its_port_only(receiver, other_receiver, allowed, tenant_a):
    with pytest.raises(OutboundBlocked):
        fetch(other_receiver.url(), tenant=tenant_a)
    assert other_receiver.seen == []


def test_an_allow_rule_matches_the_host_as_written_not_what_it_resolves_to(receiver, allowed, tenant_a, dns):
    dns.answers["alias.example"] = [LOCAL]

    with pytest.raises(OutboundBlocked):
        fetch(f"http://alias.example:{receiver.port}/echo", tenant=tenant_a)


def test_a_platform_wide_rule_applies_to_every_tenant(receiver, other_receiver, tenant_a, tenant_b):
    OutboundAllowRuleFactory(tenant_scope=None, host=LOCAL, port=other_receiver.port)

    assert fetch(other_receiver.url(), tenant=tenant_a).status == 200
    assert fetch(other_receiver.url(), tenant=tenant_b.pk).status == 200
    assert fetch(other_receiver.url()).status == 200


def test_a_hostname_rule_allows_that_hostname(receiver, tenant_a, dns):
    dns.answers["receiver.internal"] = [LOCAL]
    OutboundAllowRuleFactory(tenant_scope=tenant_a, host="receiver.internal", port=None)

    response = fetch(f"http://Receiver.Internal.:{receiver.port}/echo", tenant=tenant_a)

    assert response.status == 200
    assert json.loads(response.body)["host"] == f"receiver.internal:{receiver.port}"


def test_cloud_metadata_is_refused_even_with_an_allow_rule(tenant_a, dns):
    # Written around the service, which refuses such a rule.
    OutboundAllowRule.objects.create(tenant_scope=tenant_a, host="169.254.169.254")
    OutboundAllowRule.objects.create(tenant_scope=tenant_a, host="metadata.google.internal")
    dns.answers["metadata.google.internal"] = ["169.254.169.254"]

    with pytest.raises(OutboundBlocked, match="never allowed"):
        fetch("http://169.254.169.254/latest/meta-data/", tenant=tenant_a, timeout=1)
    with pytest.raises(OutboundBlocked, match="never allowed"):
        fetch("http://metadata.google.internal/computeMetadata/v1/", tenant=tenant_a, timeout=1)


# --- redirects --------------------------------------------------------------------------------------


def _redirect(receiver: Receiver, to: str, status: int = 302) -> str:
    return receiver.url("/redirect?" + urlencode({"to": to, "status": status}))


def test_a_redirect_within_the_allowed_receiver_is_followed(receiver, allowed, tenant_a):
    response = fetch(_redirect(receiver, "/echo?after=redirect"), tenant=tenant_a)

    assert response.status == 200
    assert response.url == receiver.url("/echo?after=redirect")
    assert response.redirects == (_redirect(receiver, "/echo?after=redirect"),)
    assert [seen.path.split("?")[0] for seen in receiver.seen] == ["/redirect", "/echo"]


@pytest.mark.parametrize(
    "to",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://10.0.0.1/admin",
        "http://localhost/",
    ],
)
def test_a_redirect_from_an_allowed_receiver_to_an_internal_address_is_refused(receiver, allowed, tenant_a, to):
    with pytest.raises(OutboundBlocked):
        fetch(_redirect(receiver, to), tenant=tenant_a, timeout=2)

    assert len(receiver.seen) == 1


def test_a_redirect_to_another_local_port_is_refused(receiver, other_receiver, allowed, tenant_a):
    with pytest.raises(OutboundBlocked, match=r"127\.0\.0\.1 is a loopback address"):
        fetch(_redirect(receiver, other_receiver.url()), tenant=tenant_a)

    assert other_receiver.seen == []


def test_a_redirect_through_a_hostname_that_resolves_inside_is_refused(receiver, allowed, tenant_a, dns):
    dns.answers["sneaky.example"] = ["10.0.0.7"]

    with pytest.raises(OutboundBlocked, match=r"sneaky\.example resolves to 10\.0\.0\.7"):
        fetch(_redirect(receiver, "http://sneaky.example/"), tenant=tenant_a)

    assert dns.calls[-1] == "sneaky.example"


@pytest.mark.parametrize("to", ["file:///etc/passwd", "gopher://127.0.0.1:6379/_", "ftp://example.com/"])
def test_a_redirect_to_another_scheme_is_refused(receiver, allowed, tenant_a, to):
    with pytest.raises(OutboundBlocked, match="only http and https"):
        fetch(_redirect(receiver, to), tenant=tenant_a)


def test_redirects_are_returned_as_they_are_when_not_followed(receiver, allowed, tenant_a):
    response = fetch(_redirect(receiver, "http://169.254.169.254/", 307), tenant=tenant_a, follow_redirects=False)

    assert response.status == 307
    assert response.headers["Location"] == "http://169.254.169.254/"
    assert response.body == b"moved"
    assert response.redirects == ()
    assert len(receiver.seen) == 1


def test_more_redirects_than_allowed_are_refused(receiver, allowed, tenant_a):
    with pytest.raises(OutboundTooManyRedirects, match="more than 2"):
        fetch(receiver.url("/loop"), tenant=tenant_a, max_redirects=2)

    assert len(receiver.seen) == 3  # the first request and two redirects followed


def test_no_redirect_is_followed_with_max_redirects_zero(receiver, allowed, tenant_a):
    with pytest.raises(OutboundTooManyRedirects):
        fetch(_redirect(receiver, "/echo"), tenant=tenant_a, max_redirects=0)
    assert len(receiver.seen) == 1


def test_a_303_turns_a_post_into_a_get_and_a_307_keeps_it(receiver, allowed, tenant_a):
    fetch(_redirect(receiver, "/echo", 303), method="POST", body=b"payload", tenant=tenant_a)
    fetch(_redirect(receiver, "/echo", 307), method="POST", body=b"payload", tenant=tenant_a)

    assert [(s.method, s.body) for s in receiver.seen] == [
        ("POST", b"payload"),
        ("GET", b""),
        ("POST", b"payload"),
        ("POST", b"payload"),
    ]


def test_credentials_headers_do_not_follow_a_redirect_to_another_origin(receiver, other_receiver, allowed, tenant_a):
    OutboundAllowRuleFactory(tenant_scope=tenant_a, host=LOCAL, port=other_receiver.port)
    headers = {"Authorization": "Bearer s3cret", "X-Trace": "t-1"}

    fetch(_redirect(receiver, "/echo"), headers=headers, tenant=tenant_a)
    fetch(_redirect(receiver, other_receiver.url()), headers=headers, tenant=tenant_a)

    assert receiver.seen[1].headers["Authorization"] == "Bearer s3cret", "same origin keeps it"
    assert "Authorization" not in other_receiver.seen[0].headers
    assert other_receiver.seen[0].headers["X-Trace"] == "t-1"


# --- size and time caps ----------------------------------------------------------------------------


@pytest.mark.parametrize("length", ["yes", "no"], ids=["content-length", "close-delimited"])
def test_a_body_over_the_cap_raises(receiver, allowed, tenant_a, length):
    with pytest.raises(OutboundTooLarge, match="the limit is 1000"):
        fetch(receiver.url(f"/big?n=5000&length={length}"), tenant=tenant_a, max_bytes=1000)


@pytest.mark.parametrize("length", ["yes", "no"], ids=["content-length", "close-delimited"])
def test_a_body_over_the_cap_can_be_truncated_instead(receiver, allowed, tenant_a, length):
    response = fetch(
        receiver.url(f"/big?n=200000&length={length}"), tenant=tenant_a, max_bytes=1000, on_too_large="truncate"
    )

    assert response.truncated is True
    assert response.body == b"x" * 1000


def test_a_body_exactly_at_the_cap_is_whole(receiver, allowed, tenant_a):
    response = fetch(receiver.url("/big?n=1000&length=no"), tenant=tenant_a, max_bytes=1000)

    assert response.truncated is False
    assert len(response.body) == 1000


def test_a_server_that_does_not_answer_times_out(receiver, allowed, tenant_a):
    started = time.monotonic()

    with pytest.raises(OutboundTimeout, match=r"Timed out after 0\.5 s"):
        fetch(receiver.url("/slow?s=3"), tenant=tenant_a, timeout=0.5)

    assert 0.4 < time.monotonic() - started < 2.5  # the server answers after 3 s


def test_the_timeout_covers_the_whole_body_not_each_read(receiver, allowed, tenant_a):
    """Each byte arrives within 50 ms, so only a deadline for the whole call stops this server."""
    started = time.monotonic()

    with pytest.raises(OutboundTimeout):
        fetch(receiver.url("/drip"), tenant=tenant_a, timeout=1.0)

    assert 0.9 < time.monotonic() - started < 3.0  # the server drips for 10 s


def test_the_timeout_covers_headers_that_never_end(receiver, allowed, tenant_a):
    """Reading a header line loops over many quick reads; the watchdog cuts it at the deadline."""
    started = time.monotonic()

    with pytest.raises(OutboundTimeout):
        fetch(receiver.url("/drip_headers"), tenant=tenant_a, timeout=1.0)

    assert 0.9 < time.monotonic() - started < 3.0  # the server drips for 10 s


def test_a_closed_port_is_a_connection_error(tenant_a):
    with socket.socket() as probe:
        probe.bind((LOCAL, 0))
        port = probe.getsockname()[1]
    OutboundAllowRuleFactory(tenant_scope=tenant_a, host=LOCAL, port=port)

    with pytest.raises(OutboundConnectionError, match="ConnectionRefusedError"):
        fetch(f"http://{LOCAL}:{port}/", tenant=tenant_a)


# --- headers and arguments -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Host", "content-length", "Transfer-Encoding", "Connection"])
def test_fetch_sets_framing_and_host_headers_itself(name):
    with pytest.raises(ValueError, match="header itself"):
        fetch("http://example.com/", headers={name: "x"})


def test_a_verification_free_ssl_context_is_refused():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE

    with pytest.raises(ValueError, match="must verify"):
        fetch("https://example.com/", ssl_context=context)


# --- https --------------------------------------------------------------------------------------------


@dataclass
class Certificates:
    ca: Path
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A throwaway CA and a server certificate for `receiver.test` only (no IP in it)."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Aurum test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "receiver.test")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("receiver.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    paths = Certificates(ca=folder / "ca.pem", cert=folder / "cert.pem", key=folder / "key.pem")
    paths.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


@pytest.fixture(scope="module")
def _tls_receiver(certificates: Certificates) -> Iterator[Receiver]:
    server = _Server()
    receiver = Receiver(server, scheme="https")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates.cert, certificates.key)
    context.sni_callback = lambda _sock, name, _ctx: receiver.sni.append(name)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    yield from (receiver for _ in _serve(server))


@pytest.fixture
def tls_receiver(_tls_receiver: Receiver, tenant_a: Any, dns: FakeDNS) -> Receiver:
    """The HTTPS receiver as `receiver.test` and `other.test` (both → 127.0.0.1), allowed for tenant A."""
    _tls_receiver.seen.clear()
    _tls_receiver.sni.clear()
    for name in ("receiver.test", "other.test"):
        dns.answers[name] = [LOCAL]
        OutboundAllowRuleFactory(tenant_scope=tenant_a, host=name, port=_tls_receiver.port)
    return _tls_receiver


@pytest.fixture
def trusting(certificates: Certificates) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificates.ca))


def test_https_verifies_the_hostname_while_connecting_to_the_checked_address(tls_receiver, tenant_a, trusting, dns):
    response = fetch(tls_receiver.url(host="receiver.test"), tenant=tenant_a, ssl_context=trusting)

    assert response.status == 200
    assert response.remote_ip == LOCAL
    assert tls_receiver.sni == ["receiver.test"], "SNI carries the hostname, not the IP"
    assert json.loads(response.body)["host"] == f"receiver.test:{tls_receiver.port}"
    assert dns.calls == ["receiver.test"]


def test_https_refuses_a_certificate_for_another_name(tls_receiver, tenant_a, trusting):
    with pytest.raises(OutboundConnectionError, match=r"TLS with other\.test failed: .*[Hh]ostname mismatch"):
        fetch(tls_receiver.url(host="other.test"), tenant=tenant_a, ssl_context=trusting)
    assert tls_receiver.seen == []


def test_https_refuses_a_certificate_from_an_unknown_authority(tls_receiver, tenant_a):
    with pytest.raises(OutboundConnectionError, match="certificate"):
        fetch(tls_receiver.url(host="receiver.test"), tenant=tenant_a)
    assert tls_receiver.seen == []


def test_a_redirect_from_https_is_checked_like_any_other(tls_receiver, tenant_a, trusting):
    url = tls_receiver.url(host="receiver.test", path="/redirect?to=http://169.254.169.254/")

    with pytest.raises(OutboundBlocked, match="metadata"):
        fetch(url, tenant=tenant_a, ssl_context=trusting)


# --- services, selectors, admin --------------------------------------------------------------------


def test_only_a_superuser_may_allow_a_host(tenant_a, member, outsider):
    for actor in (member(tenant_a, RoleChoices.ADMIN), outsider, None):
        with pytest.raises(ForbiddenError):
            services.outbound_allow(actor=actor, host="receiver.internal", tenant=tenant_a)
    assert not OutboundAllowRule.objects.exists()


def test_a_superuser_allows_a_host_for_a_tenant(superuser, tenant_a):
    rule = services.outbound_allow(
        actor=superuser, host=" Receiver.Internal. ", tenant=tenant_a, port=8443, note="ticket 12"
    )

    assert (rule.host, rule.port, rule.tenant_scope, rule.created_by) == (
        "receiver.internal",
        8443,
        tenant_a,
        superuser,
    )
    assert services.outbound_allow(actor=superuser, host="receiver.internal", tenant=tenant_a, port=8443) == rule
    assert selectors.outbound_allow_rule_match(host="receiver.internal", port=8443, tenant=tenant_a) == rule
    assert selectors.outbound_allow_rule_match(host="receiver.internal", port=8443, tenant=None) is None
    assert selectors.outbound_allow_rule_list(tenant=tenant_a) == [rule]
    entry = LogEntry.objects.get_for_object(rule).get()
    assert entry.actor == superuser


def test_ip_rules_are_stored_in_canonical_form(superuser):
    rule = services.outbound_allow(actor=superuser, host="[FD12:0:0::1]")
    assert rule.host == "fd12::1"


@pytest.mark.parametrize(
    "host", ["169.254.169.254", "[fd00:ec2::254]", "100.100.100.200", "http://x/", "*.internal", "a b", ""]
)
def test_a_rule_must_name_one_allowable_host(superuser, host):
    with pytest.raises(ValidationError):
        services.outbound_allow(actor=superuser, host=host)


def test_disallowing_takes_effect_at_once(superuser, receiver, tenant_a, member):
    rule = services.outbound_allow(actor=superuser, host=LOCAL, port=receiver.port, tenant=tenant_a)
    assert fetch(receiver.url(), tenant=tenant_a).status == 200

    with pytest.raises(ForbiddenError):
        services.outbound_disallow(actor=member(tenant_a, RoleChoices.ADMIN), rule=rule)
    services.outbound_disallow(actor=superuser, rule=rule)

    with pytest.raises(OutboundBlocked):
        fetch(receiver.url(), tenant=tenant_a)


def test_a_superuser_adds_a_rule_in_the_portal(superuser, tenant_a):
    client = Client()
    client.force_login(superuser)

    response = client.post(
        reverse("admin:security_outboundallowrule_add"),
        {"tenant_scope": tenant_a.pk, "host": "Receiver.Internal", "port": "9000", "note": "local receiver"},
    )

    assert response.status_code == 302, response.content[:2000]
    rule = OutboundAllowRule.objects.get()
    assert (rule.host, rule.port, rule.tenant_scope, rule.created_by) == (
        "receiver.internal",
        9000,
        tenant_a,
        superuser,
    )
    response = client.post(reverse("admin:security_outboundallowrule_add"), {"host": "169.254.169.254"})
    assert response.status_code == 200
    assert "never allowed" in response.content.decode()


def test_django_permissions_do_not_open_the_allow_list_to_a_tenant_admin(tenant_a, member):
    user = member(tenant_a, RoleChoices.ADMIN)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="security"))
    client = Client()
    client.force_login(user)

    assert client.get(reverse("admin:security_outboundallowrule_changelist")).status_code == 403
    response = client.post(reverse("admin:security_outboundallowrule_add"), {"host": "10.0.0.1"})
    assert response.status_code == 403
    assert not OutboundAllowRule.objects.exists()
