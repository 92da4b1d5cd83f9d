# Cython declarations for the compiled kernel (setup.py).
cimport cython
from gofer._core._hub cimport Hub
from gofer._core._park cimport switch_away
from gofer._core._poll cimport IoState, Poller

cpdef wait_readable(IoState st, timeout=*)
cpdef wait_writable(IoState st, timeout=*)

@cython.locals(poller=Poller)
cdef _io_park(IoState st, t, int mode, timeout)
