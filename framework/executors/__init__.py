"""Executors take a list of RunSpecs and run them somewhere; they share one small interface:
`run_all(runs, registry, force, report) -> list[Outcome]`."""
