"""The certificate uvicorn serves https:// and wss:// with (TLS_CERT_FILE + TLS_KEY_FILE, or TLS=self-signed).

Browsers give a page the microphone only on https:// (or localhost), and OpenAI's JS realtime client connects with
wss:// only; so an appliance on a LAN needs TLS of its own, without a proxy in front.

- TLS_CERT_FILE + TLS_KEY_FILE: the operator's certificate (a chain in PEM) and key, checked to load at start-up.
- TLS=self-signed: made here once and kept in MODELS_DIR/.tls (the data volume): a certificate authority of its
  own (`ca.pem`, the file clients trust: NODE_EXTRA_CA_CERTS, the system's or browser's authorities) and a server
  certificate it signs (`cert.pem`, `key.pem`) for this machine's names, `localhost`, 127.0.0.1, ::1 and TLS_NAMES.
  The authority's key signs once and is never written anywhere, so trusting `ca.pem` trusts this one server
  certificate and nothing that could be made later. Start-up reuses the files while they cover `localhost`, the
  loopback addresses and TLS_NAMES (not the host name: a container's changes when it is re-created) and have
  more than RENEW_BEFORE_DAYS left; otherwise it makes new ones (to be trusted anew).

The SHA-256 fingerprints (as browsers show them) go to the log and to /health, so a user can check what they
accept or trust.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
from pathlib import Path
from typing import Literal

import msgspec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from app.settings import HttpSettings, SettingsError

TLS_FOLDER = ".tls"  # under MODELS_DIR
CERT_DAYS = 825  # the longest validity Apple's platforms accept for a server certificate, whoever issued it
RENEW_BEFORE_DAYS = 30
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TlsSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What /health says about the certificate served: no paths (they are the server's business)."""

    mode: Literal["files", "self-signed"]
    fingerprint_sha256: str  # of the server certificate, as browsers show it (AB:CD:...)
    ca_fingerprint_sha256: str | None  # self-signed: of the authority to trust
    names: list[str]  # the DNS names and addresses it is valid for
    not_after: str  # ISO 8601, UTC


class ServerCertificate(msgspec.Struct, frozen=True, kw_only=True):
    """What uvicorn serves, and what /health and the log say about it."""

    mode: Literal["files", "self-signed"]
    cert_file: Path
    key_file: Path
    fingerprint_sha256: str  # of the server certificate
    names: tuple[str, ...]  # the DNS names and addresses it is valid for
    not_after: str  # ISO 8601, UTC
    ca_file: Path | None = None  # self-signed: the authority to trust
    ca_fingerprint_sha256: str | None = None

    def summary(self) -> TlsSummary:
        return TlsSummary(
            mode=self.mode,
            fingerprint_sha256=self.fingerprint_sha256,
            ca_fingerprint_sha256=self.ca_fingerprint_sha256,
            names=list(self.names),
            not_after=self.not_after,
        )


def prepare_tls(http: HttpSettings, models_dir: Path) -> ServerCertificate | None:
    """The certificate to serve (made or checked now), or None without TLS. SettingsError when it cannot be had."""
    if http.tls_cert_file:
        return operator_certificate(Path(http.tls_cert_file), Path(http.tls_key_file))
    if http.tls == "self-signed":
        return self_signed(models_dir / TLS_FOLDER, http.tls_names)
    return None


def operator_certificate(cert_file: Path, key_file: Path) -> ServerCertificate:
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert_file, key_file)
        leaf = x509.load_pem_x509_certificates(cert_file.read_bytes())[0]
    except (OSError, ValueError, ssl.SSLError) as exc:
        raise SettingsError(
            f"TLS_CERT_FILE/TLS_KEY_FILE: cannot load {cert_file} with {key_file} ({type(exc).__name__}: {exc})"
        ) from None
    return _described("files", cert_file, key_file, leaf)


def self_signed(folder: Path, extra_names: tuple[str, ...]) -> ServerCertificate:
    """The self-signed certificate in `folder`, made (again) when missing, not covering the names or expiring."""
    required = _unique([*LOOPBACK_NAMES, *extra_names])
    cert_file, key_file, ca_file = folder / "cert.pem", folder / "key.pem", folder / "ca.pem"
    existing = _usable(cert_file, key_file, ca_file, required)
    if existing is not None:
        return existing
    try:
        _make(folder, _unique([*_machine_names(), *required]))
    except OSError as exc:
        raise SettingsError(f"TLS=self-signed: cannot write the certificate into {folder} ({exc})") from None
    made = _usable(cert_file, key_file, ca_file, required)
    assert made is not None, "a certificate just made covers its names"
    return made


def _machine_names() -> list[str]:
    """This machine's host name, its fully qualified name and its mDNS name (`<host>.local`)."""
    host = socket.gethostname()
    names = [host, socket.getfqdn()]
    if host and "." not in host:
        names.append(f"{host}.local")
    return [n for n in names if n]


def _usable(cert_file: Path, key_file: Path, ca_file: Path, required: list[str]) -> ServerCertificate | None:
    if not (cert_file.is_file() and key_file.is_file() and ca_file.is_file()):
        return None
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert_file, key_file)
        leaf = x509.load_pem_x509_certificate(cert_file.read_bytes())
        ca = x509.load_pem_x509_certificate(ca_file.read_bytes())
    except (OSError, ValueError, ssl.SSLError):
        return None  # damaged or foreign files: make new ones
    described = _described("self-signed", cert_file, key_file, leaf, ca_file=ca_file, ca=ca)
    left = leaf.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    covered = {_canonical(n) for n in described.names} >= {_canonical(n) for n in required}
    if not covered or left < datetime.timedelta(days=RENEW_BEFORE_DAYS) or leaf.issuer != ca.subject:
        return None
    return described


def _make(folder: Path, names: list[str]) -> None:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"STT appliance on {names[0]} (local CA)")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write(folder / "key.pem", key_pem, mode=0o600)
    _write(folder / "cert.pem", leaf.public_bytes(serialization.Encoding.PEM), mode=0o644)
    _write(folder / "ca.pem", ca.public_bytes(serialization.Encoding.PEM), mode=0o644)


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _write(path: Path, data: bytes, *, mode: int) -> None:
    """Atomically, with its permissions from the start (the key is never readable by others, even briefly)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as f:
        f.write(data)
    os.replace(temporary, path)


def _general_name(name: str) -> x509.GeneralName:
    address = _address(name)
    return x509.IPAddress(address) if address is not None else x509.DNSName(name)


def _address(name: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return None


def _canonical(name: str) -> str:
    address = _address(name)
    return str(address) if address is not None else name.lower().rstrip(".")


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(n.strip() for n in names if n.strip()))


def _described(
    mode: Literal["files", "self-signed"],
    cert_file: Path,
    key_file: Path,
    leaf: x509.Certificate,
    *,
    ca_file: Path | None = None,
    ca: x509.Certificate | None = None,
) -> ServerCertificate:
    try:
        alternative = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [*alternative.get_values_for_type(x509.DNSName)]
        names += [str(a) for a in alternative.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = []
    return ServerCertificate(
        mode=mode,
        cert_file=cert_file,
        key_file=key_file,
        fingerprint_sha256=fingerprint(leaf),
        names=tuple(names),
        not_after=leaf.not_valid_after_utc.isoformat(),
        ca_file=ca_file,
        ca_fingerprint_sha256=None if ca is None else fingerprint(ca),
    )


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, as browsers show it: AB:CD:..."""
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()
