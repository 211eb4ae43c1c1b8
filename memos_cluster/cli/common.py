"""What every `memos-cluster` command module shares: the client a command talks to, and where
the LoCoMo sample lives. Its own module so the command modules need not import
memos_cluster.cli.main (which imports them)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from memos_cluster.core.config import MemosConfig


def default_locomo_path() -> Optional[str]:
    """$MEMOS_LOCOMO, else ../shared/data/locomo/locomo-dev5.json beside the cwd or the repo."""
    candidates = [os.environ.get("MEMOS_LOCOMO", "")]
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidates.append(str(base.parent / "shared" / "data" / "locomo" / "locomo-dev5.json"))
    return next((c for c in candidates if c and Path(c).is_file()), None)


def gateway_address(args, config: MemosConfig) -> str:
    """--address where the command has it, else the configured gateway."""
    return getattr(args, "address", None) or f"{config.gateway.host}:{config.gateway.grpc_port}"


def api_key_for(config: MemosConfig) -> str:
    """The key a command sends: $MEMOS_API_KEY, else the bootstrap admin key this machine can
    see ($MEMOS_ADMIN_KEY or auth.admin_key_file, which `up` writes), else none."""
    from memos_cluster.auth.bootstrap import read_bootstrap_key
    from memos_cluster.client import API_KEY_ENV

    return os.environ.get(API_KEY_ENV) or read_bootstrap_key(config) or ""


def client_for(args, config: MemosConfig):
    """The command's client: --address, else the configured gateway; grpcs:// addresses take
    --tls-ca (a private CA), and --tls-cert/--tls-key for gateways that require one."""
    from memos_cluster.client import MemosClient, TLSOptions

    ca, cert, key = (getattr(args, name, None) for name in ("tls_ca", "tls_cert", "tls_key"))
    tls = TLSOptions(ca or "", cert or "", key or "") if (ca or cert or key) else None
    return MemosClient(gateway_address(args, config), application=config.gateway.app_name,
                       api_key=api_key_for(config), tls=tls)
