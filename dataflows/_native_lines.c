/* A block of native recording lines ("<receive time, ns> <message>" each) made into messages in C:
 * ``dataflows.recordings.python_native_messages`` with the same result, without a regular-expression
 * pass, a Python-level loop and an int() per line. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define MAX_NS_DIGITS 19 /* as dataflows.recordings._MAX_NS_DIGITS */
#define SAFE_DIGITS 18   /* as many digits as always fit a signed 64-bit integer */

/* the receive time of a line's leading digits; NULL on an error */
static PyObject *
receive_time(const char *digits, Py_ssize_t count)
{
    if (count <= SAFE_DIGITS) {
        long long value = 0;
        for (Py_ssize_t i = 0; i < count; i++) {
            value = value * 10 + (digits[i] - '0');
        }
        return PyLong_FromLongLong(value);
    }
    char text[MAX_NS_DIGITS + 1];
    memcpy(text, digits, count);
    text[count] = '\0';
    return PyLong_FromString(text, NULL, 10);
}

/* type(feed, receive_ts, payload, key), as tuple.__new__(type, ...) makes it (one reference each) */
static PyObject *
message(PyTypeObject *type, PyObject *feed, PyObject *receive_ts, PyObject *payload, PyObject *key)
{
    PyObject *made = type->tp_alloc(type, 4);
    if (made == NULL) {
        Py_DECREF(receive_ts);
        Py_DECREF(payload);
        return NULL;
    }
    Py_INCREF(feed);
    Py_INCREF(key);
    PyTuple_SET_ITEM(made, 0, feed);
    PyTuple_SET_ITEM(made, 1, receive_ts);
    PyTuple_SET_ITEM(made, 2, payload);
    PyTuple_SET_ITEM(made, 3, key);
    return made;
}

static PyObject *tuple_new; /* tuple.__new__ */

/* whether tuple.__new__ makes instances of ``type`` (1), refuses to (0, with its TypeError set) or fails (-1):
 * the C pass makes them as it does, so it takes the types it takes (not a built-in tuple type such as a
 * struct sequence, which has fields of its own) */
static int
tuple_new_makes(PyObject *type)
{
    PyObject *empty = PyTuple_New(0);
    if (empty == NULL) {
        return -1;
    }
    PyObject *made = PyObject_CallFunctionObjArgs(tuple_new, type, empty, NULL);
    Py_DECREF(empty);
    if (made == NULL) {
        return 0;
    }
    Py_DECREF(made);
    return 1;
}

PyDoc_STRVAR(native_messages_doc,
             "native_messages(block, start, limit, feed, key, message_type)\n--\n\n"
             "The messages of a block's lines from offset ``start``, ``message_type(feed, receive_ts, payload, "
             "key)`` each, up to ``limit`` of them or the first line that is not a plain native line (1 to 19 "
             "ASCII digits, a space, then no carriage return); and the offset of the first line not made a "
             "message, or -1 when none is left.");

static PyObject *
native_messages(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 6) {
        PyErr_Format(PyExc_TypeError, "native_messages takes 6 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *block = args[0], *feed = args[3], *key = args[4];
    if (!PyBytes_CheckExact(block) || !PyType_Check(args[5])) {
        PyErr_SetString(PyExc_TypeError, "native_messages needs bytes and a type");
        return NULL;
    }
    if (tuple_new_makes(args[5]) <= 0) {
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[1]), limit = PyLong_AsSsize_t(args[2]);
    if ((start == -1 || limit == -1) && PyErr_Occurred()) {
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)args[5];
    const char *text = PyBytes_AS_STRING(block);
    Py_ssize_t size = PyBytes_GET_SIZE(block);
    PyObject *messages = PyList_New(0);
    if (messages == NULL) {
        return NULL;
    }
    if (start < 0) {
        start = size + 1; /* nothing left */
    }
    for (Py_ssize_t made_count = 0; start <= size && made_count < limit; made_count++) { /* one line per turn: text[start:end], end at a line end or the block's end */
        const char *line = text + start;
        const char *newline = memchr(line, '\n', size - start);
        Py_ssize_t end = newline == NULL ? size : newline - text;
        Py_ssize_t digits = 0;
        while (start + digits < end && line[digits] >= '0' && line[digits] <= '9') {
            digits++;
        }
        if (digits == 0 || digits > MAX_NS_DIGITS || start + digits == end || line[digits] != ' '
            || memchr(line, '\r', end - start) != NULL) {
            break; /* not a plain native line: the caller reads the rest line by line */
        }
        PyObject *receive_ts = receive_time(line, digits);
        if (receive_ts == NULL) {
            Py_DECREF(messages);
            return NULL;
        }
        PyObject *payload = PyBytes_FromStringAndSize(line + digits + 1, end - start - digits - 1);
        if (payload == NULL) {
            Py_DECREF(receive_ts);
            Py_DECREF(messages);
            return NULL;
        }
        PyObject *made = message(type, feed, receive_ts, payload, key);
        if (made == NULL || PyList_Append(messages, made) < 0) {
            Py_XDECREF(made);
            Py_DECREF(messages);
            return NULL;
        }
        Py_DECREF(made);
        start = end + 1;
    }
    return Py_BuildValue("Nn", messages, start > size ? (Py_ssize_t)-1 : start);
}

static PyMethodDef methods[] = {
    {"native_messages", (PyCFunction)(void (*)(void))native_messages, METH_FASTCALL, native_messages_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "dataflows._native_lines", "Native recording lines made into messages, compiled.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__native_lines(void)
{
    if (tuple_new == NULL) {
        tuple_new = PyObject_GetAttrString((PyObject *)&PyTuple_Type, "__new__");
        if (tuple_new == NULL) {
            return NULL;
        }
    }
    return PyModule_Create(&module);
}
