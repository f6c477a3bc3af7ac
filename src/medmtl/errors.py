"""The one exception type for input a user can fix; the CLI prints it without a traceback."""


class UserError(Exception):
    """Bad input (missing file, corrupt image, checksum mismatch): message names file and problem."""
