"""Directory search: by name, profession, specialty, city, department and network, over a million professionals.

Names and cities are matched on search keys stored with each professional (unaccented capitals, see
`search_key`), so no function has to run on a million rows at query time:
- on PostgreSQL the name key has a trigram GIN index (migration 0006, PostgreSQL only), so a fragment anywhere in
  the name is found (`LIKE '%DUPON%'`);
- elsewhere (SQLite) the name is matched by prefix as a range on its B-tree index (`>= 'DUPON' AND < 'DUPON\uffff'`).
The other criteria are equalities on indexed columns; results come ordered by name, a page at a time.
"""

import unicodedata

from django.db import connection
from django.db.models import Exists, OuterRef

from teleexpertise.directory.models import NetworkMembership, Professional

PAGE_SIZE = 50
_PREFIX_END = "\uffff"


def search_key(text: str) -> str:
    """'Émilie  d'Arc-Dupont' -> 'EMILIE D ARC DUPONT': unaccented capitals, words separated by one space."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join("".join(c if c.isalnum() else " " for c in plain.upper()).split())


def _name_filter(queryset, key: str):
    if connection.vendor == "postgresql":
        for word in key.split():  # each word anywhere: 'jean dupont' finds DUPONT JEAN
            queryset = queryset.filter(search_name__contains=word)  # LIKE '%WORD%', served by the trigram index
        return queryset
    return queryset.filter(search_name__gte=key, search_name__lt=key + _PREFIX_END)


def professionals_search(*, q: str = "", profession: str = "", specialty: str = "", city: str = "",
                         department: str = "", network=None, experts_only: bool = False, limit: int = PAGE_SIZE):
    """Professionals matching every criterion given, ordered by name, at most `limit` of them.

    The directory holds no patient data: any signed-in professional may search it (the search page is where a
    requester finds an expert)."""
    queryset = Professional.objects.all()
    key = search_key(q)
    if key:
        queryset = _name_filter(queryset, key)
    if profession:
        queryset = queryset.filter(profession_id=profession)
    if specialty:
        queryset = queryset.filter(specialty_id=specialty)
    if city.strip():
        queryset = queryset.filter(city_key=search_key(city))
    if department.strip():
        queryset = queryset.filter(department=department.strip().upper())
    if network:
        queryset = queryset.filter(Exists(NetworkMembership.objects.filter(network=network,
                                                                            professional=OuterRef("pk"))))
    if experts_only:
        queryset = queryset.filter(profession__may_be_expert=True)
    return (queryset.select_related("profession", "specialty", "organisation")
            .order_by("search_name", "id")[:limit])
