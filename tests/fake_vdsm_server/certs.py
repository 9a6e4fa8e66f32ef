"""Test PKI made on the fly with ``cryptography``: a CA, VDSM's server
certificate and the client certificate MOM presents, laid out like VDSM's
``/etc/pki/vdsm`` (``keys/vdsmkey.pem``, ``certs/vdsmcert.pem``,
``certs/cacert.pem``), plus a second, unrelated CA for "wrong CA" tests.

EC P-256 keys: generating them takes microseconds, RSA would take tenths of
a second per key.  The server certificate names a host name, not
127.0.0.1, as VDSM's does (clients must not check the host name).
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Pki:
    """Paths of the files one test PKI wrote."""
    pki_dir: str            # like /etc/pki/vdsm: keys/, certs/ below
    ca_cert: str            # certs/cacert.pem
    client_key: str         # keys/vdsmkey.pem (what MOM presents)
    client_cert: str        # certs/vdsmcert.pem
    server_key: str
    server_cert: str
    other_ca_cert: str      # a CA that signed nothing here
    other_client_key: str   # a client identity signed by the other CA
    other_client_cert: str

    # The [vdsm] keys of mom.conf for this PKI
    key_file: str = "keys/vdsmkey.pem"
    cert_file: str = "certs/vdsmcert.pem"
    ca_cert_file: str = "certs/cacert.pem"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str,
          issuer_key: ec.EllipticCurvePrivateKey, ca: bool,
          dns: str | None = None) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1))
               .not_valid_after(now + datetime.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True,
            crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_key.public_key()), critical=False)
    if dns:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: str, data: bytes, mode: int = 0o644) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)
    return path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_pki(directory: str) -> Pki:
    """Write a fresh PKI under ``directory``; VDSM's layout below it."""
    ca_key, other_ca_key = _key(), _key()
    ca = _cert("VDSM Test CA", ca_key, "VDSM Test CA", ca_key, ca=True)
    other_ca = _cert("Some Other CA", other_ca_key, "Some Other CA", other_ca_key, ca=True)
    server_key, client_key, other_client_key = _key(), _key(), _key()
    host = "vdsm-host.example.test"
    server = _cert(host, server_key, "VDSM Test CA", ca_key, ca=False, dns=host)
    client = _cert(host, client_key, "VDSM Test CA", ca_key, ca=False, dns=host)
    other_client = _cert("intruder", other_client_key, "Some Other CA", other_ca_key,
                         ca=False)
    join = os.path.join
    return Pki(
        pki_dir=directory,
        ca_cert=_write(join(directory, "certs", "cacert.pem"), _cert_pem(ca)),
        client_key=_write(join(directory, "keys", "vdsmkey.pem"), _key_pem(client_key), 0o600),
        client_cert=_write(join(directory, "certs", "vdsmcert.pem"), _cert_pem(client)),
        server_key=_write(join(directory, "server", "serverkey.pem"), _key_pem(server_key),
                          0o600),
        server_cert=_write(join(directory, "server", "servercert.pem"), _cert_pem(server)),
        other_ca_cert=_write(join(directory, "other", "cacert.pem"), _cert_pem(other_ca)),
        other_client_key=_write(join(directory, "other", "key.pem"),
                                _key_pem(other_client_key), 0o600),
        other_client_cert=_write(join(directory, "other", "cert.pem"),
                                 _cert_pem(other_client)),
    )
