# Cython declarations for the compiled kernel (setup.py).
cimport cython
from gofer._core._hub cimport Hub, greenlet

cdef class Worker(greenlet):
    cdef public object _cancel_hint, _cancel_req, _scopes, _throw, _wait, task
    cdef public Hub _hub

cdef class Root:
    cdef public object _cancel_hint, _cancel_req, _scopes, _throw, _wait, g, name, switch, throw
    cdef public Hub _hub

@cython.locals(n=Py_ssize_t, nxt=object)
cpdef object switch_away(Hub hub, object t)

@cython.locals(hub=Hub)
cpdef object park(object waitable, object timeout=*)
