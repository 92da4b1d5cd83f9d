# Cython declarations for the compiled kernel (setup.py).
cimport cython

cdef class IoState:
    cdef public object closed, fd, label, readable, rwaiter, writable, wwaiter
    cdef public Poller poller

cdef class Poller:
    cdef public object hub, waiting
    cdef public Py_ssize_t nwaiters

cdef class EpollPoller(Poller):
    cdef public object _ep, _on_wakeup, _pid, _wakeup_fd
    cdef public dict _fds

    @cython.locals(st=IoState, ev=long, fds=dict)
    cpdef poll(self, timeout)

cdef class SelectorPoller(Poller):
    cdef public object _live, _on_wakeup, _sel, _wakeup_fd
