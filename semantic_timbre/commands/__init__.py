"""The command lines' code, one module per top-level thesis script (those scripts are shims that
call these modules' main(argv)), and the console entry points of pyproject.toml."""


def train() -> int:
    """The console entry point `semantic-timbre-train`: train_timbre_generation_vae.py's main().

    That script's code has not moved into this package yet (it is being changed elsewhere), so it
    is installed as a top-level module (pyproject.toml's py-modules) and imported here, when the
    command runs; once it moves to semantic_timbre/commands/train_timbre_generation_vae.py this
    entry point points there like the others."""
    import train_timbre_generation_vae

    from semantic_timbre.cli import run_main

    return run_main(train_timbre_generation_vae.main)
