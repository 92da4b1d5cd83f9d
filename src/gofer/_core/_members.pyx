# cython: language_level=3
"""Compiled kernel only: the extension types' object fields as member descriptors.

Cython exposes a ``cdef public object`` field to Python as a property (a
getset descriptor). CPython's interpreter cannot specialize a read or a
write through a property as it does one through ``__slots__`` (a member
descriptor: ``LOAD_ATTR_SLOT``, ``STORE_ATTR_SLOT``), so the interpreted
layers above the kernel (channels, sockets, user code) paid a generic
lookup and a getter call for every ``task._wait`` or ``hub.ready``: about
25 ns against 7.5 ns on the pure-Python kernel (CPython 3.11).

``install()`` replaces each such property of the kernel's extension types
with a member descriptor over the same C field. Nothing else changes: the
compiled code reads and writes the fields by offset, as before, and the
descriptor reads and writes the same memory. A field's offset is found by
storing a fresh object through its property in a new instance and finding
that object's address in the instance, so nothing here depends on how
Cython names or lays out its structs; a property whose field cannot be
found exactly once is left as it is. Typed fields (a ``Hub``, a ``dict``,
a ``Py_ssize_t``) refuse the probe, keep their property and so their type
check. Like a slot, a converted field can be deleted, and reads as an
``AttributeError`` until set again; the kernel never deletes one.
"""

cdef extern from *:
    """
    #include <structmember.h>

    /* Replace tp's getset descriptors of plain object fields by member
       descriptors over the same fields; inst is a fresh instance of tp.
       Returns how many were replaced, or -1 with an exception set. */
    static int gofer_as_members(PyObject *tpo, PyObject *inst) {
        PyTypeObject *tp = (PyTypeObject *)tpo;
        Py_ssize_t size = tp->tp_basicsize, off, found;
        PyGetSetDef *gs;
        int n = 0;
        if (!PyType_Check(tpo) || !PyObject_TypeCheck(inst, tp)) {
            PyErr_SetString(PyExc_TypeError, "gofer_as_members: inst must be an instance of tp");
            return -1;
        }
        if (tp->tp_getset == NULL || tp->tp_dict == NULL)
            return 0;
        for (gs = tp->tp_getset; gs->name != NULL; gs++) {
            PyObject *probe, *descr, *cur;
            PyMemberDef *def;
            if (gs->set == NULL)
                continue;
            cur = PyDict_GetItemString(tp->tp_dict, gs->name);  /* borrowed */
            if (cur == NULL || Py_TYPE(cur) != &PyGetSetDescr_Type)
                continue;
            probe = PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type);
            if (probe == NULL)
                return -1;
            if (PyObject_SetAttrString(inst, gs->name, probe) < 0) {
                PyErr_Clear();  /* a typed field: it keeps its property */
                Py_DECREF(probe);
                continue;
            }
            found = -1;
            for (off = (Py_ssize_t)sizeof(PyObject);
                 off + (Py_ssize_t)sizeof(PyObject *) <= size;
                 off += (Py_ssize_t)sizeof(PyObject *)) {
                if (*(PyObject **)((char *)inst + off) == probe) {
                    if (found >= 0) { found = -2; break; }
                    found = off;
                }
            }
            if (PyObject_SetAttrString(inst, gs->name, Py_None) < 0) {
                Py_DECREF(probe);
                return -1;
            }
            Py_DECREF(probe);
            if (found < 0)
                continue;
            /* Never freed: the type keeps the descriptor, which points at it. */
            def = (PyMemberDef *)PyMem_RawCalloc(1, sizeof(PyMemberDef));
            if (def == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            def->name = gs->name;  /* Cython's static table: lives as long as the module */
            def->type = T_OBJECT_EX;
            def->offset = found;
            def->flags = 0;
            def->doc = gs->doc;
            descr = PyDescr_NewMember(tp, def);
            if (descr == NULL)
                return -1;
            if (PyDict_SetItemString(tp->tp_dict, gs->name, descr) < 0) {
                Py_DECREF(descr);
                return -1;
            }
            Py_DECREF(descr);
            n++;
        }
        PyType_Modified(tp);
        return n;
    }
    """
    int gofer_as_members(object tp, object inst) except -1


_done: dict[str, int] = {}


def install() -> dict[str, int]:
    """Convert the kernel's extension types (once); return how many fields each got."""
    if _done:
        return _done
    from gofer._core._hub import Hub
    from gofer._core._park import Root, Worker
    from gofer._core._poll import EpollPoller, IoState, Poller, SelectorPoller

    for tp in (Hub, Worker, Root, IoState, Poller, EpollPoller, SelectorPoller):
        # A bare instance (no __init__): its fields are None, as the probe needs.
        _done[tp.__name__] = gofer_as_members(tp, tp.__new__(tp))
    return _done


def installed() -> dict[str, int]:
    """How many fields of each type ``install()`` converted (empty before it ran)."""
    return dict(_done)
