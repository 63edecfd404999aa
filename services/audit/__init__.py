"""The auditor's tools over the event store: the hash chain and its checkpoints,
histories, the personal-data access log, service certificates and exports.

Each module speaks simple types and pydantic models; the HTTP routes
(``services/api/routes/audit.py``) and the CLI (``services/cli_audit_integrity.py``)
are thin over them.
"""
