"""What every `memos-cluster` command module shares: the client a command talks to, and where
the LoCoMo sample lives. Its own module so the command modules need not import memos_cluster.cli
(which imports them)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from memos_cluster.config import MemosConfig


def default_locomo_path() -> Optional[str]:
    """$MEMOS_LOCOMO, else ../shared/data/locomo/locomo-dev5.json beside the cwd or the repo."""
    candidates = [os.environ.get("MEMOS_LOCOMO", "")]
    for base in (Path.cwd(), Path(__file__).resolve().parent.parent):
        candidates.append(str(base.parent / "shared" / "data" / "locomo" / "locomo-dev5.json"))
    return next((c for c in candidates if c and Path(c).is_file()), None)


def gateway_address(args, config: MemosConfig) -> str:
    """--address where the command has it, else the configured gateway."""
    return getattr(args, "address", None) or f"{config.gateway.host}:{config.gateway.grpc_port}"


def client_for(args, config: MemosConfig):
    """The command's client: --address, else the configured gateway."""
    from memos_cluster.client import MemosClient

    return MemosClient(gateway_address(args, config), application=config.gateway.app_name)
