"""Mutual TLS on the gateway (gateway.tls_port, opened by the servicer hook on Serve's own gRPC
server, with gateway.tls_client_ca_file): a client that trusts the CA and presents a certificate
it signed gets through (with its API key: TLS does not replace one); a client without a
certificate, with a rogue one, trusting another CA, or speaking plaintext to the TLS port never
reaches the service. Server-only TLS is tested in tests/unit/test_grpc_servicer.py."""
import pytest

from memos_cluster.client import MemosClient, TLSOptions
from memos_cluster.core.errors import Unauthenticated, Unavailable


@pytest.fixture
def tls_address(running, config):
    return f"grpcs://127.0.0.1:{config.gateway.tls_port}?app={config.gateway.app_name}"


def mutual(tls_dir, stem="client", ca="ca"):
    return TLSOptions(ca_file=str(tls_dir / f"{ca}.pem"), cert_file=str(tls_dir / f"{stem}.pem"),
                      key_file=str(tls_dir / f"{stem}.key"))


def test_mutual_tls_with_a_key(tls_address, tls_dir):
    with MemosClient(tls_address, tls=mutual(tls_dir), timeout_s=30) as client:
        assert client.whoami().role == "admin"
        client.ping()
    with MemosClient(tls_address, api_key="", tls=mutual(tls_dir), timeout_s=30) as anonymous:
        with pytest.raises(Unauthenticated):
            anonymous.ping()


@pytest.mark.parametrize("case", ["no-client-cert", "rogue-client-cert", "wrong-ca",
                                  "plaintext"])
def test_untrusted_peers_do_not_get_through(tls_address, tls_dir, config, case):
    options = {"no-client-cert": TLSOptions(ca_file=str(tls_dir / "ca.pem")),
               "rogue-client-cert": mutual(tls_dir, stem="rogue"),
               "wrong-ca": mutual(tls_dir, ca="rogue-ca")}
    if case == "plaintext":
        client = MemosClient(f"127.0.0.1:{config.gateway.tls_port}", timeout_s=5)
    else:
        client = MemosClient(tls_address, timeout_s=5, tls=options[case])
    with client, pytest.raises(Unavailable):
        client.ping()
