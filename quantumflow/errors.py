"""The one error the work itself raises for its user to fix."""


class UnfitInput(ValueError):
    """Recordings, a store or settings that cannot serve the work asked of them (too short to label or
    train on, a test period before its training ends, no predictions over the recordings' time): the
    user's to fix, said in one line. Any other exception in the work is a bug, reported as one."""
