#!/usr/bin/env python3
"""Seeds the converters' fuzz corpus (fuzz/corpus/convert) from the test fixtures.

usage: fuzz/seed_convert.py

Each seed is what fuzz/sources_harness.rs reads: one byte choosing the source (its index in
SOURCES, read from the harness itself so there is one list), then the source's files joined
by NUL bytes. Besides each fixture as it is, a few cut and shuffled variants are written, so
that the corpus holds exports that convert and exports that are refused."""
import hashlib
import os
import re

ROOT = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(ROOT, "..", "crates", "sources", "tests", "fixtures")
OUT = os.path.join(ROOT, "corpus", "convert")


def sources():
    text = open(os.path.join(ROOT, "sources_harness.rs")).read()
    block = text[text.index("const SOURCES"):text.index("];", text.index("const SOURCES"))]
    found = []
    for m in re.finditer(r'\(\s*"([a-z]+)",\s*&\[(.*?)\],?\s*\)', block, re.S):
        found.append((m.group(1), re.findall(r'"([^"]+)"', m.group(2))))
    return found


def find(folder, name):
    """The fixture file for a harness file name (with or without _data, any case)."""
    if not os.path.isdir(folder):
        return None
    want = {name.lower(), name.lower().replace("_data.", "."), name.lower().replace("zuora_", "")}
    for f in sorted(os.listdir(folder)):
        if f.lower() in want or f.lower().replace("_data.", ".") in want:
            return os.path.join(folder, f)
    return None


def write(seed):
    os.makedirs(OUT, exist_ok=True)
    name = hashlib.sha1(seed).hexdigest()
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(seed)


def main():
    table = sources()
    folders = []
    for base, dirs, _ in os.walk(FIXTURES):
        folders.append(base)
    n = 0
    for index, (source, names) in enumerate(table):
        if source == "map":
            for toml in sorted(os.listdir(os.path.join(FIXTURES, "mapping"))):
                if not toml.endswith(".toml"):
                    continue
                folder = os.path.join(FIXTURES, "mapping")
                data = [open(os.path.join(folder, toml), "rb").read()]
                for csv in sorted(os.listdir(folder)):
                    if csv.endswith(".csv"):
                        data.append(open(os.path.join(folder, csv), "rb").read())
                        break
                write(bytes([index]) + b"\0".join(data))
                n += 1
            continue
        for folder in folders:
            files = [find(folder, name) for name in names]
            if not files[0]:
                continue
            parts = [open(f, "rb").read() if f else b"" for f in files]
            while parts and not parts[-1]:
                parts.pop()
            seed = bytes([index]) + b"\0".join(parts)
            write(seed)
            # Variants: the first file cut in half; the files in reverse order.
            first = parts[0]
            write(bytes([index]) + b"\0".join([first[: len(first) // 2]] + parts[1:]))
            write(bytes([index]) + b"\0".join(reversed(parts)))
            n += 3
    print(f"{n} seeds written to {OUT}")


if __name__ == "__main__":
    main()
