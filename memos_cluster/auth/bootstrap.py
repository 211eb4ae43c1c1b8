"""Where the bootstrap admin key comes from: the environment variable `auth.admin_key_env`
wins, else the file `auth.admin_key_file` (default data_dir/auth/admin.key). Nothing is baked in.

Who calls it: the auth actor when it starts (`read_bootstrap_key`), and `cluster.start` for a
local cluster, which writes a fresh key file when neither is set (`ensure_local_admin_key`).
"""
from __future__ import annotations

import os
from typing import Mapping, Optional

from memos_cluster.auth.keys import check_bootstrap_key, new_secret
from memos_cluster.core.config import MemosConfig


def read_bootstrap_key(config: MemosConfig,
                       environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    environ = os.environ if environ is None else environ
    name = config.auth.admin_key_env
    if name and environ.get(name):
        return check_bootstrap_key(environ[name], f"${name}")
    path = config.admin_key_path()
    if path.is_file():
        return check_bootstrap_key(path.read_text(), str(path))
    return None


def ensure_local_admin_key(config: MemosConfig) -> str:
    """The bootstrap key, writing a random one to admin_key_file (mode 0600) if none is set."""
    key = read_bootstrap_key(config)
    if key is not None:
        return key
    path = config.admin_key_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = new_secret()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(key + "\n")
    return key
