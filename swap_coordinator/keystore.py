"""Keys by name from a keystore directory (NAME.pem): never raw keys on a command line."""

from __future__ import annotations

from pathlib import Path

from rollup_client.protocol import keys
from rollup_client.protocol.errors import InvalidArgument, NotFound


class Keystore:
    """A directory of PKCS8 PEM files, one per name."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def path(self, name: str) -> Path:
        if self.root is None:
            raise InvalidArgument(f"key {name!r}: no keystore given (--keys DIR or TANDEM_KEYS)")
        if not name or "/" in name or name.startswith("."):
            raise InvalidArgument(f"key name {name!r} is not a plain file name")
        return self.root / f"{name}.pem"

    def load(self, name: str) -> keys.SigningKey:
        path = self.path(name)
        if not path.exists():
            raise NotFound(f"no key {name!r} in the keystore ({path})")
        return keys.SigningKey.load(path)

    def public(self, party: str) -> bytes:
        """A party given as 64 hex digits (a public key) or a keystore name."""
        if len(party) == 64:
            try:
                return bytes.fromhex(party)
            except ValueError:
                pass
        return self.load(party).public

    def all(self) -> dict[bytes, tuple[str, keys.SigningKey]]:
        """Every key in the store by public key (for naming parties and signing)."""
        if self.root is None or not self.root.is_dir():
            return {}
        out = {}
        for p in sorted(self.root.glob("*.pem")):
            try:
                k = keys.SigningKey.load(p)
            except InvalidArgument:
                continue
            out[k.public] = (p.stem, k)
        return out

    def names(self) -> dict[bytes, str]:
        return {pub: name for pub, (name, _) in self.all().items()}
