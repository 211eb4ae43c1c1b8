"""Throwaway certificates for the TLS tests: a CA, a server certificate for 127.0.0.1/localhost
signed by it, a client certificate signed by it, and an unrelated CA (PEM files in a folder)."""
from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(folder: Path, stem: str, key, cert) -> None:
    (folder / f"{stem}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (folder / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _issue(common_name: str, issuer_key, issuer_name, is_ca: bool, sans=None):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(common_name))
               .issuer_name(issuer_name or _name(common_name)).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return key, builder.sign(issuer_key or key, hashes.SHA256())


def make_certs(folder: Path) -> Path:
    """ca.pem, server.pem/.key, client.pem/.key (signed by ca), rogue-ca.pem, rogue.pem/.key."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca = _issue("memos test CA", None, None, True)
    _write(folder, "ca", ca_key, ca)
    sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    _write(folder, "server", *_issue("localhost", ca_key, ca.subject, False, sans))
    _write(folder, "client", *_issue("agent-1", ca_key, ca.subject, False))
    rogue_key, rogue_ca = _issue("rogue CA", None, None, True)
    _write(folder, "rogue-ca", rogue_key, rogue_ca)
    _write(folder, "rogue", *_issue("intruder", rogue_key, rogue_ca.subject, False))
    return folder
