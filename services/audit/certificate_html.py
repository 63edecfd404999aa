"""The printable page of a service certificate: a small template, every value
escaped with ``html.escape``."""

from __future__ import annotations

from html import escape

from domain.categories import CATEGORY_LABELS, Category
from services.audit.certificates import Certificate

_PAGE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>志愿服务记录证明 {number}</title>
<style>
body {{ font-family: "Noto Serif CJK SC", serif; max-width: 48rem; margin: 2rem auto; }}
h1 {{ text-align: center; letter-spacing: .3em; }}
table {{ border-collapse: collapse; width: 100%; margin: 1rem 0; }}
th, td {{ border: 1px solid #444; padding: .3rem .5rem; text-align: left; }}
.num {{ text-align: right; }}
.proof {{ font-family: monospace; font-size: .75rem; word-break: break-all; color: #333; }}
@media print {{ .proof {{ font-size: .65rem; }} }}
</style>
</head>
<body>
<h1>志愿服务记录证明</h1>
<p>证明编号 Certificate No.: <strong>{number}</strong></p>
<p>兹证明志愿者 <strong>{name}</strong>（志愿者编号 {volunteer_id}）于 {period_from} 至 {period_to}
期间参加志愿服务 <strong>{count}</strong> 次，累计服务时长 <strong>{hours}</strong> 小时。</p>
<table>
<thead><tr><th>日期 Date</th><th>活动 Activity</th><th>类别 Category</th>
<th class="num">时长(小时) Hours</th><th class="num">服务人数 Served</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
<p>出具单位 Issued by: <strong>{unit}</strong>（{unit_id}）</p>
<p>出具时间 Issued at: {issued_at}</p>
<div class="proof">
<p>This certificate was derived from the event store as of position {as_of}.
Chain hash at the last included event ({last}): {chain_hash}<br>
Digest of the included events: {digest}<br>
Signature (HMAC-SHA256): {signature}</p>
<p>Verify: <code>civic audit certificate verify FILE.json</code> with this certificate's JSON.</p>
</div>
</body>
</html>
"""

_ROW = (
    "<tr><td>{date}</td><td>{title}</td><td>{category}</td>"
    '<td class="num">{hours}</td><td class="num">{served}</td></tr>'
)


def _category(value: str) -> str:
    try:
        return CATEGORY_LABELS[Category(value)]
    except (ValueError, KeyError):
        return value


def render(cert: Certificate) -> str:
    rows = "\n".join(
        _ROW.format(
            date=escape(s.service_date.isoformat()),
            title=escape(s.title),
            category=escape(_category(s.category)),
            hours=escape(str(s.hours)),
            served=s.people_served,
        )
        for s in cert.services
    )
    return _PAGE.format(
        number=escape(cert.number),
        name=escape(cert.volunteer_name),
        volunteer_id=escape(str(cert.volunteer_id)),
        period_from=escape(cert.period_from.isoformat()),
        period_to=escape(cert.period_to.isoformat()),
        count=cert.service_count,
        hours=escape(str(cert.total_hours)),
        rows=rows or '<tr><td colspan="5">无 (none)</td></tr>',
        unit=escape(cert.issuing_unit_name),
        unit_id=escape(str(cert.issuing_unit_id)),
        issued_at=escape(cert.issued_at.isoformat(timespec="seconds")),
        as_of=cert.range.as_of_position,
        last=cert.range.last_position if cert.range.last_position is not None else "-",
        chain_hash=escape(cert.range.chain_hash or "-"),
        digest=escape(cert.range.events_digest),
        signature=escape(cert.signature),
    )
