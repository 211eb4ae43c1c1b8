"""How a client address picks its transport (no connection is made)."""
import pytest

from memos_cluster.client import MemosClient, parse_address
from memos_cluster.client.grpc_transport import GrpcTransport
from memos_cluster.core.errors import InvalidArgument


@pytest.mark.parametrize("address, expected", [
    ("127.0.0.1:9000", ("grpc", "127.0.0.1:9000", None)),
    ("grpc://gw.example:9000", ("grpc", "gw.example:9000", None)),
    ("grpc://gw:9000?app=team", ("grpc", "gw:9000", "team")),
    ("ray://", ("ray", "", None)),
    ("ray://?app=memos-prod", ("ray", "", "memos-prod")),
    ("ray://10.0.0.5:6379", ("ray", "10.0.0.5:6379", None)),
    ("http://127.0.0.1:8000", ("http", "http://127.0.0.1:8000", None)),
    ("https://memos.example", ("https", "https://memos.example", None)),
])
def test_parse_address(address, expected):
    assert parse_address(address) == expected


@pytest.mark.parametrize("address", ["http://", "grpc://nohost", "grpc://:9000", "tcp://a:1"])
def test_bad_addresses_name_the_problem(address):
    with pytest.raises(InvalidArgument) as info:
        parse_address(address)
    assert info.value.field == "address"


def test_grpc_client_construction_does_no_io():
    # Nothing listens on port 9; constructing must still succeed (the channel is lazy).
    with MemosClient("127.0.0.1:9", application="x") as client:
        assert isinstance(client._transport, GrpcTransport)
        assert client.address == "127.0.0.1:9"


def test_http_client_construction_does_no_io_and_an_unreachable_gateway_is_unavailable():
    from memos_cluster.client.http_transport import HttpTransport
    from memos_cluster.core.errors import Unavailable

    with MemosClient("http://127.0.0.1:9", timeout_s=5) as client:
        assert isinstance(client._transport, HttpTransport)
        with pytest.raises(Unavailable):
            client.ping()
