#!/usr/bin/env bash
# The README's five-minute walk-through as a script: run it against a server
# started with `bash infra/serve.sh` (it reads the admin key from var/admin-key).
#   bash infra/walkthrough.sh [http://127.0.0.1:8000] [data-dir]
set -euo pipefail
BASE=${1:-http://127.0.0.1:8000}
DATA=${2:-var}
KEY=$(cat "$DATA/admin-key")
j() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
show() {  # pretty-print a JSON response, at most $1 lines (no `| head`: under pipefail its
          # early exit would fail the script)
  python3 -c "import json,sys; print(*json.dumps(json.load(sys.stdin), indent=2,
    ensure_ascii=False).splitlines()[:$1], sep=chr(10))"
}
pick() {  # the lines of a pretty-printed JSON response that match a pattern
  python3 -c "import json,re,sys; print(*[l for l in json.dumps(json.load(sys.stdin), indent=2,
    ensure_ascii=False).splitlines() if re.search(sys.argv[1], l)], sep=chr(10))" "$1"
}
api() {  # api METHOD PATH [JSON] — prints the response body, fails on HTTP errors
  local method=$1 path=$2 body=${3:-}
  curl -sS --fail-with-body -X "$method" "$BASE$path" \
    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    ${body:+-d "$body"}
}
tag=$(date +%s)
say() { printf '\n== %s\n' "$*"; }

say "a center, an institute and a station"
C=$(api POST /v1/units "{\"code\":\"wt-$tag\",\"name\":\"江北区新时代文明实践中心\",\"tier\":\"center\"}" | j '["unit_id"]')
I=$(api POST /v1/units "{\"code\":\"wt-$tag-wld\",\"name\":\"五里店街道新时代文明实践所\",\"tier\":\"institute\",\"parent_id\":\"$C\"}" | j '["unit_id"]')
S=$(api POST /v1/units "{\"code\":\"wt-$tag-hx\",\"name\":\"和鑫社区新时代文明实践站\",\"tier\":\"station\",\"parent_id\":\"$I\"}" | j '["unit_id"]')
echo "center $C / institute $I / station $S"

say "register a volunteer (the identity number is checked, keyed-hashed, never stored)"
idn=$(python3 -c "
import random; w=(7,9,10,5,8,4,2,1,6,3,7,9,10,5,8,4,2); b='110105199%d%02d%02d%03d'%(random.randint(0,9),random.randint(1,12),random.randint(1,28),random.randint(0,999))
print(b+'10X98765432'[sum(int(d)*x for d,x in zip(b,w))%11])")
body="{\"home_station_id\":\"$S\",\"name\":\"王秀英\",\"phone\":\"13800000001\",\"id_number\":\"$idn\"}"
register() {  # POST with an Idempotency-Key; $1 receives the response headers
  curl -sS --fail-with-body -D "$1" -X POST "$BASE/v1/volunteers" -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' -H "Idempotency-Key: reg-$tag" -d "$body"
}
V=$(register /dev/null | j '["volunteer_id"]')
headers=$(mktemp)
register "$headers" >/dev/null
echo "the same request again:"; grep -i -E '^HTTP|^idempotent-replayed' "$headers"
echo "volunteer $V"

say "publish an activity starting in one minute; sign up; check in"
START=$(date -u -d '+1 min' +%FT%TZ); END=$(date -u -d '+3 hour' +%FT%TZ)
A=$(api POST /v1/activities "{\"unit_id\":\"$S\",\"title\":\"关爱空巢老人上门服务\",\"category\":\"elderly_disabled\",\"starts_at\":\"$START\",\"ends_at\":\"$END\",\"location\":\"和鑫社区\",\"capacity\":10,\"points_per_hour\":60}" | j '["activity_id"]')
api POST "/v1/activities/$A/signups" "{\"volunteer_id\":\"$V\"}"; echo
api POST "/v1/activities/$A/checkins" "{\"volunteer_id\":\"$V\"}"; echo
echo "(waiting 65 s for the activity to start)"; sleep 65

say "check out and confirm: hours come from check-in/out, points are awarded once"
api POST "/v1/activities/$A/checkouts" "{\"volunteer_id\":\"$V\",\"at\":\"$(date -u -d '+4 min' +%FT%TZ)\"}"; echo
api POST "/v1/activities/$A/confirmations" "{\"volunteer_id\":\"$V\",\"people_served\":3}"; echo

say "a manual award, a reward and a redemption"
api POST "/v1/passbooks/$V/awards" '{"points":20,"reason":"文明户评比"}'; echo
R=$(api POST /v1/rewards "{\"unit_id\":\"$S\",\"name\":\"大米 5kg\",\"cost_points\":15,\"stock\":3}" | j '["reward_id"]')
P=$(api POST /v1/redemptions "{\"volunteer_id\":\"$V\",\"reward_id\":\"$R\"}" | j '["position"]')
echo "redemption recorded at store position $P"

say "the passbook, the leaderboard, unit metrics and audit trail (read-your-writes)"
api GET "/v1/passbooks/$V" | show 30
api GET "/v1/leaderboards?unit_id=$C&period=all&min_position=$P" | show 20
api GET "/v1/units/$C/metrics?granularity=all&min_position=$P" | show 30
api GET "/v1/audit?volunteer_id=$V&min_position=$P&limit=20" | python3 -c "
import json,sys
for e in json.load(sys.stdin)['items']: print(e['position'], e['event_type'], e['actor'])"

say "the station's activities and its gift catalogue (the listings read model)"
api GET "/v1/activities?unit_id=$S&min_position=$P" | python3 -c "
import json,sys
for a in json.load(sys.stdin)['items']: print(a['title'], a['starts_at'], 'enrolled', a['enrolled'], 'of', a['capacity'], a['status'])"
api GET "/v1/rewards?unit_id=$S&min_position=$P" | python3 -c "
import json,sys
for r in json.load(sys.stdin)['items']: print(r['name'], r['cost_points'], 'points,', r['stock'], 'left')"
api GET "/v1/redemptions?unit_id=$S&status=requested&min_position=$P" | python3 -c "
import json,sys
for r in json.load(sys.stdin)['items']: print('to hand out:', r['reward_name'], 'x', r['quantity'], 'to', r['volunteer_id'])"

# -- Orders: the whole loop (点单→审单→派单→接单→评单→晒单) ------------------------------
say "a team at the station led by the volunteer; a menu item at the institute"
T=$(api POST /v1/teams "{\"unit_id\":\"$S\",\"name\":\"和鑫社区助老服务队\",\"kind\":\"team\",\"leader_id\":\"$V\"}" | j '["team_id"]')
M=$(api POST /v1/service-menu "{\"unit_id\":\"$I\",\"category\":\"elderly_disabled\",\"title\":\"上门理发\",\"points_per_hour\":600}" | j '["item_id"]')
echo "team $T / menu item $M"

say "点单 by a resident, 审单, passed down to the station, 派单 to the team, 接单"
O=$(api POST /v1/orders "{\"menu_item_id\":\"$M\",\"channel\":\"resident\",\"resident_ref\":\"wx-$tag\",\"resident_name\":\"刘奶奶\",\"details\":\"周末上午在家\"}" | j '["order_id"]')
api POST "/v1/orders/$O/approve" '{"note":"已电话回访"}'; echo
api POST "/v1/orders/$O/pass-down" "{\"unit_id\":\"$S\",\"reason\":\"由社区就近服务\"}"; echo
api POST "/v1/orders/$O/dispatch" "{\"team_id\":\"$T\"}"; echo
api POST "/v1/orders/$O/accept" "{\"team_id\":\"$T\"}"; echo
echo "rating before completion is refused:"
curl -sS -X POST "$BASE/v1/orders/$O/rate" -H "Authorization: Bearer $KEY" \
  -H 'Content-Type: application/json' -d "{\"stars\":5,\"resident_ref\":\"wx-$tag\"}"; echo
echo "(waiting 65 s: reported hours may not exceed the time since the team accepted)"; sleep 65

say "the team reports completion (points awarded once), 评单 by the resident, 晒单"
api POST "/v1/orders/$O/complete" "{\"team_id\":\"$T\",\"services\":[{\"volunteer_id\":\"$V\",\"hours\":\"0.02\"}],\"people_served\":1}"; echo
api POST "/v1/orders/$O/rate" "{\"stars\":5,\"comment\":\"师傅很耐心\",\"resident_ref\":\"wx-$tag\"}"; echo
P=$(api POST "/v1/orders/$O/showcase" '{"story":"八旬老人在家理了发","photo_links":["https://example.org/1.jpg"]}' | j '["position"]')

say "the order, the station's orders, unit and team metrics, the audit trail"
api GET "/v1/orders/$O" | pick '"(status|timers|to_|stars|declines)'
api GET "/v1/orders?unit_id=$S&status=completed&min_position=$P" | python3 -c "
import json,sys
for o in json.load(sys.stdin)['items']: print(o['order_id'], o['status'], o['team_id'], o['stars'])"
api GET "/v1/units/$C/metrics?granularity=all&min_position=$P" | pick 'order|rating'
api GET "/v1/teams/$T/metrics?min_position=$P" | pick 'orders_|minutes|rating'
api GET "/v1/audit?unit_id=$I&type=Completed&min_position=$P" | python3 -c "
import json,sys
for e in json.load(sys.stdin)['items']: print(e['position'], e['aggregate_type'], e['event_type'], e['summary'])"
