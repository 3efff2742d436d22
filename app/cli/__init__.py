"""The ``neurohsi`` command line. Qt is imported only by ``neurohsi gui``."""
