"""``python -m beal_backend <command>``: the same as the ``beal`` console script."""

from beal_backend.cli import main

if __name__ == "__main__":  # not when a spawned worker process imports this module as __mp_main__
    raise SystemExit(main())
