"""The audit secret fails fast in production, like the document secret."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from infra.settings import Settings

STRONG = "a" * 20 + "b" * 20


def test_production_needs_a_strong_audit_secret(tmp_path: Path) -> None:
    # keyword arguments for the settings model, which validates (and converts) them
    base: dict[str, Any] = {
        "environment": "production",
        "data_dir": tmp_path,
        "document_secret": STRONG,
        "vault_master_key": "v" * 40,
    }
    with pytest.raises(ValidationError, match="CIVIC_AUDIT_SECRET"):
        Settings(**base)
    with pytest.raises(ValidationError, match="CIVIC_AUDIT_SECRET"):
        Settings(**base, audit_secret="changeme")
    with pytest.raises(ValidationError, match="CIVIC_AUDIT_SECRET"):
        Settings(**base, audit_secret=STRONG)  # the same key as the document secret
    settings = Settings(**base, audit_secret="c" * 40)
    assert settings.audit_secret_bytes() == b"c" * 40


def test_development_generates_one_and_keeps_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = settings.audit_secret_bytes()
    assert len(first) >= 32
    assert Settings(data_dir=tmp_path).audit_secret_bytes() == first
    assert (tmp_path / "audit-secret").stat().st_mode & 0o077 == 0
