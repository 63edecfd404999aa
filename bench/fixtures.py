"""Shared set-up for benchmarks: a small network with many volunteers, loaded
through the application's batch path, and an admin key."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from infra.settings import Settings
from services import commands as c
from services.application import BatchItem
from services.bootstrap import build_application
from services.keys import KeyStore
from services.principals import SYSTEM, Role

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def resident_id(n: int) -> str:
    """A valid 18-character resident identity number, unique per ``n``."""
    born = date(1950, 1, 1) + timedelta(days=n // 1000)
    body = f"110105{born:%Y%m%d}{n % 1000:03d}"
    total = sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True))
    return body + _CHECK[total % 11]


def prepare_network(data_dir: Path, volunteers: int) -> tuple[dict[str, str], str, list[str]]:
    settings = Settings(data_dir=data_dir)
    app = build_application(settings)
    center = app.execute(c.OpenUnit(code="c", name="中心", tier="center"), SYSTEM).result
    institute = app.execute(
        c.OpenUnit(code="i", name="所", tier="institute", parent_id=center["unit_id"]), SYSTEM
    ).result
    station = app.execute(
        c.OpenUnit(code="s", name="站", tier="station", parent_id=institute["unit_id"]), SYSTEM
    ).result["unit_id"]
    ids: list[str] = []
    for start in range(0, volunteers, 1000):
        items = [
            BatchItem(
                c.RegisterVolunteer(
                    home_station_id=station,
                    name=f"志愿者{n}",
                    phone="13800000000",
                    id_number=resident_id(n),
                )
            )
            for n in range(start, min(start + 1000, volunteers))
        ]
        for outcome in app.execute_batch(items, SYSTEM):
            if not outcome.ok or outcome.result is None:
                raise RuntimeError(f"bench set-up failed: {outcome.error}")
            ids.append(outcome.result["volunteer_id"])
    app.close()
    _, token = KeyStore(settings.keys_db).create(Role.ADMIN, "bench")
    return {"CIVIC_DATA_DIR": str(data_dir), "CIVIC_LOG_FORMAT": "json"}, token, ids
