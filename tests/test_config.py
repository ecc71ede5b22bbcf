# python -m pytest tests/test_config.py -q
"""The config layer: YAML scalars, the override grammar, experiment files, merge order and typed
validation (every problem in one ConfigError), plus the CLI's light start-up and its exit status 2."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from framework.config import Node, Request, combine, load_experiment, parse_overrides, parse_value, split_top_level
from framework.config.file_io import load_yaml
from framework.config.grid import expand
from framework.config.registry import PLUGIN_PATH_ENV, Registry
from framework.errors import ConfigError


@pytest.fixture(autouse=True)
def _no_user_plugins(monkeypatch):
    monkeypatch.delenv(PLUGIN_PATH_ENV, raising=False)


def resolve(*args: str, experiment: Path | None = None) -> list[dict]:
    """The resolved configurations of `framework run [-e experiment] args...` over the bundled plugins."""
    request = parse_overrides(list(args))
    if experiment is not None:
        request = combine(load_experiment(experiment), request)
    return [run.config for run in expand(request, Registry())]


def problems(*args: str, experiment: Path | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        resolve(*args, experiment=experiment)
    return info.value.problems


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# ---------------------------------------------------------------- scalars and the override grammar


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1e-3", 1e-3), ("1.0e-3", 1e-3), ("-2E+2", -200.0), (".5", 0.5), ("3", 3), ("1_000", 1000),
        ("true", True), ("yes", "yes"), ("on", "on"), ("null", None), ("1:00:00", "1:00:00"),
        (".", "."), ("[0.5, 0.75]", [0.5, 0.75]), ("cosine", "cosine"), ("'1e-3'", "1e-3"),
    ],
)
def test_parse_value_follows_yaml_1_2(text, expected):
    value = parse_value(text)
    assert value == expected and type(value) is type(expected)


def test_yaml_files_read_exponents_as_floats_and_keep_dots_and_times_as_strings(tmp_path):
    data = load_yaml(write(tmp_path / "x.yaml", """\
        lr: 1e-3
        eps: 1.0e-8
        time: 1:00:00
        flag: on
        output_dir: .
        """))
    assert data == {"lr": 1e-3, "eps": 1e-8, "time": "1:00:00", "flag": "on", "output_dir": "."}
    assert isinstance(data["lr"], float)


# Pieces of the scalars that YAML 1.1 or 1.2 resolve to numbers, booleans, nulls, times and dates.
_YAML_PIECES = ["", "0", "1", "7", "-", "+", ".", "e", "E", "_", ":", "x", "o", "b", "inf", "NaN", "null", "~",
                "true", "False", "on", "off", "yes", "n", "=", "<<", "0x1f", "2001-12-14", " ", "#"]


def _strings_like_scalars() -> list[str]:
    """Every sequence of up to three pieces, then seeded random strings over the same characters."""
    import itertools
    import random

    found = {"".join(p) for n in (1, 2, 3) for p in itertools.product(_YAML_PIECES, repeat=n)}
    found.update(["1e-3", "-2E+2", "1:00:00", ".inf", "-.INF", "0x10", "0o17", "1_000", "1.0", "True", "Yes", "NULL",
                  "2001-12-14 21:59:43.10 -5"])
    rng = random.Random(0)
    alphabet = "0123456789+-._:eExXoObBinfatrulsyNT~ "
    found.update("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8))) for _ in range(3000))
    return sorted(found)


def test_dump_yaml_round_trips_strings_that_look_like_other_scalars():
    # A string must come back a string, as keys, values and list items: "1e-3" written unquoted would
    # reload as the float 0.001 (our loader is YAML 1.2, PyYAML's dumper YAML 1.1).
    from framework.config.file_io import dump_yaml, parse_yaml

    strings = _strings_like_scalars()
    data = {"list": strings, "keys": {s: s for s in strings}}
    back = parse_yaml(dump_yaml(data))
    wrong = [(s, b) for s, b in zip(strings, back["list"]) if b != s or type(b) is not str]
    assert wrong == [] and len(back["list"]) == len(strings)
    assert back["keys"] == data["keys"]
    values = [1e-3, 1e-8, 3, -2, 0.5, float("inf"), True, False, None, 1_000_000, 1e300]  # non-strings stay what they are
    assert parse_yaml(dump_yaml(values)) == values
    assert [type(v) for v in parse_yaml(dump_yaml(values))] == [type(v) for v in values]


def test_a_runs_config_yaml_reloads_to_its_values(tmp_path):
    from framework.results.run_folder import CONFIG_FILE, write_config

    (config,) = resolve("tasks=digits", "engine.output_dir='1e-3'", "engine.sbatch_args={time: '1:00:00', "
                        "comment: 'on', account: '0x10', qos: 'null', constraint: '1_000', mail_user: '~'}")
    assert config["engine"]["output_dir"] == "1e-3"
    write_config(tmp_path, config)
    assert load_yaml(tmp_path / CONFIG_FILE) == config


def test_split_top_level_splits_only_outside_brackets_and_quotes():
    assert split_top_level("[1,2],[3,4]") == ["[1,2]", "[3,4]"]
    assert split_top_level("1e-3,1e-2") == ["1e-3", "1e-2"]
    assert split_top_level("'a,b',{x: 1, y: 2}") == ["'a,b'", "{x: 1, y: 2}"]


def test_comma_lists_become_axes_and_brackets_list_values():
    request = parse_overrides([
        "optimizer.learning_rate=1e-3,1e-2",
        "schedule.decay_milestones=[0.5,0.75]",
        "task.hidden_size=[1,2],[3,4]",
        "task.batch_size=32",
    ])
    assert [(a.key, a.values) for a in request.axes] == [
        ("optimizer.learning_rate", (1e-3, 1e-2)),
        ("task.hidden_size", ([1, 2], [3, 4])),
    ]
    assert request.layers[0].values == {"schedule": {"decay_milestones": [0.5, 0.75]}, "task": {"batch_size": 32}}


def test_selectors_and_their_aliases():
    request = parse_overrides(["tasks=digits,template", "optimizers=sgd_baseline"])
    assert (request.tasks, request.optimizers, request.layers, request.axes) == (["digits", "template"], ["sgd_baseline"], [], [])
    aliased = parse_overrides(["task.name=digits", "optimizer=adamw_baseline,sgd_baseline"])
    assert (aliased.tasks, aliased.optimizers) == (["digits"], ["adamw_baseline", "sgd_baseline"])
    # Names are folder names, taken as written: `1e-3` is not turned into `0.001`.
    assert parse_overrides(["tasks=1e-3"]).tasks == ["1e-3"]


def test_the_last_assignment_of_a_key_wins():
    sweep_then_value = parse_overrides(["optimizer.learning_rate=1,2", "optimizer.learning_rate=3"])
    assert sweep_then_value.axes == [] and sweep_then_value.layers[0].values == {"optimizer": {"learning_rate": 3}}
    configs = resolve("tasks=digits", "optimizer.learning_rate=3", "optimizer.learning_rate=1,2")
    assert [c["optimizer"]["learning_rate"] for c in configs] == [1.0, 2.0]
    (config,) = resolve("tasks=digits", "optimizer.learning_rate=1,2", "optimizer.learning_rate=3")
    assert config["optimizer"]["learning_rate"] == 3.0


def test_malformed_arguments_are_all_reported_at_once():
    with pytest.raises(ConfigError) as info:
        parse_overrides(["foo", "=3", "tasks=", "a..b=1", "task.batch_size=8"])
    found = info.value.problems
    assert len(found) == 4
    assert any("'foo'" in p and "expected key=value" in p for p in found)
    assert any(p.startswith("tasks (command line): give at least one name") for p in found)


# ---------------------------------------------------------------- experiment files


def test_experiment_file_sections_selectors_and_sweep(tmp_path):
    path = write(tmp_path / "exp.yaml", """\
        tasks: [digits, template]
        optimizers: sgd_baseline
        task:
          batch_size: 16
        optimizer:
          momentum: 0.8
        engine:
          seed: 7
        evaluation:
          checkpoint: last
        sweep:
          optimizer.learning_rate: [1e-3, 1e-2]
          engine.seed: [1, 2]
        """)
    request = load_experiment(path)
    assert (request.tasks, request.optimizers) == (["digits", "template"], ["sgd_baseline"])
    assert [(a.key, a.values) for a in request.axes] == [("optimizer.learning_rate", (1e-3, 1e-2)), ("engine.seed", (1, 2))]
    assert isinstance(request.axes[0].values[0], float)
    assert request.layers[0].values == {
        "task": {"batch_size": 16}, "optimizer": {"momentum": 0.8},
        "engine": {"seed": 7}, "evaluation": {"checkpoint": "last"},
    }


def test_experiment_section_name_selects_the_plugin(tmp_path):
    request = load_experiment(write(tmp_path / "exp.yaml", """\
        task: {name: digits, batch_size: 8}
        optimizer: {name: sgd_baseline}
        """))
    assert (request.tasks, request.optimizers) == (["digits"], ["sgd_baseline"])
    assert request.layers[0].values == {"task": {"batch_size": 8}}


def test_experiment_file_problems_are_reported_together(tmp_path):
    path = write(tmp_path / "exp.yaml", """\
        optimiser:
          learning_rate: 1e-3
        engine: 3
        sweep:
          optimizer.learning_rate: 1e-3
        """)
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    found = info.value.problems
    assert len(found) == 3
    assert any("optimiser" in p and "unknown section" in p and "did you mean optimizer" in p and str(path) in p for p in found)
    assert any(p.startswith("engine (") and "expected a mapping" in p for p in found)
    assert any(p.startswith("sweep.optimizer.learning_rate (") and "non-empty list" in p for p in found)


def test_experiment_file_that_is_not_a_mapping_or_not_yaml(tmp_path):
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_experiment(write(tmp_path / "list.yaml", "- 1\n- 2\n"))
    broken = write(tmp_path / "broken.yaml", "task: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml.*invalid YAML"):
        load_experiment(broken)


def test_command_line_refines_the_experiment(tmp_path):
    path = write(tmp_path / "exp.yaml", """\
        tasks: [template]
        task: {batch_size: 16, hidden_size: 8}
        sweep:
          optimizer.learning_rate: [0.1, 0.2]
          engine.seed: [1, 2]
        """)
    merged = combine(load_experiment(path), parse_overrides(["tasks=digits", "optimizer.learning_rate=0.5", "task.batch_size=8"]))
    assert merged.tasks == ["digits"]
    assert [a.key for a in merged.axes] == ["engine.seed"]  # a fixed command-line value replaces the file's sweep
    configs = resolve("optimizer.learning_rate=0.5", "task.batch_size=8", "engine.seed=3,4", experiment=path)
    assert [(c["optimizer"]["learning_rate"], c["task"]["batch_size"], c["engine"]["seed"]) for c in configs] == [
        (0.5, 8, 3), (0.5, 8, 4)]
    assert {c["task"]["hidden_size"] for c in configs} == {8}


@pytest.mark.parametrize("output", ["/data/a,b", "out,1", "1e-3", "[x]", "null"])
def test_output_folder_is_taken_literally(output):
    # -o names one folder: a comma is not a sweep and a path is never parsed as a YAML value.
    from argparse import Namespace

    from framework.commands.common import read_request

    request = read_request(Namespace(overrides=["tasks=digits"], experiment=None, output=output))
    assert request.axes == []
    (run,) = expand(request, Registry())
    assert run.config["engine"]["output_dir"] == output
    # -o is the last word on the output folder, also over a command-line sweep of engine.output_dir
    swept = read_request(Namespace(overrides=["tasks=digits", "engine.output_dir=x,y"], experiment=None, output=output))
    assert [r.config["engine"]["output_dir"] for r in expand(swept, Registry())] == [output]


# ---------------------------------------------------------------- merge order and validation


def test_merge_order_engine_optimizer_task_experiment_command_line(tmp_path):
    # The template task sets learning_rate 1e-2 for adamw_baseline only, devices 1 and its own SLURM time.
    (config,) = resolve("tasks=template")
    assert config["optimizer"]["learning_rate"] == 1e-2  # task default.yaml > optimizer default.yaml (1e-3)
    assert config["optimizer"]["weight_decay"] == 0.01  # optimizer default.yaml > nothing
    assert config["engine"]["sbatch_args"] == {"time": "00:05:00"}  # task default.yaml > engine defaults ({})
    assert config["engine"]["seed"] == 42  # engine defaults
    assert config["evaluation"]["plot"]["metric"] == "test_loss"
    (sgd,) = resolve("tasks=template", "optimizers=sgd_baseline")
    assert sgd["optimizer"]["learning_rate"] == 0.1  # the task's value is for adamw_baseline only
    experiment = write(tmp_path / "exp.yaml", "optimizer: {learning_rate: 0.3}\nengine: {seed: 5}\n")
    (from_file,) = resolve("tasks=template", experiment=experiment)
    assert (from_file["optimizer"]["learning_rate"], from_file["engine"]["seed"]) == (0.3, 5)
    (from_cli,) = resolve("tasks=template", "optimizer.learning_rate=0.5", experiment=experiment)
    assert (from_cli["optimizer"]["learning_rate"], from_cli["engine"]["seed"]) == (0.5, 5)


def test_every_validation_problem_is_reported_at_once():
    found = problems(
        "tasks=digits",
        "optimizer.lerning_rate=1e-3",
        "engine.sead=2",
        "task.batch_size=abc",
        "task.batch_size_=1",
        "engine.deterministic=yes",
        "schedule.decay_milestones=0.5",
        "engine.sbatch_args=5",
        "optimizer.learning_rate=[1,2]",
    )
    assert len(found) == 8
    expected = [
        ("task.batch_size", "expected an integer, got 'abc'"),
        ("optimizer.lerning_rate", "did you mean optimizer.learning_rate?"),
        ("engine.sead", "did you mean engine.seed?"),
        ("task.batch_size_", "did you mean task.batch_size?"),
        ("engine.deterministic", "expected a boolean, got 'yes'"),
        ("schedule.decay_milestones", "expected a list"),
        ("engine.sbatch_args", "expected a mapping"),
        ("optimizer.learning_rate", "expected a number"),
    ]
    for key, message in expected:
        assert any(p.startswith(f"{key} (command line)") and message in p for p in found), (key, found)


def test_integers_are_accepted_for_floats_but_not_the_reverse():
    (config,) = resolve("tasks=digits", "optimizer.learning_rate=1")
    assert config["optimizer"]["learning_rate"] == 1.0 and isinstance(config["optimizer"]["learning_rate"], float)
    (found,) = problems("tasks=digits", "task.batch_size=1e2")
    assert found.startswith("task.batch_size (command line): expected an integer, got 100.0")
    (found,) = problems("tasks=digits", "engine.deterministic=1")
    assert "expected a boolean" in found


def test_unknown_top_level_section_is_rejected():
    (found,) = problems("tasks=digits", "optimzer.learning_rate=1")
    assert found.startswith("optimzer (command line): unknown key; did you mean optimizer?")


def test_free_form_mappings_accept_any_key():
    (config,) = resolve("tasks=digits", "engine.sbatch_args.gres=gpu:1")
    assert config["engine"]["sbatch_args"] == {"time": "00:10:00", "gres": "gpu:1"}


def test_validation_problems_name_the_experiment_file(tmp_path):
    path = write(tmp_path / "exp.yaml", "tasks: digits\ntask: {hiden_size: 3}\n")
    (found,) = problems(experiment=path)
    assert found.startswith(f"task.hiden_size (experiment file {path}): unknown key; did you mean task.hidden_size?")


def test_training_length_may_be_given_in_steps_but_not_left_out():
    (config,) = resolve("tasks=digits", "task.max_epochs=null", "task.max_steps=100")
    assert (config["task"]["max_epochs"], config["task"]["max_steps"]) == (None, 100)
    (found,) = problems("tasks=digits", "task.max_epochs=null")
    assert found.startswith("task.max_epochs") and "max_steps" in found


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("task.target_metric_mode=maximum", "task.target_metric_mode"),
        ("task.batch_size=0", "task.batch_size"),
        ("engine.devices=0", "engine.devices"),
        ("engine.test_checkpoints=[best,first]", "engine.test_checkpoints"),
        ("evaluation.plot.limits=5", "evaluation.plot.limits"),  # a null default types nothing: this used to crash
        ("evaluation.plot.limits=[0,1,2]", "evaluation.plot.limits"),
        ("task.max_steps=abc", "task.max_steps"),  # ditto: used to pass and reach the trainer
        ("task.max_steps=-1", "task.max_steps"),
    ],
)
def test_values_that_types_cannot_catch(override, key):
    (found,) = problems("tasks=digits", override)
    assert found.startswith(f"{key}: ") and found.endswith("[task digits, optimizer adamw_baseline]")


# ---------------------------------------------------------------- the frozen view and plugin paths


def test_node_is_a_frozen_attribute_view():
    node = Node({"task": {"batch_size": 8, "sizes": [1, 2]}})
    assert node.task.batch_size == 8 and node["task"]["batch_size"] == 8
    assert node.task.sizes == (1, 2)
    with pytest.raises(AttributeError, match="frozen"):
        node.task = {}
    with pytest.raises(AttributeError, match=r"task.batchsize' \(known here: batch_size, sizes\)"):
        node.task.batchsize
    copy = node.to_dict()
    copy["task"]["sizes"].append(3)
    assert node.task.sizes == (1, 2)
    assert node.replace(run={"total_steps": 10}).run.total_steps == 10 and "run" not in node


def test_plugin_paths_come_from_the_last_layer_that_sets_them(tmp_path):
    path = write(tmp_path / "exp.yaml", "engine: {plugin_paths: [/a, /b]}\n")
    assert combine(load_experiment(path), Request()).plugin_paths() == ["/a", "/b"]
    assert combine(load_experiment(path), parse_overrides(["engine.plugin_paths=[/c]"])).plugin_paths() == ["/c"]


# ---------------------------------------------------------------- the command line, end to end


def test_engine_modules_import_without_heavy_dependencies():
    code = (
        "import sys, framework.cli, framework.config.grid, framework.config.registry, framework.config\n"
        "print(sorted(m for m in ('torch', 'lightning', 'matplotlib', 'pandas') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_cli_help_exits_zero(cli, tmp_path):
    help_ = cli("--help", cwd=tmp_path)
    assert help_.returncode == 0 and "run" in help_.stdout
    run_help = cli("run", "--help", cwd=tmp_path)
    assert run_help.returncode == 0 and "merge order" in run_help.stdout


def test_cli_reports_config_errors_with_exit_2_and_writes_nothing(cli, tmp_path):
    out = tmp_path / "out"
    result = cli("run", "tasks=digits", "task.batch_size=abc", "optimizer.lerning_rate=1", "-o", str(out), cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "invalid configuration (2 problems)" in result.stderr
    assert "did you mean optimizer.learning_rate?" in result.stderr
    assert not out.exists() and not (tmp_path / "results").exists()


@pytest.mark.parametrize("command", ["status", "plot", "report", "cancel"])
def test_commands_on_a_missing_output_folder_exit_2_naming_it(cli, tmp_path, command):
    # A mistyped folder is bad input, not an empty grid: one line naming it, exit status 2.
    missing = tmp_path / "reslts"
    result = cli(command, str(missing), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == f"error: {missing}: no such folder (give the output folder of `framework run`)"
    assert result.stdout == "" and not missing.exists()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    result = cli(command, str(a_file), cwd=tmp_path)
    assert (result.returncode, result.stderr.strip()) == (2, f"error: {a_file}: not a folder (give the output folder of `framework run`)")
