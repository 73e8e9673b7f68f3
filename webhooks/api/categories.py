"""The categories of honour and bad record, which forms and filters offer."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from handlers import records
from handlers.models import AppliesTo, Category, RecordKind

from .. import db
from .common import PageArgs, errors_doc, page_schema, page_view

PREFIX = "/categories"
blp = Blueprint("categories", __name__, description="Categories of credit information")


class CategorySchema(Schema):
    code = fields.String()
    name = fields.String()
    kind = fields.String(metadata={"enum": [k.value for k in RecordKind]})
    applies_to = fields.String(metadata={"enum": [a.value for a in AppliesTo]})


CategoryPage = page_schema("CategoryPage", CategorySchema)


def category_view(c: Category) -> dict:
    return {"code": c.code, "name": c.name, "kind": c.kind.value, "applies_to": c.applies_to.value}


@blp.route("", methods=["GET"])
@blp.arguments(PageArgs, location="query")
@blp.response(200, CategoryPage)
@errors_doc(blp, 422)
def index(args):
    """Every category, by kind then code. Public: it is the same for everyone."""
    return page_view(records.list_categories(db.session(), **args), category_view)
