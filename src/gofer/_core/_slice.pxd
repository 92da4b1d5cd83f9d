# Cython declarations for the compiled kernel (setup.py).
cimport cython
from gofer._core._hub cimport Hub
from gofer._core._park cimport Worker, switch_away

@cython.locals(hub=Hub, n=Py_ssize_t, nxt=object)
cpdef yield_now()
