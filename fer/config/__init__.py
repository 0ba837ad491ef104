"""What a user may write: the typed schemas, where the yaml lives, validation, Hydra's errors as one line.

`schema` and `options` are leaves any room may import; `validate` checks a whole config against every room's
registry, so only entry points and `tracking.resume` import it.
"""
