"""Searches of the resources that are views of the case row (ServiceRequest, Task), compiled once per shape.

Building and compiling a search's queryset (the caller's visibility, the parameters, the annotations, four joins)
cost more than PostgreSQL took to run it: about 5 ms of a Task search's 12 (bench/README.md, `api`). A search
whose parameters are references (an id each) and tokens (status codes) is compiled once per thread and *shape*:
the resource type, the caller's sight (staff, or a professional in n networks), and each parameter in order —
its name, and for a token its codes. The ids (the caller's, their networks', the references') are the compiled
query's parameters (`core/compiled.py`). The queryset is the one the ORM path builds: the same `from_cases`
definition and the same parameters' `apply`, called with stand-in ids. A search with any other parameter (dates)
goes through the ORM, as does every search once `MAX_SHAPES` shapes are compiled (tokens and repeated parameters
make many shapes possible; memory stays bounded).
"""

import uuid

from teleexpertise.cases import selectors
from teleexpertise.core.compiled import CompiledQuery
from teleexpertise.core.paging import page_total
from teleexpertise.fhir.handlers import ResourceType, SearchParam, reference_id

MAX_SHAPES = 256
_queries: dict[tuple, CompiledQuery] = {}


def search_page(resource_type: ResourceType, user, params: list[tuple[SearchParam, str]], offset: int,
                count: int) -> tuple[list, int] | None:
    """(the rows of the page, how many match), or None when this search is not compiled (the caller then runs it
    through the ORM). A malformed reference raises the same FhirError as the ORM path."""
    if resource_type.from_cases is None:
        return None
    sight = selectors.sight_of(user)
    if sight is None:  # sees no case: the ORM's empty queryset answers without a query
        return None
    staff, pid, networks = sight
    shape, values = [], {}
    for position, (param, value) in enumerate(params):
        if param.type == "reference" and param.target:
            values[f"p{position}"] = reference_id(value, param.target)
            shape.append((param.name, None))
        elif param.type == "token":
            shape.append((param.name, value))
        else:
            return None
    if not staff:
        values["pid"] = pid
        values.update({f"network{n}": network for n, network in enumerate(networks)})
    query = _query(resource_type, staff, len(networks), tuple(shape))
    if query is None:
        return None
    rows = query.all(page=(offset, count), **values) if count else []  # `_count=0`: the total only
    return rows, page_total(rows, offset, count, lambda: query.count(**values))


def _query(resource_type: ResourceType, staff: bool, networks: int, shape: tuple) -> CompiledQuery | None:
    key = (resource_type.name, staff, networks, shape)
    if key in _queries:
        return _queries[key]
    if len(_queries) >= MAX_SHAPES:
        return None
    by_name = {param.name: param for param in resource_type.params}

    def build(pid=None, **values):
        visible = selectors.cases_in_sight(staff, pid, [values[f"network{n}"] for n in range(networks)])
        rows = resource_type.from_cases(visible)
        for position, (name, literal) in enumerate(shape):
            rows = by_name[name].apply(rows, literal if literal is not None else str(values[f"p{position}"]))
        return rows

    types = {**({} if staff else {"pid": uuid.UUID}), **{f"network{n}": uuid.UUID for n in range(networks)},
             **{f"p{position}": uuid.UUID for position, (_name, literal) in enumerate(shape) if literal is None}}
    build(**{name: uuid.uuid4() for name in types})  # a code the ORM path refuses is refused here, never kept
    _queries[key] = CompiledQuery(build, **types)
    return _queries[key]
