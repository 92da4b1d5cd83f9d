# Cython declarations for the compiled kernel (setup.py): the hub as a typed
# greenlet subclass, so that compiled code reads its fields by offset.
cdef extern from "greenlet/greenlet.h":
    ctypedef class greenlet.greenlet [object PyGreenlet]:
        pass

cdef class Hub(greenlet):
    cdef public object _cancelled_timers, _fatal, _fd_lock, _in_run, _poll_every, _timers
    cdef public object _ts_signalled, _tsq, _wakeup_r, _wakeup_w, clock, closed, idle_workers
    cdef public object main, now, pending_jobs, poller, ready, root, slice_end, thread_ident, workers
    cdef public Py_ssize_t handoffs, switches
