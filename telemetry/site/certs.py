"""A development CA and per-site certificates for mutual TLS between agents and the controller.

Each site certificate names its site twice: subject CN = the site id and a URI SAN
``spiffe://edgeslice/site/<id>``; the controller accepts a Hello only for the site its client
certificate names. The controller's certificate carries DNS/IP SANs for where agents dial it.
For trying things out (``slicectl agent certs``), not a production PKI.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from slices import errors

SPIFFE_SITE = "spiffe://edgeslice/site/"
CA_NAME = "edgeslice dev CA"
CONTROLLER_NAME = "edgeslice-controller"


@dataclass(frozen=True)
class PemPair:
    cert: bytes
    key: bytes


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _validity(builder: x509.CertificateBuilder, days: int) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return builder.not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(
        now + dt.timedelta(days=days)
    )


def create_ca(days: int = 365) -> PemPair:
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
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
    )
    cert = _validity(builder, days).sign(key, hashes.SHA256())
    return PemPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _issue(
    ca: PemPair, subject: x509.Name, sans: list[x509.GeneralName], usage: x509.ObjectIdentifier, days: int
) -> PemPair:
    try:
        ca_cert = x509.load_pem_x509_certificate(ca.cert)
        ca_key = serialization.load_pem_private_key(ca.key, password=None)
    except ValueError as exc:
        raise errors.InvalidSpec(f"CA: not a PEM certificate and key: {exc}") from exc
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise errors.InvalidSpec("CA: the key is not an EC key made by `slicectl agent certs`")
    key = _key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = _validity(builder, days).sign(ca_key, hashes.SHA256())
    return PemPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def client_certificate(
    ca: PemPair, common_name: str, organisation: str | None = None, uris: Sequence[str] = (), days: int = 365
) -> PemPair:
    """A client certificate: subject CN (and O, which Kubernetes reads as the user's group), URI SANs."""
    subject = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organisation:
        subject.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in uris]
    return _issue(ca, x509.Name(subject), sans, ExtendedKeyUsageOID.CLIENT_AUTH, days)


def site_certificate(ca: PemPair, site: str, days: int = 365) -> PemPair:
    """A client certificate for the agent of ``site``."""
    return client_certificate(ca, site, uris=[SPIFFE_SITE + site], days=days)


def controller_certificate(
    ca: PemPair, hosts: tuple[str, ...] = ("localhost", "127.0.0.1"), days: int = 365
) -> PemPair:
    """A server certificate for the controller, valid for ``hosts`` (DNS names or IP addresses)."""
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CONTROLLER_NAME)])
    return _issue(ca, name, sans, ExtendedKeyUsageOID.SERVER_AUTH, days)


def certificate_sites(cert_pem: bytes) -> set[str]:
    """The site ids a certificate names (CN and spiffe URI SANs)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    out = {str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)}
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return out
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith(SPIFFE_SITE):
            out.add(uri[len(SPIFFE_SITE) :])
    return out


def write_pair(pair: PemPair, directory: Path, stem: str) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert.write_bytes(pair.cert)
    key.touch(mode=0o600)
    key.write_bytes(pair.key)
    return cert, key


def load_pair(directory: Path, stem: str) -> PemPair:
    try:
        return PemPair((directory / f"{stem}.crt").read_bytes(), (directory / f"{stem}.key").read_bytes())
    except OSError as exc:
        raise errors.InvalidSpec(
            f"{directory}/{stem}: cannot read certificate or key: {exc.strerror}"
        ) from exc


def create_dev_pki(
    directory: Path, sites: list[str], hosts: tuple[str, ...] = ("localhost", "127.0.0.1"), days: int = 365
) -> dict[str, tuple[Path, Path]]:
    """Write ``ca``, ``controller`` and one pair per site into ``directory`` (reusing an existing CA);
    returns stem → (cert, key) paths."""
    ca = load_pair(directory, "ca") if (directory / "ca.crt").exists() else create_ca(days)
    out = {"ca": write_pair(ca, directory, "ca")}
    out["controller"] = write_pair(controller_certificate(ca, hosts, days), directory, "controller")
    for site in sites:
        out[site] = write_pair(site_certificate(ca, site, days), directory, f"site-{site}")
    return out
