"""The crash tests' hook, `crash_point`: it lives in `acav1m_hf.crash` so that the release commands
(``acav1m remove``) can be killed at their events too; curation's steps import it from here."""

from acav1m_hf.crash import crash_point

__all__ = ["crash_point"]
