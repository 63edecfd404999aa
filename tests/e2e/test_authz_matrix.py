"""The authorisation matrix: every write route the OpenAPI schema documents, and
every command type a ``/v1/batch`` item may carry, against every kind of caller
that must not reach its target; and the reads that expose personal data, refused
outside the subtree and served inside it.

The network: one center, two institutes, a station under each. The targets are
whole "worlds" of objects (an activity with a sign-up, a served activity with a
correction request, a reward and a redemption, a team, a menu item and an approved
order, a wish, a venture call with a project, a fund, a key) opened by an admin at
three places: the second station (aimed at from the *first* institute's subtree),
the second institute and the center (aimed at *upward* by the second station's own
unit admin).

Callers, each a column of the matrix: no token, a malformed token, a revoked
admin key (401); an auditor, a unit admin and a service key of the first
institute, the second station's unit admin acting on its parent institute and on
the center (403). Every refusal must be an RFC 9457 problem
(``application/problem+json`` with ``type``, ``title``, ``status``), and neither
the event store's head nor the key store may move. ``what-if`` and certificate
verification only compute: the auditor they are for gets 200, and the head still
must not move. Requests that name one object the caller reaches and one it does
not (its own reward, another institute's volunteer) must be refused too, by reach
or by a domain rule, with nothing recorded. Controls prove the refusals are about
reach: the same requests from a unit admin inside the subtree go through, and each
refused key acts within its own reach.

The matrix is parametrised over the union of what the schema documents and what
the matrix lists, so a write route or batch command type added without a matrix
entry fails here (as does an entry whose route is gone).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi.testclient import TestClient

from infra.settings import Settings
from services.api.app import create_app
from services.api.ratelimit import AuthFailureLimiter
from services.bootstrap import Platform
from services.keys import KeyStore, parse_token
from services.principals import Role
from tests.conftest import Clock, bearer, resident_id
from tests.e2e.conftest import Api

pytestmark = pytest.mark.e2e

PROBLEM = "application/problem+json"
WRITE_METHODS = ("post", "put", "patch", "delete")
REASON = "核查"
VOLUNTEER_NAME = "上官婉清"  # the second station's volunteer: personal data to look for
RESIDENT_NAME = "欧阳秀珍"  # the resident on the second station's order

Route = tuple[str, str]  # (method, path template) as the OpenAPI schema spells them


# -- what the schema documents (read at collection time) ------------------------------------


def _schema() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        schema: dict[str, Any] = create_app(Settings(data_dir=Path(tmp))).openapi()
    return schema


SCHEMA = _schema()
DISCOVERED_WRITES: frozenset[Route] = frozenset(
    (method, path)
    for path, item in SCHEMA["paths"].items()
    for method in item
    if method in WRITE_METHODS
)


def _batch_types(schema: dict[str, Any]) -> frozenset[str]:
    """The command types a batch item may carry, from the item's discriminated union."""
    command = schema["components"]["schemas"]["BatchItemIn"]["properties"]["command"]
    mapping = command.get("discriminator", {}).get("mapping")
    if mapping:
        return frozenset(mapping)
    types = set()
    for ref in command["oneOf"]:
        one = schema["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]
        kind = one["properties"]["type"]
        types.add(kind.get("const") or kind["enum"][0])
    return frozenset(types)


DISCOVERED_BATCH_TYPES = _batch_types(SCHEMA)


# -- the targets ----------------------------------------------------------------------------


@dataclass
class World:
    """The objects of one unit, opened by an admin: what a caller that must not reach
    the unit aims at."""

    unit: str
    open_parent: str  # a unit to open a child under, and the child's tier
    child_tier: str
    volunteer: str  # signed up to ``activity``, leads ``team``, redeemed ``redemption``
    server: str  # served at ``served`` and asked for its correction
    activity: str
    served: str
    reward: str
    redemption: str
    correction: str
    team: str
    item: str
    order: str
    wish: str
    call: str
    project: str
    fund: str
    donation: str  # a receipt naming a donor, in ``fund``
    key_id: str
    certificate: dict[str, Any]


Fields = Callable[[World], dict[str, Any]]


def _vol(w: World, **more: Any) -> dict[str, Any]:
    return {"volunteer_id": w.volunteer, **more}


def _project(w: World, **more: Any) -> dict[str, Any]:
    return {"call_id": w.call, "project_id": w.project, **more}


def _reason(**ids: str) -> dict[str, Any]:
    return {**ids, "reason": REASON}


# Each command's fields aimed at a world; a route's path parameters are taken from
# them by name, the rest is its body (its query for DELETE). Key management and the
# two computing POSTs are not commands but are listed the same way.
FIELDS: dict[str, Fields] = {
    "open_unit": lambda w: {
        "code": f"m-{uuid4().hex[:12]}",
        "name": "新单位",
        "tier": w.child_tier,
        "parent_id": w.open_parent,
    },
    "rename_unit": lambda w: {"unit_id": w.unit, "name": "改名", "reason": REASON},
    "close_unit": lambda w: _reason(unit_id=w.unit),
    "register_volunteer": lambda w: {
        "home_station_id": w.unit,
        "name": "某某",
        "phone": "13500000000",
        "id_number": resident_id(),
    },
    "update_volunteer_profile": lambda w: _vol(w, name="某某", reason=REASON),
    "suspend_volunteer": lambda w: _vol(w, reason=REASON),
    "reinstate_volunteer": lambda w: _vol(w, reason=REASON),
    "erase_volunteer": lambda w: _vol(w, reason=REASON),
    "publish_activity": lambda w: {
        "unit_id": w.unit,
        "title": "t",
        "category": "health",
        "starts_at": "2030-01-01T09:00:00+08:00",
        "ends_at": "2030-01-01T11:00:00+08:00",
        "location": "l",
        "capacity": 5,
        "points_per_hour": 10,
    },
    "sign_up": lambda w: _vol(w, activity_id=w.activity),
    "cancel_signup": lambda w: _vol(w, activity_id=w.activity, reason=REASON),
    "check_in": lambda w: _vol(w, activity_id=w.activity),
    "check_out": lambda w: _vol(w, activity_id=w.activity),
    "confirm_service": lambda w: _vol(w, activity_id=w.activity),
    "cancel_activity": lambda w: _reason(activity_id=w.activity),
    "close_activity": lambda w: {"activity_id": w.activity},
    "award_points": lambda w: _vol(w, points=5, reason=REASON),
    "adjust_points": lambda w: _vol(w, delta=-1, reason=REASON),
    "expire_points": _vol,
    "list_reward": lambda w: {"unit_id": w.unit, "name": "米", "cost_points": 1, "stock": 1},
    "restock_reward": lambda w: {"reward_id": w.reward, "quantity": 1},
    "delist_reward": lambda w: _reason(reward_id=w.reward),
    "redeem": lambda w: _vol(w, reward_id=w.reward),
    "fulfil_redemption": lambda w: {"redemption_id": w.redemption, "note": "已领取"},
    "cancel_redemption": lambda w: _reason(redemption_id=w.redemption),
    "request_service_correction": lambda w: {
        "activity_id": w.served,
        "volunteer_id": w.server,
        "hours": "1",
        "reason": REASON,
    },
    "approve_service_correction": lambda w: {"correction_id": w.correction, "note": "同意"},
    "reject_service_correction": lambda w: _reason(correction_id=w.correction),
    "open_fund": lambda w: {"unit_id": w.unit, "title": "基金"},
    "receive_money": lambda w: {
        "fund_id": w.fund,
        "amount_fen": 100,
        "source_kind": "donation",
        "purpose": "助老",
    },
    "disburse_money": lambda w: {
        "fund_id": w.fund,
        "amount_fen": 1,
        "purpose_kind": "other",
        "purpose": "助老",
        "approved_by": "主任",
    },
    "erase_donor_data": lambda w: _reason(fund_id=w.fund, movement_id=w.donation),
    "post_wish": lambda w: {"unit_id": w.unit, "title": "书包", "resident_ref": "档案-9"},
    "claim_wish": lambda w: _vol(w, wish_id=w.wish),
    "release_wish": lambda w: _reason(wish_id=w.wish),
    "fulfil_wish": lambda w: {"wish_id": w.wish, "note": "已送到"},
    "confirm_wish": lambda w: {"wish_id": w.wish, "note": "确认"},
    "cancel_wish": lambda w: _reason(wish_id=w.wish),
    "erase_wish_resident_data": lambda w: _reason(wish_id=w.wish),
    "open_venture_call": lambda w: {
        "unit_id": w.unit,
        "title": "创投",
        "budget_fen": 100,
        "deadline": "2030-01-01T00:00:00+08:00",
    },
    "submit_project": lambda w: {
        "call_id": w.call,
        "title": "项目",
        "organisation": "社工站",
        "requested_fen": 10,
    },
    "score_project": lambda w: _project(w, reviewer="评审", score=80),
    "fund_project": lambda w: _project(w, amount_fen=10),
    "decline_project": lambda w: _project(w, reason=REASON),
    "report_milestone": lambda w: _project(w, title="中期"),
    "accept_project": lambda w: _project(w, final_score=80),
    "publish_venture_results": lambda w: {"call_id": w.call, "summary": "结果"},
    "form_team": lambda w: {
        "unit_id": w.unit,
        "name": "队",
        "kind": "team",
        "leader_id": w.volunteer,
    },
    "join_team": lambda w: _vol(w, team_id=w.team),
    "leave_team": lambda w: _vol(w, team_id=w.team, reason=REASON),
    "change_team_leader": lambda w: _vol(w, team_id=w.team, reason=REASON),
    "disband_team": lambda w: _reason(team_id=w.team),
    "assign_activity_to_team": lambda w: {"activity_id": w.activity, "team_id": w.team},
    "add_menu_item": lambda w: {
        "unit_id": w.unit,
        "category": "elderly_disabled",
        "title": "理发",
    },
    "revise_menu_item": lambda w: {
        "item_id": w.item,
        "category": "elderly_disabled",
        "title": "理发",
        "reason": REASON,
    },
    "withdraw_menu_item": lambda w: _reason(item_id=w.item),
    "place_order": lambda w: {"menu_item_id": w.item},
    "approve_order": lambda w: {"order_id": w.order, "note": "ok"},
    "reject_order": lambda w: _reason(order_id=w.order),
    "dispatch_order": lambda w: {"order_id": w.order, "team_id": w.team},
    "pass_order_down": lambda w: {"order_id": w.order, "unit_id": w.unit},
    "take_order": lambda w: {"order_id": w.order, "team_id": w.team},
    "accept_order": lambda w: {"order_id": w.order, "team_id": w.team},
    "decline_order": lambda w: _reason(order_id=w.order, team_id=w.team),
    "complete_order": lambda w: {
        "order_id": w.order,
        "team_id": w.team,
        "services": [{"volunteer_id": w.volunteer, "hours": "1"}],
    },
    "rate_order": lambda w: {"order_id": w.order, "stars": 5},
    "showcase_order": lambda w: {"order_id": w.order, "story": "好"},
    "erase_order_resident_data": lambda w: _reason(order_id=w.order),
    # not commands: the key store, and two POSTs that compute and record nothing
    "create_key": lambda w: {"name": "k", "role": "service", "unit_id": w.unit},
    "revoke_key": lambda w: {"key_id": w.key_id},
    "rotate_key": lambda w: {"key_id": w.key_id},
    "what_if": lambda w: {},
    "verify_certificate": lambda w: dict(w.certificate),
}

BATCH = "batch"
# POSTs that only compute from the history: the auditor they are for gets 200
COMPUTING = frozenset({"what_if", "verify_certificate"})
# what a batch item cannot carry: erasures (admins only, single requests), and the
# routes that are no commands
NOT_BATCHABLE = frozenset(
    {
        "erase_volunteer",
        "erase_order_resident_data",
        "erase_wish_resident_data",
        "erase_donor_data",
        "create_key",
        "revoke_key",
        "rotate_key",
        *COMPUTING,
    }
)
BATCH_COMMANDS = frozenset(FIELDS) - NOT_BATCHABLE

# Every write route: the entry of FIELDS it is built from.
ROUTES: dict[Route, str] = {
    ("post", "/v1/units"): "open_unit",
    ("post", "/v1/units/{unit_id}/rename"): "rename_unit",
    ("post", "/v1/units/{unit_id}/close"): "close_unit",
    ("post", "/v1/volunteers"): "register_volunteer",
    ("patch", "/v1/volunteers/{volunteer_id}"): "update_volunteer_profile",
    ("post", "/v1/volunteers/{volunteer_id}/suspend"): "suspend_volunteer",
    ("post", "/v1/volunteers/{volunteer_id}/reinstate"): "reinstate_volunteer",
    ("post", "/v1/volunteers/{volunteer_id}/erasure"): "erase_volunteer",
    ("post", "/v1/activities"): "publish_activity",
    ("post", "/v1/activities/{activity_id}/signups"): "sign_up",
    ("delete", "/v1/activities/{activity_id}/signups/{volunteer_id}"): "cancel_signup",
    ("post", "/v1/activities/{activity_id}/checkins"): "check_in",
    ("post", "/v1/activities/{activity_id}/checkouts"): "check_out",
    ("post", "/v1/activities/{activity_id}/confirmations"): "confirm_service",
    ("post", "/v1/activities/{activity_id}/cancel"): "cancel_activity",
    ("post", "/v1/activities/{activity_id}/close"): "close_activity",
    ("post", "/v1/passbooks/{volunteer_id}/awards"): "award_points",
    ("post", "/v1/passbooks/{volunteer_id}/adjustments"): "adjust_points",
    ("post", "/v1/passbooks/{volunteer_id}/expiry"): "expire_points",
    ("post", "/v1/rewards"): "list_reward",
    ("post", "/v1/rewards/{reward_id}/restock"): "restock_reward",
    ("post", "/v1/rewards/{reward_id}/delist"): "delist_reward",
    ("post", "/v1/redemptions"): "redeem",
    ("post", "/v1/redemptions/{redemption_id}/fulfil"): "fulfil_redemption",
    ("post", "/v1/redemptions/{redemption_id}/cancel"): "cancel_redemption",
    ("post", "/v1/corrections"): "request_service_correction",
    ("post", "/v1/corrections/{correction_id}/approval"): "approve_service_correction",
    ("post", "/v1/corrections/{correction_id}/rejection"): "reject_service_correction",
    ("post", "/v1/funds"): "open_fund",
    ("post", "/v1/funds/{fund_id}/receipts"): "receive_money",
    ("post", "/v1/funds/{fund_id}/disbursements"): "disburse_money",
    ("post", "/v1/funds/{fund_id}/movements/{movement_id}/erasure"): "erase_donor_data",
    ("post", "/v1/wishes"): "post_wish",
    ("post", "/v1/wishes/{wish_id}/claims"): "claim_wish",
    ("post", "/v1/wishes/{wish_id}/release"): "release_wish",
    ("post", "/v1/wishes/{wish_id}/fulfil"): "fulfil_wish",
    ("post", "/v1/wishes/{wish_id}/confirm"): "confirm_wish",
    ("post", "/v1/wishes/{wish_id}/cancel"): "cancel_wish",
    ("post", "/v1/wishes/{wish_id}/erasure"): "erase_wish_resident_data",
    ("post", "/v1/venture-calls"): "open_venture_call",
    ("post", "/v1/venture-calls/{call_id}/projects"): "submit_project",
    ("post", "/v1/venture-calls/{call_id}/projects/{project_id}/scores"): "score_project",
    ("post", "/v1/venture-calls/{call_id}/projects/{project_id}/funding"): "fund_project",
    ("post", "/v1/venture-calls/{call_id}/projects/{project_id}/decline"): "decline_project",
    ("post", "/v1/venture-calls/{call_id}/projects/{project_id}/milestones"): "report_milestone",
    ("post", "/v1/venture-calls/{call_id}/projects/{project_id}/acceptance"): "accept_project",
    ("post", "/v1/venture-calls/{call_id}/results"): "publish_venture_results",
    ("post", "/v1/teams"): "form_team",
    ("post", "/v1/teams/{team_id}/members"): "join_team",
    ("delete", "/v1/teams/{team_id}/members/{volunteer_id}"): "leave_team",
    ("post", "/v1/teams/{team_id}/leader"): "change_team_leader",
    ("post", "/v1/teams/{team_id}/disband"): "disband_team",
    ("post", "/v1/teams/{team_id}/activities"): "assign_activity_to_team",
    ("post", "/v1/service-menu"): "add_menu_item",
    ("post", "/v1/service-menu/{item_id}/revise"): "revise_menu_item",
    ("post", "/v1/service-menu/{item_id}/withdraw"): "withdraw_menu_item",
    ("post", "/v1/orders"): "place_order",
    ("post", "/v1/orders/{order_id}/approve"): "approve_order",
    ("post", "/v1/orders/{order_id}/reject"): "reject_order",
    ("post", "/v1/orders/{order_id}/dispatch"): "dispatch_order",
    ("post", "/v1/orders/{order_id}/pass-down"): "pass_order_down",
    ("post", "/v1/orders/{order_id}/take"): "take_order",
    ("post", "/v1/orders/{order_id}/accept"): "accept_order",
    ("post", "/v1/orders/{order_id}/decline"): "decline_order",
    ("post", "/v1/orders/{order_id}/complete"): "complete_order",
    ("post", "/v1/orders/{order_id}/rate"): "rate_order",
    ("post", "/v1/orders/{order_id}/showcase"): "showcase_order",
    ("post", "/v1/orders/{order_id}/erasure"): "erase_order_resident_data",
    ("post", "/v1/keys"): "create_key",
    ("delete", "/v1/keys/{key_id}"): "revoke_key",
    ("post", "/v1/keys/{key_id}/rotate"): "rotate_key",
    ("post", "/v1/audit/what-if"): "what_if",
    ("post", "/v1/audit/certificates/verifications"): "verify_certificate",
    ("post", "/v1/batch"): BATCH,
}


# -- the callers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    name: str
    world: str  # whose objects it aims at: "station", "institute" or "center"
    status: int  # how it must be refused
    code: str

    @property
    def upward(self) -> bool:
        return self.world != "station"


CALLERS = [
    Caller("no-token", "station", 401, "unauthenticated"),
    Caller("malformed-token", "station", 401, "unauthenticated"),
    Caller("revoked-admin-key", "station", 401, "unauthenticated"),
    Caller("auditor", "station", 403, "forbidden"),
    Caller("unit_admin-other-institute", "station", 403, "forbidden"),
    Caller("service-other-institute", "station", 403, "forbidden"),
    Caller("station-admin-upward-institute", "institute", 403, "forbidden"),
    Caller("station-admin-upward-center", "center", 403, "forbidden"),
]

# Commands whose only target is a volunteer or their passbook: volunteers live at
# stations (domain rule ``home-must-be-station``), so nothing of that kind sits
# above a station for its unit admin to reach for.
UPWARD_NOT_APPLICABLE = frozenset(
    {
        "update_volunteer_profile",
        "suspend_volunteer",
        "reinstate_volunteer",
        "erase_volunteer",
        "award_points",
        "adjust_points",
        "expire_points",
    }
)


def _applies(entry: str | None, caller: Caller) -> bool:
    return not (caller.upward and entry in UPWARD_NOT_APPLICABLE)


def _route_id(route: Route) -> str:
    return f"{route[0].upper()} {route[1]}"


WRITE_CASES = [
    pytest.param(route, caller, id=f"{_route_id(route)} | {caller.name}")
    for route in sorted(DISCOVERED_WRITES | ROUTES.keys())
    for caller in CALLERS
    if _applies(ROUTES.get(route), caller)
]
BATCH_CASES = [
    pytest.param(kind, caller, id=f"batch:{kind} | {caller.name}")
    for kind in sorted(DISCOVERED_BATCH_TYPES | BATCH_COMMANDS)
    for caller in CALLERS
    if _applies(kind, caller)
]


# -- the platform, opened once for the module -----------------------------------------------


@dataclass
class Env:
    client: TestClient
    platform: Platform
    keys: KeyStore  # the API's own key store
    worlds: dict[str, World]
    tokens: dict[str, str | None]
    units: dict[str, str]
    own: dict[str, str] = field(default_factory=dict)  # objects in the first institute
    volunteers: dict[str, str] = field(default_factory=dict)

    def head(self) -> int:
        return self.platform.app.head()

    def key_rows(self) -> list[tuple[str, object]]:
        return [(k.key_id, k.revoked_at) for k in self.keys.list()]

    def send(
        self,
        caller: str,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        token = self.tokens[caller]
        headers = {} if token is None else bearer(token)
        response: httpx.Response = self.client.request(
            method.upper(), path, headers=headers, json=body, params=params or None
        )
        return response


def _key_id(token: str) -> str:
    parsed = parse_token(token)
    assert parsed is not None
    return parsed[0]


def _served(api: Api, clock: Clock, unit: str, volunteer: str) -> str:
    """An activity at ``unit`` where ``volunteer`` served two hours, confirmed."""
    starts_at = clock.now + timedelta(minutes=30)
    served = api.publish(unit, starts_at)
    api.post(f"/v1/activities/{served}/signups", {"volunteer_id": volunteer}, expect=201)
    clock.advance(timedelta(hours=3))
    for step, at in (("checkins", starts_at), ("checkouts", starts_at + timedelta(hours=2))):
        attendance = {"volunteer_id": volunteer, "at": at.isoformat()}
        api.post(f"/v1/activities/{served}/{step}", attendance, expect=201)
    api.post(f"/v1/activities/{served}/confirmations", {"volunteer_id": volunteer}, expect=201)
    return served


def _created(response: httpx.Response, name: str) -> str:
    assert response.status_code in (200, 201), response.text
    return str(response.json()[name])


def _world(
    api: Api,
    clock: Clock,
    mint: Callable[[Role, str], str],
    unit: str,
    *,
    open_parent: str,
    child_tier: str,
    volunteer: str,
    server: str,
    key_role: Role,
) -> World:
    activity = api.publish(unit, clock.now + timedelta(days=3))
    api.post(f"/v1/activities/{activity}/signups", {"volunteer_id": volunteer}, expect=201)
    reward = api.list_reward(unit, cost=1, stock=10)
    redemption = _created(
        api.post("/v1/redemptions", {"volunteer_id": volunteer, "reward_id": reward}),
        "redemption_id",
    )
    served = _served(api, clock, unit, server)
    correction = {"activity_id": served, "volunteer_id": server, "hours": "1", "reason": "少记"}
    team = {"unit_id": unit, "name": "队", "kind": "team", "leader_id": volunteer}
    item = _created(
        api.post("/v1/service-menu", {"unit_id": unit, "category": "health", "title": "义诊"}),
        "item_id",
    )
    order = _created(
        api.post("/v1/orders", {"menu_item_id": item, "resident_name": RESIDENT_NAME}),
        "order_id",
    )
    api.post(f"/v1/orders/{order}/approve", {"open_to_teams": True}, expect=200)
    deadline = (clock.now + timedelta(days=30)).isoformat()
    call = _created(
        api.post(
            "/v1/venture-calls",
            {"unit_id": unit, "title": "创投", "budget_fen": 100_000, "deadline": deadline},
        ),
        "call_id",
    )
    project = {"title": "项目", "organisation": "社工站", "requested_fen": 1_000}
    fund = _created(api.post("/v1/funds", {"unit_id": unit, "title": "基金"}), "fund_id")
    donation = {"amount_fen": 100, "source_kind": "donation", "purpose": "助老", "donor": "张先生"}
    return World(
        unit=unit,
        open_parent=open_parent,
        child_tier=child_tier,
        volunteer=volunteer,
        server=server,
        activity=activity,
        served=served,
        reward=reward,
        redemption=redemption,
        correction=_created(api.post("/v1/corrections", correction), "correction_id"),
        team=_created(api.post("/v1/teams", team), "team_id"),
        item=item,
        order=order,
        wish=_created(
            api.post("/v1/wishes", {"unit_id": unit, "title": "书包", "resident_ref": "档案-1"}),
            "wish_id",
        ),
        call=call,
        project=_created(api.post(f"/v1/venture-calls/{call}/projects", project), "project_id"),
        fund=fund,
        donation=_created(api.post(f"/v1/funds/{fund}/receipts", donation), "movement_id"),
        key_id=_key_id(mint(key_role, unit)),
        certificate={},
    )


def _open(api: Api) -> dict[str, str]:
    center = api.open_unit("az-center", "center")
    institute = api.open_unit("az-institute-1", "institute", center)
    station = api.open_unit("az-station-1", "station", institute)
    other_institute = api.open_unit("az-institute-2", "institute", center)
    other_station = api.open_unit("az-station-2", "station", other_institute)
    return {"C": center, "I1": institute, "S1": station, "I2": other_institute, "S2": other_station}


def _own_objects(api: Api, clock: Clock, units: dict[str, str], v_s1: str) -> dict[str, str]:
    """Objects of the first institute, which its own keys may act on: the half of a
    request that is theirs when the other half is not."""
    i1 = units["I1"]
    team = {"unit_id": i1, "name": "一所队", "kind": "team", "leader_id": v_s1}
    item = _created(
        api.post("/v1/service-menu", {"unit_id": i1, "category": "health", "title": "义诊"}),
        "item_id",
    )
    orders = []
    for _ in range(2):
        order = _created(api.post("/v1/orders", {"menu_item_id": item}), "order_id")
        api.post(f"/v1/orders/{order}/approve", {}, expect=200)
        orders.append(order)
    own_team = _created(api.post("/v1/teams", team), "team_id")
    # the second order is with the institute's own team, in progress
    api.post(f"/v1/orders/{orders[1]}/dispatch", {"team_id": own_team}, expect=200)
    api.post(f"/v1/orders/{orders[1]}/accept", {"team_id": own_team}, expect=200)
    return {
        "activity": api.publish(i1, clock.now + timedelta(days=3)),
        "reward": api.list_reward(i1, cost=1, stock=10),
        "team": own_team,
        "order": orders[0],
        "order_in_progress": orders[1],
    }


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("authz") / "data",
        document_secret="test-document-secret-0123456789abcdef",
        read_wait_timeout=5.0,
        log_format="json",
        log_level="INFO",
    )
    platform = Platform.build(settings)
    clock = Clock()
    platform.app.clock = clock
    key_store = KeyStore(settings.keys_db)
    try:
        _, admin = key_store.create(Role.ADMIN, "matrix admin")

        def mint(role: Role, unit: str | None = None) -> str:
            _, token = key_store.create(role, f"matrix {role}", UUID(unit) if unit else None)
            return token

        app = create_app(settings, platform)
        # the matrix fails authentication hundreds of times from one address
        app.state.auth_limiter = AuthFailureLimiter(limit=1_000_000, window=60)
        with TestClient(app) as client:
            api = Api(client, bearer(admin), resident_id)
            units = _open(api)
            body = {
                "home_station_id": units["S2"],
                "name": VOLUNTEER_NAME,
                "phone": "13566667777",
                "id_number": resident_id(),
            }
            v_s2 = _created(api.post("/v1/volunteers", body), "volunteer_id")
            v_s1 = api.register(units["S1"])
            api.award(v_s2, 50)
            api.award(v_s1, 50)
            worlds = {
                # aimed at from the first institute: the second station's objects
                "station": _world(
                    api,
                    clock,
                    mint,
                    units["S2"],
                    open_parent=units["I2"],
                    child_tier="station",
                    volunteer=v_s2,
                    server=v_s2,
                    key_role=Role.SERVICE,
                ),
                # aimed at by the second station's unit admin: its parent and the center;
                # served by the other station's volunteer, so the correction is not theirs
                "institute": _world(
                    api,
                    clock,
                    mint,
                    units["I2"],
                    open_parent=units["I2"],
                    child_tier="station",
                    volunteer=v_s2,
                    server=v_s1,
                    key_role=Role.SERVICE,
                ),
                "center": _world(
                    api,
                    clock,
                    mint,
                    units["C"],
                    open_parent=units["C"],
                    child_tier="institute",
                    volunteer=v_s2,
                    server=v_s1,
                    key_role=Role.UNIT_ADMIN,
                ),
            }
            day = clock.now.date()
            period = {"from": str(day - timedelta(days=3)), "to": str(day + timedelta(days=3))}
            certificate = client.get(
                "/v1/audit/certificates",
                params={"volunteer_id": v_s2, **period},
                headers=api.admin,
            ).json()
            for world in worlds.values():
                world.certificate = certificate
            revoked = mint(Role.ADMIN)
            client.get(f"/v1/units/{units['C']}", headers=bearer(revoked)).raise_for_status()
            client.delete(f"/v1/keys/{_key_id(revoked)}", headers=api.admin).raise_for_status()
            station_admin = mint(Role.UNIT_ADMIN, units["S2"])
            tokens: dict[str, str | None] = {
                "no-token": None,
                "malformed-token": "not-a-civic-key",
                "revoked-admin-key": revoked,
                "auditor": mint(Role.AUDITOR),
                "unit_admin-other-institute": mint(Role.UNIT_ADMIN, units["I1"]),
                "service-other-institute": mint(Role.SERVICE, units["I1"]),
                "station-admin-upward-institute": station_admin,
                "station-admin-upward-center": station_admin,
                "unit_admin-inside": mint(Role.UNIT_ADMIN, units["I2"]),
                "service-inside": mint(Role.SERVICE, units["S2"]),
                "admin": admin,
            }
            yield Env(
                client=client,
                platform=platform,
                keys=app.state.keys,
                worlds=worlds,
                tokens=tokens,
                units=units,
                own=_own_objects(api, clock, units, v_s1),
                volunteers={"S1": v_s1, "S2": v_s2},
            )
    finally:
        key_store.close()
        with ThreadPoolExecutor(max_workers=max(len(platform.runners), 1)) as pool:
            list(pool.map(lambda runner: runner.stop(), platform.runners.values()))
        platform.close()


# -- building and checking requests -----------------------------------------------------------


def _request(route: Route, world: World) -> tuple[str, Any, dict[str, Any]]:
    """(concrete path, JSON body or None, query) for ``route`` aimed at ``world``."""
    method, path = route
    fields = FIELDS[ROUTES[route]](world)
    target = re.sub(r"\{(\w+)\}", lambda m: str(fields.pop(m.group(1))), path)
    if method == "delete":
        return target, None, fields
    has_body = "requestBody" in SCHEMA["paths"][path][method]
    return target, (fields if has_body else None), {}


def _batch_item(kind: str, world: World) -> dict[str, Any]:
    return {"command": {"type": kind, **FIELDS[kind](world)}}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    where = f"{response.request.method} {response.request.url}"
    assert response.status_code == status, (where, response.status_code, response.text)
    assert response.headers["content-type"] == PROBLEM, (where, response.headers)
    body: dict[str, Any] = response.json()
    assert_problem_fields(body, status, code)
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), where
    return body


def assert_problem_fields(body: dict[str, Any], status: int, code: str) -> None:
    assert body["status"] == status, body
    assert isinstance(body["type"], str) and body["type"], body
    assert isinstance(body["title"], str) and body["title"], body
    assert body["code"] == code, body


def assert_batch_refused(response: httpx.Response, caller: Caller, items: int) -> None:
    if caller.status == 401:
        assert_problem(response, 401, caller.code)
        return
    assert response.status_code == 200, response.text
    outcome = response.json()
    assert outcome["succeeded"] == 0, outcome
    assert outcome["position"] is None, outcome
    assert len(outcome["items"]) == items
    for item in outcome["items"]:
        assert item["status"] == caller.status, item
        assert_problem_fields(item["problem"], caller.status, caller.code)


# -- the matrix ---------------------------------------------------------------------------------


def test_the_matrix_covers_every_write_route_and_batch_command() -> None:
    assert set(ROUTES) == DISCOVERED_WRITES, {
        "routes without a matrix entry": sorted(DISCOVERED_WRITES - set(ROUTES)),
        "matrix entries without a route": sorted(set(ROUTES) - DISCOVERED_WRITES),
    }
    assert BATCH_COMMANDS == DISCOVERED_BATCH_TYPES, {
        "batch types without a matrix entry": sorted(DISCOVERED_BATCH_TYPES - BATCH_COMMANDS),
        "matrix entries a batch no longer takes": sorted(BATCH_COMMANDS - DISCOVERED_BATCH_TYPES),
    }
    assert set(ROUTES.values()) - {BATCH} <= set(FIELDS)
    assert len(WRITE_CASES) > 500 and len(BATCH_CASES) > 400


@pytest.mark.parametrize(("route", "caller"), WRITE_CASES)
def test_a_write_route_refuses_a_caller_outside_its_reach(
    env: Env, route: Route, caller: Caller
) -> None:
    assert route in ROUTES, f"{_route_id(route)} has no authorisation-matrix entry"
    assert route in DISCOVERED_WRITES, f"{_route_id(route)} is no longer in the schema"
    world = env.worlds[caller.world]
    head, keys = env.head(), env.key_rows()
    entry = ROUTES[route]
    if entry == BATCH:
        kinds = sorted(k for k in BATCH_COMMANDS if _applies(k, caller))
        items = [_batch_item(kind, world) for kind in kinds]
        response = env.send(caller.name, "post", "/v1/batch", {"items": items})
        assert_batch_refused(response, caller, len(items))
    else:
        target, body, params = _request(route, world)
        response = env.send(caller.name, route[0], target, body, params)
        if entry in COMPUTING and caller.name == "auditor":
            assert response.status_code == 200, response.text  # the auditor's own tools
        else:
            assert_problem(response, caller.status, caller.code)
    assert env.head() == head, f"{caller.name} recorded events through {_route_id(route)}"
    assert env.key_rows() == keys, f"{caller.name} changed the key store"


@pytest.mark.parametrize(("kind", "caller"), BATCH_CASES)
def test_a_batch_item_refuses_a_caller_outside_its_reach(
    env: Env, kind: str, caller: Caller
) -> None:
    assert kind in BATCH_COMMANDS, f"batch command {kind} has no authorisation-matrix entry"
    assert kind in DISCOVERED_BATCH_TYPES, f"a batch item no longer takes {kind}"
    head = env.head()
    item = _batch_item(kind, env.worlds[caller.world])
    response = env.send(caller.name, "post", "/v1/batch", {"items": [item]})
    assert_batch_refused(response, caller, 1)
    assert env.head() == head, f"{caller.name} recorded events through a {kind} batch item"


# -- reads that expose personal data ---------------------------------------------------------

SUBTREE, AUDITORS, ADMINS = "subtree", "auditors", "admins"


@dataclass(frozen=True)
class Read:
    path: str  # {volunteer}, {redemption}, {order}, ... of the second station
    audience: str  # who is served: the subtree's keys (and admins, auditors), or fewer
    shows: str  # what a served answer carries: "name", "resident", or an id's name
    params: Callable[[Env], dict[str, Any]] = lambda env: {}


def _days(env: Env) -> dict[str, str]:
    day = env.platform.app.clock().date()
    return {"from": str(day - timedelta(days=3)), "to": str(day + timedelta(days=3))}


def _now(env: Env) -> dict[str, str]:
    return {"as_of": env.platform.app.clock().isoformat()}


READS: dict[str, Read] = {
    "volunteer profile": Read("/v1/volunteers/{volunteer}", SUBTREE, "name"),
    "passbook": Read("/v1/passbooks/{volunteer}", SUBTREE, "volunteer"),
    "passbook as of": Read("/v1/passbooks/{volunteer}", SUBTREE, "volunteer", _now),
    "redemption": Read("/v1/redemptions/{redemption}", SUBTREE, "volunteer"),
    "order": Read("/v1/orders/{order}", SUBTREE, "order"),
    "wish": Read("/v1/wishes/{wish}", SUBTREE, "wish"),
    "correction": Read("/v1/corrections/{correction}", SUBTREE, "volunteer"),
    "team": Read("/v1/teams/{team}", SUBTREE, "volunteer"),
    "audit trail": Read(
        "/v1/audit",
        SUBTREE,
        "volunteer",
        lambda env: {"unit_id": env.units["S2"], "min_position": env.head()},
    ),
    "leaderboard": Read(
        "/v1/leaderboards",
        SUBTREE,
        "name",
        lambda env: {"unit_id": env.units["S2"], "min_position": env.head()},
    ),
    "audit history": Read("/v1/audit/history/{volunteer}", AUDITORS, "volunteer"),
    "audit history, everything": Read(
        "/v1/audit/history/{volunteer}", AUDITORS, "volunteer", lambda env: {"everything": True}
    ),
    "audit export": Read(
        "/v1/audit/export",
        AUDITORS,
        "volunteer",
        lambda env: {"volunteer_id": env.volunteers["S2"], "format": "csv"},
    ),
    "certificate": Read(
        "/v1/audit/certificates",
        AUDITORS,
        "volunteer",
        lambda env: {"volunteer_id": env.volunteers["S2"], **_days(env)},
    ),
    "statement": Read("/v1/audit/passbooks/{volunteer}/statement", AUDITORS, "volunteer"),
    "statement export": Read(
        "/v1/audit/passbooks/{volunteer}/statement",
        AUDITORS,
        "",
        lambda env: {"format": "csv"},
    ),
    "balance as of": Read("/v1/audit/passbooks/{volunteer}/balance", AUDITORS, "volunteer", _now),
    "redemption trace": Read("/v1/audit/redemptions/{redemption}/trace", AUDITORS, "volunteer"),
    "access log": Read("/v1/audit/access-log", ADMINS, "volunteer", _days),
}

# reader → the audiences that serve it (401: unauthenticated)
READERS: dict[str, frozenset[str] | int] = {
    "no-token": 401,
    "malformed-token": 401,
    "revoked-admin-key": 401,
    "unit_admin-other-institute": frozenset(),
    "service-other-institute": frozenset(),
    "station-admin-upward-institute": frozenset({SUBTREE}),  # the second station's own
    "unit_admin-inside": frozenset({SUBTREE}),
    "service-inside": frozenset({SUBTREE}),
    "auditor": frozenset({SUBTREE, AUDITORS}),
    "admin": frozenset({SUBTREE, AUDITORS, ADMINS}),
}


def _shown(env: Env, shows: str) -> str:
    world = env.worlds["station"]
    return {
        "": "",
        "name": VOLUNTEER_NAME,
        "volunteer": env.volunteers["S2"],
        "order": world.order,
        "wish": world.wish,
    }[shows]


@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("read", list(READS))
def test_personal_data_is_read_only_within_reach(env: Env, read: str, reader: str) -> None:
    spec, served_to = READS[read], READERS[reader]
    world = env.worlds["station"]
    path = spec.path.format(
        volunteer=world.volunteer,
        redemption=world.redemption,
        order=world.order,
        wish=world.wish,
        correction=world.correction,
        team=world.team,
    )
    params = spec.params(env)
    head = env.head()
    response = env.send(reader, "get", path, params=params)
    if isinstance(served_to, int):
        assert_problem(response, served_to, "unauthenticated")
    elif spec.audience not in served_to:
        assert_problem(response, 403, "forbidden")
    else:
        assert response.status_code == 200, (read, reader, response.text)
        assert _shown(env, spec.shows) in response.text, (read, reader, response.text)
        if read == "order" and reader.endswith("inside"):
            assert RESIDENT_NAME in response.text  # the order's staff see the resident
        return
    assert VOLUNTEER_NAME not in response.text and RESIDENT_NAME not in response.text
    assert env.head() == head, f"a refused read by {reader} recorded an event: {read}"


def test_scoped_filters_show_a_foreign_volunteer_to_no_one_outside(env: Env) -> None:
    volunteer = env.volunteers["S2"]
    position = env.head()
    for reader in ("unit_admin-other-institute", "service-other-institute"):
        trail = env.send(
            reader, "get", "/v1/audit", params={"volunteer_id": volunteer, "min_position": position}
        )
        assert trail.status_code == 200, trail.text
        assert trail.json()["items"] == []
        board = env.send(
            reader,
            "get",
            "/v1/leaderboards",
            params={"volunteer_id": volunteer, "min_position": position},
        )
        assert board.status_code == 200, board.text
        assert board.json()["volunteer"] is None
        assert VOLUNTEER_NAME not in board.text
    trail = env.send(
        "unit_admin-inside",
        "get",
        "/v1/audit",
        params={"volunteer_id": volunteer, "min_position": position},
    )
    assert trail.status_code == 200 and trail.json()["items"], trail.text
    board = env.send(
        "unit_admin-inside",
        "get",
        "/v1/leaderboards",
        params={"volunteer_id": volunteer, "min_position": position},
    )
    assert board.status_code == 200, board.text
    assert board.json()["volunteer"]["volunteer_id"] == volunteer


# -- requests that name something the caller reaches and something it does not ---------------


def _cross_references(env: Env) -> dict[str, tuple[str, dict[str, Any]]]:
    own, station = env.own, env.worlds["station"]
    foreign_volunteer = env.volunteers["S2"]
    return {
        # spends the points of a volunteer of the other institute at one's own reward
        "redeem-own-reward-for-foreign-volunteer": (
            "/v1/redemptions",
            {"volunteer_id": foreign_volunteer, "reward_id": own["reward"]},
        ),
        "form-own-team-with-foreign-leader": (
            "/v1/teams",
            {
                "unit_id": env.units["I1"],
                "name": "队",
                "kind": "team",
                "leader_id": foreign_volunteer,
            },
        ),
        "join-foreign-volunteer-to-own-team": (
            f"/v1/teams/{own['team']}/members",
            {"volunteer_id": foreign_volunteer},
        ),
        "assign-own-activity-to-foreign-team": (
            f"/v1/teams/{station.team}/activities",
            {"activity_id": own["activity"]},
        ),
        "dispatch-own-order-to-foreign-team": (
            f"/v1/orders/{own['order']}/dispatch",
            {"team_id": station.team},
        ),
        "pass-own-order-down-to-foreign-unit": (
            f"/v1/orders/{own['order']}/pass-down",
            {"unit_id": env.units["S2"]},
        ),
        "take-foreign-order-with-own-team": (
            f"/v1/orders/{station.order}/take",
            {"team_id": own["team"]},
        ),
        "complete-own-order-crediting-foreign-volunteer": (
            f"/v1/orders/{own['order_in_progress']}/complete",
            {
                "team_id": own["team"],
                "services": [{"volunteer_id": foreign_volunteer, "hours": "0.1"}],
            },
        ),
        # may ask (the volunteer is theirs), may not decide (the activity is not)
        "approve-correction-at-foreign-activity": (
            f"/v1/corrections/{env.worlds['institute'].correction}/approval",
            {"note": "同意"},
        ),
    }


CROSS_REFERENCES = [
    "redeem-own-reward-for-foreign-volunteer",
    "form-own-team-with-foreign-leader",
    "join-foreign-volunteer-to-own-team",
    "assign-own-activity-to-foreign-team",
    "dispatch-own-order-to-foreign-team",
    "pass-own-order-down-to-foreign-unit",
    "take-foreign-order-with-own-team",
    "complete-own-order-crediting-foreign-volunteer",
    "approve-correction-at-foreign-activity",
]


@pytest.mark.parametrize("caller", ["unit_admin-other-institute", "service-other-institute"])
@pytest.mark.parametrize("case", CROSS_REFERENCES)
def test_a_request_reaching_into_another_subtree_is_refused(
    env: Env, case: str, caller: str
) -> None:
    """Refused by reach (403) or by the domain's own rule (409/422): nothing recorded."""
    path, body = _cross_references(env)[case]
    head = env.head()
    response = env.send(caller, "post", path, body)
    assert response.status_code in (403, 409, 422), (case, response.status_code, response.text)
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == response.status_code and problem["type"] and problem["title"]
    assert env.head() == head, f"{caller} recorded events: {case}"


# -- the callers are real: each acts within its own reach -------------------------------------


def test_the_inside_unit_admin_passes_where_the_matrix_refuses(env: Env) -> None:
    """The very requests the matrix sends, from the second institute's unit admin, go
    through: so the refusals above are about reach, not about malformed requests."""
    world = env.worlds["station"]
    for route in [
        ("post", "/v1/units"),
        ("post", "/v1/units/{unit_id}/rename"),
        ("post", "/v1/volunteers"),
        ("post", "/v1/activities"),
        ("post", "/v1/passbooks/{volunteer_id}/awards"),
        ("post", "/v1/rewards/{reward_id}/restock"),
        ("post", "/v1/teams/{team_id}/activities"),
        ("post", "/v1/service-menu"),
        ("post", "/v1/orders"),
        ("post", "/v1/wishes"),
        ("post", "/v1/venture-calls/{call_id}/projects/{project_id}/scores"),
        ("post", "/v1/funds/{fund_id}/receipts"),
        ("post", "/v1/keys"),
    ]:
        head = env.head()
        target, body, params = _request(route, world)
        response = env.send("unit_admin-inside", route[0], target, body, params)
        assert response.status_code in (200, 201), (route, response.text)
        assert route == ("post", "/v1/keys") or env.head() > head, route
    items = [_batch_item(k, world) for k in ("award_points", "list_reward", "post_wish")]
    response = env.send("unit_admin-inside", "post", "/v1/batch", {"items": items})
    assert response.status_code == 200, response.text
    assert response.json()["succeeded"] == len(items), response.text


OWN_REACH = {
    "auditor": ("get", "/v1/volunteers/{S2v}", None),
    "unit_admin-other-institute": (
        "post",
        "/v1/passbooks/{S1v}/awards",
        {"points": 1, "reason": REASON},
    ),
    "service-other-institute": (
        "post",
        "/v1/passbooks/{S1v}/awards",
        {"points": 1, "reason": REASON},
    ),
    "station-admin-upward-institute": (
        "post",
        "/v1/units/{S2}/rename",
        {"name": "二站", "reason": REASON},
    ),
}


@pytest.mark.parametrize("caller", list(OWN_REACH))
def test_each_refused_key_works_within_its_own_reach(env: Env, caller: str) -> None:
    """The keys the matrix refuses are live keys: each acts within its own reach."""
    method, path, body = OWN_REACH[caller]
    ids = {"S2v": env.volunteers["S2"], "S1v": env.volunteers["S1"], "S2": env.units["S2"]}
    response = env.send(caller, method, path.format(**ids), body)
    assert response.status_code in (200, 201), response.text
