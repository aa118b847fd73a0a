"""The one exception type for bad user input: the CLI turns it into one line and exit code 2."""


class UserError(Exception):
    """Bad input from a user (file, flag, config). The message names the source and the problem."""
