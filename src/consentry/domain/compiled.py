"""The catalogue compiled to integers, and a subject's state packed into one int.

This is how :func:`consentry.domain.decisions.decide` answers, in the server and in the SDK
replica alike. Permission ``i`` of the catalogue (in file order) is bit ``i``. A subject's state
is one Python int, laid out as::

    bits [0, 16)           J   jurisdiction id (0 = none), see ``jurisdiction_id``
    bits [16, 16+P)        A   allowed now, per permission (time-limited grants count as granted)
    bits [16+P, 16+3P)     C   two bits per permission, the code of its choice: 00 none,
                               01 granted, 10 denied, 11 granted on a notice that changed since
    bit  16+3P             X   the subject has time-limited grants (see ``expire``)
    bits [17+3P, 17+4P)    E   expired grants; only in a state resolved at a moment, never stored

``A`` is derived from the codes with masks that :func:`consentry.domain.rules.effect` produced,
and every Decision comes from a table that ``effect`` filled: the rule is not restated here.
One int per subject is also what makes the replica small and its updates atomic (a single
reference swap, no torn reads between threads).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime

from consentry.domain.catalogue import Catalogue
from consentry.domain.catalogue_entries import Permission
from consentry.domain.catalogue_vocabulary import LegalBasis
from consentry.domain.rules import (
    Code,
    Decision,
    Reason,
    classify,
    default_granted,
    effect,
)
from consentry.domain.state import Choice, ChoiceState

JURISDICTION_BITS = 16
_J_MASK = (1 << JURISDICTION_BITS) - 1
MAX_PLANS = 10_000

UNKNOWN_PURPOSE = Decision(False, Reason.UNKNOWN_PURPOSE)
NO_CATEGORIES = Decision(False, Reason.NO_CATEGORIES)
UNKNOWN_CATEGORY = Decision(False, Reason.UNKNOWN_CATEGORY)
UNKNOWN_RECIPIENT = Decision(False, Reason.UNKNOWN_RECIPIENT)
NOT_COVERED = Decision(False, Reason.NOT_COVERED)


class Plan:
    """A request's purpose, categories and recipient resolved against the catalogue: for each
    category, the mask of permissions (for this purpose and recipient) that cover it."""

    __slots__ = (
        "categories",
        "masks",
        "devices",
        "any_device",
        "toggleable",
        "single",
        "first",
        "lone",
    )

    def __init__(
        self,
        categories: tuple[str, ...],
        masks: tuple[int, ...],
        devices: tuple[bool, ...],
        toggleable: int,
        code_shift: int,
    ) -> None:
        self.categories = categories
        # Masks shifted to where a packed state keeps its allowed bits.
        self.masks = tuple(m << JURISDICTION_BITS for m in masks)
        self.devices = devices
        self.any_device = any(devices)
        # The common case, answered by the first branch of ``decide_state``: one category, no
        # device data, at least one covering permission. ``first`` refuses when none allows.
        single = len(masks) == 1 and not devices[0] and masks[0] != 0
        self.single = self.masks[0] if single else 0
        self.first = (masks[0] & -masks[0]).bit_length() - 1 if single else -1
        # When a single permission covers it, where its code sits (else 0).
        lone = single and masks[0] & (masks[0] - 1) == 0
        self.lone = code_shift + 2 * self.first if lone else 0
        # The candidate permissions whose answer depends on the subject's choices.
        self.toggleable = toggleable


class CompiledCatalogue:
    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.permissions: tuple[Permission, ...] = tuple(catalogue.permissions)
        self.permission_ids = tuple(p.id for p in self.permissions)
        self.bit = {pid: i for i, pid in enumerate(self.permission_ids)}
        size = self.size = len(self.permissions)
        self.full = (1 << size) - 1
        self.c_shift = JURISDICTION_BITS + size
        self.x_shift = JURISDICTION_BITS + 3 * size
        self.e_shift = self.x_shift + 1
        self.toggleable = _mask(i for i, p in enumerate(self.permissions) if p.toggleable)
        self.consent = _mask(
            i for i, p in enumerate(self.permissions) if p.legal_basis is LegalBasis.CONSENT
        )
        self.device_categories = frozenset(
            name for name, cat in catalogue.categories.items() if cat.device
        )
        self._lock = threading.Lock()
        self._jurisdictions: list[str | None] = [None]
        self._jurisdiction_ids: dict[str | None, int] = {None: 0}
        self._masks: list[tuple[int, ...]] = []
        self.verdicts: list[tuple[tuple[Decision, ...], ...]] = []
        self._tables_for(0)
        self.device_denied = tuple(
            Decision(False, Reason.DEVICE_NOT_GRANTED, pid) for pid in self.permission_ids
        )
        # Keyed by (purpose, categories, recipient), categories as a tuple or as one name.
        self.plans: dict[tuple[str, tuple[str, ...] | str, str | None], Plan | Decision] = {}

    # -- jurisdictions -----------------------------------------------------------------------
    def jurisdiction_id(self, jurisdiction: str | None) -> int:
        found = self._jurisdiction_ids.get(jurisdiction)
        if found is not None:
            return found
        with self._lock:
            found = self._jurisdiction_ids.get(jurisdiction)
            if found is None:
                found = len(self._jurisdictions)
                if found >= 1 << JURISDICTION_BITS:
                    raise ValueError("too many distinct jurisdictions")
                self._tables_for(found, jurisdiction)
                self._jurisdictions.append(jurisdiction)
                self._jurisdiction_ids[jurisdiction] = found
            return found

    def jurisdiction_index(self, state: int) -> int:
        return state & _J_MASK

    def jurisdiction(self, state: int) -> str | None:
        return self._jurisdictions[self.jurisdiction_index(state)]

    def masks(self, state: int) -> tuple[int, int]:
        """The stored codes of a packed state as two masks (c0, c1): 01 granted, 10 denied..."""
        pairs = (state >> self.c_shift) & ((1 << (2 * self.size)) - 1)
        return _squeeze(pairs), _squeeze(pairs >> 1)

    def _tables_for(self, jid: int, jurisdiction: str | None = None) -> None:
        """Fill, from ``effect``, the allowed-mask per code and the Decision per (permission,
        code) for one jurisdiction."""
        masks = [0] * len(Code)
        verdicts: list[tuple[Decision, ...]] = []
        for i, perm in enumerate(self.permissions):
            row: list[Decision] = []
            for code in Code:
                default = code is Code.NONE and default_granted(perm, jurisdiction)
                result = effect(perm.legal_basis, code, default)
                if result.allowed:
                    masks[code] |= 1 << i
                row.append(Decision(result.allowed, result.reason, perm.id))
            verdicts.append(tuple(row))
        assert len(self._masks) == jid
        self._masks.append(tuple(masks))
        self.verdicts.append(tuple(verdicts))

    # -- packing -----------------------------------------------------------------------------
    def pack(
        self,
        codes: Iterable[tuple[int, Code]],
        jurisdiction_id: int = 0,
        time_limited: bool = False,
    ) -> int:
        """A packed state from (permission bit, code) pairs; EXPIRED codes set E bits."""
        c0 = c1 = e = 0
        for bit, code in codes:
            flag = 1 << bit
            if code is Code.GRANTED:
                c0 |= flag
            elif code is Code.DENIED:
                c1 |= flag
            elif code is Code.STALE:
                c0 |= flag
                c1 |= flag
            elif code is Code.EXPIRED:
                c0 |= flag
                e |= flag
        return self.assemble(c0, c1, e, jurisdiction_id, time_limited)

    def assemble(self, c0: int, c1: int, e: int, jid: int, time_limited: bool) -> int:
        masks = self._masks[jid]
        live = ~e
        allowed = (
            (self.full & ~(c0 | c1 | e) & masks[Code.NONE])
            | (c0 & ~c1 & live & masks[Code.GRANTED])
            | (c1 & ~c0 & live & masks[Code.DENIED])
            | (c0 & c1 & live & masks[Code.STALE])
            | (e & masks[Code.EXPIRED])
        )
        return (
            jid
            | allowed << JURISDICTION_BITS
            | (_spread(c0) | _spread(c1) << 1) << self.c_shift
            | int(time_limited) << self.x_shift
            | e << self.e_shift
        )

    def encode(self, choices: Mapping[str, Choice], jurisdiction: str | None, now: datetime) -> int:
        """A subject's choices as a packed state resolved at ``now`` (what the server uses)."""
        bit = self.bit
        perms = self.permissions
        codes = []
        for pid, choice in choices.items():
            i = bit.get(pid)
            if i is not None:
                codes.append((i, classify(perms[i], choice, now)))
        return self.pack(codes, self.jurisdiction_id(jurisdiction))

    def static_code(self, bit: int, state: str, notice_version: str) -> Code:
        """The code of a choice ignoring time: what a replica stores (expiry is kept aside)."""
        if state == ChoiceState.DENIED:
            return Code.DENIED
        if not self.permissions[bit].notice.accepts(notice_version):
            return Code.STALE
        return Code.GRANTED

    def codes(self, state: int) -> dict[int, Code]:
        """The stored codes of a packed state (for replicas that update one permission)."""
        c0, c1 = self.masks(state)
        out: dict[int, Code] = {}
        for i in range(self.size):
            code = ((c0 >> i) & 1) | (((c1 >> i) & 1) << 1)
            if code:
                out[i] = Code(code)
        return out

    def expire(self, state: int, expired: int) -> int:
        """The state with the grants in ``expired`` (a permission mask) resolved as expired."""
        c0, c1 = self.masks(state)
        return self.assemble(c0, c1, expired & c0, self.jurisdiction_index(state), False)

    # -- deciding ----------------------------------------------------------------------------
    def verdict(self, state: int, bit: int) -> Decision:
        """The Decision of permission ``bit`` in a packed state."""
        code: int
        if (state >> (self.e_shift + bit)) & 1:
            code = Code.EXPIRED
        else:
            code = (state >> (self.c_shift + 2 * bit)) & 3
        return self.verdicts[state & _J_MASK][bit][code]

    def plan(
        self, purpose: str, categories: tuple[str, ...], recipient: str | None
    ) -> Plan | Decision:
        """The request resolved against the catalogue, or the Decision that refuses it."""
        key = (purpose, categories, recipient)
        found = self.plans.get(key)
        if found is None:
            found = self._compile(purpose, categories, recipient)
            if len(self.plans) >= MAX_PLANS:
                self.plans.clear()
            self.plans[key] = found
        return found

    def plan_for(
        self, purpose: str, categories: Sequence[str] | str, recipient: str | None
    ) -> Plan | Decision:
        """``plan`` for categories given as one name or any sequence of names. The answer is
        also kept under the key as given (a str or a tuple), so that a replica asked the same
        way again finds it with one dict lookup."""
        names = (categories,) if isinstance(categories, str) else tuple(categories)
        found = self.plan(purpose, names, recipient)
        if isinstance(categories, str | tuple) and categories is not names:
            if len(self.plans) >= MAX_PLANS:
                self.plans.clear()
            self.plans[(purpose, categories, recipient)] = found
        return found

    def _compile(
        self, purpose: str, categories: tuple[str, ...], recipient: str | None
    ) -> Plan | Decision:
        catalogue = self.catalogue
        if purpose not in catalogue.purposes:
            return UNKNOWN_PURPOSE
        if not categories:
            return NO_CATEGORIES
        for category in categories:
            if category not in catalogue.categories:
                return UNKNOWN_CATEGORY
        if recipient is not None and recipient not in catalogue.recipients:
            return UNKNOWN_RECIPIENT
        candidates = [
            i
            for i, p in enumerate(self.permissions)
            if p.purpose == purpose and (recipient is None or recipient in p.recipients)
        ]
        masks = tuple(
            _mask(i for i in candidates if category in self.permissions[i].categories)
            for category in categories
        )
        devices = tuple(c in self.device_categories for c in categories)
        return Plan(categories, masks, devices, _mask(candidates) & self.toggleable, self.c_shift)


def decide_state(
    compiled: CompiledCatalogue,
    plan: Plan,
    state: int,
    device_allows: Callable[[str], bool] | None = None,
) -> Decision:
    """Allow only when, for every requested category, a permission for this purpose and
    recipient covers it and is effective, and the device grants it where device data is used.
    The first covering permission (in catalogue order) that allows wins; when none allows, the
    first one's refusal is the answer. ``device_allows`` None means: no device report known."""
    cover = plan.single
    if cover and not state >> compiled.e_shift:
        # The same steps as the loop below, unrolled for one category without device data
        # and without expired grants: the path of nearly every check.
        if plan.lone:
            return compiled.verdicts[state & _J_MASK][plan.first][(state >> plan.lone) & 3]
        hit = state & cover
        bit = (hit & -hit).bit_length() - 1 - JURISDICTION_BITS if hit else plan.first
        return compiled.verdicts[state & _J_MASK][bit][(state >> (compiled.c_shift + 2 * bit)) & 3]
    first: Decision | None = None
    for i, cover in enumerate(plan.masks):
        hit = state & cover
        if not hit:
            if not cover:
                return NOT_COVERED
            return compiled.verdict(state, (cover & -cover).bit_length() - 1 - JURISDICTION_BITS)
        bit = (hit & -hit).bit_length() - 1 - JURISDICTION_BITS
        if plan.devices[i] and (device_allows is None or not device_allows(plan.categories[i])):
            return compiled.device_denied[bit]
        if first is None:
            first = compiled.verdict(state, bit)
    assert first is not None  # a plan has at least one category
    return first


# Byte -> its bits at even positions, and back (to interleave two masks into 2-bit codes).
_SPREAD = tuple(sum(((b >> i) & 1) << (2 * i) for i in range(8)) for b in range(256))
_SQUEEZE = tuple(sum(((b >> (2 * i)) & 1) << i for i in range(4)) for b in range(256))


def _by_byte(value: int, table: tuple[int, ...], width: int) -> int:
    """``value`` with each byte replaced by its ``table`` entry, the entries ``width`` bits
    apart."""
    out = shift = 0
    while value:
        out |= table[value & 0xFF] << shift
        value >>= 8
        shift += width
    return out


def _spread(mask: int) -> int:
    return _by_byte(mask, _SPREAD, 16)


def _squeeze(pairs: int) -> int:
    return _by_byte(pairs, _SQUEEZE, 4)


def _mask(bits: Iterable[int]) -> int:
    out = 0
    for bit in bits:
        out |= 1 << bit
    return out
