"""The exceptions of expansa (raised by its native part too)."""


class ExpansaError(Exception):
    """A request expansa refuses as the CLI does: an unknown customer, contract or product, a
    quote that cannot be priced... The message is what the CLI prints after ``error:``.

    Arguments the CLI's parser refuses (a month that is not ``YYYY-MM``, ``from_`` after
    ``to``, an unknown rule set) raise ``ValueError`` with the CLI's message instead.
    """


class BookError(ExpansaError):
    """A book that was not loaded, with every problem found in it.

    Attributes:
        problems: list of str, each ``file:line: column: value: reason`` exactly as
            ``expansa check`` prints it (the first 1000 by file and line).
        total: int, every problem found, listed or not.
        message: str, what the CLI prints after ``error:``.

    ``str()`` of it is what ``expansa check`` prints on standard error: the problems, the line
    saying how many more there are (when some are not listed), then the message.
    """

    def __init__(self, message, problems, total, more=None):
        super().__init__(message, problems, total, more)
        self.message = message
        self.problems = list(problems)
        self.total = total
        self._more = more

    def __str__(self):
        lines = [*self.problems, *([self._more] if self._more else []), self.message]
        return "\n".join(lines)
