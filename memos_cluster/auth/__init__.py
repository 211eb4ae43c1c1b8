"""Tenancy and security: users with roles, API keys stored as salted hashes, cube owners and
grants (state.py, registry.py), who may call what (access.py), per-key rate limits
(ratelimit.py), the audit log (audit.py) and the bootstrap admin key (bootstrap.py)."""
