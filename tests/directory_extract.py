"""A generated national directory extract (the real header, made-up professionals, broken lines at fixed places),
for the import tests and the `directory` benchmark."""

from pathlib import Path

from stdnum import luhn

from teleexpertise.directory.extract import COL

SAMPLE = Path(__file__).parent / "data" / "Extraction_ProSanteConnect_Personne_activite_sample.txt"
HEADER = SAMPLE.read_text(encoding="utf-8").splitlines()[0]
COLUMNS = HEADER.split("|")


def rpps_number(serial: int) -> str:
    body = "1" + str(serial).zfill(9)
    return body + luhn.calc_check_digit(body)


def _line(serial: int, site: int, **overrides) -> str:
    rpps = overrides.pop("rpps", rpps_number(serial))
    values = {COL["id_type"]: "8", COL["id"]: rpps, COL["national_id"]: "8" + rpps,
              COL["last_name"]: f"NOM{serial % 5000}", COL["first_name"]: f"PRENOM{serial % 97}",
              COL["birth_name"]: f"NOM{serial % 5000}", COL["profession"]: "10" if serial % 3 else "60",
              COL["skill_type"]: "S" if serial % 3 else "", COL["skill"]: "SM15" if serial % 3 else "",
              COL["mode"]: "L", COL["structure_id"]: f"R{site:014d}", COL["company"]: f"CABINET {site}",
              COL["postcode"]: f"{1 + site % 95:02d}{site % 1000:03d}",
              COL["post_office"]: f"{1 + site % 95:02d}{site % 1000:03d} VILLE {site % 300}"}
    values.update(overrides)
    return "|".join(values.get(name, "") for name in COLUMNS)


BROKEN = {  # line offset in each block of 10,000 -> (how it is broken, the reason expected)
    1_234: ("fields", "champs au lieu de"),
    3_001: ("checksum", "clé de contrôle"),
    5_555: ("encoding", "UTF-8"),
    7_000: ("profession", "code profession inconnu"),
    8_888: ("postcode", "code postal malformé"),
    9_999: ("national", "ne correspond pas"),
}


def _broken(kind: str, serial: int) -> bytes:
    if kind == "fields":
        return (_line(serial, serial) + "|extra").encode()
    if kind == "checksum":
        good = rpps_number(serial)
        return _line(serial, serial, rpps=good[:-1] + str((int(good[-1]) + 1) % 10)).encode()
    if kind == "encoding":
        return _line(serial, serial).encode().replace(b"NOM", b"N\xe9M", 1)  # Latin-1 byte in a UTF-8 file
    if kind == "profession":
        return _line(serial, serial, **{COL["profession"]: "99"}).encode()
    if kind == "postcode":
        return _line(serial, serial, **{COL["postcode"]: "7500"}).encode()
    return _line(serial, serial, **{COL["national_id"]: "8" + rpps_number(serial + 1)}).encode()


def write_extract(path: Path, lines: int) -> tuple[set, dict]:
    """An extract of `lines` activity lines (a professional has 1 to 3 consecutive ones) with broken lines at
    fixed places; returns the RPPS numbers that must be imported and {line number: expected reason}."""
    good, broken = set(), {}
    with open(path, "wb") as out:
        out.write(HEADER.encode() + b"\n")
        serial, number = 0, 1
        while number <= lines:
            serial += 1
            for activity in range(1 + serial % 3):
                number += 1
                if number > lines + 1:
                    break
                kind = BROKEN.get(number % 10_000)
                if kind:
                    out.write(_broken(kind[0], serial) + b"\n")
                    broken[number] = kind[1]
                else:
                    out.write(_line(serial, serial * 3 + activity).encode() + b"\n")
                    good.add(rpps_number(serial))
    return good, broken
