"""GET /v1/catalog: the permissions with their notices, in one locale. Public: it is the notice."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from consentry.api.schemas import (
    CatalogOut,
    CatalogPermissionOut,
    DevicePermissionOut,
    RecipientOut,
)
from consentry.http.deps import ContainerDep
from consentry.http.problems import Problem

router = APIRouter(tags=["catalog"])


@router.get("/v1/catalog", response_model=CatalogOut)
def get_catalog(
    container: ContainerDep,
    locale: Annotated[str | None, Query(pattern=r"^[a-z]{2}$")] = None,
) -> CatalogOut:
    cat = container.catalogue
    loc = locale or cat.default_locale
    if loc not in cat.locales:
        raise Problem(
            404, f"locale {loc!r} not offered; offered: {', '.join(cat.locales)}", code="locale"
        )
    permissions = [
        CatalogPermissionOut(
            id=p.id,
            title=cat.text(p.notice.title, loc),
            text=cat.text(p.notice.text, loc),
            purpose=p.purpose,
            purpose_label=cat.text(cat.purposes[p.purpose].label, loc),
            categories=list(p.categories),
            recipients=[
                RecipientOut(
                    id=r,
                    name=cat.recipients[r].name,
                    country=cat.recipients[r].country,
                    kind=cat.recipients[r].kind.value,
                    outside_eea=cat.recipients[r].outside_eea,
                )
                for r in p.recipients
            ],
            legal_basis=p.legal_basis.value,
            group=p.group.value,
            notice_version=p.notice.version,
            toggleable=p.toggleable,
        )
        for p in cat.permissions
    ]
    devices = [
        DevicePermissionOut(
            id=d.id, title=cat.text(d.title, loc), text=cat.text(d.text, loc), values=list(d.values)
        )
        for d in cat.device_permissions
    ]
    return CatalogOut(
        catalogue_version=cat.catalogue_version,
        locale=loc,
        controller=cat.controller.model_dump(),
        permissions=permissions,
        device_permissions=devices,
    )
