"""Readers of Criteo, Avazu and iPinYou on the real samples, against plain-Python oracles."""

import gzip
import math

import numpy as np
import pyarrow as pa
import pytest

from data import avazu, criteo, ipinyou, textio


def read_all(reader, path, **kwargs):
    chunks = list(reader.read(path, **kwargs))
    keys = np.concatenate([chunk.keys for chunk in chunks])
    labels = np.concatenate([chunk.labels for chunk in chunks])
    lines = np.concatenate([chunk.line_numbers for chunk in chunks])
    bad_rows = [row for chunk in chunks for row in chunk.bad_rows]
    return keys, labels, lines, bad_rows


def criteo_oracle_keys(line: str) -> tuple[int, list[int]]:
    """Label and keys of one Criteo line, computed with math and python_string_key."""
    values = line.rstrip("\n").split("\t")
    keys = []
    for raw in values[1:14]:
        if raw == "":
            keys.append(criteo.BLANK_NUMERIC_KEY)
        else:
            value = int(raw)
            keys.append(int(math.floor(math.log(value) ** 2)) if value > 2 else value)
    keys.extend(textio.python_string_key(raw) for raw in values[14:])
    return int(values[0]), keys


def test_criteo_reader_matches_oracle(shared_data):
    path = shared_data / "criteo" / "criteo_train_head10k.txt"
    # Small blocks, so the sample is read as many chunks.
    keys, labels, lines, bad_rows = read_all(criteo.CriteoReader(), path, block_bytes=100_000)
    assert keys.shape == (10_000, 39)
    assert bad_rows == []
    assert np.array_equal(lines, np.arange(1, 10_001))
    assert labels.sum() == 2_182
    with open(path) as stream:
        for index, line in enumerate(stream):
            if index % 97:
                continue
            label, expected = criteo_oracle_keys(line)
            assert labels[index] == label
            assert keys[index].tolist() == expected, f"line {index + 1}"


def test_criteo_reader_reads_gzip(shared_data, tmp_path):
    path = shared_data / "criteo" / "criteo_train_head10k.txt"
    compressed = tmp_path / "train.txt.gz"
    compressed.write_bytes(gzip.compress(path.read_bytes()))
    plain_keys, plain_labels, _, _ = read_all(criteo.CriteoReader(), path)
    gzip_keys, gzip_labels, _, _ = read_all(criteo.CriteoReader(), compressed, block_bytes=50_000)
    assert np.array_equal(plain_keys, gzip_keys)
    assert np.array_equal(plain_labels, gzip_labels)


def test_criteo_value_text_from_keys(shared_data):
    path = shared_data / "criteo" / "criteo_train_head10k.txt"
    reader = criteo.CriteoReader()
    chunk = next(iter(reader.read(path)))
    first = open(path).readline().rstrip("\n").split("\t")
    # C1 of line 1 is an 8-digit hash: its key turns back into its text.
    assert reader.key_text(13, int(chunk.keys[0, 13])) == first[14]
    assert chunk.value_names(13, np.array([0])) == [first[14]]
    # I5 of line 1 is 1382: bucket floor(ln(1382)^2) = 52.
    assert reader.key_text(4, int(chunk.keys[0, 4])) == str(math.floor(math.log(1382) ** 2))


def test_avazu_reader_fields(shared_data):
    path = shared_data / "avazu" / "avazu_train_head9k.csv"
    keys, labels, lines, bad_rows = read_all(avazu.AvazuReader(), path, block_bytes=200_000)
    assert keys.shape == (8_999, 21)
    assert bad_rows == []
    assert lines[0] == 2  # line 1 is the header
    assert labels.sum() == 1_563
    # Every row has hour 14102100: 2014-10-21 00:00, a Tuesday.
    assert np.all(keys[:, 0] == 0)
    assert np.all(keys[:, 1] == 1)
    with open(path) as stream:
        header = stream.readline().rstrip("\n").split(",")
        rows = [line.rstrip("\n").split(",") for line in stream]
    for offset, name in enumerate(avazu.COPIED_COLUMNS):
        column = header.index(name)
        expected = [textio.python_string_key(row[column]) for row in rows[:50]]
        assert keys[:50, 2 + offset].tolist() == expected, name


def test_avazu_field_choice():
    names = [field.name for field in avazu.FIELDS]
    assert len(names) == 21
    assert names[:2] == ["hour_of_day", "weekday"]
    for dropped in ("id", "click", "hour", "device_id", "device_ip"):
        assert dropped not in names


def test_split_hour_against_datetime():
    import datetime

    hours = np.array([14102100, 14102623, 14103015, 16022912, 14010100])
    hour_of_day, weekday, valid = avazu.split_hour(hours)
    assert valid.all()
    for value, hour, day in zip(hours, hour_of_day, weekday):
        text = str(value)
        date = datetime.date(2000 + int(text[:2]), int(text[2:4]), int(text[4:6]))
        assert day == date.weekday()
        assert hour == int(text[6:])
    _, _, valid = avazu.split_hour(np.array([14133100, 14023000, 14102124, -1]))
    assert not valid.any()


def test_ipinyou_indexed_and_decoded_forms_agree(shared_data):
    folder = shared_data / "ipinyou"
    for split in ("train", "test"):
        indexed_reader = ipinyou.reader_for(folder / f"{split}.fm.txt")
        decoded_reader = ipinyou.reader_for(folder / f"{split}.decoded.tsv")
        assert isinstance(indexed_reader, ipinyou.IPinYouIndexedReader)
        assert isinstance(decoded_reader, ipinyou.IPinYouTextReader)
        indexed = read_all(indexed_reader, folder / f"{split}.fm.txt")
        decoded = read_all(decoded_reader, folder / f"{split}.decoded.tsv")
        assert indexed[0].shape[1] == 16
        assert np.array_equal(indexed[0], decoded[0])
        assert np.array_equal(indexed[1], decoded[1])
    assert read_all(ipinyou.reader_for(folder / "train.fm.txt"), folder / "train.fm.txt")[0].shape[0] == 26_773


def test_ipinyou_decoded_values(shared_data):
    path = shared_data / "ipinyou" / "train.decoded.tsv"
    keys, labels, _, _ = read_all(ipinyou.IPinYouTextReader(), path)
    with open(path) as stream:
        header = stream.readline().rstrip("\n").split("\t")
        first = stream.readline().rstrip("\n").split("\t")
    for index, name in enumerate(ipinyou.FIELD_NAMES):
        assert keys[0, index] == textio.python_string_key(first[header.index(name)]), name
    assert labels.sum() == 255


def test_ipinyou_log_form_transforms(tmp_path):
    columns = ["click", "weekday", "hour", "bidid", "timestamp", "logtype", "ipinyouid", "useragent",
               "IP", "region", "city", "adexchange", "domain", "url", "urlid", "slotid", "slotwidth",
               "slotheight", "slotvisibility", "slotformat", "slotprice", "creative", "bidprice",
               "payprice", "keypage", "advertiser", "usertag"]
    row = dict.fromkeys(columns, "x")
    row.update(click="1", weekday="3", hour="07", IP="1.2.3.*", slotprice="55",
               useragent="Mozilla/5.0 (Windows NT 6.1) AppleWebKit Chrome/28.0 Safari/537")
    path = tmp_path / "train.log.txt"
    path.write_text("\t".join(columns) + "\n" + "\t".join(row[name] for name in columns) + "\n")
    reader = ipinyou.reader_for(path)
    assert reader.is_log(str(path))
    keys, labels, _, _ = read_all(reader, path)
    position = {name: index for index, name in enumerate(ipinyou.FIELD_NAMES)}
    assert keys[0, position["useragent"]] == textio.python_string_key("windows_chrome")
    assert keys[0, position["slotprice"]] == textio.python_string_key("51-100")
    assert keys[0, position["IP"]] == textio.python_string_key("1.2.3.*")
    assert labels.tolist() == [1]


def test_slotprice_buckets():
    prices = np.array([0, 1, 10, 11, 50, 51, 100, 101, 3000])
    expected = ["0", "1-10", "1-10", "11-50", "11-50", "51-100", "51-100", "101+", "101+"]
    assert ipinyou.bucket_slotprice(prices).tolist() == expected


def test_string_keys_do_not_depend_on_neighbours():
    values = [b"", b"a", b"12345678", b"123456789", b"6e9c0e0bc0e584838ad187cad9852248", b"60.22.69.*"]
    together = textio.string_keys(pa.array(values, pa.binary()))
    for value, key in zip(values, together):
        alone = textio.string_keys(pa.array([value], pa.binary()))[0]
        assert key == alone
        assert key == textio.python_string_key(value.decode())
    assert len(set(together.tolist())) == len(values)
    # An 8-byte value is its own key.
    assert together[2] == int.from_bytes(b"12345678", "little", signed=True)
