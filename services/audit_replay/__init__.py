"""Audit and replay: figures as of any moment, traces, the replay check, what-if.

Everything here is computed from the event history, never from the read models'
stored rows (the replay check compares the two). Pure functions over events where
possible (``statement``, ``trace``, ``ledger``, ``what_if``); ``history`` reads the
store, ``scratch`` replays events through the real projection code into
throw-away SQLite databases.

Time, decided once for the whole package:

* **as of T** means every event *recorded* at or before T (the envelope's
  ``recorded_at``, the aggregate event's ``timestamp``), applied in store order.
  Recording time is when a fact entered the books: an answer "as of T" is what the
  platform could have answered at T, so it never changes after T.
* A passbook's balance and statement follow recording time too (points are
  spendable from the moment they are recorded). Each line also shows the
  event's business time (``awarded_at`` of an award, ``service_at`` of a
  correction), which is what the leaderboard and unit metrics bucket by: a
  correction recorded in November of a March service changes March's figures,
  not November's, while the statement shows it on the day it was booked.
"""
