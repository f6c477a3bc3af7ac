"""The one exception type for input a user can fix; the CLI prints it without a traceback."""


class UserError(Exception):
    """Bad input (missing file, corrupt image, checksum mismatch); the message names the file."""
