"""The boolean words of SPEC §3 (``true/false``, ``1/0``, ``yes/no``, ``y/n``, ``ja/nej``, ``j/n``; any case)."""

TRUE_WORDS = ("true", "1", "yes", "y", "ja", "j")
FALSE_WORDS = ("false", "0", "no", "n", "nej")
