"""Users with API keys for the integration suites (tests/ is on the path: pyproject's
pytest `pythonpath`)."""
import uuid

from memos_cluster.client import MemosClient


def new_users(admin: MemosClient, names, **key_options) -> dict:
    """A user a name (`name-<run id>`) with one API key each: {name: (user id, key)}.
    Who calls it: the tenancy and fuzz suites, with the admin's client."""
    run = uuid.uuid4().hex[:6]
    made = {}
    for name in names:
        user_id = f"{name}-{run}"
        admin.create_user(user_id)
        made[name] = (user_id, admin.create_key(user_id, **key_options)[1])
    return made
