"""Dataset: a table of examples in memory, with the part of Hugging Face `datasets` that fine-tuning uses.

Rows are plain dicts ({"text": ..., "label": ...}); `dataset[i]` is one row, `dataset["text"]` one column.
Everything that changes the data (map, filter, select, shuffle, train_test_split) returns a new Dataset
and leaves the old one alone, as `datasets` does, so a cell of a notebook can be run twice.

    ds = load_dataset("json", data_files="train.jsonl")["train"]    # or Dataset.from_jsonl("train.jsonl")
    ds = ds.map(lambda ex: tokenizer(ex["text"]), remove_columns=["text"])
    splits = ds.train_test_split(test_size=0.1, seed=0)              # {"train": ..., "test": ...}
"""
import csv
import json
import math
from pathlib import Path

import numpy as np


class Dataset:
    def __init__(self, rows):
        self._rows = [dict(r) for r in rows]

    # -- construction --------------------------------------------------------------------------------------
    @classmethod
    def from_list(cls, rows):
        if not all(isinstance(r, dict) for r in rows):
            raise TypeError("Dataset.from_list expects a list of dicts, one per example.")
        return cls(rows)

    @classmethod
    def from_dict(cls, columns):
        """{"text": [...], "label": [...]}: columns of equal length."""
        lengths = {name: len(values) for name, values in columns.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"all columns must have the same length; got {lengths}.")
        n = next(iter(lengths.values()), 0)
        return cls([{name: columns[name][i] for name in columns} for i in range(n)])

    @classmethod
    def from_jsonl(cls, path):
        """One JSON object a line; blank lines are skipped. A bad line is a ValueError naming it."""
        rows = []
        with open(path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except (json.JSONDecodeError, RecursionError) as e:
                    raise ValueError(f"{path}, line {line_no}: not valid JSON ({getattr(e, 'msg', e)}).") from None
                if not isinstance(row, dict):
                    raise ValueError(f"{path}, line {line_no}: a JSON {type(row).__name__}, not an object "
                                     "({\"column\": value, ...}).")
                rows.append(row)
        return cls(rows)

    @classmethod
    def from_json(cls, path):
        """A JSON array of objects, or JSON Lines (one object a line) as `datasets` accepts both."""
        text = Path(path).read_text(encoding="utf-8")
        if text.lstrip().startswith("["):
            try:
                rows = json.loads(text)
            except (json.JSONDecodeError, RecursionError) as e:
                raise ValueError(f"{path}: not valid JSON ({getattr(e, 'msg', e)}).") from None
            bad = next((i for i, r in enumerate(rows) if not isinstance(r, dict)), None) if isinstance(rows, list) else 0
            if bad is not None:
                raise ValueError(f"{path}: item {bad} of the array is not an object ({{\"column\": value, ...}}).")
            return cls(rows)
        return cls.from_jsonl(path)

    @classmethod
    def from_csv(cls, path, delimiter=","):
        """A CSV file with a header row. Columns whose every value reads as a number become ints or floats
        (as pandas infers them for `datasets`); everything else stays text. A row with fewer or more
        fields than the header is a ValueError naming its line (a missing value is not "None")."""
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f, delimiter=delimiter)
            try:
                header = next(reader, None)
                if header is None:
                    return cls([])
                if len(set(header)) != len(header) or any(not h.strip() for h in header):
                    raise ValueError(f"{path}, line 1: the header row {header} has empty or repeated column names.")
                rows = []
                for fields in reader:
                    if not fields:
                        continue  # a blank line
                    if len(fields) != len(header):
                        raise ValueError(f"{path}, line {reader.line_num}: {len(fields)} fields, but the header has "
                                         f"{len(header)} ({', '.join(header)}); fill in or remove the missing values.")
                    rows.append(dict(zip(header, fields)))
            except csv.Error as e:
                raise ValueError(f"{path}, line {reader.line_num}: not valid CSV ({e}).") from None
        for name in header:
            values = [r[name] for r in rows]
            for convert in (int, float):
                try:
                    converted = [convert(v) for v in values]
                except (TypeError, ValueError):
                    continue
                for r, v in zip(rows, converted):
                    r[name] = v
                break
        return cls(rows)

    # -- reading -------------------------------------------------------------------------------------------
    @property
    def column_names(self):
        names = {}
        for r in self._rows:
            names.update(dict.fromkeys(r))
        return list(names)

    @property
    def num_rows(self):
        return len(self._rows)

    def __len__(self):
        return len(self._rows)

    def __iter__(self):
        return iter(self._rows)

    def __getitem__(self, key):
        if isinstance(key, str):
            if key not in self.column_names:
                raise KeyError(f"no column {key!r}; columns: {self.column_names}")
            return [r.get(key) for r in self._rows]
        if isinstance(key, slice):  # a batch: columns of lists, as `datasets`
            return _to_columns(self._rows[key], self.column_names)
        return self._rows[int(key)]

    def to_list(self):
        return [dict(r) for r in self._rows]

    def to_dict(self):
        return _to_columns(self._rows, self.column_names)

    def __repr__(self):
        return f"Dataset({{\n    features: {self.column_names},\n    num_rows: {len(self)}\n}})"

    # -- transforming --------------------------------------------------------------------------------------
    def map(self, function, batched=False, batch_size=1000, remove_columns=None, with_indices=False):
        """New rows = old rows updated with what `function` returns (a dict; its keys become columns).

        batched=True: `function` takes {column: [values]} for up to batch_size rows and returns the same
        shape; it may return more or fewer rows than it got (e.g. splitting long texts into chunks), in
        which case the old columns are dropped, since they no longer line up."""
        remove = set([remove_columns] if isinstance(remove_columns, str) else (remove_columns or []))
        unknown = remove - set(self.column_names)
        if unknown:
            raise ValueError(f"remove_columns {sorted(unknown)} are not columns of the dataset {self.column_names}.")
        out = []
        if not batched:
            for i, row in enumerate(self._rows):
                update = function(row, i) if with_indices else function(row)
                new = {k: v for k, v in row.items() if k not in remove}
                new.update(dict(update) if update is not None else {})
                out.append(new)
            return Dataset(out)
        for start in range(0, len(self), batch_size):
            chunk = self._rows[start:start + batch_size]
            columns = _to_columns(chunk, self.column_names)
            indices = list(range(start, start + len(chunk)))
            update = dict(function(columns, indices) if with_indices else function(columns))
            n = {len(v) for v in update.values()}
            if len(n) > 1:
                raise ValueError(f"map(batched=True): the function returned columns of different lengths {n}.")
            n = n.pop() if n else len(chunk)
            kept = [{k: v for k, v in r.items() if k not in remove} for r in chunk] if n == len(chunk) else [{}] * n
            out += [{**kept[i], **{k: v[i] for k, v in update.items()}} for i in range(n)]
        return Dataset(out)

    def filter(self, function):
        return Dataset([r for r in self._rows if function(r)])

    def select(self, indices):
        return Dataset([self._rows[int(i)] for i in indices])

    def shuffle(self, seed=None):
        return self.select(np.random.default_rng(seed).permutation(len(self)))

    def remove_columns(self, column_names):
        names = [column_names] if isinstance(column_names, str) else list(column_names)
        return Dataset([{k: v for k, v in r.items() if k not in names} for r in self._rows])

    def rename_column(self, original_column_name, new_column_name):
        rename = {original_column_name: new_column_name}
        return Dataset([{rename.get(k, k): v for k, v in r.items()} for r in self._rows])

    def train_test_split(self, test_size=None, train_size=None, shuffle=True, seed=None):
        """{"train": ..., "test": ...}. Sizes are fractions (0.1) or counts (100); as `datasets`, the test
        split takes ceil(test_size * n) rows and the train split the rest."""
        n = len(self)
        if test_size is None and train_size is None:
            test_size = 0.25
        n_test = _split_count("test_size", test_size, n, math.ceil) if test_size is not None else None
        n_train = _split_count("train_size", train_size, n, math.floor) if train_size is not None else None
        n_test = n - n_train if n_test is None else n_test
        n_train = n - n_test if n_train is None else n_train
        if n_train + n_test > n or n_train == 0 or n_test == 0:
            raise ValueError(f"train_size={train_size}, test_size={test_size} on {n} rows gives {n_train} train "
                             f"and {n_test} test rows; both must be at least 1 and together at most {n}.")
        order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
        return DatasetDict(train=self.select(order[:n_train]), test=self.select(order[n_train:n_train + n_test]))


class DatasetDict(dict):
    """Named splits ({"train": Dataset, "test": Dataset}); map/filter apply to every split."""

    def map(self, function, **kwargs):
        return DatasetDict({k: v.map(function, **kwargs) for k, v in self.items()})

    def filter(self, function):
        return DatasetDict({k: v.filter(function) for k, v in self.items()})

    @property
    def column_names(self):
        return {k: v.column_names for k, v in self.items()}

    def __repr__(self):  # as datasets prints it: each split's columns and size
        splits = "".join(f"    {k}: Dataset({{\n        features: {v.column_names},\n        num_rows: {len(v)}\n"
                         f"    }})\n" for k, v in self.items())
        return f"DatasetDict({{\n{splits}}})"


def load_dataset(path, data_files=None, split=None):
    """`datasets.load_dataset` for local files: path is "json" or "csv"; data_files a path, a list of
    paths (concatenated), or {"train": ..., "test": ...}. Returns a DatasetDict, or one Dataset with split=."""
    readers = {"json": Dataset.from_json, "csv": Dataset.from_csv}
    if path not in readers:
        raise ValueError(f"load_dataset: path={path!r} is not supported; choose 'json' or 'csv' with data_files=.")
    if data_files is None:
        raise ValueError("load_dataset needs data_files= (a path, a list of paths, or {split: paths}).")
    if not isinstance(data_files, dict):
        data_files = {"train": data_files}
    splits = DatasetDict()
    for name, files in data_files.items():
        files = [files] if isinstance(files, (str, Path)) else list(files)
        rows = [r for f in files for r in readers[path](f)]
        splits[name] = Dataset(rows)
    if split is None:
        return splits
    if split not in splits:
        raise ValueError(f"split {split!r} not found; splits: {list(splits)}.")
    return splits[split]


def _to_columns(rows, names):
    return {name: [r.get(name) for r in rows] for name in names}


def _split_count(name, size, n, rounding):
    if isinstance(size, float) and 0.0 < size < 1.0:
        return int(rounding(size * n))
    if isinstance(size, int) and not isinstance(size, bool) and 0 < size < n:
        return size
    raise ValueError(f"{name} must be a fraction in (0, 1) or a row count in [1, {n - 1}]; got {size!r}.")
