"""An in-memory replica of every subject's choices, answering with the server's decision rule.

Each subject is one row of :mod:`consentry.replica.rows`: its packed state (one int, see
:mod:`consentry.domain.compiled`) and the last ledger ``seq`` applied, found by its id.
Time-limited grants are kept aside (row -> expiries) and resolved at each check, so a grant
lapses exactly when its time is up even if no event arrives.

Updates come as change messages (``apply``, see ``domain/messages.py``) or whole subjects
(``put``); one writer at a time (callers hold ``lock``), any number of readers without a lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from time import monotonic as _monotonic
from typing import Any

from consentry.domain.catalogue import Catalogue
from consentry.domain.compiled import JURISDICTION_BITS, CompiledCatalogue, Plan, decide_state
from consentry.domain.messages import (
    JurisdictionSet,
    Message,
    PermissionChanged,
    Redacted,
    SubjectErased,
    decode,
)
from consentry.domain.rules import Code, Decision, Reason
from consentry.replica.chains import ChainTags, ChoiceRow, chain_tag, timestamp
from consentry.replica.rows import (
    AllowsFunc,
    Rows,
    RowsFactory,
    fast_checker,
    new_rows,
)

_J_MASK = (1 << JURISDICTION_BITS) - 1


class Replica:
    def __init__(
        self,
        catalogue: Catalogue,
        *,
        compiled: CompiledCatalogue | None = None,
        capacity: int = 1024,
        wall_clock: Callable[[], float] = time.time,
        rows: RowsFactory = new_rows,
    ) -> None:
        self.catalogue = catalogue
        self.compiled = compiled or CompiledCatalogue(catalogue)
        self.lock = threading.Lock()
        self.wall_clock = wall_clock
        self._fresh_until = float("inf")
        self._new_rows = rows
        self._expiries: dict[int, dict[int, float]] = {}
        self._chains = ChainTags()
        self._empty = self.compiled.pack(())
        self._x_shift = self.compiled.x_shift
        # The compiled catalogue's plans, looked up with the request's own key (any shape).
        self._plans: Mapping[Any, Plan | Decision] = self.compiled.plans
        self._verdicts = self.compiled.verdicts
        # A packed state's width: codes and flags, then one expired bit per permission.
        self._state_bits = self.compiled.e_shift + self.compiled.size
        self._use_rows(rows(capacity, self._state_bits))

    def _use_rows(self, rows: Rows) -> None:
        self._rows = rows
        self._lookup = rows.lookup
        self._checker = fast_checker(
            rows,
            plans=self.compiled.plans,
            plan_type=Plan,
            empty=self._empty,
            x_shift=self._x_shift,
            verdicts=self._verdicts,
            permissions=self.compiled.size,
            fallback=self._allowed_by_check,
        )
        if self._checker is not None:
            self._checker.fresh_until = self._fresh_until
        # ``allows`` is the compiled fast path when the rows are compiled, else Python's.
        self.allows: AllowsFunc = self._checker.allows if self._checker else self._allows

    @property
    def fresh_until(self) -> float:
        """Checks for choice-based permissions fail closed once time.monotonic() passes this."""
        return self._fresh_until

    @fresh_until.setter
    def fresh_until(self, value: float) -> None:
        self._fresh_until = value
        if self._checker is not None:
            self._checker.fresh_until = value

    def __len__(self) -> int:
        return len(self._rows)

    # -- reads -------------------------------------------------------------------------------
    def check(
        self,
        subject: str,
        purpose: str,
        categories: Sequence[str] | str,
        recipient: str | None = None,
        now: float | None = None,
    ) -> Decision:
        """The decision for one use of a subject's data. Device categories are refused (a
        replica holds no device reports); ``now`` is POSIX seconds (default: the wall clock)."""
        # Written for speed (this is the SDK's hot path): one dict lookup finds the plan (it is
        # cached under the key as given, a str or a tuple of categories), one call the state.
        try:
            plan = self._plans[(purpose, categories, recipient)]
        except (KeyError, TypeError):  # not asked before, or categories given as a list
            plan = self.compiled.plan_for(purpose, categories, recipient)
        if isinstance(plan, Decision):
            return plan  # a refusal: unknown names
        state = self._lookup(subject, self._empty)
        if state >> self._x_shift:
            state = self._resolve(self._rows.find(subject), state, now)
            decision = decide_state(self.compiled, plan, state)
        elif plan.lone:  # decide_state's first branch, inlined (no expired grants here)
            decision = self._verdicts[state & _J_MASK][plan.first][(state >> plan.lone) & 3]
        else:
            decision = decide_state(self.compiled, plan, state)
        if self._fresh_until < _monotonic():
            return self._stale(plan, decision)
        return decision

    def _allowed_by_check(
        self, subject: str, purpose: str, categories: Sequence[str] | str, recipient: str | None
    ) -> bool:
        return self.check(subject, purpose, categories, recipient).allowed

    def _allows(
        self,
        subject: str,
        purpose: str,
        categories: Sequence[str] | str,
        recipient: str | None = None,
    ) -> bool:
        """``check(...).allowed``, one call shorter on the common path: a request that one
        permission answers, a subject without time-limited grants, a fresh replica."""
        try:
            plan = self._plans[(purpose, categories, recipient)]
        except (KeyError, TypeError):
            plan = self.compiled.plan_for(purpose, categories, recipient)
        if type(plan) is Plan and plan.lone:
            state = self._lookup(subject, self._empty)
            if not state >> self._x_shift and self._fresh_until >= _monotonic():
                return self._verdicts[state & _J_MASK][plan.first][(state >> plan.lone) & 3].allowed
        return self.check(subject, purpose, categories, recipient).allowed

    def check_planned(self, items: Sequence[tuple[str, Plan]], now: float | None) -> list[Decision]:
        """``check`` for many requests already planned (``CompiledCatalogue.plan`` gave a Plan,
        not a refusal): one tight loop, the staleness bound looked at once, at the end."""
        lookup = self._lookup
        find = self._rows.find
        empty = self._empty
        x_shift = self._x_shift
        compiled = self.compiled
        verdicts = compiled.verdicts
        j_mask = _J_MASK
        out: list[Decision] = []
        append = out.append
        for subject, plan in items:
            state = lookup(subject, empty)
            if state >> x_shift:
                state = self._resolve(find(subject), state, now)
            elif plan.lone:  # decide_state's first branch, inlined (no expired grants here)
                append(verdicts[state & j_mask][plan.first][(state >> plan.lone) & 3])
                continue
            append(decide_state(compiled, plan, state))
        if self._fresh_until < _monotonic():
            stale = self._stale
            return [stale(plan, d) for (_, plan), d in zip(items, out, strict=True)]
        return out

    def _resolve(self, row: int, state: int, now: float | None) -> int:
        moment = self.wall_clock() if now is None else now
        expired = 0
        for bit, expires in self._expiries.get(row, {}).items():
            if expires <= moment:
                expired |= 1 << bit
        return self.compiled.expire(state, expired)

    def _stale(self, plan: Plan, decision: Decision) -> Decision:
        if not plan.toggleable:
            return decision
        return Decision(False, Reason.STALE_REPLICA, decision.permission)

    def stale(self) -> bool:
        return self._fresh_until < time.monotonic()

    def seq(self, subject: str) -> int:
        row = self._rows.find(subject)
        return self._rows.seq(row) if row >= 0 else 0

    def state_of(self, subject: str) -> tuple[int, str | None, dict[str, Code]]:
        """(seq, jurisdiction, permission id -> stored code): for tests and debugging."""
        row = self._rows.find(subject)
        if row < 0:
            return 0, None, {}
        state = self._rows.state(row)
        ids = self.compiled.permission_ids
        codes = {ids[bit]: code for bit, code in self.compiled.codes(state).items()}
        return self._rows.seq(row), self.compiled.jurisdiction(state), codes

    # -- writes (hold ``lock``) --------------------------------------------------------------
    def put(
        self,
        subject: str,
        seq: int,
        jurisdiction: str | None,
        choices: Iterable[ChoiceRow],
        *,
        force: bool = False,
        ref: str | None = None,
    ) -> bool:
        """Replace a subject's whole state, unless the replica already holds a later seq of
        the same chain (``ref``: the chain's reference, when known)."""
        row = self._rows.find(subject)
        tag = chain_tag(ref)
        if (
            row >= 0
            and not force
            and self._rows.seq(row) > seq
            and not self._chains.new_chain(row, tag)
        ):
            return False
        compiled = self.compiled
        codes: dict[int, Code] = {}
        expiries: dict[int, float] = {}
        for pid, state, version, expires in choices:
            bit = compiled.bit.get(pid)
            if bit is None:
                continue  # a permission this catalogue no longer has
            code = compiled.static_code(bit, state, version)
            codes[bit] = code
            if expires is not None and code is not Code.DENIED:
                expiries[bit] = expires
        jid = compiled.jurisdiction_id(jurisdiction)
        packed = compiled.pack(codes.items(), jid, bool(expiries))
        self._store(subject, row, seq, packed, expiries, tag)
        return True

    def load_masks(
        self,
        subject: str,
        seq: int,
        jurisdiction: str | None,
        c0: int,
        c1: int,
        expiries: dict[int, float],
        ref: str | None = None,
    ) -> None:
        """Add a subject from a snapshot line: its stored code masks, as the server's compiled
        catalogue (the same catalogue, sent in the snapshot header) produced them."""
        compiled = self.compiled
        jid = compiled.jurisdiction_id(jurisdiction)
        state = compiled.assemble(c0 & compiled.full, c1 & compiled.full, 0, jid, bool(expiries))
        self._store(subject, self._rows.find(subject), seq, state, expiries, chain_tag(ref))

    def masks_of(self, subject: str) -> tuple[int, int, dict[int, float]]:
        """(c0, c1, expiries) of a subject, as a snapshot line carries them."""
        row = self._rows.find(subject)
        if row < 0:
            return 0, 0, {}
        c0, c1 = self.compiled.masks(self._rows.state(row))
        return c0, c1, dict(self._expiries.get(row, {}))

    def apply(self, change: Message | Mapping[str, Any]) -> bool:
        """Apply one change message (or its JSON object, read with ``messages.decode``). False
        when it does not follow the subject's last applied event (a gap): the caller reloads
        that subject (or the whole snapshot)."""
        if isinstance(change, Mapping):
            change = decode(change)
        if isinstance(change, SubjectErased) and change.subject is None:
            self.erase_ref(change.subject_ref, change.seq)
            return True
        tag = chain_tag(change.subject_ref)
        if isinstance(change, JurisdictionSet):
            self.set_jurisdiction(change.subject, change.jurisdiction, tag)
            return True
        if change.subject is None or isinstance(change, Redacted) or change.seq is None:
            return True  # redacted by an erasure; the erasure event itself follows
        subject = change.subject
        seq = change.seq
        row = self._rows.find(subject)
        fresh = row >= 0 and self._chains.new_chain(row, tag)
        last = self._rows.seq(row) if row >= 0 and not fresh else 0
        if seq <= last:
            return True  # already applied (a snapshot or a local write got here first)
        if seq != last + 1:
            return False
        compiled = self.compiled
        state = self._rows.state(row) if row >= 0 and not fresh else self._empty
        jid = compiled.jurisdiction_index(state)
        codes = compiled.codes(state)
        expiries = dict(self._expiries.get(row, {})) if row >= 0 and not fresh else {}
        if isinstance(change, SubjectErased):
            codes, expiries, jid = {}, {}, 0
        elif isinstance(change, PermissionChanged):
            bit = compiled.bit.get(change.permission)
            if bit is not None:
                code = compiled.static_code(bit, change.state, change.notice_version)
                codes[bit] = code
                expires = timestamp(change.expires_at)
                if expires is not None and code is not Code.DENIED:
                    expiries[bit] = expires
                else:
                    expiries.pop(bit, None)
        # Any other kind only moves the subject's seq on.
        packed = compiled.pack(codes.items(), jid, bool(expiries))
        self._store(subject, row, seq, packed, expiries, tag)
        return True

    def erase_ref(self, ref: str, seq: int) -> None:
        """An erasure names the subject by chain reference only (the server keeps no link to
        the id any more): the row whose chain has that tag. O(subjects); erasures are rare."""
        tag = chain_tag(ref)
        if not tag:
            return
        rows = self._rows
        matches = list(self._chains.rows_with(tag))
        for row in matches:
            if rows.seq(row) < seq:
                self._store(rows.subject(row), row, seq, self._empty, {})

    def set_jurisdiction(self, subject: str, jurisdiction: str | None, tag: int = 0) -> None:
        compiled = self.compiled
        row = self._rows.find(subject)
        if row >= 0 and self._chains.new_chain(row, tag):  # a new chain: nothing of the old one
            self._store(subject, row, 0, self._empty, {}, tag)
        state = self._rows.state(row) if row >= 0 else self._empty
        expiries = dict(self._expiries.get(row, {})) if row >= 0 else {}
        jid = compiled.jurisdiction_id(jurisdiction)
        packed = compiled.pack(compiled.codes(state).items(), jid, bool(expiries))
        seq = self._rows.seq(row) if row >= 0 else 0
        self._store(subject, row, seq, packed, expiries, tag)

    def _store(
        self,
        subject: str,
        row: int,
        seq: int,
        state: int,
        expiries: dict[int, float],
        tag: int = 0,
    ) -> None:
        if row < 0:
            if not expiries:
                self._chains.set(self._rows.add(subject, state, seq), tag)
                return
            # A state with expiries is readable only once its expiries are: add the row empty.
            row = self._rows.add(subject, self._empty, 0)
        self._chains.set(row, tag)
        if expiries:
            self._expiries[row] = expiries
        else:
            self._expiries.pop(row, None)
        self._rows.set(row, state, seq)

    def clear(self) -> None:
        """Forget every subject (before loading a new snapshot into this object)."""
        self._use_rows(self._new_rows(1024, self._state_bits))
        self._expiries = {}
        self._chains = ChainTags()
