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
])
def test_parse_address(address, expected):
    assert parse_address(address) == expected


@pytest.mark.parametrize("address", ["http://x:1", "grpc://nohost", "grpc://:9000", "tcp://a:1"])
def test_bad_addresses_name_the_problem(address):
    with pytest.raises(InvalidArgument) as info:
        parse_address(address)
    assert info.value.field == "address"


def test_grpc_client_construction_does_no_io():
    # Nothing listens on port 9; constructing must still succeed (the channel is lazy).
    with MemosClient("127.0.0.1:9", application="x") as client:
        assert isinstance(client._transport, GrpcTransport)
        assert client.address == "127.0.0.1:9"
