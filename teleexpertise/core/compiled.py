"""Querysets of a fixed shape, compiled to SQL once per thread and database, then run with new values.

On the API's short calls Django spent more time building and compiling querysets (`Query.add_q`,
`SQLCompiler.as_sql`) than PostgreSQL spent running them: a third of a thread read (bench/README.md, `api`).
A `CompiledQuery` keeps the definition a selector already has — a function from named values to a queryset — and
compiles it once with stand-in values; each call then swaps its own values into the compiled parameters and
hydrates the rows with Django's own iterable (select_related included), so the rows are the queryset's rows.

The definition must not branch on the values (the stand-ins are never empty or None, and a call refuses them)
and must use each value as a plain parameter: one the compiled SQL holds transformed (`icontains`' `%value%`)
cannot be swapped, and compiling says so. Supported types: UUID, int, str, datetime.

A definition may end in `.values(...)` (rows as dicts). A page of it (`page=(offset, limit)`) and its `count()`
take the window and the definition's values as parameters, so a list is compiled once whatever page is asked.
"""

import copy
import functools
import itertools
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from django.core.exceptions import EmptyResultSet, ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import QuerySet
from django.db.models.query import ModelIterable, ValuesIterable
from django.db.transaction import TransactionManagementError

_serial = itertools.count(1)


def _stand_in(kind: type):
    """A value of this type that no real call passes and no SQL constant equals. A text holds the characters
    that LIKE patterns escape, so that a lookup escaping its value (SQLite's `iexact`) shows as a transform."""
    n = next(_serial)
    if kind is uuid.UUID:
        return uuid.uuid4()
    if kind is int:
        return 1_987_000_000 + n
    if kind is str:
        return f"compiled%query_stand-in\\{uuid.uuid4().hex}"
    if kind is datetime:
        return datetime(1901, 2, 3, 4, 5, 6, n, tzinfo=UTC) + timedelta(days=n)
    raise ImproperlyConfigured(f"CompiledQuery: no stand-in value for {kind.__name__}")


def _forms(value, connection) -> list[tuple[object, Callable]]:
    """The forms a value may take among compiled parameters, each with how to give a new value that form."""
    forms = [(value, lambda v: v)]
    if isinstance(value, uuid.UUID):  # UUIDField on a database without a uuid type (SQLite)
        forms.append((value.hex, lambda v: v.hex))
    if isinstance(value, datetime):  # DateTimeField on SQLite, in filters and in updates
        adapt = connection.ops.adapt_datetimefield_value
        forms.append((adapt(value), adapt))
    return forms


def _match(param, forms) -> tuple[str, Callable] | None:
    """The named value a compiled parameter holds, and how to give a call's value the same form."""
    for name, form, give in forms:
        if isinstance(param, type(form)) and not isinstance(param, bool) and param == form:
            wrap = type(param)
            if wrap is not type(form):  # psycopg's Int8/Int4 around an integer column's value (Django 5)
                return name, lambda v, give=give, wrap=wrap: wrap(give(v))
            return name, give
    return None


class _Compiled:
    """One compilation: the SQL, its constant parameters, and which slots take which named value."""

    def __init__(self, compiler, sql: str, params: tuple, slots: dict[int, tuple[str, Callable]],
                 kept: dict | None = None):
        self.compiler, self.sql, self.params, self.slots = compiler, sql, list(params), slots
        self.kept = {} if kept is None else kept  # what every run of this select computes alike (converters)

    def params_for(self, values: dict) -> list:
        params = list(self.params)
        for position, (name, form) in self.slots.items():
            params[position] = form(values[name])
        return params

    def paged(self, page: tuple[int, int] | None) -> "_Compiled":
        """The same query with LIMIT and OFFSET as parameters, appended: the definition has no window of its own
        (checked when compiling)."""
        if page is None:
            return self
        offset, limit = page
        if not (isinstance(offset, int) and isinstance(limit, int) and offset >= 0 and limit > 0):
            raise ValueError("CompiledQuery: page is (offset >= 0, limit > 0)")
        return _Compiled(self.compiler, f"{self.sql} LIMIT %s OFFSET %s", (*self.params, limit, offset), self.slots,
                         self.kept)


class _OneCompiler:
    """What ModelIterable reads of a queryset, answering with the compiled SQL and this call's parameters."""

    def __init__(self, compiled: _Compiled, params: list, db: str):
        compiler = copy.copy(compiled.compiler)
        compiler.connection = connections[db]  # this thread's connection, not the one that compiled
        if (compiler.query.select_for_update and compiler.connection.features.has_select_for_update
                and compiler.connection.get_autocommit()):  # as SQLCompiler.as_sql checks it
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        compiler.as_sql = lambda *args, **kwargs: (compiled.sql, params)
        compiler.get_converters = functools.partial(self._converters, compiled.kept, compiler.get_converters)
        self._compiler, self.db, self.query, self._known_related_objects = compiler, db, self, {}

    @staticmethod
    def _converters(kept: dict, get_converters, expressions):
        """The database converters of the select's columns, worked out on the first run (the select is fixed,
        and the cache is this thread's, as is its connection)."""
        if "converters" not in kept:
            kept["converters"] = get_converters(expressions)
        return kept["converters"]

    def get_compiler(self, using=None, connection=None, elide_empty=True):
        return self._compiler


class CompiledQuery:
    """`CompiledQuery(build, pk=UUID, pid=UUID)`: `build(pk=..., pid=...)` returns the queryset; calling
    `.all(pk=..., pid=...)` returns its model instances, `.update(fields, **values)` runs `update(**fields)`
    on it and returns the number of rows changed (`fields` values are named values too)."""

    def __init__(self, build: Callable[..., QuerySet], **types: type):
        self.build, self.types = build, types
        self._local = threading.local()

    def all(self, using: str = DEFAULT_DB_ALIAS, page: tuple[int, int] | None = None, **values) -> list:
        """The rows: model instances, or dicts for a definition ending in `.values()`; `page` (offset, limit)
        gives that window of them."""
        compiled = self._compiled(using, None, values)
        if compiled is None:
            return []
        compiled = compiled.paged(page)
        queryset_like = _OneCompiler(compiled, compiled.params_for(values), using)
        if self._local.values[using]:
            return self._value_rows(queryset_like)
        rows = list(ModelIterable(queryset_like))
        lookups = self._prefetch(using)
        if lookups and rows:
            from django.db.models import prefetch_related_objects

            prefetch_related_objects(rows, *lookups)
        return rows

    @staticmethod
    def _value_rows(queryset_like: _OneCompiler) -> list[dict]:
        """As ValuesIterable reads them: the database's converters applied, one dict a row."""
        compiler = queryset_like.get_compiler()
        query = compiler.query
        names = [*query.extra_select, *query.values_select, *query.annotation_select]
        return [dict(zip(names, row, strict=True)) for row in compiler.results_iter()]

    def count(self, using: str = DEFAULT_DB_ALIAS, **values) -> int:
        """How many rows the definition gives: `COUNT(*)` over its primary keys, unordered."""
        compiled = self._compiled(using, "count", values)
        if compiled is None:
            return 0
        with connections[using].cursor() as cursor:
            cursor.execute(compiled.sql, compiled.params_for(values))
            return cursor.fetchone()[0]

    def first(self, using: str = DEFAULT_DB_ALIAS, **values):
        rows = self.all(using, **values)
        return rows[0] if rows else None

    def update(self, fields: dict[str, str], using: str = DEFAULT_DB_ALIAS, **values) -> int:
        """`fields`: model field -> the name of the value it is set to (`{"read_at": "now"}`)."""
        compiled = self._compiled(using, tuple(sorted(fields.items())), values)
        if compiled is None:
            return 0
        with transaction.mark_for_rollback_on_error(using), connections[using].cursor() as cursor:
            cursor.execute(compiled.sql, compiled.params_for(values))
            return cursor.rowcount

    # --- Compiling -------------------------------------------------------------------------------------------

    def _check(self, values: dict) -> None:
        if set(values) != set(self.types):
            raise TypeError(f"CompiledQuery takes {sorted(self.types)}, not {sorted(values)}")
        for name, value in values.items():
            kind = self.types[name]
            if not value or not isinstance(value, kind) or isinstance(value, bool):
                raise ValueError(f"CompiledQuery: {name} must be a non-empty {kind.__name__}")
            if isinstance(value, datetime) and value.tzinfo is None:
                raise ValueError(f"CompiledQuery: {name} must be an aware datetime")

    def _prefetch(self, using: str) -> tuple:
        return self._local.prefetch.get(using, ())

    def _compiled(self, using: str, update: tuple | str | None, values: dict) -> _Compiled | None:
        self._check(values)
        cache = self._local.__dict__.setdefault("compiled", {})
        key = (using, update)
        if key not in cache:
            cache[key] = self._compile(using, update)
        return cache[key]

    def _compile(self, using: str, update: tuple | str | None) -> _Compiled | None:
        """Compiled twice with different stand-ins: the SQL must not change, and every parameter that changes
        must be one of the values as it was given (or in its database form), never a value transformed."""
        connection = connections[using]
        first, second = ({name: _stand_in(kind) for name, kind in self.types.items()} for _twice in range(2))
        try:
            compiled = self._compile_with(using, update, first)
            again = self._compile_with(using, update, second)
        except (ValueError, TypeError, OverflowError) as exc:  # a stand-in the lookup cannot take (__year)
            raise ImproperlyConfigured(
                f"CompiledQuery: the definition does not compile with plain values ({exc})") from exc
        if compiled is None or again is None:
            if compiled is not again:
                raise ImproperlyConfigured("CompiledQuery: whether the query is empty depends on the values")
            return None
        (compiler, sql, params), (_compiler, sql_again, params_again) = compiled, again
        if sql != sql_again or len(params) != len(params_again):
            raise ImproperlyConfigured("CompiledQuery: the query's shape depends on the values")
        # A count reads no select list: a value used only there (an annotation's) is not among its parameters.
        slots = self._slots(params, params_again, first, second, connection, every_value=update != "count")
        return _Compiled(compiler, sql, params, slots)

    def _compile_with(self, using: str, update: tuple | str | None, stand_ins: dict):
        """`update`: None for the rows, "count" for their number, else the (field, value name) pairs to set."""
        queryset = self.build(**stand_ins)
        if queryset.query.is_sliced:
            raise ImproperlyConfigured("CompiledQuery: the definition has no slice; `page` gives the window")
        if update is None:
            if queryset._iterable_class not in (ModelIterable, ValuesIterable):
                raise ImproperlyConfigured("CompiledQuery runs querysets of model instances or of values() only")
            self._local.__dict__.setdefault("prefetch", {})[using] = tuple(queryset._prefetch_related_lookups)
            self._local.__dict__.setdefault("values", {})[using] = queryset._iterable_class is ValuesIterable
            compiler = queryset.query.get_compiler(using=using)
        elif update == "count":
            compiler = queryset.order_by().values("pk").query.get_compiler(using=using)
            try:
                sql, params = compiler.as_sql()
            except EmptyResultSet:
                return None
            # The SQL is the compiler's own; the values stay parameters.
            return compiler, f"SELECT COUNT(*) FROM ({sql}) counted", params  # noqa: S608
        else:
            from django.db.models.sql import UpdateQuery

            query = queryset.query.chain(UpdateQuery)
            query.add_update_values({field: stand_ins[name] for field, name in update})
            compiler = query.get_compiler(using=using)
        try:
            sql, params = compiler.as_sql()
        except EmptyResultSet:
            return None
        return compiler, sql, params

    @staticmethod
    def _slots(params, params_again, first: dict, second: dict, connection,
               every_value: bool = True) -> dict[int, tuple[str, Callable]]:
        forms = [[(name, form, give) for name, value in stand_ins.items() for form, give in _forms(value, connection)]
                 for stand_ins in (first, second)]
        slots = {}
        for position, (param, param_again) in enumerate(zip(params, params_again, strict=True)):
            if param == param_again and type(param) is type(param_again):
                continue  # a constant of the definition
            found, found_again = _match(param, forms[0]), _match(param_again, forms[1])
            if found is None or found_again is None or found[0] != found_again[0]:
                raise ImproperlyConfigured(f"CompiledQuery: the parameter {param!r} is a value transformed, not a "
                                           "plain parameter (icontains' %value%, an escaped pattern): it cannot be "
                                           "swapped")
            slots[position] = found
        missing = set(first) - {name for name, _give in slots.values()}
        if missing and every_value:
            raise ImproperlyConfigured(f"CompiledQuery: {', '.join(sorted(missing))} is not a parameter of the "
                                       "compiled SQL")
        return slots


class CompiledInsert:
    """`Model.objects.create(**values)` for a model without save() side effects or signals that matter (the
    audit trail): the INSERT is compiled once per thread and database, each row's values prepared as Django
    prepares them. Returns the unsaved-then-saved instance with its primary key."""

    def __init__(self, model):
        self.model = model
        self.fields = [f for f in model._meta.concrete_fields if not (f.primary_key and f.db_returning)]
        self._local = threading.local()

    def create(self, using: str = DEFAULT_DB_ALIAS, **values):
        obj = self.model(**values)
        compiler, sql = self._compiled(using, obj)
        params = [compiler.prepare_value(field, compiler.pre_save_val(field, obj)) for field in self.fields]
        connection = connections[using]
        with transaction.mark_for_rollback_on_error(using), connection.cursor() as cursor:
            cursor.execute(sql, params + list(compiler.returning_params))
            if connection.features.can_return_columns_from_insert:
                (pk,) = connection.ops.fetch_returned_insert_columns(cursor, compiler.returning_params)
            else:
                pk = connection.ops.last_insert_id(cursor, self.model._meta.db_table, self.model._meta.pk.column)
        obj.pk = self.model._meta.pk.to_python(pk)  # RETURNING gives the database form (a UUID's hex on SQLite)
        obj._state.adding, obj._state.db = False, using
        return obj

    def _compiled(self, using: str, obj):
        cache = self._local.__dict__.setdefault("compiled", {})
        if using not in cache:
            from django.db.models.sql import InsertQuery

            query = InsertQuery(self.model)
            query.insert_values(self.fields, [obj])
            compiler = query.get_compiler(using=using)
            compiler.returning_fields = [self.model._meta.pk]
            [(sql, _params)] = compiler.as_sql()
            cache[using] = (compiler, sql)
        compiler, sql = cache[using]
        compiler = copy.copy(compiler)
        compiler.connection = connections[using]
        return compiler, sql
