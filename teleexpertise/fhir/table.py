"""Everything the facade serves, in one table: the read declarations of `handlers` completed with the write side
(`writes`), the thread and the attachments (`exchanges`), and the system interactions (`transaction`). The
routes (`urls.py`) and the CapabilityStatement (`views.capability_statement`) are both made from it."""

from dataclasses import replace

from teleexpertise.fhir import exchanges, handlers, transaction, writes

_COMPLETED = {
    "ServiceRequest": {"create": writes.service_request_create, "update": writes.service_request_update},
    "Task": {"update": writes.task_update},
    # One type, two tables: the signed reports (handlers) and the case's attachments (exchanges).
    "DocumentReference": {"read": exchanges.read_document_reference, "search_base": exchanges.document_rows,
                          "render": exchanges.render_document_references, "params": exchanges.DOCUMENT_PARAMS,
                          "create": writes.document_reference_create},
}

RESOURCES: tuple[handlers.ResourceType, ...] = (
    *(replace(resource_type, **_COMPLETED.get(resource_type.name, {})) for resource_type in handlers.RESOURCES),
    replace(exchanges.COMMUNICATION, create=writes.communication_create),
    exchanges.BINARY,
)

BY_NAME = {resource_type.name: resource_type for resource_type in RESOURCES}

# Interactions on the base URL (`POST /fhir/`), listed in the statement's rest.interaction.
SYSTEM_INTERACTIONS = {"transaction": transaction.transaction_bundle}
