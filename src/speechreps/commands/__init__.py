"""One module per ``speechreps`` sub-command; see :mod:`speechreps.cli`."""
