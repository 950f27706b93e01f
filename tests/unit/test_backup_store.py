"""The backup store, change log and restore choice, without a database: checksums, truncation, fallbacks."""
from __future__ import annotations

import json

import pytest
from bson import Timestamp

from chaos_dr_stack.backup.changelog import ChangeLogWriter, CorruptChangeLog, read_segment, segments
from chaos_dr_stack.backup.corruption import CorruptionFault, FaultRequestError, NothingToCorrupt, parse
from chaos_dr_stack.backup.restore import (
    END_OF_LOG, RestoreRefused, TargetPoint, choose, damaged_backups, taken_during_disaster, target_point,
)
from chaos_dr_stack.backup.store import BackupStore, CorruptBackup


def make_backup(store: BackupStore, backup_id: str, position: tuple[int, int], epoch: int = 0,
                payload: bytes = b"x" * 1000, collections: dict[str, bytes] | None = None) -> dict:
    """``collections``: collection name -> its dump; default one ``events`` collection holding ``payload``."""
    collections = {"events": payload} if collections is None else collections
    staging = store.staging(backup_id)
    for name, dump in collections.items():
        (staging / f"{name}.bson").write_bytes(dump)
        (staging / f"{name}.meta.json").write_text("{}")
    return store.commit(staging, {"id": backup_id, "database": "ca3", "created_at": float(position[0]),
                                  "finished_at": float(position[0]) + 1, "position": list(position),
                                  "end_position": [position[0] + 1, 0], "epoch": epoch, "kafka_offsets": {},
                                  "collections": {name: {"documents": 1 if dump else 0}
                                                  for name, dump in collections.items()}})


@pytest.fixture
def store(tmp_path):
    return BackupStore(tmp_path / "store")


def test_a_committed_backup_verifies_and_lists_its_checksums(store):
    manifest = make_backup(store, "b1", (100, 1))
    assert store.verify("b1")["files"]["events.bson"]["bytes"] == 1000
    assert manifest["bytes"] == 1002
    assert [b["id"] for b in store.listing(verify=True)] == ["b1"]


def test_a_truncated_file_is_named_with_its_sizes(store):
    make_backup(store, "b1", (100, 1))
    path = store.path("b1") / "events.bson"
    path.write_bytes(path.read_bytes()[:400])
    with pytest.raises(CorruptBackup, match=r"backup b1: events.bson: truncated: 400 bytes, the manifest says 1000"):
        store.verify("b1")


def test_a_flipped_byte_is_named(store):
    make_backup(store, "b1", (100, 1))
    path = store.path("b1") / "events.bson"
    data = bytearray(path.read_bytes())
    data[500] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptBackup, match=r"events.bson: sha256 .* does not match the manifest"):
        store.verify("b1")


def test_an_edited_manifest_is_refused(store):
    make_backup(store, "b1", (100, 1))
    manifest = store.path("b1") / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"documents": 1', '"documents": 2'))
    with pytest.raises(CorruptBackup, match="manifest.json: sha256 does not match manifest.sha256"):
        store.manifest("b1")


def test_choosing_falls_back_past_a_corrupt_backup_and_says_which_and_why(store):
    make_backup(store, "b1", (100, 1))
    make_backup(store, "b2", (200, 1))
    (store.path("b2") / "events.bson").write_bytes(b"short")
    choice = choose(store, TargetPoint(0, END_OF_LOG))
    assert choice.manifest["id"] == "b1"
    assert len(choice.fallbacks) == 1 and choice.fallbacks[0].startswith("b2: events.bson: truncated: 5 bytes")


def test_a_named_corrupt_backup_is_refused_not_replaced(store):
    make_backup(store, "b1", (100, 1))
    make_backup(store, "b2", (200, 1))
    (store.path("b2") / "events.bson").write_bytes(b"short")
    with pytest.raises(RestoreRefused, match="refusing to restore a corrupt backup: backup b2: events.bson: truncated"):
        choose(store, TargetPoint(0, END_OF_LOG), "b2")


def test_only_backups_finished_before_the_disaster_are_candidates(store):
    make_backup(store, "b1", (100, 1))
    make_backup(store, "b2", (200, 1))  # ends at (201, 0)
    make_backup(store, "b3", (300, 1))
    point = target_point([{"epoch": 0, "ts": [201, 5], "wall": 201.0, "recovered_by": None}], 0, None)
    assert choose(store, point).manifest["id"] == "b2"
    point = target_point([{"epoch": 0, "ts": [200, 5], "wall": 200.0, "recovered_by": None}], 0, None)
    assert choose(store, point).manifest["id"] == "b1"  # b2's dump overlapped the disaster
    with pytest.raises(RestoreRefused, match="was not taken before the target point"):
        choose(store, point, "b3")


def test_a_recovered_disaster_no_longer_sets_the_target(store):
    point = target_point([{"epoch": 0, "ts": [201, 5], "recovered_by": "b1"}], 1, None)
    assert point.epoch == 1 and point.ts == END_OF_LOG and point.disaster is None


def test_no_backup_before_the_disaster_is_a_clear_refusal(store):
    make_backup(store, "b3", (300, 1))
    (store.path("b3") / "events.bson").write_bytes(b"")
    with pytest.raises(RestoreRefused, match="no valid backup was taken before the target point"):
        choose(store, TargetPoint(0, (100, 0)))


def test_retention_keeps_the_newest_and_deletes_the_old(store):
    for i in range(5):
        make_backup(store, f"b{i}", (100 + i, 1))
    deleted = store.prune(now=1000.0, retention_s=898.5, keep_min=2)
    assert deleted == ["b0", "b1"]  # b2 is 898 s old; b3, b4 are kept whatever their age
    assert store.ids() == ["b2", "b3", "b4"]


def record(t: int, i: int, op: str = "i") -> dict:
    return {"ts": Timestamp(t, i), "wall": float(t), "epoch": 0, "op": op, "coll": "events",
            "key": {"_id": f"p:{i}"}, "doc": {"_id": f"p:{i}", "v": 1.5}}


def test_the_change_log_reads_back_exactly_what_was_flushed(tmp_path):
    writer = ChangeLogWriter(tmp_path)
    for i in range(1, 4):
        writer.append(record(100, i))
    writer.flush()
    writer.append(record(101, 1))  # appended, not flushed: not part of the log yet
    (segment,) = segments(tmp_path)
    assert [r["key"]["_id"] for r in read_segment(segment)] == ["p:1", "p:2", "p:3"]
    writer.rotate()
    (segment,) = segments(tmp_path)
    assert segment.meta["closed"] is True and segment.meta["records"] == 4


def test_a_damaged_change_log_segment_is_named(tmp_path):
    writer = ChangeLogWriter(tmp_path)
    writer.append(record(100, 1))
    writer.rotate()
    (segment,) = segments(tmp_path)
    segment.path.write_bytes(segment.path.read_bytes()[:10])
    with pytest.raises(CorruptChangeLog, match=rf"{segment.path.name}: truncated: 10 bytes"):
        list(read_segment(segment))


NOW = TargetPoint(0, END_OF_LOG)


def test_the_corruption_fault_heals_byte_for_byte(store):
    make_backup(store, "b1", (100, 1), payload=bytes(range(256)) * 10)
    fault = CorruptionFault(store.backups_dir)
    applied = fault.apply(store, NOW, "flip", 60)
    assert (applied["backup_id"], applied["file"], applied["passed_over"]) == ("b1", "events.bson", [])
    with pytest.raises(CorruptBackup):
        store.verify("b1")
    assert fault.heal()["was_active"] is True
    store.verify("b1")


def test_the_corruption_damages_the_largest_data_file_of_the_backup_a_restore_would_choose(store):
    make_backup(store, "b1", (100, 1))
    make_backup(store, "b2", (200, 1), collections={"events": b"e" * 500, "gpu_latest": b"g" * 80})
    make_backup(store, "b3", (300, 1))  # taken after the target point: a restore would not choose it
    fault = CorruptionFault(store.backups_dir)
    applied = fault.apply(store, TargetPoint(0, (250, 0)), "truncate", 60)
    assert (applied["backup_id"], applied["file"], applied["passed_over"]) == ("b2", "events.bson", [])
    assert choose(store, TargetPoint(0, (250, 0))).fallbacks == [
        "b2: events.bson: truncated: 250 bytes, the manifest says 500"]


def test_a_newest_backup_without_data_files_is_passed_over_for_the_newest_that_has_one(store):
    """A backup of a database with no documents (taken between a drop and the next write) has nothing to damage:
    no file at all, or empty dumps that truncating would leave unchanged. The newest backup with data is damaged,
    and the ones passed over are named."""
    make_backup(store, "b1", (100, 1))
    make_backup(store, "b2", (200, 1), collections={"events": b"", "gpu_latest": b""})
    make_backup(store, "b3", (300, 1), collections={})
    fault = CorruptionFault(store.backups_dir)
    applied = fault.apply(store, NOW, "truncate", 60)
    assert (applied["backup_id"], applied["file"]) == ("b1", "events.bson")
    assert applied["passed_over"] == [
        "b3: no data file to damage (database ca3 had no documents when it was taken; collections: none)",
        "b2: no data file to damage (database ca3 had no documents when it was taken; collections: events, "
        "gpu_latest)",
    ]
    with pytest.raises(CorruptBackup, match="b1: events.bson: truncated: 500 bytes"):
        store.verify("b1")
    store.verify("b2"), store.verify("b3")  # untouched
    assert fault.listing()[0]["backup_id"] == "b1"


def test_no_backup_with_a_data_file_is_refused_naming_each_backup_and_why(store):
    make_backup(store, "b1", (100, 1), collections={})
    make_backup(store, "b2", (200, 1), collections={"events": b""})
    fault = CorruptionFault(store.backups_dir)
    with pytest.raises(NothingToCorrupt) as refused:
        fault.apply(store, NOW, "truncate", 60)
    assert str(refused.value) == (
        "no backup a restore could choose has a data file to damage: "
        "b2: no data file to damage (database ca3 had no documents when it was taken; collections: events); "
        "b1: no data file to damage (database ca3 had no documents when it was taken; collections: none)")
    assert fault.active is None and fault.listing() == []
    store.verify("b1"), store.verify("b2")


def test_no_backup_before_the_target_point_is_refused_naming_the_point(store):
    make_backup(store, "b1", (300, 1))
    with pytest.raises(NothingToCorrupt, match=r"no backup was taken before the target point \{'epoch': 0, 'ts': \[250, 0\]"):
        CorruptionFault(store.backups_dir).apply(store, TargetPoint(0, (250, 0)), "flip", 60)


def test_a_second_corruption_replaces_the_first_and_picks_the_same_backup(store):
    make_backup(store, "b1", (100, 1))
    make_backup(store, "b2", (200, 1))
    fault = CorruptionFault(store.backups_dir)
    assert fault.apply(store, NOW, "flip", 60)["backup_id"] == "b2"
    # The first corruption is healed before choosing, so it is not passed over as "already corrupt".
    applied = fault.apply(store, NOW, "truncate", 60)
    assert (applied["backup_id"], applied["passed_over"]) == ("b2", [])
    fault.heal()
    store.verify("b1"), store.verify("b2")


@pytest.mark.parametrize("body, message", [
    ({"mode": "shred", "ttl_seconds": 5}, "mode: 'shred' is not one of truncate, flip"),
    ({"mode": "flip"}, "ttl_seconds: must be > 0"),
    ({"mode": "flip", "ttl_seconds": 5, "when": 1}, "when: unknown field"),
    ([], "body must be a JSON object"),
])
def test_bad_corruption_requests_name_the_field(body, message):
    with pytest.raises(FaultRequestError, match=message):
        parse(body)


def test_manifest_is_plain_json_a_user_can_read(store):
    make_backup(store, "b1", (100, 1))
    manifest = json.loads((store.path("b1") / "manifest.json").read_text())
    assert set(manifest) >= {"id", "position", "end_position", "epoch", "kafka_offsets", "files", "bytes"}


def test_backups_of_a_damaged_database_are_passed_over_once_it_is_restored(store):
    """A snapshot dumped between a drop and its restore holds the damage: restoring it with the change log gets the
    data back but not the indexes the restore had built, so automatic choices and the corruption fault skip it."""
    make_backup(store, "b1", (100, 1))  # before the drop at (150, 0)
    make_backup(store, "b2", (160, 1))  # of the dropped database
    make_backup(store, "b3", (400, 1))  # after the restore
    drop = {"epoch": 0, "ts": [150, 0], "wall": 150.0}
    assert [b for b in store.ids() if taken_during_disaster(store.manifest(b), drop)] == ["b2", "b3"]
    recovered = {**drop, "recovered_by": "b1", "damaged_backups": ["b2"]}
    store.save_disasters([recovered])
    assert damaged_backups(store.disasters()) == {"b2"}
    (store.path("b3") / "events.bson").write_bytes(b"short")
    choice = choose(store, TargetPoint(0, (500, 0)))
    assert choice.manifest["id"] == "b1", choice
    assert [f.split(":")[0] for f in choice.fallbacks] == ["b3"]
    assert choose(store, TargetPoint(0, (500, 0)), "b2").manifest["id"] == "b2"  # named: the user's choice
    store.save_disasters([{**recovered, "recovered_by": None}])
    assert damaged_backups(store.disasters()) == set()


def test_a_wiped_servers_backups_are_damaged_by_its_lost_history(store):
    make_backup(store, "old", (100, 1), epoch=0)
    make_backup(store, "wiped", (5, 1), epoch=1)
    lost = {"epoch": 0, "ts": [2**31, 0], "wall": 120.0}
    assert [b for b in store.ids() if taken_during_disaster(store.manifest(b), lost)] == ["wiped"]


def test_the_corruption_fault_passes_over_a_damaged_backup_as_a_restore_does(store):
    make_backup(store, "b1", (100, 1))
    make_backup(store, "b2", (160, 1))
    store.save_disasters([{"epoch": 0, "ts": [150, 0], "recovered_by": "b1", "damaged_backups": ["b2"]}])
    fault = CorruptionFault(store.backups_dir)
    applied = fault.apply(store, TargetPoint(0, (500, 0)), "truncate", 60)
    assert (applied["backup_id"], applied["passed_over"]) == ("b1", []), applied
    fault.heal()
