"""Reading run folders and everything computed from them, knowing nothing about any task.

    run_folder.py       the layout of one run's folder: config, status, scores, env, metrics
    run_index.py        records of unchanged runs without parsing them again
    results_table.py    the long results table (results.csv / results.parquet)
    selection.py        configurations, scoring, the chosen configuration (docs/protocol.md), intervals
    heatmaps.py, curves.py, time_to_target.py, performance_profiles.py, best_table.py   the figures
    searches.py, search_figures.py   runs that are a search or no grid: best so far and scatter, not heatmaps
    figure_files.py     saving figures in every requested format
    analysis.py         everything `framework plot` makes, from one read of the runs
    report.py           the self-contained HTML report
"""
