"""The store: the project's paid answers and its purse, shared by every workspace, experiment, clone
and teammate that points `teacher.store` at it.

    spent(store) = sum(|batch|, status != refused)   and always   spent(store) <= teacher.budget at reserve time

Contract, the same for every backend (one module each, registered by URL scheme):
  * `reserve` counts a batch durably (committed) before its request leaves, under a lock on the store's
    purse row, after dropping inputs already answered or in flight in a live run (so nothing is asked twice);
  * `write_answers` stores the scores and closes the batch in one transaction;
  * `mark_rejected` keeps an unusable answer apart (it was computed: it stays counted);
  * `mark_refused` gives the count back (a definite refusal: nothing was computed);
  * `mark_lost` closes a batch whose outcome is unknown (it stays counted); a batch left in flight by a run
    that died is lost too, as soon as another run sees that its owner is gone.
Answers are keyed by (canonical teacher identity, SHA-256 of the input) and carry a checksum. A store that breaks
a rule (`Store.check`, on every open and in `python -m ckd.ledger check`) stops the run in one line; only an
absent store is a fresh start (docs/budget-store.md lists the damage cases).
"""

from __future__ import annotations

from ckd.registry import Registry
from ckd.store.base import STORE_SCHEMES, Reservation, Store, TeacherSummary, open_store

__all__ = ["STORE_SCHEMES", "Reservation", "Store", "TeacherSummary", "open_store", "Registry"]
