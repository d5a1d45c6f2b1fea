"""Regions a deployer can be domiciled in: ISO 3166-1 country codes, plus the groupings licences use.

The codes come from ``iso3166-1.tsv`` (shipped with the package: no dependency on pycountry). A
licence's regional carve-out names countries or the groupings below; ``--region`` must be one of
them so that a typo cannot silently skip a carve-out.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from modeltrace.errors import LicenseError

#: European Union member states (ISO 3166-1 alpha-2), as of 2020 (after the United Kingdom left).
EU_MEMBERS = frozenset(
    {"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "IE", "IT"}
    | {"LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"}
)
#: Groupings a licence may name instead of countries, with their members.
GROUPS = {"EU": EU_MEMBERS}
#: Common spellings that are not ISO codes: "UK" is reserved by ISO for the United Kingdom (GB).
ALIASES = {"UK": "GB", "EL": "GR"}


@cache
def _countries() -> dict[str, str]:
    """alpha-2 -> alpha-2 and alpha-3 -> alpha-2 for every ISO 3166-1 country."""
    text = resources.files("modeltrace.licenses").joinpath("iso3166-1.tsv").read_text(encoding="utf-8")
    codes: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        alpha2, alpha3, _name = line.split("\t", 2)
        codes[alpha2] = alpha2
        codes[alpha3] = alpha2
    return codes


def normalise_region(region: str) -> str:
    """The ISO 3166-1 alpha-2 code (or grouping such as ``EU``) for ``region``; LicenseError if none.

    Accepts alpha-2 (``DE``), alpha-3 (``DEU``), any case, and ``UK`` for the United Kingdom.
    """
    code = region.strip().upper()
    code = ALIASES.get(code, code)
    if code in GROUPS:
        return code
    found = _countries().get(code)
    if found is None:
        raise LicenseError(
            f"Unknown region {region!r}: give an ISO 3166-1 country code such as DE, US, KR "
            "(alpha-2 or alpha-3) or EU."
        )
    return found


def region_in(region: str, regions: tuple[str, ...] | list[str]) -> bool:
    """Whether ``region`` (normalised) is one of ``regions`` or a member of a grouping among them."""
    wanted = {ALIASES.get(item.upper(), item.upper()) for item in regions}
    if region in wanted:
        return True
    return any(region in GROUPS.get(group, ()) for group in wanted)
