"""The backup agent's command line: every bound is checked, and the error names the flag."""
from __future__ import annotations

import pytest

from chaos_dr_stack.backup.cli import parse_args

REQUIRED = ["--port", "1", "--mongo-uri", "mongodb://127.0.0.1:1", "--bootstrap", "127.0.0.1:2", "--store", "/tmp/s"]


def test_the_operation_timeout_reaches_the_settings():
    settings, _ = parse_args(REQUIRED + ["--mongo-op-timeout-s", "7.5"])
    assert settings.mongo_op_timeout_s == 7.5
    assert parse_args(REQUIRED)[0].mongo_op_timeout_s == 30.0


@pytest.mark.parametrize("flag,value", [("--mongo-op-timeout-s", "0"), ("--mongo-op-timeout-s", "nan"),
                                        ("--interval-s", "-1"), ("--keep-min", "0")])
def test_a_bad_bound_exits_2_naming_the_flags(flag, value, capsys):
    with pytest.raises(SystemExit) as exited:
        parse_args(REQUIRED + [flag, value])
    assert exited.value.code == 2
    assert flag in capsys.readouterr().err
