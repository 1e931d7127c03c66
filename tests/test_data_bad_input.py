"""Malformed rows and files: clear errors with file, line, column and value, or counted skips."""

import json

import numpy as np
import pytest

from data.pipeline import load_split
from data.prepare import prepare
from data.textio import BadRowError, InputFileError

BAD_LINE = 57  # 1-based line that the cases below corrupt
SAMPLE_LINES = 200


@pytest.fixture(scope="module")
def criteo_lines(shared_data):
    with open(shared_data / "criteo" / "criteo_train_head10k.txt") as stream:
        return [next(stream).rstrip("\n") for _ in range(SAMPLE_LINES)]


@pytest.fixture(scope="module")
def avazu_lines(shared_data):
    with open(shared_data / "avazu" / "avazu_train_head9k.csv") as stream:
        return [next(stream).rstrip("\n") for _ in range(SAMPLE_LINES)]


def replace_field(line: str, separator: str, index: int, value: str) -> str:
    fields = line.split(separator)
    fields[index] = value
    return separator.join(fields)


def write(path, lines, newline="\n", prefix=b""):
    path.write_bytes(prefix + "".join(line + newline for line in lines).encode("utf-8"))
    return path


# (name, column index in the Criteo line, new value or None to drop the field, reason, column name)
CRITEO_CASES = [
    ("wrong_field_count", 20, None, "wrong_field_count", "-"),
    ("not_integer", 3, "12a", "not_integer", "I3"),
    ("float_numeric", 5, "1.5", "not_integer", "I5"),
    ("plus_sign", 7, "+5", "not_integer", "I7"),
    ("too_long_integer", 9, "1" * 25, "not_integer", "I9"),
    ("label_not_binary", 0, "2", "invalid_label", "label"),
    ("stray_quote", 18, '"05db9164', "stray_quote", "C5"),
    ("nul_byte", 15, "68fd\x001e", "nul_byte", "C2"),
]


def corrupt(lines, column, value):
    lines = list(lines)
    fields = lines[BAD_LINE - 1].split("\t")
    if value is None:
        del fields[column]
    else:
        fields[column] = value
    lines[BAD_LINE - 1] = "\t".join(fields)
    return lines


@pytest.mark.parametrize("name,column,value,reason,column_name", CRITEO_CASES)
def test_bad_row_stops_with_location(tmp_path, criteo_lines, name, column, value, reason, column_name):
    path = write(tmp_path / f"{name}.txt", corrupt(criteo_lines, column, value))
    output = tmp_path / "out"
    with pytest.raises(BadRowError) as error:
        prepare("criteo", [path], output, min_count=1)
    message = str(error.value)
    assert f"{path}:{BAD_LINE}" in message
    assert f"column {column_name}" in message
    assert reason in message
    assert "--on_bad_row=skip" in message
    if value is not None:
        assert repr(value)[1:-1][:10] in message
    assert error.value.bad_row.line == BAD_LINE
    assert not output.exists()


@pytest.mark.parametrize("name,column,value,reason,column_name", CRITEO_CASES)
def test_bad_row_skipped_and_counted(tmp_path, criteo_lines, name, column, value, reason, column_name):
    path = write(tmp_path / f"{name}.txt", corrupt(criteo_lines, column, value))
    metadata = prepare("criteo", [path], tmp_path / "out", min_count=1, on_bad_row="skip")
    assert metadata["rows_read"] == SAMPLE_LINES
    assert metadata["rows_rejected"] == 1
    assert metadata["bad_rows"]["by_reason"] == {reason: 1}
    example = metadata["bad_rows"]["examples"][0]
    assert example["line"] == BAD_LINE
    assert example["column"] == column_name
    assert example["file"] == str(path)
    rows = sum(split["rows"] for split in metadata["splits"].values())
    assert rows + metadata["rows_rejected"] == metadata["rows_read"]
    on_disk = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert on_disk["bad_rows"] == metadata["bad_rows"]


def test_avazu_bad_hour_is_reported(tmp_path, avazu_lines):
    lines = list(avazu_lines)
    lines[BAD_LINE - 1] = replace_field(lines[BAD_LINE - 1], ",", 2, "14133100")
    path = write(tmp_path / "train.csv", lines)
    with pytest.raises(BadRowError) as error:
        prepare("avazu", [path], tmp_path / "out", min_count=1)
    assert f"{path}:{BAD_LINE}" in str(error.value)
    assert "column hour" in str(error.value)
    assert "14133100" in str(error.value)


def prepared_records(directory):
    return {
        split: np.sort(np.concatenate([ids, labels[:, None].astype(np.int32)], axis=1), axis=0)
        for split in ("train", "validation", "test")
        for ids, labels in [load_split(directory, split)]
    }


@pytest.mark.parametrize("variant", ["crlf", "bom", "trailing_separator", "no_final_newline", "blank_lines"])
def test_tolerated_variants_parse_like_clean_file(tmp_path, criteo_lines, variant):
    clean = write(tmp_path / "clean.txt", criteo_lines)
    lines = list(criteo_lines)
    if variant == "crlf":
        path = write(tmp_path / "v.txt", lines, newline="\r\n")
    elif variant == "bom":
        path = write(tmp_path / "v.txt", lines, prefix=b"\xef\xbb\xbf")
    elif variant == "trailing_separator":
        path = write(tmp_path / "v.txt", [line + "\t" if i % 3 == 0 else line for i, line in enumerate(lines)])
    elif variant == "no_final_newline":
        path = tmp_path / "v.txt"
        path.write_text("\n".join(lines))
    else:
        # Blank lines are dropped and counted. They go last, so every row keeps its line
        # number and therefore its split.
        path = write(tmp_path / "v.txt", lines + ["", ""])
    expected = prepare("criteo", [clean], tmp_path / "clean_out", min_count=2)
    actual = prepare("criteo", [path], tmp_path / "out", min_count=2)
    assert actual["rows_rejected"] == 0
    assert actual["rows_read"] == SAMPLE_LINES
    assert actual["vocabulary_sizes"] == expected["vocabulary_sizes"]
    assert actual["splits"]["train"]["rows"] == expected["splits"]["train"]["rows"]
    if variant == "blank_lines":
        assert actual["blank_lines_skipped"] == 2
    clean_records = prepared_records(tmp_path / "clean_out")
    for split, records in prepared_records(tmp_path / "out").items():
        assert np.array_equal(records, clean_records[split]), split


def test_empty_file_is_rejected(tmp_path):
    path = tmp_path / "train.txt"
    path.write_bytes(b"")
    with pytest.raises(InputFileError, match="empty"):
        prepare("criteo", [path], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_header_only_file_is_rejected(tmp_path, avazu_lines):
    path = write(tmp_path / "train.csv", avazu_lines[:1])
    with pytest.raises(InputFileError, match="header line but no data rows"):
        prepare("avazu", [path], tmp_path / "out")


def test_missing_file_is_rejected(tmp_path):
    with pytest.raises(InputFileError, match="not found") as error:
        prepare("criteo", [tmp_path / "nope.txt"], tmp_path / "out")
    assert "nope.txt" in str(error.value)


def test_avazu_file_given_as_criteo(tmp_path, avazu_lines):
    path = write(tmp_path / "train.csv", avazu_lines)
    with pytest.raises(InputFileError) as error:
        prepare("criteo", [path], tmp_path / "out")
    assert "not in the criteo format" in str(error.value)
    assert "--dataset avazu" in str(error.value)


def test_criteo_file_given_as_avazu(tmp_path, criteo_lines):
    path = write(tmp_path / "train.txt", criteo_lines)
    with pytest.raises(InputFileError) as error:
        prepare("avazu", [path], tmp_path / "out")
    assert "not in the avazu format" in str(error.value)
    assert "--dataset criteo" in str(error.value)


def test_failed_run_leaves_no_output(tmp_path, criteo_lines):
    lines = list(criteo_lines)
    lines[-1] = replace_field(lines[-1], "\t", 0, "x")
    path = write(tmp_path / "train.txt", lines)
    output = tmp_path / "prepared" / "criteo"
    # Small blocks: the bad row is found after several chunks were counted.
    with pytest.raises(BadRowError):
        prepare("criteo", [path], output, block_bytes=4_096)
    assert not output.exists()
    assert list((tmp_path / "prepared").iterdir()) == []


def test_existing_output_is_kept_unless_overwrite(tmp_path, criteo_lines):
    path = write(tmp_path / "train.txt", criteo_lines)
    output = tmp_path / "out"
    first = prepare("criteo", [path], output, min_count=1)
    with pytest.raises(FileExistsError):
        prepare("criteo", [path], output, min_count=1)
    second = prepare("criteo", [path], output, min_count=3, overwrite=True)
    assert second["min_count"] == 3
    assert json.loads((output / "metadata.json").read_text())["min_count"] == 3
    assert first["rows_read"] == second["rows_read"]


def test_ipinyou_indexed_bad_rows(shared_data, tmp_path):
    folder = shared_data / "ipinyou"
    lines = (folder / "train.fm.txt").read_text().splitlines()[:100]
    # Tokens: click, then the indices of weekday, hour, useragent, IP, ... in that order.
    tokens = lines[BAD_LINE - 1].split(" ")
    unknown = " ".join(tokens[:3] + ["99999999:1"] + tokens[4:])
    duplicated = " ".join(tokens[:3] + [tokens[2]] + tokens[4:])
    for name, line, column, value in [
        ("unknown_index", unknown, "index3", "99999999:1"),
        ("duplicated_field", duplicated, "-", "missing: useragent; repeated: hour"),
    ]:
        corrupted = list(lines)
        corrupted[BAD_LINE - 1] = line
        path = tmp_path / name / "train.fm.txt"
        path.parent.mkdir()
        path.write_text("\n".join(corrupted) + "\n")
        with pytest.raises(BadRowError) as error:
            prepare("ipinyou", [path], tmp_path / name / "out", featindex=folder / "featindex.fm.txt")
        assert error.value.bad_row.line == BAD_LINE
        assert error.value.bad_row.column == column
        assert value in error.value.bad_row.value
        assert f"{path}:{BAD_LINE}" in str(error.value)
