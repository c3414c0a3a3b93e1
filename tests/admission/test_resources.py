"""The guard table (:mod:`bff.admission.resources`): its default rows, the owners read
from the charts, and the ``--guard-resource`` / ``BFF_GUARD_RESOURCES`` entries that
change it (through the settings, with one-line errors and exit status 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bff.admission.resources import (
    DEFAULT_TABLE,
    HARVESTER,
    LOAD_BALANCER,
    NETWORK_CONTROLLER,
    GuardTable,
    Kept,
    Mode,
    parse_change,
    table_from,
)
from bff.cli import build_parser, main
from bff.settings import Command, from_sources

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "bff" / "captured" / "crds"
WIDGET = "widgets.example.com/v1;owner=system:serviceaccount:tools:widget-controller"


def test_the_default_table_is_the_seven_resources_with_their_owners() -> None:
    rows = {str(r): r.owners for r in DEFAULT_TABLE}
    assert rows == {
        "ippools.loadbalancer.harvesterhci.io/v1beta1": (LOAD_BALANCER,),
        "loadbalancers.loadbalancer.harvesterhci.io/v1beta1": (LOAD_BALANCER,),
        "schedulevmbackups.harvesterhci.io/v1beta1": (HARVESTER,),
        "settings.harvesterhci.io/v1beta1": (HARVESTER,),
        "keypairs.harvesterhci.io/v1beta1": (HARVESTER,),
        "upgrades.harvesterhci.io/v1beta1": (HARVESTER,),
        "clusternetworks.network.harvesterhci.io/v1beta1": (NETWORK_CONTROLLER,),
    }
    assert all(r.kept == frozenset(Kept) and r.mode is Mode.REPAIR for r in DEFAULT_TABLE)


def test_every_default_row_is_served_by_its_crd_without_a_status_subresource() -> None:
    """The rows' versions are the CRDs' storage versions, and none has a status
    subresource (the reason the guard exists)."""
    crds = {}
    for path in [*CRDS.glob("*.yaml"), ROOT / "bff/captured/upgrades.harvesterhci.io.crd.yaml"]:
        crd: dict[str, Any] = yaml.safe_load(path.read_text())
        crds[(crd["spec"]["group"], crd["spec"]["names"]["plural"])] = crd
    for row in DEFAULT_TABLE:
        crd = crds[(row.group, row.resource)]
        (storage,) = [v for v in crd["spec"]["versions"] if v.get("storage")]
        assert storage["name"] == row.version, row
        assert "status" not in (storage.get("subresources") or {}), row


def test_entries_add_replace_and_remove_rows() -> None:
    table = table_from(
        [
            "-keypairs.harvesterhci.io",
            WIDGET + ";owner=system:serviceaccount:tools:other;keep=status|finalizers;mode=deny",
            "upgrades.harvesterhci.io/v1beta1;owner=system:serviceaccount:harvester-system:x",
        ]
    )
    assert table.find("harvesterhci.io", "keypairs") is None
    widget = table.find("example.com", "widgets")
    assert widget is not None
    assert widget.owners == (
        "system:serviceaccount:tools:widget-controller",
        "system:serviceaccount:tools:other",
    )
    assert widget.kept == {Kept.STATUS, Kept.FINALIZERS}
    assert widget.mode is Mode.DENY
    upgrades = table.find("harvesterhci.io", "upgrades")
    assert upgrades is not None
    assert upgrades.owners == ("system:serviceaccount:harvester-system:x",)
    assert "restarts a finished upgrade" in upgrades.status_means  # kept from the default
    assert len(table) == 7
    assert len(table_from(["-*", WIDGET])) == 1
    assert table_from([]) == GuardTable()


def test_each_row_written_as_an_entry_reads_back_the_same() -> None:
    for row in DEFAULT_TABLE:
        assert table_from(["-*", row.spec()]).rows == (row,)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("widgets.example.com/v1", "names no owner"),
        ("widgets.example.com;owner=a", "names no version"),
        ("Widgets.example.com/v1;owner=a", "is not RESOURCE.GROUP/VERSION"),
        ("widgets/v1;owner=a", "is not RESOURCE.GROUP/VERSION"),
        ("widgets.example.com/v1;owner=a;keep=spec", "keep=spec names something else"),
        ("widgets.example.com/v1;owner=a;mode=warn", "neither repair nor deny"),
        ("widgets.example.com/v1;owner=a;colour=red", "unknown option 'colour'"),
        ("widgets.example.com/v1;owner=it's", "is not a user name"),
        ("widgets.example.com/v1;owner", "is not NAME=VALUE"),
        ("-widgets.example.com/v1", "removing takes -RESOURCE.GROUP"),
    ],
)
def test_bad_entries_say_what_is_wrong(entry: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_change(entry)


def test_removing_a_resource_the_table_lacks_is_an_error() -> None:
    with pytest.raises(ValueError, match="has no such resource"):
        table_from(["-widgets.example.com"])


def _given(*argv: str) -> dict[str, Any]:
    args = vars(build_parser().parse_args(["serve", *argv]))
    return {k: v for k, v in args.items() if k != "command"}


def test_the_flag_repeats_and_the_variable_is_a_comma_separated_list() -> None:
    # A value starting with "-" is given as --flag=value (argparse's rule).
    repeated = _given("--guard-resource=-keypairs.harvesterhci.io", "--guard-resource", WIDGET)
    settings = from_sources(repeated, {}, command=Command.SERVE)
    assert settings.guard_resources == ("-keypairs.harvesterhci.io", WIDGET)
    env = {"BFF_GUARD_RESOURCES": f"-keypairs.harvesterhci.io, {WIDGET}"}
    assert from_sources(_given(), env, command=Command.SERVE).guard_resources == (
        "-keypairs.harvesterhci.io",
        WIDGET,
    )
    assert from_sources(_given(), {}, command=Command.SERVE).guard_resources == ()


def test_a_bad_entry_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--guard-resource=-widgets.example.com"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--guard-resource / BFF_GUARD_RESOURCES" in err
    assert "has no such resource" in err


def test_help_explains_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--guard-resource ENTRY" in out
    assert "-RESOURCE.GROUP removes one" in out
    assert "ippools.loadbalancer.harvesterhci.io/v1beta1" in out
