"""`memos-cluster mcp-config`: the snippet an MCP client (Claude Desktop, Claude Code, Cursor,
the OpenAI Agents SDK) needs to use this cluster's memory tools at the gateway's /mcp."""
from __future__ import annotations

import json

from memos_cluster.core.config import MemosConfig

KEY_PLACEHOLDER = "<an API key: memos-cluster key create --user USER>"


def mcp_config(url: str, key: str, name: str = "memos") -> dict:
    """The `mcpServers` entry for streamable HTTP, with the key as a bearer header."""
    return {"mcpServers": {name: {"type": "http", "url": url,
                                  "headers": {"Authorization": f"Bearer {key}"}}}}


def cmd_mcp_config(args, config: MemosConfig) -> int:
    host = args.host or config.gateway.host
    url = f"{args.scheme}://{host}:{config.gateway.http_port}/mcp"
    print(json.dumps(mcp_config(url, args.key or KEY_PLACEHOLDER, args.name), indent=2))
    return 0


def add_mcp_command(sub) -> None:
    """Who calls it: `memos_cluster.cli.main.build_parser`."""
    mcp = sub.add_parser("mcp-config", help="print the MCP client configuration (JSON) for "
                                            "this cluster's memory tools")
    mcp.add_argument("--key", help="the API key to put in it (default: a placeholder; keys "
                                   "are secrets, so the admin key is never printed)")
    mcp.add_argument("--host", help="the host clients reach the gateway at (default: "
                                    "gateway.host)")
    mcp.add_argument("--scheme", default="http", choices=("http", "https"))
    mcp.add_argument("--name", default="memos", help="the server's name in the client")
