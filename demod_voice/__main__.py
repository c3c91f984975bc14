"""Allow ``python -m demod_voice``."""

from demod_voice.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
