/* The inner loop of ``operators.book.BookSide.set_levels`` in C: the same steps on the same Python
 * objects (the side's dict and its sorted list of ranked keys), so the book it leaves is the one the
 * Python loop (``book.python_apply_changes``) leaves, bit for bit, for floats and for any other prices and
 * quantities (compared, tested and negated as Python does). Floats, which the feeds give, take a
 * shortcut: compared and tested as C doubles, which is what Python's float comparisons do. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* a < b, as Python's ``<``: 1, 0, or -1 on an error */
static int
less(PyObject *a, PyObject *b)
{
    if (PyFloat_CheckExact(a) && PyFloat_CheckExact(b)) {
        return PyFloat_AS_DOUBLE(a) < PyFloat_AS_DOUBLE(b);
    }
    return PyObject_RichCompareBool(a, b, Py_LT);
}

/* bisect.bisect_right (right = 1) or bisect_left (right = 0) over the whole list; -1 on an error */
static Py_ssize_t
bisect(PyObject *list, PyObject *key, int right)
{
    Py_ssize_t lo = 0, hi = PyList_GET_SIZE(list);
    while (lo < hi) {
        Py_ssize_t mid = (Py_ssize_t)(((size_t)lo + (size_t)hi) / 2);
        if (mid >= PyList_GET_SIZE(list)) {
            PyErr_SetString(PyExc_IndexError, "list index out of range");
            return -1;
        }
        PyObject *item = PyList_GET_ITEM(list, mid);
        Py_INCREF(item); /* a comparison of other objects could change the list */
        int found = right ? less(key, item) : less(item, key);
        Py_DECREF(item);
        if (found < 0) {
            return -1;
        }
        if (found == right) {
            hi = mid;
        }
        else {
            lo = mid + 1;
        }
    }
    return lo;
}

/* the key a price is ranked by: the price on the bid side, its negation on the ask side (new ref) */
static PyObject *
rank_key(PyObject *price, int bids)
{
    if (bids) {
        Py_INCREF(price);
        return price;
    }
    if (PyFloat_CheckExact(price)) {
        return PyFloat_FromDouble(-PyFloat_AS_DOUBLE(price));
    }
    return PyNumber_Negative(price);
}

/* whether the price lies in the ranked top: price >= floor (bids), price <= ceiling (asks) */
static int
ranked_price(PyObject *price, PyObject *bound, int bids)
{
    if (PyFloat_CheckExact(price) && PyFloat_CheckExact(bound)) {
        double p = PyFloat_AS_DOUBLE(price), b = PyFloat_AS_DOUBLE(bound);
        return bids ? p >= b : p <= b;
    }
    return PyObject_RichCompareBool(price, bound, bids ? Py_GE : Py_LE);
}

static int
truthy(PyObject *quantity)
{
    if (PyFloat_CheckExact(quantity)) {
        return PyFloat_AS_DOUBLE(quantity) != 0.0; /* NaN is true, -0.0 false, as in Python */
    }
    return PyObject_IsTrue(quantity);
}

/* dict.pop(key, None) is not None: 1, 0, or -1 on an error */
static int
pop_level(PyObject *levels, PyObject *price)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *old = NULL;
    int found = PyDict_Pop(levels, price, &old);
    if (found <= 0) {
        return found;
    }
#else
    PyObject *old = _PyDict_Pop(levels, price, Py_None);
    if (old == NULL) {
        return -1;
    }
#endif
    int was_set = old != Py_None;
    Py_DECREF(old);
    return was_set;
}

static int
set_level(PyObject *levels, PyObject *ranked, PyObject *bound, int bids, PyObject *price, PyObject *quantity)
{
    int nonzero = truthy(quantity);
    if (nonzero < 0) {
        return -1;
    }
    if (nonzero) {
        int in_top = ranked_price(price, bound, bids);
        if (in_top < 0) {
            return -1;
        }
        if (in_top) {
            int known = PyDict_Contains(levels, price);
            if (known < 0) {
                return -1;
            }
            if (!known) { /* insort(ranked, key), before the dict write as in Python */
                PyObject *key = rank_key(price, bids);
                if (key == NULL) {
                    return -1;
                }
                Py_ssize_t at = bisect(ranked, key, 1);
                int failed = at < 0 || PyList_Insert(ranked, at, key) < 0;
                Py_DECREF(key);
                if (failed) {
                    return -1;
                }
            }
        }
        return PyDict_SetItem(levels, price, quantity);
    }
    int removed = pop_level(levels, price);
    if (removed <= 0) {
        return removed;
    }
    int in_top = ranked_price(price, bound, bids);
    if (in_top <= 0) {
        return in_top;
    }
    PyObject *key = rank_key(price, bids); /* del ranked[bisect_left(ranked, key)] */
    if (key == NULL) {
        return -1;
    }
    Py_ssize_t at = bisect(ranked, key, 0);
    Py_DECREF(key);
    if (at < 0) {
        return -1;
    }
    if (at >= PyList_GET_SIZE(ranked)) {
        PyErr_SetString(PyExc_IndexError, "list assignment index out of range");
        return -1;
    }
    return PyList_SetSlice(ranked, at, at + 1, NULL);
}

/* one (price, quantity) pair of a delta, a tuple or a list as Python unpacks it */
static int
set_change(PyObject *levels, PyObject *ranked, PyObject *bound, int bids, PyObject *change)
{
    PyObject *pair = PySequence_Fast(change, "a change must be a (price, quantity) pair");
    if (pair == NULL) {
        return -1;
    }
    int result = -1;
    if (PySequence_Fast_GET_SIZE(pair) != 2) {
        PyErr_Format(PyExc_ValueError, "a change must be a (price, quantity) pair, not %zd values",
                     PySequence_Fast_GET_SIZE(pair));
    }
    else {
        PyObject *price = PySequence_Fast_GET_ITEM(pair, 0), *quantity = PySequence_Fast_GET_ITEM(pair, 1);
        Py_INCREF(price); /* held: the pair, if a list, could change while they are used */
        Py_INCREF(quantity);
        result = set_level(levels, ranked, bound, bids, price, quantity);
        Py_DECREF(price);
        Py_DECREF(quantity);
    }
    Py_DECREF(pair);
    return result;
}

PyDoc_STRVAR(apply_changes_doc,
             "apply_changes(levels, ranked, floor, bids, changes)\n--\n\n"
             "Set each (price, quantity) of ``changes`` in turn on one side of a book: ``levels`` (price -> "
             "quantity), ``ranked`` (its ranked keys, sorted), ``floor`` (the lowest key ranked), ``bids`` "
             "(True for the bid side, whose keys are its prices; the ask side's are negated).");

static PyObject *
apply_changes(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "apply_changes takes 5 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *levels = args[0], *ranked = args[1], *floor = args[2], *changes = args[4];
    if (!PyDict_CheckExact(levels) || !PyList_CheckExact(ranked)) {
        PyErr_SetString(PyExc_TypeError, "apply_changes needs the side's dict and list");
        return NULL;
    }
    int bids = PyObject_IsTrue(args[3]);
    if (bids < 0) {
        return NULL;
    }
    PyObject *bound = bids ? (Py_INCREF(floor), floor) : PyNumber_Negative(floor); /* the ask side's ceiling */
    if (bound == NULL) {
        return NULL;
    }
    int failed = 0;
    if (PyList_CheckExact(changes) || PyTuple_CheckExact(changes)) {
        /* by index, the length read again each turn, as Python's iterators do: the loop may run Python
         * code (a price's __hash__ or __eq__) that changes the list */
        for (Py_ssize_t i = 0; !failed && i < Py_SIZE(changes); i++) {
            PyObject *change = PySequence_Fast_ITEMS(changes)[i];
            Py_INCREF(change);
            failed = set_change(levels, ranked, bound, bids, change) < 0;
            Py_DECREF(change);
        }
    }
    else {
        PyObject *iterator = PyObject_GetIter(changes);
        if (iterator == NULL) {
            failed = 1;
        }
        while (!failed) {
            PyObject *change = PyIter_Next(iterator);
            if (change == NULL) {
                failed = PyErr_Occurred() != NULL;
                break;
            }
            failed = set_change(levels, ranked, bound, bids, change) < 0;
            Py_DECREF(change);
        }
        Py_XDECREF(iterator);
    }
    Py_DECREF(bound);
    if (failed) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"apply_changes", (PyCFunction)(void (*)(void))apply_changes, METH_FASTCALL, apply_changes_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "operators._book_kernel", "The order book's inner loop, compiled.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__book_kernel(void)
{
    return PyModule_Create(&module);
}
