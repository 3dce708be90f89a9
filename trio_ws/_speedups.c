/* trio_ws._speedups: optional accelerators for the RFC 6455 core.
 *
 * apply_mask(data, mask) -> bytes XORs ``data`` with the 4-byte ``mask``
 * repeated; masking and unmasking are the same operation.  The loop XORs
 * 8 bytes at a time (memcpy keeps unaligned access well defined; compilers
 * turn it into plain loads/stores and usually vectorise it).  The pure-Python
 * fallback in trio_ws/sansio/masking.py must give identical results.
 *
 * scan_frames(data, masked, limit, rsv1=False) -> (messages, end) reads the
 * run of *simple* frames at the start of ``data``: complete, FIN set, RSV
 * clear, text or binary, masked exactly when ``masked``, minimally encoded
 * length at most ``limit`` (-1: no limit), text valid UTF-8.  Each becomes a
 * message (str for text, bytes for binary); ``end`` is where the first other
 * frame (or an incomplete one) starts.  With ``rsv1`` (permessage-deflate
 * negotiated) frames that are simple but for RSV1 are taken too, as
 * ``(opcode, payload)`` tuples: unmasked, still compressed.  It never raises for bad input: whatever it
 * does not take, the Python parser (trio_ws/sansio/frames.py) reads and
 * judges, so the tests compare the two on the same bytes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Above this size, drop the GIL while XOR-ing. */
#define RELEASE_GIL_THRESHOLD 65536

static void
xor_mask(const unsigned char *src, unsigned char *dst, Py_ssize_t n,
         const unsigned char mask[4])
{
    uint32_t m32;
    uint64_t m64, a, b, c, d;
    Py_ssize_t i = 0;

    memcpy(&m32, mask, 4);
    m64 = ((uint64_t)m32 << 32) | (uint64_t)m32;
    for (; i + 32 <= n; i += 32) {
        memcpy(&a, src + i, 8);
        memcpy(&b, src + i + 8, 8);
        memcpy(&c, src + i + 16, 8);
        memcpy(&d, src + i + 24, 8);
        a ^= m64; b ^= m64; c ^= m64; d ^= m64;
        memcpy(dst + i, &a, 8);
        memcpy(dst + i + 8, &b, 8);
        memcpy(dst + i + 16, &c, 8);
        memcpy(dst + i + 24, &d, 8);
    }
    for (; i + 8 <= n; i += 8) {
        memcpy(&a, src + i, 8);
        a ^= m64;
        memcpy(dst + i, &a, 8);
    }
    /* i is a multiple of 8, hence of 4: the mask phase is still 0. */
    for (; i < n; i++) {
        dst[i] = src[i] ^ mask[i & 3];
    }
}

static PyObject *
apply_mask(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data, mask;
    PyObject *result = NULL;
    unsigned char m[4];

    (void)self;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "apply_mask() takes exactly 2 arguments");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &mask, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    if (mask.len != 4) {
        PyErr_SetString(PyExc_ValueError, "mask must be exactly 4 bytes");
        goto done;
    }
    memcpy(m, mask.buf, 4);
    result = PyBytes_FromStringAndSize(NULL, data.len);
    if (result == NULL) {
        goto done;
    }
    if (data.len >= RELEASE_GIL_THRESHOLD) {
        Py_BEGIN_ALLOW_THREADS
        xor_mask(data.buf, (unsigned char *)PyBytes_AS_STRING(result), data.len, m);
        Py_END_ALLOW_THREADS
    }
    else {
        xor_mask(data.buf, (unsigned char *)PyBytes_AS_STRING(result), data.len, m);
    }
done:
    PyBuffer_Release(&mask);
    PyBuffer_Release(&data);
    return result;
}

/* One simple frame at d[0:n]: its message in *item and its size, 0 if the frame
 * is not simple or not complete (the caller stops there), -1 on a memory error. */
static Py_ssize_t
scan_one(const unsigned char *d, Py_ssize_t n, int masked, long long limit, int rsv1,
         PyObject **item)
{
    unsigned char b0, b1;
    int compressed;
    unsigned long long length;
    Py_ssize_t hlen = 2;
    unsigned char mask[4];
    const char *src;
    PyObject *payload;

    if (n < 2) {
        return 0;
    }
    b0 = d[0];
    b1 = d[1];
    compressed = rsv1 && (b0 == 0xC1 || b0 == 0xC2);
    if (compressed) {
        b0 &= 0x8F;
    }
    if ((b0 != 0x81 && b0 != 0x82) || ((b1 & 0x80) != 0) != masked) {
        return 0;
    }
    length = b1 & 0x7F;
    if (length == 126) {
        if (n < 4) {
            return 0;
        }
        length = ((unsigned long long)d[2] << 8) | d[3];
        if (length < 126) {
            return 0; /* not minimal: the parser fails the connection */
        }
        hlen = 4;
    }
    else if (length == 127) {
        int i;
        if (n < 10) {
            return 0;
        }
        length = 0;
        for (i = 2; i < 10; i++) {
            length = (length << 8) | d[i];
        }
        if (length <= 0xFFFF || (length >> 63)) {
            return 0;
        }
        hlen = 10;
    }
    if (masked) {
        hlen += 4;
    }
    if (limit >= 0 && length > (unsigned long long)limit) {
        return 0; /* 1009: the parser's to say */
    }
    if (length > (unsigned long long)(n - hlen) || n < hlen) {
        return 0; /* incomplete */
    }
    src = (const char *)d + hlen;
    if (!masked && b0 == 0x81 && !compressed) {
        /* Unmasked text: decoded straight from the buffer, no copy. */
        *item = PyUnicode_DecodeUTF8(src, (Py_ssize_t)length, NULL);
    }
    else {
        /* The payload as bytes (unmasked on the way) ... */
        payload = PyBytes_FromStringAndSize(masked ? NULL : src, (Py_ssize_t)length);
        if (payload == NULL) {
            return -1;
        }
        if (masked) {
            memcpy(mask, d + hlen - 4, 4);
            xor_mask(d + hlen, (unsigned char *)PyBytes_AS_STRING(payload), (Py_ssize_t)length, mask);
        }
        /* ... and the message made of it. */
        if (compressed) {
            *item = Py_BuildValue("(iN)", b0 & 0x0F, payload);
        }
        else if (b0 == 0x82) {
            *item = payload;
        }
        else {
            *item = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(payload), (Py_ssize_t)length, NULL);
            Py_DECREF(payload);
        }
    }
    if (*item == NULL) {
        if (b0 == 0x81 && !compressed && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
            PyErr_Clear();
            return 0; /* 1007: the parser's to say */
        }
        return -1;
    }
    return hlen + (Py_ssize_t)length;
}

static PyObject *
scan_frames(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data;
    PyObject *items, *item = NULL, *result = NULL;
    const unsigned char *d;
    Py_ssize_t pos = 0, size;
    int masked, rsv1 = 0;
    long long limit;

    (void)self;
    if (nargs != 3 && nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "scan_frames() takes 3 or 4 arguments");
        return NULL;
    }
    masked = PyObject_IsTrue(args[1]);
    if (masked < 0) {
        return NULL;
    }
    if (nargs == 4 && (rsv1 = PyObject_IsTrue(args[3])) < 0) {
        return NULL;
    }
    limit = PyLong_AsLongLong(args[2]);
    if (limit == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    items = PyList_New(0);
    if (items == NULL) {
        goto done;
    }
    d = (const unsigned char *)data.buf;
    for (;;) {
        size = scan_one(d + pos, data.len - pos, masked, limit, rsv1, &item);
        if (size == 0) {
            break;
        }
        if (size < 0 || PyList_Append(items, item) < 0) {
            Py_XDECREF(item);
            Py_CLEAR(items);
            goto done;
        }
        Py_DECREF(item);
        pos += size;
    }
    result = Py_BuildValue("(Nn)", items, pos);
done:
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL,
     "apply_mask(data, mask, /) -> bytes\n\nXOR data with the 4-byte mask repeated "
     "(RFC 6455 section 5.3)."},
    {"scan_frames", (PyCFunction)(void (*)(void))scan_frames, METH_FASTCALL,
     "scan_frames(data, masked, limit, rsv1=False, /) -> (list[str | bytes | tuple[int, bytes]], int)"
     "\n\nThe messages of the simple frames (complete, final, text or binary) at the start of "
     "data, and where they end; with rsv1, compressed ones as (opcode, payload)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "trio_ws._speedups",
    "Optional C accelerators for trio_ws.sansio (masking, scanning simple frames).",
    0,
    speedups_methods,
    NULL, /* m_slots */
    NULL, /* m_traverse */
    NULL, /* m_clear */
    NULL, /* m_free */
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
