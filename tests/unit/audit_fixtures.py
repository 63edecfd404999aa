"""Fixtures for the audit-and-replay tests: the district of ``audit_scenario`` on a
platform whose read models are caught up by hand (no runner threads)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.settings import Settings
from services.bootstrap import Platform
from tests.unit.audit_scenario import District


def catch_up(platform: Platform) -> None:
    for runner in platform.runners.values():
        runner.catch_up()


@pytest.fixture(name="audit_platform")
def audit_platform_fixture(tmp_path: Path) -> Iterator[Platform]:
    settings = Settings(
        data_dir=tmp_path / "data",
        document_secret="test-document-secret-0123456789abcdef",
        log_format="json",
    )
    platform = Platform.build(settings)
    try:
        yield platform
    finally:
        platform.close()


@pytest.fixture(name="district")
def district_fixture(audit_platform: Platform) -> District:
    return District(audit_platform.app).build()
