"""TLS for RESP clients and peer links (Python's ssl), from the config's ``tls:`` section.

Peers use mutual TLS: each side presents the node certificate and requires
the other's, signed by the cluster CA (the HMAC handshake of peer_auth.py
still runs inside). Host names are not checked between peers: membership is
proven by the CA signature and the cluster secret, and replicas are often
addressed by IP. RESP clients are verified as Redis's ``tls-auth-clients``
says: ``yes`` (a certificate is required), ``optional`` (checked if given),
``no``.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass


@dataclass
class TlsConfig:
    cert_file: str
    key_file: str
    ca_file: str
    auth_clients: str = "optional"  # yes | optional | no


def _base(ctx: ssl.SSLContext, tls: TlsConfig) -> ssl.SSLContext:
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(tls.cert_file, tls.key_file)
    ctx.load_verify_locations(tls.ca_file)
    return ctx


def client_server_context(tls: TlsConfig) -> ssl.SSLContext:
    """The RESP listener's context."""
    ctx = _base(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), tls)
    ctx.verify_mode = {"yes": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "no": ssl.CERT_NONE}[tls.auth_clients]
    return ctx


def peer_server_context(tls: TlsConfig) -> ssl.SSLContext:
    ctx = _base(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), tls)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def peer_client_context(tls: TlsConfig) -> ssl.SSLContext:
    ctx = _base(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), tls)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
