"""Reading the text of data files: UTF-8, or an error that says how to convert."""

from pathlib import Path

from lmforge.errors import DataError


def _likely_encoding(data: bytes) -> str:
    """A guess at what a file that is not UTF-8 was written in, for the conversion hint."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16"
    for encoding in ("gb18030", "cp1252"):  # the two seen most: Chinese Windows and Western Windows
        try:
            data.decode(encoding)
            return encoding.upper()
        except UnicodeDecodeError:
            continue
    return "latin-1"


def read_text(path: Path) -> str:
    """A data file's text: UTF-8 (a leading byte-order mark is dropped). Anything else fails with the file,
    the byte offset and line of the first undecodable byte, and the command that converts it."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        encoding = _likely_encoding(data)
        raise DataError(
            f"{path} is not UTF-8: byte {err.start} (line {line}) is {data[err.start:err.start + 1]!r}; it looks "
            f"like {encoding}. Convert it: iconv -f {encoding} -t UTF-8 '{path}' > converted{path.suffix}") from None
