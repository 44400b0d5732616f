/* Subject rows for the SDK replica: subject id -> (packed state, last applied seq), compiled.
 *
 * The pure-Python equivalent is consentry.replica.rows.PyRows; both answer the same methods and
 * tests run against both. This one exists for the hot path: Replica.check asks
 * ``rows.lookup(subject, empty)`` once per decision, and at a million subjects that lookup
 * must cost about two memory reads, not five Python-level ones.
 *
 * Layout. Every subject is one record appended to an arena:
 *     [state: PyObject* (8)][seq: uint32 (4)][length: uint16 (2)][the id's UTF-8 bytes]
 * Records are never moved within the arena (the arena may be reallocated as a whole, so no
 * pointer into it is kept across calls); a record's byte offset is its handle. The index is an
 * open-addressing table of uint64 slots: the top 24 bits of the id's Python hash (a tag that
 * rules out nearly every non-matching slot without reading the record) and the record's
 * offset + 1 in the low 40 bits (0 means empty). Ids are compared byte for byte, never
 * trusted to the hash alone. The hash is Python's own keyed string hash, so ids chosen to
 * collide cannot be computed without the process's hash key.
 *
 * Concurrency: every method runs holding the GIL and never releases it, so readers and the
 * one writer (the replica holds its lock around writes) never see a half-made change.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define HEADER 14
#define OFFSET_BITS 40
#define OFFSET_MASK ((UINT64_C(1) << OFFSET_BITS) - 1)
#define TAG_MASK (~OFFSET_MASK)
#define MAX_ID_BYTES 65535

typedef struct {
    PyObject_HEAD
    uint64_t *slots;
    uint64_t mask; /* number of slots - 1 (a power of two minus one) */
    char *arena;
    size_t used;
    size_t capacity;
    Py_ssize_t count;
} Rows;

static inline PyObject *record_state(const char *record) {
    PyObject *state;
    memcpy(&state, record, sizeof state);
    return state;
}

static inline uint32_t record_seq(const char *record) {
    uint32_t seq;
    memcpy(&seq, record + 8, sizeof seq);
    return seq;
}

static inline uint16_t record_length(const char *record) {
    uint16_t length;
    memcpy(&length, record + 12, sizeof length);
    return length;
}

/* The record's offset, or -1 with *slot set to the empty slot where the id would go. */
static Py_ssize_t locate(Rows *self, const char *id, Py_ssize_t length, Py_hash_t hash,
                         uint64_t *slot) {
    uint64_t h = (uint64_t)hash;
    uint64_t tag = h & TAG_MASK;
    uint64_t mask = self->mask;
    uint64_t i = h & mask;
    const uint64_t *slots = self->slots;
    for (;;) {
        uint64_t entry = slots[i];
        if (entry == 0) {
            *slot = i;
            return -1;
        }
        if ((entry & TAG_MASK) == tag) {
            size_t offset = (size_t)((entry & OFFSET_MASK) - 1);
            const char *record = self->arena + offset;
            if (record_length(record) == length && memcmp(record + HEADER, id, (size_t)length) == 0) {
                *slot = i;
                return (Py_ssize_t)offset;
            }
        }
        i = (i + 1) & mask;
    }
}

/* The subject's UTF-8 bytes and hash; -1 with an exception set when it is not a str. */
static int subject_key(PyObject *subject, const char **id, Py_ssize_t *length, Py_hash_t *hash) {
    if (!PyUnicode_Check(subject)) {
        PyErr_Format(PyExc_TypeError, "subject must be str, not %.100s", Py_TYPE(subject)->tp_name);
        return -1;
    }
    *id = PyUnicode_AsUTF8AndSize(subject, length);
    if (*id == NULL) {
        return -1;
    }
    *hash = PyObject_Hash(subject);
    if (*hash == -1 && PyErr_Occurred()) {
        return -1;
    }
    return 0;
}

static Py_ssize_t find_subject(Rows *self, PyObject *subject, uint64_t *slot, Py_hash_t *hash) {
    const char *id;
    Py_ssize_t length;
    if (subject_key(subject, &id, &length, hash) < 0) {
        return -2;
    }
    return locate(self, id, length, *hash, slot);
}

/* A handle given back by Python: in range and at a record start it must be (the replica only
 * passes handles this object returned; the range check keeps a wrong one from reading past
 * the arena). */
static const char *record_at(Rows *self, PyObject *handle) {
    Py_ssize_t offset = PyLong_AsSsize_t(handle);
    if (offset == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (offset < 0 || (size_t)offset + HEADER > self->used) {
        PyErr_SetString(PyExc_IndexError, "no such row");
        return NULL;
    }
    return self->arena + offset;
}

static int grow_index(Rows *self) {
    uint64_t size = (self->mask + 1) * 2;
    if (size - 1 > OFFSET_MASK) {
        PyErr_SetString(PyExc_OverflowError, "too many subjects for one replica");
        return -1;
    }
    uint64_t *slots = PyMem_Calloc((size_t)size, sizeof(uint64_t));
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    uint64_t mask = size - 1;
    /* Walk the arena in order (sequential reads); the hash is recomputed from the id. */
    size_t offset = 0;
    while (offset < self->used) {
        const char *record = self->arena + offset;
        uint16_t length = record_length(record);
        PyObject *id = PyUnicode_DecodeUTF8(record + HEADER, length, "strict");
        if (id == NULL) {
            PyMem_Free(slots);
            return -1;
        }
        Py_hash_t hash = PyObject_Hash(id);
        Py_DECREF(id);
        if (hash == -1 && PyErr_Occurred()) {
            PyMem_Free(slots);
            return -1;
        }
        uint64_t h = (uint64_t)hash;
        uint64_t i = h & mask;
        while (slots[i] != 0) {
            i = (i + 1) & mask;
        }
        slots[i] = (h & TAG_MASK) | (uint64_t)(offset + 1);
        offset += HEADER + length;
    }
    PyMem_Free(self->slots);
    self->slots = slots;
    self->mask = mask;
    return 0;
}

static int reserve(Rows *self, size_t more) {
    if (self->used + more <= self->capacity) {
        return 0;
    }
    size_t capacity = self->capacity ? self->capacity : 4096;
    while (capacity < self->used + more) {
        capacity += capacity / 2;
    }
    if (capacity - 1 > OFFSET_MASK) {
        PyErr_SetString(PyExc_OverflowError, "too many subjects for one replica");
        return -1;
    }
    char *arena = PyMem_Realloc(self->arena, capacity);
    if (arena == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->arena = arena;
    self->capacity = capacity;
    return 0;
}

static int check_state(PyObject *state) {
    if (!PyLong_CheckExact(state)) {
        PyErr_Format(PyExc_TypeError, "state must be int, not %.100s", Py_TYPE(state)->tp_name);
        return -1;
    }
    return 0;
}

static int check_seq(PyObject *value, uint32_t *seq) {
    unsigned long long v = PyLong_AsUnsignedLongLong(value);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        return -1;
    }
    if (v > UINT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "seq does not fit in 32 bits");
        return -1;
    }
    *seq = (uint32_t)v;
    return 0;
}

static void write_state(char *record, PyObject *state, uint32_t seq) {
    PyObject *old = record_state(record);
    Py_INCREF(state);
    memcpy(record, &state, sizeof state);
    memcpy(record + 8, &seq, sizeof seq);
    Py_XDECREF(old);
}

/* ---- methods ------------------------------------------------------------------------------ */

static PyObject *Rows_lookup(Rows *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "lookup(subject, default)");
        return NULL;
    }
    uint64_t slot;
    Py_hash_t hash;
    Py_ssize_t offset = find_subject(self, args[0], &slot, &hash);
    if (offset == -2) {
        return NULL;
    }
    PyObject *state = offset < 0 ? args[1] : record_state(self->arena + offset);
    Py_INCREF(state);
    return state;
}

static PyObject *Rows_find(Rows *self, PyObject *subject) {
    uint64_t slot;
    Py_hash_t hash;
    Py_ssize_t offset = find_subject(self, subject, &slot, &hash);
    if (offset == -2) {
        return NULL;
    }
    return PyLong_FromSsize_t(offset);
}

static PyObject *Rows_add(Rows *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "add(subject, state, seq)");
        return NULL;
    }
    PyObject *subject = args[0];
    PyObject *state = args[1];
    uint32_t seq;
    if (check_state(state) < 0 || check_seq(args[2], &seq) < 0) {
        return NULL;
    }
    const char *id;
    Py_ssize_t length;
    Py_hash_t hash;
    if (subject_key(subject, &id, &length, &hash) < 0) {
        return NULL;
    }
    if (length > MAX_ID_BYTES) {
        PyErr_SetString(PyExc_ValueError, "subject id longer than 65535 bytes");
        return NULL;
    }
    uint64_t slot;
    Py_ssize_t offset = locate(self, id, length, hash, &slot);
    if (offset >= 0) {
        write_state(self->arena + offset, state, seq);
        return PyLong_FromSsize_t(offset);
    }
    /* Room first (index and arena), so a failure leaves the table as it was. */
    if ((uint64_t)(self->count + 1) * 4 > (self->mask + 1) * 3) {
        if (grow_index(self) < 0) {
            return NULL;
        }
        locate(self, id, length, hash, &slot);
    }
    if (reserve(self, HEADER + (size_t)length) < 0) {
        return NULL;
    }
    /* The record first, then the slot: a reader that finds the id finds its state. */
    char *record = self->arena + self->used;
    uint16_t stored = (uint16_t)length;
    PyObject *none = NULL;
    memcpy(record, &none, sizeof none);
    memcpy(record + 12, &stored, sizeof stored);
    memcpy(record + HEADER, id, (size_t)length);
    write_state(record, state, seq);
    size_t at = self->used;
    self->used += HEADER + (size_t)length;
    self->slots[slot] = ((uint64_t)hash & TAG_MASK) | (uint64_t)(at + 1);
    self->count += 1;
    return PyLong_FromSize_t(at);
}

static PyObject *Rows_state(Rows *self, PyObject *handle) {
    const char *record = record_at(self, handle);
    if (record == NULL) {
        return NULL;
    }
    PyObject *state = record_state(record);
    Py_INCREF(state);
    return state;
}

static PyObject *Rows_seq(Rows *self, PyObject *handle) {
    const char *record = record_at(self, handle);
    if (record == NULL) {
        return NULL;
    }
    return PyLong_FromUnsignedLong(record_seq(record));
}

static PyObject *Rows_set(Rows *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "set(row, state, seq)");
        return NULL;
    }
    const char *record = record_at(self, args[0]);
    uint32_t seq;
    if (record == NULL || check_state(args[1]) < 0 || check_seq(args[2], &seq) < 0) {
        return NULL;
    }
    write_state((char *)record, args[1], seq);
    Py_RETURN_NONE;
}

static PyObject *Rows_subject(Rows *self, PyObject *handle) {
    const char *record = record_at(self, handle);
    if (record == NULL) {
        return NULL;
    }
    return PyUnicode_DecodeUTF8(record + HEADER, record_length(record), "strict");
}

/* The handle after this one in insertion order, or -1; next_row(-1) is the first. */
static PyObject *Rows_next_row(Rows *self, PyObject *handle) {
    Py_ssize_t offset = PyLong_AsSsize_t(handle);
    if (offset == -1 && PyErr_Occurred()) {
        return NULL;
    }
    size_t next;
    if (offset < 0) {
        next = 0;
    } else {
        const char *record = record_at(self, handle);
        if (record == NULL) {
            return NULL;
        }
        next = (size_t)offset + HEADER + record_length(record);
    }
    return PyLong_FromSsize_t(next < self->used ? (Py_ssize_t)next : -1);
}

static PyObject *Rows_nbytes(Rows *self, PyObject *Py_UNUSED(ignored)) {
    return PyLong_FromSize_t(self->capacity + (size_t)(self->mask + 1) * sizeof(uint64_t));
}

static Py_ssize_t Rows_len(Rows *self) { return self->count; }

static int Rows_init(Rows *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"capacity", NULL};
    Py_ssize_t capacity = 1024;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|n", keywords, &capacity)) {
        return -1;
    }
    if (self->slots != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Rows is initialised once");
        return -1;
    }
    uint64_t size = 8;
    while (size < (uint64_t)(capacity > 0 ? capacity : 1) * 2) {
        size *= 2;
    }
    self->slots = PyMem_Calloc((size_t)size, sizeof(uint64_t));
    if (self->slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->mask = size - 1;
    return 0;
}

static void Rows_dealloc(Rows *self) {
    size_t offset = 0;
    while (offset < self->used) {
        const char *record = self->arena + offset;
        Py_XDECREF(record_state(record));
        offset += HEADER + record_length(record);
    }
    PyMem_Free(self->arena);
    PyMem_Free(self->slots);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Rows_methods[] = {
    {"lookup", (PyCFunction)(void (*)(void))Rows_lookup, METH_FASTCALL,
     "lookup(subject, default) -> the subject's state, or default when absent"},
    {"find", (PyCFunction)Rows_find, METH_O, "find(subject) -> its row, or -1"},
    {"add", (PyCFunction)(void (*)(void))Rows_add, METH_FASTCALL,
     "add(subject, state, seq) -> its row (created when missing, else updated)"},
    {"state", (PyCFunction)Rows_state, METH_O, "state(row) -> the row's state"},
    {"seq", (PyCFunction)Rows_seq, METH_O, "seq(row) -> the row's last applied seq"},
    {"set", (PyCFunction)(void (*)(void))Rows_set, METH_FASTCALL, "set(row, state, seq)"},
    {"subject", (PyCFunction)Rows_subject, METH_O, "subject(row) -> the subject id"},
    {"next_row", (PyCFunction)Rows_next_row, METH_O,
     "next_row(row) -> the next row in insertion order, or -1; next_row(-1) is the first"},
    {"nbytes", (PyCFunction)Rows_nbytes, METH_NOARGS, "bytes held by the index and the records"},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods Rows_as_sequence = {
    .sq_length = (lenfunc)Rows_len,
};

static PyTypeObject RowsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "consentry.replica._rows.Rows",
    .tp_doc = PyDoc_STR("Subject rows: id -> (state, seq), compiled (see rows.PyRows)."),
    .tp_basicsize = sizeof(Rows),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Rows_init,
    .tp_dealloc = (destructor)Rows_dealloc,
    .tp_methods = Rows_methods,
    .tp_as_sequence = &Rows_as_sequence,
};

/* ---- the decision fast path ------------------------------------------------------------------
 *
 * Checker.allows(subject, purpose, categories, recipient=None) answers Replica.allows for the
 * common request in C: one permission answers it (the plan is "lone"), the subject has no
 * time-limited grant, the replica is fresh. It does no deciding of its own: it reads the plan
 * the pure-Python compiled catalogue made and indexes the verdict table the decision rule
 * filled, exactly as the first branch of domain.compiled.decide_state does. Every other request
 * goes to ``fallback`` (the Python Replica.check path), unchanged.
 */
#include <time.h>

typedef struct {
    PyObject_HEAD
    Rows *rows;
    PyObject *plans;     /* dict: (purpose, categories, recipient) -> Plan | Decision */
    PyObject *plan_type; /* the Plan class */
    PyObject *empty;     /* the state of a subject the replica does not hold */
    PyObject *x_limit;   /* 1 << x_shift: a state at or above it has time-limited grants */
    PyObject *verdicts;  /* [jurisdiction][permission][code] -> Decision */
    PyObject *fallback;  /* callable(subject, purpose, categories, recipient) -> bool */
    double fresh_until;  /* time.monotonic() bound; past it the fallback answers */
} Checker;

static PyObject *str_lone, *str_first, *str_allowed;

static int Checker_traverse(Checker *self, visitproc visit, void *arg) {
    Py_VISIT(self->rows);
    Py_VISIT(self->plans);
    Py_VISIT(self->plan_type);
    Py_VISIT(self->empty);
    Py_VISIT(self->x_limit);
    Py_VISIT(self->verdicts);
    Py_VISIT(self->fallback);
    return 0;
}

static int Checker_clear(Checker *self) {
    Py_CLEAR(self->rows);
    Py_CLEAR(self->plans);
    Py_CLEAR(self->plan_type);
    Py_CLEAR(self->empty);
    Py_CLEAR(self->x_limit);
    Py_CLEAR(self->verdicts);
    Py_CLEAR(self->fallback);
    return 0;
}

static void Checker_dealloc(Checker *self) {
    PyObject_GC_UnTrack(self);
    Checker_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}


static int Checker_init(Checker *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"rows", "plans", "plan_type", "empty", "x_limit", "verdicts",
                               "fallback", NULL};
    PyObject *rows, *plans, *plan_type, *empty, *x_limit, *verdicts, *fallback;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!O!O!O!OO", keywords, &RowsType, &rows,
                                     &PyDict_Type, &plans, &PyType_Type, &plan_type,
                                     &PyLong_Type, &empty, &PyLong_Type, &x_limit, &verdicts,
                                     &fallback)) {
        return -1;
    }
    if (!PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_TypeError, "fallback must be callable");
        return -1;
    }
    Checker_clear(self);
    Py_INCREF(rows);
    self->rows = (Rows *)rows;
    self->plans = Py_NewRef(plans);
    self->plan_type = Py_NewRef(plan_type);
    self->empty = Py_NewRef(empty);
    self->x_limit = Py_NewRef(x_limit);
    self->verdicts = Py_NewRef(verdicts);
    self->fallback = Py_NewRef(fallback);
    self->fresh_until = Py_HUGE_VAL;
    return 0;
}

static PyObject *call_fallback(Checker *self, PyObject *const *args) {
    return PyObject_Vectorcall(self->fallback, args, 4, NULL);
}

/* The 2-bit code at ``shift`` and the jurisdiction (the low 16 bits) of a state. */
static int state_bits(PyObject *state, long shift, unsigned *code, unsigned *jurisdiction) {
    unsigned long long low = PyLong_AsUnsignedLongLongMask(state);
    if (low == (unsigned long long)-1 && PyErr_Occurred()) {
        return -1;
    }
    *jurisdiction = (unsigned)(low & 0xFFFF);
    if (shift <= 62) {
        *code = (unsigned)((low >> shift) & 3);
        return 0;
    }
    PyObject *by = PyLong_FromLong(shift);
    if (by == NULL) {
        return -1;
    }
    PyObject *high = PyNumber_Rshift(state, by);
    Py_DECREF(by);
    if (high == NULL) {
        return -1;
    }
    unsigned long long bits = PyLong_AsUnsignedLongLongMask(high);
    Py_DECREF(high);
    if (bits == (unsigned long long)-1 && PyErr_Occurred()) {
        return -1;
    }
    *code = (unsigned)(bits & 3);
    return 0;
}

static PyObject *Checker_allows(Checker *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 3 || nargs > 4) {
        PyErr_SetString(PyExc_TypeError, "allows(subject, purpose, categories, recipient=None)");
        return NULL;
    }
    PyObject *full[4] = {args[0], args[1], args[2], nargs == 4 ? args[3] : Py_None};
    PyObject *key = PyTuple_Pack(3, full[1], full[2], full[3]);
    if (key == NULL) {
        return NULL;
    }
    PyObject *plan = PyDict_GetItemWithError(self->plans, key); /* borrowed */
    Py_DECREF(key);
    if (plan == NULL) {
        PyErr_Clear(); /* not planned yet, or an unhashable list of categories */
        return call_fallback(self, full);
    }
    if (Py_TYPE(plan) != (PyTypeObject *)self->plan_type) {
        return call_fallback(self, full); /* a refusal */
    }
    Py_INCREF(plan);
    PyObject *lone_obj = PyObject_GetAttr(plan, str_lone);
    PyObject *first_obj = lone_obj ? PyObject_GetAttr(plan, str_first) : NULL;
    Py_DECREF(plan);
    if (first_obj == NULL) {
        Py_XDECREF(lone_obj);
        return NULL;
    }
    long lone = PyLong_AsLong(lone_obj);
    Py_ssize_t first = PyLong_AsSsize_t(first_obj);
    Py_DECREF(lone_obj);
    Py_DECREF(first_obj);
    if ((lone == -1 || first == -1) && PyErr_Occurred()) {
        return NULL;
    }
    if (lone <= 0) {
        return call_fallback(self, full); /* several permissions may answer */
    }
    uint64_t slot;
    Py_hash_t hash;
    Py_ssize_t offset = find_subject(self->rows, full[0], &slot, &hash);
    if (offset == -2) {
        return NULL;
    }
    PyObject *state = offset < 0 ? self->empty : record_state(self->rows->arena + offset);
    Py_INCREF(state);
    int limited = PyObject_RichCompareBool(state, self->x_limit, Py_GE);
    unsigned code = 0, jurisdiction = 0;
    int failed = limited < 0 || (!limited && state_bits(state, lone, &code, &jurisdiction) < 0);
    Py_DECREF(state);
    if (failed) {
        return NULL;
    }
    struct timespec now;
    if (limited || clock_gettime(CLOCK_MONOTONIC, &now) != 0 ||
        (double)now.tv_sec + (double)now.tv_nsec * 1e-9 > self->fresh_until) {
        return call_fallback(self, full); /* time-limited grants, or possibly stale */
    }
    PyObject *by_bit = PySequence_GetItem(self->verdicts, (Py_ssize_t)jurisdiction);
    PyObject *by_code = by_bit ? PySequence_GetItem(by_bit, first) : NULL;
    PyObject *verdict = by_code ? PySequence_GetItem(by_code, (Py_ssize_t)code) : NULL;
    PyObject *allowed = verdict ? PyObject_GetAttr(verdict, str_allowed) : NULL;
    Py_XDECREF(by_bit);
    Py_XDECREF(by_code);
    Py_XDECREF(verdict);
    return allowed;
}

static PyObject *Checker_get_fresh_until(Checker *self, void *Py_UNUSED(closure)) {
    return PyFloat_FromDouble(self->fresh_until);
}

static int Checker_set_fresh_until(Checker *self, PyObject *value, void *Py_UNUSED(closure)) {
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "fresh_until cannot be deleted");
        return -1;
    }
    double v = PyFloat_AsDouble(value);
    if (v == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    self->fresh_until = v;
    return 0;
}

static PyGetSetDef Checker_getset[] = {
    {"fresh_until", (getter)Checker_get_fresh_until, (setter)Checker_set_fresh_until,
     "time.monotonic() bound past which every request goes to the fallback", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef Checker_methods[] = {
    {"allows", (PyCFunction)(void (*)(void))Checker_allows, METH_FASTCALL,
     "allows(subject, purpose, categories, recipient=None) -> bool"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject CheckerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "consentry.replica._rows.Checker",
    .tp_doc = PyDoc_STR("Replica.allows for the common request, in C (see the module source)."),
    .tp_basicsize = sizeof(Checker),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Checker_init,
    .tp_dealloc = (destructor)Checker_dealloc,
    .tp_traverse = (traverseproc)Checker_traverse,
    .tp_clear = (inquiry)Checker_clear,
    .tp_methods = Checker_methods,
    .tp_getset = Checker_getset,
};

static struct PyModuleDef rows_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "consentry.replica._rows",
    .m_doc = "Compiled subject rows for the SDK replica (see consentry.replica.rows).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__rows(void) {
    str_lone = PyUnicode_InternFromString("lone");
    str_first = PyUnicode_InternFromString("first");
    str_allowed = PyUnicode_InternFromString("allowed");
    if (str_lone == NULL || str_first == NULL || str_allowed == NULL) {
        return NULL;
    }
    if (PyType_Ready(&RowsType) < 0 || PyType_Ready(&CheckerType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&rows_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "Rows", (PyObject *)&RowsType) < 0 ||
        PyModule_AddObjectRef(module, "Checker", (PyObject *)&CheckerType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
