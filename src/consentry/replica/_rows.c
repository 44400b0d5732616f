/* Subject rows for the SDK replica, compiled: subject id -> (packed state, last applied seq),
 * and the common decision answered without leaving C.
 *
 * The pure-Python equivalent is consentry.replica.rows.PyRows; both answer the same methods and
 * the replica tests run against both. This one exists for the hot path: at a million subjects
 * a check must cost about two memory reads (index slot, then record), not five Python-level ones.
 *
 * Layout. Every subject is one record appended to an arena:
 *     [state: `words` x uint64, little end first][seq: uint32][length: uint16][id, UTF-8]
 * The packed state (see consentry.domain.compiled) is kept as machine words inside the record,
 * so neither a lookup nor a decision touches a Python int. Records are never moved within the
 * arena (the arena may be reallocated as a whole, so no pointer into it outlives a call); a
 * record's byte offset is its row handle. The index is an open-addressing table of uint64
 * slots: the top 24 bits of the id's Python hash (a tag that rules out nearly every other slot
 * without reading its record) and the record's offset + 1 in the low 40 bits (0: empty). Ids
 * are compared byte for byte, never trusted to the hash alone; the hash is Python's keyed string
 * hash, so ids chosen to collide cannot be computed without the process's hash key.
 *
 * Memory: the index and the arena are mapped with transparent huge pages advised (Linux), so
 * that a random lookup at a million subjects costs its cache misses but no page-table walks.
 *
 * Concurrency: every method runs holding the GIL and never releases it, so readers and the one
 * writer (the replica holds its lock around writes) never see a half-made change.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#define MAX_WORDS 64 /* states up to 4096 bits: catalogues of about a thousand permissions */
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
    Py_ssize_t words;  /* 64-bit words of state in each record */
    size_t header;     /* bytes before the id: 8 * words + 4 (seq) + 2 (length) */
    PyObject *too_big; /* 1 << (64 * words): states must stay below it */
} Rows;

static inline uint32_t record_seq(const Rows *self, const char *record) {
    uint32_t seq;
    memcpy(&seq, record + 8 * self->words, sizeof seq);
    return seq;
}

static inline uint16_t record_length(const Rows *self, const char *record) {
    uint16_t length;
    memcpy(&length, record + 8 * self->words + 4, sizeof length);
    return length;
}

static inline uint64_t record_word(const char *record, Py_ssize_t i) {
    uint64_t word;
    memcpy(&word, record + 8 * i, sizeof word);
    return word;
}

/* ---- large regions: mmap with huge pages advised, or the Python allocator elsewhere ---------- */

#if defined(__linux__) && defined(MADV_HUGEPAGE)
#define REGION_MMAP 1
#include <unistd.h>
#endif

#define HUGE_PAGE ((size_t)2 << 20)

/* Zeroed memory of ``size`` bytes, or NULL; from 2 MiB up, aligned to a huge page. */
static void *region_alloc(size_t size) {
#ifdef REGION_MMAP
    size_t extra = size >= HUGE_PAGE ? HUGE_PAGE : 0;
    char *p = mmap(NULL, size + extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        return NULL;
    }
    if (extra) {
        char *start = (char *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
        if (start > p) {
            munmap(p, (size_t)(start - p));
        }
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        size_t end = ((size_t)(start + size) + page - 1) & ~(page - 1);
        if ((char *)end < p + size + extra) {
            munmap((char *)end, (size_t)(p + size + extra - (char *)end));
        }
        p = start;
        (void)madvise(p, size, MADV_HUGEPAGE); /* advice only: without it, plain pages */
    }
    return p;
#else
    return PyMem_Calloc(size, 1);
#endif
}

static void region_free(void *p, size_t size);

static void *region_resize(void *p, size_t old, size_t size) {
#ifdef REGION_MMAP
    void *q = region_alloc(size);
    if (q != NULL && p != NULL) {
        memcpy(q, p, old < size ? old : size);
        region_free(p, old);
    }
    return q;
#else
    (void)old;
    return PyMem_Realloc(p, size);
#endif
}

static void region_free(void *p, size_t size) {
    if (p == NULL) {
        return;
    }
#ifdef REGION_MMAP
    munmap(p, size);
#else
    (void)size;
    PyMem_Free(p);
#endif
}

/* ---- states: Python int <-> words ------------------------------------------------------------ */

static PyObject *zero;

static int state_to_words(Rows *self, PyObject *state, uint64_t *words) {
    if (!PyLong_Check(state)) {
        PyErr_Format(PyExc_TypeError, "state must be int, not %.100s", Py_TYPE(state)->tp_name);
        return -1;
    }
    int negative = PyObject_RichCompareBool(state, zero, Py_LT);
    int wide = negative ? 0 : PyObject_RichCompareBool(state, self->too_big, Py_GE);
    if (negative < 0 || wide < 0) {
        return -1;
    }
    if (negative || wide) {
        PyErr_Format(PyExc_OverflowError, "state must be in [0, 2**%zd)", 64 * self->words);
        return -1;
    }
    PyObject *rest = Py_NewRef(state);
    PyObject *by = PyLong_FromLong(64);
    if (by == NULL) {
        Py_DECREF(rest);
        return -1;
    }
    for (Py_ssize_t i = 0; i < self->words; i++) {
        words[i] = PyLong_AsUnsignedLongLongMask(rest);
        if (words[i] == (uint64_t)-1 && PyErr_Occurred()) {
            Py_DECREF(rest);
            Py_DECREF(by);
            return -1;
        }
        if (i + 1 < self->words) {
            PyObject *next = PyNumber_Rshift(rest, by);
            Py_SETREF(rest, next);
            if (rest == NULL) {
                Py_DECREF(by);
                return -1;
            }
        }
    }
    Py_DECREF(rest);
    Py_DECREF(by);
    return 0;
}

static PyObject *words_to_state(const Rows *self, const char *record) {
    Py_ssize_t top = self->words - 1;
    while (top > 0 && record_word(record, top) == 0) {
        top--;
    }
    PyObject *state = PyLong_FromUnsignedLongLong(record_word(record, top));
    if (state == NULL || top == 0) {
        return state;
    }
    PyObject *by = PyLong_FromLong(64);
    for (Py_ssize_t i = top - 1; i >= 0 && state != NULL && by != NULL; i--) {
        PyObject *word = PyLong_FromUnsignedLongLong(record_word(record, i));
        PyObject *shifted = word ? PyNumber_Lshift(state, by) : NULL;
        Py_SETREF(state, shifted ? PyNumber_Or(shifted, word) : NULL);
        Py_XDECREF(shifted);
        Py_XDECREF(word);
    }
    if (by == NULL) {
        Py_CLEAR(state);
    }
    Py_XDECREF(by);
    return state;
}

/* ---- the index --------------------------------------------------------------------------------- */

/* The record's offset, or -1 with *slot set to the empty slot where the id would go. */
static Py_ssize_t locate(const Rows *self, const char *id, Py_ssize_t length, Py_hash_t hash,
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
            if (record_length(self, record) == length &&
                memcmp(record + self->header, id, (size_t)length) == 0) {
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

/* The subject's record, or NULL (absent, or an exception set: tell them apart with
 * PyErr_Occurred). */
static const char *find_record(const Rows *self, PyObject *subject) {
    const char *id;
    Py_ssize_t length;
    Py_hash_t hash;
    uint64_t slot;
    if (subject_key(subject, &id, &length, &hash) < 0) {
        return NULL;
    }
    Py_ssize_t offset = locate(self, id, length, hash, &slot);
    return offset < 0 ? NULL : self->arena + offset;
}

/* A row handle given back by Python: checked to lie within the records (the replica only passes
 * handles this object returned; the check keeps a wrong one from reading past the arena). */
static char *record_at(Rows *self, PyObject *handle) {
    Py_ssize_t offset = PyLong_AsSsize_t(handle);
    if (offset == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (offset < 0 || (size_t)offset + self->header > self->used) {
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
    uint64_t *slots = region_alloc((size_t)size * sizeof(uint64_t));
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    uint64_t mask = size - 1;
    /* Walk the arena in order (sequential reads); each hash is recomputed from the id. */
    size_t offset = 0;
    while (offset < self->used) {
        const char *record = self->arena + offset;
        uint16_t length = record_length(self, record);
        PyObject *id = PyUnicode_DecodeUTF8(record + self->header, length, "strict");
        Py_hash_t hash = id ? PyObject_Hash(id) : -1;
        Py_XDECREF(id);
        if (hash == -1 && PyErr_Occurred()) {
            region_free(slots, (size_t)size * sizeof(uint64_t));
            return -1;
        }
        uint64_t h = (uint64_t)hash;
        uint64_t i = h & mask;
        while (slots[i] != 0) {
            i = (i + 1) & mask;
        }
        slots[i] = (h & TAG_MASK) | (uint64_t)(offset + 1);
        offset += self->header + length;
    }
    region_free(self->slots, (size_t)(self->mask + 1) * sizeof(uint64_t));
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
    char *arena = region_resize(self->arena, self->capacity, capacity);
    if (arena == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->arena = arena;
    self->capacity = capacity;
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

static void write_record(const Rows *self, char *record, const uint64_t *words, uint32_t seq) {
    memcpy(record, words, 8 * (size_t)self->words);
    memcpy(record + 8 * self->words, &seq, sizeof seq);
}

/* ---- Rows methods ------------------------------------------------------------------------------ */

static PyObject *Rows_lookup(Rows *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "lookup(subject, default)");
        return NULL;
    }
    const char *record = find_record(self, args[0]);
    if (record == NULL) {
        return PyErr_Occurred() ? NULL : Py_NewRef(args[1]);
    }
    return words_to_state(self, record);
}

static PyObject *Rows_find(Rows *self, PyObject *subject) {
    const char *record = find_record(self, subject);
    if (record == NULL) {
        return PyErr_Occurred() ? NULL : PyLong_FromLong(-1);
    }
    return PyLong_FromSsize_t(record - self->arena);
}

static PyObject *Rows_add(Rows *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "add(subject, state, seq)");
        return NULL;
    }
    uint64_t words[MAX_WORDS];
    uint32_t seq;
    const char *id;
    Py_ssize_t length;
    Py_hash_t hash;
    if (state_to_words(self, args[1], words) < 0 || check_seq(args[2], &seq) < 0 ||
        subject_key(args[0], &id, &length, &hash) < 0) {
        return NULL;
    }
    if (length > MAX_ID_BYTES) {
        PyErr_SetString(PyExc_ValueError, "subject id longer than 65535 bytes");
        return NULL;
    }
    uint64_t slot;
    Py_ssize_t offset = locate(self, id, length, hash, &slot);
    if (offset >= 0) {
        write_record(self, self->arena + offset, words, seq);
        return PyLong_FromSsize_t(offset);
    }
    /* Room first (index and arena), so a failure leaves the rows as they were. */
    if ((uint64_t)(self->count + 1) * 4 > (self->mask + 1) * 3) {
        if (grow_index(self) < 0) {
            return NULL;
        }
        locate(self, id, length, hash, &slot);
    }
    if (reserve(self, self->header + (size_t)length) < 0) {
        return NULL;
    }
    size_t at = self->used;
    char *record = self->arena + at;
    uint16_t stored = (uint16_t)length;
    write_record(self, record, words, seq);
    memcpy(record + 8 * self->words + 4, &stored, sizeof stored);
    memcpy(record + self->header, id, (size_t)length);
    self->used += self->header + (size_t)length;
    self->slots[slot] = ((uint64_t)hash & TAG_MASK) | (uint64_t)(at + 1);
    self->count += 1;
    return PyLong_FromSize_t(at);
}

static PyObject *Rows_state(Rows *self, PyObject *handle) {
    const char *record = record_at(self, handle);
    return record ? words_to_state(self, record) : NULL;
}

static PyObject *Rows_seq(Rows *self, PyObject *handle) {
    const char *record = record_at(self, handle);
    return record ? PyLong_FromUnsignedLong(record_seq(self, record)) : NULL;
}

static PyObject *Rows_set(Rows *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "set(row, state, seq)");
        return NULL;
    }
    char *record = record_at(self, args[0]);
    uint64_t words[MAX_WORDS];
    uint32_t seq;
    if (record == NULL || state_to_words(self, args[1], words) < 0 ||
        check_seq(args[2], &seq) < 0) {
        return NULL;
    }
    write_record(self, record, words, seq);
    Py_RETURN_NONE;
}

static PyObject *Rows_subject(Rows *self, PyObject *handle) {
    const char *record = record_at(self, handle);
    if (record == NULL) {
        return NULL;
    }
    return PyUnicode_DecodeUTF8(record + self->header, record_length(self, record), "strict");
}

/* The row after this one in insertion order, or -1; next_row(-1) is the first. */
static PyObject *Rows_next_row(Rows *self, PyObject *handle) {
    Py_ssize_t offset = PyLong_AsSsize_t(handle);
    if (offset == -1 && PyErr_Occurred()) {
        return NULL;
    }
    size_t next = 0;
    if (offset >= 0) {
        const char *record = record_at(self, handle);
        if (record == NULL) {
            return NULL;
        }
        next = (size_t)offset + self->header + record_length(self, record);
    }
    return PyLong_FromSsize_t(next < self->used ? (Py_ssize_t)next : -1);
}

static PyObject *Rows_nbytes(Rows *self, PyObject *Py_UNUSED(ignored)) {
    return PyLong_FromSize_t(self->capacity + (size_t)(self->mask + 1) * sizeof(uint64_t));
}

static Py_ssize_t Rows_len(Rows *self) { return self->count; }

static int Rows_init(Rows *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"capacity", "bits", NULL};
    Py_ssize_t capacity = 1024, bits = 64;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|nn", keywords, &capacity, &bits)) {
        return -1;
    }
    if (self->slots != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Rows is initialised once");
        return -1;
    }
    if (bits < 1 || bits > 64 * MAX_WORDS) {
        PyErr_Format(PyExc_ValueError, "bits must be in [1, %d]", 64 * MAX_WORDS);
        return -1;
    }
    self->words = (bits + 63) / 64;
    self->header = 8 * (size_t)self->words + 6;
    PyObject *one = PyLong_FromLong(1);
    PyObject *width = PyLong_FromSsize_t(64 * self->words);
    self->too_big = one && width ? PyNumber_Lshift(one, width) : NULL;
    Py_XDECREF(one);
    Py_XDECREF(width);
    if (self->too_big == NULL) {
        return -1;
    }
    uint64_t size = 8;
    while (size < (uint64_t)(capacity > 0 ? capacity : 1) * 2) {
        size *= 2;
    }
    self->slots = region_alloc((size_t)size * sizeof(uint64_t));
    if (self->slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->mask = size - 1;
    return 0;
}

static void Rows_dealloc(Rows *self) {
    region_free(self->arena, self->capacity);
    region_free(self->slots, (size_t)(self->mask + 1) * sizeof(uint64_t));
    Py_XDECREF(self->too_big);
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
    .tp_doc = PyDoc_STR("Rows(capacity=1024, bits=64): subject id -> (state, seq), compiled."),
    .tp_basicsize = sizeof(Rows),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Rows_init,
    .tp_dealloc = (destructor)Rows_dealloc,
    .tp_methods = Rows_methods,
    .tp_as_sequence = &Rows_as_sequence,
};

/* ---- the decision fast path --------------------------------------------------------------------
 *
 * Checker.allows(subject, purpose, categories, recipient=None) answers Replica.allows for the
 * common request in C: one permission answers it (the plan is "lone"), the subject has no
 * time-limited grant, the replica is fresh. It decides nothing of its own: it reads the plan the
 * pure-Python compiled catalogue made and the verdict the decision rule put in the table, as the
 * first branch of domain.compiled.decide_state does. Any other request goes to ``fallback`` (the
 * Python Replica.check path).
 */

typedef struct {
    PyObject_HEAD
    Rows *rows;
    PyObject *plans;     /* dict: (purpose, categories, recipient) -> Plan | Decision */
    PyObject *plan_type; /* the Plan class */
    PyObject *verdicts;  /* list, per jurisdiction: [permission][code] -> Decision */
    PyObject *fallback;  /* callable(subject, purpose, categories, recipient) -> bool */
    uint64_t empty[MAX_WORDS]; /* the state of a subject the replica does not hold */
    Py_ssize_t x_shift;  /* a state with any bit at or above it has time-limited grants */
    Py_ssize_t permissions;
    unsigned char *allowed; /* [jurisdiction][permission][code]: the verdicts' .allowed */
    Py_ssize_t jurisdictions;
    double fresh_until; /* time.monotonic() bound; past it the fallback answers */
} Checker;

static PyObject *str_lone, *str_first, *str_allowed;

static int Checker_traverse(Checker *self, visitproc visit, void *arg) {
    Py_VISIT(self->rows);
    Py_VISIT(self->plans);
    Py_VISIT(self->plan_type);
    Py_VISIT(self->verdicts);
    Py_VISIT(self->fallback);
    return 0;
}

static int Checker_clear(Checker *self) {
    Py_CLEAR(self->rows);
    Py_CLEAR(self->plans);
    Py_CLEAR(self->plan_type);
    Py_CLEAR(self->verdicts);
    Py_CLEAR(self->fallback);
    return 0;
}

static void Checker_dealloc(Checker *self) {
    PyObject_GC_UnTrack(self);
    Checker_clear(self);
    PyMem_Free(self->allowed);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Read the verdicts' allowed flags into the C table (again when jurisdictions were added). */
static int load_verdicts(Checker *self) {
    Py_ssize_t jurisdictions = PySequence_Size(self->verdicts);
    if (jurisdictions < 0) {
        return -1;
    }
    size_t cells = (size_t)jurisdictions * (size_t)self->permissions * 4;
    unsigned char *allowed = PyMem_Malloc(cells ? cells : 1);
    if (allowed == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t j = 0; j < jurisdictions; j++) {
        for (Py_ssize_t p = 0; p < self->permissions; p++) {
            for (Py_ssize_t code = 0; code < 4; code++) {
                PyObject *by_perm = PySequence_GetItem(self->verdicts, j);
                PyObject *by_code = by_perm ? PySequence_GetItem(by_perm, p) : NULL;
                PyObject *verdict = by_code ? PySequence_GetItem(by_code, code) : NULL;
                PyObject *flag = verdict ? PyObject_GetAttr(verdict, str_allowed) : NULL;
                int truth = flag ? PyObject_IsTrue(flag) : -1;
                Py_XDECREF(by_perm);
                Py_XDECREF(by_code);
                Py_XDECREF(verdict);
                Py_XDECREF(flag);
                if (truth < 0) {
                    PyMem_Free(allowed);
                    return -1;
                }
                allowed[((size_t)j * (size_t)self->permissions + (size_t)p) * 4 + (size_t)code] =
                    (unsigned char)truth;
            }
        }
    }
    PyMem_Free(self->allowed);
    self->allowed = allowed;
    self->jurisdictions = jurisdictions;
    return 0;
}

static int Checker_init(Checker *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"rows",     "plans",       "plan_type", "empty", "x_shift",
                               "verdicts", "permissions", "fallback",  NULL};
    PyObject *rows, *plans, *plan_type, *empty, *verdicts, *fallback;
    Py_ssize_t x_shift, permissions;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!O!O!nOnO", keywords, &RowsType, &rows,
                                     &PyDict_Type, &plans, &PyType_Type, &plan_type,
                                     &PyLong_Type, &empty, &x_shift, &verdicts, &permissions,
                                     &fallback)) {
        return -1;
    }
    if (!PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_TypeError, "fallback must be callable");
        return -1;
    }
    Rows *r = (Rows *)rows;
    if (x_shift < 0 || x_shift >= 64 * r->words || permissions < 0) {
        PyErr_SetString(PyExc_ValueError, "x_shift must lie within the rows' state bits");
        return -1;
    }
    if (state_to_words(r, empty, self->empty) < 0) {
        return -1;
    }
    Checker_clear(self);
    self->rows = (Rows *)Py_NewRef(rows);
    self->plans = Py_NewRef(plans);
    self->plan_type = Py_NewRef(plan_type);
    self->verdicts = Py_NewRef(verdicts);
    self->fallback = Py_NewRef(fallback);
    self->x_shift = x_shift;
    self->permissions = permissions;
    self->fresh_until = Py_HUGE_VAL;
    return load_verdicts(self);
}

/* Bits [shift, shift + 2) of a state held as words (a code may straddle two words). */
static inline unsigned code_at(const uint64_t *words, Py_ssize_t shift) {
    Py_ssize_t w = shift / 64, b = shift % 64;
    uint64_t bits = words[w] >> b;
    if (b == 63) {
        bits |= words[w + 1] << 1;
    }
    return (unsigned)(bits & 3);
}

/* Whether any bit at or above ``shift`` is set. */
static inline int any_from(const uint64_t *words, Py_ssize_t count, Py_ssize_t shift) {
    Py_ssize_t w = shift / 64;
    if (words[w] >> (shift % 64)) {
        return 1;
    }
    for (Py_ssize_t i = w + 1; i < count; i++) {
        if (words[i]) {
            return 1;
        }
    }
    return 0;
}

static long plan_number(PyObject *plan, PyObject *name) {
    PyObject *value = PyObject_GetAttr(plan, name);
    if (value == NULL) {
        return -1;
    }
    long number = PyLong_AsLong(value);
    Py_DECREF(value);
    return number;
}

/* Start the two memory reads a lookup needs before the work that does not depend on them: the
 * index slot now, and the record its tag points to once the slot is there. */
static inline void prefetch_slot(const Rows *rows, Py_hash_t hash) {
    __builtin_prefetch(&rows->slots[(uint64_t)hash & rows->mask]);
}

static inline void prefetch_record(const Rows *rows, Py_hash_t hash) {
    uint64_t entry = rows->slots[(uint64_t)hash & rows->mask];
    if (entry != 0 && (entry & TAG_MASK) == ((uint64_t)hash & TAG_MASK)) {
        __builtin_prefetch(rows->arena + (size_t)((entry & OFFSET_MASK) - 1));
    }
}

static PyObject *Checker_allows(Checker *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 3 || nargs > 4) {
        PyErr_SetString(PyExc_TypeError, "allows(subject, purpose, categories, recipient=None)");
        return NULL;
    }
    PyObject *full[4] = {args[0], args[1], args[2], nargs == 4 ? args[3] : Py_None};
    Rows *rows = self->rows;
    const char *id;
    Py_ssize_t length;
    Py_hash_t hash;
    if (subject_key(full[0], &id, &length, &hash) < 0) {
        return NULL;
    }
    prefetch_slot(rows, hash);
    /* Categories given as a list are looked up as the tuple they are planned under. */
    PyObject *names = PyList_CheckExact(full[2]) ? PyList_AsTuple(full[2]) : Py_NewRef(full[2]);
    if (names == NULL) {
        return NULL;
    }
    PyObject *key = PyTuple_Pack(3, full[1], names, full[3]);
    Py_DECREF(names);
    if (key == NULL) {
        return NULL;
    }
    PyObject *plan = PyDict_GetItemWithError(self->plans, key); /* borrowed */
    Py_DECREF(key);
    if (plan == NULL || Py_TYPE(plan) != (PyTypeObject *)self->plan_type) {
        /* Not planned yet, unhashable categories, or a refusal. */
        PyErr_Clear();
        return PyObject_Vectorcall(self->fallback, full, 4, NULL);
    }
    prefetch_record(rows, hash);
    Py_INCREF(plan);
    long lone = plan_number(plan, str_lone);
    long first = lone > 0 ? plan_number(plan, str_first) : 0;
    Py_DECREF(plan);
    if ((lone == -1 || first == -1) && PyErr_Occurred()) {
        return NULL;
    }
    struct timespec now;
    if (lone <= 0 || lone + 2 > 64 * rows->words || first >= self->permissions ||
        clock_gettime(CLOCK_MONOTONIC, &now) != 0 ||
        (double)now.tv_sec + (double)now.tv_nsec * 1e-9 > self->fresh_until) {
        /* Several permissions may answer, or the replica may be stale. */
        return PyObject_Vectorcall(self->fallback, full, 4, NULL);
    }
    uint64_t slot;
    Py_ssize_t offset = locate(rows, id, length, hash, &slot);
    uint64_t local[MAX_WORDS];
    const uint64_t *words = self->empty;
    if (offset >= 0) {
        memcpy(local, rows->arena + offset, 8 * (size_t)rows->words);
        words = local;
    }
    if (any_from(words, rows->words, self->x_shift)) {
        /* Time-limited grants are resolved against the clock in Python. */
        return PyObject_Vectorcall(self->fallback, full, 4, NULL);
    }
    unsigned jurisdiction = (unsigned)(words[0] & 0xFFFF);
    if ((Py_ssize_t)jurisdiction >= self->jurisdictions) {
        if (load_verdicts(self) < 0) {
            return NULL;
        }
        if ((Py_ssize_t)jurisdiction >= self->jurisdictions) {
            return PyObject_Vectorcall(self->fallback, full, 4, NULL);
        }
    }
    size_t cell = ((size_t)jurisdiction * (size_t)self->permissions + (size_t)first) * 4;
    return PyBool_FromLong(self->allowed[cell + code_at(words, lone)]);
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
    .m_doc = "Compiled subject rows and decision fast path (see consentry.replica.rows).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__rows(void) {
    str_lone = PyUnicode_InternFromString("lone");
    str_first = PyUnicode_InternFromString("first");
    str_allowed = PyUnicode_InternFromString("allowed");
    zero = PyLong_FromLong(0);
    if (str_lone == NULL || str_first == NULL || str_allowed == NULL || zero == NULL) {
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
