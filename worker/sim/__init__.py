"""An ActiveCampaign API v3 simulator (the parts segment-export uses), over real HTTP.

Tests, the demo and the benchmarks run the real client against this aiohttp app on 127.0.0.1, so the
client meets AC's status codes, body shapes, string ids, rate limits and asynchronous batches, rather
than mocks that agree with whatever the client expects. `/api/3/...` is the AC API (Api-Token auth,
rate limited, logged); `/_sim/...` is the inspection/control API behind `SimClient` (free, unlogged).

    from worker.sim import SimSettings, SimulatorServer, SimClient
    with SimulatorServer(SimSettings(processing_delay=0.2)) as server:
        sim = SimClient(server.url)          # API at server.url + "/api/3/", header Api-Token: sim-key

Served (everything else, and any query parameter a route does not list, is refused with 501 {"message"}
naming it: see "Refusals"):
    GET  /api/3/ (also /api/3)                       GET  /api/3/users/me
    POST /api/3/import/bulk_import                   GET  /api/3/import/bulk_import
    GET  /api/3/import/info?batchId=
    POST /api/3/contact/sync                         POST /api/3/contacts
    GET  /api/3/contacts?limit,offset,email,email_like,listid,status,id_greater,id_less,
         filters[created_after|created_before|updated_after|updated_before],
         orders[id|cdate|udate|email|first_name|last_name|name]
    GET  /api/3/contacts/{id}                        DELETE /api/3/contacts/{id}
    GET  /api/3/contacts/{id}/contactLists
    GET  /api/3/contacts/{id}/fieldValues            GET  /api/3/contacts/{id}/contactTags
    GET  /api/3/contactLists?limit,offset            POST /api/3/contactLists
    GET  /api/3/fieldValues?limit,offset,filters[fieldid],filters[val]
    GET  /api/3/contactTags?limit,offset             POST /api/3/contactTags    DELETE /api/3/contactTags/{id}
    GET  /api/3/lists?limit,offset                   GET  /api/3/lists/{id}
    GET  /api/3/fields?limit,offset,filters[perstag]
    GET  /api/3/tags?limit,offset,search,filters[search][eq|contains]            POST /api/3/tags

Choices where AC's behaviour is undocumented (the client must not depend on them beyond what AC's
developer reference states; they are what the simulator does):

Gatekeeping (every /api/3/ request, in this order)
- `latency` is slept first; the arrival time (log "at", rate window stamp) is taken after it.
- `error_rate`: random 500 (JSON {"message"}) / 502 / 503 (HTML bodies, like a gateway) *before doing
  anything*: not authenticated, not counted in any window, nothing applied. Logged.
- Auth: no Api-Token -> 401, unknown token -> 403, both {"message": ...}; not counted in the window.
  With `bad_key_html` (SimSettings, `configure(bad_key_html=True)`, `simulate --bad-key-html`) both are
  answered 200 `text/html` with a login page instead, as AC has been seen to do; no RateLimit headers.
- 429 storms: from `storm_every` seconds after start (or after the storm knobs change), every
  `storm_every` s, for `storm_duration` s, every request gets 429; Retry-After = rest of the storm.
- Per-second window: exact sliding window on time.monotonic(), no randomness. A refused request gets 429
  {"message"} with Retry-After (whole seconds >= 1, rounded up) and is NOT counted in the window.
  RateLimit-Limit / RateLimit-Remaining are on every response from auth on (2xx included).
- A rate that is not whole per period becomes n = max(1, floor(rate)) requests per period*n/rate seconds
  (e.g. rate_scale 0.05: 5 req/s -> 1 per 4 s; 100 bulk/min -> 5 per 60 s). `rate_scale` scales the
  per-second budget too, so tests that shrink the bulk limit usually raise `requests_per_second`.

Refusals
- After auth and the rate window (so it is logged and counted like any answered request): an unknown
  path, or a known path with a method the simulator does not serve (e.g. PUT /contacts/1), -> 501
  {"message": "Not simulated: PUT /api/3/contacts/1. ..."}; a query parameter the route does not
  implement -> 501 naming it and listing those it does (`tagid`, `search` on /contacts, `filters[name]` on
  /lists, `limit` on the per-contact endpoints, anything on /api/3/, ...). Counted in stats "not_simulated".
- An implemented parameter with an unusable value -> 400 {"message"} naming it: `orders[x]` not ASC/DESC
  (any case); a date filter that is not a date; `listid`, `status`, `id_greater`, `id_less`,
  `filters[fieldid]` not an integer. An empty value counts as absent, except `email=`, which matches
  nobody (a lookup by email must never return someone else). `limit`/`offset` stay lenient.

Bulk import
- Body over 399,999 bytes (raw body length) -> 413 {"success":0,"message":"Request body too large..."}.
  Not counted in the bulk window. Bodies over 8 MiB get aiohttp's own 413.
- Invalid JSON, a missing/empty `contacts` array, more than 250 contacts, or a malformed `callback`
  -> 400 {"success":0,"message":"JSON payload did not pass validation. ...","failureReasons":[<string>]}
  before the bulk window (not counted).
- Then the bulk window (>1 contact: bulk_per_minute; exactly 1: single_bulk_per_minute): over -> 400
  {"success":0,"message":"Rate limit exceeded.","failureReasons":["Up to 100 imports may be requested per
  minute. ..."]}, no Retry-After header (AC documents none); refused requests are not counted. Requests
  that then fail per-contact validation DO count (they were requested).
- Per-contact validation (all offenders listed, 1-based `contact`, first problem per contact): email
  present but not a string or not AC's format rule ("Field 'email' incorrect format"); non-object contact;
  first_name/last_name/phone/customer_acct_name not strings; tags not strings; fields not {id: int or
  digit string, value: string}; subscribe/unsubscribe not [{listid: int or digit string}] or naming a list
  that does not exist; exclude_automations not a bool. Null means "absent". Unknown keys are ignored.
- A missing (or "") email is not a 400: the contact is queued and reported in `failure` as "".
- Custom field ids that do not exist are ignored (value dropped; counted in stats "ignored_field_values").
- 200 body uses lower-case "success": 1.

Batches
- Due processing_delay after the POST, but never before the batch accepted before it (FIFO: imports
  touching the same contact land in the order sent). /import/info status: false for the first
  min(0.3 s, span/4), "waiting", "claimed" (from 40 % of the span), "active" (from 50 %), then
  "completed" only once the contacts are applied. success/failure are [] until then.
- Per contact, checked before any change (a skipped contact is left untouched): no email; excluded
  (exact address or '*' pattern); bounced (seeded with add_contact(..., bounced=True)); new contact over
  contact_limit; subscribe to a list the contact is unsubscribed from (skipped entirely, never
  re-subscribed). Failures are reported by the email as sent. `success` lists only NEW contacts' ids;
  updated contacts appear in neither list. Duplicates within a batch are applied in order.
- Tags are only added (matched case-insensitively, created when unknown); fields/names overwrite only
  when present; unsubscribe wins over subscribe for the same list in one contact. Its unsubscriptions are
  API-made (campaign, message, unsubreason, unsubscribeAutomation null).
- Extra knob `batch_failure_rate`: that fraction of batches end with status "failed", success [] and
  failure [], nothing applied.
- Unknown batchId -> 404 {"message":"No Result found for Import with id <id>"}.
- GET import/bulk_import: outstanding by POST date, recentlyCompleted (last 7 days) by completion date
  (UTC), counts as strings.
- Callback: on completion, once, best effort, 5 s timeout. requestType POST: JSON body {params...,
  "batchId", "status"} plus, with detailed_results "true" (default), "success": n, "failure": n,
  "failureReasons": ["email: reason"]; requestType GET: query {params..., batchId, status}. Custom headers
  are sent. A URL without scheme gets "http://". Outcomes counted in stats "callbacks".

Per-contact endpoints
- contact/sync: 201 when it created the contact, 200 when it updated one. POST contacts: 201; duplicate
  -> 422 "duplicate". Both: bad email -> 422 code "email_invalid"; excluded email -> 422
  "email_excluded"; over contact_limit (new) -> 422 "contact_limit"; unknown field ids ignored.
- GET contacts: default order id ascending. Filters: email (exact, case-insensitive), email_like
  (contains), listid, status (1, 2; -1 = any), id_greater, id_less, filters[created_after|created_before|
  updated_after|updated_before] against cdate/udate. Date values: YYYY-MM-DD (midnight), "YYYY-MM-DD
  HH:MM:SS" or ISO 8601 with Z or an offset; no offset means UTC; a space where an unencoded '+' stood
  before the offset is read as '+'. `*_after` is INCLUSIVE (>=) and `*_before` EXCLUSIVE (<), so windows
  tile and a reader that bookmarks the last udate it saw re-reads that second rather than missing it.
  orders[id|cdate|udate|email|first_name|last_name|name] = ASC|DESC, several allowed, applied in the
  order sent; names compare case-insensitively; ties are always broken by id (ascending unless
  orders[id] says otherwise), so pages never overlap. meta.total counts all matches (after id_greater),
  before offset/limit. `status` without `listid` is a scan (not indexed). Paging everywhere: limit
  default 20, max 100 (<= 0 or junk -> 20); offset zero-based.
- The list record (contactList) carries AC's full key set: sdate = when the status last became 1 (or the
  record's creation), udate = its last change (= updated_timestamp), created_timestamp/updated_timestamp,
  sourceid ("0" unless POST /contactLists sent one), first_name/last_name = the contact's current names;
  form, automation, autosyncLog, created_by, updated_by null; seriesid/ip4* "0"; responder "1", sync "0".
  campaign, message, unsubreason, unsubscribeAutomation: null unless the contact unsubscribed itself
  (see Inspection); set only while status is 2 (a re-subscription clears them: the record shows the
  current subscription). A record is created on first subscribe/unsubscribe and never deleted; its id is
  assigned then. Setting the status a record already has changes nothing (not its stamps nor sourceid).
- POST contactLists: 200 {"contacts":[..],"contactList":{..,"status":<int>}}; unknown list/contact -> 404
  {"message"}; status other than 1/2 -> 422; `sourceid` (int or digit string; 4 = re-subscribe) is
  recorded, anything else -> 422 pointer /data/attributes/sourceid. It CAN re-subscribe, including a
  person who unsubscribed themselves (as AC does): counted in stats "resubscribed", and also in
  "resubscribed_own" when the unsubscription was the person's own. Subscribing (status 1) a contact whose
  address is on the exclusion list -> 422 code "email_excluded", pointer /data/attributes/contact, nothing
  changed (AC: undocumented); unsubscribing one is allowed.
- DELETE contacts/{id}: 200 {} (AC's example); the contact leaves every list, its tags and field values
  go, its id is never reused, and GET contacts (all of them, by list, by email), contactLists, fieldValues
  and contactTags no longer show it. Unknown id -> 404 {"message": "No result found for contact with id
  N"} (lower case, as AC's example). A later import of the email creates a new contact.
- GET contacts/{id}/contactLists, /fieldValues, /contactTags: all of the contact's records, oldest first,
  unpaged, no "meta" (as AC's examples); unknown contact -> 404 "No Result found for Subscriber with id N".
- GET contactLists, fieldValues, contactTags: the whole account's records by id, paged, meta.total as a
  string. fieldValues filters: filters[fieldid] (exact), filters[val] (exact, case-sensitive).
- Timestamps: the account's zone is UTC and stamps have whole seconds. Contacts: cdate, udate,
  created_timestamp/updated_timestamp and created_utc_timestamp/updated_utc_timestamp (equal, UTC). A
  contact's udate moves when its own attributes or field values really change (contact/sync, POST
  contacts, bulk import, /_sim seeding), not when its list records or tags change (those have their own
  stamps). Field values: cdate, udate (moves when the value changes). Contact tags: cdate,
  created_timestamp = updated_timestamp. Lists: stamped when the simulator (or a reset) first sees them,
  udate moves when `configure(lists=...)` renames one. `frozen_time` freezes this clock (only this one).
- fields: each field's "options" holds option *ids* and the values are in the side-loaded top-level
  "fieldOptions" [{"id","field","value","label",...}], as AC does.
- GET /api/3/: 200 {"message": "ActiveCampaign API v3 (simulated by segment-export)", "version": "3"}
  with a valid key (the token check ETL taps use); 401/403 as everywhere. users/me: a fixed admin user.
- tags: names unique case-insensitively (POST duplicate -> 422 "duplicate"); `search` = contains,
  `filters[search][eq]` = exact. POST contactTags is idempotent (201 with the existing link).
- Records carry AC's `links` built from the URL the request came in on.

Inspection
- `/_sim` seeding and user actions are not "via the API": they never count as re-subscriptions and
  bypass contact_limit and the exclusion list. Seeding a list status "unsubscribed" (add_contact) makes
  an API-made unsubscription (all four "whose" fields null).
- `SimClient.unsubscribe(email, list_id, how=...)` is someone unsubscribing: "campaign" (default: the
  person clicked a campaign email's link: campaign "1", message "1"), "form" (unsubreason "I no longer
  want to receive these emails."), "automation" (unsubscribeAutomation "1"), or "api" (all null, as an
  API client leaves it). Unsubscribing a record already at status 2 changes nothing.
  `SimClient.contact_list(email, list_id)` returns the record exactly as the API shows it.
- `SimClient.delete_contact(email)` is someone deleting the contact in AC's UI (as DELETE contacts/{id}).
- `SimClient.freeze_time(when)` (= `configure(frozen_time=...)`) stamps records at `when` until told
  otherwise, so incremental-read tests get distinct, known times without sleeping.
- Custom fields and lists are settings (kept by reset); contacts, tags, exclusions, batches, the log,
  counters and windows are cleared by reset.
- The request log keeps the newest 500,000 entries; an entry's status is 0 while the request is in flight.

May import: nothing of ``worker``: it stands in for ActiveCampaign and shares no product code, so a
bug of ours cannot hide in both.
"""

from __future__ import annotations

from worker.sim.app import create_app
from worker.sim.client import SimClient, SimClientError
from worker.sim.server import SimulatorServer
from worker.sim.settings import SimSettings

__all__ = ["SimClient", "SimClientError", "SimSettings", "SimulatorServer", "create_app"]
